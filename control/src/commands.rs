//! What each subcommand does.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use spate_engine::config::{Flags, Target};
use spate_engine::sink::config::RawSink;
use spate_engine::sink::kafka::security::Security;
use spate_engine::sink::kafka::EmbeddedBroker;
use spate_engine::{ConfigError, EngineError, RawConfig, StartOptions, Summary};

use crate::cli::{BrokerArgs, Cli, Cmd, ConfigCmd, DlqCmd, KafkaSecurityArgs, RunArgs, VerifyArgs};
use crate::exit::exit_code;
use crate::http::{ApiStats, Handler, HttpOptions, HttpServer, Reply, Request, Route};
use crate::metrics::{self, RunView};
use crate::redact::Secrets;
use crate::status;

pub fn dispatch(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Run(a) => run(*a),
        Cmd::Schema(a) => schema(*a),
        Cmd::CheckConfig { file } => check_config(&file),
        Cmd::Config { cmd: ConfigCmd::Reference } => {
            out(&spate_engine::config::reference::markdown())?;
            Ok(0)
        }
        Cmd::Config { cmd: ConfigCmd::JsonSchema } => {
            out_line(&serde_json::to_string_pretty(spate_engine::config::walk::schema())?)?;
            Ok(0)
        }
        Cmd::Broker(a) => broker(a),
        Cmd::Verify(a) => verify(a),
        Cmd::Serve(a) => crate::serve::serve(a, signals()?),
        Cmd::Dlq { cmd: DlqCmd::Replay { file, brokers, topic, config, security } } => {
            let (brokers, security) = kafka_connection(config.as_deref(), brokers, &security)?;
            let r = crate::dlq_replay::replay(&file, &brokers, topic.as_deref(), &security)?;
            say!(
                "spate: dlq replay: {} sent, {} failed, {} unreadable lines",
                r.sent,
                r.failed,
                r.bad_lines
            );
            Ok(if r.failed > 0 || r.bad_lines > 0 { 1 } else { 0 })
        }
    }
}

/// The Kafka connection of `--config` (brokers, tls, sasl: its Kafka sink's settings, or the
/// older top-level `kafka:` section) with the flags laid over it, for the short-lived clients:
/// verify and dlq replay.
fn kafka_connection(
    config: Option<&Path>,
    brokers: Option<String>,
    flags: &KafkaSecurityArgs,
) -> Result<(String, Security)> {
    use serde_yaml_ng::Value;
    let below = match config {
        Some(p) => spate_engine::config::parse(
            &std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        )?,
        None => Value::Null,
    };
    // The older top-level section below, the sink's own settings over it (`sink: kafka` with a
    // `kafka:` section reads as both).
    let legacy = below.get("kafka").cloned().unwrap_or(Value::Null);
    let own = below.get("sink").and_then(|s| s.get("kafka")).cloned().unwrap_or(Value::Null);
    let kafka = match (legacy, own) {
        (Value::Null, Value::Null) => Value::Mapping(Default::default()),
        (legacy, Value::Null) => legacy,
        (legacy, own) => spate_engine::config::merge(legacy, own),
    };
    let mut tree = Value::Null;
    spate_engine::config::set_path(&mut tree, &["sink", "kafka"], kafka);
    let mut f = Flags::default();
    f.set(
        "--brokers",
        Target::Sink { kinds: &["kafka"], path: &["brokers"] },
        brokers.map(Value::from),
    );
    flags.add_to(&mut f);
    let raw = RawConfig::from_tree(f.apply(tree)?)?;
    let RawSink::Kafka(k) = &raw.sink else { unreachable!("the tree names the kafka sink") };
    let security = Security::from_raw(k.tls.as_ref(), k.sasl.as_ref())?;
    for w in security.warnings() {
        say!("spate: warning: {w}");
    }
    let brokers = k
        .brokers
        .as_deref()
        .map(|b| spate_core::secret::expand(b, "sink.kafka.brokers"))
        .transpose()?
        .filter(|b| !b.is_empty());
    let brokers = brokers.ok_or_else(|| {
        ConfigError::new(
            "--brokers",
            "no brokers given",
            "pass --brokers HOST:PORT, or --config with sink.kafka.brokers",
        )
    })?;
    Ok((brokers, security))
}

/// Prints the Avro schema (the source's record, or the union of several sources' records).
fn schema(a: RunArgs) -> Result<i32> {
    let mut raw = RawConfig::load(a.config.as_deref(), &a.flags()?)?;
    raw.format = Some("avro".into());
    // The schema does not depend on where events go; check no sink's rules.
    raw.sink = RawSink::Null(Default::default());
    let cfg = raw.validate()?;
    let spec = spate_gen::EventSpec::build(&cfg.events)?;
    let text = spec.avro_schema().expect("the avro format has a schema");
    let v: Value = serde_json::from_str(text)?;
    out_line(&serde_json::to_string_pretty(&v)?)?;
    Ok(0)
}

fn check_config(file: &Path) -> Result<i32> {
    let raw = RawConfig::from_file(file)?;
    let cfg = raw.validate()?;
    spate_gen::EventSpec::build(&cfg.events)?;
    for d in &cfg.deprecated {
        say!("spate: warning: {d}");
    }
    say!(
        "spate: {} is valid (sink {}, format {}, rate {}, {} threads)",
        file.display(),
        cfg.sink,
        cfg.events.format,
        cfg.rate,
        cfg.threads
    );
    Ok(0)
}

/// Writes a command's output to stdout. A reader that went away (`| head`) ends the output
/// quietly, as in other command-line tools; any other failure (a full disk) is an error, so the
/// exit code says the output is incomplete. `print!` would panic in both cases.
fn out(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::from(e).context("cannot write to stdout"))
        }
        _ => Ok(()),
    }
}

fn out_line(text: &str) -> Result<()> {
    out(&format!("{text}\n"))
}

/// Starts the run on a thread of its own and waits for it, or for a signal: opening a sink can
/// take as long as the peer makes it (a broker or database that accepts and never answers waits
/// out its timeout), and a signal then ends spate at once, nothing having been generated.
/// `None` when a signal came first (the start thread is left to the process's exit).
fn start_unless_signalled(
    cfg: &spate_engine::RunConfig,
    opts: StartOptions,
    sigs: &AtomicUsize,
) -> Result<Option<Result<spate_engine::Run, EngineError>>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let cfg = cfg.clone();
    std::thread::Builder::new()
        .name("spate-start".into())
        .spawn(move || {
            let _ = tx.send(spate_engine::start(cfg, opts));
        })
        .context("cannot spawn the start thread")?;
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(r) => return Ok(Some(r)),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if sigs.load(Ordering::SeqCst) > 0 => {
                return Ok(None)
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                anyhow::bail!("the start thread ended without an answer")
            }
        }
    }
}

/// Counts SIGINT/SIGTERM: the first asks for a graceful stop, the second for a hard one.
fn signals() -> Result<Arc<AtomicUsize>> {
    let n = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let n2 = n.clone();
        // SAFETY: the handler only performs an atomic increment, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(sig, move || {
                n2.fetch_add(1, Ordering::SeqCst);
            })
        }
        .context("cannot install the signal handler")?;
    }
    Ok(n)
}

fn run(a: RunArgs) -> Result<i32> {
    let raw = RawConfig::load(a.config.as_deref(), &a.flags()?)?;
    // Messages below may quote a secret value of the config; they may end up in any log.
    let secrets = Secrets::of(&raw);
    let cfg = raw.validate().map_err(|e| secrets.error(e))?;
    for d in &cfg.deprecated {
        say!("spate: warning: {d}");
    }
    let metrics_token = crate::http::load_token(
        "metrics-token",
        a.metrics_token.as_deref(),
        a.metrics_token_file.as_deref(),
    )?;
    if let Some(addr) = &a.metrics_listen {
        crate::http::require_token_off_loopback(
            addr,
            "--metrics-listen",
            metrics_token.is_some(),
            "--metrics-token",
        )?;
    }
    let sigs = signals()?;
    let auditor = match &cfg.audit {
        Some(ac) => Some(crate::audit::start(ac, &secrets)?),
        None => None,
    };
    let embedded_note = cfg.sink.kafka().is_some_and(|k| k.brokers.is_none());
    // The run's id is chosen here, so the audit trail can listen to the run's changes from its
    // first moment.
    let run_id = spate_gen::RunId::random();
    let opts = StartOptions {
        run_id: Some(run_id),
        notes: auditor.as_ref().map(|a| a.notes_for(&run_id.to_string())),
        ..StartOptions::default()
    };
    let Some(started) = start_unless_signalled(&cfg, opts, &sigs)? else {
        say!("spate: stopped by a signal while the run was starting (the sink was opening): nothing was generated");
        return Ok(crate::exit::STOPPED_BEFORE_START);
    };
    let run = started.map_err(|e| match e {
        EngineError::Config(c) => anyhow::Error::from(secrets.error(c)),
        // A registry that refuses the schema or the credentials, or is not there, is a setting
        // to fix (exit 2), as the README's exit codes say.
        e @ EngineError::Registry { .. } => anyhow::Error::from(ConfigError::new(
            "avro.schema_registry",
            secrets.text(&e.to_string()),
            "check the registry's URL, that it is up, and its credentials",
        )),
        e => anyhow::anyhow!(secrets.text(&e.to_string())),
    })?;
    if let Some(au) = &auditor {
        au.run_started(
            &run.shared.run_id.to_string(),
            crate::audit::cli_origin(),
            cfg.events.seed,
            secrets.config(&cfg.raw),
        );
    }
    if embedded_note {
        say!("spate: no --brokers given: producing to an embedded in-memory Kafka mock cluster (librdkafka's), for trying things out; it keeps at most 5 MiB per partition and forgets older data");
    }
    let metrics = match &a.metrics_listen {
        Some(addr) => {
            let opts = HttpOptions {
                routes: RUN_ROUTES,
                token: metrics_token,
                read_token: None,
                api_rate: None,
                shared_rate: None,
                allowed_hosts: a.metrics_allowed_hosts.clone(),
                allowed_origins: Vec::new(),
                tls: None,
            };
            Some(metrics_server(addr, opts, &run)?)
        }
        None => None,
    };
    // On a terminal a line redrawn twice a second; elsewhere (CI, logs, containers) a plain line
    // every `--progress` seconds.
    let terminal = std::io::stderr().is_terminal();
    let every = match (a.quiet, terminal) {
        (true, _) => None,
        (false, true) => Some(Duration::from_millis(500)),
        (false, false) => {
            Some(Duration::from_secs(a.progress.unwrap_or(10))).filter(|d| !d.is_zero())
        }
    };
    let started = Instant::now();
    let mut last = (Instant::now(), 0u64);
    let mut stopping = 0;
    while !run.is_finished() {
        std::thread::sleep(Duration::from_millis(50));
        let s = sigs.load(Ordering::SeqCst);
        if s > stopping {
            stopping = s;
            if let Some(au) = &auditor {
                au.change(
                    &run.shared.run_id.to_string(),
                    "stop",
                    json!({"by": "signal", "abort": s > 1}),
                );
            }
            if s == 1 {
                run.stop();
                say!(
                    "{}spate: stopping: draining for up to {:?} (signal again to abort)",
                    if terminal && every.is_some() { "\r\x1b[2K" } else { "" },
                    cfg.drain_timeout
                );
            } else {
                run.abort();
                say!("spate: aborting: what is not delivered is dead-lettered or counted failed");
            }
        }
        if every.is_some_and(|e| last.0.elapsed() >= e) {
            let t = run.totals();
            let rate = (t.generated - last.1) as f64 / last.0.elapsed().as_secs_f64();
            let breaker = run.shared.breaker.as_ref().map_or("-", |b| b.state().as_str());
            let line = format!(
                "{:>6.1}s  {:>10.0} ev/s  generated {}  delivered {}  in flight {}  dead-lettered {}  shed {}  failed {}  breaker {}  limiter {}",
                started.elapsed().as_secs_f64(),
                rate,
                t.generated,
                t.delivered,
                t.in_flight,
                t.dead_lettered,
                t.shed,
                t.failed,
                breaker,
                run.shared.limiter.mode_name()
            );
            use std::io::Write as _;
            let mut err = std::io::stderr();
            let _ = if terminal {
                write!(err, "\r\x1b[2K{line}")
            } else {
                writeln!(err, "spate: progress: {line}")
            };
            last = (Instant::now(), t.generated);
        }
    }
    if terminal && every.is_some() {
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), "\r\x1b[2K");
    }
    drop(metrics);
    let mut summary = run.join();
    summary.error = summary.error.map(|e| secrets.text(&e));
    let code = exit_code(&summary);
    // The audit's last row (this summary) is written before the summary file, so that the
    // file can say what the audit wrote and dropped (bounded by `audit.flush_timeout`).
    let mut file = serde_json::to_value(&summary)?;
    let audit = auditor.as_ref().map(|au| {
        au.run_ended(&summary.run_id, file.clone(), code);
        let r = au.finish();
        let error = au.last_error().map(|e| secrets.text(&e));
        file["audit"] = serde_json::json!({"written": r.written, "dropped": r.dropped, "not_written": r.pending, "last_error": error});
        (r, error)
    });
    // The summary file before stderr: it must not depend on stderr being writable.
    if let Some(p) = &a.summary_json {
        std::fs::write(p, serde_json::to_vec_pretty(&file)?)
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    print_summary(&summary);
    if let Some((r, error)) = audit {
        if r.dropped + r.pending > 0 {
            say!(
                "spate: audit: {} rows written, {} dropped, {} not written{}",
                r.written,
                r.dropped,
                r.pending,
                error.map(|e| format!(" ({e})")).unwrap_or_default()
            );
        } else {
            say!("spate: audit: {} rows written", r.written);
        }
    }
    Ok(code)
}

fn print_summary(s: &Summary) {
    let t = &s.totals;
    say!(
        "spate: run {} finished in {:.2}s ({} -> {}, {}, {} threads, rate {})",
        s.run_id,
        s.elapsed_s,
        s.format,
        s.sink,
        if t.balanced() { "balanced" } else { "UNBALANCED" },
        s.threads,
        s.rate
    );
    say!(
        "  generated     {:>14}   {:>12.0} events/s  {:>8.1} MB/s  {:.1} ns/event/thread",
        t.generated,
        s.events_per_sec,
        s.mb_per_sec,
        s.ns_per_event_per_thread
    );
    say!("  delivered     {:>14}", t.delivered);
    say!("  dead-lettered {:>14}", t.dead_lettered);
    let reasons: Vec<String> = s.shed_reasons.iter().map(|(k, n)| format!("{k} {n}")).collect();
    say!("  shed          {:>14}   {}", t.shed, reasons.join(", "));
    say!("  failed        {:>14}", t.failed);
    say!("  in flight     {:>14}", t.in_flight);
    if t.retried > 0 || s.breaker_transitions > 0 {
        say!("  retried       {:>14}   breaker transitions: {}", t.retried, s.breaker_transitions);
    }
    let pct = |l: &spate_engine::latency::Percentiles| {
        format!(
            "p50 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  ({} acks)",
            l.p50, l.p99, l.p999, l.max, l.count
        )
    };
    say!(
        "  memory        peak {} MiB resident of a {} MiB budget{}",
        s.memory.peak_rss_bytes >> 20,
        s.memory.budget_bytes >> 20,
        match s.memory.pressed {
            0 => String::new(),
            n => format!(", generation held back {n} times (over 80 %)"),
        }
    );
    if let Some(l) = &s.latency_ms {
        say!("  ack latency   {}", pct(l));
    }
    if let Some(l) = &s.warmup_latency_ms {
        say!(
            "  warm-up       {}   (events of the first {} s, not in the line above)",
            pct(l),
            s.warmup_s
        );
    }
    if let (Some(ready), Some(first)) = (s.sink_ready_ms, s.first_ack_ms) {
        say!("  start         sink ready after {ready:.0} ms, first ack after {first:.0} ms");
    }
    say!(
        "  seed          {:>14}   {}",
        s.seed,
        if s.seed_given { "(given)" } else { "(random: pass --seed to repeat the events)" }
    );
    if s.pin_failures > 0 {
        say!("  unpinned      {:>14}   workers could not be pinned to their core", s.pin_failures);
    }
    if s.reader_gone {
        say!("  the reader of stdout went away: the run ended there (events not written are counted shed)");
    }
    if let Some(e) = &s.error {
        say!("  error: {e}");
    }
}

fn broker(a: BrokerArgs) -> Result<i32> {
    if !(1..=16).contains(&a.brokers) {
        return Err(spate_engine::ConfigError::new(
            "--brokers",
            format!("{} brokers is out of range", a.brokers),
            "use 1 to 16",
        )
        .into());
    }
    if !(1..=1024).contains(&a.partitions) {
        return Err(spate_engine::ConfigError::new(
            "--partitions",
            format!("{} partitions is out of range", a.partitions),
            "use 1 to 1024",
        )
        .into());
    }
    let b = EmbeddedBroker::start(a.brokers)?;
    for t in &a.topic {
        b.create_topic(t, a.partitions)?;
    }
    out_line(b.bootstrap())?;
    if let Some(p) = &a.bootstrap_file {
        std::fs::write(p, b.bootstrap())
            .with_context(|| format!("cannot write {}", p.display()))?;
    }
    say!(
        "spate: embedded in-memory Kafka mock cluster at {} (librdkafka mock; up to 5 MiB per partition kept). Ctrl-C to stop.",
        b.bootstrap()
    );
    let sigs = signals()?;
    while sigs.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(0)
}

fn verify(a: VerifyArgs) -> Result<i32> {
    let timeout = spate_engine::config::parse_duration(&a.timeout, "--timeout")?;
    let r = match (&a.postgres, a.topic) {
        (Some(url), _) => {
            let t = spate_engine::sink::postgres::PgConfig::for_table(
                url,
                a.table.as_deref().unwrap_or("spate_events"),
            )?;
            crate::verify::verify_postgres(&t, a.expect, a.run_id.as_deref())?
        }
        (None, topic) => {
            let (brokers, security) =
                kafka_connection(a.config.as_deref(), a.brokers, &a.security)?;
            let opts = crate::verify::VerifyOptions {
                brokers,
                security,
                topic: topic.unwrap_or_default(),
                expect: a.expect,
                idle_timeout: timeout,
                run_id: a.run_id,
                json: a.json,
            };
            crate::verify::verify(&opts)?
        }
    };
    out_line(&serde_json::to_string_pretty(&r)?)?;
    if let Some(p) = &a.report_json {
        std::fs::write(p, serde_json::to_vec_pretty(&r)?)?;
    }
    say!(
        "spate: verify: {} records, {} unique events, {} missing, {} duplicated, {} malformed",
        r.records,
        r.unique,
        r.missing,
        r.duplicated,
        r.malformed
    );
    Ok(if r.ok() { 0 } else { 1 })
}

/// What `spate run --metrics-listen` keeps alive: the server and the observer thread.
struct MetricsGuard {
    server: Option<HttpServer>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for MetricsGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.server.take();
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

const RUN_ROUTES: &[Route] = &[
    Route { path: "/metrics", methods: &["GET"], open: false },
    Route { path: "/v1/status", methods: &["GET"], open: false },
    Route { path: "/healthz", methods: &["GET"], open: true },
];

/// Serves /metrics and /v1/status for one run (read-only: no control endpoints); stops when
/// dropped.
fn metrics_server(
    listen: &str,
    opts: HttpOptions,
    run: &spate_engine::Run,
) -> Result<MetricsGuard> {
    let view = Arc::new(RunView::new(run.shared.clone(), run.config.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = metrics::spawn_ticker(stop.clone(), {
        let view = view.clone();
        move || view.observer.tick(&view.shared)
    })?;
    let api = Arc::new(ApiStats::default());
    let api2 = api.clone();
    let handler: Handler = Arc::new(move |rq: &Request| match rq.path.as_str() {
        "/metrics" => Reply::text(
            200,
            metrics::PROM_CONTENT_TYPE,
            metrics::render(Some(view.clone()), api2.clone()),
        ),
        "/healthz" => Reply::json(200, &json!({"status": "ok"})),
        _ => {
            let mut m = status::document(&view);
            m.insert("state".into(), json!(if view.active() { "running" } else { "finished" }));
            Reply::json(200, &Value::Object(m))
        }
    });
    let server = HttpServer::start(listen, opts, api, handler)?;
    say!("spate: metrics on http://{}/metrics (status on /v1/status)", server.addr());
    Ok(MetricsGuard { server: Some(server), stop, ticker: Some(ticker) })
}
