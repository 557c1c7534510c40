//! The run configuration: one tree of settings.
//!
//! - `layer.rs`: each source of settings (a file, a request body, the command line) is a YAML
//!   tree; they are merged into one ([`layer::merge`], [`layer::Flags`]), older forms moved into
//!   place, then deserialized once into [`RawConfig`], which refuses unknown keys;
//! - `validate.rs`: [`RawConfig::validate`] checks every value and builds the typed
//!   [`RunConfig`] the engine never checks again; a problem is one [`ConfigError`] naming the
//!   key and the fix, never a silent correction;
//! - `walk.rs`: the config's JSON Schema (derived from these types) and walks over a tree by it:
//!   which values are data paths, secret files, secrets;
//! - `reference.rs`: the key reference (`spate config reference`, `docs/config.md`), generated
//!   from the same schema and the types' doc comments;
//! - `nesting.rs`: deep documents refused before parsing;
//! - `destinations.rs`: every host a checked config connects to (for `spate serve`'s allowlist).
//!
//! Each section's types live with the component that reads them: `sink:` in `sink/config.rs`
//! (and each sink's folder), `redis:` in spate-limit, `templates` in spate-gen, `avro:` in
//! `avro/config.rs`, `tracing:` in `spans/config.rs`, `audit:` in `audit/`.

mod destinations;
mod layer;
mod nesting;
mod raw;
pub mod reference;
mod run_config;
mod validate;
pub mod walk;

use std::path::Path;

use serde_yaml_ng::Value;

use spate_core::ConfigError;

pub use destinations::{split_host_port, Destination, Unreadable};
pub use layer::{merge, normalize, parse, set_path, FlagSetting, Flags, Target};
pub use nesting::{check_nesting, check_values, MAX_NESTING, MAX_REQUEST_VALUES};
pub use raw::{RawConfig, RawRate, SourceTree};
pub use run_config::{Backpressure, RunConfig};
pub use spate_core::duration::{parse_duration, parse_duration_or_zero};
pub use validate::parse_rate;

impl RawConfig {
    /// Parses one YAML (or JSON) document. Errors name the key's path. A document nested deeper
    /// than [`MAX_NESTING`] is refused before parsing.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        layer::finish(layer::parse(text)?)
    }

    /// Reads and parses a config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        Self::from_yaml(&read_file(path)?)
    }

    /// The file (if any) with the command line's flags laid over it: the one merge.
    pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Self, ConfigError> {
        let below = match file {
            Some(p) => layer::parse(&read_file(p)?)?,
            None => Value::Null,
        };
        layer::finish(flags.apply(below)?)
    }

    /// A config from a merged tree (layers parsed with [`parse`] and laid with [`merge`]).
    pub fn from_tree(tree: Value) -> Result<Self, ConfigError> {
        layer::finish(tree)
    }

    /// The tree this config was read from, or (built in code) its serialized form (read through
    /// JSON's data model, so the sink is a key, not a YAML tag; unset keys left out).
    pub fn tree(&self) -> Value {
        match &self.source {
            Some(t) => t.0.clone(),
            None => {
                let mut json = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
                if let serde_json::Value::Object(m) = &mut json {
                    m.retain(|_, v| !v.is_null());
                }
                serde_yaml_ng::to_value(json).unwrap_or(Value::Null)
            }
        }
    }
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            "--config",
            format!("cannot read `{}`: {e}", path.display()),
            "give the path of a readable YAML file",
        )
    })
}

#[cfg(test)]
mod tests;
