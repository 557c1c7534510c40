//! Keeping Redis passwords out of every message: `redact` masks the secrets of a URL, `scrub`
//! those an error message may quote.

/// Replaces the password (or a lone user-info part, which Redis URLs use as a password) and any
/// `password=`/`pass=` query value of a URL with `<redacted>` (the one mask spate uses). Never fails; text that is not a URL is
/// returned as is.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push(':');
                    out.push_str(spate_core::secret::REDACTED);
                }
                None => out.push_str(spate_core::secret::REDACTED),
            }
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[auth_end..];
    match tail.find('?') {
        Some(q) => {
            out.push_str(&tail[..=q]);
            let query = &tail[q + 1..];
            let (query, frag) = match query.find('#') {
                Some(h) => (&query[..h], &query[h..]),
                None => (query, ""),
            };
            let parts: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") =>
                    {
                        format!("{k}={}", spate_core::secret::REDACTED)
                    }
                    _ => kv.to_string(),
                })
                .collect();
            out.push_str(&parts.join("&"));
            out.push_str(frag);
        }
        None => out.push_str(tail),
    }
    out
}

/// Removes any secret of `url` from an error message (a client error may quote the URL).
pub(super) fn scrub(msg: &str, url: &str) -> String {
    let mut m = msg.replace(url, &redact(url));
    if let Ok(info) = redis::IntoConnectionInfo::into_connection_info(url) {
        if let Some(pw) = info.redis.password.as_deref().filter(|p| !p.is_empty()) {
            m = m.replace(pw, spate_core::secret::REDACTED);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_passwords() {
        assert_eq!(
            redact("redis://user:s3cret@host:6379/0"),
            "redis://user:<redacted>@host:6379/0"
        );
        assert_eq!(redact("redis://:s3cret@host:6379"), "redis://:<redacted>@host:6379");
        assert_eq!(redact("redis://s3cret@host"), "redis://<redacted>@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact("redis://h/0?password=s3cret&db=1"),
            "redis://h/0?password=<redacted>&db=1"
        );
        assert_eq!(redact("redis://u:p@ss@h"), "redis://u:<redacted>@h");
        assert_eq!(redact("not a url"), "not a url");
    }
}
