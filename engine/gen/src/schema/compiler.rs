//! Compiling an Avro schema into [`Node`]s: types, named types, hints, each problem an error
//! naming its path in the schema (JSON Schemas: `json_schema.rs`).

use std::collections::HashMap;

use serde_json::Value as Json;

use spate_core::ConfigError;

use super::node::{err, length, num, Node, NumHint, StrHint, DOUBLE_DECIMALS};
use crate::program::{Builder, TABLE};

pub(super) struct Compiler<'a> {
    pub(super) b: &'a mut Builder,
    /// Named types by full and short name.
    pub(super) names: HashMap<String, Json>,
    /// Named types being compiled (recursion guard).
    pub(super) open: Vec<String>,
    /// How many times a named type may appear inside itself (`schema_depth`).
    pub(super) depth: usize,
    /// Nodes made so far: expanding recursion is bounded by [`MAX_NODES`] too.
    pub(super) made: usize,
}

/// Most nodes a schema compiles to (recursive types expand up to `schema_depth`).
pub(super) const MAX_NODES: usize = 100_000;

impl Compiler<'_> {
    pub(super) fn node(
        &mut self,
        t: &Json,
        path: &str,
        ns: Option<&str>,
    ) -> Result<Node, ConfigError> {
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
                let ty = o
                    .get("type")
                    .ok_or_else(|| err(path, "a type object without `type`", "add \"type\""))?;
                let node = match ty {
                    Json::String(s) => self.typed(s, o, path, ns, hints)?,
                    other => self.node(other, &format!("{path}.type"), ns)?,
                };
                match hints.and_then(|h| h.get("options")) {
                    Some(Json::Array(opts)) if !opts.is_empty() => {
                        Ok(Node::Options(Box::new(node), opts.clone()))
                    }
                    Some(_) => Err(err(
                        path,
                        "`options` is not a non-empty list",
                        "list the values: \"options\": [..]",
                    )),
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
                let full = if name.contains('.') {
                    name.to_string()
                } else {
                    ns.map_or(name.to_string(), |n| format!("{n}.{name}"))
                };
                let def = self.names.get(&full).or_else(|| self.names.get(name)).cloned();
                let Some(def) = def else {
                    return Err(err(
                        path,
                        format!("unknown type `{name}`"),
                        "define the named type before using it",
                    ));
                };
                let inside =
                    self.open.iter().filter(|o| **o == full || o.rsplit('.').next() == Some(name));
                if inside.count() >= self.depth {
                    // Past the depth bound: no value here; `settle` keeps it out of records.
                    return Ok(Node::Never);
                }
                self.made += 1;
                if self.made > MAX_NODES {
                    return Err(err(
                        path,
                        format!("expanding `{name}` within itself makes over {MAX_NODES} types"),
                        "lower schema_depth, or make the recursion narrower",
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
        let hinted =
            h.contains_key("range") || h.contains_key("iteration") || h.contains_key("options");
        match (s, logical) {
            ("long", Some("timestamp-millis" | "local-timestamp-millis")) if !hinted => {
                return Ok(Node::Time { millis: true })
            }
            ("long", Some("timestamp-micros" | "local-timestamp-micros")) if !hinted => {
                return Ok(Node::Time { millis: false })
            }
            ("int", Some("date")) if !hinted => return Ok(Node::Date),
            ("string", Some("uuid")) if !hinted => return Ok(Node::Uuid),
            ("bytes" | "fixed", Some("decimal")) => {
                let precision =
                    o.get("precision").and_then(Json::as_u64).unwrap_or(10).clamp(1, 38) as u32;
                let scale = o.get("scale").and_then(Json::as_u64).unwrap_or(0) as u32;
                let fixed = if s == "fixed" {
                    o.get("size").and_then(Json::as_u64).map(|n| n as usize)
                } else {
                    None
                };
                if fixed == Some(0) {
                    return Err(err(
                        path,
                        "a decimal in a fixed of size 0",
                        "give the fixed a size",
                    ));
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
                let ns2 = o
                    .get("name")
                    .and_then(Json::as_str)
                    .and_then(|n| n.rsplit_once('.').map(|x| x.0))
                    .or(own_ns)
                    .map(str::to_string);
                let mut fields = Vec::new();
                for (i, f) in
                    o.get("fields").and_then(Json::as_array).into_iter().flatten().enumerate()
                {
                    let fname = f.get("name").and_then(Json::as_str).unwrap_or("?");
                    let fpath = if path.is_empty() {
                        format!("fields.{fname}")
                    } else {
                        format!("{path}.fields.{fname}")
                    };
                    let ft = f.get("type").ok_or_else(|| {
                        err(&fpath, format!("field {i} has no type"), "give the field a type")
                    })?;
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
                if symbols.is_empty() {
                    return Err(err(
                        path,
                        "an enum without symbols has no value to write",
                        "list at least one symbol",
                    ));
                }
                Ok(Node::Enum(symbols))
            }
            "fixed" => {
                self.define(o, ns)?;
                Ok(Node::Fixed(o.get("size").and_then(Json::as_u64).unwrap_or(0) as usize))
            }
            "array" => {
                let items = o
                    .get("items")
                    .ok_or_else(|| err(path, "an array without `items`", "add \"items\""))?;
                let (a, b) = length(h.get("length"), path, (0, 4))?;
                Ok(Node::Array(Box::new(self.node(items, &format!("{path}.items"), own_ns)?), a, b))
            }
            "map" => {
                let values = o
                    .get("values")
                    .ok_or_else(|| err(path, "a map without `values`", "add \"values\""))?;
                let (a, b) = length(h.get("length"), path, (0, 4))?;
                let keys = match h.get("keys").and_then(Json::as_object) {
                    Some(k) => self.str_hint(k, &format!("{path}.keys"))?,
                    None => StrHint::Length(4, 8),
                };
                Ok(Node::Map(
                    Box::new(self.node(values, &format!("{path}.values"), own_ns)?),
                    keys,
                    a,
                    b,
                ))
            }
            prim => self.named_or_primitive(prim, path, ns, Some(h)),
        }
    }

    /// Registers a named type (record, enum, fixed); returns its full name.
    fn define(
        &mut self,
        o: &serde_json::Map<String, Json>,
        ns: Option<&str>,
    ) -> Result<String, ConfigError> {
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

    pub(super) fn num_hint(
        &mut self,
        h: &serde_json::Map<String, Json>,
        path: &str,
        ty: &str,
    ) -> Result<NumHint, ConfigError> {
        let decimals = match ty {
            "int" | "long" => 0,
            _ => DOUBLE_DECIMALS,
        };
        if let Some(r) = h.get("range") {
            let min = r.get("min").map(|v| num(v, path, "range.min")).transpose()?.unwrap_or(0.0);
            let max = r
                .get("max")
                .map(|v| num(v, path, "range.max"))
                .transpose()?
                .unwrap_or(min + 1000.0);
            if max < min || !min.is_finite() || !max.is_finite() {
                return Err(err(path, format!("range [{min}, {max}] is empty"), "give min <= max"));
            }
            if ty == "int" && (min < f64::from(i32::MIN) || max > f64::from(i32::MAX)) {
                return Err(err(
                    path,
                    "range goes beyond an int",
                    "keep it within -2147483648..2147483647, or use long",
                ));
            }
            // Uniform in [min, max), as datagen draws (integers: min to max - 1). Cell i of the
            // table holds the values whose offset is i/TABLE of the way: for narrow integer
            // ranges each value owns an equal share of the cells.
            let table = (ty != "float").then(|| {
                let scale = 10f64.powi(i32::from(decimals));
                let (lo, hi) = ((min * scale).round() as i64, (max * scale).round() as i64);
                let top = (hi - 1).max(lo);
                let pts: Vec<i64> = (0..=TABLE)
                    .map(|i| {
                        (lo + (i128::from(hi - lo) * i as i128 / TABLE as i128) as i64).min(top)
                    })
                    .collect();
                self.b.add_table(&pts)
            });
            return Ok(NumHint::Range(min, max, table));
        }
        if let Some(it) = h.get("iteration") {
            if ty == "float" {
                return Err(err(path, "iteration over a float", "use a double or a long"));
            }
            let start = it
                .get("start")
                .map(|v| num(v, path, "iteration.start"))
                .transpose()?
                .unwrap_or(0.0);
            let step =
                it.get("step").map(|v| num(v, path, "iteration.step")).transpose()?.unwrap_or(1.0);
            let scale = 10f64.powi(i32::from(decimals));
            let mut pts = vec![0i64; TABLE + 1];
            pts[0] = (start * scale).round() as i64;
            pts[1] = (step * scale).round() as i64;
            return Ok(NumHint::Iter(self.b.add_table(&pts)));
        }
        Ok(NumHint::None)
    }

    pub(super) fn str_hint(
        &mut self,
        h: &serde_json::Map<String, Json>,
        path: &str,
    ) -> Result<StrHint, ConfigError> {
        if let Some(r) = h.get("regex") {
            let raw = r.as_str().ok_or_else(|| {
                err(path, "`regex` is not a string", "write the pattern as a string")
            })?;
            let pat = &java_escapes(raw);
            let hir = regex_syntax::ParserBuilder::new()
                .unicode(false)
                .utf8(false)
                .build()
                .parse(pat)
                .map_err(|e| e.to_string())
                // Unicode classes (`\p{L}`) need the Unicode-aware parser.
                .or_else(|_| regex_syntax::Parser::new().parse(pat).map_err(|e| e.to_string()))
                .map_err(|e| {
                    err(path, format!("regex `{pat}` does not parse: {e}"), "fix the pattern")
                })?;
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
