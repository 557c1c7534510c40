//! Binary COPY rows (PostgreSQL's `COPY ... (FORMAT binary)`): a header, per row a field count
//! and each field as a 4-byte length (−1 for NULL) and its binary form, then a trailer. The
//! columns: `ts timestamptz` (microseconds since 2000-01-01), `source text`, `id text`,
//! `traceparent text`, then `body jsonb` (version byte 1, then the JSON text) or the typed
//! layout's columns (`bigint` and `double precision` as 8 big-endian bytes, `boolean` as one,
//! `text` as its UTF-8 bytes).

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

pub(super) const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
pub(super) const TRAILER: &[u8] = &[0xff, 0xff];

/// Appends one row of the JSONB layout.
#[inline]
pub(super) fn row(
    out: &mut Vec<u8>,
    ts_unix_us: i64,
    source: &[u8],
    id: &[u8],
    traceparent: Option<&[u8]>,
    json: &[u8],
) {
    envelope(out, 5, ts_unix_us, source, id, traceparent);
    out.extend_from_slice(&(json.len() as i32 + 1).to_be_bytes());
    out.push(1);
    out.extend_from_slice(json);
}

/// Starts a row of `fields` fields with the envelope's four.
#[inline]
pub(super) fn envelope(
    out: &mut Vec<u8>,
    fields: i16,
    ts_unix_us: i64,
    source: &[u8],
    id: &[u8],
    traceparent: Option<&[u8]>,
) {
    out.extend_from_slice(&fields.to_be_bytes());
    field(out, &(ts_unix_us - PG_EPOCH_US).to_be_bytes());
    field(out, source);
    field(out, id);
    match traceparent {
        Some(t) => field(out, t),
        None => null(out),
    }
}

/// One field's binary form.
#[inline]
pub(super) fn field(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

/// A NULL field.
#[inline]
pub(super) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// Microseconds since the Unix epoch of `2026-11-25T12:59:00.123456Z` (the timestamp every json
/// event starts with); None if `t` is not in that form.
#[inline]
pub(super) fn rfc3339_us(t: &[u8]) -> Option<i64> {
    if t.len() < 27 || t[4] != b'-' || t[10] != b'T' || t[19] != b'.' || t[26] != b'Z' {
        return None;
    }
    let n = |a: usize, b: usize| -> Option<i64> {
        t[a..b]
            .iter()
            .try_fold(0i64, |v, &c| c.is_ascii_digit().then(|| v * 10 + i64::from(c - b'0')))
    };
    let (y, m, d) = (n(0, 4)?, n(5, 7)?, n(8, 10)?);
    let (hh, mm, ss, us) = (n(11, 13)?, n(14, 16)?, n(17, 19)?, n(20, 26)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse() {
        assert_eq!(rfc3339_us(b"1970-01-01T00:00:00.000001Z"), Some(1));
        assert_eq!(rfc3339_us(b"2000-01-01T00:00:00.000000Z"), Some(PG_EPOCH_US));
        assert_eq!(rfc3339_us(b"2026-11-25T12:59:00.123456Z"), Some(1_795_611_540_123_456));
        assert_eq!(rfc3339_us(b"2024-02-29T23:59:59.999999Z"), Some(1_709_251_199_999_999));
        assert_eq!(rfc3339_us(b"not a timestamp at all....."), None);
    }
}
