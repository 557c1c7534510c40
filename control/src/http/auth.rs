//! The bearer-token gate: every route but the open ones (liveness and readiness probes) needs
//! `Authorization: Bearer <token>` when the server was given a token. Also where the token
//! comes from, and the rule that a listener other hosts can reach has one.

use std::net::ToSocketAddrs;
use std::path::Path;

use serde_json::json;
use spate_engine::ConfigError;

use super::exchange::Reply;

/// The token given as `--{flag} T` or in the file `--{flag}-file PATH` (its contents, trimmed).
/// A missing, unreadable or empty file is an error; the token itself is never quoted.
pub(crate) fn load_token(
    flag: &str,
    token: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    let (t, key) = match (token, file) {
        (Some(t), _) => (t.trim().to_string(), format!("--{flag}")),
        (None, Some(p)) => {
            let key = format!("--{flag}-file");
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigError::new(
                    key.as_str(),
                    format!("cannot read `{}`: {e}", p.display()),
                    "give the path of a readable file holding the token",
                )
            })?;
            (text.trim().to_string(), key)
        }
        (None, None) => return Ok(None),
    };
    if t.is_empty() {
        let what =
            if key.ends_with("-file") { "the token file is empty" } else { "the token is empty" };
        return Err(ConfigError::new(
            key,
            what,
            "put a non-empty token there, e.g. from `openssl rand -hex 32`",
        ));
    }
    Ok(Some(t))
}

/// Refuses to serve `listen` without a token when other hosts can reach it (any resolved
/// address is not loopback). `flag` names the listen flag, `token_flag` the token's.
pub(crate) fn require_token_off_loopback(
    listen: &str,
    flag: &str,
    has_token: bool,
    token_flag: &str,
) -> Result<(), ConfigError> {
    let addrs: Vec<_> = listen
        .to_socket_addrs()
        .map_err(|e| {
            ConfigError::new(
                flag,
                format!("cannot resolve `{listen}`: {e}"),
                "write host:port, e.g. 127.0.0.1:8080",
            )
        })?
        .collect();
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        Some(a) if !has_token => Err(ConfigError::new(
            flag,
            format!("`{listen}` ({a}) can be reached from other hosts, and no {token_flag} is set"),
            format!("listen on 127.0.0.1, or set {token_flag}-file PATH (or {token_flag} T) so that callers must send `Authorization: Bearer T`"),
        )),
        _ => Ok(()),
    }
}

/// Checks the `Authorization` header value against the token; the error is the 401 to send.
pub(super) fn check_bearer(token: &str, authorization: Option<&str>) -> Result<(), Reply> {
    // The scheme is case-insensitive (RFC 9110, 11.1): `bearer` is `Bearer`.
    let given = authorization
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t);
    let ok = given.is_some_and(|g| ct_eq(g.trim().as_bytes(), token.as_bytes()));
    if ok {
        return Ok(());
    }
    let msg = if authorization.is_none() {
        "missing bearer token; send the header `Authorization: Bearer <token>` given to --token"
    } else {
        "wrong bearer token; send the token given to --token"
    };
    Err(Reply::error(401, msg, json!({})).with_header("WWW-Authenticate", "Bearer realm=\"spate\""))
}

/// The scoped gate: the control token may do everything; the read token only `GET` (status and
/// metrics), 403 otherwise; neither set, anything goes (a loopback server without tokens).
pub(super) fn check_scoped(
    control: Option<&str>,
    read: Option<&str>,
    authorization: Option<&str>,
    is_get: bool,
) -> Result<(), Reply> {
    let Some(first) = control.or(read) else { return Ok(()) };
    if control.is_some_and(|t| check_bearer(t, authorization).is_ok()) {
        return Ok(());
    }
    match read {
        Some(t) if check_bearer(t, authorization).is_ok() => {
            if is_get {
                Ok(())
            } else {
                Err(Reply::error(
                    403,
                    "this is a read token: it may read status and metrics; start, stop and rate need the control token (--token-file)",
                    json!({}),
                ))
            }
        }
        _ => check_bearer(first, authorization),
    }
}

/// Compares in time that depends only on the lengths, not on where the bytes differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        diff |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
    }
}
