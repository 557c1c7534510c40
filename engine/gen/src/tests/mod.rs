//! Every format x every applicable source, checked line by line with an independent parser
//! (serde_json) or a strict grammar written here; plus seeds, weights, templates, padding.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::BytesMut;

use super::*;
use crate::generator::{put_scaled, put_u64};
use spate_core::ConfigError;

mod avro;
mod grammars;
mod schema;
use grammars::*;

const RUN: RunId = RunId(0x00ab_cdef_0123_4567);
/// 2026-11-25T12:59:00Z
const T0: u64 = 1_795_611_540_000_000_000;

const TEMPLATE_YAML: &str = r#"
fields:
  - { name: user,    gen: { choice: [alice, bob, "carol \"c\" = x"], weights: [5, 3, 1] } }
  - { name: amount,  gen: { float: { min: 1.0, max: 500.0, decimals: 2, dist: lognormal } }, per_event: true }
  - { name: items,   gen: { int: { min: 1, max: 9, dist: uniform } } }
  - { name: rank,    gen: { int: { min: 1, max: 50, dist: zipf } }, per_event: true }
  - { name: wait,    gen: { float: { min: 0, max: 10, dist: normal, mean: 5, stddev: 2 } } }
  - { name: backoff, gen: { float: { min: 0, max: 100, dist: exponential } }, per_event: true }
  - { name: client,  gen: ipv4 }
  - { name: client6, gen: ipv6, per_event: true }
  - { name: order,   gen: uuid, per_event: true }
  - { name: at,      gen: timestamp }
  - { name: n,       gen: sequence }
  - { name: note,    gen: { words: { list: [fast, slow, retry, ok], min: 2, max: 5 } }, per_event: true }
  - { name: session, gen: { session: { pool: 100, reuse: 20 } } }
  - { name: region,  gen: { const: eu-west-1 } }
"#;

fn templates() -> BTreeMap<String, RawTemplate> {
    let t: RawTemplate = serde_yaml_ng::from_str(TEMPLATE_YAML).expect("template parses");
    BTreeMap::from([("checkout".to_string(), t)])
}

fn config(format: Format, sources: &[(&str, u32)], size: Option<usize>, seed: u64) -> EventConfig {
    EventConfig {
        format,
        sources: sources.iter().map(|(n, w)| (n.to_string(), *w)).collect(),
        templates: templates(),
        size,
        seed,
        trace: TraceContext::Traceparent,
        fields: None,
        wire_prefix: Vec::new(),
        avro_records_apart: false,
        container_sync: None,
        schema: None,
        schema_depth: crate::DEFAULT_SCHEMA_DEPTH,
        memory_limit: 0,
    }
}

/// `n` events from worker `worker`, one string per line (newline stripped), with metas.
fn generate(cfg: &EventConfig, n: usize, worker: u16, run: RunId) -> (Vec<String>, Vec<EventMeta>) {
    let spec = Arc::new(EventSpec::build(cfg).expect("valid config"));
    let mut g = Generator::new(spec, worker, run);
    let mut out = BytesMut::with_capacity(1 << 16);
    let mut metas = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let mut m = EventMeta::default();
        // ~1.2 ms apart: crosses second boundaries.
        g.write_event(i, T0 + i * 1_234_567, &mut out, &mut m);
        metas.push(m);
        ends.push(out.len());
    }
    let text = std::str::from_utf8(&out).expect("utf-8");
    let mut lines = Vec::with_capacity(n);
    let mut start = 0;
    for e in ends {
        let line = &text[start..e];
        assert!(
            line.ends_with('\n') && !line[..line.len() - 1].contains('\n'),
            "one line per event: {line:?}"
        );
        lines.push(line[..line.len() - 1].to_string());
        start = e;
    }
    (lines, metas)
}

#[test]
fn every_format_and_source_parses() {
    for format in Format::TEXT {
        for &source in applicable(format) {
            let cfg = config(format, &[(source, 1)], None, 42);
            let (lines, metas) = generate(&cfg, 3000, 3, RUN);
            for (line, m) in lines.iter().zip(&metas) {
                assert_eq!(m.source, 0);
                assert_eq!(m.worker, 3);
                check_line(format, line, m, source);
            }
        }
    }
}

/// The Kafka sink takes its header values from the offsets the generator notes: in every
/// format, they must point at exactly the texts the headers would carry, padded or not.
#[test]
fn metas_point_at_the_id_and_traceparent_in_the_line() {
    for format in Format::TEXT {
        for &source in applicable(format) {
            let apache = matches!(format, Format::ApacheCommon | Format::ApacheCombined);
            for size in [None, Some(900)].into_iter().filter(|s| s.is_none() || !apache) {
                let (lines, metas) =
                    generate(&config(format, &[(source, 1)], size, 7), 500, 2, RUN);
                for (line, m) in lines.iter().zip(&metas) {
                    let (mut tp, mut id) = ([0u8; 55], [0u8; 64]);
                    crate::hex::traceparent(&mut tp, m.trace_id, m.span_id);
                    let n = crate::hex::event_id(&mut id, &RUN.to_string(), m.worker, m.seq);
                    let has_trace =
                        !matches!(format, Format::ApacheCommon | Format::ApacheCombined);
                    let want_tp = has_trace.then_some(&tp[..]);
                    assert_eq!(
                        m.traceparent_in(line.as_bytes()),
                        want_tp,
                        "{format:?} {source}: {line}"
                    );
                    let want_id = (m.id_at != EventMeta::NONE).then_some(&id[..n]);
                    assert_eq!(m.id_in(line.as_bytes()), want_id, "{format:?} {source}: {line}");
                    if line.contains(std::str::from_utf8(&id[..n]).unwrap()) {
                        assert!(
                            want_id.is_some(),
                            "{format:?} {source}: the id is in the line but not noted: {line}"
                        );
                    }
                }
            }
        }
    }
}

/// `ids` writes `trace_id` and `span_id` and no `traceparent`; `none` writes neither; in every
/// format that has trace context, and the Kafka header offsets follow.
#[test]
fn trace_context_is_written_once_in_the_form_asked_for() {
    for format in [Format::Json, Format::Logfmt, Format::Rfc5424, Format::Rfc3164] {
        for trace in TraceContext::ALL {
            let cfg = EventConfig { trace, ..config(format, &[("web", 1), ("app", 1)], None, 3) };
            let (lines, metas) = generate(&cfg, 300, 1, RUN);
            for (line, m) in lines.iter().zip(&metas) {
                let (tid, sid) = (format!("{:032x}", m.trace_id), format!("{:016x}", m.span_id));
                let tp = format!("00-{tid}-{sid}-01");
                match trace {
                    TraceContext::Traceparent => {
                        assert!(
                            line.contains(&tp)
                                && !line.contains("trace_id")
                                && !line.contains("span_id"),
                            "{line}"
                        );
                        assert_eq!(m.traceparent_in(line.as_bytes()), Some(tp.as_bytes()));
                    }
                    TraceContext::Ids => {
                        assert!(
                            !line.contains("traceparent") && line.matches(&tid).count() == 1,
                            "{line}"
                        );
                        assert!(
                            line.matches(&sid).count() == 1
                                && line.contains("trace_id")
                                && line.contains("span_id"),
                            "{line}"
                        );
                        assert_eq!(m.traceparent_in(line.as_bytes()), None);
                    }
                    TraceContext::None => {
                        assert!(
                            !line.contains(&tid) && !line.contains(&sid) && !line.contains("trace"),
                            "{line}"
                        );
                        assert_eq!(m.traceparent_in(line.as_bytes()), None);
                    }
                }
                if format == Format::Json {
                    let v: serde_json::Value =
                        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
                    if trace == TraceContext::Ids {
                        assert_eq!(
                            (v["trace_id"].as_str(), v["span_id"].as_str()),
                            (Some(tid.as_str()), Some(sid.as_str()))
                        );
                    }
                }
            }
        }
    }
}

/// `fields` keeps the listed fields only, in the source's order; unknown ones are refused.
#[test]
fn fields_choose_what_an_event_carries() {
    let keep = vec!["status".to_string(), "method".to_string(), "level".to_string()];
    let cfg = EventConfig {
        fields: Some(keep),
        ..config(Format::Json, &[("web", 1), ("app", 1)], None, 5)
    };
    let (lines, _) = generate(&cfg, 200, 0, RUN);
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let want: &[&str] = match v["source"].as_str().unwrap() {
            "web" => &["ts", "source", "id", "traceparent", "method", "status"],
            _ => &["ts", "source", "id", "traceparent", "level"],
        };
        assert_eq!(v.as_object().unwrap().len(), want.len(), "{line}");
        let at: Vec<usize> = want
            .iter()
            .map(|k| line.find(&format!("\"{k}\":")).unwrap_or_else(|| panic!("{k}: {line}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "in order: {line}");
    }
    let bad = EventConfig {
        fields: Some(vec!["stauts".into()]),
        ..config(Format::Json, &[("web", 1)], None, 5)
    };
    let e = build_err(&bad, "unknown field refused");
    assert_eq!(e.key, "fields");
    assert!(e.message.contains("stauts"), "{e:?}");
    let fixed = EventConfig {
        fields: Some(vec!["status".into()]),
        ..config(Format::Rfc5424, &[("web", 1)], None, 5)
    };
    assert_eq!(build_err(&fixed, "fixed layout refused").key, "fields");
}

/// Under `size`, fields that do not fit are left out (last first) and the rest is padded:
/// every line is the size asked for, as long as the envelope fits.
#[test]
fn small_sizes_leave_fields_out_and_pad_the_rest() {
    for format in [Format::Json, Format::Logfmt] {
        for size in [100, 160, 240] {
            let cfg = EventConfig {
                trace: TraceContext::None,
                ..config(
                    format,
                    &[("web", 1), ("app", 1), ("payment", 1), ("syslog", 1)],
                    Some(size),
                    9,
                )
            };
            let (lines, _) = generate(&cfg, 2000, 0, RUN);
            let mean = lines.iter().map(|l| l.len() + 1).sum::<usize>() as f64 / lines.len() as f64;
            assert!((mean - size as f64).abs() <= 5.0, "{format:?} size {size}: mean {mean}");
            if format == Format::Json {
                for l in &lines {
                    serde_json::from_str::<serde_json::Value>(l)
                        .unwrap_or_else(|e| panic!("{e}: {l}"));
                }
            }
        }
    }
    let tiny = EventConfig {
        trace: TraceContext::None,
        ..config(Format::Json, &[("web", 1)], Some(64), 9)
    };
    let e = build_err(&tiny, "below the envelope");
    assert_eq!(e.key, "size");
}

#[test]
fn mixed_sources_parse_and_follow_weights() {
    let cfg = config(Format::Json, &[("web", 70), ("app", 20), ("payment", 10)], None, 7);
    let spec = EventSpec::build(&cfg).unwrap();
    assert_eq!(spec.source_names(), ["web", "app", "payment"]);
    assert_eq!(spec.format(), Format::Json);
    let n = 50_000;
    let (lines, metas) = generate(&cfg, n, 0, RUN);
    let mut counts = [0usize; 3];
    for (line, m) in lines.iter().zip(&metas) {
        counts[m.source as usize] += 1;
        check_json(line, m, spec.source_names()[m.source as usize].as_str());
    }
    for (c, w) in counts.iter().zip([0.7, 0.2, 0.1]) {
        let share = *c as f64 / n as f64;
        assert!((share - w).abs() < 0.015, "share {share} for weight {w}: {counts:?}");
    }
}

#[test]
fn web_content_is_realistic() {
    let cfg = config(Format::Json, &[("web", 1)], None, 1);
    let (lines, metas) = generate(&cfg, 20_000, 0, RUN);
    let mut status: HashMap<u64, usize> = HashMap::new();
    let mut paths: HashMap<String, usize> = HashMap::new();
    let mut v6 = 0;
    let mut bytes = Vec::new();
    for (line, m) in lines.iter().zip(&metas) {
        let o = check_json(line, m, "web");
        *status.entry(o["status"].as_u64().unwrap()).or_default() += 1;
        *paths.entry(o["path"].as_str().unwrap().to_string()).or_default() += 1;
        v6 += usize::from(o["client_ip"].as_str().unwrap().contains(':'));
        bytes.push(o["bytes"].as_u64().unwrap());
    }
    let ok = status[&200] as f64 / lines.len() as f64;
    assert!(ok > 0.6 && ok < 0.95, "200 share {ok}");
    assert!(
        status.keys().any(|s| *s >= 500)
            && status.keys().any(|s| (400..500).contains(s))
            && status.keys().any(|s| (300..400).contains(s))
    );
    assert!(paths.get("/").copied().unwrap_or(0) > 1000, "zipf: `/` is the most popular");
    assert!(v6 > 500 && v6 < 5000, "some ipv6: {v6}");
    bytes.sort_unstable();
    assert!(bytes.windows(2).filter(|w| w[0] != w[1]).count() > 3000, "bytes vary per event");
}

#[test]
fn same_seed_same_events_different_seed_different() {
    // Run id and trace context aside (they are per run by design), the same seed gives the
    // same events.
    let norm = |(lines, metas): (Vec<String>, Vec<EventMeta>), run: RunId| -> Vec<String> {
        lines
            .into_iter()
            .zip(metas)
            .map(|(l, m)| {
                l.replace(&run.to_string(), "RUN")
                    .replace(&format!("{:032x}", m.trace_id), "TRACE")
                    .replace(&format!("{:016x}", m.span_id), "SPAN")
            })
            .collect()
    };
    for format in Format::TEXT {
        let sources: &[(&str, u32)] = if format.is_apache() {
            &[("web", 1)]
        } else {
            &[("web", 5), ("app", 3), ("checkout", 2)]
        };
        let (ra, rb) = (
            generate(&config(format, sources, None, 9), 2000, 1, RunId(1)),
            generate(&config(format, sources, None, 9), 2000, 1, RunId(2)),
        );
        let traces_a: std::collections::HashSet<u128> = ra.1.iter().map(|m| m.trace_id).collect();
        assert!(
            rb.1.iter().all(|m| !traces_a.contains(&m.trace_id)),
            "{format}: two runs with one seed share a trace id"
        );
        let a = norm(ra, RunId(1));
        let b = norm(rb, RunId(2));
        let c = norm(generate(&config(format, sources, None, 10), 2000, 1, RunId(1)), RunId(1));
        let d = norm(generate(&config(format, sources, None, 9), 2000, 2, RunId(1)), RunId(1));
        assert_eq!(a, b, "{format}: same seed");
        assert_ne!(a, c, "{format}: different seed");
        assert_ne!(a, d, "{format}: different worker");
    }
}

#[test]
fn padding_hits_the_target() {
    for format in [Format::Json, Format::Logfmt, Format::Rfc5424, Format::Rfc3164] {
        for size in [800, 4096] {
            let cfg = config(
                format,
                &[("web", 1), ("app", 1), ("payment", 1), ("syslog", 1), ("checkout", 1)],
                Some(size),
                5,
            );
            let (lines, metas) = generate(&cfg, 2000, 0, RUN);
            let names = ["web", "app", "payment", "syslog", "checkout"];
            for (line, m) in lines.iter().zip(&metas) {
                let len = line.len() + 1;
                assert!(len.abs_diff(size) <= 3, "{format}: {len} bytes for size {size}: {line}");
                check_line(format, line, m, names[m.source as usize]);
            }
        }
    }
}

#[test]
fn template_renders_valid_json() {
    let cfg = config(Format::Json, &[("checkout", 1)], None, 3);
    let (lines, metas) = generate(&cfg, 5000, 0, RUN);
    let mut sessions = Vec::new();
    let mut users = HashMap::new();
    for (line, m) in lines.iter().zip(&metas) {
        let o = check_json(line, m, "checkout");
        *users.entry(o["user"].as_str().unwrap().to_string()).or_insert(0) += 1;
        let amount = o["amount"].as_f64().unwrap();
        assert!((1.0..=500.0).contains(&amount));
        assert!((1..=9).contains(&o["items"].as_u64().unwrap()));
        assert!((1..=50).contains(&o["rank"].as_u64().unwrap()));
        assert!((0.0..=10.0).contains(&o["wait"].as_f64().unwrap()));
        assert!((0.0..=100.0).contains(&o["backoff"].as_f64().unwrap()));
        o["client"].as_str().unwrap().parse::<std::net::Ipv4Addr>().unwrap();
        o["client6"].as_str().unwrap().parse::<std::net::Ipv6Addr>().unwrap();
        let order = o["order"].as_str().unwrap();
        assert!(order.len() == 36 && order.as_bytes()[14] == b'4', "uuid {order}");
        check_rfc3339_micros(o["at"].as_str().unwrap());
        assert_eq!(o["n"].as_u64().unwrap(), m.seq);
        let words: Vec<&str> = o["note"].as_str().unwrap().split(' ').collect();
        assert!(
            (2..=5).contains(&words.len())
                && words.iter().all(|w| ["fast", "slow", "retry", "ok"].contains(w))
        );
        assert_eq!(o["region"], "eu-west-1");
        sessions.push(o["session"].as_str().unwrap().to_string());
    }
    assert_eq!(users.len(), 3);
    assert!(users["alice"] > users["bob"] && users["bob"] > users["carol \"c\" = x"], "{users:?}");
    let runs = 1 + sessions.windows(2).filter(|w| w[0] != w[1]).count();
    let mean = sessions.len() as f64 / runs as f64;
    assert!((12.0..30.0).contains(&mean), "session reused about 20 times: {mean}");
    let distinct: std::collections::HashSet<&String> = sessions.iter().collect();
    assert!(distinct.len() > 50 && distinct.len() <= 100);
    // Per-event uuid: unique.
    let orders: std::collections::HashSet<String> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["order"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(orders.len(), lines.len());
}

/// The error `cfg` must be refused with.
fn build_err(cfg: &EventConfig, why: &str) -> ConfigError {
    match EventSpec::build(cfg) {
        Ok(_) => panic!("accepted, expected an error: {why}"),
        Err(e) => e,
    }
}

fn template_error(yaml: &str) -> ConfigError {
    let t: RawTemplate = serde_yaml_ng::from_str(yaml).expect("parses");
    let cfg = EventConfig {
        sources: vec![("t".into(), 1)],
        templates: BTreeMap::from([("t".to_string(), t)]),
        ..Default::default()
    };
    EventSpec::build(&cfg).expect_err("rejected")
}

#[test]
fn template_errors_name_their_position() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "fields: [{ name: a, gen: ipv4 }, { name: b, gen: ipv5 }]",
            "templates.t.fields[1].gen",
            "unknown generator `ipv5`",
        ),
        (
            "fields: [{ name: x, gen: { int: { min: 5, max: 1 } } }]",
            "templates.t.fields[0].gen",
            "min 5 is greater than max 1",
        ),
        (
            "fields: [{ name: x, gen: { choice: [a, b], weights: [1] } }]",
            "templates.t.fields[0].gen",
            "1 weights for 2 choices",
        ),
        (
            "fields: [{ name: x, gen: { choice: [] } }]",
            "templates.t.fields[0].gen",
            "`choice` is empty",
        ),
        (
            "fields: [{ name: x, gen: { int: { min: 1, max: 2, foo: 3 } } }]",
            "templates.t.fields[0].gen",
            "unknown field `foo`",
        ),
        (
            "fields: [{ name: x, gen: { bogus: 1 } }]",
            "templates.t.fields[0].gen",
            "unknown field `bogus`",
        ),
        (
            "fields: [{ name: x, gen: { float: { min: 1, max: 2, dist: zipf } } }]",
            "templates.t.fields[0].gen",
            "zipf only applies to int",
        ),
        (
            "fields: [{ name: x, gen: { float: { min: 1, max: 2, dist: gauss } } }]",
            "templates.t.fields[0].gen",
            "unknown distribution",
        ),
        (
            "fields: [{ name: x, gen: { int: { min: 1, max: 2, mean: 1 } } }]",
            "templates.t.fields[0].gen",
            "`mean` does not apply",
        ),
        (
            "fields: [{ name: x, gen: { session: { pool: 0, reuse: 2 } } }]",
            "templates.t.fields[0].gen",
            "session pool 0",
        ),
        ("fields: [{ name: id, gen: uuid }]", "templates.t.fields[0].name", "already has `id`"),
        (
            "fields: [{ name: a, gen: uuid }, { name: a, gen: ipv4 }]",
            "templates.t.fields[1].name",
            "defined twice",
        ),
        ("fields: []", "templates.t.fields", "at least one field"),
    ];
    for (yaml, key, msg) in cases {
        let e = template_error(yaml);
        assert_eq!(&e.key, key, "{yaml}: {e}");
        assert!(e.message.contains(msg), "{yaml}: {e}");
        assert!(!e.fix.is_empty());
    }
    // The field name is part of the message.
    assert!(template_error(cases[0].0).message.contains("field `b`"));
    // Unknown keys in a field are rejected when the YAML is read.
    let e =
        serde_yaml_ng::from_str::<RawTemplate>("fields: [{ name: a, gen: ipv4, per_evnt: true }]")
            .unwrap_err();
    assert!(e.to_string().contains("unknown field `per_evnt`"), "{e}");
}

#[test]
fn config_errors_are_clear() {
    let err = |format: Format, sources: &[(&str, u32)], size: Option<usize>| {
        EventSpec::build(&config(format, sources, size, 0)).expect_err("rejected")
    };
    let e = err(Format::Json, &[("wbe", 1)], None);
    assert_eq!(e.key, "sources.wbe");
    assert!(e.fix.contains("web, app, payment, syslog, checkout"), "{e}");
    let e = err(Format::Json, &[("web", 0)], None);
    assert_eq!(e.key, "sources.web");
    assert!(e.message.contains("weight 0"));
    let e = err(Format::Json, &[], None);
    assert_eq!(e.key, "sources");
    let e = err(Format::ApacheCombined, &[("web", 1), ("app", 1)], None);
    assert_eq!(e.key, "sources.app");
    assert!(e.message.contains("only applies to the `web` source"), "{e}");
    let e = err(Format::ApacheCommon, &[("web", 1)], Some(500));
    assert_eq!(e.key, "size");
    let e = err(Format::Json, &[("web", 1)], Some(40));
    assert_eq!(e.key, "size");
    assert!(e.message.contains("smaller than the smallest `web` event"), "{e}");
    let e = err(Format::Json, &[("web", 1)], Some(MAX_SIZE + 1));
    assert!(e.message.contains("limit"), "{e}");
    let e = err(Format::Json, &[("web", 1)], Some(0));
    assert_eq!(e.key, "size");
}

#[test]
fn run_id_and_format_names() {
    assert_eq!(RUN.to_string(), "00abcdef01234567");
    assert_ne!(RunId::random(), RunId::random());
    assert_eq!(
        Format::ALL.map(|f| f.to_string()),
        ["json", "logfmt", "apache_common", "apache_combined", "rfc5424", "rfc3164", "avro"]
    );
}

#[test]
fn timestamps_follow_the_clock() {
    let cfg = config(Format::Rfc3164, &[("syslog", 1)], None, 0);
    let spec = Arc::new(EventSpec::build(&cfg).unwrap());
    let mut g = Generator::new(spec, 0, RUN);
    let mut out = BytesMut::new();
    let mut m = EventMeta::default();
    // 2026-11-05T01:02:03.5Z
    g.write_event(0, 1_793_840_523_500_000_000, &mut out, &mut m);
    assert!(
        out.starts_with(b"<") && std::str::from_utf8(&out).unwrap().contains(">Nov  5 01:02:03 "),
        "{:?}",
        out
    );
    let cfg = config(Format::Json, &[("web", 1)], None, 0);
    let mut g = Generator::new(Arc::new(EventSpec::build(&cfg).unwrap()), 0, RUN);
    out.clear();
    g.write_event(0, 1_793_840_523_000_123_999, &mut out, &mut m);
    assert!(out.starts_with(b"{\"ts\":\"2026-11-05T01:02:03.000123Z\""), "{:?}", out);
}

#[test]
fn ops_stay_small_and_numbers_format() {
    assert_eq!(std::mem::size_of::<program::Op>(), 8);
    let mut b = [0u8; 20];
    for v in [0u64, 9, 10, 99, 100, 12345, u64::MAX] {
        let n = put_u64(&mut b, v);
        assert_eq!(std::str::from_utf8(&b[..n]).unwrap(), v.to_string());
    }
    for (v, d) in [(12345i64, 2u8), (-5, 3), (7, 0), (123_456_789, 9), (-100, 2)] {
        let mut out = BytesMut::new();
        put_scaled(&mut out, v, d);
        assert_eq!(std::str::from_utf8(&out).unwrap(), dist::NumGen::format(v, d));
    }
}
