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

mod compiler;
mod draw;
mod json_schema;
mod names;
mod node;

use std::collections::HashMap;

use serde_json::Value as Json;

use spate_core::rng::Rng;
use spate_core::ConfigError;

use crate::program::{Builder, Emitter, Op};
use compiler::Compiler;
use node::{check_options, err};

pub use names::prepare_avro;
pub(crate) use node::{Enc, SchemaSource};

/// `text` without `//` line comments and `/* */` block comments outside strings: datagen's
/// parser accepts them in schema files, JSON does not.
pub fn strip_comments(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut i, mut in_str, mut from) = (0, false, 0);
    while i < b.len() {
        match (in_str, b[i], b.get(i + 1)) {
            (true, b'\\', _) => i += 1,
            (true | false, b'"', _) => in_str = !in_str,
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
            o.contains_key("$schema")
                || o.contains_key("properties")
                || o.get("type").and_then(Json::as_str) == Some("object")
        }
        _ => false,
    }
}

/// Compiles a schema (JSON text) for generation: a JSON Schema (it has `$schema`,
/// `properties` or `"type": "object"`) or else an Avro schema, which `apache-avro` checks
/// first, so the errors here are about generation, each naming its path in the schema.
pub(crate) fn compile(
    text: &str,
    depth: usize,
    b: &mut Builder,
) -> Result<SchemaSource, ConfigError> {
    let doc: Json = serde_json::from_str(text)
        .map_err(|e| err("", format!("not JSON: {e}"), "fix the schema file"))?;
    if let Json::Object(o) = &doc {
        if is_json_schema(text) {
            let name = o
                .get("title")
                .and_then(Json::as_str)
                .filter(|t| crate::avro::valid_name(t))
                .unwrap_or("record")
                .to_string();
            let mut c = Compiler { b, names: HashMap::new(), open: Vec::new(), depth, made: 0 };
            let root = c.json_schema(&doc, "", &doc)?;
            return Ok(SchemaSource { name, json_schema: true, root });
        }
    }
    // apache-avro has panicked on names it should refuse (checked before, by `prepare_avro`):
    // whatever else it may panic on is an error about the schema, not a crash of the run.
    match std::panic::catch_unwind(|| apache_avro::Schema::parse_str(text)) {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            return Err(err(
                "",
                format!("not a valid Avro schema: {e}"),
                "fix the schema file (Avro 1.12 specification)",
            ))
        }
        Err(_) => {
            return Err(err(
                "",
                "the Avro schema parser failed on this schema",
                "check its names and types against the Avro 1.12 specification",
            ))
        }
    }
    // The source's name: a named type's own (records, enums, fixed), else its type's
    // (`string`, `array`, `map`, `union`, ...): any Avro type may be the top level.
    let name = match &doc {
        Json::Object(o) => match o.get("type").and_then(Json::as_str) {
            Some("record" | "error" | "enum" | "fixed") => o
                .get("name")
                .and_then(Json::as_str)
                .and_then(|n| n.rsplit('.').next())
                .unwrap_or("record"),
            Some(t) => t,
            None => "value",
        },
        Json::String(t) => t.as_str(),
        Json::Array(_) => "union",
        _ => "value",
    }
    .to_string();
    let mut c = Compiler { b, names: HashMap::new(), open: Vec::new(), depth, made: 0 };
    let mut root = c.node(&doc, "", None)?;
    if !node::settle(&mut root) {
        return Err(err(
            "",
            "every value of this schema contains itself without end",
            "give the recursion a way out: a union with null (or another type), an array or a map",
        ));
    }
    Ok(SchemaSource { name, json_schema: false, root })
}

impl SchemaSource {
    /// Checks what compiling could not (options against their types).
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check_options(&self.root, "fields")
    }

    /// Renders one random record as a program after `prefix` (a wire header), in a container
    /// block when `sync` is given, then the event terminator.
    pub(crate) fn render(
        &self,
        enc: Enc,
        prefix: &[u8],
        sync: Option<[u8; 16]>,
        rng: &mut Rng,
        e: &mut Emitter<'_>,
    ) {
        e.lit(prefix);
        if sync.is_some() {
            e.op(Op::BlockStart);
        }
        draw::draw(&self.root, enc, rng, e);
        if let Some(sync) = sync {
            e.op(Op::BlockEnd);
            e.lit(&sync);
        }
        e.lit(b"\n");
    }
}
