//! Avro datums checked with an independent decoder (`apache-avro`) against the schema the spec
//! derives: every byte consumed, envelope values exact, per-event values in their ranges.

use apache_avro::types::Value;
use apache_avro::Schema;

use super::*;

/// `n` datums (terminator stripped) from worker 0, with their metas, and the spec.
fn datums(cfg: &EventConfig, n: usize) -> (Vec<Vec<u8>>, Vec<EventMeta>, Arc<EventSpec>) {
    let spec = Arc::new(EventSpec::build(cfg).expect("valid config"));
    let mut g = Generator::new(spec.clone(), 0, RUN);
    let mut out = BytesMut::new();
    let (mut ds, mut ms) = (Vec::new(), Vec::new());
    for i in 0..n as u64 {
        out.clear();
        let mut m = EventMeta::default();
        g.write_event(i, T0 + i * 1_234_567, &mut out, &mut m);
        assert_eq!(out.last(), Some(&b'\n'));
        ds.push(out[..out.len() - 1].to_vec());
        ms.push(m);
    }
    (ds, ms, spec)
}

fn decode(schema: &Schema, d: &[u8]) -> Value {
    let mut r = d;
    let v =
        apache_avro::from_avro_datum(schema, &mut r, None).unwrap_or_else(|e| panic!("{e}: {d:?}"));
    assert!(r.is_empty(), "{} bytes left after the datum", r.len());
    v
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    let Value::Record(fs) = v else { panic!("not a record: {v:?}") };
    &fs.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no field {name}")).1
}

fn avro(sources: &[(&str, u32)], trace: TraceContext, size: Option<usize>) -> EventConfig {
    EventConfig { trace, ..config(Format::Avro, sources, size, 11) }
}

#[test]
fn every_source_decodes_with_its_schema() {
    for &source in applicable(Format::Avro) {
        let (ds, ms, spec) = datums(&avro(&[(source, 1)], TraceContext::Traceparent, None), 3000);
        let schema = Schema::parse_str(spec.avro_schema().expect("avro has a schema")).unwrap();
        for (i, (d, m)) in ds.iter().zip(&ms).enumerate() {
            let v = decode(&schema, d);
            let ts = T0 + i as u64 * 1_234_567;
            assert_eq!(field(&v, "ts"), &Value::TimestampMicros((ts / 1000) as i64));
            assert_eq!(field(&v, "source"), &Value::String(source.into()));
            let id = format!("{RUN}-0-{i}");
            assert_eq!(field(&v, "id"), &Value::String(id.clone()));
            let tp = format!("00-{:032x}-{:016x}-01", m.trace_id, m.span_id);
            assert_eq!(field(&v, "traceparent"), &Value::String(tp.clone()));
            // The Kafka sink's headers are these bytes of the datum.
            assert_eq!(m.id_in(d), Some(id.as_bytes()));
            assert_eq!(m.traceparent_in(d), Some(tp.as_bytes()));
            match source {
                "web" => {
                    let Value::Long(s) = field(&v, "status") else { panic!("status {v:?}") };
                    assert!((100..600).contains(s));
                    assert!(matches!(field(&v, "latency_ms"), Value::Double(x) if *x >= 0.0));
                }
                "payment" => assert!(matches!(field(&v, "amount"), Value::Double(x) if *x > 0.0)),
                "checkout" => {
                    assert!(
                        matches!(field(&v, "amount"), Value::Double(x) if (1.0..=500.0).contains(x)),
                        "{v:?}"
                    );
                    assert!(matches!(field(&v, "rank"), Value::Long(x) if (1..=50).contains(x)));
                    assert!(matches!(field(&v, "items"), Value::Long(x) if (1..=9).contains(x)));
                    assert_eq!(field(&v, "n"), &Value::Long(i as i64));
                    assert_eq!(field(&v, "at"), &Value::TimestampMicros((ts / 1000) as i64));
                    assert!(matches!(field(&v, "order"), Value::Uuid(_)), "{v:?}");
                    assert_eq!(field(&v, "region"), &Value::String("eu-west-1".into()));
                    assert!(matches!(field(&v, "session"), Value::String(s) if !s.is_empty()));
                }
                _ => {}
            }
        }
    }
}

#[test]
fn several_sources_make_a_union_and_each_datum_names_its_branch() {
    let cfg = avro(&[("web", 5), ("app", 3), ("checkout", 2)], TraceContext::Ids, None);
    let (ds, ms, spec) = datums(&cfg, 3000);
    let schema = Schema::parse_str(spec.avro_schema().unwrap()).unwrap();
    assert!(matches!(schema, Schema::Union(_)));
    for (d, m) in ds.iter().zip(&ms) {
        let Value::Union(branch, rec) = decode(&schema, d) else { panic!("not a union") };
        assert_eq!(branch, u32::from(m.source));
        assert_eq!(
            field(&rec, "source"),
            &Value::String(spec.source_names()[m.source as usize].clone())
        );
        assert_eq!(field(&rec, "trace_id"), &Value::String(format!("{:032x}", m.trace_id)));
        assert_eq!(field(&rec, "span_id"), &Value::String(format!("{:016x}", m.span_id)));
        assert_eq!(m.traceparent_in(d), None);
    }
}

#[test]
fn the_wire_prefix_comes_first_and_size_is_the_record_size() {
    let prefix = crate::avro::confluent_header(0x0102_0304).to_vec();
    for size in [240, 300, 1000] {
        let cfg = EventConfig {
            wire_prefix: vec![prefix.clone()],
            ..avro(&[("app", 1), ("payment", 1)], TraceContext::None, Some(size))
        };
        let (ds, _, spec) = datums(&cfg, 2000);
        let schema = Schema::parse_str(spec.avro_schema().unwrap()).unwrap();
        for d in &ds {
            assert_eq!(&d[..5], &prefix[..]);
            // Where the filler's length prefix grows a byte, the record is one byte short.
            assert!(d.len() == size || d.len() + 1 == size, "size {size}: {}", d.len());
            let v = decode(&schema, &d[5..]);
            let Value::Union(_, rec) = v else { panic!() };
            assert!(matches!(field(&rec, "pad"), Value::String(_)));
        }
    }
    let err = EventSpec::build(&avro(&[("web", 1)], TraceContext::None, Some(40)))
        .expect_err("too small");
    assert_eq!(err.key, "size");
}

#[test]
fn fields_choose_the_schema_and_names_must_suit_avro() {
    let cfg = EventConfig {
        fields: Some(vec!["status".into(), "path".into()]),
        ..avro(&[("web", 1)], TraceContext::None, None)
    };
    let (ds, _, spec) = datums(&cfg, 100);
    let schema = Schema::parse_str(spec.avro_schema().unwrap()).unwrap();
    let Schema::Record(r) = &schema else { panic!() };
    let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["ts", "source", "id", "path", "status"]);
    for d in &ds {
        decode(&schema, d);
    }
    let t: RawTemplate = serde_yaml_ng::from_str("fields: [{ name: a-b, gen: uuid }]").unwrap();
    let cfg = EventConfig {
        templates: BTreeMap::from([("t".into(), t)]),
        ..avro(&[("t", 1)], TraceContext::None, None)
    };
    let err = EventSpec::build(&cfg).expect_err("a-b is no Avro name");
    assert!(err.to_string().contains("a-b"), "{err}");
}
