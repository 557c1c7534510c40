//! The bearer-token gate: every route but the open ones (liveness and readiness probes) needs
//! `Authorization: Bearer <token>` when the server was given a token.

use serde_json::json;

use super::Reply;

/// Checks the `Authorization` header value against the token; the error is the 401 to send.
pub(super) fn check_bearer(token: &str, authorization: Option<&str>) -> Result<(), Reply> {
    let ok = authorization.and_then(|v| v.strip_prefix("Bearer ")).is_some_and(|g| ct_eq(g.trim().as_bytes(), token.as_bytes()));
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

/// Compares in time that depends only on the lengths, not on where the bytes differ.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
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
