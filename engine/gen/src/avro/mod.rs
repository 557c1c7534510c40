//! Avro: the binary encoding's primitives, object container files, and the record schemas of
//! the built-in sources (`record.rs`). Framing for Kafka and the Schema Registry client are the
//! engine's (`spate_engine::avro`).
//!
//! spate encodes Avro itself, with op programs compiled from the schema at start-up (see
//! `avro/record.rs` and `schema.rs`): no `Value` tree and no allocation per event. The
//! `apache-avro` crate parses and checks schemas (user schemas and the ones spate derives),
//! gives their Parsing Canonical Form and fingerprints, and decodes spate's output in tests.
//!
//! Encoding, from the Avro 1.12 specification: `int` and `long` are zig-zag varints; `float`
//! and `double` are IEEE 754 little-endian; `string` and `bytes` are a `long` length then the
//! bytes; a union is the branch index (a `long`) then the value; a record is its fields in
//! schema order.

pub mod ocf;
pub(crate) mod record;

use std::fmt;
use std::str::FromStr;

/// Zig-zag form of a signed `long`: small magnitudes give short varints.
#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Writes `v` as an Avro `long` at the start of `out`; returns its length (1 to 10 bytes).
#[inline]
pub fn put_long(out: &mut [u8], v: i64) -> usize {
    put_varint(out, zigzag(v))
}

/// Writes `u` as a base-128 varint, low groups first; returns its length.
#[inline]
pub fn put_varint(out: &mut [u8], mut u: u64) -> usize {
    let mut i = 0;
    while u >= 0x80 {
        out[i] = (u as u8) | 0x80;
        u >>= 7;
        i += 1;
    }
    out[i] = u as u8;
    i + 1
}

/// Length of `v` as an Avro `long`.
#[inline]
pub fn long_len(v: i64) -> usize {
    let u = zigzag(v);
    (64 - (u | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends `v` as an Avro `long`.
pub fn push_long(out: &mut Vec<u8>, v: i64) {
    let mut b = [0u8; 10];
    let n = put_long(&mut b, v);
    out.extend_from_slice(&b[..n]);
}

/// Appends an Avro `string` (or `bytes`): length, then the bytes.
pub fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    push_long(out, s.len() as i64);
    out.extend_from_slice(s);
}

/// An Avro name (record, enum, fixed, field): `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_name(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Compression of container-file blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Codec {
    /// No compression.
    #[default]
    Null,
    /// Deflate (RFC 1951), as Avro's `deflate` codec.
    Deflate,
    /// Zstandard, as Avro's `zstandard` codec.
    Zstandard,
}

impl Codec {
    /// Every codec, in the order the CLI lists them.
    pub const ALL: [Codec; 3] = [Codec::Null, Codec::Deflate, Codec::Zstandard];

    /// The name in the container header's `avro.codec`.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Null => "null",
            Codec::Deflate => "deflate",
            Codec::Zstandard => "zstandard",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "zstd" => Ok(Codec::Zstandard),
            t => Codec::ALL.into_iter().find(|c| c.name() == t).ok_or_else(|| s.to_string()),
        }
    }
}

/// The Confluent wire format's header: magic byte 0, then the schema id (4 bytes, big-endian).
pub fn confluent_header(id: u32) -> [u8; 5] {
    let b = id.to_be_bytes();
    [0, b[0], b[1], b[2], b[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longs_match_the_specification() {
        // Examples from the specification's table of zig-zag encodings.
        for (v, want) in [
            (0i64, &[0x00u8][..]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-2, &[0x03]),
            (2, &[0x04]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
        ] {
            let mut b = [0u8; 10];
            let n = put_long(&mut b, v);
            assert_eq!(&b[..n], want, "{v}");
            assert_eq!(long_len(v), n, "{v}");
        }
        for v in [i64::MIN, i64::MAX, 1 << 40, -(1 << 50)] {
            let mut b = [0u8; 10];
            let n = put_long(&mut b, v);
            assert_eq!(long_len(v), n);
            let back = apache_avro::from_avro_datum(&apache_avro::Schema::Long, &mut &b[..n], None)
                .unwrap();
            assert_eq!(back, apache_avro::types::Value::Long(v));
        }
    }

    #[test]
    fn names() {
        assert!(valid_name("web_v2") && valid_name("_x"));
        assert!(!valid_name("") && !valid_name("2x") && !valid_name("a-b") && !valid_name("a.b"));
    }
}
