//! Compiling sources, templates and schemas into the pre-rendered variants of an [`EventSpec`]:
//! immutable, shared by all workers (see the crate doc).

use std::collections::BTreeMap;

use spate_core::rng::{fnv1a, Rng};
use spate_core::ConfigError;

use crate::config::{EventConfig, BUILTIN, CHUNK, MAX_SIZE, VARIANTS};
use crate::format::{Format, TraceContext};
use crate::meta::EventMeta;
use crate::program::{self, Builder, Emitter, Op, SessionDef, TABLE};
use crate::room::Room;
use crate::sources::SourceGen;
use crate::template::RawTemplate;
use crate::{avro, dist, format, schema, template};

/// One pre-rendered variant: its ops, and its longest literal (touched one event ahead).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Variant {
    pub(crate) start: u32,
    pub(crate) len: u32,
    pub(crate) hot: u32,
    pub(crate) hot_len: u32,
}

impl Variant {
    /// The variant of program `(start, len)`, with its longest literal.
    fn of(b: &Builder, (start, len): (u32, u32)) -> Variant {
        let (hot, hot_len) = b.ops[start as usize..(start + len) as usize]
            .iter()
            .filter_map(|op| match *op {
                Op::Lit { len, off } => Some((off, u32::from(len))),
                _ => None,
            })
            .max_by_key(|l| l.1)
            .unwrap_or((0, 0));
        Variant { start, len, hot, hot_len }
    }
}

#[derive(Debug)]
pub(crate) struct CompiledSource {
    pub(crate) variants: Vec<Variant>,
}

/// Compiled sources for one format: immutable, shared by all workers.
#[derive(Debug)]
pub struct EventSpec {
    pub(crate) format: Format,
    pub(crate) seed: u64,
    pub(crate) names: Vec<String>,
    pub(crate) sources: Vec<CompiledSource>,
    /// Cumulative source weights scaled to 2^32, for a pick from 32 random bits.
    pub(crate) thresholds: Vec<u64>,
    pub(crate) blob: Vec<u8>,
    pub(crate) ops: Vec<Op>,
    pub(crate) tables: Vec<i64>,
    pub(crate) pool_entries: Vec<(u32, u32)>,
    pub(crate) sessions: Vec<SessionDef>,
    /// The format's trace-context block and its (offset, is_trace) hex slots.
    pub(crate) trace_block: Vec<u8>,
    pub(crate) trace_slots: Vec<(usize, bool)>,
    /// Offset of the `traceparent` text (`00-...-01`) in the trace block, if it has one.
    pub(crate) tp_in_block: u32,
    /// Target size (0: no padding) and where the filler bytes are in the blob.
    pub(crate) size: usize,
    pub(crate) pad_off: usize,
    /// The writer schema of Avro datums (JSON text).
    pub(crate) avro_schema: Option<String>,
    /// Each source's record schema (Avro).
    pub(crate) avro_records: Vec<String>,
}

fn known_sources(templates: &BTreeMap<String, RawTemplate>) -> String {
    let mut v: Vec<&str> = BUILTIN.to_vec();
    v.extend(templates.keys().map(String::as_str));
    v.join(", ")
}

impl EventSpec {
    /// Checks `cfg` and compiles every source into its variants.
    pub fn build(cfg: &EventConfig) -> Result<EventSpec, ConfigError> {
        let format = cfg.format;
        let mut b = Builder::default();
        // A user's schema is the run's one source, named after its record.
        let user_schema = match &cfg.schema {
            None => None,
            Some(text) => {
                if !matches!(format, Format::Avro | Format::Json) {
                    return Err(ConfigError::new(
                        "format",
                        format!("records of a schema are written as avro or json, not {format}"),
                        "use --format avro or --format json with --schema",
                    ));
                }
                for (key, set) in [("size", cfg.size.is_some()), ("fields", cfg.fields.is_some())] {
                    if set {
                        return Err(ConfigError::new(
                            key,
                            format!("`{key}` applies to the built-in sources and templates, not to a schema's records"),
                            format!("drop `{key}`; the schema decides what a record holds"),
                        ));
                    }
                }
                let src = schema::compile(text, cfg.schema_depth, &mut b)?;
                src.check()?;
                if src.json_schema && format != Format::Json {
                    return Err(ConfigError::new(
                        "format",
                        "records of a JSON Schema are written as json",
                        "use --format json with a JSON Schema, or give an Avro schema (.avsc) for avro",
                    ));
                }
                Some(src)
            }
        };
        let schema_sources;
        let cfg = match &user_schema {
            Some(src) => {
                schema_sources =
                    EventConfig { sources: vec![(src.name.clone(), 1)], ..cfg.clone() };
                &schema_sources
            }
            None => cfg,
        };
        if cfg.sources.is_empty() {
            return Err(ConfigError::new(
                "sources",
                "no sources given",
                format!(
                    "list at least one with a weight, e.g. `{{web: 1}}`; known: {}",
                    known_sources(&cfg.templates)
                ),
            ));
        }
        if cfg.sources.len() > u16::MAX as usize {
            return Err(ConfigError::new(
                "sources",
                "too many sources",
                "use fewer than 65536 sources",
            ));
        }
        for (i, (name, w)) in cfg.sources.iter().enumerate() {
            let key = format!("sources.{name}");
            if cfg.sources[..i].iter().any(|(n, _)| n == name) {
                return Err(ConfigError::new(
                    key,
                    format!("source `{name}` is listed twice"),
                    "list each source once",
                ));
            }
            if user_schema.is_none()
                && !BUILTIN.contains(&name.as_str())
                && !cfg.templates.contains_key(name)
            {
                return Err(ConfigError::new(
                    key,
                    format!("unknown source `{name}`"),
                    format!(
                        "use one of: {}, or define it under `templates`",
                        known_sources(&cfg.templates)
                    ),
                ));
            }
            if *w == 0 {
                return Err(ConfigError::new(
                    key,
                    format!("weight 0 would never pick `{name}`"),
                    "give a weight of 1 or more, or remove the source",
                ));
            }
            if format.is_apache() && name != "web" {
                return Err(ConfigError::new(
                    key,
                    format!("{format} only applies to the `web` source, not `{name}`"),
                    format!("use json, logfmt, rfc5424 or rfc3164 for `{name}`, or remove it"),
                ));
            }
        }
        let size = match cfg.size {
            None => 0,
            Some(_) if format.is_apache() => {
                return Err(ConfigError::new(
                    "size",
                    format!("{format} has no field that could hold padding"),
                    "omit `size`, or use json, logfmt, rfc5424 or rfc3164",
                ))
            }
            Some(0) => {
                return Err(ConfigError::new(
                    "size",
                    "size must be at least 1 byte",
                    "omit `size` for natural event sizes",
                ))
            }
            Some(s) if s > MAX_SIZE => {
                return Err(ConfigError::new(
                    "size",
                    format!("size {s} is above the {MAX_SIZE}-byte limit"),
                    format!("use at most {MAX_SIZE} (1 MiB)"),
                ))
            }
            Some(s) => s,
        };

        if let Some(fields) = &cfg.fields {
            if !matches!(format, Format::Json | Format::Logfmt | Format::Avro) {
                return Err(ConfigError::new(
                    "fields",
                    format!("{format} has a fixed layout: it cannot choose fields"),
                    "omit `fields`, or use json, logfmt or avro",
                ));
            }
            if fields.is_empty() {
                return Err(ConfigError::new(
                    "fields",
                    "no fields listed",
                    "list at least one field, or omit `fields` for all",
                ));
            }
        }
        // Compile every template, used or not, so mistakes surface now.
        let mut compiled = BTreeMap::new();
        for (name, raw) in &cfg.templates {
            let mut rng = Rng::derive(cfg.seed, fnv1a(format!("template:{name}").as_bytes()));
            if BUILTIN.contains(&name.as_str()) {
                return Err(ConfigError::new(
                    format!("templates.{name}"),
                    format!("`{name}` is a built-in source"),
                    "give the template another name",
                ));
            }
            compiled.insert(name.clone(), template::compile(name, raw, &mut b, &mut rng)?);
        }

        let mut room = Room::new(cfg.memory_limit);
        let mut names = Vec::new();
        let mut sources = Vec::new();
        let mut estimates = Vec::new();
        let mut seen_fields = std::collections::BTreeSet::new();
        let mut schemas = Vec::new();
        for (name, _) in &cfg.sources {
            let mut rng = Rng::derive(cfg.seed, fnv1a(name.as_bytes()));
            if let Some(src) = &user_schema {
                let enc =
                    if format == Format::Avro { schema::Enc::Avro } else { schema::Enc::Json };
                let prefix = cfg.wire_prefix.first().map_or(&[][..], Vec::as_slice);
                let mut variants = Vec::with_capacity(VARIANTS);
                for _ in 0..VARIANTS {
                    let mut e = Emitter::new(&mut b);
                    src.render(enc, prefix, cfg.container_sync, &mut rng, &mut e);
                    let v = e.finish();
                    variants.push(Variant::of(&b, v));
                    room.check(b.blob.len(), name)?;
                }
                names.push(name.clone());
                sources.push(CompiledSource { variants });
                estimates.push(0);
                if format == Format::Avro {
                    schemas.push(
                        serde_json::from_str(cfg.schema.as_deref().unwrap_or("null"))
                            .unwrap_or(serde_json::Value::Null),
                    );
                }
                continue;
            }
            let gen = match SourceGen::builtin(name, &mut b, &mut rng) {
                Some(g) => g,
                None => SourceGen::Template(compiled.remove(name).expect("checked above")),
            };
            let mut variants = Vec::with_capacity(VARIANTS);
            let mut smallest = usize::MAX;
            let tb_len = format::trace_block(format, cfg.trace).0.len();
            // The records are held until rendered: count them against the limit as they come.
            let mut held = b.blob.len();
            let mut records: Vec<program::Record> = Vec::with_capacity(VARIANTS);
            for _ in 0..VARIANTS {
                let mut rec = gen.record(&mut rng);
                if let Some(keep) = &cfg.fields {
                    rec.fields.retain(|(k, _)| keep.iter().any(|f| f == k));
                    for (k, _) in &rec.fields {
                        seen_fields.insert(k.clone());
                    }
                }
                held += rec.fields.iter().map(|(k, _)| k.len() + 48).sum::<usize>() + 256;
                room.check(held, name)?;
                records.push(rec);
            }
            // Avro: one record schema per source, from all its variants; the datum starts with
            // the wire prefix and, when several sources share the run, the union branch.
            let mut avro_fields = Vec::new();
            let mut branch = Vec::new();
            if format == Format::Avro {
                avro::record::check_source_name(name)?;
                avro_fields = avro::record::infer(name, &records, &b)?;
                schemas.push(avro::record::record_schema(name, &avro_fields, cfg.trace, size > 0));
                if cfg.sources.len() > 1 && !cfg.avro_records_apart {
                    crate::avro::push_long(&mut branch, names.len() as i64);
                }
            }
            let prefix = cfg
                .wire_prefix
                .get(names.len())
                .or(cfg.wire_prefix.first())
                .map_or(&[][..], Vec::as_slice);
            let frame = avro::record::Frame { prefix, branch: &branch, sync: cfg.container_sync };
            for rec in &mut records {
                let mut v = if format == Format::Avro {
                    let mut e = Emitter::new(&mut b);
                    avro::record::render(name, &avro_fields, rec, &frame, size > 0, &mut e);
                    e.finish()
                } else {
                    render_variant(&mut b, format, name, rec, size)
                };
                // Under `size`, fields that do not fit are left out, last first (json, logfmt).
                while size > 0
                    && format != Format::Avro
                    && estimate(&b, v, tb_len) > size
                    && !rec.fields.is_empty()
                {
                    rec.fields.pop();
                    v = render_variant(&mut b, format, name, rec, size);
                }
                // Avro records keep every field (the schema is fixed): the largest must fit.
                let est = estimate(&b, v, tb_len);
                smallest = if format == Format::Avro {
                    if smallest == usize::MAX {
                        est
                    } else {
                        smallest.max(est)
                    }
                } else {
                    smallest.min(est)
                };
                variants.push(Variant::of(&b, v));
                room.check(b.blob.len() + held, name)?;
            }
            names.push(name.clone());
            sources.push(CompiledSource { variants });
            estimates.push(smallest);
        }
        if let Some(keep) = &cfg.fields {
            if let Some(missing) = keep.iter().find(|f| !seen_fields.contains(*f)) {
                return Err(ConfigError::new(
                    "fields",
                    format!("no source of this run has a field `{missing}`"),
                    "list fields the sources have (see the events `spate run --sink stdout` prints), or omit `fields`",
                ));
            }
        }
        if size > 0 {
            for (name, &est) in names.iter().zip(&estimates) {
                if size < est {
                    let hint = if cfg.trace != TraceContext::None {
                        format!(
                            "use at least {est}, or `trace_context: none` for a smaller envelope"
                        )
                    } else {
                        format!("use at least {est}, or omit `size`")
                    };
                    return Err(ConfigError::new(
                        "size",
                        if format == Format::Avro {
                            format!("size {size} is smaller than the largest `{name}` record in avro (about {est} bytes)")
                        } else {
                            format!("size {size} is smaller than the smallest `{name}` event in {format} (about {est} bytes)")
                        },
                        hint,
                    ));
                }
            }
        }
        // Filler: a repeating lowercase pattern, valid unquoted in every format.
        let pad_off = b.blob.len();
        b.blob.extend((0..size).map(|i| b"spatepadding"[i % 12]));
        // Slack so that every blob copy can move whole chunks (see `put_chunked`).
        b.blob.extend_from_slice(&[0; CHUNK]);

        let total: u64 = cfg.sources.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut acc = 0u64;
        let thresholds = cfg
            .sources
            .iter()
            .map(|(_, w)| {
                acc += u64::from(*w);
                (u128::from(acc) << 32).div_ceil(u128::from(total)) as u64
            })
            .collect();

        let (trace_block, trace_slots) = format::trace_block(format, cfg.trace);
        // `traceparent` is `00-` before the last trace slot (the block's other copy of the trace
        // id, if any, comes first).
        let tp_in_block = trace_slots
            .iter()
            .rev()
            .find(|s| s.1)
            .and_then(|&(pos, _)| pos.checked_sub(3))
            .filter(|&p| {
                trace_block
                    .get(p..p + 55)
                    .is_some_and(|t| t.starts_with(b"00-") && t.ends_with(b"-01"))
            })
            .map_or(EventMeta::NONE, |p| p as u32);
        let avro_records: Vec<String> =
            schemas.iter().map(std::string::ToString::to_string).collect();
        let avro_schema = match schemas.len() {
            0 => None,
            1 => Some(schemas.pop().expect("one").to_string()),
            _ => Some(serde_json::Value::Array(schemas).to_string()),
        };
        if let Some(text) = &avro_schema {
            apache_avro::Schema::parse_str(text).map_err(|e| {
                ConfigError::new(
                    "format",
                    format!("the derived Avro schema does not parse: {e}"),
                    "report this schema as a bug",
                )
            })?;
        }
        Ok(EventSpec {
            avro_schema,
            avro_records,
            format,
            seed: cfg.seed,
            names,
            sources,
            thresholds,
            blob: b.blob,
            ops: b.ops,
            tables: b.tables,
            pool_entries: b.pool_entries,
            sessions: b.sessions,
            trace_block,
            trace_slots,
            tp_in_block,
            size,
            pad_off,
        })
    }

    /// Source names; the index is [`EventMeta::source`].
    pub fn source_names(&self) -> &[String] {
        &self.names
    }

    /// The format the spec renders.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The Avro schema (JSON) of the events, when the format is Avro: the source's record, or
    /// a union of the sources' records.
    pub fn avro_schema(&self) -> Option<&str> {
        self.avro_schema.as_deref()
    }

    /// Source `i`'s record schema (Avro): the schema of its datums under
    /// [`EventConfig::avro_records_apart`].
    pub fn avro_record(&self, i: usize) -> Option<&str> {
        self.avro_records.get(i).map(String::as_str)
    }

    /// Source (by weight, from the low 32 bits) and variant (from the high bits) for `r`.
    #[inline]
    pub(crate) fn pick(&self, r: u64) -> (usize, &Variant) {
        let src = if self.thresholds.len() == 1 {
            0
        } else {
            let x = r & 0xffff_ffff;
            self.thresholds.iter().position(|&t| x < t).unwrap_or(self.thresholds.len() - 1)
        };
        (src, &self.sources[src].variants[(r >> 32) as usize & (VARIANTS - 1)])
    }

    /// A per-event number from quantile table `table`: a point of a random cell.
    #[inline]
    pub(crate) fn draw(&self, rng: &mut Rng, table: u32) -> i64 {
        let t = &self.tables[table as usize * (TABLE + 1)..][..=TABLE];
        let r = rng.next_u64();
        let i = (r as usize) & (TABLE - 1);
        let (lo, hi) = (t[i], t[i + 1]);
        // The top 52 bits scaled onto [lo, hi].
        lo + ((u128::from(r >> 12) * ((hi - lo) as u128 + 1)) >> 52) as i64
    }

    /// The blob (offset, length) of session field `slot`'s id for this event; `st` is the
    /// generator's (current id, events left on it).
    #[inline]
    pub(crate) fn session_entry(
        &self,
        st: &mut (u32, u32),
        rng: &mut Rng,
        slot: u32,
    ) -> (u32, u32) {
        let d = self.sessions[slot as usize];
        if st.1 == 0 {
            st.0 = rng.below(u64::from(d.n)) as u32;
            // Run lengths 1..=2*reuse-1: about `reuse` on average.
            st.1 = 1 + rng.below(2 * u64::from(d.reuse) - 1) as u32;
        }
        st.1 -= 1;
        self.pool_entries[(d.base + st.0) as usize]
    }

    /// Loads the first op and the main literal of `v` so they are in cache when `v` runs:
    /// variants are picked at random, and a cold variant would otherwise cost a chain of
    /// cache misses (variant -> ops -> blob) on the critical path.
    #[inline]
    pub(crate) fn touch(&self, v: &Variant) {
        std::hint::black_box(self.ops[v.start as usize]);
        let end = (v.hot + v.hot_len) as usize;
        let mut o = v.hot as usize;
        while o < end {
            std::hint::black_box(self.blob[o]);
            o += 64;
        }
    }
}

/// Renders one variant of `rec` as a program; returns its ops' (start, len).
fn render_variant(
    b: &mut Builder,
    format: Format,
    source: &str,
    rec: &program::Record,
    size: usize,
) -> (u32, u32) {
    let mut e = Emitter::new(b);
    format::render(format, source, rec, size > 0, &mut e);
    e.finish()
}

/// Estimated length of a variant without padding (dynamic slots at typical widths).
fn estimate(b: &Builder, (start, len): (u32, u32), trace_block: usize) -> usize {
    let mut n = 0;
    for op in &b.ops[start as usize..(start + len) as usize] {
        n += match *op {
            Op::Lit { len, .. } => len as usize,
            Op::Ts3339 => 27,
            Op::TsApache => 26,
            Op::TsBsd => 15,
            Op::Id => 16 + 2 + 1 + 6,
            Op::Trace => trace_block,
            Op::Num { table, decimals } => {
                let mid = b.tables[table as usize * (TABLE + 1) + TABLE / 2];
                dist::NumGen::format(mid, decimals).len()
            }
            Op::Pool { base } => b.pool_avg_len(base, TABLE as u32),
            Op::Uuid => 36,
            Op::Seq => 6,
            Op::Session { slot } => {
                let d = b.sessions[slot as usize];
                b.pool_avg_len(d.base, d.n)
            }
            Op::Pad { .. } | Op::AvroPad { .. } | Op::BlockEnd => 0,
            Op::BlockStart => 3,
            Op::Iter { .. } | Op::Epoch { .. } => 8,
            Op::AvroTs => 8,
            Op::AvroId => 26,
            Op::AvroLong { table } => {
                crate::avro::long_len(b.tables[table as usize * (TABLE + 1) + TABLE / 2])
            }
            Op::AvroDouble { .. } => 8,
            Op::AvroSeq => 3,
            Op::AvroSession { slot } => {
                let d = b.sessions[slot as usize];
                b.pool_avg_len(d.base, d.n) + 1
            }
        };
    }
    n
}
