//! Value helpers shared by the built-in sources and the user's templates: public-looking
//! addresses, weighted and uniform picks, random strings, Zipf ranks, logfmt message text.

use spate_core::rng::Rng;

use crate::format::logfmt_val;
use crate::program::Val;

/// A public-looking IPv4 address (no private, loopback, CGNAT, link-local, multicast or
/// documentation ranges).
pub(crate) fn public_ipv4(rng: &mut Rng) -> String {
    loop {
        let a = rng.range_i64(1, 223) as u8;
        let b = rng.below(256) as u8;
        let c = rng.below(256) as u8;
        let d = rng.range_i64(1, 254) as u8;
        let private = a == 10
            || a == 127
            || (a == 100 && (64..128).contains(&b))
            || (a == 169 && b == 254)
            || (a == 172 && (16..32).contains(&b))
            || (a == 192 && (b == 168 || (b == 0 && (c == 0 || c == 2))))
            || (a == 198 && (b == 18 || b == 19 || (b == 51 && c == 100)))
            || (a == 203 && b == 0 && c == 113);
        if !private {
            return format!("{a}.{b}.{c}.{d}");
        }
    }
}

/// A global-unicast-looking IPv6 address from real RIR prefixes.
pub(crate) fn public_ipv6(rng: &mut Rng) -> String {
    const PREFIXES: [&str; 8] = ["2a02", "2a01", "2600", "2601", "2804", "2409", "240e", "2a00"];
    let mut s = String::from(upick(rng, &PREFIXES));
    for i in 0..7 {
        // Interface ids are random; the network part is usually sparse.
        let g = if i < 3 {
            rng.below(0x1_0000)
        } else if rng.chance(0.2) {
            0
        } else {
            rng.below(0x1_0000)
        };
        s.push_str(&format!(":{g:x}"));
    }
    s
}

/// A weighted pick of a `Copy` value.
pub(crate) fn wpick<T: Copy>(rng: &mut Rng, items: &[(T, u32)]) -> T {
    *rng.pick_weighted(items)
}

/// A uniform pick of a `Copy` value.
pub(crate) fn upick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    *rng.pick(items)
}

pub(crate) fn alnum(rng: &mut Rng, n: usize) -> String {
    const A: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..n).map(|_| A[rng.index(A.len())] as char).collect()
}

pub(crate) fn hexs(rng: &mut Rng, n: usize) -> String {
    (0..n).map(|_| crate::hex::DIGITS[rng.index(16)] as char).collect()
}

/// Zipf-like rank among `n` items (rank 0 the most popular): the inverse CDF of a power law
/// with exponent `s` on `[1, n + 1)`, a continuous stand-in for Zipf that costs O(1).
pub(crate) fn zipf_rank(rng: &mut Rng, n: usize, s: f64) -> usize {
    let u = rng.f64();
    let a = 1.0 - s;
    let top = n as f64 + 1.0;
    let x = if a.abs() < 1e-9 {
        (top.ln() * u).exp()
    } else {
        ((top.powf(a) - 1.0) * u + 1.0).powf(1.0 / a)
    };
    (x as usize).saturating_sub(1).min(n - 1)
}

pub(crate) fn s(v: &str) -> Val {
    Val::Str(v.to_string())
}

pub(crate) fn n(v: impl ToString) -> Val {
    Val::Num(v.to_string())
}

/// `key=value` text for a logfmt-ish syslog message.
pub(crate) fn kv_text(k: &str, v: &str) -> String {
    let mut out = Vec::new();
    out.extend_from_slice(k.as_bytes());
    out.push(b'=');
    logfmt_val(v, &mut out);
    String::from_utf8(out).expect("utf-8 in, utf-8 out")
}

/// The logfmt-ish MSG of a record: every field as `key=value`.
pub(crate) fn logfmt_msg(fields: &[(String, Val)]) -> Vec<Val> {
    let mut msg = Vec::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        let sep = if i == 0 { "" } else { " " };
        match v {
            Val::Str(t) => msg.push(Val::Str(format!("{sep}{}", kv_text(k, t)))),
            Val::Num(t) => msg.push(Val::Str(format!("{sep}{k}={t}"))),
            Val::Dyn(d) => {
                msg.push(Val::Str(format!("{sep}{k}=")));
                msg.push(Val::Dyn(*d));
            }
        }
    }
    msg
}
