//! Calendar arithmetic for timestamps (UTC), done once per second per worker.

pub(crate) const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// Broken-down UTC time of a Unix second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
}

impl Civil {
    /// Howard Hinnant's `civil_from_days`.
    pub(crate) fn from_unix(secs: u64) -> Civil {
        let days = (secs / 86_400) as i64;
        let rem = (secs % 86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil { year, month, day, hour: rem / 3600, min: rem / 60 % 60, sec: rem % 60 }
    }
}

#[inline]
fn two(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10 % 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

fn four(out: &mut [u8], y: i64) {
    let y = y.clamp(0, 9999) as u32;
    two(&mut out[..2], y / 100);
    two(&mut out[2..4], y % 100);
}

/// `2026-11-25T12:59:00` (the micros and `Z` are added per event).
pub(crate) fn rfc3339_prefix(c: &Civil, out: &mut [u8; 19]) {
    four(&mut out[0..4], c.year);
    out[4] = b'-';
    two(&mut out[5..7], c.month);
    out[7] = b'-';
    two(&mut out[8..10], c.day);
    out[10] = b'T';
    two(&mut out[11..13], c.hour);
    out[13] = b':';
    two(&mut out[14..16], c.min);
    out[16] = b':';
    two(&mut out[17..19], c.sec);
}

/// `25/Nov/2026:12:59:00 +0000` (apache `%t` without brackets).
pub(crate) fn apache(c: &Civil, out: &mut [u8; 26]) {
    two(&mut out[0..2], c.day);
    out[2] = b'/';
    out[3..6].copy_from_slice(MONTHS[c.month as usize - 1]);
    out[6] = b'/';
    four(&mut out[7..11], c.year);
    out[11] = b':';
    two(&mut out[12..14], c.hour);
    out[14] = b':';
    two(&mut out[15..17], c.min);
    out[17] = b':';
    two(&mut out[18..20], c.sec);
    out[20..].copy_from_slice(b" +0000");
}

/// `Nov  5 12:59:00` (RFC 3164: the day is space-padded).
pub(crate) fn bsd(c: &Civil, out: &mut [u8; 15]) {
    out[0..3].copy_from_slice(MONTHS[c.month as usize - 1]);
    out[3] = b' ';
    two(&mut out[4..6], c.day);
    if out[4] == b'0' {
        out[4] = b' ';
    }
    out[6] = b' ';
    two(&mut out[7..9], c.hour);
    out[9] = b':';
    two(&mut out[10..12], c.min);
    out[12] = b':';
    two(&mut out[13..15], c.sec);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2026-11-05T12:59:00Z
        let c = Civil::from_unix(1_762_347_540 + 365 * 86_400);
        assert_eq!((c.year, c.month, c.day, c.hour, c.min, c.sec), (2026, 11, 5, 12, 59, 0));
        let mut a = [0u8; 19];
        rfc3339_prefix(&c, &mut a);
        assert_eq!(&a, b"2026-11-05T12:59:00");
        let mut b = [0u8; 26];
        apache(&c, &mut b);
        assert_eq!(&b, b"05/Nov/2026:12:59:00 +0000");
        let mut d = [0u8; 15];
        bsd(&c, &mut d);
        assert_eq!(&d, b"Nov  5 12:59:00");
        let e = Civil::from_unix(0);
        assert_eq!((e.year, e.month, e.day), (1970, 1, 1));
        let leap = Civil::from_unix(951_782_400); // 2000-02-29
        assert_eq!((leap.year, leap.month, leap.day), (2000, 2, 29));
    }
}
