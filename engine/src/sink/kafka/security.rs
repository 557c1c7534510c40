//! Connecting to a secured cluster: TLS (server verification, client certificates) and SASL
//! (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER with OIDC client credentials), as the `sink.kafka.tls` and
//! `sink.kafka.sasl` sections, turned into librdkafka properties; and the reading of librdkafka's
//! connection errors into one message that names the setting to fix.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::metadata::Metadata;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use spate_core::conf::{SecretFile, SecretText};
use spate_core::secret::{self, Secret};
use spate_core::ConfigError;

/// `sink.kafka.tls` as written. The section being present turns TLS on unless `enabled: false`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// TLS on (default true when the section is present).
    pub enabled: Option<bool>,
    /// CA bundle (PEM) that signed the brokers' certificates. Unset: the system's store.
    pub ca_file: Option<SecretFile>,
    /// Client certificate (PEM), for clusters that authenticate clients by certificate (mTLS).
    pub cert_file: Option<SecretFile>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<SecretFile>,
    /// Passphrase of an encrypted `key_file` (`${ENV}` allowed), or `key_password_file`.
    pub key_password: Option<SecretText>,
    /// A file holding the passphrase.
    pub key_password_file: Option<SecretFile>,
    /// Check that the broker's certificate names the host connected to. Default true; false is
    /// logged at start, because it lets anyone with a certificate from the same CA pose as the
    /// broker.
    pub verify_hostname: Option<bool>,
}

/// `sink.kafka.sasl` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSasl {
    /// PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER.
    pub mechanism: Option<String>,
    /// The SASL user (PLAIN, SCRAM).
    pub username: Option<String>,
    /// The password (`${ENV}` allowed), or `password_file`.
    pub password: Option<SecretText>,
    /// A file holding the password.
    pub password_file: Option<SecretFile>,
    /// OAUTHBEARER: OIDC client credentials.
    pub oauth: Option<RawOauth>,
}

/// `sink.kafka.sasl.oauth`: OIDC client credentials for OAUTHBEARER.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOauth {
    /// The token endpoint (https URL).
    pub token_endpoint: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
    /// The client secret (`${ENV}` allowed), or `client_secret_file`.
    pub client_secret: Option<SecretText>,
    /// A file holding the client secret.
    pub client_secret_file: Option<SecretFile>,
    /// Scopes to ask for.
    pub scope: Option<String>,
}

/// Validated TLS settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub key_password: Option<Secret>,
    pub verify_hostname: bool,
}

/// Validated SASL settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mechanism")]
pub enum Sasl {
    #[serde(rename = "PLAIN")]
    Plain { username: String, password: Secret },
    #[serde(rename = "SCRAM")]
    Scram { sha512: bool, username: String, password: Secret },
    #[serde(rename = "OAUTHBEARER")]
    Oauth { token_endpoint: String, client_id: String, client_secret: Secret, scope: Option<String> },
}

impl Sasl {
    pub fn mechanism(&self) -> &'static str {
        match self {
            Sasl::Plain { .. } => "PLAIN",
            Sasl::Scram { sha512: false, .. } => "SCRAM-SHA-256",
            Sasl::Scram { sha512: true, .. } => "SCRAM-SHA-512",
            Sasl::Oauth { .. } => "OAUTHBEARER",
        }
    }
}

/// How spate authenticates to and encrypts its connections to the brokers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Security {
    pub tls: Option<Tls>,
    pub sasl: Option<Sasl>,
}

/// librdkafka properties set from `sink.kafka.tls` / `sink.kafka.sasl`, refused in `--kafka-opt` so that
/// one setting has one place (and secrets stay in typed, redacted fields).
pub const TYPED: &[(&str, &str)] = &[
    ("security.protocol", "sink.kafka.tls / sink.kafka.sasl (the protocol follows from them)"),
    ("ssl.ca.location", "--kafka-ca / sink.kafka.tls.ca_file"),
    ("ssl.certificate.location", "--kafka-cert / sink.kafka.tls.cert_file"),
    ("ssl.key.location", "--kafka-key / sink.kafka.tls.key_file"),
    ("ssl.key.password", "sink.kafka.tls.key_password or key_password_file"),
    ("ssl.endpoint.identification.algorithm", "sink.kafka.tls.verify_hostname"),
    ("sasl.mechanism", "--kafka-sasl-mechanism / sink.kafka.sasl.mechanism"),
    ("sasl.mechanisms", "--kafka-sasl-mechanism / sink.kafka.sasl.mechanism"),
    ("sasl.username", "--kafka-sasl-username / sink.kafka.sasl.username"),
    ("sasl.password", "--kafka-sasl-password-file / sink.kafka.sasl.password or password_file"),
    ("sasl.oauthbearer.method", "sink.kafka.sasl.oauth"),
    ("sasl.oauthbearer.client.id", "sink.kafka.sasl.oauth.client_id"),
    ("sasl.oauthbearer.client.secret", "sink.kafka.sasl.oauth.client_secret or client_secret_file"),
    ("sasl.oauthbearer.token.endpoint.url", "sink.kafka.sasl.oauth.token_endpoint"),
    ("sasl.oauthbearer.scope", "sink.kafka.sasl.oauth.scope"),
];

impl Security {
    pub fn from_raw(tls: Option<&RawTls>, sasl: Option<&RawSasl>) -> Result<Self, ConfigError> {
        Ok(Security { tls: tls.map(Tls::from_raw).transpose()?.flatten(), sasl: sasl.map(Sasl::from_raw).transpose()? })
    }

    /// librdkafka's `security.protocol`.
    pub fn protocol(&self) -> &'static str {
        match (&self.tls, &self.sasl) {
            (None, None) => "plaintext",
            (Some(_), None) => "ssl",
            (None, Some(_)) => "sasl_plaintext",
            (Some(_), Some(_)) => "sasl_ssl",
        }
    }

    /// Sets the librdkafka properties: the only place secrets leave their [`Secret`].
    pub fn apply(&self, c: &mut ClientConfig) {
        if self.tls.is_none() && self.sasl.is_none() {
            return;
        }
        c.set("security.protocol", self.protocol());
        if let Some(t) = &self.tls {
            if let Some(p) = &t.ca_file {
                c.set("ssl.ca.location", p.to_string_lossy());
            }
            if let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) {
                c.set("ssl.certificate.location", cert.to_string_lossy());
                c.set("ssl.key.location", key.to_string_lossy());
            }
            if let Some(pw) = &t.key_password {
                c.set("ssl.key.password", pw.expose());
            }
            c.set("ssl.endpoint.identification.algorithm", if t.verify_hostname { "https" } else { "none" });
            c.set("enable.ssl.certificate.verification", "true");
        }
        match &self.sasl {
            None => {}
            Some(s @ (Sasl::Plain { username, password } | Sasl::Scram { username, password, .. })) => {
                c.set("sasl.mechanism", s.mechanism()).set("sasl.username", username).set("sasl.password", password.expose());
            }
            Some(Sasl::Oauth { token_endpoint, client_id, client_secret, scope }) => {
                c.set("sasl.mechanism", "OAUTHBEARER")
                    .set("sasl.oauthbearer.method", "oidc")
                    .set("sasl.oauthbearer.token.endpoint.url", token_endpoint)
                    .set("sasl.oauthbearer.client.id", client_id)
                    .set("sasl.oauthbearer.client.secret", client_secret.expose());
                if let Some(s) = scope {
                    c.set("sasl.oauthbearer.scope", s);
                }
            }
        }
    }

    /// What to say at start about settings that weaken the connection.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.tls.as_ref().is_some_and(|t| !t.verify_hostname) {
            w.push("kafka: TLS hostname verification is off (sink.kafka.tls.verify_hostname: false): any certificate from the trusted CA is accepted for any broker".to_string());
        }
        if self.tls.is_none() && matches!(self.sasl, Some(Sasl::Plain { .. })) {
            w.push(
                "kafka: SASL PLAIN without TLS sends the password in the clear; add sink.kafka.tls (--kafka-tls) unless the network is trusted"
                    .to_string(),
            );
        }
        w
    }

    /// Reads a librdkafka client error met while connecting: a refused certificate or
    /// credential becomes one message naming the setting and the likely fix; anything else
    /// (a broker that is down, say) is `None`, for the breaker and retries to handle.
    pub fn explain(&self, reason: &str, bootstrap: &str) -> Option<ConfigError> {
        let r = reason.to_ascii_lowercase();
        let at = format!("the broker at {bootstrap}");
        let err = |key: &str, what: String, fix: &str| Some(ConfigError::new(key, format!("{what} ({})", reason.trim()), fix));
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
            return err("sink.kafka.tls.cert_file", "the client certificate cannot be read".into(), "give a PEM certificate");
        }
        if r.contains("ssl.ca.location failed") {
            return err("sink.kafka.tls.ca_file", "the CA file cannot be read".into(), "give a PEM file of one or more CA certificates");
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
            if r.contains("verify failed") || r.contains("self-signed") || r.contains("self signed") || r.contains("local issuer") {
                return err(
                    "sink.kafka.tls.ca_file",
                    format!("spate does not trust the certificate of {at}"),
                    "set sink.kafka.tls.ca_file (--kafka-ca) to the PEM file of the CA that signed the broker's certificate",
                );
            }
            if r.contains("wrong version number") || r.contains("packet length too long") || r.contains("unexpected eof") {
                return err(
                    "sink.kafka.tls",
                    format!("{at} does not speak TLS on that port"),
                    "use the broker's TLS listener in --brokers, or remove sink.kafka.tls for a plaintext one",
                );
            }
            return err("sink.kafka.tls", format!("TLS with {at} failed"), "check sink.kafka.tls against the broker's TLS listener");
        }
        // A TLS listener resets a plaintext client at its first request (ApiVersion); a
        // plaintext broker never does.
        let reset_at_hello = r.contains("state apiversion_query") && (r.contains("disconnected") || r.contains("reset"));
        if r.contains("connecting to a ssl listener") || r.contains("incorrect security.protocol") || (self.tls.is_none() && reset_at_hello)
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
                && (r.contains("not supported") || r.contains("unsupported") || r.contains("not enabled") || r.contains("not offered"))
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
fn refine_verify_failure(e: ConfigError, cfg: &ClientConfig, security: &Security, bootstrap: &str) -> ConfigError {
    if e.key != "sink.kafka.tls.ca_file" || !security.tls.as_ref().is_some_and(|t| t.verify_hostname) {
        return e;
    }
    let mut c = cfg.clone();
    c.set("ssl.endpoint.identification.algorithm", "none");
    let Ok(consumer) = c.create_with_context::<_, rdkafka::consumer::BaseConsumer<ErrorTrap>>(ErrorTrap::default()) else { return e };
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

impl Tls {
    fn from_raw(r: &RawTls) -> Result<Option<Self>, ConfigError> {
        if r.enabled == Some(false) {
            return Ok(None);
        }
        if let Some(p) = &r.ca_file {
            secret::check_file(p.path(), "sink.kafka.tls.ca_file", "CA file")?;
        }
        match (&r.cert_file, &r.key_file) {
            (Some(c), Some(k)) => {
                secret::check_file(c.path(), "sink.kafka.tls.cert_file", "client certificate")?;
                secret::check_file(k.path(), "sink.kafka.tls.key_file", "client key")?;
            }
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "sink.kafka.tls.key_file",
                    "a client certificate without its key",
                    "set sink.kafka.tls.key_file (--kafka-key) too",
                ))
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "sink.kafka.tls.cert_file",
                    "a client key without its certificate",
                    "set sink.kafka.tls.cert_file (--kafka-cert) too",
                ))
            }
            (None, None) => {}
        }
        let key_password = secret::resolve(
            r.key_password.as_ref().map(|p| p.0.as_str()),
            r.key_password_file.as_ref().map(SecretFile::path),
            "sink.kafka.tls.key_password",
            "sink.kafka.tls.key_password_file",
        )?;
        if key_password.is_some() && r.key_file.is_none() {
            return Err(ConfigError::new(
                "sink.kafka.tls.key_password",
                "a key passphrase without a key",
                "set sink.kafka.tls.key_file, or remove the passphrase",
            ));
        }
        Ok(Some(Tls {
            ca_file: r.ca_file.as_ref().map(|p| p.0.clone()),
            cert_file: r.cert_file.as_ref().map(|p| p.0.clone()),
            key_file: r.key_file.as_ref().map(|p| p.0.clone()),
            key_password,
            verify_hostname: r.verify_hostname.unwrap_or(true),
        }))
    }
}

impl Sasl {
    fn from_raw(r: &RawSasl) -> Result<Self, ConfigError> {
        let mech = r.mechanism.as_deref().map(str::to_ascii_uppercase);
        let creds = |r: &RawSasl| -> Result<(String, Secret), ConfigError> {
            let user = secret::expand(r.username.as_deref().unwrap_or(""), "sink.kafka.sasl.username")?;
            if user.is_empty() {
                return Err(ConfigError::new(
                    "sink.kafka.sasl.username",
                    "no SASL user name",
                    "set sink.kafka.sasl.username (--kafka-sasl-username)",
                ));
            }
            let pw = secret::resolve(r.password.as_ref().map(|p| p.0.as_str()), r.password_file.as_ref().map(SecretFile::path), "sink.kafka.sasl.password", "sink.kafka.sasl.password_file")?
                .ok_or_else(|| {
                    ConfigError::new(
                        "sink.kafka.sasl.password",
                        "no SASL password",
                        "set sink.kafka.sasl.password_file (--kafka-sasl-password-file), or sink.kafka.sasl.password: ${ENV_VAR}",
                    )
                })?;
            Ok((user, pw))
        };
        match mech.as_deref() {
            Some("PLAIN") => creds(r).map(|(username, password)| Sasl::Plain { username, password }),
            Some(m @ ("SCRAM-SHA-256" | "SCRAM-SHA-512")) => {
                creds(r).map(|(username, password)| Sasl::Scram { sha512: m.ends_with("512"), username, password })
            }
            Some("OAUTHBEARER") => {
                let o = r.oauth.clone().unwrap_or_default();
                let need = |v: &Option<String>, key: &str| -> Result<String, ConfigError> {
                    let v = secret::expand(v.as_deref().unwrap_or(""), key)?;
                    if v.is_empty() {
                        return Err(ConfigError::new(key, "not set", format!("OAUTHBEARER (OIDC client credentials) needs {key}")));
                    }
                    Ok(v)
                };
                let token_endpoint = need(&o.token_endpoint, "sink.kafka.sasl.oauth.token_endpoint")?;
                if !(token_endpoint.starts_with("https://") || token_endpoint.starts_with("http://")) {
                    return Err(ConfigError::new(
                        "sink.kafka.sasl.oauth.token_endpoint",
                        format!("`{token_endpoint}` is not an http(s) URL"),
                        "give the identity provider's token URL, e.g. https://idp.example/oauth2/token",
                    ));
                }
                let client_id = need(&o.client_id, "sink.kafka.sasl.oauth.client_id")?;
                let client_secret = secret::resolve(
                    o.client_secret.as_ref().map(|p| p.0.as_str()),
                    o.client_secret_file.as_ref().map(SecretFile::path),
                    "sink.kafka.sasl.oauth.client_secret",
                    "sink.kafka.sasl.oauth.client_secret_file",
                )?
                .ok_or_else(|| {
                    ConfigError::new(
                        "sink.kafka.sasl.oauth.client_secret",
                        "not set",
                        "set sink.kafka.sasl.oauth.client_secret_file, or client_secret: ${ENV_VAR}",
                    )
                })?;
                Ok(Sasl::Oauth { token_endpoint, client_id, client_secret, scope: o.scope.clone() })
            }
            Some(o) => Err(ConfigError::new(
                "sink.kafka.sasl.mechanism",
                format!("unknown SASL mechanism `{o}`"),
                "use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
            )),
            None => Err(ConfigError::new(
                "sink.kafka.sasl.mechanism",
                "sink.kafka.sasl without a mechanism",
                "set sink.kafka.sasl.mechanism (--kafka-sasl-mechanism): PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(s: &Security) -> std::collections::HashMap<String, String> {
        let mut c = ClientConfig::new();
        s.apply(&mut c);
        c.config_map().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn protocols_follow_from_the_sections() {
        let tls = RawTls::default();
        let sasl = RawSasl {
            mechanism: Some("scram-sha-512".into()),
            username: Some("u".into()),
            password: Some("pw12".into()),
            ..Default::default()
        };
        assert_eq!(Security::from_raw(None, None).unwrap().protocol(), "plaintext");
        assert_eq!(Security::from_raw(Some(&tls), None).unwrap().protocol(), "ssl");
        assert_eq!(Security::from_raw(None, Some(&sasl)).unwrap().protocol(), "sasl_plaintext");
        let s = Security::from_raw(Some(&tls), Some(&sasl)).unwrap();
        let p = props(&s);
        assert_eq!(p["security.protocol"], "sasl_ssl");
        assert_eq!(p["sasl.mechanism"], "SCRAM-SHA-512");
        assert_eq!(p["ssl.endpoint.identification.algorithm"], "https", "hostname verification is on by default");
        let off = RawTls { enabled: Some(false), ..Default::default() };
        assert_eq!(Security::from_raw(Some(&off), None).unwrap().protocol(), "plaintext");
    }

    /// librdkafka accepts every combination spate sets: it was built with SSL, SCRAM and OIDC.
    #[test]
    fn librdkafka_takes_every_mechanism() {
        for (m, oauth) in [("PLAIN", None), ("SCRAM-SHA-256", None), ("SCRAM-SHA-512", None), ("OAUTHBEARER", Some(()))] {
            let sasl = RawSasl {
                mechanism: Some(m.into()),
                username: Some("u".into()),
                password: Some("pw12".into()),
                oauth: oauth.map(|_| RawOauth {
                    token_endpoint: Some("https://127.0.0.1:1/token".into()),
                    client_id: Some("c".into()),
                    client_secret: Some("s".into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let s = Security::from_raw(Some(&RawTls::default()), Some(&sasl)).unwrap();
            let mut c = ClientConfig::new();
            s.apply(&mut c);
            c.create_native_config().unwrap_or_else(|e| panic!("{m}: {e}"));
        }
    }

    #[test]
    fn bad_sections_name_their_key() {
        let cases: Vec<(RawSasl, &str)> = vec![
            (RawSasl { mechanism: Some("GSSAPI".into()), ..Default::default() }, "sink.kafka.sasl.mechanism"),
            (RawSasl { mechanism: None, ..Default::default() }, "sink.kafka.sasl.mechanism"),
            (RawSasl { mechanism: Some("PLAIN".into()), password: Some("x".into()), ..Default::default() }, "sink.kafka.sasl.username"),
            (RawSasl { mechanism: Some("PLAIN".into()), username: Some("u".into()), ..Default::default() }, "sink.kafka.sasl.password"),
            (RawSasl { mechanism: Some("OAUTHBEARER".into()), ..Default::default() }, "sink.kafka.sasl.oauth.token_endpoint"),
        ];
        for (raw, key) in cases {
            assert_eq!(Security::from_raw(None, Some(&raw)).unwrap_err().key, key);
        }
        let tls = RawTls { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        assert_eq!(Security::from_raw(Some(&tls), None).unwrap_err().key, "sink.kafka.tls.ca_file");
        let tls = RawTls { cert_file: Some("/etc/hostname".into()), ..Default::default() };
        assert_eq!(Security::from_raw(Some(&tls), None).unwrap_err().key, "sink.kafka.tls.key_file");
    }

    #[test]
    fn secrets_do_not_serialize() {
        let sasl = RawSasl {
            mechanism: Some("PLAIN".into()),
            username: Some("u".into()),
            password: Some("hunter22".into()),
            ..Default::default()
        };
        let s = Security::from_raw(None, Some(&sasl)).unwrap();
        let text = format!("{} {s:?}", serde_json::to_string(&s).unwrap());
        assert!(!text.contains("hunter22"), "{text}");
    }

    #[test]
    fn connection_errors_name_the_setting() {
        let tls = Security::from_raw(Some(&RawTls::default()), None).unwrap();
        let b = "localhost:9093";
        let key = |s: &Security, reason: &str| s.explain(reason, b).map(|e| e.key);
        assert_eq!(
            key(&tls, "ssl://localhost:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured"),
            Some("sink.kafka.tls.ca_file".into())
        );
        assert_eq!(
            key(&tls, "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: Hostname mismatch"),
            Some("sink.kafka.tls.verify_hostname".into())
        );
        assert_eq!(
            key(&tls, "SSL handshake failed: ssl/record/ssl3_record.c:354: error:0A00010B:SSL routines::wrong version number"),
            Some("sink.kafka.tls".into())
        );
        assert_eq!(
            key(&tls, "SSL handshake failed: error:0A00045C:SSL routines::tlsv13 alert certificate required"),
            Some("sink.kafka.tls.cert_file".into())
        );
        let plain = Security::default();
        assert_eq!(
            key(&plain, "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)"),
            Some("sink.kafka.tls".into())
        );
        assert_eq!(
            key(&plain, "localhost:19093/bootstrap: Disconnected: connection reset by peer (after 0ms in state APIVERSION_QUERY)"),
            Some("sink.kafka.tls".into())
        );
        assert_eq!(
            key(&plain, "Connect to ipv4#127.0.0.1:9 failed: Connection refused"),
            None,
            "a broker that is down is not a config error"
        );
        let sasl = RawSasl {
            mechanism: Some("SCRAM-SHA-256".into()),
            username: Some("u".into()),
            password: Some("pw12".into()),
            ..Default::default()
        };
        let s = Security::from_raw(None, Some(&sasl)).unwrap();
        assert_eq!(key(&s, "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"), Some("sink.kafka.sasl.password".into()));
        assert_eq!(key(&s, "Unsupported SASL mechanism: broker's supported mechanisms: PLAIN"), Some("sink.kafka.sasl.mechanism".into()));
    }
}
