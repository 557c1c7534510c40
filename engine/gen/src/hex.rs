//! Fixed-width lowercase hex and id formatting into caller buffers (no allocation): the one
//! hex encoder of the event formats, Kafka headers and keys.

/// The sixteen lowercase hex digits.
pub const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Hex digits of every byte value, two per byte: one table lookup per byte.
const PAIRS: [[u8; 2]; 256] = {
    let mut t = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = [DIGITS[i >> 4], DIGITS[i & 15]];
        i += 1;
    }
    t
};

/// Writes two hex digits per byte of `bytes` into `out` (as many as fit, two per byte).
#[inline]
pub fn bytes_into(out: &mut [u8], bytes: &[u8]) {
    for (pair, &b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[b as usize]);
    }
}

/// Writes 32 hex digits of `v` into `out[..32]`.
#[inline]
pub fn u128_into(out: &mut [u8], v: u128) {
    bytes_into(&mut out[..32], &v.to_be_bytes());
}

/// Writes 16 hex digits of `v` into `out[..16]`.
#[inline]
pub fn u64_into(out: &mut [u8], v: u64) {
    bytes_into(&mut out[..16], &v.to_be_bytes());
}

/// W3C `traceparent`: `00-{trace:32}-{span:16}-01` (55 bytes).
#[inline]
pub fn traceparent(out: &mut [u8; 55], trace: u128, span: u64) {
    out[..3].copy_from_slice(b"00-");
    u128_into(&mut out[3..35], trace);
    out[35] = b'-';
    u64_into(&mut out[36..52], span);
    out[52..].copy_from_slice(b"-01");
}

/// `{run}-{worker}-{seq}` into `out`; returns its length.
#[inline]
pub fn event_id(out: &mut [u8; 64], run: &str, worker: u16, seq: u64) -> usize {
    let mut n = run.len().min(32);
    out[..n].copy_from_slice(&run.as_bytes()[..n]);
    out[n] = b'-';
    n += 1;
    let mut b = itoa::Buffer::new();
    let w = b.format(worker).as_bytes();
    out[n..n + w.len()].copy_from_slice(w);
    n += w.len();
    out[n] = b'-';
    n += 1;
    let s = b.format(seq).as_bytes();
    out[n..n + s.len()].copy_from_slice(s);
    n + s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut tp = [0u8; 55];
        traceparent(&mut tp, 0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7);
        assert_eq!(&tp[..], b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let mut id = [0u8; 64];
        let n = event_id(&mut id, "00ab", 3, 1234567);
        assert_eq!(&id[..n], b"00ab-3-1234567");
        let mut k = [0u8; 32];
        u128_into(&mut k, u128::MAX - 1);
        assert_eq!(&k, b"fffffffffffffffffffffffffffffffe");
        let mut s = [0u8; 16];
        u64_into(&mut s, 0x0123_4567_89ab_cdef);
        assert_eq!(&s, b"0123456789abcdef");
    }
}
