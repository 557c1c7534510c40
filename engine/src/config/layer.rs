//! Layers of settings and the one merge that combines them.
//!
//! A config comes from up to three layers, each a YAML (or JSON) tree: the file (`--config`, or
//! `spate serve`'s base config), a request body (`POST /v1/start`), and the command line's
//! flags ([`Flags`]). Each is parsed into a `Value`, its `sink:` shorthand expanded into the
//! tagged form, and laid over the one below by [`merge`]: a key set above wins, tables merge key
//! by key, everything else (lists, the `sources` weights, a sink of another kind) is replaced
//! whole. Only then is the tree deserialized into [`RawConfig`], once, so every layer's mistakes
//! are reported the same way, with the key's full path.
//!
//! Older forms are moved into place here, each with a deprecation note: the top-level `kafka:`
//! section goes under `sink: {kafka: ...}` (and its `breaker:` to a PostgreSQL sink that has
//! none).

use serde_yaml_ng::{Mapping, Value};

use spate_core::ConfigError;

use super::nesting::check_nesting;
use super::raw::RawConfig;
use crate::sink::config::{expand_shorthand, kind_of};

/// Parses one layer's text (YAML or JSON) into a tree, refusing deep nesting first, with its
/// `sink:` shorthand expanded.
pub fn parse(text: &str) -> Result<Value, ConfigError> {
    check_nesting(text)?;
    let v: Value = serde_yaml_ng::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(" at line {} column {}", l.line(), l.column()))
            .unwrap_or_default();
        ConfigError::new(
            "(document)",
            format!("not YAML{at}: {e}"),
            "correct the YAML at the position shown",
        )
    })?;
    normalize(v)
}

/// A layer's tree with its `sink:` shorthand expanded (`null`, an empty document, is no
/// settings at all).
pub fn normalize(v: Value) -> Result<Value, ConfigError> {
    let mut m = match v {
        Value::Null => return Ok(Value::Mapping(Mapping::new())),
        Value::Mapping(m) => m,
        other => {
            return Err(ConfigError::new(
                "(document)",
                format!("a config is a table of settings, not {}", kind_name(&other)),
                "write `key: value` lines, e.g. `rate: 1000`",
            ))
        }
    };
    if let Some(s) = m.get_mut("sink") {
        *s = expand_shorthand(s, "sink")?;
    }
    Ok(Value::Mapping(m))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a table",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Lays `top` over `bottom` (see the module doc).
pub fn merge(bottom: Value, top: Value) -> Value {
    merge_at(bottom, top, &mut Vec::new())
}

fn merge_at(bottom: Value, top: Value, path: &mut Vec<String>) -> Value {
    match (bottom, top) {
        (Value::Mapping(mut b), Value::Mapping(t)) if !replaced_whole(path, &b, &t) => {
            for (k, tv) in t {
                let key = k.as_str().unwrap_or_default().to_string();
                // A secret given above in one form replaces both forms below it
                // (`password` / `password_file`, `token` / `token_file`, ...).
                if let Some(base) = key.strip_suffix("_file") {
                    b.remove(base);
                } else {
                    b.remove(format!("{key}_file").as_str());
                }
                let merged = match b.remove(&k) {
                    Some(bv) => {
                        path.push(key);
                        let m = merge_at(bv, tv, path);
                        path.pop();
                        m
                    }
                    None => tv,
                };
                b.insert(k, merged);
            }
            Value::Mapping(b)
        }
        (_, top) => top,
    }
}

/// Tables that are values, not sections: replaced whole by the layer above.
fn replaced_whole(path: &[String], bottom: &Mapping, top: &Mapping) -> bool {
    match path {
        // A weight table: `--source app=1` means only app.
        [k] if k == "sources" => true,
        // A sink of another kind replaces the sink; the same kind merges its settings.
        [k] if k == "sink" => {
            let kind = |m: &Mapping| m.keys().next().and_then(Value::as_str).map(str::to_string);
            bottom.len() != 1 || top.len() != 1 || kind(bottom) != kind(top)
        }
        _ => false,
    }
}

/// Deserializes a merged tree into the raw config, after moving older forms into place.
/// Every error names the key's path.
pub(super) fn finish(v: Value) -> Result<RawConfig, ConfigError> {
    let mut v = normalize(v)?;
    let mut deprecated = Vec::new();
    move_legacy_kafka(&mut v, &mut deprecated)?;
    // Read through JSON's data model: YAML's own reads an enum only from a `!tag`, where a config
    // writes the kind as a key (`sink: {kafka: ...}`).
    let json = serde_json::to_value(&v).map_err(|e| {
        ConfigError::new(
            "(document)",
            format!("the document cannot be read as a config: {e}"),
            "write plain keys and values (no YAML tags)",
        )
    })?;
    let source = v;
    let mut raw: RawConfig = serde_path_to_error::deserialize(json).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let fix = if msg.contains("unknown field") {
            "remove or rename the key; the accepted keys are listed above (`spate config reference` prints them all)".to_string()
        } else if msg.contains("unknown variant") && path == "sink" {
            format!("name one kind of sink: {}", crate::sink::config::KINDS.join(", "))
        } else if msg.contains("invalid type") {
            "give the value the type shown".to_string()
        } else {
            "correct the value as the message says".to_string()
        };
        ConfigError::new(if path == "." { "(document)".into() } else { path }, msg, fix)
    })?;
    raw.deprecated = deprecated;
    raw.source = Some(super::raw::SourceTree(source));
    Ok(raw)
}

/// The top-level `kafka:` section of older configs, moved under `sink: {kafka: ...}` (keys set
/// there win), or its `breaker:` to a PostgreSQL sink without one; otherwise it is unused.
fn move_legacy_kafka(v: &mut Value, deprecated: &mut Vec<String>) -> Result<(), ConfigError> {
    let Value::Mapping(m) = v else { return Ok(()) };
    let Some(legacy) = m.remove("kafka") else { return Ok(()) };
    if !matches!(legacy, Value::Mapping(_) | Value::Null) {
        return Err(ConfigError::new(
            "kafka",
            "the kafka section is not a table",
            "write the Kafka settings under `sink: {kafka: {...}}`",
        ));
    }
    let sink = m.entry("sink".into()).or_insert_with(|| {
        let mut s = Mapping::new();
        s.insert("stdout".into(), Value::Mapping(Mapping::new()));
        Value::Mapping(s)
    });
    match kind_of(sink).map(str::to_string).as_deref() {
        Some("kafka") => {
            deprecated.push("the top-level `kafka:` section is deprecated: write its settings under `sink: {kafka: {...}}`".into());
            let Value::Mapping(s) = sink else { return Ok(()) };
            let below = legacy;
            let above = s.remove("kafka").unwrap_or(Value::Mapping(Mapping::new()));
            s.insert("kafka".into(), merge(below, above));
        }
        Some("postgres") => {
            let breaker = match &legacy {
                Value::Mapping(k) => k.get("breaker").cloned(),
                _ => None,
            };
            let Value::Mapping(s) = sink else { return Ok(()) };
            if let (Some(b), Some(Value::Mapping(pg))) = (breaker, s.get_mut("postgres")) {
                if !pg.contains_key("breaker") {
                    deprecated.push(
                        "`kafka.breaker` configuring the postgres sink's breaker is deprecated: write `sink: {postgres: {breaker: ...}}`"
                            .into(),
                    );
                    pg.insert("breaker".into(), b);
                }
            }
        }
        Some(kind) => {
            // Unused, but its keys are still checked: a misspelt key is reported wherever it is.
            let json = serde_json::to_value(&legacy).unwrap_or(serde_json::Value::Null);
            if let Err(e) =
                serde_path_to_error::deserialize::<_, crate::sink::kafka::config::RawKafka>(json)
            {
                let path = e.path().to_string();
                let key = if path == "." { "kafka".to_string() } else { format!("kafka.{path}") };
                return Err(ConfigError::new(
                    key,
                    e.into_inner().to_string(),
                    "correct the key, or write it under `sink: {kafka: ...}`",
                ));
            }
            deprecated.push(format!("the top-level `kafka:` section is not used by the {kind} sink (and is deprecated: Kafka settings go under `sink: {{kafka: ...}}`)"));
        }
        None => {}
    }
    Ok(())
}

/// A setting the command line sets: the flag, where it goes, and its value.
#[derive(Debug, Clone)]
pub struct FlagSetting {
    /// The flag as typed, for messages (`--brokers`).
    pub flag: &'static str,
    /// Where the value goes in the tree.
    pub target: Target,
    /// The value the flag gives.
    pub value: Value,
}

/// Where a flag's value goes in the tree.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// A fixed key path, e.g. `["redis", "url"]`.
    Path(&'static [&'static str]),
    /// A key of the run's sink, for the sink kinds listed: `["dlq_file"]` is
    /// `sink.kafka.dlq_file` or `sink.postgres.dlq_file`, whichever the sink is.
    Sink {
        /// The sink kinds the key applies to.
        kinds: &'static [&'static str],
        /// The key's path under the sink.
        path: &'static [&'static str],
    },
}

/// The command line's settings, as one layer.
#[derive(Debug, Clone, Default)]
pub struct Flags(pub Vec<FlagSetting>);

impl Flags {
    /// Adds `value` at `target` when the flag was given.
    pub fn set(&mut self, flag: &'static str, target: Target, value: Option<Value>) {
        if let Some(value) = value {
            self.0.push(FlagSetting { flag, target, value });
        }
    }

    /// Lays the flags over `below` (the file's tree): fixed paths first (a `--sink` among them),
    /// then the sink's keys, into whichever sink the result has.
    pub fn apply(&self, below: Value) -> Result<Value, ConfigError> {
        let mut top = Value::Mapping(Mapping::new());
        for f in &self.0 {
            if let Target::Path(path) = f.target {
                set_path(&mut top, path, f.value.clone());
            }
        }
        let top = normalize(top)?;
        let mut merged = merge(normalize(below)?, top);
        // The legacy `kafka:` section decides a sink's kind no more than a flag does: only
        // `sink` counts, stdout when unset.
        let kind = match &merged {
            Value::Mapping(m) => m.get("sink").and_then(kind_of).unwrap_or("stdout").to_string(),
            _ => "stdout".to_string(),
        };
        for f in &self.0 {
            if let Target::Sink { kinds, path } = f.target {
                if !kinds.contains(&kind.as_str()) {
                    return Err(ConfigError::new(
                        f.flag,
                        format!(
                            "{} applies to the {} sink, and this run's sink is {kind}",
                            f.flag,
                            kinds.join(" and ")
                        ),
                        format!(
                            "drop {}, or choose the sink it applies to (--sink {})",
                            f.flag, kinds[0]
                        ),
                    ));
                }
                let mut full: Vec<&str> = vec!["sink", kind.as_str()];
                full.extend_from_slice(path);
                let mut one = Value::Mapping(Mapping::new());
                set_path(&mut one, &full, f.value.clone());
                merged = merge(merged, one);
            }
        }
        Ok(merged)
    }
}

/// Sets `value` at `path` in `tree`, making tables on the way.
pub fn set_path(tree: &mut Value, path: &[&str], value: Value) {
    let Some((last, init)) = path.split_last() else { return };
    let mut at = tree;
    for k in init {
        if !matches!(at, Value::Mapping(_)) {
            *at = Value::Mapping(Mapping::new());
        }
        let Value::Mapping(m) = at else { unreachable!("made a table above") };
        at = m.entry(Value::from(*k)).or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    if !matches!(at, Value::Mapping(_)) {
        *at = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(m) = at {
        m.insert(Value::from(*last), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Value {
        parse(s).unwrap()
    }

    #[test]
    fn tables_merge_values_replace() {
        let m = merge(
            yaml("rate: 10\nsources: {web: 1, app: 2}\nredis: {url: 'redis://a', global_rate: 5}"),
            yaml("sources: {app: 9}\nredis: {global_rate: 7}"),
        );
        assert_eq!(
            m,
            yaml("rate: 10\nsources: {app: 9}\nredis: {url: 'redis://a', global_rate: 7}")
        );
    }

    #[test]
    fn a_sink_of_another_kind_replaces_the_same_kind_merges() {
        let file = yaml("sink: {kafka: {brokers: 'b:1', topic: t}}");
        assert_eq!(merge(file.clone(), yaml("sink: null")), yaml("sink: {'null': {}}"));
        assert_eq!(yaml("sink: {null: {}}"), yaml("sink: {'null': {}}"));
        assert_eq!(merge(file.clone(), yaml("sink: kafka")), file);
        assert_eq!(
            merge(file, yaml("sink: {kafka: {topic: u}}")),
            yaml("sink: {kafka: {brokers: 'b:1', topic: u}}")
        );
    }

    #[test]
    fn a_secret_above_replaces_both_forms_below() {
        let m = merge(yaml("redis: {password: a}"), yaml("redis: {password_file: /p}"));
        assert_eq!(m, yaml("redis: {password_file: /p}"));
        let m = merge(yaml("redis: {password_file: /p}"), yaml("redis: {password: b}"));
        assert_eq!(m, yaml("redis: {password: b}"));
    }

    #[test]
    fn the_legacy_kafka_section_moves_under_the_sink() {
        let raw = finish(yaml("sink: kafka\nkafka: {brokers: 'b:1', topic: old}")).unwrap();
        let crate::sink::config::RawSink::Kafka(k) = &raw.sink else { panic!("{:?}", raw.sink) };
        assert_eq!((k.brokers.as_deref(), k.topic.as_deref()), (Some("b:1"), Some("old")));
        assert_eq!(raw.deprecated.len(), 1, "{:?}", raw.deprecated);
        // Keys under the sink win over the legacy section's.
        let raw = finish(yaml("sink: {kafka: {topic: new}}\nkafka: {topic: old}")).unwrap();
        let crate::sink::config::RawSink::Kafka(k) = &raw.sink else { panic!() };
        assert_eq!(k.topic.as_deref(), Some("new"));
        // A postgres sink takes the legacy breaker.
        let raw = finish(yaml("sink: 'postgres://u@h/db'\nkafka: {breaker: {window: 7}}")).unwrap();
        let crate::sink::config::RawSink::Postgres(p) = &raw.sink else { panic!() };
        assert_eq!(p.breaker.as_ref().and_then(|b| b.window), Some(7));
    }

    #[test]
    fn flags_go_into_the_sink_they_name() {
        let mut f = Flags::default();
        f.set("--topic", Target::Sink { kinds: &["kafka"], path: &["topic"] }, Some("t".into()));
        let v = f.apply(yaml("sink: kafka")).unwrap();
        assert_eq!(v, yaml("sink: {kafka: {topic: t}}"));
        let e = f.apply(yaml("sink: 'postgres://u@h/db'")).unwrap_err();
        assert_eq!(e.key, "--topic");
        assert!(e.message.contains("this run's sink is postgres"), "{e}");
        let mut f = Flags::default();
        f.set(
            "--dlq-file",
            Target::Sink { kinds: &["kafka", "postgres"], path: &["dlq_file"] },
            Some("d.jsonl".into()),
        );
        f.set("--sink", Target::Path(&["sink"]), Some("postgres://u@h/db".into()));
        let v = f.apply(Value::Null).unwrap();
        assert_eq!(v, yaml("sink: {postgres: {url: 'postgres://u@h/db', dlq_file: d.jsonl}}"));
    }

    #[test]
    fn documents_that_are_not_tables_are_refused() {
        for bad in ["- a\n- b", "42", "just words"] {
            assert_eq!(parse(bad).unwrap_err().key, "(document)", "{bad}");
        }
        assert_eq!(parse("").unwrap(), Value::Mapping(Mapping::new()));
    }
}
