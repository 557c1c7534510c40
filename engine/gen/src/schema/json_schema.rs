//! Compiling a JSON Schema (draft 2020-12 and draft 7 keywords) into [`Node`]s. A generated
//! value must satisfy every keyword of its schema object, so a keyword is either applied or the
//! schema is refused at start naming its path: spate never writes a record it did not make to
//! fit.
//!
//! Applied: `type` (a name or a list), `properties`, `required` (every property is written, so
//! a required name must be declared), `additionalProperties` (none are added), `items`,
//! `minItems`/`maxItems`, `enum`/`const` (with `type` beside them, the values of that type),
//! `anyOf`, `oneOf` (branches of different JSON types only: one value cannot match two),
//! `$ref` within the file, `minimum`/`maximum` and their exclusive forms, `minLength`/
//! `maxLength`, `pattern`, `format` (listed in [`FORMATS`]). Counts may be written as whole
//! floats (`2.0`). Annotations (`title`, `description`, `default`, `$defs`, ...) are ignored.
//! Refused: every other keyword (`allOf`, `not`, `if`, `multipleOf`, `uniqueItems`,
//! `minProperties`, `contains`, `prefixItems`, `patternProperties`, ...), keywords beside
//! `$ref`, `anyOf`/`oneOf` or beside `enum`/`const` (but `type`), `pattern` or `format` with
//! length bounds, and constraints nothing satisfies (`minLength` above `maxLength`, no integer
//! between the bounds).

use serde_json::{Map, Value as Json};

use spate_core::ConfigError;

use super::compiler::Compiler;
use super::node::{err, Node, StrHint};

/// Keywords a generated value is made to satisfy.
const APPLIED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "$ref",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "format",
];

/// Keywords that constrain nothing.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "$anchor",
    "$defs",
    "definitions",
    "title",
    "description",
    "default",
    "examples",
    "readOnly",
    "writeOnly",
    "deprecated",
    "contentMediaType",
    "contentEncoding",
];

/// Formats and the patterns their strings are drawn from (each a valid instance of the format:
/// RFC 3339 `date` and `time`, RFC 2673 dotted quads without leading zeros, RFC 4291 ...).
/// `date-time` and `uuid` are made apart (the event time; a random UUID).
const FORMATS: &[(&str, &str)] = &[
    ("date", "2026-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])"),
    ("time", "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z"),
    ("duration", "P[1-9]DT([1-9]|1[0-9])H[1-5][0-9]M"),
    ("email", "[a-z]{3,10}@[a-z]{3,8}\\.(com|net|org)"),
    ("idn-email", "[a-z]{3,10}@[a-z]{3,8}\\.(com|net|org)"),
    ("hostname", "[a-z]{3,10}\\.example\\.(com|net|org)"),
    ("idn-hostname", "[a-z]{3,10}\\.example\\.(com|net|org)"),
    ("ipv4", "(1[0-9]{2}|[1-9][0-9]?)\\.(0|[1-9][0-9]?)\\.(0|[1-9][0-9]?)\\.[1-9][0-9]?"),
    ("ipv6", "2001:db8(:[1-9a-f][0-9a-f]{0,3}){6}"),
    ("uri", "https://[a-z]{3,10}\\.example\\.com/[a-z]{1,8}"),
    ("uri-reference", "/[a-z]{1,8}(/[a-z]{1,8})?"),
    ("iri", "https://[a-z]{3,10}\\.example\\.com/[a-z]{1,8}"),
    ("iri-reference", "/[a-z]{1,8}(/[a-z]{1,8})?"),
    ("json-pointer", "(/[a-z]{1,6}){1,3}"),
    ("relative-json-pointer", "[0-9](/[a-z]{1,6}){0,2}"),
    ("regex", "[a-z]{1,6}"),
];

impl Compiler<'_> {
    /// Compiles a JSON Schema node (`root` resolves `$ref`s).
    pub(super) fn json_schema(
        &mut self,
        n: &Json,
        path: &str,
        root: &Json,
    ) -> Result<Node, ConfigError> {
        let Json::Object(o) = n else {
            return match n {
                Json::Bool(true) => Ok(Node::Str(StrHint::None)),
                _ => Err(err(path, "not a schema object", "write a JSON Schema object")),
            };
        };
        if let Some(k) =
            o.keys().find(|k| !APPLIED.contains(&k.as_str()) && !ANNOTATIONS.contains(&k.as_str()))
        {
            return Err(err(
                path,
                format!("`{k}` is not supported for generation"),
                "rewrite the schema without it (type, properties, items, enum, const, anyOf, oneOf, $ref, bounds, pattern and format work)",
            ));
        }
        // Keywords next to one that picks the value whole would be ignored: refuse them.
        let constraints = |allowed: &[&str]| {
            o.keys().find(|k| APPLIED.contains(&k.as_str()) && !allowed.contains(&k.as_str()))
        };
        for (whole, allowed) in [
            ("$ref", &["$ref"][..]),
            ("anyOf", &["anyOf"][..]),
            ("oneOf", &["oneOf"][..]),
            ("const", &["const", "type"][..]),
            ("enum", &["enum", "type"][..]),
        ] {
            if o.contains_key(whole) {
                if let Some(k) = constraints(allowed) {
                    return Err(err(
                        path,
                        format!("`{k}` beside `{whole}` is not applied to its values"),
                        format!(
                            "move `{k}` into what `{whole}` gives (its schema, or each branch)"
                        ),
                    ));
                }
            }
        }
        if let Some(r) = o.get("$ref").and_then(Json::as_str) {
            let target = r.strip_prefix("#/").map(|p| p.split('/').try_fold(root, |v, k| v.get(k)));
            let Some(Some(t)) = target else {
                return Err(err(
                    path,
                    format!("`$ref` {r} does not resolve in this file"),
                    "refer to #/definitions/NAME or #/$defs/NAME",
                ));
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
        if o.contains_key("const") || o.contains_key("enum") {
            return values(o, path);
        }
        for k in ["oneOf", "anyOf"] {
            if let Some(Json::Array(bs)) = o.get(k) {
                if bs.is_empty() {
                    return Err(err(path, format!("an empty `{k}`"), "list at least one schema"));
                }
                if k == "oneOf" {
                    disjoint(bs, path, root)?;
                }
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
            Some(_) => {
                return Err(err(
                    path,
                    "`type` is not a name or a list",
                    "write \"type\": \"string\" (or a list of types)",
                ))
            }
        };
        let f = |k: &str| o.get(k).and_then(Json::as_f64);
        let count = |k: &str| count(o, k, path);
        Ok(match ty {
            "null" => Node::Null,
            "boolean" => Node::Bool,
            "integer" | "number" => {
                let int = ty == "integer";
                let nudge = if int { 1.0 } else { 1e-6 };
                let mut min =
                    f("minimum").or(f("exclusiveMinimum").map(|m| m + nudge)).unwrap_or(0.0);
                let mut max = f("maximum")
                    .or(f("exclusiveMaximum").map(|m| m - nudge))
                    .unwrap_or(min.max(0.0) + 1_000_000.0);
                if int {
                    // Whole numbers within the bounds, exactly representable as doubles.
                    (min, max) = (min.ceil(), max.floor());
                    const SAFE: f64 = 9_007_199_254_740_991.0;
                    if min.abs() > SAFE || max.abs() > SAFE {
                        return Err(err(
                            path,
                            format!("bounds [{min}, {max}] reach beyond ±{SAFE}"),
                            "keep integer bounds within ±2^53 - 1",
                        ));
                    }
                }
                if min > max {
                    let what = if int { "no integer lies" } else { "no number lies" };
                    return Err(err(
                        path,
                        format!("{what} between the bounds"),
                        "give minimum <= maximum (for integers, a whole number between them)",
                    ));
                }
                // `maximum` is inclusive; a range hint's max is not.
                let max = if int { max + 1.0 } else { max };
                let mut h = Map::new();
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
                let pattern = o.get("pattern").and_then(Json::as_str);
                let (lo, hi) = (count("minLength")?, count("maxLength")?);
                if (fmt.is_some() || pattern.is_some()) && (lo.is_some() || hi.is_some()) {
                    return Err(err(
                        path,
                        "length bounds beside `pattern` or `format` are not applied to its strings",
                        "write the length into the pattern (e.g. [a-z]{3,8}), or drop the bounds",
                    ));
                }
                let regex = |c: &mut Self, p: &str| {
                    let mut h = Map::new();
                    h.insert("regex".into(), Json::String(p.into()));
                    c.str_hint(&h, path).map(Node::Str)
                };
                match (fmt, pattern) {
                    (Some(f), Some(_)) => {
                        return Err(err(
                            path,
                            format!("`pattern` beside `format: {f}` is not applied to its strings"),
                            "keep one of them",
                        ))
                    }
                    (_, Some(p)) => regex(self, p)?,
                    (Some("date-time"), _) => Node::TimeText,
                    (Some("uuid"), _) => Node::Uuid,
                    (Some(f), _) => match FORMATS.iter().find(|(name, _)| *name == f) {
                        Some((_, p)) => regex(self, p)?,
                        None => {
                            return Err(err(
                                path,
                                format!("format `{f}` is not generated"),
                                format!(
                                    "use one of date-time, uuid, {}, or a pattern",
                                    FORMATS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                                ),
                            ))
                        }
                    },
                    (None, None) => match (lo, hi) {
                        (None, None) => Node::Str(StrHint::None),
                        (a, b) => {
                            let a = a.unwrap_or(0);
                            let b = b.unwrap_or(a.max(8) + 8);
                            if a > b {
                                return Err(err(
                                    path,
                                    format!("minLength {a} is above maxLength {b}"),
                                    "give minLength <= maxLength",
                                ));
                            }
                            Node::Str(StrHint::Length(a, b))
                        }
                    },
                }
            }
            "array" => {
                let items =
                    match o.get("items") {
                        Some(Json::Array(_)) => return Err(err(
                            path,
                            "`items` as a list (draft 7 tuples) is not supported for generation",
                            "give `items` one schema",
                        )),
                        Some(i) => self.json_schema(i, &format!("{path}.items"), root)?,
                        None => Node::Str(StrHint::None),
                    };
                let a = count("minItems")?.unwrap_or(0);
                let b = count("maxItems")?.unwrap_or(a.max(4));
                if a > b {
                    return Err(err(
                        path,
                        format!("minItems {a} is above maxItems {b}"),
                        "give minItems <= maxItems",
                    ));
                }
                Node::Array(Box::new(items), a, b)
            }
            "object" => {
                let props = o.get("properties").and_then(Json::as_object);
                for (i, r) in
                    o.get("required").and_then(Json::as_array).into_iter().flatten().enumerate()
                {
                    let name = r.as_str().unwrap_or_default();
                    if !props.is_some_and(|p| p.contains_key(name)) {
                        let at = if path.is_empty() {
                            format!("required[{i}]")
                        } else {
                            format!("{path}.required[{i}]")
                        };
                        return Err(err(
                            &at,
                            format!("`{name}` is required but not among the properties"),
                            "declare it under `properties` (spate writes every declared property)",
                        ));
                    }
                }
                let mut fields = Vec::new();
                for (k, v) in props.into_iter().flatten() {
                    let p = if path.is_empty() {
                        format!("properties.{k}")
                    } else {
                        format!("{path}.properties.{k}")
                    };
                    fields.push((k.clone(), self.json_schema(v, &p, root)?));
                }
                Node::Record(fields)
            }
            o => {
                return Err(err(
                    path,
                    format!("unknown type `{o}`"),
                    "use null, boolean, integer, number, string, array or object",
                ))
            }
        })
    }
}

/// `enum` or `const`, the values of `type` among them when it is given.
fn values(o: &Map<String, Json>, path: &str) -> Result<Node, ConfigError> {
    let all: Vec<Json> = match (o.get("const"), o.get("enum")) {
        (Some(c), None) => vec![c.clone()],
        (None, Some(Json::Array(vs))) => vs.clone(),
        (None, Some(_)) => return Err(err(path, "`enum` is not a list", "list the values")),
        _ => {
            return Err(err(
                path,
                "`const` and `enum` together",
                "keep one of them (const is an enum of one value)",
            ))
        }
    };
    let types: Vec<&str> = match o.get("type") {
        None => Vec::new(),
        Some(Json::String(t)) => vec![t.as_str()],
        Some(Json::Array(ts)) => ts.iter().filter_map(Json::as_str).collect(),
        Some(_) => return Err(err(path, "`type` is not a name or a list", "write a type name")),
    };
    let kept: Vec<Json> = all
        .into_iter()
        .filter(|v| types.is_empty() || types.iter().any(|t| is_type(v, t)))
        .collect();
    if kept.is_empty() {
        return Err(err(
            path,
            "no value of `enum`/`const` is of the given `type`",
            "list at least one value of that type",
        ));
    }
    Ok(Node::JsonValues(kept))
}

/// Whether `v` is an instance of the JSON Schema type `t`.
fn is_type(v: &Json, t: &str) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => false,
    }
}

/// `oneOf` is generated as a union: refused unless no value can match two branches, which
/// spate knows when each branch admits JSON types no other branch admits.
fn disjoint(branches: &[Json], path: &str, root: &Json) -> Result<(), ConfigError> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (i, b) in branches.iter().enumerate() {
        let Some(kinds) = kinds(b, root, 0) else {
            return Err(overlap(path, i, "its JSON types are not stated"));
        };
        for k in kinds {
            if let Some((_, j)) = seen.iter().find(|(s, _)| *s == k) {
                return Err(overlap(path, i, &format!("it and branch {j} both admit {k}s")));
            }
            seen.push((k, i));
        }
    }
    Ok(())
}

fn overlap(path: &str, i: usize, why: &str) -> ConfigError {
    err(
        &format!("{path}.oneOf[{i}]"),
        format!("a value may match two branches of `oneOf` ({why})"),
        "give the branches different types, or use anyOf if more than one may match",
    )
}

/// The JSON types a branch admits (`integer` counted as `number`), if it says.
fn kinds<'a>(b: &'a Json, root: &'a Json, depth: usize) -> Option<Vec<&'static str>> {
    let o = b.as_object()?;
    if let Some(r) = o.get("$ref").and_then(Json::as_str) {
        let t = r.strip_prefix("#/")?.split('/').try_fold(root, |v, k| v.get(k))?;
        return (depth < 16).then(|| kinds(t, root, depth + 1)).flatten();
    }
    let name = |t: &str| -> Option<&'static str> {
        Some(match t {
            "null" => "null",
            "boolean" => "boolean",
            "string" => "string",
            "array" => "array",
            "object" => "object",
            "number" | "integer" => "number",
            _ => return None,
        })
    };
    let of_value = |v: &Json| -> &'static str {
        match v {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
            Json::Number(_) => "number",
        }
    };
    let mut out: Vec<&'static str> = match o.get("type") {
        Some(Json::String(t)) => vec![name(t)?],
        Some(Json::Array(ts)) => {
            ts.iter().map(|t| t.as_str().and_then(name)).collect::<Option<_>>()?
        }
        _ => match (o.get("const"), o.get("enum")) {
            (Some(c), _) => vec![of_value(c)],
            (_, Some(Json::Array(vs))) => vs.iter().map(of_value).collect(),
            _ if o.contains_key("properties") => vec!["object"],
            _ => return None,
        },
    };
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// A count (`minLength`, `maxItems`, ...): a non-negative whole number, `2.0` included.
fn count(o: &Map<String, Json>, k: &str, path: &str) -> Result<Option<usize>, ConfigError> {
    match o.get(k) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= 1e9 => Ok(Some(f as usize)),
            _ => Err(err(
                path,
                format!("`{k}` is not a whole number from 0"),
                format!("write {k} as a count, e.g. 3"),
            )),
        },
    }
}
