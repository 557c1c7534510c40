//! Output formats: escaping rules and the rendering of a [`Record`] into an op program.
//!
//! Each renderer writes the format's fixed parts and every static value as literal bytes
//! (escaped here, once, at start-up) and leaves dynamic ops for the per-event values.

use std::fmt;
use std::str::FromStr;

use crate::program::{Ctx, Dyn, Emitter, Kind, Op, Record, Val};

/// An output format. Names (FromStr/Display): `json`, `logfmt`, `apache_common`,
/// `apache_combined`, `rfc5424`, `rfc3164`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// `key=value` pairs.
    Logfmt,
    /// Apache Common Log Format (`web` only).
    ApacheCommon,
    /// Apache Combined Log Format (`web` only).
    ApacheCombined,
    /// RFC 5424 syslog.
    Rfc5424,
    /// RFC 3164 (BSD) syslog.
    Rfc3164,
    /// Avro binary datums (object container files on the file and stdout sinks).
    Avro,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 7] = [
        Format::Json,
        Format::Logfmt,
        Format::ApacheCommon,
        Format::ApacheCombined,
        Format::Rfc5424,
        Format::Rfc3164,
        Format::Avro,
    ];

    /// The line formats (all but Avro).
    pub const TEXT: [Format; 6] = [
        Format::Json,
        Format::Logfmt,
        Format::ApacheCommon,
        Format::ApacheCombined,
        Format::Rfc5424,
        Format::Rfc3164,
    ];

    /// The format's name in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::ApacheCommon => "apache_common",
            Format::ApacheCombined => "apache_combined",
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Avro => "avro",
        }
    }

    /// Apache formats only describe HTTP access events.
    pub fn is_apache(self) -> bool {
        matches!(self, Format::ApacheCommon | Format::ApacheCombined)
    }

    /// Whether events are binary (no line framing; containers in files).
    pub fn is_binary(self) -> bool {
        self == Format::Avro
    }

    /// Whether the line itself carries the event id and trace context.
    pub fn carries_ids(self) -> bool {
        !self.is_apache()
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error of [`Format::from_str`]: the unknown name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownFormat(pub String);

impl fmt::Display for UnknownFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
        write!(f, "unknown format `{}`: use one of {}", self.0, names.join(", "))
    }
}

impl std::error::Error for UnknownFormat {}

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s.trim())
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Which trace context an event's line carries. Never both forms: `traceparent` already holds
/// the trace and span ids. (Kafka records carry a `traceparent` header either way.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TraceContext {
    /// `traceparent` (W3C: `00-{trace}-{span}-01`).
    Traceparent,
    /// `trace_id` and `span_id`, as OpenTelemetry log records name them.
    Ids,
    /// None in the line.
    None,
}

impl TraceContext {
    /// Every form, in the order the CLI lists them.
    pub const ALL: [TraceContext; 3] =
        [TraceContext::Traceparent, TraceContext::Ids, TraceContext::None];

    /// The form's name in configs and flags.
    pub fn name(self) -> &'static str {
        match self {
            TraceContext::Traceparent => "traceparent",
            TraceContext::Ids => "ids",
            TraceContext::None => "none",
        }
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TraceContext {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TraceContext::ALL.into_iter().find(|t| t.name() == s.trim()).ok_or_else(|| s.to_string())
    }
}

// ---- escaping (start-up only) ----

/// A JSON string literal, quotes included.
pub(crate) fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Whether a logfmt value must be quoted.
fn logfmt_needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.bytes().any(|b| b <= b' ' || b == b'=' || b == b'"' || b == b'\\' || b == 0x7f)
}

/// A logfmt value: bare when it can be, else quoted with `\"`, `\\`, `\n`, `\r`, `\t` escapes
/// (other control characters become spaces).
pub(crate) fn logfmt_val(s: &str, out: &mut Vec<u8>) {
    if !logfmt_needs_quotes(s) {
        out.extend_from_slice(s.as_bytes());
        return;
    }
    out.push(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push(b' '),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Free text inside a syslog MSG: control characters (which would break line framing)
/// become spaces.
pub(crate) fn msg_text(s: &str, out: &mut Vec<u8>) {
    for ch in s.chars() {
        if (ch as u32) < 0x20 || ch == '\u{7f}' {
            out.push(b' ');
        } else {
            let mut b = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        }
    }
}

/// An RFC 5424 SD-PARAM value (without quotes): `"`, `\` and `]` are backslash-escaped.
pub(crate) fn sd_val(s: &str, out: &mut Vec<u8>) {
    for ch in s.chars() {
        match ch {
            '"' | '\\' | ']' => {
                out.push(b'\\');
                out.push(ch as u8);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push(b' '),
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Printable US-ASCII without spaces, at most `max` bytes, never empty (syslog header fields).
pub(crate) fn header_token(s: &str, max: usize) -> String {
    let t: String = s.chars().filter(char::is_ascii_graphic).take(max).collect();
    if t.is_empty() {
        "-".to_string()
    } else {
        t
    }
}

/// An RFC 3164 TAG: alphanumerics only, 1 to 32 of them.
pub(crate) fn tag(s: &str) -> String {
    let t: String = s.chars().filter(char::is_ascii_alphanumeric).take(32).collect();
    if t.is_empty() {
        "spate".to_string()
    } else {
        t
    }
}

// ---- rendering ----

fn render_pooled(raw: &str, kind: Kind, ctx: Ctx, out: &mut Vec<u8>) {
    match (kind, ctx) {
        (Kind::Num, _) => out.extend_from_slice(raw.as_bytes()),
        (Kind::Str, Ctx::Json) => json_str(raw, out),
        (Kind::Str, Ctx::Logfmt | Ctx::Msg) => logfmt_val(raw, out),
        (Kind::Str, _) => unreachable!("Avro pools are rendered by event/avro.rs"),
    }
}

/// The op of a dynamic value (`Dyn::Pool` resolved to its rendering for `ctx`).
fn dyn_op(e: &mut Emitter<'_>, d: Dyn, ctx: Ctx) -> Op {
    match d {
        Dyn::Num { table, decimals } => Op::Num { table, decimals },
        Dyn::Pool { raw, .. } => {
            let base = e.b.rendered_pool(raw, ctx, |s, k, out| render_pooled(s, k, ctx, out));
            Op::Pool { base }
        }
        Dyn::Uuid => Op::Uuid,
        Dyn::Seq => Op::Seq,
        Dyn::Session { slot } => Op::Session { slot },
        Dyn::Ts => Op::Ts3339,
    }
}

/// A value in a JSON document.
fn json_value(e: &mut Emitter<'_>, v: &Val) {
    match v {
        Val::Str(s) => {
            let mut b = Vec::with_capacity(s.len() + 2);
            json_str(s, &mut b);
            e.shared(&b);
        }
        Val::Num(n) => e.lit(n.as_bytes()),
        Val::Dyn(d @ Dyn::Pool { .. }) => {
            let op = dyn_op(e, *d, Ctx::Json);
            e.op(op);
        }
        Val::Dyn(d) => {
            let quoted = d.kind() == Kind::Str;
            if quoted {
                e.lit(b"\"");
            }
            let op = dyn_op(e, *d, Ctx::Json);
            e.op(op);
            if quoted {
                e.lit(b"\"");
            }
        }
    }
}

/// A value in logfmt (also used for logfmt-ish syslog messages, `ctx` = Msg).
fn logfmt_value(e: &mut Emitter<'_>, v: &Val, ctx: Ctx) {
    match v {
        Val::Str(s) => {
            let mut b = Vec::with_capacity(s.len() + 2);
            logfmt_val(s, &mut b);
            e.shared(&b);
        }
        Val::Num(n) => e.lit(n.as_bytes()),
        Val::Dyn(d) => {
            // Dynamic ops write only safe bytes: bare values are fine.
            let op = dyn_op(e, *d, ctx);
            e.op(op);
        }
    }
}

/// Syslog MSG pieces: `Str` is text (already logfmt-quoted where it is a value).
fn msg_pieces(e: &mut Emitter<'_>, pieces: &[Val]) {
    for p in pieces {
        match p {
            Val::Str(s) => {
                let mut b = Vec::with_capacity(s.len());
                msg_text(s, &mut b);
                e.shared(&b);
            }
            Val::Num(n) => e.lit(n.as_bytes()),
            Val::Dyn(d) => {
                let op = dyn_op(e, *d, Ctx::Msg);
                e.op(op);
            }
        }
    }
}

/// The trace-context block of `format`, separator included (it follows the event id), and
/// where the trace (32 hex) and span (16 hex) ids go in it, as (offset, is_trace). The
/// generator keeps a copy and rewrites only the hex.
pub(crate) fn trace_block(format: Format, trace: TraceContext) -> (Vec<u8>, Vec<(usize, bool)>) {
    use TraceContext as T;
    let pattern: &str = match (format, trace) {
        (Format::ApacheCommon | Format::ApacheCombined, _) | (_, T::None) => "",
        (Format::Json, T::Traceparent) => ",\"traceparent\":\"00-T-S-01\"",
        (Format::Json, T::Ids) => ",\"trace_id\":\"T\",\"span_id\":\"S\"",
        (Format::Logfmt | Format::Rfc3164, T::Traceparent) => " traceparent=00-T-S-01",
        (Format::Logfmt | Format::Rfc3164, T::Ids) => " trace_id=T span_id=S",
        (Format::Rfc5424, T::Traceparent) => " traceparent=\"00-T-S-01\"",
        (Format::Rfc5424, T::Ids) => " trace_id=\"T\" span_id=\"S\"",
        // Avro strings: the length as a zig-zag varint (55 -> 0x6e 'n', 32 -> '@', 16 -> ' ').
        (Format::Avro, T::Traceparent) => "n00-T-S-01",
        (Format::Avro, T::Ids) => "@T S",
    };
    let mut block = Vec::new();
    let mut slots = Vec::new();
    for c in pattern.bytes() {
        match c {
            b'T' => {
                slots.push((block.len(), true));
                block.extend_from_slice(&[b'0'; 32]);
            }
            b'S' => {
                slots.push((block.len(), false));
                block.extend_from_slice(&[b'0'; 16]);
            }
            c => block.push(c),
        }
    }
    (block, slots)
}

/// Renders `rec` of source `source` as a program; `pad` adds the filler field.
pub(crate) fn render(format: Format, source: &str, rec: &Record, pad: bool, e: &mut Emitter<'_>) {
    match format {
        Format::Json => {
            e.lit(b"{\"ts\":\"");
            e.op(Op::Ts3339);
            e.lit(b"\",\"source\":");
            json_str(source, e.lit_buf());
            e.lit(b",\"id\":\"");
            e.op(Op::Id);
            e.lit(b"\"");
            e.op(Op::Trace);
            for (k, v) in &rec.fields {
                e.lit(b",");
                json_str(k, e.lit_buf());
                e.lit(b":");
                json_value(e, v);
            }
            if pad {
                e.lit(b",\"pad\":\"");
                e.op(Op::Pad { tail: 3 });
                e.lit(b"\"}\n");
            } else {
                e.lit(b"}\n");
            }
        }
        Format::Logfmt => {
            e.lit(b"ts=");
            e.op(Op::Ts3339);
            e.lit(b" source=");
            logfmt_val(source, e.lit_buf());
            e.lit(b" id=");
            e.op(Op::Id);
            e.op(Op::Trace);
            for (k, v) in &rec.fields {
                e.lit(b" ");
                e.lit(k.as_bytes());
                e.lit(b"=");
                logfmt_value(e, v, Ctx::Logfmt);
            }
            pad_tail(e, pad);
        }
        Format::ApacheCommon | Format::ApacheCombined => {
            let w = rec.web.as_ref().expect("apache formats are only built for web records");
            e.lit(w.ip.as_bytes());
            e.lit(b" - ");
            e.lit(w.user.as_bytes());
            e.lit(b" [");
            e.op(Op::TsApache);
            e.lit(b"] \"");
            e.lit(w.method.as_bytes());
            e.lit(b" ");
            e.lit(w.path.as_bytes());
            e.lit(b" ");
            e.lit(w.proto.as_bytes());
            e.lit(b"\" ");
            e.lit(w.status.to_string().as_bytes());
            e.lit(b" ");
            match &w.bytes {
                None => e.lit(b"-"),
                Some(v) => logfmt_value(e, v, Ctx::Logfmt),
            }
            if format == Format::ApacheCombined {
                e.lit(b" \"");
                e.lit(w.referrer.as_bytes());
                e.lit(b"\" \"");
                e.shared(w.ua.as_bytes());
                e.lit(b"\"");
            }
            e.lit(b"\n");
        }
        Format::Rfc5424 => {
            let pri = u32::from(rec.facility) * 8 + u32::from(rec.severity);
            e.lit(format!("<{pri}>1 ").as_bytes());
            e.op(Op::Ts3339);
            e.lit(b" ");
            e.lit(header_token(&rec.host, 255).as_bytes());
            e.lit(b" ");
            e.lit(header_token(&rec.app, 48).as_bytes());
            e.lit(b" ");
            e.lit(rec.procid.to_string().as_bytes());
            e.lit(b" ");
            e.lit(header_token(&rec.msgid, 32).as_bytes());
            e.lit(b" [spate@32473 id=\"");
            e.op(Op::Id);
            e.lit(b"\"");
            e.op(Op::Trace);
            e.lit(b" source=\"");
            sd_val(source, e.lit_buf());
            e.lit(b"\"] ");
            msg_pieces(e, &rec.msg);
            pad_tail(e, pad);
        }
        Format::Avro => unreachable!("Avro records are rendered by event/avro.rs"),
        Format::Rfc3164 => {
            let pri = u32::from(rec.facility) * 8 + u32::from(rec.severity);
            e.lit(format!("<{pri}>").as_bytes());
            e.op(Op::TsBsd);
            e.lit(b" ");
            e.lit(header_token(&rec.host, 255).as_bytes());
            e.lit(b" ");
            e.lit(tag(&rec.app).as_bytes());
            e.lit(format!("[{}]: id=", rec.procid).as_bytes());
            e.op(Op::Id);
            e.op(Op::Trace);
            e.lit(b" ");
            msg_pieces(e, &rec.msg);
            pad_tail(e, pad);
        }
    }
}

/// ` pad=xxxx\n` or `\n`.
fn pad_tail(e: &mut Emitter<'_>, pad: bool) {
    if pad {
        e.lit(b" pad=");
        e.op(Op::Pad { tail: 1 });
    }
    e.lit(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.to_string().parse::<Format>().unwrap(), f);
        }
        assert!("xml".parse::<Format>().is_err());
    }

    #[test]
    fn escapes() {
        let mut o = Vec::new();
        json_str("a\"b\\c\nd\u{1}é", &mut o);
        assert_eq!(String::from_utf8(o).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let mut o = Vec::new();
        logfmt_val("plain", &mut o);
        o.push(b' ');
        logfmt_val("with space \"q\" a=b", &mut o);
        o.push(b' ');
        logfmt_val("", &mut o);
        assert_eq!(String::from_utf8(o).unwrap(), "plain \"with space \\\"q\\\" a=b\" \"\"");
        let mut o = Vec::new();
        sd_val("a\"]\\", &mut o);
        assert_eq!(o, b"a\\\"\\]\\\\");
        assert_eq!(tag("payments-api_v2"), "paymentsapiv2");
    }
}
