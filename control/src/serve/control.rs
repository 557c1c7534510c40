//! The control plane's state (one run slot) and its request handlers.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{json, Value};
use spate_engine::config::{check_values, RawRate, MAX_REQUEST_VALUES};
use spate_engine::{ConfigError, EngineError, RawConfig, Run, StartOptions, Summary};
use spate_limit::stats::MODES;
use spate_limit::Rate;

use crate::allowlist::Allowlist;
use crate::http::{ApiStats, Reply, Request};
use crate::metrics::{self, RunView};
use crate::profiles::{self, Profiles};
use crate::redact::Secrets;
use crate::{confine, status};

/// How long `POST /v1/stop` waits for the run to end before answering 202 ("still draining"):
/// short, so a caller is never held for the whole drain timeout; status tells the rest.
const STOP_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
pub(super) struct Slot {
    /// The run being generated or drained; None once joined.
    pub(super) run: Option<Run>,
    /// The current or last run, for status and metrics (outlives the join).
    view: Option<Arc<RunView>>,
    starting: bool,
    stopping: bool,
    summary: Option<Summary>,
    /// The audit trail, if configured: a run's end is recorded where it is joined.
    auditor: Option<spate_engine::audit::Auditor>,
}

impl Slot {
    /// An idle slot; runs' ends go to `auditor`, if any.
    pub(super) fn new(auditor: Option<spate_engine::audit::Auditor>) -> Self {
        Slot { auditor, ..Slot::default() }
    }

    /// Joins a run that has finished on its own (duration, count, fatal error). Quick: every
    /// thread has exited once the flush thread reports done.
    fn reap(&mut self) {
        if self.run.as_ref().is_some_and(spate_engine::Run::is_finished) {
            let run = self.run.take().expect("checked above");
            let summary = run.join();
            if let Some(au) = &self.auditor {
                let code = crate::exit::exit_code(&summary);
                au.run_ended(
                    &summary.run_id,
                    serde_json::to_value(&summary).unwrap_or(Value::Null),
                    code,
                );
            }
            self.summary = Some(summary);
            self.stopping = false;
        }
    }

    fn state(&self) -> &'static str {
        match (&self.run, self.starting, self.stopping, &self.summary) {
            (_, true, _, _) => "starting",
            (Some(_), _, true, _) => "stopping",
            (Some(_), _, false, _) => "running",
            (None, _, _, Some(_)) => "finished",
            (None, _, _, None) => "idle",
        }
    }

    fn ready(&self) -> bool {
        self.run.is_none() && !self.starting
    }
}

/// Held while a start request is read, checked and started.
static CHECKING: Mutex<()> = Mutex::new(());

pub(super) struct Control {
    /// Whether requests need a token (recorded as the origin of API runs).
    pub(super) token: bool,
    /// The configs runs start from (`--config`, and each `--profile` over it); a request's
    /// config is merged over the one it picks.
    pub(super) profiles: Profiles,
    /// Canonical `--data-dir`.
    pub(super) data_dir: Option<PathBuf>,
    /// Where runs started over HTTP may connect.
    pub(super) allowlist: Allowlist,
    pub(super) slot: Mutex<Slot>,
    pub(super) api: Arc<ApiStats>,
}

impl Control {
    pub(super) fn handle(&self, rq: &Request) -> Reply {
        match rq.path.as_str() {
            "/healthz" => Reply::json(200, &json!({"status": "ok"})),
            "/readyz" => {
                let (ready, state) = {
                    let mut s = self.slot.lock();
                    s.reap();
                    (s.ready(), s.state())
                };
                if ready {
                    Reply::json(200, &json!({"ready": true, "state": state}))
                } else {
                    Reply::error(
                        503,
                        "a run is in progress; stop it with POST /v1/stop before starting another",
                        json!({"ready": false, "state": state}),
                    )
                }
            }
            "/metrics" => {
                let view = self.view();
                Reply::text(
                    200,
                    metrics::PROM_CONTENT_TYPE,
                    metrics::render(view, self.api.clone()),
                )
            }
            "/v1/status" => self.status(),
            "/v1/start" => {
                // One start is read and checked at a time: its config trees are the largest
                // memory a request costs (about 1 KiB per value, MAX_REQUEST_VALUES at most),
                // not that times every connection. Only one run can start anyway.
                let Some(_one) = CHECKING.try_lock() else {
                    return Reply::error(
                        409,
                        "another start is being checked; retry in a moment",
                        json!({}),
                    )
                    .with_header("Retry-After", "1");
                };
                let reply = self.start(rq);
                // The trees' pages go back now (freed pages are kept by default: tuning.md).
                spate_engine::alloc::collect();
                reply
            }
            "/v1/stop" => self.stop(rq),
            "/v1/rate" => self.set_rate(rq),
            _ => Reply::error(404, format!("no such path `{}`", rq.path), json!({})),
        }
    }

    fn view(&self) -> Option<Arc<RunView>> {
        let mut s = self.slot.lock();
        s.reap();
        s.view.clone()
    }

    /// Observer tick: join a run that ended on its own, sample the counters of a live one.
    pub(super) fn tick(&self) {
        let view = {
            let mut s = self.slot.lock();
            s.reap();
            s.run.as_ref().and(s.view.clone())
        };
        if let Some(v) = view {
            v.observer.tick(&v.shared);
        }
    }

    fn status(&self) -> Reply {
        let (state, ready, view, summary) = {
            let mut s = self.slot.lock();
            s.reap();
            (s.state(), s.ready(), s.view.clone(), s.summary.clone())
        };
        // Built outside the lock: it reads atomics and briefly the latency histogram.
        let mut m = view.as_ref().map(|v| status::document(v)).unwrap_or_default();
        m.insert("state".into(), json!(state));
        m.insert("ready".into(), json!(ready));
        m.entry("run_id").or_insert(Value::Null);
        m.insert("summary".into(), serde_json::to_value(summary).unwrap_or(Value::Null));
        // The summary may quote the config (its sink, an error message).
        if let Some(v) = &view {
            Secrets::of(&v.config.raw).scrub_map(&mut m);
        }
        Reply::json(200, &Value::Object(m))
    }

    fn start(&self, rq: &Request) -> Reply {
        let mut body = match parse_config(rq) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        if body.get("audit").is_some() {
            return Reply::error(
                403,
                "`audit` is the server's setting (spate serve --audit, or its --config); a run cannot change where it is audited",
                json!({"key": "audit"}),
            );
        }
        let trusted = match self.profiles.select(&mut body) {
            Ok(t) => t,
            Err(e) => return config_reply(400, &e, &Secrets::of_tree(&body)),
        };
        if let Err(e) = confine::confine(&mut body, self.data_dir.as_deref()) {
            return config_reply(403, &e, &Secrets::of_tree(&body));
        }
        let request = body.clone();
        let mut merged = spate_engine::config::merge(trusted.tree.clone(), body);
        confine::default_dlq(&mut merged, self.data_dir.as_deref());
        // Errors below may quote a value of the config (librdkafka quotes a refused option).
        let secrets = Secrets::of_tree(&merged);
        let raw = match RawConfig::from_tree(merged.clone()) {
            Ok(r) => r,
            Err(e) => return config_reply(400, &e, &secrets),
        };
        let cfg = match raw.validate() {
            Ok(c) => c,
            Err(e) => return config_reply(400, &e, &secrets),
        };
        if let Err(e) = self.allowlist.check(&cfg) {
            return config_reply(403, &e, &secrets);
        }
        if let Err(e) = profiles::check_bound(trusted, &request, &merged, &cfg) {
            return config_reply(403, &e, &secrets);
        }
        {
            let mut s = self.slot.lock();
            s.reap();
            if !s.ready() {
                let run_id = s.view.as_ref().map(|v| v.shared.run_id.to_string());
                return Reply::error(
                    409,
                    "a run is already in progress; stop it with POST /v1/stop first",
                    json!({"state": s.state(), "run_id": run_id}),
                );
            }
            // Claim the slot, then start without the lock: opening Kafka can take a while and
            // status must keep answering meanwhile.
            s.starting = true;
        }
        let run_id = spate_gen::RunId::random();
        let notes = self.slot.lock().auditor.as_ref().map(|a| a.notes_for(&run_id.to_string()));
        let res = spate_engine::start(
            cfg,
            StartOptions { run_id: Some(run_id), notes, ..StartOptions::default() },
        );
        let mut s = self.slot.lock();
        s.starting = false;
        match res {
            Ok(run) => {
                if let Some(au) = &s.auditor {
                    let origin = crate::audit::api_origin(rq.remote, self.token);
                    au.run_started(
                        &run.shared.run_id.to_string(),
                        origin,
                        run.config.events.seed,
                        secrets.config(&raw),
                    );
                }
                let view = Arc::new(RunView::new(run.shared.clone(), run.config.clone()));
                let mut doc = status::document(&view);
                doc.insert("state".into(), json!("running"));
                s.view = Some(view);
                s.summary = None;
                s.stopping = false;
                s.run = Some(run);
                Reply::json(200, &Value::Object(doc))
            }
            Err(EngineError::Config(e)) => config_reply(400, &e, &secrets),
            Err(e) => {
                Reply::error(500, secrets.text(&format!("cannot start the run: {e}")), json!({}))
            }
        }
    }

    fn stop(&self, rq: &Request) -> Reply {
        let abort = matches!(rq.query_param("abort"), Some("" | "1" | "true"));
        let view = {
            let mut s = self.slot.lock();
            s.reap();
            match &s.run {
                None => {
                    return match &s.summary {
                        // Idempotent: stopping a finished run returns its summary again.
                        Some(sum) => finished(sum, s.view.as_deref()),
                        None => Reply::error(
                            409,
                            "no run in progress; start one with POST /v1/start",
                            json!({"state": s.state()}),
                        ),
                    };
                }
                Some(run) => {
                    if let Some(au) = &s.auditor {
                        au.change(
                            &run.shared.run_id.to_string(),
                            "stop",
                            json!({"by": "api", "remote": rq.remote.map(|r| r.to_string()), "abort": abort}),
                        );
                    }
                    if abort {
                        run.abort();
                    } else {
                        run.stop();
                    }
                }
            }
            s.stopping = true;
            s.view.clone()
        };
        // Wait for the drain without the lock, so status keeps answering.
        let deadline = Instant::now() + STOP_WAIT;
        while let Some(v) = &view {
            if v.shared.lifecycle.is_finished() || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut s = self.slot.lock();
        s.reap();
        match (&s.run, &s.summary) {
            (None, Some(sum)) => finished(sum, view.as_deref()),
            _ => Reply::json(
                202,
                &json!({"state": s.state(), "message": "still draining; poll GET /v1/status, or POST /v1/stop?abort=true to give up on queued events"}),
            ),
        }
    }

    fn set_rate(&self, rq: &Request) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RateBody {
            rate: RawRate,
        }
        let Ok(text) = std::str::from_utf8(&rq.body) else {
            return Reply::error(
                400,
                "the request body is not UTF-8; send JSON like {\"rate\": 5000}",
                json!({}),
            );
        };
        if let Err(e) = spate_engine::config::check_nesting(text)
            .and_then(|()| check_values(text, MAX_REQUEST_VALUES))
        {
            return config_reply(400, &e, &Secrets::default());
        }
        // JSON is YAML, so one parser takes both; its errors carry line and column.
        let body: RateBody = match serde_yaml_ng::from_str(text) {
            Ok(b) => b,
            Err(e) => {
                return Reply::error(
                    400,
                    format!("bad rate body: {e}; send {{\"rate\": 5000}} or {{\"rate\": \"max\"}}"),
                    json!({"key": "rate"}),
                )
            }
        };
        let rate = match spate_engine::config::parse_rate(&body.rate, "rate") {
            Ok(r) => r,
            Err(e) => return config_reply(400, &e, &Secrets::default()),
        };
        let mut s = self.slot.lock();
        s.reap();
        let (Some(run), false) = (&s.run, s.stopping) else {
            return Reply::error(
                409,
                "no run in progress; start one with POST /v1/start",
                json!({"state": s.state()}),
            );
        };
        if run.config.redis.is_some() {
            return Reply::error(
                409,
                "this run's rate is the global rate in Redis (redis.global_rate), shared by every instance; stop it and start again with a new global rate",
                json!({"state": s.state()}),
            );
        }
        let previous = run.shared.current_rate();
        if let Some(au) = &s.auditor {
            au.change(
                &run.shared.run_id.to_string(),
                "rate",
                json!({"from": previous.to_string(), "to": rate.to_string(), "remote": rq.remote.map(|r| r.to_string())}),
            );
        }
        // The workers pick it up at their next batch, switching to or from `max` as needed;
        // status and metrics read it back from the run's shared state.
        run.set_rate(rate);
        // Keep the reported mode honest for the local limiters (redis/fallback manage their own).
        let lim = &run.shared.limiter;
        if matches!(lim.mode_name(), "local" | "unlimited") {
            let mode = if rate == Rate::Max { "unlimited" } else { "local" };
            if let Some(i) = MODES.iter().position(|m| *m == mode) {
                lim.mode.store(i, Ordering::Relaxed);
            }
        }
        let show = |r: Rate| r.per_sec().map_or_else(|| json!("max"), Value::from);
        Reply::json(
            200,
            &json!({"rate": show(rate), "previous": show(previous), "run_id": run.shared.run_id.to_string()}),
        )
    }
}

/// Parses a start body into a tree: empty means "the base config as is"; JSON or YAML otherwise.
fn parse_config(rq: &Request) -> Result<serde_yaml_ng::Value, Reply> {
    let text = std::str::from_utf8(&rq.body).map_err(|_| {
        Reply::error(
            400,
            "the request body is not UTF-8; send the run config as JSON or YAML",
            json!({}),
        )
    })?;
    if text.trim().is_empty() {
        return Ok(serde_yaml_ng::Value::Mapping(Default::default()));
    }
    // Before either parser: the YAML scanner's time grows with the square of the nesting, and
    // the trees' memory with the number of values.
    spate_engine::config::check_nesting(text)
        .and_then(|()| check_values(text, MAX_REQUEST_VALUES))
        .map_err(|e| config_reply(400, &e, &Secrets::default()))?;
    let looks_json = rq.content_type.contains("json") || text.trim_start().starts_with('{');
    if looks_json {
        // serde_json reports JSON syntax errors with exact positions; YAML's parser would
        // describe them in YAML terms. Valid JSON is read through serde_json (YAML rejects
        // tabs used as indentation).
        return match serde_json::from_str::<Value>(text) {
            Ok(v) => serde_yaml_ng::to_value(v)
                .map_err(|e| Reply::error(400, format!("cannot read the body: {e}"), json!({})))
                .and_then(|v| {
                    spate_engine::config::normalize(v)
                        .map_err(|e| config_reply(400, &e, &Secrets::default()))
                }),
            Err(e) => Err(Reply::error(
                400,
                format!(
                    "malformed JSON at line {} column {}: {e}; fix the request body",
                    e.line(),
                    e.column()
                ),
                json!({"key": "(document)", "line": e.line(), "column": e.column()}),
            )),
        };
    }
    spate_engine::config::parse(text).map_err(|e| config_reply(400, &e, &Secrets::default()))
}

/// A config error as `status`, with `secrets` masked in its text.
fn config_reply(status: u16, e: &ConfigError, secrets: &Secrets) -> Reply {
    let (message, fix) = (secrets.text(&e.message), secrets.text(&e.fix));
    let whole = secrets.text(&e.to_string());
    Reply::error(status, whole, json!({"key": e.key, "message": message, "fix": fix}))
}

/// The answer for a finished run: its summary, with the secrets of its config masked.
fn finished(sum: &Summary, view: Option<&RunView>) -> Reply {
    let mut v = json!({"state": "finished", "summary": sum});
    if let Some(view) = view {
        Secrets::of(&view.config.raw).scrub(&mut v);
    }
    Reply::json(200, &v)
}
