//! Keeping a config's secrets out of everything control shows: status documents, start and stop
//! answers, error messages, the run summary. Credentials ride in librdkafka options (SASL
//! passwords, the client secret inside `sasl.oauthbearer.config`) and in URLs (Redis, the
//! tracing collector). Values of keys that look secret are masked where the config is echoed;
//! then every such value, and every URL password, is masked wherever else it appears in the same
//! answer: in a librdkafka error quoting an option, in a topic name, in another URL.

use serde_json::{Map, Value};
use spate_engine::limit::redis::redact::redact as redact_url;
use spate_engine::{ConfigError, RawConfig};

pub const MASK: &str = "<redacted>";
/// Shortest value masked wherever it appears: a shorter one would garble unrelated text (and
/// is no secret). It is still masked under its own key.
const MIN_SCRUB: usize = 4;
/// Config keys of spate's own whose names contain `key` but hold no secret.
const PLAIN_KEYS: [&str; 2] = ["kafka.key", "redis.limit_key"];

/// Whether a config key (the last part of its path) names a secret.
pub fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "credential", "jaas", "private"].iter().any(|w| k.contains(w))
        || (k.starts_with("sasl.") && k.ends_with("config"))
        || k.starts_with("ssl.key")
        || k.split(['.', '_', '-']).any(|part| part == "key" || part == "apikey")
}

/// The secrets of one config, found once, applied to any answer about it.
#[derive(Default)]
pub struct Secrets {
    /// Longest first, so that a secret containing another is masked whole.
    values: Vec<String>,
}

impl Secrets {
    pub fn of(raw: &RawConfig) -> Secrets {
        let mut values = Vec::new();
        let mut v = serde_json::to_value(raw).unwrap_or(Value::Null);
        collect(&mut v, "", &mut values);
        // The engine serializes the Redis URL already masked, so its password is taken here.
        if let Some(url) = raw.redis.as_ref().and_then(|r| r.url.as_deref()) {
            url_secrets(url, &mut values);
        }
        values.retain(|s| s.len() >= MIN_SCRUB);
        values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        values.dedup();
        Secrets { values }
    }

    /// The config as it may be shown: secret keys masked, then every known secret.
    pub fn config(&self, raw: &RawConfig) -> Value {
        let mut v = serde_json::to_value(raw).unwrap_or(Value::Null);
        collect(&mut v, "", &mut Vec::new());
        self.scrub(&mut v);
        v
    }

    /// Masks URL passwords and every known secret in every string (and key) of `v`.
    pub fn scrub(&self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(a) => a.iter_mut().for_each(|x| self.scrub(x)),
            Value::Object(m) => self.scrub_map(m),
            _ => {}
        }
    }

    pub fn scrub_map(&self, m: &mut Map<String, Value>) {
        let old = std::mem::take(m);
        for (k, mut v) in old {
            self.scrub(&mut v);
            m.insert(self.text(&k), v);
        }
    }

    /// `e` with known secrets masked in its message and fix (librdkafka quotes refused values).
    pub fn error(&self, e: ConfigError) -> ConfigError {
        ConfigError::new(e.key, self.text(&e.message), self.text(&e.fix))
    }

    /// `s` with URL passwords and known secrets masked.
    pub fn text(&self, s: &str) -> String {
        let mut out = if s.contains("://") { s.split(' ').map(redact_url).collect::<Vec<_>>().join(" ") } else { s.to_string() };
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }
}

/// Masks the values of secret keys in place, gathering them (and URL passwords) into `found`.
fn collect(v: &mut Value, path: &str, found: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if secret_key(k) && !PLAIN_KEYS.contains(&p.as_str()) && !val.is_null() {
                    leaves(val, found);
                    *val = Value::String(MASK.into());
                } else {
                    collect(val, &p, found);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| collect(x, path, found)),
        Value::String(s) if s.contains("://") => s.split(' ').for_each(|w| url_secrets(w, found)),
        _ => {}
    }
}

/// Every scalar under `v`, as text.
fn leaves(v: &Value, found: &mut Vec<String>) {
    match v {
        Value::String(s) => found.push(s.clone()),
        Value::Number(n) => found.push(n.to_string()),
        Value::Array(a) => a.iter().for_each(|x| leaves(x, found)),
        Value::Object(m) => m.values().for_each(|x| leaves(x, found)),
        _ => {}
    }
}

/// The password of a URL's user info (or the lone user part, which Redis takes as one), and
/// `password=` query values.
fn url_secrets(url: &str, found: &mut Vec<String>) {
    let Some(i) = url.find("://") else { return };
    let rest = &url[i + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    if let Some((info, _)) = authority.rsplit_once('@') {
        found.push(info.split_once(':').map(|(_, pw)| pw).unwrap_or(info).to_string());
    }
    if let Some((_, query)) = rest.split_once('?') {
        for kv in query.split(['&', '#']) {
            if let Some((k, v)) = kv.split_once('=') {
                if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") {
                    found.push(v.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "sasl.password",
            "sasl.oauthbearer.config",
            "sasl.jaas.config",
            "ssl.key.pem",
            "ssl.keystore.password",
            "api_key",
            "client.secret",
            "token",
        ] {
            assert!(secret_key(k), "{k}");
        }
        for k in ["topic", "batch.size", "compression", "sasl.mechanism", "brokers"] {
            assert!(!secret_key(k), "{k}");
        }
    }

    #[test]
    fn masks_by_key_and_by_value() {
        let raw = RawConfig::from_yaml(
            "sink: kafka\nkafka:\n  topic: t-hunter22\n  key: source\n  options:\n    sasl.oauthbearer.config: \"clientSecret=hunter22 scope=x\"\n    sasl.password: hunter22\n    batch.size: \"1000\"\nredis:\n  url: redis://u:redispw9@h:6379\n  limit_key: k\ntracing:\n  endpoint: http://u:zipkinpw@127.0.0.1:9411/api/v2/spans\n",
        )
        .unwrap();
        let s = Secrets::of(&raw);
        let c = s.config(&raw);
        let text = c.to_string();
        for planted in ["hunter22", "redispw9", "zipkinpw"] {
            assert!(!text.contains(planted), "{planted} in {text}");
        }
        assert_eq!(c["kafka"]["options"]["sasl.oauthbearer.config"], MASK);
        assert_eq!(c["kafka"]["options"]["batch.size"], "1000");
        assert_eq!(c["kafka"]["topic"], "t-<redacted>");
        assert_eq!(c["kafka"]["key"], "source", "spate's own `key` settings are shown");
        assert_eq!(c["redis"]["limit_key"], "k");
        assert_eq!(c["tracing"]["endpoint"], "http://u:***@127.0.0.1:9411/api/v2/spans");
        assert_eq!(s.text("librdkafka: bad value clientSecret=hunter22 scope=x"), "librdkafka: bad value <redacted>");
        assert_eq!(s.text("cannot reach redis://u:redispw9@h:6379: refused"), "cannot reach redis://u:***@h:6379: refused");
    }
}
