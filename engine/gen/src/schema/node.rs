//! The compiled form of a schema: a tree of [`Node`]s with their hints, and the checks made on it.

use regex_syntax::hir::Hir;
use serde_json::Value as Json;

use spate_core::ConfigError;

/// Decimals kept by per-event doubles (`range` and `iteration`).
pub(crate) const DOUBLE_DECIMALS: u8 = 6;

/// A compiled type.
#[derive(Clone, Debug)]
pub(crate) enum Node {
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
    /// A recursive type past the depth bound: no value. A union never draws it, an array or
    /// map of it stays empty ([`settle`]); a schema whose top has no finite value is refused.
    Never,
}

/// Whether `n` has a finite value. What has none becomes [`Node::Never`]: a union keeps the
/// branch (its index stays the schema's) and never draws it; an array or map of it is always
/// empty.
pub(crate) fn settle(n: &mut Node) -> bool {
    let finite = match n {
        Node::Never => false,
        Node::Union(bs) => {
            let mut any = false;
            for b in bs.iter_mut() {
                any |= settle(b);
            }
            any
        }
        Node::Record(fields) => fields.iter_mut().fold(true, |all, (_, f)| settle(f) && all),
        Node::Array(items, a, b) | Node::Map(items, _, a, b) => {
            if !settle(items) {
                (*a, *b) = (0, 0);
            }
            true
        }
        Node::Options(inner, _) => {
            settle(inner);
            true
        }
        _ => true,
    };
    if !finite {
        *n = Node::Never;
    }
    finite
}

#[derive(Clone, Debug)]
pub(crate) enum NumHint {
    None,
    /// Uniform in [min, max]; `table` is its per-event quantile table (int, long, double).
    Range(f64, f64, Option<u32>),
    /// `start + step * seq`, the pair stored at `table`.
    Iter(u32),
}

#[derive(Clone, Debug)]
pub(crate) enum StrHint {
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
    pub(crate) root: Node,
}

/// Output encoding of a schema source.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Enc {
    Avro,
    Json,
}

pub(crate) fn err(path: &str, what: impl Into<String>, fix: impl Into<String>) -> ConfigError {
    ConfigError::new(
        if path.is_empty() { "schema".to_string() } else { format!("schema: {path}") },
        what,
        fix,
    )
}

pub(crate) fn num(v: &Json, path: &str, what: &str) -> Result<f64, ConfigError> {
    v.as_f64().ok_or_else(|| {
        err(path, format!("`{what}` is not a number"), format!("write {what} as a number"))
    })
}

/// A `length` hint as an inclusive (min, max): a count, or `{min, max}` with `max` exclusive
/// as datagen reads it (`{min: 1, max: 5}` gives 1 to 4).
pub(crate) fn length(
    v: Option<&Json>,
    path: &str,
    default: (usize, usize),
) -> Result<(usize, usize), ConfigError> {
    let bad = || {
        err(
            path,
            "`length` is not a count or {min, max}",
            "write \"length\": 8 or \"length\": {\"min\": 1, \"max\": 9}",
        )
    };
    match v {
        None => Ok(default),
        Some(Json::Number(n)) => n.as_u64().map(|n| (n as usize, n as usize)).ok_or_else(bad),
        Some(Json::Object(o)) => {
            let min = o.get("min").and_then(Json::as_u64).unwrap_or(0) as usize;
            let max = o
                .get("max")
                .and_then(Json::as_u64)
                .map_or(min.max(default.1), |m| (m as usize).saturating_sub(1).max(min));
            if max > 1 << 20 {
                return Err(bad());
            }
            Ok((min, max))
        }
        _ => Err(bad()),
    }
}

/// Whether JSON value `v` can be written as type `n`.
pub(crate) fn fits(n: &Node, v: &Json) -> bool {
    match (n, v) {
        (Node::Null, Json::Null) | (Node::Bool, Json::Bool(_)) => true,
        (Node::Int(_) | Node::Date | Node::Time { .. }, Json::Number(x)) => x.is_i64(),
        (Node::Double(_) | Node::Float(_), Json::Number(_)) => true,
        (Node::Enum(s), Json::String(x)) => s.contains(x),
        (Node::Str(_) | Node::Uuid | Node::Bytes(..) | Node::Decimal { .. }, Json::String(_)) => {
            true
        }
        (Node::Fixed(size), Json::String(x)) => x.chars().count() == *size,
        (Node::Array(items, ..), Json::Array(vs)) => vs.iter().all(|x| fits(items, x)),
        (Node::Map(values, ..), Json::Object(m)) => m.values().all(|x| fits(values, x)),
        (Node::Record(fields), Json::Object(m)) => {
            fields.iter().all(|(k, f)| fits(f, m.get(k).unwrap_or(&Json::Null)))
        }
        (Node::Union(bs), v) => bs.iter().any(|b| fits(b, v)),
        (Node::Options(inner, _), v) => fits(inner, v),
        _ => false,
    }
}

/// Checks every `options` entry against its type, so that drawing never meets a misfit.
pub(crate) fn check_options(n: &Node, path: &str) -> Result<(), ConfigError> {
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
        Node::Record(fs) => {
            fs.iter().try_for_each(|(k, f)| check_options(f, &format!("{path}.{k}")))
        }
        _ => Ok(()),
    }
}
