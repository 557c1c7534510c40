//! User-defined sources: a template lists fields and how each is generated.
//!
//! ```yaml
//! templates:
//!   checkout:
//!     fields:
//!       - { name: user,    gen: { choice: [alice, bob, carol], weights: [5, 3, 1] } }
//!       - { name: amount,  gen: { float: { min: 1.0, max: 500.0, decimals: 2, dist: lognormal } }, per_event: true }
//!       - { name: items,   gen: { int: { min: 1, max: 9, dist: uniform } } }
//!       - { name: client,  gen: ipv4 }
//!       - { name: order,   gen: uuid, per_event: true }
//!       - { name: at,      gen: timestamp }
//!       - { name: n,       gen: sequence }
//!       - { name: note,    gen: { words: { list: [fast, slow, retry, ok], min: 2, max: 5 } } }
//!       - { name: session, gen: { session: { pool: 100, reuse: 20 } } }
//! ```
//!
//! Generators (`gen`):
//! - `ipv4`, `ipv6`: public-looking addresses. `uuid`: a version-4 UUID.
//! - `timestamp`: the event time, RFC 3339 with microseconds (always per event).
//! - `sequence`: the event's sequence number within its worker (always per event).
//! - `{ choice: [..], weights: [..] }`: one of the values (strings, numbers or booleans);
//!   `weights` is optional and must have one weight per value.
//! - `{ int: { min, max, dist } }`, `{ float: { min, max, decimals, dist } }`: numbers in
//!   `[min, max]` (`decimals` 0 to 9, default 2). `dist`:
//!   - `uniform` (default);
//!   - `normal`: `mean` and `stddev`, by default the middle of the range and a sixth of it;
//!   - `lognormal`: `median` and `sigma`, by default `sqrt(min * max)` and 1.0 (heavy tail,
//!     like latencies and sizes);
//!   - `exponential`: `mean` above `min`, by default a quarter of the range;
//!   - `zipf` (int only): value `min + k` with probability proportional to
//!     `1 / (k + 1)^exponent` (default 1.1): a few very popular values, a long tail.
//!
//!   Samples outside `[min, max]` are clamped.
//! - `{ words: { list, min, max } }`: `min` to `max` words (default 1 to 3) from `list`
//!   (default: a built-in list), separated by spaces.
//! - `{ session: { pool, reuse } }`: an id from a pool of `pool` ids, kept for about `reuse`
//!   events in a row (per worker) before another is picked: correlated events.
//! - `{ const: value }`: always the same value.
//!
//! Fields are frozen into the pre-rendered variants (1024 per source) unless `per_event: true`,
//! which draws a fresh value per event: numbers from a quantile table, `uuid` at random,
//! `choice`/`words`/`ipv4`/`ipv6` from a pool of 1024 pre-drawn, pre-rendered values.

use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use spate_core::rng::Rng;
use spate_core::ConfigError;

use crate::dist::{zipf_cdf, Dist, NumGen, ZIPF_MAX_N};
use crate::program::{Builder, Dyn, Kind, Record, SessionDef, Val, TABLE};
use crate::values::{logfmt_msg, public_ipv4, public_ipv6};

/// Most fields in one template: each of the 1,024 pre-rendered events holds them all.
pub(crate) const MAX_FIELDS: usize = 1024;

/// A user-defined source as written in the configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct RawTemplate {
    /// The event's fields, in output order.
    pub fields: Vec<RawField>,
}

/// One field of a [`RawTemplate`].
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
#[derive(schemars::JsonSchema)]
pub struct RawField {
    /// Key in the output (`[A-Za-z0-9_.-]`, 1 to 64 characters).
    pub name: String,
    /// The generator: a name (`ipv4`) or a map (`{ int: { min: 1, max: 9 } }`); see the
    /// module docs. Kept as YAML here and checked when the spec is built, so that every
    /// mistake is reported with the template, field index and field name.
    #[schemars(with = "serde_json::Value")]
    pub gen: Value,
    /// Draw a new value for every event instead of freezing it into the variants.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_event: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenMap {
    choice: Option<Vec<Value>>,
    weights: Option<Vec<u32>>,
    int: Option<NumSpec>,
    float: Option<NumSpec>,
    words: Option<WordsSpec>,
    session: Option<SessionSpec>,
    #[serde(rename = "const")]
    constant: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NumSpec {
    min: f64,
    max: f64,
    dist: Option<String>,
    decimals: Option<u8>,
    mean: Option<f64>,
    stddev: Option<f64>,
    median: Option<f64>,
    sigma: Option<f64>,
    exponent: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WordsSpec {
    list: Option<Vec<String>>,
    min: Option<u32>,
    max: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionSpec {
    pool: u32,
    reuse: u32,
}

const DEFAULT_WORDS: [&str; 24] = [
    "alpha", "bravo", "cache", "delta", "edge", "fetch", "gamma", "hot", "index", "join", "key",
    "lag", "merge", "node", "offset", "peer", "queue", "retry", "shard", "token", "update",
    "vector", "write", "zone",
];

/// Field names the common part of every event already uses.
const RESERVED: [&str; 7] = ["ts", "source", "id", "trace_id", "span_id", "traceparent", "pad"];

/// How a frozen field value is drawn per variant.
enum FieldGen {
    Const(Val),
    Choice { values: Vec<Val>, weights: Vec<u32> },
    Num(NumGen),
    Ipv4,
    Ipv6,
    Uuid,
    Words { list: Vec<String>, min: u32, max: u32 },
    Dyn(Dyn),
}

impl FieldGen {
    fn sample(&self, rng: &mut Rng) -> Val {
        match self {
            FieldGen::Const(v) => v.clone(),
            FieldGen::Choice { values, weights } => values[rng.weighted(weights)].clone(),
            FieldGen::Num(g) => Val::Num(NumGen::format(g.sample(rng), g.decimals)),
            FieldGen::Ipv4 => Val::Str(public_ipv4(rng)),
            FieldGen::Ipv6 => Val::Str(public_ipv6(rng)),
            FieldGen::Uuid => Val::Str(uuid_v4(rng.next_u64(), rng.next_u64())),
            FieldGen::Words { list, min, max } => {
                let n = rng.range_i64(i64::from(*min), i64::from(*max));
                let words: Vec<&str> = (0..n).map(|_| rng.pick(list).as_str()).collect();
                Val::Str(words.join(" "))
            }
            FieldGen::Dyn(d) => Val::Dyn(*d),
        }
    }

    fn kind(&self) -> Kind {
        match self {
            FieldGen::Choice { values, .. } if values.iter().all(|v| matches!(v, Val::Num(_))) => {
                Kind::Num
            }
            FieldGen::Num(_) => Kind::Num,
            _ => Kind::Str,
        }
    }
}

/// A version-4 UUID from 128 random bits.
pub(crate) fn uuid_v4(hi: u64, lo: u64) -> String {
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// A template checked and ready to make records.
pub(crate) struct CompiledTemplate {
    name: String,
    fields: Vec<(String, FieldGen)>,
}

impl CompiledTemplate {
    pub(crate) fn record(&self, rng: &mut Rng) -> Record {
        let fields: Vec<(String, Val)> =
            self.fields.iter().map(|(k, g)| (k.clone(), g.sample(rng))).collect();
        let msg = logfmt_msg(&fields);
        Record {
            fields,
            facility: 1, // user-level
            severity: 6, // info
            host: format!("{}-{:02}", self.name, rng.range_i64(1, 8)),
            app: self.name.clone(),
            procid: rng.range_i64(100, 65_000) as u32,
            msgid: self.name.clone(),
            msg,
            web: None,
        }
    }
}

fn valid_name(s: &str, max: usize, extra: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars().all(|c| c.is_ascii_alphanumeric() || extra.contains(&c))
}

/// A scalar YAML value as a field value.
fn scalar(v: &Value) -> Option<Val> {
    match v {
        Value::String(s) => Some(Val::Str(s.clone())),
        Value::Number(n) => {
            let s = n.to_string();
            // JSON has no NaN/inf: only finite numbers are numbers.
            if n.as_f64().is_some_and(f64::is_finite) && !s.contains("inf") && !s.contains("NaN") {
                Some(Val::Num(s))
            } else {
                None
            }
        }
        Value::Bool(b) => Some(Val::Num(b.to_string())),
        _ => None,
    }
}

/// Checks template `name` and prepares its generators (tables and pools go into `b`).
pub(crate) fn compile(
    name: &str,
    raw: &RawTemplate,
    b: &mut Builder,
    rng: &mut Rng,
) -> Result<CompiledTemplate, ConfigError> {
    let tkey = format!("templates.{name}");
    if !valid_name(name, 32, &['_', '-']) {
        return Err(ConfigError::new(
            &tkey,
            format!("template name `{name}` is not 1 to 32 letters, digits, `_` or `-`"),
            "rename the template (it is also the source name, the syslog app name and msgid)",
        ));
    }
    if raw.fields.is_empty() {
        return Err(ConfigError::new(
            format!("{tkey}.fields"),
            "a template needs at least one field",
            "add fields, e.g. `- { name: user, gen: uuid }`",
        ));
    }
    if raw.fields.len() > MAX_FIELDS {
        return Err(ConfigError::new(
            format!("{tkey}.fields"),
            format!("{} fields; a template has at most {MAX_FIELDS}", raw.fields.len()),
            "keep the fields a pipeline reads (a wide event can also be padded with `size`)",
        ));
    }
    let mut fields = Vec::with_capacity(raw.fields.len());
    for (i, f) in raw.fields.iter().enumerate() {
        let fkey = format!("{tkey}.fields[{i}]");
        if !valid_name(&f.name, 64, &['_', '-', '.']) {
            return Err(ConfigError::new(
                format!("{fkey}.name"),
                format!(
                    "field {i}: name `{}` is not 1 to 64 letters, digits, `_`, `-` or `.`",
                    f.name
                ),
                "rename the field",
            ));
        }
        if RESERVED.contains(&f.name.as_str()) {
            return Err(ConfigError::new(
                format!("{fkey}.name"),
                format!("field `{}`: every event already has `{}`", f.name, f.name),
                format!("rename the field; reserved names: {}", RESERVED.join(", ")),
            ));
        }
        if raw.fields[..i].iter().any(|g| g.name == f.name) {
            return Err(ConfigError::new(
                format!("{fkey}.name"),
                format!("field `{}` is defined twice", f.name),
                "give each field a distinct name",
            ));
        }
        let g = compile_gen(&f.gen, f.per_event, b, rng).map_err(|(message, fix)| {
            ConfigError::new(format!("{fkey}.gen"), format!("field `{}`: {message}", f.name), fix)
        })?;
        fields.push((f.name.clone(), g));
    }
    Ok(CompiledTemplate { name: name.to_string(), fields })
}

type GenError = (String, String);

fn err<T>(message: impl Into<String>, fix: impl Into<String>) -> Result<T, GenError> {
    Err((message.into(), fix.into()))
}

const GEN_FIX: &str = "use one of: ipv4, ipv6, uuid, timestamp, sequence, or a map with one of choice, int, float, words, session, const";

fn compile_gen(
    v: &Value,
    per_event: bool,
    b: &mut Builder,
    rng: &mut Rng,
) -> Result<FieldGen, GenError> {
    let fg = match v {
        Value::String(s) => match s.as_str() {
            "ipv4" => FieldGen::Ipv4,
            "ipv6" => FieldGen::Ipv6,
            "uuid" if per_event => return Ok(FieldGen::Dyn(Dyn::Uuid)),
            "uuid" => FieldGen::Uuid,
            "timestamp" => return Ok(FieldGen::Dyn(Dyn::Ts)),
            "sequence" => return Ok(FieldGen::Dyn(Dyn::Seq)),
            other => return err(format!("unknown generator `{other}`"), GEN_FIX),
        },
        Value::Mapping(_) => {
            let m: GenMap = serde_yaml_ng::from_value(v.clone())
                .map_err(|e| (e.to_string(), GEN_FIX.to_string()))?;
            let given = [
                m.choice.is_some(),
                m.int.is_some(),
                m.float.is_some(),
                m.words.is_some(),
                m.session.is_some(),
                m.constant.is_some(),
            ];
            match given.iter().filter(|&&g| g).count() {
                0 => return err("no generator given", GEN_FIX),
                1 => {}
                _ => {
                    return err(
                        "more than one generator given",
                        "give exactly one of choice, int, float, words, session, const",
                    )
                }
            }
            if m.weights.is_some() && m.choice.is_none() {
                return err(
                    "`weights` only applies to `choice`",
                    "remove `weights` or use `choice`",
                );
            }
            if let Some(values) = m.choice {
                if values.is_empty() {
                    return err("`choice` is empty", "list at least one value");
                }
                let vals: Vec<Val> = values
                    .iter()
                    .enumerate()
                    .map(|(j, v)| {
                        scalar(v).ok_or_else(|| {
                            (
                                format!("choice value {j} is not a string, number or boolean"),
                                "quote it as a string".to_string(),
                            )
                        })
                    })
                    .collect::<Result<_, _>>()?;
                let weights = match m.weights {
                    None => vec![1; vals.len()],
                    Some(w) if w.len() != vals.len() => {
                        return err(
                            format!("{} weights for {} choices", w.len(), vals.len()),
                            "give exactly one weight per choice",
                        )
                    }
                    Some(w) if w.iter().all(|&x| x == 0) => {
                        return err("all weights are 0", "give at least one weight above 0")
                    }
                    Some(w) => w,
                };
                FieldGen::Choice { values: vals, weights }
            } else if let Some(n) = m.int {
                num_gen(&n, true)?
            } else if let Some(n) = m.float {
                num_gen(&n, false)?
            } else if let Some(w) = m.words {
                let list = w.list.unwrap_or_else(|| {
                    DEFAULT_WORDS.iter().map(std::string::ToString::to_string).collect()
                });
                if list.is_empty() {
                    return err(
                        "`words.list` is empty",
                        "list at least one word, or omit `list` for the built-in words",
                    );
                }
                let min = w.min.unwrap_or(1);
                let max = w.max.unwrap_or(min.max(3));
                if min == 0 || min > max || max > 64 {
                    return err(
                        format!("words min {min} / max {max} is not 1 <= min <= max <= 64"),
                        "use e.g. `min: 1, max: 5`",
                    );
                }
                FieldGen::Words { list, min, max }
            } else if let Some(s) = m.session {
                if s.pool == 0 || s.pool > 1_000_000 {
                    return err(
                        format!("session pool {} is out of range", s.pool),
                        "use a pool of 1 to 1000000 ids",
                    );
                }
                if s.reuse == 0 || s.reuse > 1_000_000 {
                    return err(
                        format!("session reuse {} is out of range", s.reuse),
                        "use 1 to 1000000 events per session",
                    );
                }
                let ids: Vec<String> =
                    (0..s.pool).map(|_| format!("sess-{:016x}", rng.next_u64())).collect();
                let base = b.add_entries(&ids);
                let slot = b.add_session(SessionDef { base, n: s.pool, reuse: s.reuse });
                return Ok(FieldGen::Dyn(Dyn::Session { slot }));
            } else {
                let c = m.constant.unwrap_or(Value::Null);
                FieldGen::Const(scalar(&c).ok_or_else(|| {
                    (
                        "`const` is not a string, number or boolean".to_string(),
                        "quote it as a string".to_string(),
                    )
                })?)
            }
        }
        _ => return err("the generator is neither a name nor a map", GEN_FIX),
    };
    if !per_event {
        return Ok(fg);
    }
    Ok(match fg {
        FieldGen::Const(_) => fg,
        FieldGen::Num(g) => {
            let table = b.add_table(&g.quantiles(rng));
            FieldGen::Dyn(Dyn::Num { table, decimals: g.decimals })
        }
        other => {
            // A pool of pre-drawn values, escaped per format when rendered.
            let kind = other.kind();
            let values: Vec<String> = (0..TABLE)
                .map(|_| match other.sample(rng) {
                    Val::Str(s) | Val::Num(s) => s,
                    Val::Dyn(_) => String::new(),
                })
                .collect();
            FieldGen::Dyn(Dyn::Pool { raw: b.add_raw_pool(values, kind), kind })
        }
    })
}

fn num_gen(n: &NumSpec, int: bool) -> Result<FieldGen, GenError> {
    let what = if int { "int" } else { "float" };
    if !n.min.is_finite() || !n.max.is_finite() {
        return err("min and max must be finite numbers", "give plain numbers");
    }
    if n.min > n.max {
        return err(
            format!("min {} is greater than max {}", n.min, n.max),
            "swap them, or fix the range",
        );
    }
    let decimals = if int {
        if n.decimals.is_some() {
            return err("`decimals` does not apply to int", "remove `decimals`, or use `float`");
        }
        if n.min.fract() != 0.0 || n.max.fract() != 0.0 {
            return err(
                "int min and max must be whole numbers",
                "use whole numbers, or use `float`",
            );
        }
        0
    } else {
        let d = n.decimals.unwrap_or(2);
        if d > 9 {
            return err(format!("{d} decimals is more than 9"), "use 0 to 9 decimals");
        }
        d
    };
    let limit = 9.0e15 / 10f64.powi(i32::from(decimals));
    if n.min.abs() > limit || n.max.abs() > limit {
        return err(
            format!("the range is too large for {decimals} decimals"),
            format!("keep min and max within ±{limit:e}"),
        );
    }
    let dist_name = n.dist.as_deref().unwrap_or("uniform");
    let allowed: &[&str] = match dist_name {
        "uniform" => &[],
        "normal" => &["mean", "stddev"],
        "lognormal" => &["median", "sigma"],
        "exponential" => &["mean"],
        "zipf" => &["exponent"],
        other => {
            return err(
                format!("unknown distribution `{other}`"),
                "use uniform, normal, lognormal, exponential or zipf",
            )
        }
    };
    for (k, given) in [
        ("mean", n.mean),
        ("stddev", n.stddev),
        ("median", n.median),
        ("sigma", n.sigma),
        ("exponent", n.exponent),
    ] {
        if given.is_some() && !allowed.contains(&k) {
            return err(
                format!("`{k}` does not apply to the {dist_name} distribution"),
                format!("remove `{k}`, or choose a distribution it applies to"),
            );
        }
        if given.is_some_and(|g| !g.is_finite()) {
            return err(format!("`{k}` must be a finite number"), "give a plain number");
        }
    }
    let range = n.max - n.min;
    let dist = match dist_name {
        "normal" => {
            let stddev = n.stddev.unwrap_or(range / 6.0);
            if stddev < 0.0 {
                return err("stddev is negative", "give a stddev of 0 or more");
            }
            Dist::Normal { mean: n.mean.unwrap_or(n.min + range / 2.0), stddev }
        }
        "lognormal" => {
            let median = n.median.unwrap_or(if n.min > 0.0 {
                (n.min * n.max).sqrt()
            } else {
                n.min + range / 2.0
            });
            let sigma = n.sigma.unwrap_or(1.0);
            if median <= 0.0 {
                return err(
                    "a lognormal distribution needs a positive median",
                    "give `median` above 0, or a range above 0",
                );
            }
            if sigma <= 0.0 {
                return err("sigma must be above 0", "use e.g. `sigma: 1.0`");
            }
            Dist::LogNormal { median, sigma }
        }
        "exponential" => {
            let mean = n.mean.unwrap_or(range / 4.0);
            if mean < 0.0 {
                return err(
                    "mean is negative",
                    "give a mean of 0 or more (it is the mean above min)",
                );
            }
            Dist::Exponential { mean }
        }
        "zipf" => {
            if !int {
                return err(
                    "zipf only applies to int",
                    format!("use `int`, or another distribution for `{what}`"),
                );
            }
            let count = (n.max - n.min) as u64 + 1;
            if count > ZIPF_MAX_N {
                return err(
                    format!("zipf over {count} values is more than {ZIPF_MAX_N}"),
                    "narrow the range",
                );
            }
            let s = n.exponent.unwrap_or(1.1);
            if s <= 0.0 {
                return err("exponent must be above 0", "use e.g. `exponent: 1.1`");
            }
            Dist::Zipf { cdf: zipf_cdf(count, s) }
        }
        _ => Dist::Uniform,
    };
    Ok(FieldGen::Num(NumGen::new(n.min, n.max, decimals, dist)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() {
        let u = uuid_v4(u64::MAX, u64::MAX);
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
