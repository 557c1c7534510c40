//! Keeping a config's secrets out of everything control shows: status documents, start and stop
//! answers, error messages, the run summary.
//!
//! The config's types say which values are secret (`SecretText`, the password of a `SecretUrl`;
//! `spate_engine::config::walk`), and those print masked already. What the types cannot know:
//! librdkafka passthrough options (`sink.kafka.options`) whose names say they hold a secret
//! (`sasl.oauthbearer.config`), and a password in any other URL (a tracing collector's). Every
//! such value is then masked wherever else it appears: in a librdkafka error quoting an option, in
//! a topic name, in another URL. One mask everywhere: `<redacted>`.

use serde_json::{Map, Value};
use spate_core::secret::REDACTED;
use spate_engine::{ConfigError, RawConfig};

/// Shortest value masked wherever it appears: a shorter one would garble unrelated text (and
/// is no secret). It is still masked under its own key.
const MIN_SCRUB: usize = 4;

/// Whether a librdkafka property name names a secret.
pub(crate) fn secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "credential", "jaas", "private"]
        .iter()
        .any(|w| k.contains(w))
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
        Self::of_tree(&raw.tree())
    }

    /// The secrets of a config tree (a request body before it is read, or a merged config).
    pub fn of_tree(tree: &serde_yaml_ng::Value) -> Secrets {
        let mut values = spate_engine::config::walk::secrets_in(tree);
        let json = serde_json::to_value(tree).unwrap_or(Value::Null);
        options(&json, &mut |v| values.push(v.to_string()));
        strings(&json, &mut |s| {
            if s.contains("://") {
                s.split(' ').for_each(|w| url_password(w, &mut values));
            }
        });
        values.retain(|s| s.len() >= MIN_SCRUB && s != REDACTED);
        values.sort_by_key(|s| std::cmp::Reverse(s.len()));
        values.dedup();
        Secrets { values }
    }

    /// The config as it may be shown: typed secrets print masked; secret librdkafka options and
    /// every known secret elsewhere are masked too.
    pub fn config(&self, raw: &RawConfig) -> Value {
        let mut v = serde_json::to_value(raw).unwrap_or(Value::Null);
        mask_options(&mut v);
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
        let mut out = if s.contains("://") {
            s.split(' ').map(spate_core::conf::mask_url_password).collect::<Vec<_>>().join(" ")
        } else {
            s.to_string()
        };
        for secret in &self.values {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        out
    }
}

/// The values of secret-named librdkafka options (`sink.kafka.options`).
fn options(v: &Value, found: &mut dyn FnMut(&str)) {
    let opts = v.pointer("/sink/kafka/options").and_then(Value::as_object);
    for (k, val) in opts.into_iter().flatten() {
        if secret_option(k) {
            if let Some(s) = val.as_str() {
                found(s);
            }
        }
    }
}

fn mask_options(v: &mut Value) {
    if let Some(opts) = v.pointer_mut("/sink/kafka/options").and_then(Value::as_object_mut) {
        for (k, val) in opts.iter_mut() {
            if secret_option(k) {
                *val = Value::String(REDACTED.into());
            }
        }
    }
}

fn strings(v: &Value, f: &mut dyn FnMut(&str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, f)),
        Value::Object(m) => m.values().for_each(|x| strings(x, f)),
        _ => {}
    }
}

/// The password of a URL's user info (`user:password@`), never a user name alone.
fn url_password(url: &str, found: &mut Vec<String>) {
    if let Some(p) = spate_core::conf::SecretUrl(url.to_string()).password() {
        found.push(p.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_options() {
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
            assert!(secret_option(k), "{k}");
        }
        for k in ["topic", "batch.size", "compression", "sasl.mechanism", "brokers"] {
            assert!(!secret_option(k), "{k}");
        }
    }

    #[test]
    fn masks_by_type_and_by_value() {
        let raw = RawConfig::from_yaml(
            "sink:\n  kafka:\n    topic: t-hunter22\n    key: source\n    options:\n      sasl.oauthbearer.config: \"clientSecret=hunter22 scope=x\"\n      batch.size: \"1000\"\n    sasl: {mechanism: PLAIN, username: u, password: hunter22}\nformat: avro\navro: {key_format: avro, schema_id: 1}\nredis:\n  url: redis://u:redispw9@h:6379\n  limit_key: k\ntracing:\n  endpoint: http://u:zipkinpw@127.0.0.1:9411/api/v2/spans\n",
        )
        .unwrap();
        let s = Secrets::of(&raw);
        let c = s.config(&raw);
        let text = c.to_string();
        for planted in ["hunter22", "redispw9", "zipkinpw"] {
            assert!(!text.contains(planted), "{planted} in {text}");
        }
        assert_eq!(c["sink"]["kafka"]["options"]["sasl.oauthbearer.config"], REDACTED);
        assert_eq!(c["sink"]["kafka"]["options"]["batch.size"], "1000");
        assert_eq!(c["sink"]["kafka"]["topic"], "t-<redacted>");
        assert_eq!(c["sink"]["kafka"]["key"], "source", "spate's own `key` settings are shown");
        assert_eq!(c["avro"]["key_format"], "avro", "a word that is no secret stays");
        assert_eq!(c["redis"]["limit_key"], "k");
        assert_eq!(c["tracing"]["endpoint"], "http://u:<redacted>@127.0.0.1:9411/api/v2/spans");
        assert_eq!(
            s.text("librdkafka: bad value clientSecret=hunter22 scope=x"),
            "librdkafka: bad value <redacted>"
        );
        assert_eq!(
            s.text("cannot reach redis://u:redispw9@h:6379: refused"),
            "cannot reach redis://u:<redacted>@h:6379: refused"
        );
        assert_eq!(
            s.text("the avro section applies to format: avro only"),
            "the avro section applies to format: avro only"
        );
    }

    #[test]
    fn user_names_are_not_secrets() {
        let raw =
            RawConfig::from_yaml("sink: 'postgres://spateuser@127.0.0.1:5432/db?table=t'").unwrap();
        let s = Secrets::of(&raw);
        assert_eq!(
            s.text("cannot reach postgres://spateuser@127.0.0.1:5432/db"),
            "cannot reach postgres://spateuser@127.0.0.1:5432/db"
        );
    }
}
