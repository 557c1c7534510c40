//! A breaker's thresholds: as written in a sink's `breaker:` section, and validated.

use std::time::Duration;

use serde::Serialize;

/// Breaker thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BreakerConfig {
    /// Calls in the sliding window.
    pub window: usize,
    /// Calls needed in the window before rates are judged.
    pub min_calls: usize,
    /// Open when this share of calls failed (0..=1).
    pub failure_rate: f64,
    /// A call slower than this is slow.
    pub slow_call: Duration,
    /// Open when this share of calls was slow (0..=1).
    pub slow_rate: f64,
    /// Time in OPEN before trying again.
    pub open_wait: Duration,
    /// Trial calls in HALF_OPEN.
    pub half_open_calls: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 100,
            min_calls: 20,
            failure_rate: 0.5,
            slow_call: Duration::from_secs(5),
            slow_rate: 0.8,
            open_wait: Duration::from_secs(2),
            half_open_calls: 10,
        }
    }
}

/// A sink's `breaker:` settings as written (every sink with a breaker takes the same section).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    /// Calls in the sliding window (default 100).
    pub window: Option<usize>,
    /// Calls needed in the window before rates are judged (default 20; at most `window`).
    pub min_calls: Option<usize>,
    /// Open when this share of the window's calls failed, above 0 and at most 1 (default 0.5).
    pub failure_rate: Option<f64>,
    /// A call at least this slow is slow (default `5s`).
    pub slow_call: Option<crate::conf::HumanDuration>,
    /// Open when this share of the window's calls was slow, above 0 and at most 1 (default 0.8).
    pub slow_rate: Option<f64>,
    /// Time open before trial calls are let through (default `2s`).
    pub open_wait: Option<crate::conf::HumanDuration>,
    /// Trial calls that must succeed to close again (default 10).
    pub half_open_calls: Option<usize>,
    /// Deprecated: `slow_call` in milliseconds.
    pub slow_call_ms: Option<u64>,
    /// Deprecated: `open_wait` in milliseconds.
    pub open_wait_ms: Option<u64>,
}

impl RawBreaker {
    /// Checks every value; `at` is the section's key (e.g. `sink.kafka.breaker`). Deprecated
    /// keys in use are pushed to `deprecated`.
    pub fn validate(
        &self,
        at: &str,
        deprecated: &mut Vec<String>,
    ) -> Result<BreakerConfig, crate::ConfigError> {
        use crate::ConfigError;
        let d = BreakerConfig::default();
        let key = |k: &str| format!("{at}.{k}");
        let count = |v: Option<usize>, dflt: usize, k: &str| -> Result<usize, ConfigError> {
            match v {
                None => Ok(dflt),
                Some(n @ 1..=100_000) => Ok(n),
                Some(n) => Err(ConfigError::new(
                    key(k),
                    format!("{n} calls is out of range"),
                    format!("use 1 to 100000 (default {dflt})"),
                )),
            }
        };
        let share = |v: Option<f64>, dflt: f64, k: &str| -> Result<f64, ConfigError> {
            match v {
                None => Ok(dflt),
                Some(x) if x > 0.0 && x <= 1.0 => Ok(x),
                Some(x) => Err(ConfigError::new(
                    key(k),
                    format!("{x} is not a share"),
                    "give a number above 0 and at most 1, e.g. 0.5",
                )),
            }
        };
        let time = |v: Option<crate::conf::HumanDuration>,
                    ms: Option<u64>,
                    dflt: Duration,
                    k: &str,
                    deprecated: &mut Vec<String>| {
            let t = match (v, ms) {
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(
                        key(&format!("{k}_ms")),
                        format!("both {k} and {k}_ms are set"),
                        format!("keep {k} (a duration, e.g. 5s)"),
                    ))
                }
                (Some(v), None) => v.get(),
                (None, Some(ms)) => {
                    deprecated.push(format!(
                        "`{}` is deprecated: write `{}: {ms}ms`",
                        key(&format!("{k}_ms")),
                        key(k)
                    ));
                    Duration::from_millis(ms)
                }
                (None, None) => dflt,
            };
            if t.is_zero() {
                return Err(ConfigError::new(
                    key(k),
                    "a zero duration",
                    "give a duration above 0, e.g. 2s",
                ));
            }
            Ok(t)
        };
        let window = count(self.window, d.window, "window")?;
        let min_calls = count(self.min_calls, d.min_calls.min(window), "min_calls")?;
        if min_calls > window {
            return Err(ConfigError::new(
                key("min_calls"),
                format!("{min_calls} calls is more than the window of {window}"),
                "give at most `window` calls",
            ));
        }
        Ok(BreakerConfig {
            window,
            min_calls,
            failure_rate: share(self.failure_rate, d.failure_rate, "failure_rate")?,
            slow_call: time(
                self.slow_call,
                self.slow_call_ms,
                d.slow_call,
                "slow_call",
                deprecated,
            )?,
            slow_rate: share(self.slow_rate, d.slow_rate, "slow_rate")?,
            open_wait: time(
                self.open_wait,
                self.open_wait_ms,
                d.open_wait,
                "open_wait",
                deprecated,
            )?,
            half_open_calls: count(self.half_open_calls, d.half_open_calls, "half_open_calls")?,
        })
    }
}
