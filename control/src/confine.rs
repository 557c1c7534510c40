//! What a run config sent over HTTP may touch on this host. The API caller is not the operator:
//! a file sink or a dead-letter file it names is created or truncated with spate's rights, so
//! such paths must lie under `spate serve --data-dir` (relative ones are taken from it), and
//! librdkafka options that name files, libraries or commands are refused. The base config
//! (`--config`) is the operator's and is not checked.

use std::path::{Component, Path, PathBuf};

use spate_engine::kafka::RawKafka;
use spate_engine::{ConfigError, RawConfig};

/// Name of the default dead-letter file, kept under the data dir for runs started over HTTP.
const DEFAULT_DLQ: &str = "spate-dlq.jsonl";

/// Resolves the file paths of `body` under `data_dir` (rewriting them to the resolved absolute
/// path), or says which key names a path it may not use.
pub fn confine(body: &mut RawConfig, base: &RawConfig, data_dir: Option<&Path>) -> Result<(), ConfigError> {
    refuse_server_secrets(body)?;
    if let Some(path) = body.sink.as_deref().and_then(|s| s.strip_prefix("file:")).filter(|p| !p.is_empty()) {
        let path = resolve("sink", Path::new(path), data_dir)?;
        body.sink = Some(format!("file:{}", path.display()));
    }
    if let Some(k) = body.kafka.as_mut() {
        if let Some(p) = &k.dlq_file {
            k.dlq_file = Some(resolve("kafka.dlq_file", p, data_dir)?);
        }
        for key in k.options.iter().flat_map(|o| o.keys()) {
            if names_local_resource(key) {
                return Err(ConfigError::new(
                    format!("kafka.options.{key}"),
                    format!("`{key}` names a file, library or command on the server, which a run started over HTTP may not choose"),
                    "set it in the base config file (spate serve --config FILE) instead of the request",
                ));
            }
        }
    }
    // Without this a Kafka run would dead-letter into the server's working directory.
    let kafka_sink = body.sink.as_deref().or(base.sink.as_deref()) == Some("kafka");
    let dlq_set = [&body.kafka, &base.kafka].iter().any(|k| k.as_ref().is_some_and(|k| k.dlq_file.is_some()));
    if let (Some(dir), true, false) = (data_dir, kafka_sink, dlq_set) {
        body.kafka.get_or_insert_with(RawKafka::default).dlq_file = Some(dir.join(DEFAULT_DLQ));
    }
    Ok(())
}

/// Certificates, keys and secret files are files of the server, and `${NAME}` reads its
/// environment: a request naming either could send the server's secrets to a broker of its
/// choosing. They belong in the base config (`spate serve --config FILE`), which the request's
/// connection settings then leave alone.
fn refuse_server_secrets(body: &RawConfig) -> Result<(), ConfigError> {
    let fix = "set it in the base config file (spate serve --config FILE) instead of the request";
    let mut files: Vec<(&str, bool)> = Vec::new();
    if let Some(k) = &body.kafka {
        if let Some(t) = &k.tls {
            files.push(("kafka.tls.ca_file", t.ca_file.is_some()));
            files.push(("kafka.tls.cert_file", t.cert_file.is_some()));
            files.push(("kafka.tls.key_file", t.key_file.is_some()));
            files.push(("kafka.tls.key_password_file", t.key_password_file.is_some()));
        }
        if let Some(sasl) = &k.sasl {
            files.push(("kafka.sasl.password_file", sasl.password_file.is_some()));
            files.push(("kafka.sasl.oauth.client_secret_file", sasl.oauth.as_ref().is_some_and(|o| o.client_secret_file.is_some())));
        }
    }
    if let Some(r) = &body.redis {
        files.push(("redis.password_file", r.password_file.is_some()));
        if let Some(t) = &r.tls {
            files.push(("redis.tls.ca_file", t.ca_file.is_some()));
            files.push(("redis.tls.cert_file", t.cert_file.is_some()));
            files.push(("redis.tls.key_file", t.key_file.is_some()));
        }
    }
    if let Some((key, _)) = files.into_iter().find(|(_, set)| *set) {
        return Err(ConfigError::new(
            key,
            format!("`{key}` names a file on the server, which a run started over HTTP may not choose"),
            fix,
        ));
    }
    for (section, v) in [("kafka", serde_json::to_string(&body.kafka)), ("redis", serde_json::to_string(&body.redis))] {
        if v.is_ok_and(|t| t.contains("${")) {
            return Err(ConfigError::new(
                section,
                "a `${NAME}` reference to the server's environment, which a run started over HTTP may not read",
                fix,
            ));
        }
    }
    Ok(())
}

/// librdkafka properties that load code, run commands or read files of the server.
fn names_local_resource(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('_', ".");
    k.ends_with(".location") || k.ends_with(".cmd") || k.ends_with(".keytab") || k == "plugin.library.paths" || k == "ssl.providers"
}

/// `path` as an absolute path of a regular (or not yet existing) file under `data_dir`: no
/// `..`, its directory resolved through any symbolic links to one under `data_dir`, and not
/// itself a symbolic link.
fn resolve(key: &str, path: &Path, data_dir: Option<&Path>) -> Result<PathBuf, ConfigError> {
    let Some(dir) = data_dir else {
        return Err(ConfigError::new(
            key,
            format!("`{}` is a file on the server, and spate serve was started without --data-dir", path.display()),
            "start spate serve with --data-dir DIR to let runs started over HTTP write files under DIR",
        ));
    };
    let fix = || format!("give a path under {} (a relative path is taken from there), without `..` or symbolic links", dir.display());
    let refuse = |why: String| ConfigError::new(key, why, fix());
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(refuse(format!("`{}` contains `..`", path.display())));
    }
    let full = dir.join(path);
    let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
        return Err(refuse(format!("`{}` names no file", path.display())));
    };
    if !full.starts_with(dir) {
        return Err(refuse(format!("`{}` is outside the data directory {}", path.display(), dir.display())));
    }
    let parent = std::fs::canonicalize(parent).map_err(|e| refuse(format!("the directory of `{}` cannot be used: {e}", path.display())))?;
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
            return Err(refuse(format!("`{}` exists and is not a regular file (a link, directory or device)", path.display())));
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
        ] {
            assert!(names_local_resource(k), "{k}");
        }
        for k in ["batch.size", "sasl.password", "client.id", "linger.ms"] {
            assert!(!names_local_resource(k), "{k}");
        }
    }
}
