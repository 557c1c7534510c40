//! Typed values of the configuration tree, shared by every crate's config section: durations and
//! sizes as people write them, and the four kinds of values the control plane must treat apart.
//!
//! Each type says in its JSON Schema what it is (`x-spate-kind`), and the walks over a config
//! (`spate_engine::config::walk`) find them by that mark, never by key name:
//! - [`DataPath`]: a file spate writes or reads as data (a file sink, a dead-letter file, a
//!   schema). A run started over HTTP may name one only under `spate serve --data-dir`;
//! - [`SecretFile`]: a file holding a secret or a key (CA, certificate, key, password and token
//!   files). A run started over HTTP may not name one at all;
//! - [`SecretText`]: a password or token written in the config (or `${NAME}` of the
//!   environment). Prints as `<redacted>`; masked in every message;
//! - [`SecretUrl`]: a connection URL that may carry a password (`scheme://user:pw@host`).
//!   Prints with the password masked.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::secret::REDACTED;

/// The mark in a schema that says what kind of value a string is (see the module doc).
pub const KIND: &str = "x-spate-kind";

/// A duration: `250ms`, `30s`, `5m`, `2h`, or a number of seconds. Zero is a valid value here;
/// the keys that cannot be zero say so when they are validated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// Parses `250ms`, `30s`, `5m`, `2h`, `1.5s` or plain seconds; at most a year.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let (num, unit) =
            t.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((t, "s"), |i| t.split_at(i));
        let v: f64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a duration: write e.g. 500ms, 30s, 5m or 1h"))?;
        let secs = match unit.trim() {
            "ms" => v / 1000.0,
            "s" => v,
            "m" => v * 60.0,
            "h" => v * 3600.0,
            u => return Err(format!("unknown unit `{u}` in `{s}`: use ms, s, m or h")),
        };
        Self::from_secs(secs).ok_or_else(|| format!("`{s}` is out of range: use 0 to a year"))
    }

    fn from_secs(secs: f64) -> Option<Self> {
        (secs.is_finite() && (0.0..=365.0 * 86_400.0).contains(&secs))
            .then(|| HumanDuration(Duration::from_secs_f64(secs)))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            let s = d.as_secs();
            match s {
                s if s > 0 && s.is_multiple_of(3600) => write!(f, "{}h", s / 3600),
                s if s > 0 && s.is_multiple_of(60) => write!(f, "{}m", s / 60),
                s => write!(f, "{s}s"),
            }
        } else if d.as_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs_f64())
        }
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 30s, 5m or 1h (or a number of seconds)")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<HumanDuration, E> {
                HumanDuration::from_secs(v as f64)
                    .ok_or_else(|| E::custom(format!("{v} s is more than a year")))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("{v} s is negative")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<HumanDuration, E> {
                HumanDuration::from_secs(v)
                    .ok_or_else(|| E::custom(format!("{v} s is out of range: use 0 to a year")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                HumanDuration::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["string", "number"],
            "format": "duration",
            "examples": ["250ms", "30s", "5m"],
        })
    }
}

/// A number of bytes: `1048576`, `64KiB`, `256MiB`, `1GiB` (or `kB`, `MB`, `GB`, powers of 1000).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Reads `512`, `64KiB`, `16MiB`, `1GiB` (or `KB`, `MB`, `GB` in powers of 1000).
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let i = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(i);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size: write e.g. 1048576, 64KiB or 256MiB"))?;
        let mul: u64 = match unit.trim() {
            "" | "B" => 1,
            "kB" | "KB" => 1_000,
            "KiB" => 1 << 10,
            "MB" => 1_000_000,
            "MiB" => 1 << 20,
            "GB" => 1_000_000_000,
            "GiB" => 1 << 30,
            u => {
                return Err(format!(
                    "unknown unit `{u}` in `{s}`: use B, KiB, MiB, GiB (or kB, MB, GB)"
                ))
            }
        };
        n.checked_mul(mul).map(ByteSize).ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n > 0 && n.is_multiple_of(1 << 30) => write!(f, "{}GiB", n >> 30),
            n if n > 0 && n.is_multiple_of(1 << 20) => write!(f, "{}MiB", n >> 20),
            n if n > 0 && n.is_multiple_of(1 << 10) => write!(f, "{}KiB", n >> 10),
            n => write!(f, "{n}"),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size in bytes such as 1048576, 64KiB or 256MiB")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom(format!("{v} bytes is negative")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                ByteSize::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": ["integer", "string"], "format": "byte-size", "examples": [1_048_576, "256MiB"]})
    }
}

/// Declares a path type: serde as a plain string, its schema marked with `kind`.
macro_rules! path_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $format:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub PathBuf);

        impl $name {
            /// The path as written.
            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl From<PathBuf> for $name {
            fn from(p: PathBuf) -> Self {
                $name(p)
            }
        }

        impl From<&str> for $name {
            fn from(p: &str) -> Self {
                $name(PathBuf::from(p))
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn inline_schema() -> bool {
                true
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({"type": "string", "format": $format, KIND: $kind})
            }
        }
    };
}

path_type!(
    /// A file spate writes or reads as data: confined to `--data-dir` for runs started over HTTP.
    DataPath,
    "data-path",
    "path"
);
path_type!(
    /// A file holding a secret or a key: never from a run started over HTTP.
    SecretFile,
    "secret-file",
    "path"
);

/// A password or token as written (`${NAME}` reads the environment when it is validated).
/// Debug, Display and Serialize print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl SecretText {
    /// The secret text (to be handed to the client that needs it, never logged).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SecretText {
    fn from(s: &str) -> Self {
        SecretText(s.to_string())
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for SecretText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl JsonSchema for SecretText {
    fn schema_name() -> Cow<'static, str> {
        "SecretText".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "password", KIND: "secret"})
    }
}

/// A connection URL that may carry a password (`scheme://user:password@host...`). Serialize
/// masks the password; the value itself is used only to connect.
#[derive(Clone, PartialEq, Eq, Hash, Deserialize)]
#[serde(transparent)]
pub struct SecretUrl(pub String);

impl From<&str> for SecretUrl {
    fn from(s: &str) -> Self {
        SecretUrl(s.to_string())
    }
}

impl SecretUrl {
    /// The URL, password included (to be handed to the client, never logged).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with its password (if any) masked.
    pub fn masked(&self) -> String {
        mask_url_password(&self.0)
    }

    /// The password of the URL, if it has one (to mask it in messages).
    pub fn password(&self) -> Option<&str> {
        let rest = self.0.split_once("://")?.1;
        let userinfo = rest.split_once('@')?.0;
        userinfo.split_once(':').map(|(_, p)| p).filter(|p| !p.is_empty())
    }
}

/// `scheme://user:<redacted>@rest` for `scheme://user:password@rest`; anything else as it is.
pub fn mask_url_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    // The userinfo ends at the last `@` before the path.
    let auth_end = rest.find('/').unwrap_or(rest.len());
    match rest[..auth_end].rfind('@') {
        Some(at) => match rest[..at].split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:{REDACTED}{}", &rest[at..]),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

impl JsonSchema for SecretUrl {
    fn schema_name() -> Cow<'static, str> {
        "SecretUrl".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "uri", KIND: "secret-url"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        for (s, ms) in [
            ("250ms", 250),
            ("30s", 30_000),
            ("5m", 300_000),
            ("2h", 7_200_000),
            ("3", 3000),
            ("0s", 0),
            ("1.5s", 1500),
        ] {
            let d = HumanDuration::parse(s).unwrap();
            assert_eq!(d.0, Duration::from_millis(ms), "{s}");
            assert_eq!(HumanDuration::parse(&d.to_string()).unwrap(), d, "{s} prints as {d}");
        }
        for bad in ["5 parsecs", "-1s", "x", "400d", "1e400s"] {
            assert!(HumanDuration::parse(bad).is_err(), "{bad}");
        }
        let d: HumanDuration = serde_json::from_str("2").unwrap();
        assert_eq!(d.0, Duration::from_secs(2));
        let d: HumanDuration = serde_json::from_str("\"100ms\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"100ms\"");
    }

    #[test]
    fn sizes_parse_and_print_back() {
        for (s, n) in [
            ("1048576", 1 << 20),
            ("64KiB", 64 << 10),
            ("256MiB", 256 << 20),
            ("1GiB", 1 << 30),
            ("5MB", 5_000_000),
            ("7", 7),
        ] {
            let b = ByteSize::parse(s).unwrap();
            assert_eq!(b.0, n, "{s}");
            assert_eq!(ByteSize::parse(&b.to_string()).unwrap(), b);
        }
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(ByteSize::parse("99999999999999999GiB").is_err());
    }

    #[test]
    fn secrets_never_serialize() {
        assert_eq!(serde_json::to_string(&SecretText("hunter2".into())).unwrap(), "\"<redacted>\"");
        let u = SecretUrl("postgres://spate:pw@127.0.0.1:5432/db".into());
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            "\"postgres://spate:<redacted>@127.0.0.1:5432/db\""
        );
        assert_eq!(u.password(), Some("pw"));
        // A user without a password keeps its name: only passwords are secret.
        assert_eq!(mask_url_password("postgres://spate@h/db"), "postgres://spate@h/db");
        assert_eq!(mask_url_password("redis://:pw@h:6379"), "redis://:<redacted>@h:6379");
        assert_eq!(mask_url_password("http://h/a@b"), "http://h/a@b");
    }
}
