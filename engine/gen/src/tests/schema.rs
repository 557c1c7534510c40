//! Records generated from user schemas (`schemas/examples/`), decoded with `apache-avro`
//! against the same schema, and their hints checked; JSON output parsed with serde_json.

use apache_avro::types::Value;
use apache_avro::Schema;

use super::*;

fn example(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../schemas/examples/{name}.avsc",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn spec(text: &str, format: Format) -> Result<EventSpec, ConfigError> {
    EventSpec::build(&EventConfig {
        format,
        schema: Some(text.to_string()),
        seed: 5,
        ..Default::default()
    })
}

/// `n` events of one worker, terminators stripped.
fn events(spec: EventSpec, n: u64) -> Vec<Vec<u8>> {
    let mut g = Generator::new(Arc::new(spec), 0, RUN);
    let mut out = BytesMut::new();
    (0..n)
        .map(|i| {
            out.clear();
            g.write_event(i, T0 + i * 1_000_000, &mut out, &mut EventMeta::default());
            out[..out.len() - 1].to_vec()
        })
        .collect()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a Value {
    let Value::Record(fs) = v else { panic!("{v:?}") };
    &fs.iter().find(|(k, _)| k == name).unwrap().1
}

fn decode_all(name: &str, n: u64) -> Vec<Value> {
    let text = example(name);
    let schema = Schema::parse_str(&text).unwrap();
    events(spec(&text, Format::Avro).unwrap(), n)
        .iter()
        .map(|d| {
            let mut r = &d[..];
            let v = apache_avro::from_avro_datum(&schema, &mut r, None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(r.is_empty(), "{name}: {} bytes left", r.len());
            v
        })
        .collect()
}

fn text(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        o => panic!("not a string: {o:?}"),
    }
}

#[test]
fn pageviews_follow_their_hints() {
    for (i, v) in decode_all("pageviews", 2000).iter().enumerate() {
        assert_eq!(field(v, "viewtime"), &Value::Long(1 + 10 * i as i64));
        let u = text(field(v, "userid"));
        assert!(
            u.len() == 6 && u.starts_with("User_") && (b'1'..=b'9').contains(&u.as_bytes()[5]),
            "{u}"
        );
        let p = text(field(v, "pageid")).strip_prefix("Page_").unwrap();
        assert!(
            (1..=2).contains(&p.len())
                && p.as_bytes()[0] != b'0'
                && p.bytes().all(|c| c.is_ascii_digit()),
            "{p}"
        );
    }
}

#[test]
fn orders_follow_their_hints() {
    let all = decode_all("orders", 3000);
    let mut zips = std::collections::HashSet::new();
    for (i, v) in all.iter().enumerate() {
        assert!(
            matches!(field(v, "ordertime"), Value::Long(t) if (1_487_715_775_521..=1_519_273_364_600).contains(t))
        );
        assert_eq!(field(v, "orderid"), &Value::Int(i as i32));
        assert!(matches!(field(v, "orderunits"), Value::Double(x) if (0.1..=10.0).contains(x)));
        let a = field(v, "address");
        assert!(["CA", "NY", "TX", "WA"].contains(&text(field(a, "state"))));
        let Value::Long(z) = field(a, "zipcode") else { panic!() };
        assert!((10_000..=99_999).contains(z));
        zips.insert(*z);
    }
    // Ranges are drawn per event, not per variant: far more values than the 1,024 variants.
    assert!(zips.len() > 2000, "{} distinct zip codes", zips.len());
}

#[test]
fn every_construct_decodes_and_json_parses() {
    let all = decode_all("all_types", 3000);
    for (i, v) in all.iter().enumerate() {
        assert!(matches!(field(v, "small"), Value::Int(x) if (-5..=5).contains(x)));
        assert!(matches!(field(v, "ratio"), Value::Float(x) if (0.0..=1.0).contains(x)));
        assert_eq!(field(v, "score"), &Value::Double(0.5 + 0.25 * i as f64));
        assert!((3..=6).contains(&text(field(v, "name")).len()));
        assert!(matches!(field(v, "blob"), Value::Bytes(b) if b.len() == 4));
        assert!(matches!(field(v, "tag"), Value::Fixed(4, _)));
        assert!(matches!(field(v, "tags"), Value::Array(a) if (1..=3).contains(&a.len())));
        let Value::Map(m) = field(v, "counts") else { panic!() };
        assert!(m.len() == 2 && m.keys().all(|k| k.len() == 4 && k.starts_with('k')), "{m:?}");
        assert!(
            matches!(field(v, "at_ms"), Value::TimestampMillis(t) if *t == (T0 / 1_000_000 + i as u64) as i64)
        );
        assert!(
            matches!(field(v, "at_us"), Value::TimestampMicros(t) if *t == (T0 / 1000 + i as u64 * 1000) as i64)
        );
        assert!(matches!(field(v, "day"), Value::Date(_)));
        assert!(matches!(field(v, "uid"), Value::Uuid(_)));
        assert!(matches!(field(v, "price"), Value::Decimal(_)));
        assert!(matches!(field(v, "amount"), Value::Decimal(_)));
    }
    // JSON output of the same schema: one object per event, the same fields.
    for line in events(spec(&example("all_types"), Format::Json).unwrap(), 500) {
        let v: serde_json::Value = serde_json::from_slice(&line)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&line)));
        assert_eq!(v.as_object().unwrap().len(), 21);
    }
}

#[test]
fn unsupported_schemas_are_refused_naming_the_path() {
    let bad = |t: &str| spec(t, Format::Avro).expect_err("refused").to_string();
    // Recursion without a way out: every value would hold another.
    let e = bad(r#"{"type":"record","name":"n","fields":[{"name":"next","type":"n"}]}"#);
    assert!(e.contains("itself without end"), "{e}");
    let e = bad(
        r#"{"type":"record","name":"r","fields":[{"name":"s","type":{"type":"string","arg.properties":{"regex":"a(b"}}}]}"#,
    );
    assert!(e.contains("fields.s") && e.contains("regex"), "{e}");
    let e = bad(
        r#"{"type":"record","name":"r","fields":[{"name":"n","type":{"type":"int","arg.properties":{"options":["x"]}}}]}"#,
    );
    assert!(e.contains("fields.n") && e.contains("option"), "{e}");
    let e = bad(r#"{"type":"record","name":"r","fields":[{"name":"n","type":"nope"}]}"#);
    assert!(e.contains("schema"), "{e}");
    let e = bad(r#"{"type":"enum","name":"E","symbols":[]}"#);
    assert!(e.contains("without symbols"), "{e}");
    let e = spec(&example("pageviews"), Format::Logfmt).expect_err("logfmt refused").to_string();
    assert!(e.contains("avro or json"), "{e}");
}

#[test]
fn json_schema_records_are_json_within_their_constraints() {
    let text = std::fs::read_to_string(format!(
        "{}/../../schemas/examples/orders.schema.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    assert!(is_json_schema(&text));
    let e = spec(&text, Format::Avro).expect_err("json schema as avro").to_string();
    assert!(e.contains("json"), "{e}");
    let mut coupons = 0;
    for line in events(spec(&text, Format::Json).unwrap(), 3000) {
        let v: serde_json::Value = serde_json::from_slice(&line)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&line)));
        assert_eq!(v["id"].as_str().unwrap().len(), 36);
        assert!(v["at"].as_str().unwrap().starts_with("2026-11-25T12:"), "{v}");
        assert!(["new", "paid", "shipped", "cancelled"].contains(&v["status"].as_str().unwrap()));
        assert!((1.0..=500.0).contains(&v["total"].as_f64().unwrap()), "{v}");
        let items = v["items"].as_array().unwrap();
        assert!((1..=3).contains(&items.len()));
        for i in items {
            let sku = i["sku"].as_str().unwrap();
            assert!(sku.len() == 12 && sku.starts_with("SKU-"), "{sku}");
            assert!((1..=9).contains(&i["qty"].as_i64().unwrap()));
        }
        assert!(v["customer"]["email"].as_str().unwrap().contains('@'));
        assert!(v["customer"]["ip"].as_str().unwrap().split('.').count() == 4);
        assert_eq!(v["channel"], "web");
        match &v["coupon"] {
            serde_json::Value::Null => {}
            c => {
                assert!(c.as_str().unwrap().starts_with("SAVE"));
                coupons += 1;
            }
        }
    }
    assert!(coupons > 100, "{coupons} coupons: both union branches are drawn");
    let bad = r#"{"type":"object","properties":{"a":{"allOf":[{"type":"string"}]}}}"#;
    let e = spec(bad, Format::Json).expect_err("allOf refused").to_string();
    assert!(e.contains("properties.a") && e.contains("allOf"), "{e}");
}

#[test]
fn datagen_conventions_comments_exclusive_maxima_and_java_escapes() {
    let src = strip_comments(
        "{\"type\":\"record\",\"name\":\"r\", // a comment\n \"fields\":[ /* block */\n\
         {\"name\":\"n\",\"type\":{\"type\":\"int\",\"arg.properties\":{\"range\":{\"min\":1,\"max\":5}}}},\n\
         // {\"name\":\"gone\",\"type\":\"int\"},\n\
         {\"name\":\"s\",\"type\":{\"type\":\"string\",\"arg.properties\":{\"regex\":\"\\\\<[a-c]{2}\\\\> // not a comment\"}}},\n\
         {\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"int\",\"arg.properties\":{\"length\":{\"min\":1,\"max\":3}}}}]}",
    );
    let schema = Schema::parse_str(&src).unwrap();
    let mut seen = [0u32; 6];
    for d in events(spec(&src, Format::Avro).unwrap(), 5000) {
        let v = apache_avro::from_avro_datum(&schema, &mut &d[..], None).unwrap();
        let Value::Int(n) = field(&v, "n") else { panic!() };
        seen[*n as usize] += 1;
        let s = text(field(&v, "s"));
        assert!(s.len() == 21 && s.starts_with('<') && s.ends_with("> // not a comment"), "{s}");
        assert!(matches!(field(&v, "a"), Value::Array(a) if (1..=2).contains(&a.len())));
    }
    // 1 to 4, each about a quarter; never 5 (datagen's max is exclusive).
    assert_eq!((seen[0], seen[5]), (0, 0), "{seen:?}");
    assert!(seen[1..5].iter().all(|&c| (1000..1500).contains(&c)), "{seen:?}");
}

/// Any type at the top, recursive types with a way out (bounded by `schema_depth`), and
/// `error` records: every datum decodes with apache-avro against the schema.
#[test]
fn recursive_and_top_level_types_decode() {
    fn depth(v: &Value) -> usize {
        match v {
            Value::Record(fs) => 1 + fs.iter().map(|(_, f)| depth(f)).max().unwrap_or(0),
            Value::Union(_, b) => depth(b),
            Value::Array(xs) => xs.iter().map(depth).max().unwrap_or(0),
            _ => 0,
        }
    }
    let list = r#"{"type":"record","name":"Node","fields":[{"name":"v","type":"int"},{"name":"next","type":["null","Node"]}]}"#;
    let tree = r#"{"type":"record","name":"T","namespace":"x","fields":[{"name":"kids","type":{"type":"array","items":"x.T"}}]}"#;
    for (text, max_depth) in [
        (list, Some(4)),
        (tree, Some(4)),
        (r#""string""#, None),
        (r#"{"type":"array","items":"long"}"#, None),
        (r#"["null","string",{"type":"map","values":"int"}]"#, None),
        (r#"{"type":"enum","name":"E","symbols":["A","B"]}"#, None),
        (r#"{"type":"fixed","name":"F","size":3}"#, None),
    ] {
        let schema = Schema::parse_str(text).unwrap();
        let mut deepest = 0;
        for d in events(spec(text, Format::Avro).unwrap_or_else(|e| panic!("{text}: {e}")), 200) {
            let mut r = &d[..];
            let v = apache_avro::from_avro_datum(&schema, &mut r, None)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(r.is_empty(), "{text}: {} bytes left", r.len());
            deepest = deepest.max(depth(&v));
        }
        if let Some(m) = max_depth {
            // The top record, then up to 3 (schema_depth) more inside it.
            assert!(deepest <= m && deepest > 1, "{text}: depth {deepest}");
        }
    }
    // `error` is read as a record (the text is prepared as the config does it).
    let err = crate::prepare_avro(
        r#"{"type":"error","name":"Oops","fields":[{"name":"code","type":"int"}]}"#,
    )
    .unwrap();
    let schema = Schema::parse_str(&err).unwrap();
    for d in events(spec(&err, Format::Avro).unwrap(), 20) {
        apache_avro::from_avro_datum(&schema, &mut &d[..], None).unwrap();
    }
    // A lower bound takes effect.
    let shallow = EventSpec::build(&EventConfig {
        format: Format::Avro,
        schema: Some(list.to_string()),
        schema_depth: 1,
        ..Default::default()
    })
    .unwrap();
    let schema = Schema::parse_str(list).unwrap();
    for d in events(shallow, 100) {
        let v = apache_avro::from_avro_datum(&schema, &mut &d[..], None).unwrap();
        assert!(depth(&v) <= 2, "{v:?}");
    }
}

/// Every keyword of a JSON Schema is applied or the schema is refused naming its path: the
/// combinations that once gave invalid records, and formats checked with std's parsers.
#[test]
fn json_schema_keywords_are_applied_or_refused() {
    let refused = |t: &str| spec(t, Format::Json).expect_err(t).to_string();
    for (schema, says) in [
        (
            r#"{"type":"object","properties":{"n":{"type":"integer","multipleOf":3}}}"#,
            "properties.n`: `multipleOf`",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"array","items":{"type":"integer"},"uniqueItems":true}}}"#,
            "`uniqueItems`",
        ),
        (r#"{"type":"object","minProperties":1,"properties":{}}"#, "`minProperties`"),
        (
            r#"{"type":"object","properties":{"x":{"type":"array","contains":{"type":"integer"}}}}"#,
            "`contains`",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"array","prefixItems":[{"type":"integer"}]}}}"#,
            "`prefixItems`",
        ),
        (
            r#"{"type":"object","properties":{"a":{"type":"string"}},"required":["a","b"]}"#,
            "required[1]",
        ),
        (
            r#"{"type":"object","properties":{"x":{"oneOf":[{"type":"integer"},{"minimum":2}]}}}"#,
            "oneOf[1]",
        ),
        (
            r#"{"type":"object","properties":{"x":{"oneOf":[{"type":"integer"},{"type":"number"}]}}}"#,
            "both admit",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"object","oneOf":[{"type":"string"}]}}}"#,
            "beside `oneOf`",
        ),
        (
            r##"{"$defs":{"l":{"type":"array"}},"type":"object","properties":{"x":{"$ref":"#/$defs/l","maxItems":1}}}"##,
            "beside `$ref`",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"string","pattern":"[a-z]+","maxLength":3}}}"#,
            "length bounds",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"string","format":"date","minLength":3}}}"#,
            "length bounds",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"string","minLength":10,"maxLength":5}}}"#,
            "minLength 10 is above maxLength 5",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"array","minItems":3,"maxItems":2}}}"#,
            "minItems 3 is above maxItems 2",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"integer","minimum":1.2,"maximum":1.8}}}"#,
            "no integer",
        ),
        (r#"{"type":"object","properties":{"x":{"type":"integer","minimum":1e20}}}"#, "beyond"),
        (
            r#"{"type":"object","properties":{"x":{"type":"string","format":"uri-template"}}}"#,
            "format `uri-template`",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"integer","enum":["a",null]}}}"#,
            "no value",
        ),
        (
            r#"{"type":"object","properties":{"x":{"type":"string","maxLength":2.5}}}"#,
            "whole number",
        ),
    ] {
        let e = refused(schema);
        assert!(e.contains(says), "{schema}: {e}");
        assert!(e.contains("schema"), "{schema}: names the schema: {e}");
    }
    let schema = r#"{"type":"object","properties":{
        "n":{"type":"integer","enum":[1,"a",null]},
        "s":{"type":"string","maxLength":2.0,"minLength":1},
        "l":{"type":"array","items":{"type":"boolean"},"maxItems":2.0},
        "i":{"type":"integer","exclusiveMinimum":1.5,"maximum":3.9},
        "v4":{"type":"string","format":"ipv4"},
        "v6":{"type":"string","format":"ipv6"},
        "t":{"type":"string","format":"time"},
        "u":{"type":"string","format":"uri"},
        "o":{"oneOf":[{"type":"string","format":"date"},{"type":"integer","minimum":2}]}
    },"required":["n","s"]}"#;
    for line in events(spec(schema, Format::Json).unwrap(), 3000) {
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["n"], 1, "{v}");
        assert!((1..=2).contains(&v["s"].as_str().unwrap().len()), "{v}");
        assert!(v["l"].as_array().unwrap().len() <= 2, "{v}");
        assert!((2..=3).contains(&v["i"].as_i64().unwrap()), "{v}");
        let v4 = v["v4"].as_str().unwrap();
        assert!(v4.parse::<std::net::Ipv4Addr>().is_ok(), "{v4}");
        assert!(v4.split('.').all(|o| o == "0" || !o.starts_with('0')), "{v4}");
        assert!(v["v6"].as_str().unwrap().parse::<std::net::Ipv6Addr>().is_ok(), "{v}");
        let t = v["t"].as_str().unwrap();
        assert!(t.len() == 9 && t.ends_with('Z') && t[..2].parse::<u8>().unwrap() < 24, "{t}");
        assert!(v["u"].as_str().unwrap().starts_with("https://"), "{v}");
        match &v["o"] {
            serde_json::Value::String(d) => assert_eq!(d.len(), 10, "{d}"),
            n => assert!(n.as_i64().unwrap() >= 2, "{n}"),
        }
    }
}
