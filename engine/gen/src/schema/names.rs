//! An Avro schema's names, checked before any parser sees it (the `apache-avro` crate panics on
//! some invalid names instead of returning an error), and `error` types read as records.
//!
//! Per the Avro 1.12 specification: a name (record, enum, fixed, field, enum symbol) matches
//! `[A-Za-z_][A-Za-z0-9_]*`; a full name and a namespace are such names joined by dots (a
//! namespace may be empty); an enum has at least one symbol, none repeated. `error` is a record
//! type of Avro protocols; a schema file using it is read as if it said `record`.

use serde_json::Value as Json;

use spate_core::ConfigError;

use super::node::err;
use crate::avro::valid_name;

/// Checks every name of the Avro schema `text` (JSON), naming the path of the first bad one, and
/// returns the schema with `error` types written as `record` (unchanged text when it has none).
pub fn prepare_avro(text: &str) -> Result<String, ConfigError> {
    let Ok(mut doc) = serde_json::from_str::<Json>(text) else {
        // Not JSON: the parser that follows says so, with its position.
        return Ok(text.to_string());
    };
    let mut errors_renamed = false;
    check(&mut doc, "", &mut errors_renamed)?;
    Ok(if errors_renamed { doc.to_string() } else { text.to_string() })
}

fn check(t: &mut Json, path: &str, renamed: &mut bool) -> Result<(), ConfigError> {
    match t {
        Json::Array(branches) => {
            for (i, b) in branches.iter_mut().enumerate() {
                check(b, &format!("{path}[{i}]"), renamed)?;
            }
            Ok(())
        }
        Json::Object(o) => {
            let at = |k: &str| if path.is_empty() { k.to_string() } else { format!("{path}.{k}") };
            if o.get("type").and_then(Json::as_str) == Some("error") {
                o.insert("type".into(), Json::from("record"));
                *renamed = true;
            }
            let kind = o.get("type").and_then(Json::as_str).unwrap_or_default().to_string();
            if matches!(kind.as_str(), "record" | "enum" | "fixed") {
                match o.get("name") {
                    Some(Json::String(n)) => full_name(n, &at("name"))?,
                    _ => {
                        return Err(err(
                            &at("name"),
                            format!("a {kind} without a name"),
                            "give it a name: [A-Za-z_][A-Za-z0-9_]*",
                        ))
                    }
                }
                if let Some(ns) = o.get("namespace") {
                    match ns.as_str() {
                        Some("") => {}
                        Some(n) => full_name(n, &at("namespace"))?,
                        None => {
                            return Err(err(
                                &at("namespace"),
                                "the namespace is not a string",
                                "write it as \"a.b\" (or leave it out)",
                            ))
                        }
                    }
                }
                for (i, a) in
                    o.get("aliases").and_then(Json::as_array).into_iter().flatten().enumerate()
                {
                    full_name(a.as_str().unwrap_or_default(), &at(&format!("aliases[{i}]")))?;
                }
            }
            match kind.as_str() {
                "record" => {
                    let fields = o.get_mut("fields").and_then(Json::as_array_mut);
                    for (i, f) in fields.into_iter().flatten().enumerate() {
                        let name = f.get("name").and_then(Json::as_str).unwrap_or_default();
                        let fpath = at(&format!("fields[{i}]"));
                        if !valid_name(name) {
                            return Err(bad_name(name, &format!("{fpath}.name")));
                        }
                        let fpath = at(&format!("fields.{name}"));
                        if let Some(ft) = f.get_mut("type") {
                            check(ft, &fpath, renamed)?;
                        }
                    }
                }
                "enum" => {
                    let symbols = o.get("symbols").and_then(Json::as_array);
                    let symbols: Vec<&str> = symbols
                        .into_iter()
                        .flatten()
                        .map(|s| s.as_str().unwrap_or_default())
                        .collect();
                    if symbols.is_empty() {
                        return Err(err(
                            &at("symbols"),
                            "an enum without symbols has no value to write",
                            "list at least one symbol",
                        ));
                    }
                    for (i, s) in symbols.iter().enumerate() {
                        if !valid_name(s) {
                            return Err(bad_name(s, &at(&format!("symbols[{i}]"))));
                        }
                        if symbols[..i].contains(s) {
                            return Err(err(
                                &at(&format!("symbols[{i}]")),
                                format!("the symbol `{s}` is listed twice"),
                                "list each symbol once",
                            ));
                        }
                    }
                }
                "array" => {
                    if let Some(items) = o.get_mut("items") {
                        check(items, &at("items"), renamed)?;
                    }
                }
                "map" => {
                    if let Some(values) = o.get_mut("values") {
                        check(values, &at("values"), renamed)?;
                    }
                }
                _ => {
                    // `{"type": {...}}`: a type object wrapped in another.
                    if let Some(inner) = o.get_mut("type").filter(|t| !t.is_string()) {
                        check(inner, &at("type"), renamed)?;
                    }
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A full name or namespace: names joined by dots.
fn full_name(n: &str, path: &str) -> Result<(), ConfigError> {
    if n.split('.').all(valid_name) {
        Ok(())
    } else {
        Err(bad_name(n, path))
    }
}

fn bad_name(n: &str, path: &str) -> ConfigError {
    let shown: String = n.chars().take(64).collect();
    err(
        path,
        format!("`{shown}` is not an Avro name"),
        "names match [A-Za-z_][A-Za-z0-9_]* (full names and namespaces join them with dots)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(schema: &str) -> String {
        let e = prepare_avro(schema).unwrap_err();
        format!("{} | {e}", e.key)
    }

    #[test]
    fn bad_names_are_named_by_path() {
        let r = refused(r#"{"type":"record","name":"bad-name","fields":[]}"#);
        assert!(r.starts_with("schema: name |"), "{r}");
        let r = refused(
            r#"{"type":"record","name":"R","fields":[{"name":"e","type":{"type":"enum","name":"E-x","symbols":["A"]}}]}"#,
        );
        assert!(r.starts_with("schema: fields.e.name |"), "{r}");
        let r = refused(
            r#"{"type":"record","name":"R","fields":[{"name":"f","type":["null",{"type":"fixed","name":"1F","size":4}]}]}"#,
        );
        assert!(r.starts_with("schema: fields.f[1].name |"), "{r}");
        let r = refused(r#"{"type":"record","name":"R","namespace":"a..b","fields":[]}"#);
        assert!(r.starts_with("schema: namespace |"), "{r}");
        let r = refused(r#"{"type":"record","name":"R","fields":[{"name":"a b","type":"int"}]}"#);
        assert!(r.starts_with("schema: fields[0].name |"), "{r}");
        let r = refused(r#"{"type":"enum","name":"E","symbols":[]}"#);
        assert!(r.starts_with("schema: symbols |"), "{r}");
        let r = refused(r#"{"type":"enum","name":"E","symbols":["A","A"]}"#);
        assert!(r.starts_with("schema: symbols[1] |"), "{r}");
        let r = refused(
            r#"{"type":"array","items":{"type":"map","values":{"type":"enum","name":"E","symbols":["9"]}}}"#,
        );
        assert!(r.starts_with("schema: items.values.symbols[0] |"), "{r}");
    }

    #[test]
    fn errors_become_records_and_good_text_is_kept() {
        let good = r#"{"type": "record", "name": "a.R", "namespace": "", "fields": []}"#;
        assert_eq!(prepare_avro(good).unwrap(), good);
        let e =
            prepare_avro(r#"{"type":"error","name":"Oops","fields":[{"name":"a","type":"int"}]}"#)
                .unwrap();
        assert!(e.contains(r#""type":"record""#), "{e}");
    }
}
