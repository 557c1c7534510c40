//! What a run config sent over HTTP may touch on this host. The API caller is not the operator:
//! a file it names is created or truncated with spate's rights, a file of secrets or a
//! `${NAME}` reference would send the server's secrets wherever the request points. The config's
//! types mark every such value (`spate_engine::config::walk`), so this walks the request body by
//! them, never by key names:
//! - a data path (a file sink, any sink's DLQ file, a schema) must lie under `spate serve
//!   --data-dir` (relative ones are taken from it), without `..` and not through a symbolic
//!   link; it is rewritten to the resolved absolute path;
//! - a secret file (CA, certificate, key, password and token files) is refused;
//! - `${NAME}` anywhere is refused;
//! - librdkafka options that name files, libraries, commands or URLs are refused.
//!
//! Where a run may connect is checked after validation (`allowlist.rs`).
//!
//! The base config (`--config`) is the operator's and is not checked.

use std::path::{Component, Path, PathBuf};

use serde_yaml_ng::Value;
use spate_engine::config::walk::{self, Kind};
use spate_engine::ConfigError;

/// Name of the default dead-letter file, kept under the data dir for runs started over HTTP.
const DEFAULT_DLQ: &str = "spate-dlq.jsonl";

const FIX: &str =
    "set it in the base config file (spate serve --config FILE) instead of the request";

/// Checks the request `body` (a parsed tree) and resolves its data paths under `data_dir`, or
/// says which key it may not use.
pub(crate) fn confine(body: &mut Value, data_dir: Option<&Path>) -> Result<(), ConfigError> {
    refuse_env(body, &mut String::new())?;
    walk::visit(body, &mut |key, kind, v| match kind {
        Kind::DataPath => {
            let p = v.as_str().unwrap_or_default().to_string();
            let resolved = resolve(key, Path::new(&p), data_dir)?;
            *v = Value::from(resolved.to_string_lossy().into_owned());
            Ok(())
        }
        Kind::SecretFile => Err(ConfigError::new(
            key,
            format!(
                "`{key}` names a file on the server, which a run started over HTTP may not choose"
            ),
            FIX,
        )),
        Kind::Secret | Kind::SecretUrl => Ok(()),
    })?;
    // Under the Kafka sink, or in the deprecated top-level `kafka:` section.
    let sections = [
        ("sink.kafka", body.get("sink").and_then(|s| s.get("kafka"))),
        ("kafka", body.get("kafka")),
    ];
    for (at, opts) in sections
        .iter()
        .filter_map(|(at, k)| Some((at, k.and_then(|k| k.get("options"))?.as_mapping()?)))
    {
        for key in opts.keys().filter_map(Value::as_str) {
            if names_local_resource(key) {
                return Err(ConfigError::new(
                    format!("{at}.options.{key}"),
                    format!("`{key}` names a file, library or command on the server, which a run started over HTTP may not choose"),
                    FIX,
                ));
            }
        }
    }
    Ok(())
}

/// For a run started over HTTP whose sink has a dead-letter file and none is set: the default
/// one under `data_dir`, not in the server's working directory. `merged` is the whole config.
pub(crate) fn default_dlq(merged: &mut Value, data_dir: Option<&Path>) {
    let Some(dir) = data_dir else { return };
    let Some(Value::Mapping(sink)) = merged.get_mut("sink") else { return };
    for kind in ["kafka", "postgres"] {
        if let Some(Value::Mapping(s)) = sink.get_mut(kind) {
            s.entry("dlq_file".into()).or_insert_with(|| {
                Value::from(dir.join(DEFAULT_DLQ).to_string_lossy().into_owned())
            });
        }
    }
}

/// `${NAME}` reads the server's environment: never from a request.
fn refuse_env(v: &Value, path: &mut String) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains("${") => Err(ConfigError::new(
            path.clone(),
            "a `${NAME}` reference to the server's environment, which a run started over HTTP may not read",
            FIX,
        )),
        Value::Mapping(m) => {
            for (k, child) in m {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k.as_str().unwrap_or("?"));
                refuse_env(child, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                refuse_env(child, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// librdkafka properties that load code, run commands, read files of the server or name a URL.
fn names_local_resource(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('_', ".");
    k.ends_with(".location")
        || k.ends_with(".cmd")
        // An OAUTHBEARER token endpoint is a destination the allowlist cannot see.
        || k.ends_with(".url")
        || k.ends_with(".keytab")
        || k == "plugin.library.paths"
        || k == "ssl.providers"
}

/// `path` as an absolute path of a regular (or not yet existing) file under `data_dir`: no
/// `..`, its directory resolved through any symbolic links to one under `data_dir`, and not
/// itself a symbolic link.
fn resolve(key: &str, path: &Path, data_dir: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let Some(dir) = data_dir else {
        return Err(ConfigError::new(
            key,
            format!("`{}` is a file on the server, and spate serve was started without --data-dir", path.display()),
            "start spate serve with --data-dir DIR to let runs started over HTTP use files under DIR",
        ));
    };
    let fix = || {
        format!("give a path under {} (a relative path is taken from there), without `..` or symbolic links", dir.display())
    };
    let refuse = |why: String| ConfigError::new(key, why, fix());
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(refuse(format!("`{}` contains `..`", path.display())));
    }
    let full = dir.join(path);
    let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
        return Err(refuse(format!("`{}` names no file", path.display())));
    };
    if !full.starts_with(dir) {
        return Err(refuse(format!(
            "`{}` is outside the data directory {}",
            path.display(),
            dir.display()
        )));
    }
    let parent = std::fs::canonicalize(parent).map_err(|e| {
        refuse(format!("the directory of `{}` cannot be used: {e}", path.display()))
    })?;
    if !parent.starts_with(dir) {
        return Err(refuse(format!(
            "`{}` leads to {} through a symbolic link, outside the data directory {}",
            path.display(),
            parent.display(),
            dir.display()
        )));
    }
    let full = parent.join(name);
    if let Ok(meta) = std::fs::symlink_metadata(&full) {
        if !meta.file_type().is_file() {
            return Err(refuse(format!(
                "`{}` exists and is not a regular file (a link, directory or device)",
                path.display()
            )));
        }
    }
    Ok(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_resources() {
        for k in [
            "plugin.library.paths",
            "ssl.key.location",
            "ssl_engine_location",
            "sasl.kerberos.kinit.cmd",
            "sasl.kerberos.keytab",
            "ssl.providers",
            "sasl.oauthbearer.token.endpoint.url",
        ] {
            assert!(names_local_resource(k), "{k}");
        }
        for k in ["batch.size", "sasl.password", "client.id", "linger.ms"] {
            assert!(!names_local_resource(k), "{k}");
        }
    }

    /// Every data path the schema knows is confined, and every secret file refused, by type:
    /// the list comes from the schema, so a new key cannot be forgotten here.
    #[test]
    fn every_marked_key_is_confined() {
        let dir = std::env::temp_dir().join(format!("spate-confine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = std::fs::canonicalize(&dir).unwrap();
        for (key, kind) in walk::marked_keys() {
            if key.contains('*')
                || key.contains("[]")
                || matches!(kind, Kind::Secret | Kind::SecretUrl)
            {
                continue;
            }
            let mut body = Value::Null;
            let path: Vec<&str> = key.split('.').collect();
            spate_engine::config::set_path(&mut body, &path, Value::from("/etc/outside.txt"));
            let e = confine(&mut body, Some(&dir)).expect_err(&key);
            assert_eq!(e.key, key, "{e}");
            if kind == Kind::DataPath {
                let mut body = Value::Null;
                spate_engine::config::set_path(&mut body, &path, Value::from("inside.txt"));
                confine(&mut body, Some(&dir)).unwrap_or_else(|e| panic!("{key}: {e}"));
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
