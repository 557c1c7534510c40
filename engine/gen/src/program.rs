//! The compiled form: records (format-independent events, built at start-up) and the op
//! programs they are rendered into (format-specific, executed per event).

use std::collections::HashMap;

/// Entries in each per-event value table or pool: a power of two so the hot path masks.
pub(crate) const TABLE: usize = 1024;

/// One step of a variant's program. Every dynamic op writes only "safe" bytes
/// (`[0-9a-zA-Z.:+/ -]`), so it needs no escaping in any format; string values that might
/// need escaping are pre-rendered per format into pools.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// Copy `blob[off..off + len]` (long literals are split: ops stay 8 bytes).
    Lit { len: u16, off: u32 },
    /// `2026-11-25T12:59:00.123456Z`
    Ts3339,
    /// `25/Nov/2026:12:59:00 +0000`
    TsApache,
    /// `Nov  5 12:59:00`
    TsBsd,
    /// `{run}-{worker}-{seq}`
    Id,
    /// The format's trace-context block (see `format::trace_block`): the trace and span ids
    /// in hex, written in place into a per-generator copy of the block, then copied once.
    Trace,
    /// A per-event number: quantile table `table` (TABLE + 1 sorted points, scaled by
    /// 10^decimals), uniform between two neighbouring points.
    Num { table: u32, decimals: u8 },
    /// A per-event pick among TABLE pre-rendered values starting at `pool_entries[base]`.
    Pool { base: u32 },
    /// A random version-4 UUID.
    Uuid,
    /// The event's sequence number.
    Seq,
    /// A session id: see [`SessionDef`] `slot` (also the generator's state slot).
    Session { slot: u32 },
    /// Filler up to the configured size, leaving room for `tail` more bytes.
    Pad { tail: u32 },
    /// Avro: the event time in microseconds (`long`, logical type `timestamp-micros`).
    AvroTs,
    /// Avro: the event id as a `string` (its length prefix grows with the sequence number).
    AvroId,
    /// Avro: a per-event number from quantile table `table` as a `long`.
    AvroLong { table: u32 },
    /// Avro: the same as a `double`, the table's points scaled by 10^-decimals.
    AvroDouble { table: u32, decimals: u8 },
    /// Avro: the sequence number as a `long`.
    AvroSeq,
    /// Avro: a session id (see `Session`) as a `string`.
    AvroSession { slot: u32 },
    /// Avro: a `string` filler making the record the configured size, leaving room for `tail`
    /// more bytes.
    AvroPad { tail: u32 },
    /// `start + step * seq` (the pair at `tables[table]`, scaled by 10^decimals), as text or,
    /// with `avro`, a `long` (decimals 0) or `double`.
    Iter { table: u32, decimals: u8, avro: bool },
    /// The event time since the epoch in milliseconds or microseconds, as text or an Avro `long`.
    Epoch { millis: bool, avro: bool },
    /// Avro container block: room for the block's byte count (see `BlockEnd`).
    BlockStart,
    /// Avro container block: writes the byte count into the room `BlockStart` left.
    BlockEnd,
}

/// Whether a value is a string (quoted in JSON) or a number (bare).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Str,
    Num,
}

/// A dynamic (per-event) value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dyn {
    Num {
        table: u32,
        decimals: u8,
    },
    /// A raw pool (strings that still need per-format escaping).
    Pool {
        raw: u32,
        kind: Kind,
    },
    Uuid,
    Seq,
    Session {
        slot: u32,
    },
    Ts,
}

impl Dyn {
    pub(crate) fn kind(self) -> Kind {
        match self {
            Dyn::Num { .. } | Dyn::Seq => Kind::Num,
            Dyn::Pool { kind, .. } => kind,
            Dyn::Uuid | Dyn::Session { .. } | Dyn::Ts => Kind::Str,
        }
    }
}

/// A field value of a record.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Val {
    /// Text; escaped per format when rendered.
    Str(String),
    /// A number (or `true`/`false`), already formatted.
    Num(String),
    Dyn(Dyn),
}

/// What apache formats need of a `web` event.
#[derive(Clone, Debug)]
pub(crate) struct WebParts {
    pub ip: String,
    pub user: String,
    pub method: &'static str,
    pub path: String,
    pub proto: &'static str,
    pub status: u16,
    /// `None` for a body-less response (rendered `-` by `%b`).
    pub bytes: Option<Val>,
    pub referrer: String,
    pub ua: String,
}

/// One pre-rendered event, independent of the output format.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    /// Key/value fields, in order (json, logfmt).
    pub fields: Vec<(String, Val)>,
    /// Syslog header.
    pub facility: u8,
    pub severity: u8,
    pub host: String,
    pub app: String,
    pub procid: u32,
    pub msgid: String,
    /// Human-readable syslog MSG: text pieces (logfmt-quoted where needed) and values.
    pub msg: Vec<Val>,
    pub web: Option<WebParts>,
}

/// Escaping context of a pooled value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ctx {
    Json,
    Logfmt,
    Msg,
    /// Avro binary values of each type.
    AvroStr,
    AvroLong,
    AvroDouble,
    AvroBool,
}

/// A session field: `n` pre-rendered ids at `pool_entries[base]`, each kept for about
/// `reuse` events in a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionDef {
    pub base: u32,
    pub n: u32,
    pub reuse: u32,
}

struct RawPool {
    values: Vec<String>,
    kind: Kind,
}

/// Build-time state shared by all sources of one spec.
#[derive(Default)]
pub(crate) struct Builder {
    pub blob: Vec<u8>,
    intern: HashMap<Vec<u8>, u32>,
    pub ops: Vec<Op>,
    /// Flat quantile tables, TABLE + 1 points each.
    pub tables: Vec<i64>,
    /// (offset, length) into `blob`.
    pub pool_entries: Vec<(u32, u32)>,
    raw_pools: Vec<RawPool>,
    rendered: HashMap<(u32, Ctx), u32>,
    pub sessions: Vec<SessionDef>,
}

impl Builder {
    /// Stores `bytes` in the blob once and returns its offset.
    pub(crate) fn intern(&mut self, bytes: &[u8]) -> u32 {
        if let Some(&off) = self.intern.get(bytes) {
            return off;
        }
        let off = self.blob.len() as u32;
        self.blob.extend_from_slice(bytes);
        self.intern.insert(bytes.to_vec(), off);
        off
    }

    /// Registers a quantile table (`points` sorted, TABLE + 1 of them); returns its id.
    pub(crate) fn add_table(&mut self, points: &[i64]) -> u32 {
        debug_assert_eq!(points.len(), TABLE + 1);
        let id = (self.tables.len() / (TABLE + 1)) as u32;
        self.tables.extend_from_slice(points);
        id
    }

    /// Registers TABLE raw values (escaped later per format); returns its id.
    pub(crate) fn add_raw_pool(&mut self, values: Vec<String>, kind: Kind) -> u32 {
        debug_assert_eq!(values.len(), TABLE);
        self.raw_pools.push(RawPool { values, kind });
        (self.raw_pools.len() - 1) as u32
    }

    /// Registers already-safe entries (no escaping needed); returns the base index.
    pub(crate) fn add_entries(&mut self, values: &[String]) -> u32 {
        let base = self.pool_entries.len() as u32;
        for v in values {
            let off = self.intern(v.as_bytes());
            self.pool_entries.push((off, v.len() as u32));
        }
        base
    }

    /// The values of raw pool `raw`.
    pub(crate) fn raw_pool(&self, raw: u32) -> &[String] {
        &self.raw_pools[raw as usize].values
    }

    /// A new session field; returns its slot.
    pub(crate) fn add_session(&mut self, def: SessionDef) -> u32 {
        self.sessions.push(def);
        (self.sessions.len() - 1) as u32
    }

    /// The pool `raw` rendered for `ctx` with `render` (cached); returns the base index.
    pub(crate) fn rendered_pool(
        &mut self,
        raw: u32,
        ctx: Ctx,
        render: impl Fn(&str, Kind, &mut Vec<u8>),
    ) -> u32 {
        if let Some(&b) = self.rendered.get(&(raw, ctx)) {
            return b;
        }
        let base = self.pool_entries.len() as u32;
        let mut buf = Vec::new();
        let n = self.raw_pools[raw as usize].values.len();
        for i in 0..n {
            buf.clear();
            let kind = self.raw_pools[raw as usize].kind;
            render(&self.raw_pools[raw as usize].values[i], kind, &mut buf);
            let off = self.intern(&buf);
            self.pool_entries.push((off, buf.len() as u32));
        }
        self.rendered.insert((raw, ctx), base);
        base
    }

    /// Average rendered length of a pool (for size estimates).
    pub(crate) fn pool_avg_len(&self, base: u32, n: u32) -> usize {
        let s: usize = self.pool_entries[base as usize..(base + n) as usize]
            .iter()
            .map(|e| e.1 as usize)
            .sum();
        s / n.max(1) as usize
    }
}

/// Shortest literal worth its own op in [`Emitter::shared`].
const SHARED_MIN: usize = 40;

/// Collects one variant's program: literal bytes are merged until a dynamic op interrupts.
pub(crate) struct Emitter<'a> {
    pub b: &'a mut Builder,
    start: usize,
    lit: Vec<u8>,
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(b: &'a mut Builder) -> Self {
        let start = b.ops.len();
        Self { b, start, lit: Vec::with_capacity(256) }
    }

    pub(crate) fn lit(&mut self, s: &[u8]) {
        self.lit.extend_from_slice(s);
    }

    /// A literal that recurs across variants (user agents, referrers...): long ones get a Lit
    /// op of their own so the blob stores them once and they stay hot in cache, instead of
    /// being repeated inside every variant's merged run.
    pub(crate) fn shared(&mut self, s: &[u8]) {
        if s.len() < SHARED_MIN {
            self.lit(s);
        } else {
            self.flush();
            self.lit.extend_from_slice(s);
            self.flush();
        }
    }

    pub(crate) fn lit_buf(&mut self) -> &mut Vec<u8> {
        &mut self.lit
    }

    fn flush(&mut self) {
        for chunk in self.lit.chunks(u16::MAX as usize) {
            let off = self.b.intern(chunk);
            self.b.ops.push(Op::Lit { len: chunk.len() as u16, off });
        }
        self.lit.clear();
    }

    pub(crate) fn op(&mut self, op: Op) {
        self.flush();
        self.b.ops.push(op);
    }

    /// Ends the program; returns (first op, op count).
    pub(crate) fn finish(mut self) -> (u32, u32) {
        self.flush();
        (self.start as u32, (self.b.ops.len() - self.start) as u32)
    }
}
