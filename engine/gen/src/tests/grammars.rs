//! Strict grammars for every format, written here so a test does not trust spate's own
//! formatter: JSON through serde_json, logfmt, Apache common/combined, RFC 5424 and RFC 3164
//! parsed field by field, plus the shape checks of ids, trace context and timestamps.

use std::collections::HashMap;

use super::*;

// ---- shape checks ----

pub(super) fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A `traceparent` value: its trace and span ids must be the event's.
pub(super) fn check_traceparent(tp: &str, m: &EventMeta) {
    assert!(tp.len() == 55 && tp.starts_with("00-") && tp.ends_with("-01"), "traceparent {tp}");
    check_trace(&tp[3..35], &tp[36..52], tp, m);
}

pub(super) fn check_trace(trace: &str, span: &str, tp: &str, m: &EventMeta) {
    assert!(is_hex(trace, 32) && trace != "0".repeat(32), "trace id {trace}");
    assert!(is_hex(span, 16) && span != "0".repeat(16), "span id {span}");
    assert_eq!(tp, format!("00-{trace}-{span}-01"));
    assert_eq!(u128::from_str_radix(trace, 16).unwrap(), m.trace_id);
    assert_eq!(u64::from_str_radix(span, 16).unwrap(), m.span_id);
}

pub(super) fn check_id(id: &str, m: &EventMeta) {
    let parts: Vec<&str> = id.splitn(3, '-').collect();
    assert_eq!(parts.len(), 3, "id {id}");
    assert!(is_hex(parts[0], 16), "run id in {id}");
    assert_eq!(parts[0].parse::<RunId>().unwrap(), RUN);
    assert_eq!(parts[1].parse::<u16>().unwrap(), m.worker);
    assert_eq!(parts[2].parse::<u64>().unwrap(), m.seq);
}

pub(super) fn check_rfc3339_micros(ts: &str) {
    let b = ts.as_bytes();
    let ok = b.len() == 27
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            26 => c == b'Z',
            _ => c.is_ascii_digit(),
        });
    assert!(ok, "timestamp {ts}");
    assert!(ts.starts_with("2026-11-25T1"), "timestamp {ts}");
}

// ---- json ----

pub(super) fn check_json(
    line: &str,
    m: &EventMeta,
    source: &str,
) -> serde_json::Map<String, serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("invalid json ({e}): {line}"));
    let o = v.as_object().expect("object").clone();
    assert!(line.starts_with("{\"ts\":\""), "ts first: {line}");
    let order = ["\"ts\":", "\"source\":", "\"id\":", "\"traceparent\":"];
    let pos: Vec<usize> = order.iter().map(|k| line.find(k).expect("common key")).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "common keys in order: {line}");
    check_rfc3339_micros(o["ts"].as_str().unwrap());
    assert_eq!(o["source"], source);
    check_id(o["id"].as_str().unwrap(), m);
    assert!(
        !o.contains_key("trace_id") && !o.contains_key("span_id"),
        "trace context once: {line}"
    );
    check_traceparent(o["traceparent"].as_str().unwrap(), m);
    match source {
        "web" => {
            assert!(o["status"].as_u64().is_some_and(|s| (100..600).contains(&s)));
            assert!(o["bytes"].is_u64());
            assert!(o["latency_ms"].as_f64().is_some_and(|l| l > 0.0));
            for k in ["client_ip", "method", "path", "protocol", "referrer", "user_agent"] {
                assert!(o[k].is_string(), "{k} in {line}");
            }
            o["client_ip"].as_str().unwrap().parse::<std::net::IpAddr>().unwrap();
        }
        "app" => {
            for k in ["service", "level", "logger", "message"] {
                assert!(o[k].is_string(), "{k} in {line}");
            }
        }
        "payment" => {
            let a = o["amount"].as_f64().unwrap();
            assert!(a >= 0.5);
            let text = line.split("\"amount\":").nth(1).unwrap().split(',').next().unwrap();
            assert_eq!(text.split('.').nth(1).map(str::len), Some(2), "two decimals: {text}");
            for k in ["order_id", "payment_id", "customer_id", "currency", "method", "state"] {
                assert!(o[k].is_string(), "{k} in {line}");
            }
        }
        "syslog" => {
            assert!(o["pid"].is_u64());
            for k in ["host", "app", "facility", "severity", "message"] {
                assert!(o[k].is_string(), "{k} in {line}");
            }
        }
        _ => {}
    }
    o
}

// ---- logfmt ----

/// Strict logfmt: `key=value` pairs separated by single spaces; keys have no space, `=` or
/// `"`; values are bare (no space, `=`, `"` or `\`) or quoted with `\"`, `\\`, `\n`, `\r`,
/// `\t` escapes only.
pub(super) fn parse_logfmt(line: &str) -> Result<Vec<(String, String)>, String> {
    let b: Vec<char> = line.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let ks = i;
        while i < b.len() && b[i] != '=' {
            if b[i] <= ' ' || b[i] == '"' {
                return Err(format!("bad key char at {i}"));
            }
            i += 1;
        }
        if i == ks || i == b.len() {
            return Err(format!("missing key or `=` at {ks}"));
        }
        let key: String = b[ks..i].iter().collect();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == '"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("unterminated quote".into()),
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        match b.get(i + 1) {
                            Some('"') => val.push('"'),
                            Some('\\') => val.push('\\'),
                            Some('n') => val.push('\n'),
                            Some('r') => val.push('\r'),
                            Some('t') => val.push('\t'),
                            other => return Err(format!("bad escape {other:?}")),
                        }
                        i += 2;
                    }
                    Some(&c) if c < ' ' => return Err("control char in value".into()),
                    Some(&c) => {
                        val.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < b.len() && b[i] != ' ' {
                if b[i] == '"' || b[i] == '=' || b[i] == '\\' || b[i] < ' ' {
                    return Err(format!("bad bare value char {:?} at {i}", b[i]));
                }
                val.push(b[i]);
                i += 1;
            }
            if val.is_empty() {
                return Err(format!("empty bare value for {key}"));
            }
        }
        out.push((key, val));
        if i < b.len() {
            if b[i] != ' ' || i + 1 == b.len() {
                return Err(format!("expected a single space between pairs at {i}"));
            }
            i += 1;
        }
    }
    Ok(out)
}

pub(super) fn check_logfmt(line: &str, m: &EventMeta, source: &str) -> HashMap<String, String> {
    let pairs = parse_logfmt(line).unwrap_or_else(|e| panic!("invalid logfmt ({e}): {line}"));
    let keys: Vec<&str> = pairs.iter().take(4).map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["ts", "source", "id", "traceparent"], "{line}");
    let map: HashMap<String, String> = pairs.into_iter().collect();
    check_rfc3339_micros(&map["ts"]);
    assert_eq!(map["source"], source);
    check_id(&map["id"], m);
    assert!(
        !map.contains_key("trace_id") && !map.contains_key("span_id"),
        "trace context once: {line}"
    );
    check_traceparent(&map["traceparent"], m);
    map
}

// ---- apache ----

pub(super) const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Strict Common/Combined Log Format: `%h %l %u [%t] "%r" %>s %b` (+ `"%{Referer}i" "%{User-agent}i"`).
pub(super) fn check_apache(line: &str, combined: bool) {
    let fail = |why: &str| -> ! { panic!("invalid apache line ({why}): {line}") };
    let mut rest = line;
    let mut take = |sep: &str| -> &str {
        let (a, b) = rest.split_once(sep).unwrap_or_else(|| fail(&format!("missing `{sep}`")));
        rest = b;
        a
    };
    let host = take(" ");
    host.parse::<std::net::IpAddr>().unwrap_or_else(|_| fail("host"));
    if take(" ") != "-" {
        fail("%l");
    }
    let user = take(" ");
    if user.is_empty() || user.contains('"') {
        fail("%u");
    }
    if !take("[").is_empty() {
        fail("[");
    }
    let t = take("] \"");
    let tb = t.as_bytes();
    if !(t.len() == 26
        && tb[0..2].iter().all(u8::is_ascii_digit)
        && tb[2] == b'/'
        && MONTHS.contains(&&t[3..6])
        && tb[6] == b'/'
        && tb[7..11].iter().all(u8::is_ascii_digit)
        && tb[11] == b':'
        && tb[12..14].iter().all(u8::is_ascii_digit)
        && tb[14] == b':'
        && tb[15..17].iter().all(u8::is_ascii_digit)
        && tb[17] == b':'
        && tb[18..20].iter().all(u8::is_ascii_digit)
        && &t[20..] == " +0000")
    {
        fail("%t");
    }
    let req = take("\" ");
    let parts: Vec<&str> = req.split(' ').collect();
    if parts.len() != 3
        || !parts[0].bytes().all(|c| c.is_ascii_uppercase())
        || !parts[1].starts_with('/')
        || !["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"].contains(&parts[2])
        || req.contains('"')
    {
        fail("%r");
    }
    let status = take(" ");
    if status.len() != 3
        || !status.bytes().all(|c| c.is_ascii_digit())
        || !status.starts_with(['1', '2', '3', '4', '5'])
    {
        fail("%>s");
    }
    let bytes = if combined { take(" ") } else { rest };
    if bytes != "-" && (bytes.is_empty() || !bytes.bytes().all(|c| c.is_ascii_digit())) {
        fail("%b");
    }
    if combined {
        if !rest.starts_with('"') || !rest.ends_with('"') {
            fail("quotes");
        }
        let inner = &rest[1..rest.len() - 1];
        let (referer, ua) = inner.split_once("\" \"").unwrap_or_else(|| fail("referer/ua"));
        if referer.contains('"') || ua.contains('"') || referer.is_empty() || ua.is_empty() {
            fail("referer/ua");
        }
    }
}

// ---- rfc5424 ----

pub(super) fn sd_name_char(c: u8) -> bool {
    (33..=126).contains(&c) && c != b'=' && c != b']' && c != b'"'
}

/// Strict RFC 5424 (section 6): HEADER SP STRUCTURED-DATA [SP MSG]. Returns the SD params.
pub(super) fn check_5424(line: &str) -> HashMap<String, String> {
    let fail = |why: &str| -> ! { panic!("invalid rfc5424 line ({why}): {line}") };
    let b = line.as_bytes();
    if b.first() != Some(&b'<') {
        fail("<");
    }
    let close = line.find('>').unwrap_or_else(|| fail(">"));
    let pri = &line[1..close];
    if pri.is_empty()
        || pri.len() > 3
        || !pri.bytes().all(|c| c.is_ascii_digit())
        || (pri.len() > 1 && pri.starts_with('0'))
    {
        fail("PRI");
    }
    if pri.parse::<u32>().unwrap() > 191 {
        fail("PRIVAL");
    }
    let mut rest = &line[close + 1..];
    let mut field = |max: usize, what: &str| -> &str {
        let (a, b) = rest.split_once(' ').unwrap_or_else(|| fail(what));
        if a.is_empty() || a.len() > max || !a.bytes().all(|c| (33..=126).contains(&c)) {
            fail(what);
        }
        rest = b;
        a
    };
    if field(2, "VERSION") != "1" {
        fail("VERSION");
    }
    check_rfc3339_micros(field(64, "TIMESTAMP"));
    field(255, "HOSTNAME");
    field(48, "APP-NAME");
    field(128, "PROCID");
    field(32, "MSGID");
    // STRUCTURED-DATA
    let sb = rest.as_bytes();
    let mut i = 0;
    let mut params = HashMap::new();
    if sb.first() == Some(&b'-') {
        i = 1;
    } else {
        while sb.get(i) == Some(&b'[') {
            i += 1;
            let s = i;
            while i < sb.len() && sd_name_char(sb[i]) {
                i += 1;
            }
            if i == s || i - s > 32 {
                fail("SD-ID");
            }
            loop {
                match sb.get(i) {
                    Some(b']') => {
                        i += 1;
                        break;
                    }
                    Some(b' ') => {
                        i += 1;
                        let s = i;
                        while i < sb.len() && sd_name_char(sb[i]) {
                            i += 1;
                        }
                        if i == s
                            || i - s > 32
                            || sb.get(i) != Some(&b'=')
                            || sb.get(i + 1) != Some(&b'"')
                        {
                            fail("PARAM-NAME");
                        }
                        let name = rest[s..i].to_string();
                        i += 2;
                        let mut val = Vec::new();
                        loop {
                            match sb.get(i) {
                                None => fail("PARAM-VALUE unterminated"),
                                Some(b'"') => {
                                    i += 1;
                                    break;
                                }
                                Some(b']') => fail("unescaped ]"),
                                Some(b'\\') => {
                                    match sb.get(i + 1) {
                                        Some(&c @ (b'"' | b'\\' | b']')) => val.push(c),
                                        _ => fail("lone backslash"),
                                    }
                                    i += 2;
                                }
                                Some(&c) => {
                                    val.push(c);
                                    i += 1;
                                }
                            }
                        }
                        params
                            .insert(name, String::from_utf8(val).unwrap_or_else(|_| fail("utf-8")));
                    }
                    _ => fail("SD-ELEMENT"),
                }
            }
        }
        if i == 0 {
            fail("STRUCTURED-DATA");
        }
    }
    let msg = &rest[i..];
    if !msg.is_empty() {
        let m = msg.strip_prefix(' ').unwrap_or_else(|| fail("SP before MSG"));
        if m.is_empty() || m.starts_with('\u{feff}') || m.chars().any(char::is_control) {
            fail("MSG");
        }
    }
    params
}

// ---- rfc3164 ----

/// Strict RFC 3164: `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`. Returns MSG.
pub(super) fn check_3164(line: &str) -> String {
    let fail = |why: &str| -> ! { panic!("invalid rfc3164 line ({why}): {line}") };
    let close = line.find('>').unwrap_or_else(|| fail(">"));
    let pri = &line[1..close];
    if !line.starts_with('<')
        || pri.is_empty()
        || pri.len() > 3
        || !pri.bytes().all(|c| c.is_ascii_digit())
        || pri.parse::<u32>().unwrap() > 191
    {
        fail("PRI");
    }
    let rest = &line[close + 1..];
    let ts = rest.get(..15).unwrap_or_else(|| fail("TIMESTAMP"));
    let tb = ts.as_bytes();
    let day_ok = (tb[4] == b' ' && (b'1'..=b'9').contains(&tb[5]))
        || ((b'1'..=b'3').contains(&tb[4]) && tb[5].is_ascii_digit());
    if !(MONTHS.contains(&&ts[..3])
        && tb[3] == b' '
        && day_ok
        && tb[6] == b' '
        && tb[7..9].iter().all(u8::is_ascii_digit)
        && tb[9] == b':'
        && tb[10..12].iter().all(u8::is_ascii_digit)
        && tb[12] == b':'
        && tb[13..15].iter().all(u8::is_ascii_digit))
    {
        fail("TIMESTAMP");
    }
    let rest = rest[15..].strip_prefix(' ').unwrap_or_else(|| fail("SP"));
    let (host, rest) = rest.split_once(' ').unwrap_or_else(|| fail("HOSTNAME"));
    if host.is_empty() || !host.bytes().all(|c| (33..=126).contains(&c)) {
        fail("HOSTNAME");
    }
    let (tag, rest) = rest.split_once('[').unwrap_or_else(|| fail("TAG["));
    if tag.is_empty() || tag.len() > 32 || !tag.bytes().all(|c| c.is_ascii_alphanumeric()) {
        fail("TAG");
    }
    let (pid, msg) = rest.split_once("]: ").unwrap_or_else(|| fail("]: "));
    if pid.is_empty() || !pid.bytes().all(|c| c.is_ascii_digit()) {
        fail("PID");
    }
    if msg.is_empty() || msg.chars().any(char::is_control) {
        fail("MSG");
    }
    msg.to_string()
}

/// `key=value` of a logfmt-ish message prefix (id=.. traceparent=..).
pub(super) fn msg_ids(msg: &str) -> (String, String) {
    let mut it = msg.split(' ');
    let id = it.next().and_then(|p| p.strip_prefix("id=")).expect("id= first").to_string();
    let tp = it
        .next()
        .and_then(|p| p.strip_prefix("traceparent="))
        .expect("traceparent= second")
        .to_string();
    (id, tp)
}

pub(super) fn check_line(format: Format, line: &str, m: &EventMeta, source: &str) {
    match format {
        Format::Json => {
            check_json(line, m, source);
        }
        Format::Logfmt => {
            check_logfmt(line, m, source);
        }
        Format::ApacheCommon => check_apache(line, false),
        Format::ApacheCombined => check_apache(line, true),
        Format::Rfc5424 => {
            let p = check_5424(line);
            check_id(&p["id"], m);
            let tp = &p["traceparent"];
            check_trace(&tp[3..35], &tp[36..52], tp, m);
            assert_eq!(p["source"], source);
        }
        Format::Rfc3164 => {
            let msg = check_3164(line);
            let (id, tp) = msg_ids(&msg);
            check_id(&id, m);
            check_trace(&tp[3..35], &tp[36..52], &tp, m);
        }
        Format::Avro => unreachable!("binary: checked in tests/avro.rs"),
    }
}

pub(super) fn applicable(format: Format) -> &'static [&'static str] {
    if format.is_apache() {
        &["web"]
    } else {
        &["web", "app", "payment", "syslog", "checkout"]
    }
}
