//! The `sink.kafka.tls` and `sink.kafka.sasl` sections, checked into [`Security`], and the
//! librdkafka properties they set.

use std::path::PathBuf;

use rdkafka::config::ClientConfig;
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
    /// CA bundle (PEM) that signed the brokers' certificates; None: the system's store.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM), for mTLS.
    pub cert_file: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    pub key_file: Option<PathBuf>,
    /// Passphrase of an encrypted `key_file`.
    pub key_password: Option<Secret>,
    /// Check that the broker's certificate names the host connected to.
    pub verify_hostname: bool,
}

/// Validated SASL settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "mechanism")]
pub enum Sasl {
    /// SASL PLAIN with a user and its password.
    #[serde(rename = "PLAIN")]
    Plain {
        /// The SASL user.
        username: String,
        /// The user's password.
        password: Secret,
    },
    /// SCRAM with a user and its password: SHA-512 when `sha512`, else SHA-256.
    #[serde(rename = "SCRAM")]
    Scram {
        /// SCRAM-SHA-512; false: SCRAM-SHA-256.
        sha512: bool,
        /// The SASL user.
        username: String,
        /// The user's password.
        password: Secret,
    },
    /// OAUTHBEARER with OIDC client credentials.
    #[serde(rename = "OAUTHBEARER")]
    Oauth {
        /// The token endpoint (https URL).
        token_endpoint: String,
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Secret,
        /// Scopes to ask for, if any.
        scope: Option<String>,
    },
}

impl Sasl {
    /// The mechanism's name, as librdkafka's `sasl.mechanism` writes it.
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
    /// TLS settings; None: no TLS.
    pub tls: Option<Tls>,
    /// SASL authentication, if any.
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
    /// Checks the `tls` and `sasl` sections as written.
    pub fn from_raw(tls: Option<&RawTls>, sasl: Option<&RawSasl>) -> Result<Self, ConfigError> {
        Ok(Security {
            tls: tls.map(Tls::from_raw).transpose()?.flatten(),
            sasl: sasl.map(Sasl::from_raw).transpose()?,
        })
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
            c.set(
                "ssl.endpoint.identification.algorithm",
                if t.verify_hostname { "https" } else { "none" },
            );
            c.set("enable.ssl.certificate.verification", "true");
        }
        match &self.sasl {
            None => {}
            Some(
                s @ (Sasl::Plain { username, password } | Sasl::Scram { username, password, .. }),
            ) => {
                c.set("sasl.mechanism", s.mechanism())
                    .set("sasl.username", username)
                    .set("sasl.password", password.expose());
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
            let user =
                secret::expand(r.username.as_deref().unwrap_or(""), "sink.kafka.sasl.username")?;
            if user.is_empty() {
                return Err(ConfigError::new(
                    "sink.kafka.sasl.username",
                    "no SASL user name",
                    "set sink.kafka.sasl.username (--kafka-sasl-username)",
                ));
            }
            let pw = secret::resolve(
                r.password.as_ref().map(|p| p.0.as_str()),
                r.password_file.as_ref().map(SecretFile::path),
                "sink.kafka.sasl.password",
                "sink.kafka.sasl.password_file",
            )?
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
