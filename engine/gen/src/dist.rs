//! Numeric distributions, sampled at start-up only: frozen values directly, per-event values
//! through a quantile table the hot path interpolates (no `ln`/`exp` per event).

use spate_core::rng::Rng;

use crate::program::TABLE;

/// A distribution over `[min, max]` (samples are clamped to it).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Dist {
    Uniform,
    Normal {
        mean: f64,
        stddev: f64,
    },
    LogNormal {
        median: f64,
        sigma: f64,
    },
    Exponential {
        mean: f64,
    },
    /// Rank `k` (0-based from `min`) with probability proportional to `1 / (k + 1)^s`;
    /// `cdf` holds the cumulative weights.
    Zipf {
        cdf: Vec<f64>,
    },
}

/// Largest support of a zipf distribution (its CDF is tabulated).
pub(crate) const ZIPF_MAX_N: u64 = 1_000_000;

pub(crate) fn zipf_cdf(n: u64, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|k| {
            acc += 1.0 / ((k + 1) as f64).powf(s);
            acc
        })
        .collect()
}

/// A numeric generator: values scaled by `10^decimals` into integers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NumGen {
    pub min: f64,
    pub max: f64,
    pub decimals: u8,
    pub dist: Dist,
}

impl NumGen {
    pub(crate) fn new(min: f64, max: f64, decimals: u8, dist: Dist) -> Self {
        Self { min, max, decimals, dist }
    }

    fn sample_f64(&self, rng: &mut Rng) -> f64 {
        let v = match &self.dist {
            Dist::Uniform => self.min + rng.f64() * (self.max - self.min),
            Dist::Normal { mean, stddev } => mean + stddev * rng.normal(),
            Dist::LogNormal { median, sigma } => median * (sigma * rng.normal()).exp(),
            Dist::Exponential { mean } => self.min - mean * (1.0 - rng.f64()).ln(),
            Dist::Zipf { cdf } => {
                let total = *cdf.last().unwrap_or(&1.0);
                let x = rng.f64() * total;
                let k = cdf.partition_point(|&c| c <= x);
                self.min + k as f64
            }
        };
        v.clamp(self.min, self.max)
    }

    /// One value, scaled by `10^decimals`.
    pub(crate) fn sample(&self, rng: &mut Rng) -> i64 {
        let scale = 10f64.powi(i32::from(self.decimals));
        let v = self.sample_f64(rng);
        if self.decimals == 0 && matches!(self.dist, Dist::Uniform) {
            // Whole numbers: make both ends as likely as the rest.
            return rng.range_i64(self.min as i64, self.max as i64);
        }
        (v * scale).round() as i64
    }

    /// TABLE + 1 sorted sample points: the hot path picks a cell and a point within it, which
    /// follows the distribution closely while staying a couple of instructions.
    pub(crate) fn quantiles(&self, rng: &mut Rng) -> Vec<i64> {
        let scale = 10f64.powi(i32::from(self.decimals));
        let mut pts: Vec<i64> = if matches!(self.dist, Dist::Uniform) {
            // Exact evenly spaced points: uniform cells give an exactly uniform result.
            (0..=TABLE)
                .map(|i| {
                    ((self.min + (self.max - self.min) * i as f64 / TABLE as f64) * scale).round()
                        as i64
                })
                .collect()
        } else {
            (0..=TABLE).map(|_| self.sample(rng)).collect()
        };
        pts.sort_unstable();
        pts
    }

    /// Formats a scaled value.
    pub(crate) fn format(v: i64, decimals: u8) -> String {
        let mut out = Vec::new();
        write_scaled(&mut out, v, decimals);
        String::from_utf8(out).expect("ascii")
    }
}

/// Powers of ten for scaled decimals (at most 9 decimals).
pub(crate) const POW10: [u64; 10] =
    [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000];

/// Writes `v / 10^decimals` with exactly `decimals` digits after the point.
#[inline]
pub(crate) fn write_scaled<B: Put>(out: &mut B, v: i64, decimals: u8) {
    let mut buf = itoa::Buffer::new();
    if decimals == 0 {
        out.put(buf.format(v).as_bytes());
        return;
    }
    if v < 0 {
        out.put(b"-");
    }
    let a = v.unsigned_abs();
    let p = POW10[decimals as usize];
    out.put(buf.format(a / p).as_bytes());
    let mut frac = [b'.', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0', b'0'];
    let mut f = a % p;
    for i in (1..=decimals as usize).rev() {
        frac[i] = b'0' + (f % 10) as u8;
        f /= 10;
    }
    out.put(&frac[..=decimals as usize]);
}

/// Appending bytes to either a `Vec<u8>` (start-up) or a `BytesMut` (hot path).
pub(crate) trait Put {
    fn put(&mut self, b: &[u8]);
}

impl Put for Vec<u8> {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

impl Put for bytes::BytesMut {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        self.extend_from_slice(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_formatting() {
        assert_eq!(NumGen::format(12345, 2), "123.45");
        assert_eq!(NumGen::format(5, 2), "0.05");
        assert_eq!(NumGen::format(-5, 3), "-0.005");
        assert_eq!(NumGen::format(42, 0), "42");
    }

    #[test]
    fn distributions_stay_in_range() {
        let mut rng = Rng::new(1);
        for dist in [
            Dist::Uniform,
            Dist::Normal { mean: 50.0, stddev: 10.0 },
            Dist::LogNormal { median: 20.0, sigma: 1.0 },
            Dist::Exponential { mean: 10.0 },
            Dist::Zipf { cdf: zipf_cdf(100, 1.1) },
        ] {
            let g = NumGen::new(1.0, 100.0, 0, dist);
            for _ in 0..2000 {
                let v = g.sample(&mut rng);
                assert!((1..=100).contains(&v), "{v}");
            }
            let q = g.quantiles(&mut rng);
            assert_eq!(q.len(), TABLE + 1);
            assert!(q.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
