//! The config's JSON Schema, derived from the types (schemars), and walks over a config tree by
//! it. A value's kind comes from its type's schema mark (`x-spate-kind`, see
//! `spate_core::conf`), never from its key's name: a new key of type `DataPath` is confined to
//! `--data-dir`, one of type `SecretFile` refused from requests, one of type `SecretText` masked,
//! with no list to keep up to date.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value as Json;
use serde_yaml_ng::Value;

use spate_core::conf::KIND;

use super::raw::RawConfig;

/// What a marked value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file spate writes or reads as data.
    DataPath,
    /// A file holding a secret or a key.
    SecretFile,
    /// A password or token.
    Secret,
    /// A URL that may carry a password.
    SecretUrl,
}

impl Kind {
    fn of(mark: &str) -> Option<Kind> {
        match mark {
            "data-path" => Some(Kind::DataPath),
            "secret-file" => Some(Kind::SecretFile),
            "secret" => Some(Kind::Secret),
            "secret-url" => Some(Kind::SecretUrl),
            _ => None,
        }
    }
}

/// The JSON Schema of [`RawConfig`] (draft 2020-12), made once.
pub fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        serde_json::to_value(schemars::schema_for!(RawConfig)).expect("a schema serializes")
    })
}

/// Follows `$ref`s to `#/$defs/...` within the root schema.
fn resolve<'a>(root: &'a Json, mut node: &'a Json) -> &'a Json {
    for _ in 0..16 {
        match node.get("$ref").and_then(Json::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(ptr) => match root.pointer(ptr) {
                Some(n) => node = n,
                None => return node,
            },
            None => return node,
        }
    }
    node
}

/// Calls `f(path, kind, value)` for every string of `tree` whose schema is marked, with its
/// dotted path (`sink.kafka.dlq_file`, `templates.NAME...`, list items as `key[i]`). `f` may
/// rewrite the value. Stops at the first error `f` returns.
pub fn visit<E>(
    tree: &mut Value,
    f: &mut dyn FnMut(&str, Kind, &mut Value) -> Result<(), E>,
) -> Result<(), E> {
    let root = schema();
    let mut seen = BTreeSet::new();
    walk(root, root, tree, &mut String::new(), f, &mut seen, 0)
}

fn walk<E>(
    root: &Json,
    node: &Json,
    v: &mut Value,
    path: &mut String,
    f: &mut dyn FnMut(&str, Kind, &mut Value) -> Result<(), E>,
    seen: &mut BTreeSet<String>,
    depth: usize,
) -> Result<(), E> {
    if depth > 64 {
        return Ok(());
    }
    let node = resolve(root, node);
    if let Some(kind) = node.get(KIND).and_then(Json::as_str).and_then(Kind::of) {
        if matches!(v, Value::String(_)) && seen.insert(path.clone()) {
            f(path, kind, v)?;
        }
        return Ok(());
    }
    for alts in ["anyOf", "oneOf", "allOf"] {
        for alt in node.get(alts).and_then(Json::as_array).into_iter().flatten() {
            walk(root, alt, v, path, f, seen, depth + 1)?;
        }
    }
    match v {
        Value::Mapping(m) => {
            let props = node.get("properties").and_then(Json::as_object);
            let extra = node.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in m.iter_mut() {
                let Some(key) = k.as_str() else { continue };
                // The deprecated top-level `kafka:` section is read as the Kafka sink's: walked
                // by the same schema, so its paths and secrets are found too.
                let legacy = (depth == 0 && key == "kafka")
                    .then(|| root.pointer("/$defs/RawKafka"))
                    .flatten();
                let Some(sub) = props.and_then(|p| p.get(key)).or(legacy).or(extra) else {
                    continue;
                };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                walk(root, sub, child, path, f, seen, depth + 1)?;
                path.truncate(len);
            }
        }
        Value::Sequence(items) => {
            if let Some(sub) = node.get("items").filter(|i| i.is_object()) {
                for (i, child) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(root, sub, child, path, f, seen, depth + 1)?;
                    path.truncate(len);
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every marked key the schema has, with its kind: `*` stands for a map's keys and `[]` for a
/// list's items (e.g. `sink.kafka.dlq_file`, `redis.tls.ca_file`). Tests enumerate them.
pub fn marked_keys() -> Vec<(String, Kind)> {
    let root = schema();
    let mut out = BTreeSet::new();
    collect(root, root, &mut String::new(), &mut out, &mut Vec::new());
    out.into_iter().map(|(p, k)| (p, Kind::of(&k).expect("collected marks are kinds"))).collect()
}

fn collect(
    root: &Json,
    node: &Json,
    path: &mut String,
    out: &mut BTreeSet<(String, String)>,
    refs: &mut Vec<String>,
) {
    if let Some(r) = node.get("$ref").and_then(Json::as_str) {
        if refs.iter().any(|x| x == r) || refs.len() > 32 {
            return;
        }
        refs.push(r.to_string());
        collect(root, resolve(root, node), path, out, refs);
        refs.pop();
        return;
    }
    if let Some(kind) = node.get(KIND).and_then(Json::as_str) {
        out.insert((path.clone(), kind.to_string()));
        return;
    }
    for alts in ["anyOf", "oneOf", "allOf"] {
        for alt in node.get(alts).and_then(Json::as_array).into_iter().flatten() {
            collect(root, alt, path, out, refs);
        }
    }
    let sub = |name: &str,
               node: &Json,
               path: &mut String,
               out: &mut BTreeSet<(String, String)>,
               refs: &mut Vec<String>| {
        let len = path.len();
        if !path.is_empty() && !name.starts_with('[') {
            path.push('.');
        }
        path.push_str(name);
        collect(root, node, path, out, refs);
        path.truncate(len);
    };
    if let Some(props) = node.get("properties").and_then(Json::as_object) {
        for (k, n) in props {
            sub(k, n, path, out, refs);
        }
    }
    if let Some(n) = node.get("additionalProperties").filter(|a| a.is_object()) {
        sub("*", n, path, out, refs);
    }
    if let Some(n) = node.get("items").filter(|i| i.is_object()) {
        sub("[]", n, path, out, refs);
    }
}

/// The secrets a config tree holds, to mask in messages: every `SecretText` value (its
/// `${NAME}` references expanded when set) and the password of every `SecretUrl`.
pub fn secrets_in(tree: &Value) -> Vec<String> {
    let mut t = tree.clone();
    let mut out = Vec::new();
    let _ = visit::<()>(&mut t, &mut |_, kind, v| {
        let Some(s) = v.as_str() else { return Ok(()) };
        let mut push = |s: &str| {
            if !s.is_empty() {
                out.push(s.to_string());
                if let Ok(x) = spate_core::secret::expand(s, "") {
                    if x != s && !x.is_empty() {
                        out.push(x);
                    }
                }
            }
        };
        match kind {
            Kind::Secret => push(s),
            Kind::SecretUrl => {
                if let Some(p) = spate_core::conf::SecretUrl(s.to_string()).password() {
                    push(p);
                }
            }
            Kind::DataPath | Kind::SecretFile => {}
        }
        Ok(())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_marks_every_path_and_secret() {
        let keys = marked_keys();
        let has = |p: &str, k: Kind| keys.iter().any(|(q, j)| q == p && *j == k);
        for p in ["sink.file.path", "sink.kafka.dlq_file", "sink.postgres.dlq_file", "schema"] {
            assert!(has(p, Kind::DataPath), "{p} in {keys:?}");
        }
        for p in [
            "sink.kafka.tls.ca_file",
            "sink.kafka.sasl.password_file",
            "redis.password_file",
            "redis.tls.key_file",
        ] {
            assert!(has(p, Kind::SecretFile), "{p} in {keys:?}");
        }
        for p in ["sink.kafka.sasl.password", "redis.password"] {
            assert!(has(p, Kind::Secret), "{p} in {keys:?}");
        }
        assert!(has("sink.postgres.url", Kind::SecretUrl), "{keys:?}");
    }

    #[test]
    fn visits_marked_values_with_their_path() {
        let mut t = super::super::parse("sink: 'postgres://u:pw@h/db?dlq_file=/x/d.jsonl'\nredis: {password: s3, tls: {ca_file: /ca.pem}}")
            .unwrap();
        let mut seen = Vec::new();
        visit::<()>(&mut t, &mut |p, k, _| {
            seen.push((p.to_string(), k));
            Ok(())
        })
        .unwrap();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                ("redis.password".to_string(), Kind::Secret),
                ("redis.tls.ca_file".to_string(), Kind::SecretFile),
                ("sink.postgres.dlq_file".to_string(), Kind::DataPath),
                ("sink.postgres.url".to_string(), Kind::SecretUrl),
            ]
        );
        let secrets = secrets_in(&t);
        assert!(
            secrets.contains(&"pw".to_string()) && secrets.contains(&"s3".to_string()),
            "{secrets:?}"
        );
    }
}
