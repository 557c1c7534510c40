//! Secrets of the connection settings: a value that never prints, and the places it may come
//! from: the config itself, an environment variable (`${NAME}` in the value) or a file (the
//! `*_file` key beside it). The value leaves this type only through [`Secret::expose`], at the
//! one call that hands it to the client library.

use std::fmt;
use std::path::Path;

use serde::{Serialize, Serializer};

use crate::ConfigError;

/// What a secret prints as, everywhere.
pub const REDACTED: &str = "<redacted>";

/// A password, token or key passphrase. `Debug`, `Display` and `Serialize` print
/// [`REDACTED`], so a config, status document or panic message that includes it shows no secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The value itself, for the client library only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Replaces each `${NAME}` in `value` with the environment variable NAME; `$${` stays a literal
/// `${`. An unset variable is an error naming `key`: a silently empty password would only fail
/// later, at the broker, with a less helpful message.
pub fn expand(value: &str, key: &str) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err(ConfigError::new(
                    key,
                    "`${` without its closing `}`",
                    "write ${NAME} to read the environment variable NAME, or $${ for a literal ${",
                ));
            };
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::new(
                    key,
                    format!("`${{{name}}}` is not an environment variable name"),
                    "use letters, digits and _ between ${ and }",
                ));
            }
            match std::env::var(name) {
                Ok(v) => out.push_str(&v),
                Err(_) => {
                    return Err(ConfigError::new(
                        key,
                        format!("the environment variable {name} is not set (or not UTF-8)"),
                        format!("export {name} before starting spate, or set {key} another way"),
                    ))
                }
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A secret given inline (`key`, with `${NAME}` expanded) or in a file (`file_key`: its
/// contents, trailing whitespace trimmed). Both at once is an error; neither is `None`.
pub fn resolve(
    inline: Option<&str>,
    file: Option<&Path>,
    key: &str,
    file_key: &str,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            key,
            format!("both {key} and {file_key} are set"),
            format!("keep one of them; {file_key} keeps the secret out of the config"),
        )),
        (Some(v), None) => {
            let v = expand(v, key)?;
            if v.is_empty() {
                return Err(ConfigError::new(
                    key,
                    "the value is empty",
                    format!("give the secret, or remove {key}"),
                ));
            }
            Ok(Some(Secret(v)))
        }
        (None, Some(p)) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigError::new(
                    file_key,
                    format!("cannot read `{}`: {e}", p.display()),
                    "give the path of a readable file holding only the secret",
                )
            })?;
            let v = text.trim_end_matches(['\n', '\r', ' ', '\t']);
            if v.is_empty() {
                return Err(ConfigError::new(
                    file_key,
                    format!("`{}` is empty", p.display()),
                    "write the secret into the file",
                ));
            }
            Ok(Some(Secret(v.to_string())))
        }
        (None, None) => Ok(None),
    }
}

/// A file the config names must exist and be readable now, not at the first connection.
pub fn check_file(p: &Path, key: &str, what: &str) -> Result<(), ConfigError> {
    match std::fs::File::open(p) {
        Ok(_) => Ok(()),
        Err(e) => Err(ConfigError::new(
            key,
            format!("cannot read the {what} `{}`: {e}", p.display()),
            format!("give the path of a readable PEM file for {key}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "hunter22");
    }

    #[test]
    fn expands_the_environment() {
        std::env::set_var("SPATE_SECRET_TEST_A", "pw");
        assert_eq!(expand("x${SPATE_SECRET_TEST_A}y", "k").unwrap(), "xpwy");
        assert_eq!(expand("$${SPATE_SECRET_TEST_A} $5", "k").unwrap(), "${SPATE_SECRET_TEST_A} $5");
        let e = expand("${SPATE_SECRET_TEST_UNSET}", "kafka.sasl.password").unwrap_err();
        assert_eq!(e.key, "kafka.sasl.password");
        assert!(e.message.contains("SPATE_SECRET_TEST_UNSET"), "{e}");
        assert!(expand("${A", "k").is_err());
        assert!(expand("${A-B}", "k").is_err());
    }

    #[test]
    fn resolves_inline_or_file_not_both() {
        let dir = std::env::temp_dir().join(format!("spate-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("pw");
        std::fs::write(&f, "s3cret\n").unwrap();
        assert_eq!(resolve(None, Some(&f), "p", "p_file").unwrap().unwrap().expose(), "s3cret");
        assert_eq!(resolve(Some("x"), None, "p", "p_file").unwrap().unwrap().expose(), "x");
        assert!(resolve(None, None, "p", "p_file").unwrap().is_none());
        assert_eq!(resolve(Some("x"), Some(&f), "p", "p_file").unwrap_err().key, "p");
        let e = resolve(None, Some(&dir.join("missing")), "p", "p_file").unwrap_err();
        assert_eq!(e.key, "p_file");
        std::fs::write(&f, "\n").unwrap();
        assert!(resolve(None, Some(&f), "p", "p_file").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
