//! Fixed-width lowercase hex and id formatting into stack buffers (no allocation), for Kafka
//! headers and keys.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Writes 32 hex digits of `v` into `out[..32]`.
#[inline]
pub fn u128_into(out: &mut [u8], v: u128) {
    for (i, b) in out[..32].iter_mut().enumerate() {
        *b = HEX[((v >> (124 - 4 * i)) & 0xf) as usize];
    }
}

/// Writes 16 hex digits of `v` into `out[..16]`.
#[inline]
pub fn u64_into(out: &mut [u8], v: u64) {
    for (i, b) in out[..16].iter_mut().enumerate() {
        *b = HEX[((v >> (60 - 4 * i)) & 0xf) as usize];
    }
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
    }
}
