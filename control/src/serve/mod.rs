//! `spate serve`: an HTTP control plane that starts, retunes and stops runs.
//!
//! One run at a time. The `Run` handle lives in a `parking_lot::Mutex` slot; handlers hold the
//! lock only to read or swap handles, never while a run starts or drains, so status and
//! metrics keep answering during a slow Kafka start or a long drain. A finished run is joined
//! by whoever notices first (the 4 Hz observer thread or any request) and its summary kept.
//!
//! A request is not the operator: files it names stay under `--data-dir` (`confine.rs`), the
//! config it gets back has its secrets masked (`redact.rs`), and the HTTP layer checks names,
//! origins, content types and sizes before a handler runs (`http/`).

mod control;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use parking_lot::Mutex;
use serde_json::{json, Value};
use spate_engine::{ConfigError, RawConfig};

use crate::allowlist::Allowlist;
use crate::http::{ApiStats, Handler, HttpOptions, HttpServer, Request, Route};
use crate::metrics::{self};
use crate::profiles::Profiles;

use control::{Control, Slot};
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (host:port). Must be loopback unless --allow-remote is given.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Base config file; a POST /v1/start body is laid over it (body wins).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on every endpoint except /healthz and /readyz.
    /// Prefer --token-file: a token on the command line shows in the process list.
    #[arg(long)]
    pub token: Option<String>,
    /// Read the bearer token from this file (its contents, trimmed).
    #[arg(long, conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// A second token that may only read status and metrics (GET); start, stop and rate need
    /// the control token. Its contents, trimmed.
    #[arg(long)]
    pub read_token_file: Option<PathBuf>,
    /// Accept a non-loopback --listen address; needs --token-file or --token.
    #[arg(long)]
    pub allow_remote: bool,
    /// Directory under which runs started over HTTP may write files (a file sink, the Kafka
    /// dead-letter file). Without it such runs are refused.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Another name the server answers to in the `Host` header, `name` or `name:port`
    /// (repeatable). By default only its listen address (and localhost on loopback).
    #[arg(long = "allowed-host")]
    pub allowed_hosts: Vec<String>,
    /// Another origin allowed to start, stop and retune runs from a browser, e.g.
    /// http://dash.example:3000 (repeatable).
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
    /// Requests per second allowed per client IP; 429 with Retry-After above it. With a Redis
    /// in --config (`redis.url`), counted there over the last second, shared by every serve
    /// instance on it; otherwise a token bucket of this instance.
    #[arg(long)]
    pub api_rate: Option<f64>,
    /// Record every run in this PostgreSQL database's audit tables (or `audit:` in --config).
    #[arg(long)]
    pub audit: Option<String>,
    /// Where runs started over HTTP may connect, besides the destinations of --config
    /// (repeatable): `loopback` (the default when none is given), HOST, HOST:PORT, [V6]:PORT,
    /// *.DOMAIN, ADDR/BITS, /SOCKET, or `*` for anywhere.
    #[arg(long = "allow-destination", value_name = "RULE")]
    pub allow_destinations: Vec<String>,
    /// A named profile, NAME=FILE (repeatable): FILE is a config of the operator's (credentials,
    /// secret files and `${NAME}` allowed) that a request picks with `profile: NAME`; it is laid
    /// over --config, the request over it. Its credentials go only to its own destinations.
    #[arg(long = "profile", value_name = "NAME=FILE")]
    pub profiles: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM, the server's certificate first); needs
    /// --tls-key.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM, not encrypted).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require a client certificate signed by this CA (PEM) on every connection (mutual TLS).
    #[arg(long, requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

const ROUTES: &[Route] = &[
    Route { path: "/healthz", methods: &["GET"], open: true },
    Route { path: "/readyz", methods: &["GET"], open: true },
    Route { path: "/metrics", methods: &["GET"], open: false },
    Route { path: "/v1/status", methods: &["GET"], open: false },
    Route { path: "/v1/start", methods: &["POST"], open: false },
    Route { path: "/v1/stop", methods: &["POST"], open: false },
    Route { path: "/v1/rate", methods: &["PUT"], open: false },
];

/// Refuses a non-loopback address unless remote access was asked for.
fn check_listen(listen: &str, allow_remote: bool) -> Result<()> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<_> = listen
        .to_socket_addrs()
        .map_err(|e| {
            ConfigError::new(
                "--listen",
                format!("cannot resolve `{listen}`: {e}"),
                "write host:port, e.g. 127.0.0.1:8080",
            )
        })?
        .collect();
    if !allow_remote {
        if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(ConfigError::new(
                "--listen",
                format!("`{listen}` ({a}) is not a loopback address"),
                "listen on 127.0.0.1 (the default), or pass --allow-remote and --token-file to accept other hosts",
            )
            .into());
        }
    }
    Ok(())
}

/// `--data-dir` made canonical, so that paths resolved later can be compared with it.
fn data_dir(p: &Path) -> Result<PathBuf, ConfigError> {
    let fix = "give an existing directory that runs started over HTTP may write in, e.g. --data-dir /var/lib/spate";
    let dir = std::fs::canonicalize(p)
        .map_err(|e| ConfigError::new("--data-dir", format!("`{}`: {e}", p.display()), fix))?;
    if !dir.is_dir() {
        return Err(ConfigError::new(
            "--data-dir",
            format!("`{}` is not a directory", p.display()),
            fix,
        ));
    }
    Ok(dir)
}

pub(crate) fn serve(a: ServeArgs, sigs: Arc<AtomicUsize>) -> Result<i32> {
    check_listen(&a.listen, a.allow_remote)?;
    let token = crate::http::load_token("token", a.token.as_deref(), a.token_file.as_deref())?;
    let read_token = crate::http::load_token("read-token", None, a.read_token_file.as_deref())?;
    if read_token.is_some() && read_token == token {
        return Err(ConfigError::new(
            "--read-token-file",
            "the read token is the control token: it would grant everything",
            "give the read token a value of its own, e.g. from `openssl rand -hex 32`",
        )
        .into());
    }
    if let Some(r) = a.api_rate {
        if !(r.is_finite() && r > 0.0) {
            return Err(ConfigError::new(
                "--api-rate",
                format!("{r} requests/s is not a positive rate"),
                "give requests per second per client, e.g. --api-rate 20",
            )
            .into());
        }
    }
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(crate::http::tls_acceptor(&crate::http::TlsFiles {
            cert,
            key,
            client_ca: a.tls_client_ca.as_deref(),
        })?),
        _ => None,
    };
    // A client certificate is a credential too: mutual TLS alone may guard a remote listener.
    if a.allow_remote && token.is_none() && read_token.is_none() && a.tls_client_ca.is_none() {
        return Err(ConfigError::new(
            "--allow-remote",
            format!("other hosts would reach {} without a token: anyone there could start runs and stop them", a.listen),
            "set --token-file PATH (or --token T) too, callers then send `Authorization: Bearer T`; or require client certificates with --tls-client-ca",
        )
        .into());
    }
    let data_dir = a.data_dir.as_deref().map(data_dir).transpose()?;
    // Paths checked under --data-dir are opened without following a link swapped in since,
    // in the file itself or in a directory on the way (beneath a handle of the data dir).
    spate_engine::sink::refuse_symlinks();
    if let Some(d) = &data_dir {
        spate_engine::sink::confine_writes_beneath(d).map_err(|e| {
            ConfigError::new(
                "--data-dir",
                format!("`{}`: {e}", d.display()),
                "give an existing directory spate may open",
            )
        })?;
    }
    let base = match &a.config {
        Some(p) => RawConfig::from_file(p)?,
        None => RawConfig::default(),
    };
    // Fail at startup, not at the first POST /v1/start.
    let checked = base.validate()?;
    let profiles = Profiles::load(&base, &checked, &a.profiles)?;
    let allowlist = Allowlist::new(
        &a.allow_destinations,
        profiles.all().flat_map(crate::profiles::Trusted::destinations),
    )?;
    // With a Redis in the base config, --api-rate is counted there, shared by every instance.
    let shared_rate = match (a.api_rate, &checked.redis) {
        (Some(rate), Some(r)) => {
            Some(Arc::new(crate::http::SharedRate::new(r, rate).map_err(|e| {
                ConfigError::new("redis.url", e.to_string(), "correct the base config's redis.url")
            })?))
        }
        _ => None,
    };
    let audit = match (&a.audit, &base.audit) {
        (Some(url), _) => spate_engine::audit::RawAudit {
            url: Some(url.as_str().into()),
            ..base.audit.clone().unwrap_or_default()
        }
        .validate()?,
        (None, Some(raw)) => raw.validate()?,
        (None, None) => None,
    };
    let auditor = match &audit {
        Some(ac) => Some(crate::audit::start(ac, &crate::redact::Secrets::of(&base))?),
        None => None,
    };
    let slot = Slot::new(auditor.clone());
    let api = Arc::new(ApiStats::default());
    let control = Arc::new(Control {
        token: token.is_some(),
        profiles,
        data_dir,
        allowlist,
        slot: Mutex::new(slot),
        api: api.clone(),
    });
    let handler = {
        let c = control.clone();
        Arc::new(move |rq: &Request| c.handle(rq)) as Handler
    };
    let opts = HttpOptions {
        routes: ROUTES,
        token,
        read_token,
        api_rate: a.api_rate,
        shared_rate,
        allowed_hosts: a.allowed_hosts,
        allowed_origins: a.allowed_origins,
        tls,
    };
    let server = HttpServer::start(&a.listen, opts, api, handler)?;
    let scheme = if a.tls_cert.is_some() { "https" } else { "http" };
    say!("spate: serve listening on {scheme}://{}", server.addr());
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = metrics::spawn_ticker(stop.clone(), {
        let c = control.clone();
        move || c.tick()
    })?;

    while sigs.load(Ordering::SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    say!("spate: stopping (draining the run, if any; Ctrl-C again to abort)");
    let run = control.slot.lock().run.take();
    if let Some(run) = run {
        run.stop();
        let mut aborted = false;
        while !run.is_finished() {
            if !aborted && sigs.load(Ordering::SeqCst) > 1 {
                run.abort();
                aborted = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let s = run.join();
        if let Some(au) = &auditor {
            au.change(&s.run_id, "stop", json!({"by": "signal"}));
            au.run_ended(
                &s.run_id,
                serde_json::to_value(&s).unwrap_or(Value::Null),
                crate::exit::exit_code(&s),
            );
        }
        say!(
            "spate: run {} stopped: generated {}, delivered {}, failed {}",
            s.run_id,
            s.totals.generated,
            s.totals.delivered,
            s.totals.failed
        );
    }
    drop(server);
    stop.store(true, Ordering::Relaxed);
    let _ = ticker.join();
    if let Some(au) = &auditor {
        let r = au.finish();
        say!(
            "spate: audit: {} rows written, {} dropped, {} not written",
            r.written,
            r.dropped,
            r.pending
        );
    }
    Ok(0)
}
