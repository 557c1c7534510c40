//! Reading librdkafka's connection errors into one message naming the setting to fix, and
//! waiting for the first metadata answer at start.

use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;

use spate_core::ConfigError;

use super::settings::{Sasl, Security};

impl Security {
    /// Reads a librdkafka client error met while connecting: a refused certificate or
    /// credential becomes one message naming the setting and the likely fix; anything else
    /// (a broker that is down, say) is `None`, for the breaker and retries to handle.
    pub fn explain(&self, reason: &str, bootstrap: &str) -> Option<ConfigError> {
        let r = reason.to_ascii_lowercase();
        let at = format!("the broker at {bootstrap}");
        let err = |key: &str, what: String, fix: &str| {
            Some(ConfigError::new(key, format!("{what} ({})", reason.trim()), fix))
        };
        // librdkafka reads the files when the client is made.
        if r.contains("ssl.key.location failed") {
            return match self.tls.as_ref().is_some_and(|t| t.key_password.is_some()) {
                true => err(
                    "sink.kafka.tls.key_password",
                    "the client key cannot be read with this passphrase".into(),
                    "give the key's passphrase (key_password_file or ${ENV}), or check key_file is a PEM key",
                ),
                false => err(
                    "sink.kafka.tls.key_file",
                    "the client key cannot be read".into(),
                    "give a PEM private key; an encrypted one needs sink.kafka.tls.key_password",
                ),
            };
        }
        if r.contains("ssl.certificate.location failed") {
            return err(
                "sink.kafka.tls.cert_file",
                "the client certificate cannot be read".into(),
                "give a PEM certificate",
            );
        }
        if r.contains("ssl.ca.location failed") {
            return err(
                "sink.kafka.tls.ca_file",
                "the CA file cannot be read".into(),
                "give a PEM file of one or more CA certificates",
            );
        }
        if r.contains("ssl handshake failed")
            || r.contains("certificate verify failed")
            || r.contains("ssl alert")
            || r.contains("sslv3 alert")
            || r.contains("tlsv1")
        {
            if self.tls.is_none() {
                return err(
                    "sink.kafka.tls",
                    format!("{at} expects TLS"),
                    "add sink.kafka.tls (--kafka-tls), with sink.kafka.tls.ca_file if its CA is not in the system store",
                );
            }
            if r.contains("hostname mismatch") || r.contains("ip address mismatch") {
                return err(
                    "sink.kafka.tls.verify_hostname",
                    format!("{at} presented a certificate for another host name"),
                    "connect by a name its certificate carries (--brokers), or, only on a trusted network, set sink.kafka.tls.verify_hostname: false",
                );
            }
            if r.contains("expired") {
                return err(
                    "sink.kafka.tls.ca_file",
                    format!("{at} presented an expired certificate"),
                    "renew the broker's certificate (or check this machine's clock)",
                );
            }
            if r.contains("certificate required")
                || r.contains("bad certificate")
                || r.contains("unknown ca")
                || r.contains("certificate unknown")
            {
                return err(
                    "sink.kafka.tls.cert_file",
                    format!("{at} refused spate's client certificate (or asked for one)"),
                    "set sink.kafka.tls.cert_file and key_file (--kafka-cert/--kafka-key) to a certificate signed by a CA the broker trusts",
                );
            }
            if r.contains("verify failed")
                || r.contains("self-signed")
                || r.contains("self signed")
                || r.contains("local issuer")
            {
                return err(
                    "sink.kafka.tls.ca_file",
                    format!("spate does not trust the certificate of {at}"),
                    "set sink.kafka.tls.ca_file (--kafka-ca) to the PEM file of the CA that signed the broker's certificate",
                );
            }
            if r.contains("wrong version number")
                || r.contains("packet length too long")
                || r.contains("unexpected eof")
            {
                return err(
                    "sink.kafka.tls",
                    format!("{at} does not speak TLS on that port"),
                    "use the broker's TLS listener in --brokers, or remove sink.kafka.tls for a plaintext one",
                );
            }
            return err(
                "sink.kafka.tls",
                format!("TLS with {at} failed"),
                "check sink.kafka.tls against the broker's TLS listener",
            );
        }
        // A TLS listener resets a plaintext client at its first request (ApiVersion); a
        // plaintext broker never does.
        let reset_at_hello = r.contains("state apiversion_query")
            && (r.contains("disconnected") || r.contains("reset"));
        if r.contains("connecting to a ssl listener")
            || r.contains("incorrect security.protocol")
            || (self.tls.is_none() && reset_at_hello)
        {
            return err(
                "sink.kafka.tls",
                format!("{at} closed the connection at once: it likely expects TLS or SASL"),
                "add sink.kafka.tls (--kafka-tls) and/or sink.kafka.sasl to match the broker's listener",
            );
        }
        if r.contains("sasl") || r.contains("authentication") {
            if r.contains("handshake not supported") {
                return err(
                    "sink.kafka.sasl",
                    format!("{at} does not do SASL on this listener"),
                    "use the broker's SASL listener in --brokers, or remove sink.kafka.sasl",
                );
            }
            if r.contains("mechanism")
                && (r.contains("not supported")
                    || r.contains("unsupported")
                    || r.contains("not enabled")
                    || r.contains("not offered"))
            {
                return err(
                    "sink.kafka.sasl.mechanism",
                    format!("{at} does not offer this SASL mechanism"),
                    "use a mechanism the broker lists as enabled (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)",
                );
            }
            if self.sasl.is_none() {
                return err(
                    "sink.kafka.sasl",
                    format!("{at} asks for SASL authentication"),
                    "set sink.kafka.sasl.mechanism, username and password_file",
                );
            }
            if matches!(self.sasl, Some(Sasl::Oauth { .. })) {
                return err(
                    "sink.kafka.sasl.oauth",
                    format!("{at} or the token endpoint refused the OAUTHBEARER credentials"),
                    "check sink.kafka.sasl.oauth.token_endpoint, client_id and client_secret",
                );
            }
            return err(
                "sink.kafka.sasl.password",
                format!("{at} refused the SASL credentials"),
                "check sink.kafka.sasl.username and the password (password_file or ${ENV}) and that the user exists for this mechanism",
            );
        }
        None
    }
}

/// Keeps the last few errors a librdkafka client reported, from error events and from warning
/// log lines (consumers report errors as codes without the text, and a connection closed
/// during the handshake is only logged). Used as the context of the short-lived clients
/// (`verify`, `dlq replay`) and inside the sink's context. Connection errors come per attempt,
/// never per record, so the lock is off the hot path.
#[derive(Default)]
pub struct ErrorTrap {
    last: parking_lot::Mutex<std::collections::VecDeque<String>>,
}

impl ErrorTrap {
    const KEEP: usize = 8;

    /// The errors kept so far, oldest first; empties the trap.
    pub fn take(&self) -> Vec<String> {
        self.last.lock().drain(..).collect()
    }

    fn keep(&self, line: &str) {
        let mut q = self.last.lock();
        if q.len() == Self::KEEP {
            q.pop_front();
        }
        q.push_back(line.to_string());
    }
}

impl ClientContext for ErrorTrap {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, line: &str) {
        // A failed connection is logged at info level under FAIL, with librdkafka's own hint
        // (e.g. "connecting to a SSL listener?").
        if (level as i32) <= RDKafkaLogLevel::Warning as i32 || fac == "FAIL" {
            self.keep(line);
        }
    }

    fn error(&self, _error: KafkaError, reason: &str) {
        self.keep(reason);
    }
}

impl ConsumerContext for ErrorTrap {}

/// Lets librdkafka's connection failures reach the client context as log lines (rdkafka sets
/// the level from the `log` crate's, which is off in spate, so they would be dropped).
pub fn log_failures(c: &mut ClientConfig) {
    c.set_log_level(RDKafkaLogLevel::Info);
}

/// Asks for metadata until it arrives or `wait` is over, serving the client's events with
/// `serve` and reading its last errors with `last_errors` between tries: a refused certificate or
/// credential ends the wait at once as a config error naming the setting (librdkafka itself
/// would retry it until every timeout ran out). `Ok(None)`: no answer in time, for another
/// reason (a broker that is down). `cfg` is the client's configuration, for telling a wrong CA
/// from a wrong host name ([`refine_verify_failure`]).
#[allow(clippy::too_many_arguments)]
pub fn await_metadata<C: ClientContext>(
    client: &Client<C>,
    cfg: &ClientConfig,
    topic: Option<&str>,
    wait: Duration,
    security: &Security,
    bootstrap: &str,
    serve: &dyn Fn(),
    last_errors: &dyn Fn() -> Vec<String>,
) -> Result<Option<Metadata>, ConfigError> {
    let deadline = Instant::now() + wait;
    loop {
        let answer = client.fetch_metadata(topic, Duration::from_millis(200));
        serve();
        for reason in last_errors() {
            if let Some(e) = security.explain(&reason, bootstrap) {
                return Err(refine_verify_failure(e, cfg, security, bootstrap));
            }
        }
        match answer {
            Ok(md) => return Ok(Some(md)),
            Err(_) if Instant::now() >= deadline => return Ok(None),
            Err(_) => {}
        }
    }
}

/// OpenSSL reports a wrong CA and a certificate for another host name alike ("certificate
/// verify failed"). When verification failed with hostname checking on, one more short-lived
/// client without it tells them apart: if that one connects, the name was the problem.
fn refine_verify_failure(
    e: ConfigError,
    cfg: &ClientConfig,
    security: &Security,
    bootstrap: &str,
) -> ConfigError {
    if e.key != "sink.kafka.tls.ca_file"
        || !security.tls.as_ref().is_some_and(|t| t.verify_hostname)
    {
        return e;
    }
    let mut c = cfg.clone();
    c.set("ssl.endpoint.identification.algorithm", "none");
    let Ok(consumer) = c
        .create_with_context::<_, rdkafka::consumer::BaseConsumer<ErrorTrap>>(ErrorTrap::default())
    else {
        return e;
    };
    // Its failures arrive as log lines, which need no polling.
    let serve = || {};
    let last = || rdkafka::consumer::Consumer::context(&consumer).take();
    let mut without = security.clone();
    if let Some(t) = without.tls.as_mut() {
        t.verify_hostname = false;
    }
    // `without` does not check host names, so this cannot refine again.
    match await_metadata(
        rdkafka::consumer::Consumer::client(&consumer),
        &c,
        None,
        Duration::from_secs(2),
        &without,
        bootstrap,
        &serve,
        &last,
    ) {
        Ok(Some(_)) => ConfigError::new(
            "sink.kafka.tls.verify_hostname",
            format!("the certificate of the broker at {bootstrap} is signed by a trusted CA but does not name that host"),
            "connect by a name its certificate carries (--brokers), or, only on a trusted network, set sink.kafka.tls.verify_hostname: false",
        ),
        _ => e,
    }
}
