//! Credentials a run started over HTTP may use, and where they may go.
//!
//! A request may not name the server's secret files or `${NAME}` (`confine.rs`); it uses the
//! server's credentials by name instead: `spate serve --profile NAME=FILE` gives a partial
//! config (a Kafka cluster with SASL, a registry with a token, a Redis with a password, a
//! PostgreSQL URL) that a request picks with `profile: NAME`. Runs start from the base config,
//! the chosen profile over it, the request over both.
//!
//! A credential of the server's config goes only to the destinations it was written with: when
//! the merged config holds a secret the request did not send itself (under `sink.kafka`,
//! `avro.schema_registry`, `redis`, ...), every destination of that section must be one the
//! server's config (base and profile) names for it. Otherwise a request could keep the
//! server's SASL password and point the brokers at a listener of its own, which the allowlist
//! alone would let through on loopback.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;

use serde_yaml_ng::Value;
use spate_engine::config::walk::{self, Kind};
use spate_engine::config::Destination;
use spate_engine::{ConfigError, RawConfig, RunConfig};

/// A config the operator wrote (the base, or the base with a profile over it), checked.
pub(crate) struct Trusted {
    pub tree: Value,
    destinations: Vec<Destination>,
}

impl Trusted {
    fn new(tree: Value, cfg: &RunConfig, key: &str) -> Result<Trusted, ConfigError> {
        let destinations = cfg.destinations().map_err(|u| {
            ConfigError::new(key, format!("{}: {}", u.key, u.why), "correct the address")
        })?;
        Ok(Trusted { tree, destinations })
    }

    /// Every destination this config names (the allowlist takes them as allowed).
    pub(crate) fn destinations(&self) -> &[Destination] {
        &self.destinations
    }
}

/// The base config and the named profiles over it.
pub(crate) struct Profiles {
    base: Trusted,
    named: BTreeMap<String, Trusted>,
}

const FLAG: &str = "--profile";

impl Profiles {
    /// From the checked base config and `--profile NAME=FILE` values; each profile over the base
    /// must make a valid config, checked now rather than at the first request.
    pub(crate) fn load(
        base: &RawConfig,
        checked: &RunConfig,
        flags: &[String],
    ) -> Result<Profiles, ConfigError> {
        let mut named = BTreeMap::new();
        for f in flags {
            let fix = "write --profile NAME=FILE, NAME of letters, digits, - and _, FILE a YAML config holding the settings it grants";
            let Some((name, file)) = f.split_once('=') else {
                return Err(ConfigError::new(FLAG, format!("`{f}` has no `=`"), fix));
            };
            let ok = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
            if name.is_empty() || !name.chars().all(ok) {
                return Err(ConfigError::new(FLAG, format!("`{name}` is not a profile name"), fix));
            }
            if named.contains_key(name) {
                return Err(ConfigError::new(FLAG, format!("`{name}` is given twice"), fix));
            }
            let key = format!("{FLAG} {name}");
            let layer = RawConfig::from_file(&PathBuf::from(file)).map_err(|e| within(&key, e))?;
            let tree = spate_engine::config::merge(base.tree(), layer.tree());
            let cfg = RawConfig::from_tree(tree.clone())
                .and_then(|r| r.validate())
                .map_err(|e| within(&key, e))?;
            named.insert(name.to_string(), Trusted::new(tree, &cfg, &key)?);
        }
        Ok(Profiles { base: Trusted::new(base.tree(), checked, "--config")?, named })
    }

    /// Every config a run may start from: the base and each profile.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Trusted> {
        std::iter::once(&self.base).chain(self.named.values())
    }

    /// Takes `profile: NAME` out of a request body and gives the config it starts from.
    pub(crate) fn select(&self, body: &mut Value) -> Result<&Trusted, ConfigError> {
        let asked = body.as_mapping_mut().and_then(|m| m.remove("profile"));
        let Some(asked) = asked else { return Ok(&self.base) };
        let names: Vec<&str> = self.named.keys().map(String::as_str).collect();
        let fix = if names.is_empty() {
            "this server has no profiles (spate serve --profile NAME=FILE); leave `profile` out"
                .to_string()
        } else {
            format!("name one of this server's profiles: {}", names.join(", "))
        };
        let Some(name) = asked.as_str() else {
            return Err(ConfigError::new("profile", "is not a name", fix));
        };
        self.named.get(name).ok_or_else(|| {
            let shown: String = name.chars().take(64).collect();
            ConfigError::new("profile", format!("`{shown}` is not a profile of this server"), fix)
        })
    }
}

/// Puts the profile's name in front of an error in its file.
fn within(key: &str, e: ConfigError) -> ConfigError {
    ConfigError::new(key, e.to_string(), "correct the profile's file")
}

/// Refuses a run whose config would send a credential it did not bring (one of the server's)
/// to a destination the server's config does not name for it.
pub(crate) fn check_bound(
    trusted: &Trusted,
    request: &Value,
    merged: &Value,
    cfg: &RunConfig,
) -> Result<(), ConfigError> {
    let mut borrowed: Vec<String> = Vec::new();
    let mut tree = merged.clone();
    let _ = walk::visit(&mut tree, &mut |key, kind, _| {
        if kind != Kind::DataPath && !sets(request, key) {
            borrowed.push(key.to_string());
        }
        Ok::<(), Infallible>(())
    });
    // librdkafka passthrough options whose names say they hold a secret.
    for at in ["sink.kafka.options", "kafka.options"] {
        if let Some(opts) = get(merged, at).and_then(Value::as_mapping) {
            for k in opts.keys().filter_map(Value::as_str) {
                let key = format!("{at}.{k}");
                if crate::redact::secret_option(k)
                    && get(request, at).and_then(|o| o.get(k)).is_none()
                {
                    borrowed.push(key);
                }
            }
        }
    }
    if borrowed.is_empty() {
        return Ok(());
    }
    let dests =
        cfg.destinations().map_err(|u| ConfigError::new(u.key, u.why, "correct the address"))?;
    for d in &dests {
        let section = d.key.rsplit_once('.').map_or(d.key, |(s, _)| s);
        let Some(secret) = borrowed.iter().find(|k| covers(k, section)) else { continue };
        if trusted.destinations.contains(d) {
            continue;
        }
        let given: Vec<String> = trusted
            .destinations
            .iter()
            .filter(|t| t.key == d.key)
            .map(ToString::to_string)
            .collect();
        let given = if given.is_empty() { "no destination".to_string() } else { given.join(", ") };
        return Err(ConfigError::new(
            d.key,
            format!(
                "`{d}` would receive the server's credential `{secret}`, which its config gives for {given} only"
            ),
            format!(
                "leave `{}` as the server's config has it, use a profile made for this destination, or send a credential of your own",
                d.key
            ),
        ));
    }
    Ok(())
}

/// Whether the credential at `secret` (a dotted path) is sent to the destinations of `section`.
fn covers(secret: &str, section: &str) -> bool {
    // The deprecated top-level `kafka:` section configures the Kafka sink.
    let secret = match secret.strip_prefix("kafka.") {
        Some(rest) => format!("sink.kafka.{rest}"),
        None => secret.to_string(),
    };
    secret.starts_with(&format!("{section}.")) || section.starts_with(&format!("{secret}."))
}

/// Whether `tree` has a value at the dotted `path` (`a.b[2].c`).
fn sets(tree: &Value, path: &str) -> bool {
    get(tree, path).is_some()
}

fn get<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
    let mut at = tree;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        at = at.get(name)?;
        if let Some(i) = index {
            at = at.get(i)?;
        }
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_and_paths() {
        assert!(covers("sink.kafka.sasl.password_file", "sink.kafka"));
        assert!(covers("kafka.sasl.password", "sink.kafka"));
        assert!(covers("sink", "sink.postgres"));
        assert!(!covers("redis.password", "sink.kafka"));
        assert!(!covers("sink.kafka.sasl.password", "sink.kafkax"));
        let t: Value = serde_yaml_ng::from_str("a: {b: [{c: 1}, {d: 2}]}").unwrap();
        assert!(sets(&t, "a.b[1].d"));
        assert!(!sets(&t, "a.b[0].d"));
        assert!(!sets(&t, "a.x"));
    }
}
