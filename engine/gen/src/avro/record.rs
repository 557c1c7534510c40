//! Avro for the built-in sources and the user's templates: a record schema derived from the
//! records each source makes, and the rendering of a record into an op program that writes
//! its binary datum.
//!
//! A source's schema is `{ts, source, id, <trace context>, <its fields>, [pad]}` in the
//! namespace `spate`: `ts` is a `long` with logical type `timestamp-micros`, the trace context
//! follows `trace_context` (`traceparent` or `trace_id` + `span_id` strings, or none). A field's
//! type comes from every value the source's variants give it: integers give `long`, any
//! fraction `double`, `true`/`false` `boolean`, text `string` (numbers among text are written
//! as text); a field some variants lack is `["null", T]` with default null. Several sources
//! in one run make the top-level schema a union of their records.

use serde_json::{json, Value as Json};

use crate::avro::{push_long, push_str, valid_name};
use spate_core::ConfigError;

use crate::format::TraceContext;
use crate::program::{Builder, Ctx, Dyn, Emitter, Kind, Op, Record, Val};

/// The Avro type of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AType {
    Bool,
    Long,
    Double,
    Str,
    /// A `string` with logical type `uuid`.
    Uuid,
    /// A `long` with logical type `timestamp-micros`: the event time.
    TsMicros,
}

impl AType {
    fn schema(self) -> Json {
        match self {
            AType::Bool => json!("boolean"),
            AType::Long => json!("long"),
            AType::Double => json!("double"),
            AType::Str => json!("string"),
            AType::Uuid => json!({"type": "string", "logicalType": "uuid"}),
            AType::TsMicros => json!({"type": "long", "logicalType": "timestamp-micros"}),
        }
    }

    /// The type that holds values of both; None when they cannot share one.
    fn join(self, other: AType) -> Option<AType> {
        use AType::*;
        Some(match (self, other) {
            (a, b) if a == b => a,
            (Long, Double) | (Double, Long) => Double,
            (Str, Bool | Long | Double | Uuid) | (Bool | Long | Double | Uuid, Str) => Str,
            (Bool, Long | Double) | (Long | Double, Bool) => Str,
            _ => return None,
        })
    }
}

/// One field of a source's record schema.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct AField {
    pub name: String,
    pub ty: AType,
    /// Some variants lack it: `["null", ty]`.
    pub nullable: bool,
}

fn literal_type(s: &str) -> AType {
    if s == "true" || s == "false" {
        AType::Bool
    } else if s.parse::<i64>().is_ok() {
        AType::Long
    } else if s.parse::<f64>().is_ok_and(f64::is_finite) {
        AType::Double
    } else {
        AType::Str
    }
}

/// The type of one value.
fn value_type(v: &Val, b: &Builder) -> AType {
    match v {
        Val::Str(_) => AType::Str,
        Val::Num(s) => literal_type(s),
        Val::Dyn(d) => match *d {
            Dyn::Num { decimals: 0, .. } | Dyn::Seq => AType::Long,
            Dyn::Num { .. } => AType::Double,
            Dyn::Ts => AType::TsMicros,
            Dyn::Uuid => AType::Uuid,
            Dyn::Session { .. } | Dyn::Pool { kind: Kind::Str, .. } => AType::Str,
            Dyn::Pool { raw, kind: Kind::Num } => b
                .raw_pool(raw)
                .iter()
                .map(|s| literal_type(s))
                .reduce(|a, t| a.join(t).unwrap_or(AType::Str))
                .unwrap_or(AType::Str),
        },
    }
}

/// Whether `v` can be written as a value of type `ty` (per-event values have few forms).
fn renders_as(v: &Val, ty: AType) -> bool {
    match v {
        Val::Str(_) => ty == AType::Str,
        Val::Num(s) => {
            ty == AType::Str
                || ty == literal_type(s)
                || (ty == AType::Double && literal_type(s) == AType::Long)
        }
        Val::Dyn(d) => match *d {
            Dyn::Pool { .. } => ty != AType::TsMicros && ty != AType::Uuid,
            Dyn::Num { decimals: 0, .. } => matches!(ty, AType::Long | AType::Double),
            Dyn::Seq => ty == AType::Long,
            Dyn::Num { .. } => ty == AType::Double,
            Dyn::Uuid => matches!(ty, AType::Uuid | AType::Str),
            Dyn::Session { .. } => ty == AType::Str,
            Dyn::Ts => ty == AType::TsMicros,
        },
    }
}

/// The fields of `source`'s schema, from all its variants' records.
pub(crate) fn infer(
    source: &str,
    records: &[Record],
    b: &Builder,
) -> Result<Vec<AField>, ConfigError> {
    let mut fields: Vec<AField> = Vec::new();
    let mut clash = None;
    for rec in records {
        for (k, v) in &rec.fields {
            let t = value_type(v, b);
            match fields.iter_mut().find(|f| &f.name == k) {
                None => {
                    if !valid_name(k)
                        || ["ts", "source", "id", "traceparent", "trace_id", "span_id", "pad"]
                            .contains(&k.as_str())
                    {
                        return Err(ConfigError::new(
                            format!("templates.{source}.fields.{k}"),
                            format!("`{k}` cannot be an Avro field name"),
                            "use letters, digits and `_` (not first a digit), and none of ts, source, id, traceparent, trace_id, span_id, pad",
                        ));
                    }
                    fields.push(AField { name: k.clone(), ty: t, nullable: false });
                }
                Some(f) => match f.ty.join(t) {
                    Some(j) => f.ty = j,
                    None => clash = clash.or(Some((k.clone(), f.ty, t))),
                },
            }
        }
    }
    for f in &mut fields {
        f.nullable = records.iter().any(|r| !r.fields.iter().any(|(k, _)| k == &f.name));
        if clash.is_none() {
            if let Some((_, v)) = records
                .iter()
                .flat_map(|r| &r.fields)
                .find(|(k, v)| k == &f.name && !renders_as(v, f.ty))
            {
                clash = Some((f.name.clone(), f.ty, value_type(v, b)));
            }
        }
    }
    if let Some((k, a, t)) = clash {
        return Err(ConfigError::new(
            format!("sources.{source}"),
            format!("field `{k}` of `{source}` has values of types {a:?} and {t:?}: an Avro field has one type"),
            "give the field values of one kind (all numbers or all text), or use another format",
        ));
    }
    Ok(fields)
}

/// The record schema of `source` (a JSON value).
pub(crate) fn record_schema(
    source: &str,
    fields: &[AField],
    trace: TraceContext,
    pad: bool,
) -> Json {
    let mut fs = vec![
        json!({"name": "ts", "type": AType::TsMicros.schema(), "doc": "Event time"}),
        json!({"name": "source", "type": "string"}),
        json!({"name": "id", "type": "string", "doc": "{run}-{worker}-{seq}"}),
    ];
    match trace {
        TraceContext::Traceparent => {
            fs.push(json!({"name": "traceparent", "type": "string", "doc": "W3C trace context"}));
        }
        TraceContext::Ids => {
            fs.push(json!({"name": "trace_id", "type": "string"}));
            fs.push(json!({"name": "span_id", "type": "string"}));
        }
        TraceContext::None => {}
    }
    for f in fields {
        if f.nullable {
            fs.push(json!({"name": f.name, "type": ["null", f.ty.schema()], "default": null}));
        } else {
            fs.push(json!({"name": f.name, "type": f.ty.schema()}));
        }
    }
    if pad {
        fs.push(
            json!({"name": "pad", "type": "string", "doc": "Filler up to the configured size"}),
        );
    }
    json!({"type": "record", "name": source, "namespace": "spate", "fields": fs})
}

/// Checks that `source` can name an Avro record.
pub(crate) fn check_source_name(source: &str) -> Result<(), ConfigError> {
    if valid_name(source) {
        Ok(())
    } else {
        Err(ConfigError::new(
            format!("sources.{source}"),
            format!("`{source}` cannot name an Avro record"),
            "name the template with letters, digits and `_` (not first a digit)",
        ))
    }
}

fn render_pooled(raw: &str, ctx: Ctx, out: &mut Vec<u8>) {
    match ctx {
        Ctx::AvroLong => push_long(out, raw.parse::<i64>().unwrap_or(0)),
        Ctx::AvroDouble => out.extend_from_slice(&raw.parse::<f64>().unwrap_or(0.0).to_le_bytes()),
        Ctx::AvroBool => out.push(u8::from(raw == "true")),
        _ => push_str(out, raw.as_bytes()),
    }
}

fn value(e: &mut Emitter<'_>, ty: AType, v: &Val) {
    match (ty, v) {
        (AType::Str | AType::Uuid, Val::Str(s) | Val::Num(s)) => {
            let mut b = Vec::with_capacity(s.len() + 2);
            push_str(&mut b, s.as_bytes());
            e.shared(&b);
        }
        (AType::Long, Val::Num(s)) => push_long(e.lit_buf(), s.parse().expect("inferred as long")),
        (AType::Double, Val::Num(s)) => {
            e.lit(&s.parse::<f64>().expect("inferred as double").to_le_bytes());
        }
        (AType::Bool, Val::Num(s)) => e.lit(&[u8::from(s == "true")]),
        (_, Val::Dyn(Dyn::Pool { raw, .. })) => {
            let ctx = match ty {
                AType::Long => Ctx::AvroLong,
                AType::Double => Ctx::AvroDouble,
                AType::Bool => Ctx::AvroBool,
                _ => Ctx::AvroStr,
            };
            let base = e.b.rendered_pool(*raw, ctx, |s, _, out| render_pooled(s, ctx, out));
            e.op(Op::Pool { base });
        }
        (AType::Long, Val::Dyn(Dyn::Num { table, .. })) => e.op(Op::AvroLong { table: *table }),
        (AType::Double, Val::Dyn(Dyn::Num { table, decimals })) => {
            e.op(Op::AvroDouble { table: *table, decimals: *decimals });
        }
        (AType::Long, Val::Dyn(Dyn::Seq)) => e.op(Op::AvroSeq),
        (AType::Str | AType::Uuid, Val::Dyn(Dyn::Uuid)) => {
            e.lit(&[72]); // 36, the text's length, as a long
            e.op(Op::Uuid);
        }
        (AType::Str, Val::Dyn(Dyn::Session { slot })) => e.op(Op::AvroSession { slot: *slot }),
        (AType::TsMicros, Val::Dyn(Dyn::Ts)) => e.op(Op::AvroTs),
        (t, v) => unreachable!("`infer` gave {t:?} to {v:?}"),
    }
}

/// What surrounds a datum.
pub(crate) struct Frame<'a> {
    /// The wire header (Confluent's, or a container's header and its block count of 1).
    pub prefix: &'a [u8],
    /// The union branch of the source (several sources).
    pub branch: &'a [u8],
    /// Container framing: the datum is a block, ended by this sync marker.
    pub sync: Option<[u8; 16]>,
}

/// Renders `rec` as the datum of a record with `fields`, framed, then the event terminator.
pub(crate) fn render(
    source: &str,
    fields: &[AField],
    rec: &Record,
    frame: &Frame<'_>,
    pad: bool,
    e: &mut Emitter<'_>,
) {
    e.lit(frame.prefix);
    if frame.sync.is_some() {
        e.op(Op::BlockStart);
    }
    e.lit(frame.branch);
    e.op(Op::AvroTs);
    push_str(e.lit_buf(), source.as_bytes());
    e.op(Op::AvroId);
    e.op(Op::Trace);
    for f in fields {
        match rec.fields.iter().find(|(k, _)| k == &f.name) {
            None => e.lit(&[0]),
            Some((_, v)) => {
                if f.nullable {
                    e.lit(&[2]);
                }
                value(e, f.ty, v);
            }
        }
    }
    if pad {
        e.op(Op::AvroPad { tail: if frame.sync.is_some() { 16 } else { 0 } });
    }
    if let Some(sync) = frame.sync {
        e.op(Op::BlockEnd);
        e.lit(&sync);
    }
    e.lit(b"\n");
}
