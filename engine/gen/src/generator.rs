//! The per-worker [`Generator`]: the hot path. Per event it picks a source and a variant with the
//! worker's PRNG and runs the variant's ops into the batch buffer; no allocation, lock or syscall.

use std::sync::Arc;

use bytes::BytesMut;

use spate_core::rng::Rng;

use crate::config::CHUNK;
use crate::meta::{EventMeta, RunId};
use crate::program::{Op, TABLE};
use crate::spec::EventSpec;
use crate::{dist, time};

/// Two decimal digits of 0..100.
const DEC_PAIRS: [[u8; 2]; 100] = {
    let mut t = [[0u8; 2]; 100];
    let mut i = 0;
    while i < 100 {
        t[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    t
};

/// Appends `src[..len]` in fixed 32-byte chunks, then trims the overshoot. Constant-size
/// copies compile to a couple of vector moves, where a short variable-length copy would be a
/// `memcpy` call per literal. `src` must extend at least to the next multiple of 32 past `len`.
#[inline(always)]
fn put_chunked(out: &mut BytesMut, src: &[u8], len: usize) {
    let end = out.len() + len;
    let mut o = 0;
    while o < len {
        let c: &[u8; CHUNK] = src[o..o + CHUNK].try_into().expect("copy sources have chunk slack");
        out.extend_from_slice(c);
        o += CHUNK;
    }
    out.truncate(end);
}

/// Writes `v` in decimal at the start of `out`; returns the number of digits.
#[inline]
pub(crate) fn put_u64(out: &mut [u8], mut v: u64) -> usize {
    let n = v.checked_ilog10().unwrap_or(0) as usize + 1;
    let mut i = n;
    while v >= 100 {
        i -= 2;
        out[i..i + 2].copy_from_slice(&DEC_PAIRS[(v % 100) as usize]);
        v /= 100;
    }
    if v >= 10 {
        out[..2].copy_from_slice(&DEC_PAIRS[v as usize]);
    } else {
        out[0] = b'0' + v as u8;
    }
    n
}

/// Appends `v / 10^decimals` with exactly `decimals` fraction digits, in one copy.
#[inline]
pub(crate) fn put_scaled(out: &mut BytesMut, v: i64, decimals: u8) {
    let mut b = [0u8; CHUNK];
    let mut p = usize::from(v < 0);
    b[0] = b'-';
    let a = v.unsigned_abs();
    // Constant divisors for the common cases: multiplications instead of a division.
    let (int, frac) = match decimals {
        0 => (a, 0),
        2 => (a / 100, a % 100),
        3 => (a / 1000, a % 1000),
        d => (a / dist::POW10[d as usize], a % dist::POW10[d as usize]),
    };
    p += put_u64(&mut b[p..], int);
    if decimals > 0 {
        b[p] = b'.';
        let mut f = frac;
        for i in (1..=decimals as usize).rev() {
            b[p + i] = b'0' + (f % 10) as u8;
            f /= 10;
        }
        p += decimals as usize + 1;
    }
    put_chunked(out, &b, p);
}

/// Per-worker generator: owns its PRNG and its cached timestamp and id prefixes.
pub struct Generator {
    spec: Arc<EventSpec>,
    rng: Rng,
    /// Trace and span ids (see `new`).
    trace_rng: Rng,
    worker: u16,
    /// Random bits that pick the next event's source and variant.
    next: u64,
    /// `{run}-{worker}-` then room for the sequence number.
    id: [u8; 64],
    id_len: usize,
    /// Unix second the cached timestamp texts are for.
    sec: u64,
    /// `2026-11-25T12:59:00.000000Z`: the micros are rewritten per event.
    ts3339: [u8; 27],
    ts_apache: [u8; 26],
    ts_bsd: [u8; 15],
    /// Copy of the spec's trace block (plus chunk slack); the hex slots are rewritten per event.
    trace: Vec<u8>,
    trace_len: usize,
    /// Per session field: (current id index, events left on it).
    sessions: Vec<(u32, u32)>,
}

impl Generator {
    /// The generator of worker `worker` for `spec`, in run `run_id`.
    pub fn new(spec: Arc<EventSpec>, worker: u16, run_id: RunId) -> Generator {
        let mut rng = Rng::derive(spec.seed, 0x5eed_0000_0000 | u64::from(worker));
        let next = rng.next_u64();
        let mut id = [0u8; 64];
        let p = format!("{run_id}-{worker}-");
        id[..p.len()].copy_from_slice(p.as_bytes());
        let sessions = vec![(0, 0); spec.sessions.len()];
        let trace_len = spec.trace_block.len();
        let mut trace = spec.trace_block.clone();
        trace.extend_from_slice(&[0; CHUNK]);
        // Trace context has its own stream, keyed by the run as well as the seed: two runs with
        // the same seed make the same events but never share a trace id.
        let trace_rng = Rng::derive(
            spec.seed ^ spate_core::rng::splitmix64(run_id.0),
            0x7ace_0000_0000 | u64::from(worker),
        );
        let mut g = Generator {
            spec,
            rng,
            trace_rng,
            worker,
            next,
            id,
            id_len: p.len(),
            sec: u64::MAX,
            ts3339: *b"1970-01-01T00:00:00.000000Z",
            ts_apache: [0; 26],
            ts_bsd: [0; 15],
            trace,
            trace_len,
            sessions,
        };
        g.set_second(0);
        g
    }

    /// Re-renders the cached timestamp texts for Unix second `sec` (once per second).
    #[cold]
    fn set_second(&mut self, sec: u64) {
        self.sec = sec;
        let c = time::Civil::from_unix(sec);
        let mut p = [0u8; 19];
        time::rfc3339_prefix(&c, &mut p);
        self.ts3339[..19].copy_from_slice(&p);
        time::apache(&c, &mut self.ts_apache);
        time::bsd(&c, &mut self.ts_bsd);
    }

    /// Appends one complete event, terminated by `b'\n'` (a separator that is not part of
    /// the event: binary formats may hold that byte inside), to `out`, and fills `meta`.
    #[inline]
    pub fn write_event(
        &mut self,
        seq: u64,
        ts_unix_ns: u64,
        out: &mut BytesMut,
        meta: &mut EventMeta,
    ) {
        let sec = ts_unix_ns / 1_000_000_000;
        if sec != self.sec {
            self.set_second(sec);
        }
        let spec = &*self.spec;
        // Variants are drawn one event ahead, so the next one can be pulled into cache now.
        let r = self.next;
        self.next = self.rng.next_u64();
        let (src, v) = spec.pick(r);
        let (start, len) = (v.start, v.len);
        spec.touch(spec.pick(self.next).1);
        let trace = (u128::from(self.trace_rng.next_u64()) << 64
            | u128::from(self.trace_rng.next_u64()))
        .max(1);
        let span = self.trace_rng.next_u64().max(1);
        *meta = EventMeta {
            seq,
            trace_id: trace,
            span_id: span,
            source: src as u16,
            worker: self.worker,
            id_at: EventMeta::NONE,
            id_len: 0,
            tp_at: EventMeta::NONE,
        };
        if let Some(&(t0, _)) = spec.trace_slots.first() {
            // The first slot is the trace, the second the span; repeats are 32/16-byte copies.
            let mut th = [0u8; 32];
            crate::hex::bytes_into(&mut th, &trace.to_be_bytes());
            let mut sh = [0u8; 16];
            crate::hex::bytes_into(&mut sh, &span.to_be_bytes());
            debug_assert!(spec.trace_slots[0].1 && t0 == spec.trace_slots[0].0);
            for &(pos, is_trace) in &spec.trace_slots {
                if is_trace {
                    self.trace[pos..pos + 32].copy_from_slice(&th);
                } else {
                    self.trace[pos..pos + 16].copy_from_slice(&sh);
                }
            }
        }
        let begin = out.len();
        let mut block_at = begin;
        for op in &spec.ops[start as usize..(start + len) as usize] {
            match *op {
                Op::Lit { len, off } => put_chunked(out, &spec.blob[off as usize..], len as usize),
                Op::Ts3339 => {
                    let us = (ts_unix_ns % 1_000_000_000 / 1_000) as usize;
                    self.ts3339[20..22].copy_from_slice(&DEC_PAIRS[us / 10_000]);
                    self.ts3339[22..24].copy_from_slice(&DEC_PAIRS[us / 100 % 100]);
                    self.ts3339[24..26].copy_from_slice(&DEC_PAIRS[us % 100]);
                    out.extend_from_slice(&self.ts3339);
                }
                Op::TsApache => out.extend_from_slice(&self.ts_apache),
                Op::TsBsd => out.extend_from_slice(&self.ts_bsd),
                Op::Id => {
                    let n = put_u64(&mut self.id[self.id_len..], seq);
                    meta.id_at = (out.len() - begin) as u32;
                    meta.id_len = (self.id_len + n) as u32;
                    put_chunked(out, &self.id, self.id_len + n);
                }
                Op::Trace => {
                    if spec.tp_in_block != EventMeta::NONE {
                        meta.tp_at = (out.len() - begin) as u32 + spec.tp_in_block;
                    }
                    put_chunked(out, &self.trace, self.trace_len);
                }
                Op::Num { table, decimals } => {
                    let v = spec.draw(&mut self.rng, table);
                    put_scaled(out, v, decimals);
                }
                Op::Pool { base } => {
                    let (off, len) = spec.pool_entries
                        [base as usize + (self.rng.next_u64() as usize & (TABLE - 1))];
                    put_chunked(out, &spec.blob[off as usize..], len as usize);
                }
                Op::Uuid => {
                    let hi = (self.rng.next_u64() & !0xf000) | 0x4000;
                    let lo = (self.rng.next_u64() & !(0b11 << 62)) | (0b10 << 62);
                    let mut raw = [0u8; 32];
                    crate::hex::bytes_into(&mut raw[..16], &hi.to_be_bytes());
                    crate::hex::bytes_into(&mut raw[16..], &lo.to_be_bytes());
                    let mut u = [b'-'; 36];
                    u[..8].copy_from_slice(&raw[..8]);
                    u[9..13].copy_from_slice(&raw[8..12]);
                    u[14..18].copy_from_slice(&raw[12..16]);
                    u[19..23].copy_from_slice(&raw[16..20]);
                    u[24..].copy_from_slice(&raw[20..]);
                    out.extend_from_slice(&u);
                }
                Op::Seq => {
                    let mut b = [0u8; CHUNK];
                    let n = put_u64(&mut b, seq);
                    put_chunked(out, &b, n);
                }
                Op::Session { slot } => {
                    let (off, len) =
                        spec.session_entry(&mut self.sessions[slot as usize], &mut self.rng, slot);
                    put_chunked(out, &spec.blob[off as usize..], len as usize);
                }
                Op::Pad { tail } => {
                    let have = out.len() - begin + tail as usize;
                    if spec.size > have {
                        out.extend_from_slice(
                            &spec.blob[spec.pad_off..spec.pad_off + (spec.size - have)],
                        );
                    }
                }
                Op::AvroTs => {
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, (ts_unix_ns / 1_000) as i64);
                    out.extend_from_slice(&b[..n]);
                }
                Op::AvroId => {
                    let n = put_u64(&mut self.id[self.id_len..], seq);
                    let mut b = [0u8; 10];
                    let p = crate::avro::put_long(&mut b, (self.id_len + n) as i64);
                    out.extend_from_slice(&b[..p]);
                    meta.id_at = (out.len() - begin) as u32;
                    meta.id_len = (self.id_len + n) as u32;
                    put_chunked(out, &self.id, self.id_len + n);
                }
                Op::AvroLong { table } => {
                    let v = spec.draw(&mut self.rng, table);
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, v);
                    out.extend_from_slice(&b[..n]);
                }
                Op::AvroDouble { table, decimals } => {
                    let v = spec.draw(&mut self.rng, table) as f64
                        / dist::POW10[decimals as usize] as f64;
                    out.extend_from_slice(&v.to_le_bytes());
                }
                Op::AvroSeq => {
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, seq as i64);
                    out.extend_from_slice(&b[..n]);
                }
                Op::AvroSession { slot } => {
                    let (off, len) =
                        spec.session_entry(&mut self.sessions[slot as usize], &mut self.rng, slot);
                    let mut b = [0u8; 10];
                    let n = crate::avro::put_long(&mut b, i64::from(len));
                    out.extend_from_slice(&b[..n]);
                    put_chunked(out, &spec.blob[off as usize..], len as usize);
                }
                Op::Iter { table, decimals, avro } => {
                    let t = &spec.tables[table as usize * (TABLE + 1)..];
                    let v = t[0].wrapping_add(t[1].wrapping_mul(seq as i64));
                    if !avro {
                        put_scaled(out, v, decimals);
                    } else if decimals == 0 {
                        let mut b = [0u8; 10];
                        let n = crate::avro::put_long(&mut b, v);
                        out.extend_from_slice(&b[..n]);
                    } else {
                        out.extend_from_slice(
                            &(v as f64 / dist::POW10[decimals as usize] as f64).to_le_bytes(),
                        );
                    }
                }
                Op::Epoch { millis, avro } => {
                    let v = if millis { ts_unix_ns / 1_000_000 } else { ts_unix_ns / 1_000 };
                    if avro {
                        let mut b = [0u8; 10];
                        let n = crate::avro::put_long(&mut b, v as i64);
                        out.extend_from_slice(&b[..n]);
                    } else {
                        let mut b = [0u8; CHUNK];
                        let n = put_u64(&mut b, v);
                        put_chunked(out, &b, n);
                    }
                }
                Op::BlockStart => {
                    // The datum's length goes here once it is written: 3 bytes, a padded
                    // varint (readers take non-minimal varints), enough for 1 MiB.
                    block_at = out.len();
                    out.extend_from_slice(&[0x80, 0x80, 0]);
                }
                Op::BlockEnd => {
                    let n = out.len() - block_at - 3;
                    let z = crate::avro::zigzag(n as i64);
                    out[block_at..block_at + 3].copy_from_slice(&[
                        0x80 | (z & 0x7f) as u8,
                        0x80 | (z >> 7 & 0x7f) as u8,
                        (z >> 14) as u8,
                    ]);
                }
                Op::AvroPad { tail } => {
                    // A string whose length prefix plus bytes fill the datum up to `size`. Where
                    // the prefix grows a byte (63 -> 64) no length fits exactly: one byte short.
                    let left = spec.size.saturating_sub(out.len() - begin + tail as usize);
                    let n = (1..=4)
                        .map(|k| left.saturating_sub(k))
                        .find(|&n| crate::avro::long_len(n as i64) + n <= left)
                        .unwrap_or(0);
                    let mut b = [0u8; 10];
                    let p = crate::avro::put_long(&mut b, n as i64);
                    out.extend_from_slice(&b[..p]);
                    out.extend_from_slice(&spec.blob[spec.pad_off..spec.pad_off + n]);
                }
            }
        }
    }
}
