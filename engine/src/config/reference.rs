//! The key reference: every key of the config tree with its type and its doc comment, as a
//! Markdown page (`spate config reference`, committed as `docs/config.md`; a test fails when the
//! committed page differs from what the types give).

use std::fmt::Write as _;

use serde_json::Value as Json;

use spate_core::conf::KIND;

use super::walk::schema;

/// The page.
pub fn markdown() -> String {
    let root = schema();
    let mut rows = Vec::new();
    section(root, root, "", &mut rows, &mut Vec::new());
    let mut out = String::from(
        "# Configuration reference\n\n\
         Every key of a run's config: a YAML (or JSON) file (`--config`), a `POST /v1/start` body, or\n\
         the flags of `spate run` (which set the same keys). Unknown keys are refused; a bad value is\n\
         one message naming its key and the fix. Durations are written `250ms`, `30s`, `5m`, `1h` (or a\n\
         number of seconds); sizes `1048576`, `64KiB`, `256MiB`. Paths marked *data path* are confined\n\
         to `spate serve --data-dir` for runs started over HTTP; *secret file* paths and `${NAME}`\n\
         references may only come from the server's own config.\n\n\
         Generated from the config types by `spate config reference`; do not edit by hand.\n\n\
         | key | type | meaning |\n|---|---|---|\n",
    );
    for (key, ty, doc) in rows {
        let _ =
            writeln!(out, "| `{key}` | {ty} | {} |", doc.replace('\n', " ").replace('|', "\\|"));
    }
    out
}

fn resolve<'a>(root: &'a Json, node: &'a Json) -> &'a Json {
    match node
        .get("$ref")
        .and_then(Json::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|p| root.pointer(p))
    {
        Some(n) => resolve(root, n),
        None => node,
    }
}

fn description(root: &Json, node: &Json) -> String {
    node.get("description")
        .or_else(|| resolve(root, node).get("description"))
        .and_then(Json::as_str)
        .unwrap_or("")
        .trim()
        .to_string()
}

/// A short name of a node's type.
fn type_name(root: &Json, node: &Json) -> String {
    let node = resolve(root, node);
    if let Some(kind) = node.get(KIND).and_then(Json::as_str) {
        return match kind {
            "data-path" => "data path",
            "secret-file" => "secret file",
            "secret" => "secret",
            "secret-url" => "URL (password masked)",
            other => other,
        }
        .to_string();
    }
    if let Some(values) = node.get("enum").and_then(Json::as_array) {
        return values
            .iter()
            .map(|v| format!("`{}`", v.as_str().map_or(v.to_string(), str::to_string)))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    if let Some(c) = node.get("const") {
        return format!("`{}`", c.as_str().map_or(c.to_string(), str::to_string));
    }
    match node.get("format").and_then(Json::as_str) {
        Some("duration") => return "duration".into(),
        Some("byte-size") => return "size".into(),
        _ => {}
    }
    for alts in ["anyOf", "oneOf"] {
        if let Some(a) = node.get(alts).and_then(Json::as_array) {
            let mut names: Vec<String> =
                a.iter().map(|x| type_name(root, x)).filter(|n| n != "null").collect();
            names.dedup();
            return names.join(" or ");
        }
    }
    let types: Vec<&str> = match node.get("type") {
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => {
            ts.iter().filter_map(Json::as_str).filter(|t| *t != "null").collect()
        }
        _ => Vec::new(),
    };
    let mut names: Vec<String> = types
        .iter()
        .map(|t| match *t {
            "object" if node.get("additionalProperties").is_some_and(Json::is_object) => {
                format!("map of {}", type_name(root, &node["additionalProperties"]))
            }
            "object" => "table".to_string(),
            "array" => match node.get("items") {
                Some(i) => format!("list of {}", type_name(root, i)),
                None => "list".to_string(),
            },
            other => other.to_string(),
        })
        .collect();
    names.dedup();
    if names.is_empty() {
        "any".to_string()
    } else {
        names.join(" or ")
    }
}

/// Rows for the properties of `node` (an object schema) under `prefix`.
fn section(
    root: &Json,
    node: &Json,
    prefix: &str,
    rows: &mut Vec<(String, String, String)>,
    refs: &mut Vec<String>,
) {
    let node = resolve(root, node);
    if let Some(props) = node.get("properties").and_then(Json::as_object) {
        for (k, sub) in props {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            let mut doc = description(root, sub);
            if doc.is_empty() {
                doc = description(root, node);
            }
            rows.push((key.clone(), type_name(root, sub), doc));
            descend(root, sub, &key, rows, refs);
        }
    }
}

/// Into a property's own tables: objects, the object alternatives of `anyOf`/`oneOf` (an
/// `Option`, the sink's kinds), maps' values and lists' items.
fn descend(
    root: &Json,
    node: &Json,
    key: &str,
    rows: &mut Vec<(String, String, String)>,
    refs: &mut Vec<String>,
) {
    if let Some(r) = node.get("$ref").and_then(Json::as_str) {
        if refs.iter().any(|x| x == r) {
            return;
        }
        refs.push(r.to_string());
        descend(root, resolve(root, node), key, rows, refs);
        refs.pop();
        return;
    }
    for alts in ["anyOf", "oneOf"] {
        for alt in node.get(alts).and_then(Json::as_array).into_iter().flatten() {
            let alt_r = resolve(root, alt);
            // A kind of a tagged enum: one property, the variant's doc on the wrapper.
            match alt_r.get("properties").and_then(Json::as_object) {
                Some(p) if p.len() == 1 && alt_r.get("required").is_some() => {
                    let (k, sub) = p.iter().next().expect("one property");
                    let sub_key = format!("{key}.{k}");
                    let doc = [description(root, alt_r), description(root, sub)]
                        .into_iter()
                        .find(|d| !d.is_empty())
                        .unwrap_or_default();
                    rows.push((sub_key.clone(), type_name(root, sub), doc));
                    descend(root, sub, &sub_key, rows, refs);
                }
                _ => descend(root, alt, key, rows, refs),
            }
        }
    }
    let node = resolve(root, node);
    if node.get("properties").is_some() {
        section(root, node, key, rows, refs);
    }
    if let Some(v) = node.get("additionalProperties").filter(|a| a.is_object()) {
        section(root, v, &format!("{key}.NAME"), rows, refs);
    }
    if let Some(i) = node.get("items").filter(|i| i.is_object()) {
        section(root, i, &format!("{key}[]"), rows, refs);
    }
}

#[cfg(test)]
mod tests {
    /// The committed page is what the types give: change a key or its doc comment, run
    /// `spate config reference > docs/config.md`.
    #[test]
    fn the_committed_reference_matches_the_types() {
        let committed =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md"))
                .unwrap_or_default();
        let now = super::markdown();
        if committed != now {
            let first = committed
                .lines()
                .zip(now.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(committed.lines().count().min(now.lines().count()));
            panic!(
                "docs/config.md differs from the config types at line {} (run `spate config reference > docs/config.md`):\n  committed: {:?}\n  types:     {:?}",
                first + 1,
                committed.lines().nth(first),
                now.lines().nth(first)
            );
        }
    }

    #[test]
    fn every_section_is_in_the_reference() {
        let page = super::markdown();
        for key in [
            "`rate`",
            "`sink.kafka.brokers`",
            "`sink.kafka.breaker.open_wait`",
            "`sink.postgres.commit_rows`",
            "`sink.tcp.framing`",
            "`sink.file.path`",
            "`redis.global_rate`",
            "`audit.url`",
            "`avro.schema_registry.url`",
            "`templates.NAME.fields[].name`",
        ] {
            assert!(page.contains(key), "{key} missing from:\n{page}");
        }
    }
}
