//! Drawing a random value of a [`Node`] into a variant's program: literal bytes for what is fixed
//! per variant, ops for what is drawn per event.

use regex_syntax::hir::{Class, Hir, HirKind};
use serde_json::Value as Json;

use spate_core::rng::Rng;

use super::node::{fits, Enc, Node, NumHint, StrHint, DOUBLE_DECIMALS};
use crate::avro::{push_long, push_str};
use crate::format::json_str;
use crate::program::{Emitter, Op};

const ALNUM: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

pub(crate) fn between(rng: &mut Rng, (a, b): (usize, usize)) -> usize {
    a + rng.below((b - a) as u64 + 1) as usize
}

pub(crate) fn draw_str(h: &StrHint, rng: &mut Rng) -> String {
    match h {
        StrHint::None => {
            (0..between(rng, (8, 16))).map(|_| ALNUM[rng.below(36) as usize] as char).collect()
        }
        StrHint::Length(a, b) => {
            (0..between(rng, (*a, *b))).map(|_| ALNUM[rng.below(36) as usize] as char).collect()
        }
        StrHint::Regex(hir) => {
            let mut out = Vec::new();
            gen_regex(hir, rng, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
    }
}

/// A uniform pick among the values of inclusive `ranges`.
pub(crate) fn pick_in(ranges: &[(u32, u32)], rng: &mut Rng) -> Option<u32> {
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
pub(crate) fn gen_regex(h: &Hir, rng: &mut Rng, out: &mut Vec<u8>) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.extend_from_slice(&l.0),
        HirKind::Class(Class::Unicode(c)) => {
            let ranges: Vec<(u32, u32)> =
                c.ranges().iter().map(|r| (r.start() as u32, r.end() as u32)).collect();
            if let Some(ch) = pick_in(&ranges, rng).and_then(char::from_u32) {
                let mut b = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
            }
        }
        HirKind::Class(Class::Bytes(c)) => {
            let ranges: Vec<(u32, u32)> =
                c.ranges().iter().map(|r| (u32::from(r.start()), u32::from(r.end()))).collect();
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
pub(crate) fn bytes_json(b: &[u8], out: &mut Vec<u8>) {
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
fn record<'n>(
    fields: &'n [(String, Node)],
    enc: Enc,
    e: &mut Emitter<'_>,
    mut each: impl FnMut(&'n str, &'n Node, &mut Emitter<'_>),
) {
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
fn map<'k>(
    keys: impl ExactSizeIterator<Item = &'k str>,
    enc: Enc,
    e: &mut Emitter<'_>,
    mut each: impl FnMut(&'k str, &mut Emitter<'_>),
) {
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
pub(crate) fn draw(n: &Node, enc: Enc, rng: &mut Rng, e: &mut Emitter<'_>) {
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
                NumHint::Range(min, max, None) => {
                    put_f64(e, enc, min + (max - min) * rng.f64(), float);
                }
                NumHint::Iter(table) => {
                    e.op(Op::Iter { table: *table, decimals: d, avro: enc == Enc::Avro });
                }
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
            // A branch past the recursion bound (`Never`) is skipped; the index written is
            // still the branch's place in the schema.
            let live = branches.iter().filter(|b| !matches!(b, Node::Never)).count();
            let k = rng.below(live as u64) as usize;
            let i = (0..branches.len())
                .filter(|&i| !matches!(branches[i], Node::Never))
                .nth(k)
                .unwrap_or(0);
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
            while start < 7
                && ((be[start] == 0 && be[start + 1] < 0x80)
                    || (be[start] == 0xff && be[start + 1] >= 0x80))
            {
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
        // Never drawn: unions skip it, arrays and maps of it are empty, a root of it refused.
        Node::Never => {}
        Node::TimeText => {
            e.lit(b"\"");
            e.op(Op::Ts3339);
            e.lit(b"\"");
        }
    }
}

/// Emits `v` (an `options` entry, JSON) as a value of `n`.
pub(crate) fn from_json(n: &Node, v: &Json, enc: Enc, e: &mut Emitter<'_>) {
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
            put_i64(e, enc, x.as_i64().unwrap_or(x.as_f64().unwrap_or(0.0) as i64));
        }
        (Node::Double(_), Json::Number(x)) => put_f64(e, enc, x.as_f64().unwrap_or(0.0), false),
        (Node::Float(_), Json::Number(x)) => put_f64(e, enc, x.as_f64().unwrap_or(0.0), true),
        (Node::Enum(symbols), Json::String(s)) => match enc {
            Enc::Avro => {
                push_long(e.lit_buf(), symbols.iter().position(|x| x == s).unwrap_or(0) as i64);
            }
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
        (Node::Array(items, ..), Json::Array(vs)) => {
            array(vs.len(), enc, e, |i, e| from_json(items, &vs[i], enc, e));
        }
        (Node::Map(values, ..), Json::Object(m)) => {
            map(m.keys().map(String::as_str), enc, e, |k, e| from_json(values, &m[k], enc, e));
        }
        (Node::Record(fields), Json::Object(m)) => {
            record(fields, enc, e, |name, f, e| {
                from_json(f, m.get(name).unwrap_or(&Json::Null), enc, e);
            });
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
