//! Schema-driven sources: records that conform to the user's Avro schema, written as Avro
//! datums or JSON objects.
//!
//! The schema is compiled once into a tree of [`Node`]s (hints read from each type's
//! `arg.properties`, as Confluent's kafka-connect-datagen writes them), then drawn into the
//! source's [`super::VARIANTS`] pre-rendered variants like every other source: values fixed
//! per variant are literal bytes; a few are per event (op codes): numbers with a `range`,
//! `iteration` counters, `uuid` strings, and timestamps without hints (the event time).
//!
//! Hints (`arg.properties`):
//! - `options: [..]`: one of the values (any type: records, arrays, maps as JSON);
//! - `range: {min, max}` (numbers): uniform in `[min, max)` (as datagen: an int range of 1 to
//!   5 gives 1 to 4), drawn per event (int, long, double) or per variant (float);
//! - `iteration: {start, step}` (int, long, double): `start + step * n`, n the event's sequence
//!   number in its worker;
//! - `regex` (string): a random match of the pattern (unbounded repeats add up to 8);
//! - `length: n` or `{min, max}` (`max` exclusive, as datagen): string length, bytes length,
//!   array or map size;
//! - `keys` (map): the `arg.properties` of the map's keys.
//!
//! Without hints: strings are 8 to 16 lowercase letters and digits, numbers uniform over a
//! modest range, arrays and maps 0 to 4 entries, unions any branch, enums any symbol.
//! Logical types: `timestamp-millis`/`-micros` (the event time unless hinted), `date` (a day
//! of the last year), `uuid` (random per event), `decimal` (bytes or fixed; random digits of
//! the precision). Recursive types are refused.

use std::collections::HashMap;

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::Value as Json;

use crate::avro::{push_long, push_str};
use spate_core::ConfigError;
use spate_core::rng::Rng;

use crate::format::json_str;
use crate::program::{Builder, Emitter, Op, TABLE};

/// Decimals kept by per-event doubles (`range` and `iteration`).
const DOUBLE_DECIMALS: u8 = 6;

/// A compiled type.
#[derive(Clone, Debug)]
enum Node {
    Null,
    Bool,
    /// `int` or `long`.
    Int(NumHint),
    Float(NumHint),
    Double(NumHint),
    Str(StrHint),
    /// Per-event random UUID (`string` with logical type `uuid`).
    Uuid,
    Bytes(usize, usize),
    Fixed(usize),
    Enum(Vec<String>),
    Array(Box<Node>, usize, usize),
    Map(Box<Node>, StrHint, usize, usize),
    Union(Vec<Node>),
    Record(Vec<(String, Node)>),
    /// The event time (`timestamp-millis` / `timestamp-micros` without hints).
    Time {
        millis: bool,
    },
    /// `date`: days since the epoch.
    Date,
    Decimal {
        precision: u32,
        scale: u32,
        fixed: Option<usize>,
    },
    /// Any type whose hint lists its values.
    Options(Box<Node>, Vec<Json>),
    /// JSON Schema `enum` / `const`: one of these JSON values, written as they are (JSON only).
    JsonValues(Vec<Json>),
    /// JSON Schema `format: date-time`: the event time, RFC 3339 (JSON only).
    TimeText,
}

#[derive(Clone, Debug)]
enum NumHint {
    None,
    /// Uniform in [min, max]; `table` is its per-event quantile table (int, long, double).
    Range(f64, f64, Option<u32>),
    /// `start + step * seq`, the pair stored at `table`.
    Iter(u32),
}

#[derive(Clone, Debug)]
enum StrHint {
    None,
    Regex(Box<Hir>),
    Length(usize, usize),
}

/// A user's schema compiled for generation.
#[derive(Debug)]
pub(crate) struct SchemaSource {
    /// The top record's name (the source name).
    pub name: String,
    /// A JSON Schema (records are JSON only), not an Avro schema.
    pub json_schema: bool,
    root: Node,
}

/// Output encoding of a schema source.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    Avro,
    Json,
}

fn err(path: &str, what: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::new(if path.is_empty() { "schema".to_string() } else { format!("schema: {path}") }, what, fix)
}

struct Compiler<'a> {
    b: &'a mut Builder,
    /// Named types by full and short name.
    names: HashMap<String, Json>,
    /// Named types being compiled (recursion guard).
    open: Vec<String>,
}

/// `text` without `//` line comments and `/* */` block comments outside strings: datagen's
/// parser accepts them in schema files, JSON does not.
pub fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut in_str, mut from) = (0, false, 0);
    while i < b.len() {
        match (in_str, b[i], b.get(i + 1)) {
            (true, b'\\', _) => i += 1,
            (true, b'"', _) | (false, b'"', _) => in_str = !in_str,
            (false, b'/', Some(b'/')) => {
                out.push_str(&text[from..i]);
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                from = i;
                continue;
            }
            (false, b'/', Some(b'*')) => {
                out.push_str(&text[from..i]);
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                from = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&text[from.min(text.len())..]);
    out
}

/// Whether `text` is a JSON Schema (not an Avro schema): it has `$schema`, `properties` or
/// `"type": "object"` at the top.
pub fn is_json_schema(text: &str) -> bool {
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(o)) => {
            o.contains_key("$schema") || o.contains_key("properties") || o.get("type").and_then(Json::as_str) == Some("object")
        }
        _ => false,
    }
}

/// Compiles a schema (JSON text) for generation: a JSON Schema (it has `$schema`,
/// `properties` or `"type": "object"`) or else an Avro schema, which `apache-avro` checks
/// first, so the errors here are about generation, each naming its path in the schema.
pub(crate) fn compile(text: &str, b: &mut Builder) -> Result<SchemaSource, ConfigError> {
    let doc: Json = serde_json::from_str(text).map_err(|e| err("", format!("not JSON: {e}"), "fix the schema file"))?;
    if let Json::Object(o) = &doc {
        if is_json_schema(text) {
            let name = o.get("title").and_then(Json::as_str).filter(|t| crate::avro::valid_name(t)).unwrap_or("record").to_string();
            let mut c = Compiler { b, names: HashMap::new(), open: Vec::new() };
            let root = c.json_schema(&doc, "", &doc)?;
            return Ok(SchemaSource { name, json_schema: true, root });
        }
    }
    apache_avro::Schema::parse_str(text)
        .map_err(|e| err("", format!("not a valid Avro schema: {e}"), "fix the schema file (Avro 1.12 specification)"))?;
    let name = match &doc {
        Json::Object(o) if o.get("type").and_then(Json::as_str) == Some("record") => {
            o.get("name").and_then(Json::as_str).unwrap_or("record").rsplit('.').next().unwrap_or("record").to_string()
        }
        _ => return Err(err("type", "the top-level type is not a record", "give a schema whose top level is {\"type\": \"record\", ...}")),
    };
    let mut c = Compiler { b, names: HashMap::new(), open: Vec::new() };
    let root = c.node(&doc, "", None)?;
    Ok(SchemaSource { name, json_schema: false, root })
}

fn num(v: &Json, path: &str, what: &str) -> Result<f64, ConfigError> {
    v.as_f64().ok_or_else(|| err(path, format!("`{what}` is not a number"), format!("write {what} as a number")))
}

/// A `length` hint as an inclusive (min, max): a count, or `{min, max}` with `max` exclusive
/// as datagen reads it (`{min: 1, max: 5}` gives 1 to 4).
fn length(v: Option<&Json>, path: &str, default: (usize, usize)) -> Result<(usize, usize), ConfigError> {
    let bad = || err(path, "`length` is not a count or {min, max}", "write \"length\": 8 or \"length\": {\"min\": 1, \"max\": 9}");
    match v {
        None => Ok(default),
        Some(Json::Number(n)) => n.as_u64().map(|n| (n as usize, n as usize)).ok_or_else(bad),
        Some(Json::Object(o)) => {
            let min = o.get("min").and_then(Json::as_u64).unwrap_or(0) as usize;
            let max = o.get("max").and_then(Json::as_u64).map_or(min.max(default.1), |m| (m as usize).saturating_sub(1).max(min));
            if max > 1 << 20 {
                return Err(bad());
            }
            Ok((min, max))
        }
        _ => Err(bad()),
    }
}

impl Compiler<'_> {
    fn node(&mut self, t: &Json, path: &str, ns: Option<&str>) -> Result<Node, ConfigError> {
        match t {
            Json::String(s) => self.named_or_primitive(s, path, ns, None),
            Json::Array(branches) => {
                let mut v = Vec::with_capacity(branches.len());
                for (i, b) in branches.iter().enumerate() {
                    v.push(self.node(b, &format!("{path}[{i}]"), ns)?);
                }
                Ok(Node::Union(v))
            }
            Json::Object(o) => {
                let hints = o.get("arg.properties").and_then(Json::as_object);
                let ty = o.get("type").ok_or_else(|| err(path, "a type object without `type`", "add \"type\""))?;
                let node = match ty {
                    Json::String(s) => self.typed(s, o, path, ns, hints)?,
                    other => self.node(other, &format!("{path}.type"), ns)?,
                };
                match hints.and_then(|h| h.get("options")) {
                    Some(Json::Array(opts)) if !opts.is_empty() => Ok(Node::Options(Box::new(node), opts.clone())),
                    Some(_) => Err(err(path, "`options` is not a non-empty list", "list the values: \"options\": [..]")),
                    None => Ok(node),
                }
            }
            _ => Err(err(path, "not a type", "write a type name, a type object or a union list")),
        }
    }

    fn named_or_primitive(
        &mut self,
        s: &str,
        path: &str,
        ns: Option<&str>,
        hints: Option<&serde_json::Map<String, Json>>,
    ) -> Result<Node, ConfigError> {
        let e = serde_json::Map::new();
        let h = hints.unwrap_or(&e);
        Ok(match s {
            "null" => Node::Null,
            "boolean" => Node::Bool,
            "int" | "long" => Node::Int(self.num_hint(h, path, s)?),
            "float" => Node::Float(self.num_hint(h, path, s)?),
            "double" => Node::Double(self.num_hint(h, path, s)?),
            "string" => Node::Str(self.str_hint(h, path)?),
            "bytes" => {
                let (a, b) = length(h.get("length"), path, (1, 16))?;
                Node::Bytes(a, b)
            }
            name => {
                let full = if name.contains('.') { name.to_string() } else { ns.map_or(name.to_string(), |n| format!("{n}.{name}")) };
                let def = self.names.get(&full).or_else(|| self.names.get(name)).cloned();
                let Some(def) = def else {
                    return Err(err(path, format!("unknown type `{name}`"), "define the named type before using it"));
                };
                if self.open.iter().any(|o| *o == full || o.rsplit('.').next() == Some(name)) {
                    return Err(err(
                        path,
                        format!("type `{name}` contains itself"),
                        "recursive types have no bounded random value: remove the recursion",
                    ));
                }
                self.node(&def, path, ns)?
            }
        })
    }

    fn typed(
        &mut self,
        s: &str,
        o: &serde_json::Map<String, Json>,
        path: &str,
        ns: Option<&str>,
        hints: Option<&serde_json::Map<String, Json>>,
    ) -> Result<Node, ConfigError> {
        let e = serde_json::Map::new();
        let h = hints.unwrap_or(&e);
        let logical = o.get("logicalType").and_then(Json::as_str);
        let hinted = h.contains_key("range") || h.contains_key("iteration") || h.contains_key("options");
        match (s, logical) {
            ("long", Some("timestamp-millis" | "local-timestamp-millis")) if !hinted => return Ok(Node::Time { millis: true }),
            ("long", Some("timestamp-micros" | "local-timestamp-micros")) if !hinted => return Ok(Node::Time { millis: false }),
            ("int", Some("date")) if !hinted => return Ok(Node::Date),
            ("string", Some("uuid")) if !hinted => return Ok(Node::Uuid),
            ("bytes" | "fixed", Some("decimal")) => {
                let precision = o.get("precision").and_then(Json::as_u64).unwrap_or(10).clamp(1, 38) as u32;
                let scale = o.get("scale").and_then(Json::as_u64).unwrap_or(0) as u32;
                let fixed = if s == "fixed" { o.get("size").and_then(Json::as_u64).map(|n| n as usize) } else { None };
                if fixed == Some(0) {
                    return Err(err(path, "a decimal in a fixed of size 0", "give the fixed a size"));
                }
                self.define(o, ns)?;
                return Ok(Node::Decimal { precision, scale, fixed });
            }
            _ => {}
        }
        let own_ns = o.get("namespace").and_then(Json::as_str).or(ns);
        match s {
            "record" | "error" => {
                let full = self.define(o, ns)?;
                self.open.push(full);
                let ns2 = o.get("name").and_then(Json::as_str).and_then(|n| n.rsplit_once('.').map(|x| x.0)).or(own_ns).map(str::to_string);
                let mut fields = Vec::new();
                for (i, f) in o.get("fields").and_then(Json::as_array).into_iter().flatten().enumerate() {
                    let fname = f.get("name").and_then(Json::as_str).unwrap_or("?");
                    let fpath = if path.is_empty() { format!("fields.{fname}") } else { format!("{path}.fields.{fname}") };
                    let ft = f.get("type").ok_or_else(|| err(&fpath, format!("field {i} has no type"), "give the field a type"))?;
                    fields.push((fname.to_string(), self.node(ft, &fpath, ns2.as_deref())?));
                }
                self.open.pop();
                Ok(Node::Record(fields))
            }
            "enum" => {
                self.define(o, ns)?;
                let symbols: Vec<String> = o
                    .get("symbols")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect();
                Ok(Node::Enum(symbols))
            }
            "fixed" => {
                self.define(o, ns)?;
                Ok(Node::Fixed(o.get("size").and_then(Json::as_u64).unwrap_or(0) as usize))
            }
            "array" => {
                let items = o.get("items").ok_or_else(|| err(path, "an array without `items`", "add \"items\""))?;
                let (a, b) = length(h.get("length"), path, (0, 4))?;
                Ok(Node::Array(Box::new(self.node(items, &format!("{path}.items"), own_ns)?), a, b))
            }
            "map" => {
                let values = o.get("values").ok_or_else(|| err(path, "a map without `values`", "add \"values\""))?;
                let (a, b) = length(h.get("length"), path, (0, 4))?;
                let keys = match h.get("keys").and_then(Json::as_object) {
                    Some(k) => self.str_hint(k, &format!("{path}.keys"))?,
                    None => StrHint::Length(4, 8),
                };
                Ok(Node::Map(Box::new(self.node(values, &format!("{path}.values"), own_ns)?), keys, a, b))
            }
            prim => self.named_or_primitive(prim, path, ns, Some(h)),
        }
    }

    /// Compiles a JSON Schema node (`root` resolves `$ref`s).
    fn json_schema(&mut self, n: &Json, path: &str, root: &Json) -> Result<Node, ConfigError> {
        let Json::Object(o) = n else {
            return match n {
                Json::Bool(true) => Ok(Node::Str(StrHint::None)),
                _ => Err(err(path, "not a schema object", "write a JSON Schema object")),
            };
        };
        for k in ["allOf", "not", "if", "patternProperties", "dependentSchemas", "dependencies"] {
            if o.contains_key(k) {
                return Err(err(
                    path,
                    format!("`{k}` is not supported for generation"),
                    "rewrite the schema without it (properties, items, enum, oneOf/anyOf, $ref work)",
                ));
            }
        }
        if let Some(r) = o.get("$ref").and_then(Json::as_str) {
            let target = r.strip_prefix("#/").map(|p| p.split('/').try_fold(root, |v, k| v.get(k)));
            let Some(Some(t)) = target else {
                return Err(err(path, format!("`$ref` {r} does not resolve in this file"), "refer to #/definitions/NAME or #/$defs/NAME"));
            };
            if self.open.iter().any(|o| o == r) {
                return Err(err(
                    path,
                    format!("`$ref` {r} contains itself"),
                    "recursive types have no bounded random value: remove the recursion",
                ));
            }
            self.open.push(r.to_string());
            let node = self.json_schema(t, path, root);
            self.open.pop();
            return node;
        }
        if let Some(c) = o.get("const") {
            return Ok(Node::JsonValues(vec![c.clone()]));
        }
        if let Some(Json::Array(vs)) = o.get("enum") {
            if vs.is_empty() {
                return Err(err(path, "an empty `enum`", "list at least one value"));
            }
            return Ok(Node::JsonValues(vs.clone()));
        }
        for k in ["oneOf", "anyOf"] {
            if let Some(Json::Array(bs)) = o.get(k) {
                let mut v = Vec::with_capacity(bs.len());
                for (i, b) in bs.iter().enumerate() {
                    v.push(self.json_schema(b, &format!("{path}.{k}[{i}]"), root)?);
                }
                return Ok(Node::Union(v));
            }
        }
        let ty = match o.get("type") {
            Some(Json::String(t)) => t.as_str(),
            Some(Json::Array(ts)) => {
                let mut v = Vec::with_capacity(ts.len());
                for t in ts {
                    let mut one = o.clone();
                    one.insert("type".into(), t.clone());
                    v.push(self.json_schema(&Json::Object(one), path, root)?);
                }
                return Ok(Node::Union(v));
            }
            None if o.contains_key("properties") => "object",
            None if o.contains_key("items") => "array",
            None => "string",
            Some(_) => return Err(err(path, "`type` is not a name or a list", "write \"type\": \"string\" (or a list of types)")),
        };
        let f = |k: &str| o.get(k).and_then(Json::as_f64);
        let u = |k: &str| o.get(k).and_then(Json::as_u64).map(|n| n as usize);
        Ok(match ty {
            "null" => Node::Null,
            "boolean" => Node::Bool,
            "integer" | "number" => {
                let int = ty == "integer";
                let nudge = if int { 1.0 } else { 1e-6 };
                let min = f("minimum").or(f("exclusiveMinimum").map(|m| m + nudge)).unwrap_or(0.0);
                let max = f("maximum").or(f("exclusiveMaximum").map(|m| m - nudge)).unwrap_or(min.max(0.0) + 1_000_000.0);
                // `maximum` is inclusive; a range hint's max is not.
                let max = if int { max + 1.0 } else { max };
                let mut h = serde_json::Map::new();
                h.insert("range".into(), serde_json::json!({"min": min, "max": max}));
                let hint = self.num_hint(&h, path, if int { "long" } else { "double" })?;
                if int {
                    Node::Int(hint)
                } else {
                    Node::Double(hint)
                }
            }
            "string" => {
                let fmt = o.get("format").and_then(Json::as_str);
                let regex = |c: &mut Self, p: &str| {
                    let mut h = serde_json::Map::new();
                    h.insert("regex".into(), Json::String(p.into()));
                    c.str_hint(&h, path).map(Node::Str)
                };
                match (fmt, o.get("pattern").and_then(Json::as_str)) {
                    (_, Some(p)) => regex(self, p)?,
                    (Some("date-time"), _) => Node::TimeText,
                    (Some("uuid"), _) => Node::Uuid,
                    (Some("date"), _) => regex(self, "2026-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])")?,
                    (Some("email"), _) => regex(self, "[a-z]{3,10}@[a-z]{3,8}\\.(com|net|org)")?,
                    (Some("ipv4"), _) => regex(self, "(1[0-9]{2}|[1-9][0-9]?)\\.[0-9]{1,2}\\.[0-9]{1,2}\\.[1-9][0-9]?")?,
                    (Some("hostname"), _) => regex(self, "[a-z]{3,10}\\.example\\.(com|net|org)")?,
                    _ => match (u("minLength"), u("maxLength")) {
                        (None, None) => Node::Str(StrHint::None),
                        (a, b) => {
                            let a = a.unwrap_or(0);
                            Node::Str(StrHint::Length(a, b.unwrap_or(a.max(8) + 8).max(a)))
                        }
                    },
                }
            }
            "array" => {
                let items = match o.get("items") {
                    Some(i) => self.json_schema(i, &format!("{path}.items"), root)?,
                    None => Node::Str(StrHint::None),
                };
                let a = u("minItems").unwrap_or(0);
                Node::Array(Box::new(items), a, u("maxItems").unwrap_or(a.max(4)).max(a))
            }
            "object" => {
                let mut fields = Vec::new();
                for (k, v) in o.get("properties").and_then(Json::as_object).into_iter().flatten() {
                    let p = if path.is_empty() { format!("properties.{k}") } else { format!("{path}.properties.{k}") };
                    fields.push((k.clone(), self.json_schema(v, &p, root)?));
                }
                Node::Record(fields)
            }
            o => return Err(err(path, format!("unknown type `{o}`"), "use null, boolean, integer, number, string, array or object")),
        })
    }

    /// Registers a named type (record, enum, fixed); returns its full name.
    fn define(&mut self, o: &serde_json::Map<String, Json>, ns: Option<&str>) -> Result<String, ConfigError> {
        let name = o.get("name").and_then(Json::as_str).unwrap_or("");
        let full = match (name.contains('.'), o.get("namespace").and_then(Json::as_str).or(ns)) {
            (true, _) | (false, None) => name.to_string(),
            (false, Some(n)) => format!("{n}.{name}"),
        };
        let def = Json::Object(o.clone());
        self.names.insert(full.clone(), def.clone());
        self.names.entry(name.rsplit('.').next().unwrap_or(name).to_string()).or_insert(def);
        Ok(full)
    }

    fn num_hint(&mut self, h: &serde_json::Map<String, Json>, path: &str, ty: &str) -> Result<NumHint, ConfigError> {
        let decimals = match ty {
            "int" | "long" => 0,
            _ => DOUBLE_DECIMALS,
        };
        if let Some(r) = h.get("range") {
            let min = r.get("min").map(|v| num(v, path, "range.min")).transpose()?.unwrap_or(0.0);
            let max = r.get("max").map(|v| num(v, path, "range.max")).transpose()?.unwrap_or(min + 1000.0);
            if max < min || !min.is_finite() || !max.is_finite() {
                return Err(err(path, format!("range [{min}, {max}] is empty"), "give min <= max"));
            }
            if ty == "int" && (min < i32::MIN as f64 || max > i32::MAX as f64) {
                return Err(err(path, "range goes beyond an int", "keep it within -2147483648..2147483647, or use long"));
            }
            // Uniform in [min, max), as datagen draws (integers: min to max - 1). Cell i of the
            // table holds the values whose offset is i/TABLE of the way: for narrow integer
            // ranges each value owns an equal share of the cells.
            let table = (ty != "float").then(|| {
                let scale = 10f64.powi(decimals as i32);
                let (lo, hi) = ((min * scale).round() as i64, (max * scale).round() as i64);
                let top = (hi - 1).max(lo);
                let pts: Vec<i64> = (0..=TABLE).map(|i| (lo + ((hi - lo) as i128 * i as i128 / TABLE as i128) as i64).min(top)).collect();
                self.b.add_table(&pts)
            });
            return Ok(NumHint::Range(min, max, table));
        }
        if let Some(it) = h.get("iteration") {
            if ty == "float" {
                return Err(err(path, "iteration over a float", "use a double or a long"));
            }
            let start = it.get("start").map(|v| num(v, path, "iteration.start")).transpose()?.unwrap_or(0.0);
            let step = it.get("step").map(|v| num(v, path, "iteration.step")).transpose()?.unwrap_or(1.0);
            let scale = 10f64.powi(decimals as i32);
            let mut pts = vec![0i64; TABLE + 1];
            pts[0] = (start * scale).round() as i64;
            pts[1] = (step * scale).round() as i64;
            return Ok(NumHint::Iter(self.b.add_table(&pts)));
        }
        Ok(NumHint::None)
    }

    fn str_hint(&mut self, h: &serde_json::Map<String, Json>, path: &str) -> Result<StrHint, ConfigError> {
        if let Some(r) = h.get("regex") {
            let raw = r.as_str().ok_or_else(|| err(path, "`regex` is not a string", "write the pattern as a string"))?;
            let pat = &java_escapes(raw);
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(pat)
                .map_err(|e| e.to_string())
                // Unicode classes (`\p{L}`) need the Unicode-aware parser.
                .or_else(|_| regex_syntax::Parser::new().parse(pat).map_err(|e| e.to_string()))
                .map_err(|e| err(path, format!("regex `{pat}` does not parse: {e}"), "fix the pattern"))?;
            return Ok(StrHint::Regex(Box::new(hir)));
        }
        if h.contains_key("length") {
            let (a, b) = length(h.get("length"), path, (8, 16))?;
            return Ok(StrHint::Length(a, b));
        }
        Ok(StrHint::None)
    }
}

/// A Java pattern (datagen's) as regex-syntax reads it: Java's `\<` and `\>` are the literal
/// characters, regex-syntax's are word boundaries.
fn java_escapes(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('<' | '>')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

// ---- drawing a variant ----

const ALNUM: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn between(rng: &mut Rng, (a, b): (usize, usize)) -> usize {
    a + rng.below((b - a) as u64 + 1) as usize
}

fn draw_str(h: &StrHint, rng: &mut Rng) -> String {
    match h {
        StrHint::None => (0..between(rng, (8, 16))).map(|_| ALNUM[rng.below(36) as usize] as char).collect(),
        StrHint::Length(a, b) => (0..between(rng, (*a, *b))).map(|_| ALNUM[rng.below(36) as usize] as char).collect(),
        StrHint::Regex(hir) => {
            let mut out = Vec::new();
            gen_regex(hir, rng, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    }
}

/// A uniform pick among the values of inclusive `ranges`.
fn pick_in(ranges: &[(u32, u32)], rng: &mut Rng) -> Option<u32> {
    let total: u64 = ranges.iter().map(|&(a, b)| u64::from(b - a) + 1).sum();
    let mut k = (total > 0).then(|| rng.below(total))?;
    for &(a, b) in ranges {
        let n = u64::from(b - a) + 1;
        if k < n {
            return Some(a + k as u32);
        }
        k -= n;
    }
    None
}

/// Appends a random match of `h`.
fn gen_regex(h: &Hir, rng: &mut Rng, out: &mut Vec<u8>) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.extend_from_slice(&l.0),
        HirKind::Class(Class::Unicode(c)) => {
            let ranges: Vec<(u32, u32)> = c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect();
            if let Some(ch) = pick_in(&ranges, rng).and_then(char::from_u32) {
                let mut b = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            let ranges: Vec<(u32, u32)> = c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect();
            // Keep the text valid UTF-8: bytes above ASCII become '?'.
            if let Some(b) = pick_in(&ranges, rng) {
                out.push(if b < 0x80 { b as u8 } else { b'?' });
            }
        }
        HirKind::Repetition(r) => {
            let max = r.max.unwrap_or(r.min + 8).min(r.min + 64);
            for _ in 0..between(rng, (r.min as usize, max as usize)) {
                gen_regex(&r.sub, rng, out);
            }
        }
        HirKind::Capture(c) => gen_regex(&c.sub, rng, out),
        HirKind::Concat(v) => v.iter().for_each(|s| gen_regex(s, rng, out)),
        HirKind::Alternation(v) => gen_regex(&v[rng.below(v.len() as u64) as usize], rng, out),
    }
}

/// Avro-JSON text of bytes: one character per byte (U+0000..U+00FF).
fn bytes_json(b: &[u8], out: &mut Vec<u8>) {
    let s: String = b.iter().map(|&c| c as char).collect();
    json_str(&s, out);
}

fn put_f64(e: &mut Emitter<'_>, enc: Enc, v: f64, float: bool) {
    match enc {
        Enc::Avro if float => e.lit(&(v as f32).to_le_bytes()),
        Enc::Avro => e.lit(&v.to_le_bytes()),
        Enc::Json => {
            let t = if v.is_finite() { format!("{v}") } else { "null".into() };
            e.lit(t.as_bytes());
        }
    }
}

fn put_i64(e: &mut Emitter<'_>, enc: Enc, v: i64) {
    match enc {
        Enc::Avro => push_long(e.lit_buf(), v),
        Enc::Json => e.lit(v.to_string().as_bytes()),
    }
}

fn put_text(e: &mut Emitter<'_>, enc: Enc, s: &str) {
    let mut b = Vec::with_capacity(s.len() + 4);
    match enc {
        Enc::Avro => push_str(&mut b, s.as_bytes()),
        Enc::Json => json_str(s, &mut b),
    }
    e.shared(&b);
}

/// A record: its fields in order (JSON: an object), each written by `each`.
fn record<'n>(fields: &'n [(String, Node)], enc: Enc, e: &mut Emitter<'_>, mut each: impl FnMut(&'n str, &'n Node, &mut Emitter<'_>)) {
    if enc == Enc::Json {
        e.lit(b"{");
    }
    for (i, (name, f)) in fields.iter().enumerate() {
        if enc == Enc::Json {
            if i > 0 {
                e.lit(b",");
            }
            json_str(name, e.lit_buf());
            e.lit(b":");
        }
        each(name, f, e);
    }
    if enc == Enc::Json {
        e.lit(b"}");
    }
}

/// An array of `n` items (Avro: one block then the end marker), each written by `each`.
fn array(n: usize, enc: Enc, e: &mut Emitter<'_>, mut each: impl FnMut(usize, &mut Emitter<'_>)) {
    match enc {
        Enc::Avro => {
            if n > 0 {
                push_long(e.lit_buf(), n as i64);
                (0..n).for_each(|i| each(i, e));
            }
            e.lit(&[0]);
        }
        Enc::Json => {
            e.lit(b"[");
            for i in 0..n {
                if i > 0 {
                    e.lit(b",");
                }
                each(i, e);
            }
            e.lit(b"]");
        }
    }
}

/// A map of `keys` (Avro: one block then the end marker), each value written by `each`.
fn map<'k>(keys: impl ExactSizeIterator<Item = &'k str>, enc: Enc, e: &mut Emitter<'_>, mut each: impl FnMut(&'k str, &mut Emitter<'_>)) {
    let n = keys.len();
    match enc {
        Enc::Avro => {
            if n > 0 {
                push_long(e.lit_buf(), n as i64);
                for k in keys {
                    put_text(e, enc, k);
                    each(k, e);
                }
            }
            e.lit(&[0]);
        }
        Enc::Json => {
            e.lit(b"{");
            for (i, k) in keys.enumerate() {
                if i > 0 {
                    e.lit(b",");
                }
                json_str(k, e.lit_buf());
                e.lit(b":");
                each(k, e);
            }
            e.lit(b"}");
        }
    }
}

/// Emits one random value of `n`.
fn draw(n: &Node, enc: Enc, rng: &mut Rng, e: &mut Emitter<'_>) {
    match n {
        Node::Null => {
            if enc == Enc::Json {
                e.lit(b"null");
            }
        }
        Node::Bool => {
            let v = rng.chance(0.5);
            match enc {
                Enc::Avro => e.lit(&[u8::from(v)]),
                Enc::Json => e.lit(if v { b"true" } else { b"false" }),
            }
        }
        Node::Int(h) | Node::Double(h) | Node::Float(h) => {
            let (int, float) = (matches!(n, Node::Int(_)), matches!(n, Node::Float(_)));
            let d = if int { 0 } else { DOUBLE_DECIMALS };
            match h {
                NumHint::Range(_, _, Some(table)) => match (enc, int) {
                    (Enc::Avro, true) => e.op(Op::AvroLong { table: *table }),
                    (Enc::Avro, false) => e.op(Op::AvroDouble { table: *table, decimals: d }),
                    (Enc::Json, _) => e.op(Op::Num { table: *table, decimals: d }),
                },
                NumHint::Range(min, max, None) => put_f64(e, enc, min + (max - min) * rng.f64(), float),
                NumHint::Iter(table) => e.op(Op::Iter { table: *table, decimals: d, avro: enc == Enc::Avro }),
                NumHint::None if int => put_i64(e, enc, rng.range_i64(0, 1_000_000)),
                NumHint::None => put_f64(e, enc, (rng.f64() * 1e6).round() / 1e3, float),
            }
        }
        Node::Str(h) => put_text(e, enc, &draw_str(h, rng)),
        Node::Uuid => {
            match enc {
                Enc::Avro => e.lit(&[72]), // 36 as a long
                Enc::Json => e.lit(b"\""),
            }
            e.op(Op::Uuid);
            if enc == Enc::Json {
                e.lit(b"\"");
            }
        }
        Node::Bytes(..) | Node::Fixed(_) => {
            let len = match n {
                Node::Bytes(a, b) => between(rng, (*a, *b)),
                Node::Fixed(s) => *s,
                _ => unreachable!(),
            };
            let v: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            match (enc, n) {
                (Enc::Avro, Node::Bytes(..)) => push_str(e.lit_buf(), &v),
                (Enc::Avro, _) => e.lit(&v),
                (Enc::Json, _) => bytes_json(&v, e.lit_buf()),
            }
        }
        Node::Enum(symbols) => {
            let i = rng.below(symbols.len().max(1) as u64) as usize;
            match enc {
                Enc::Avro => push_long(e.lit_buf(), i as i64),
                Enc::Json => json_str(symbols.get(i).map_or("", String::as_str), e.lit_buf()),
            }
        }
        Node::Array(items, a, b) => {
            let k = between(rng, (*a, *b));
            array(k, enc, e, |_, e| draw(items, enc, rng, e));
        }
        Node::Map(values, keys, a, b) => {
            let k = between(rng, (*a, *b));
            // Distinct keys: a map cannot hold one twice.
            let mut ks: Vec<String> = Vec::with_capacity(k);
            for _ in 0..k * 4 {
                if ks.len() == k {
                    break;
                }
                let s = draw_str(keys, rng);
                if !ks.contains(&s) {
                    ks.push(s);
                }
            }
            map(ks.iter().map(String::as_str), enc, e, |_, e| draw(values, enc, rng, e));
        }
        Node::Union(branches) => {
            let i = rng.below(branches.len() as u64) as usize;
            if enc == Enc::Avro {
                push_long(e.lit_buf(), i as i64);
            }
            draw(&branches[i], enc, rng, e);
        }
        Node::Record(fields) => record(fields, enc, e, |_, f, e| draw(f, enc, rng, e)),
        Node::Time { millis } => e.op(Op::Epoch { millis: *millis, avro: enc == Enc::Avro }),
        Node::Date => {
            // A day of the year before 2026-11-30 (20,787 days after the epoch).
            put_i64(e, enc, 20_787 - rng.below(365) as i64);
        }
        Node::Decimal { precision, scale, fixed } => {
            let digits = (*precision).min(18);
            let bound = 10i64.pow(digits) - 1;
            let v = rng.range_i64(-bound, bound);
            let be = v.to_be_bytes();
            // Two's complement, big-endian: minimal for bytes, sign-extended for fixed.
            let mut start = 0;
            while start < 7 && ((be[start] == 0 && be[start + 1] < 0x80) || (be[start] == 0xff && be[start + 1] >= 0x80)) {
                start += 1;
            }
            match (enc, fixed) {
                (Enc::Avro, None) => push_str(e.lit_buf(), &be[start..]),
                (Enc::Avro, Some(size)) => {
                    let pad = if v < 0 { 0xff } else { 0 };
                    let mut b = vec![pad; *size];
                    let n = (8 - start).min(*size);
                    b[size - n..].copy_from_slice(&be[8 - n..]);
                    e.lit(&b);
                }
                (Enc::Json, _) => {
                    let s = if *scale == 0 {
                        v.to_string()
                    } else {
                        let p = 10i64.pow((*scale).min(18));
                        format!(
                            "{}{}.{:0w$}",
                            if v < 0 { "-" } else { "" },
                            v.unsigned_abs() / p as u64,
                            v.unsigned_abs() % p as u64,
                            w = *scale as usize
                        )
                    };
                    e.lit(s.as_bytes());
                }
            }
        }
        Node::Options(node, opts) => {
            let v = &opts[rng.below(opts.len() as u64) as usize];
            from_json(node, v, enc, e);
        }
        Node::JsonValues(vs) => {
            let v = &vs[rng.below(vs.len() as u64) as usize];
            e.lit(v.to_string().as_bytes());
        }
        Node::TimeText => {
            e.lit(b"\"");
            e.op(Op::Ts3339);
            e.lit(b"\"");
        }
    }
}

/// Emits `v` (an `options` entry, JSON) as a value of `n`.
fn from_json(n: &Node, v: &Json, enc: Enc, e: &mut Emitter<'_>) {
    match (n, v) {
        (Node::Null, _) => {
            if enc == Enc::Json {
                e.lit(b"null");
            }
        }
        (Node::Bool, Json::Bool(b)) => match enc {
            Enc::Avro => e.lit(&[u8::from(*b)]),
            Enc::Json => e.lit(if *b { b"true" } else { b"false" }),
        },
        (Node::Int(_) | Node::Date | Node::Time { .. }, Json::Number(x)) => {
            put_i64(e, enc, x.as_i64().unwrap_or(x.as_f64().unwrap_or(0.0) as i64))
        }
        (Node::Double(_), Json::Number(x)) => put_f64(e, enc, x.as_f64().unwrap_or(0.0), false),
        (Node::Float(_), Json::Number(x)) => put_f64(e, enc, x.as_f64().unwrap_or(0.0), true),
        (Node::Enum(symbols), Json::String(s)) => match enc {
            Enc::Avro => push_long(e.lit_buf(), symbols.iter().position(|x| x == s).unwrap_or(0) as i64),
            Enc::Json => json_str(s, e.lit_buf()),
        },
        (Node::Bytes(..) | Node::Fixed(_), Json::String(s)) => {
            let b: Vec<u8> = s.chars().map(|c| c as u32 as u8).collect();
            match (enc, n) {
                (Enc::Avro, Node::Bytes(..)) => push_str(e.lit_buf(), &b),
                (Enc::Avro, _) => e.lit(&b),
                (Enc::Json, _) => bytes_json(&b, e.lit_buf()),
            }
        }
        (_, Json::String(s)) => put_text(e, enc, s),
        (Node::Array(items, ..), Json::Array(vs)) => array(vs.len(), enc, e, |i, e| from_json(items, &vs[i], enc, e)),
        (Node::Map(values, ..), Json::Object(m)) => map(m.keys().map(String::as_str), enc, e, |k, e| from_json(values, &m[k], enc, e)),
        (Node::Record(fields), Json::Object(m)) => {
            record(fields, enc, e, |name, f, e| from_json(f, m.get(name).unwrap_or(&Json::Null), enc, e))
        }
        (Node::Union(branches), v) => {
            let i = branches.iter().position(|b| fits(b, v)).unwrap_or(0);
            if enc == Enc::Avro {
                push_long(e.lit_buf(), i as i64);
            }
            from_json(&branches[i], v, enc, e);
        }
        (Node::Options(inner, _), v) => from_json(inner, v, enc, e),
        // A value of another shape than the type: the type's own random value would be a
        // guess; options are checked against their types at start (`check_options`).
        (n, _) => unreachable!("option checked at start: {n:?} {v}"),
    }
}

/// Whether JSON value `v` can be written as type `n`.
fn fits(n: &Node, v: &Json) -> bool {
    match (n, v) {
        (Node::Null, Json::Null) | (Node::Bool, Json::Bool(_)) => true,
        (Node::Int(_) | Node::Date | Node::Time { .. }, Json::Number(x)) => x.is_i64(),
        (Node::Double(_) | Node::Float(_), Json::Number(_)) => true,
        (Node::Enum(s), Json::String(x)) => s.contains(x),
        (Node::Str(_) | Node::Uuid | Node::Bytes(..) | Node::Decimal { .. }, Json::String(_)) => true,
        (Node::Fixed(size), Json::String(x)) => x.chars().count() == *size,
        (Node::Array(items, ..), Json::Array(vs)) => vs.iter().all(|x| fits(items, x)),
        (Node::Map(values, ..), Json::Object(m)) => m.values().all(|x| fits(values, x)),
        (Node::Record(fields), Json::Object(m)) => fields.iter().all(|(k, f)| fits(f, m.get(k).unwrap_or(&Json::Null))),
        (Node::Union(bs), v) => bs.iter().any(|b| fits(b, v)),
        (Node::Options(inner, _), v) => fits(inner, v),
        _ => false,
    }
}

/// Checks every `options` entry against its type, so that drawing never meets a misfit.
fn check_options(n: &Node, path: &str) -> Result<(), ConfigError> {
    match n {
        Node::Options(inner, opts) => {
            if let Some(bad) = opts.iter().find(|o| !fits(inner, o)) {
                return Err(err(
                    path,
                    format!("option {bad} is not a value of this type"),
                    "make every option a value of the field's type",
                ));
            }
            check_options(inner, path)
        }
        Node::Array(i, ..) | Node::Map(i, ..) => check_options(i, path),
        Node::Union(bs) => bs.iter().try_for_each(|b| check_options(b, path)),
        Node::Record(fs) => fs.iter().try_for_each(|(k, f)| check_options(f, &format!("{path}.{k}"))),
        _ => Ok(()),
    }
}

impl SchemaSource {
    /// Checks what compiling could not (options against their types).
    pub fn check(&self) -> Result<(), ConfigError> {
        check_options(&self.root, "fields")
    }

    /// Renders one random record as a program after `prefix` (a wire header), in a container
    /// block when `sync` is given, then the event terminator.
    pub fn render(&self, enc: Enc, prefix: &[u8], sync: Option<[u8; 16]>, rng: &mut Rng, e: &mut Emitter<'_>) {
        e.lit(prefix);
        if sync.is_some() {
            e.op(Op::BlockStart);
        }
        draw(&self.root, enc, rng, e);
        if let Some(sync) = sync {
            e.op(Op::BlockEnd);
            e.lit(&sync);
        }
        e.lit(b"\n");
    }
}
