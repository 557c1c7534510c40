//! The typed layout (`?layout=typed`): after the envelope columns (`ts`, `source`, `id`,
//! `traceparent`), one column per field of the sources' records instead of the JSONB body:
//! `bigint`, `double precision`, `boolean` or `text`, as the records' Avro schemas (the ones
//! `spate schema` prints) type them; a field some sources lack, or that is optional, is
//! nullable. Rows are encoded from the JSON line on the flush thread, by a scanner of flat
//! objects that allocates nothing per event.

use crate::error::ConfigError;

/// Type of a typed column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// `bigint`, for Avro `long` and `int`.
    BigInt,
    /// `double precision`, for Avro `double` and `float`.
    Double,
    /// `boolean`.
    Bool,
    /// `text`, for Avro `string`.
    Text,
}

impl ColType {
    /// PostgreSQL's name, as `information_schema.columns.data_type` spells it.
    pub fn sql(self) -> &'static str {
        match self {
            ColType::BigInt => "bigint",
            ColType::Double => "double precision",
            ColType::Bool => "boolean",
            ColType::Text => "text",
        }
    }
}

/// One column of the record's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The column's name: the field's.
    pub name: String,
    /// The column's type.
    pub ty: ColType,
    /// Whether the column takes NULL (an optional field, or one some sources lack).
    pub nullable: bool,
}

/// Envelope fields: columns of every layout, not repeated among the typed ones.
pub const ENVELOPE: [&str; 4] = ["ts", "source", "id", "traceparent"];

/// The typed columns for the sources' Avro record schemas (JSON text, one per source, named
/// for messages): the union of their fields in first-seen order.
pub fn columns(records: &[(&str, &str)]) -> Result<Vec<Column>, ConfigError> {
    let bad = |what: String| {
        ConfigError::new("sink", what, "use ?layout=jsonb (the default), or sources whose records are flat and agree on field types")
    };
    let mut cols: Vec<Column> = Vec::new();
    let mut seen_in: Vec<usize> = Vec::new();
    for (source, text) in records {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| bad(format!("the record schema of `{source}` does not parse: {e}")))?;
        let fields = v["fields"]
            .as_array()
            .ok_or_else(|| bad(format!("the record schema of `{source}` has no fields")))?;
        for f in fields {
            let name = f["name"].as_str().unwrap_or_default();
            if ENVELOPE.contains(&name) {
                continue;
            }
            let (ty, nullable) = avro_type(&f["type"]).ok_or_else(|| {
                bad(format!("field `{name}` of source `{source}` is {}: the typed layout takes flat records of long, double, boolean and string fields", f["type"]))
            })?;
            match cols.iter().position(|c| c.name == name) {
                Some(i) if cols[i].ty != ty => {
                    return Err(bad(format!(
                        "field `{name}` is {} in one source and {} in `{source}`: one column cannot hold both",
                        cols[i].ty.sql(),
                        ty.sql()
                    )))
                }
                Some(i) => {
                    cols[i].nullable |= nullable;
                    seen_in[i] += 1;
                }
                None => {
                    cols.push(Column { name: name.to_string(), ty, nullable });
                    seen_in.push(1);
                }
            }
        }
    }
    // A field some sources lack is NULL in their rows.
    for (c, n) in cols.iter_mut().zip(seen_in) {
        if n < records.len() {
            c.nullable = true;
        }
    }
    Ok(cols)
}

/// The column type of an Avro field type, and whether it is optional (`["null", T]`).
fn avro_type(t: &serde_json::Value) -> Option<(ColType, bool)> {
    use serde_json::Value;
    match t {
        Value::String(s) => Some((
            match s.as_str() {
                "long" | "int" => ColType::BigInt,
                "double" | "float" => ColType::Double,
                "boolean" => ColType::Bool,
                "string" => ColType::Text,
                _ => return None,
            },
            false,
        )),
        // Logical types on a primitive (uuid strings): the primitive's column.
        Value::Object(o) if o.get("logicalType").is_some_and(|l| l == "uuid") => {
            avro_type(o.get("type")?)
        }
        Value::Array(a) if a.len() == 2 && a.iter().any(|x| x == "null") => {
            let other = a.iter().find(|x| *x != "null")?;
            avro_type(other).map(|(ty, _)| (ty, true))
        }
        _ => None,
    }
}

/// A value of a flat JSON object, as found by [`scan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw {
    /// A string's bytes between its quotes, and whether it has escapes.
    Str(u32, u32, bool),
    /// A number, `true`/`false`: the literal's bytes.
    Lit(u32, u32),
    /// `null`.
    Null,
}

/// Scans the top level of the flat JSON object `line`, calling `found(key, value)` for each
/// member; false if `line` is not such an object (nested values are not taken).
pub fn scan(line: &[u8], mut found: impl FnMut(&[u8], Raw)) -> bool {
    let mut i = 0;
    let ws = |i: &mut usize| {
        while line.get(*i).is_some_and(u8::is_ascii_whitespace) {
            *i += 1;
        }
    };
    // The end of the string that starts after the quote at `i`, and whether it has escapes.
    let string_end = |mut i: usize| -> Option<(usize, bool)> {
        let mut esc = false;
        loop {
            match *line.get(i)? {
                b'"' => return Some((i, esc)),
                b'\\' => {
                    esc = true;
                    i += 2;
                }
                _ => i += 1,
            }
        }
    };
    ws(&mut i);
    if line.get(i) != Some(&b'{') {
        return false;
    }
    i += 1;
    ws(&mut i);
    if line.get(i) == Some(&b'}') {
        return true;
    }
    loop {
        ws(&mut i);
        if line.get(i) != Some(&b'"') {
            return false;
        }
        let Some((kend, _)) = string_end(i + 1) else { return false };
        let key = &line[i + 1..kend];
        i = kend + 1;
        ws(&mut i);
        if line.get(i) != Some(&b':') {
            return false;
        }
        i += 1;
        ws(&mut i);
        let value = match line.get(i) {
            Some(b'"') => {
                let Some((end, esc)) = string_end(i + 1) else { return false };
                let v = Raw::Str(i as u32 + 1, end as u32, esc);
                i = end + 1;
                v
            }
            Some(b'{' | b'[') | None => return false,
            Some(_) => {
                let start = i;
                while line
                    .get(i)
                    .is_some_and(|&c| c != b',' && c != b'}' && !c.is_ascii_whitespace())
                {
                    i += 1;
                }
                if &line[start..i] == b"null" {
                    Raw::Null
                } else {
                    Raw::Lit(start as u32, i as u32)
                }
            }
        };
        found(key, value);
        ws(&mut i);
        match line.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return true,
            _ => return false,
        }
    }
}

/// Appends the JSON string body `s` (between its quotes) unescaped to `out`; false if an
/// escape is malformed.
pub fn unescape(s: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&e) = s.get(i + 1) else { return false };
        i += 2;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = |at: usize| {
                    s.get(at..at + 4)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok())
                };
                let Some(mut cp) = hex(i) else { return false };
                i += 4;
                if (0xD800..0xDC00).contains(&cp) && s.get(i..i + 2) == Some(b"\\u") {
                    if let Some(lo) = hex(i + 2).filter(|lo| (0xDC00..0xE000).contains(lo)) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        i += 6;
                    }
                }
                let ch = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
                let mut b = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                continue;
            }
            _ => return false,
        };
        out.push(simple);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_from_records() {
        let web = r#"{"type":"record","name":"web","fields":[{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
            {"name":"source","type":"string"},{"name":"status","type":"long"},{"name":"latency_ms","type":"double"},
            {"name":"ref","type":["null","string"]},{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#;
        let app = r#"{"type":"record","name":"app","fields":[{"name":"status","type":"long"},{"name":"ok","type":"boolean"}]}"#;
        let c = columns(&[("web", web), ("app", app)]).unwrap();
        let got: Vec<(&str, ColType, bool)> =
            c.iter().map(|c| (c.name.as_str(), c.ty, c.nullable)).collect();
        assert_eq!(
            got,
            [
                ("status", ColType::BigInt, false),
                ("latency_ms", ColType::Double, true),
                ("ref", ColType::Text, true),
                ("u", ColType::Text, true),
                ("ok", ColType::Bool, true)
            ]
        );
        let clash = r#"{"type":"record","name":"x","fields":[{"name":"status","type":"string"}]}"#;
        assert!(columns(&[("web", web), ("x", clash)])
            .unwrap_err()
            .to_string()
            .contains("field `status` is bigint"));
        let nested = r#"{"type":"record","name":"x","fields":[{"name":"tags","type":{"type":"array","items":"string"}}]}"#;
        assert!(columns(&[("x", nested)])
            .unwrap_err()
            .to_string()
            .contains("field `tags` of source `x`"));
    }

    #[test]
    fn flat_objects_scan() {
        let line = br#"{"a":"x\"y","n":-12.5e3,"t":true,"z":null, "s":"" }"#;
        let mut got = Vec::new();
        assert!(scan(line, |k, v| got.push((String::from_utf8_lossy(k).into_owned(), v))));
        let s = |r: Raw| match r {
            Raw::Str(a, b, _) | Raw::Lit(a, b) => {
                String::from_utf8_lossy(&line[a as usize..b as usize]).into_owned()
            }
            Raw::Null => "NULL".into(),
        };
        let flat: Vec<(String, String)> = got.iter().map(|(k, v)| (k.clone(), s(*v))).collect();
        let want = [("a", r#"x\"y"#), ("n", "-12.5e3"), ("t", "true"), ("z", "NULL"), ("s", "")];
        assert_eq!(flat, want.map(|(k, v)| (k.to_string(), v.to_string())));
        assert!(matches!(got[0].1, Raw::Str(_, _, true)));
        assert!(!scan(br#"{"a":{"b":1}}"#, |_, _| {}));
        assert!(!scan(br#"{"a":"open"#, |_, _| {}));
        assert!(!scan(b"[1]", |_, _| {}));
        assert!(scan(b"{}", |_, _| {}));
    }

    #[test]
    fn strings_unescape() {
        let mut out = Vec::new();
        assert!(unescape(br#"a\"b\\c\/\n\u00e9\ud83d\ude00"#, &mut out));
        assert_eq!(String::from_utf8(out).unwrap(), "a\"b\\c/\n\u{e9}\u{1F600}");
        assert!(!unescape(br"\q", &mut Vec::new()));
        assert!(!unescape(br"\u12", &mut Vec::new()));
    }
}
