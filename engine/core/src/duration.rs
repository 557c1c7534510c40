//! Durations as configs write them: `250ms`, `30s`, `5m`, `2h`, or plain seconds. A module of
//! its own so that the sections' own config modules (`avro::config`, `audit`) use it without
//! depending on the whole `config` module, which depends on them.

use std::time::Duration;

use crate::ConfigError;

/// `250ms`, `30s`, `5m`, `2h`, or plain seconds.
/// A duration that may be zero (`0s`): for allowances such as `catch_up` and `drain_timeout`.
pub fn parse_duration_or_zero(s: &str, key: &str) -> Result<Duration, ConfigError> {
    match s.trim().trim_end_matches(|c: char| c.is_ascii_alphabetic()).parse::<f64>() {
        Ok(0.0) => Ok(Duration::ZERO),
        _ => parse_duration(s, key),
    }
}

/// Reads a duration like `500ms`, `30s`, `5m` or `1h` for `key`; an error names the key.
pub fn parse_duration(s: &str, key: &str) -> Result<Duration, ConfigError> {
    let fix = "write a duration like 500ms, 30s, 5m or 1h";
    let t = s.trim();
    let (num, unit) =
        t.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((t, "s"), |i| t.split_at(i));
    let v: f64 =
        num.parse().map_err(|_| ConfigError::new(key, format!("`{s}` is not a duration"), fix))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(ConfigError::new(key, format!("unknown unit `{unit}` in `{s}`"), fix)),
    };
    if secs.is_nan() || secs <= 0.0 || secs > 365.0 * 86400.0 {
        return Err(ConfigError::new(
            key,
            format!("`{s}` is out of range"),
            "use a duration above 0 and below a year",
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}
