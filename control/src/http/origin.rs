//! Which names and origins the server answers to. A browser on this host will send requests to
//! the control plane for any page it has open: the `Host` check refuses pages that reach it
//! through a name of their own resolved to this address (DNS rebinding), and the `Origin` check
//! refuses state changes sent by pages of another origin (cross-site requests).
//!
//! A rebinding page's requests carry its own name in `Host`, never an address literal or
//! `localhost`. On a wildcard listener (`0.0.0.0`, as in a container whose port is published
//! under another number) those are accepted at any port; on a specific address, only that
//! address (and `localhost` on loopback) at the listen port.

use std::net::{IpAddr, SocketAddr};

use serde_json::json;

use super::exchange::Reply;

pub(super) struct Names {
    bound: SocketAddr,
    /// `--allowed-host` values, lowercased: `name` (any port) or `name:port`.
    hosts: Vec<String>,
    /// `--allowed-origin` values, lowercased, without a trailing slash.
    origins: Vec<String>,
    /// The scheme of this server's own origin: `https://` when it serves TLS.
    scheme: &'static str,
}

impl Names {
    pub(super) fn new(bound: SocketAddr, hosts: &[String], origins: &[String], tls: bool) -> Names {
        let norm = |s: &String| s.trim().trim_end_matches('/').to_ascii_lowercase();
        Names {
            bound,
            hosts: hosts.iter().map(norm).collect(),
            origins: origins.iter().map(norm).collect(),
            scheme: if tls { "https://" } else { "http://" },
        }
    }

    /// Refuses a `Host` that is not this server's address (see the module docs) nor allowed by
    /// `--allowed-host`. A request without `Host` passes: browsers always send one.
    pub(super) fn check_host(&self, host: Option<&str>) -> Result<(), Reply> {
        let Some(host) = host else { return Ok(()) };
        if self.host_ok(&host.trim().to_ascii_lowercase()) {
            return Ok(());
        }
        Err(Reply::error(
            421,
            format!(
                "this server does not answer to the name `{}` (it listens on {}); use its address, or start it with --allowed-host NAME",
                host.chars().take(256).collect::<String>(),
                self.bound
            ),
            json!({"listen": self.bound.to_string()}),
        ))
    }

    fn host_ok(&self, host: &str) -> bool {
        let (name, port) = split_host_port(host);
        let allowed = self.hosts.iter().any(|a| if has_port(a) { a == host } else { a == name });
        if allowed {
            return true;
        }
        let ip = self.bound.ip();
        let literal = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
        if ip.is_unspecified() {
            return literal.is_some() || name == "localhost";
        }
        let port_ok =
            port == Some(self.bound.port()) || (port.is_none() && self.bound.port() == 80);
        port_ok
            && match literal {
                Some(asked) => asked == ip || (ip.is_loopback() && asked.is_loopback()),
                None => name == "localhost" && ip.is_loopback(),
            }
    }

    /// Refuses a state change whose `Origin` is present and is neither this server's (as named
    /// by the request's already checked `Host`, or its listen address) nor an allowed one.
    pub(super) fn check_origin(
        &self,
        origin: Option<&str>,
        host: Option<&str>,
    ) -> Result<(), Reply> {
        let Some(origin) = origin else { return Ok(()) };
        let o = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        let own = o.strip_prefix(self.scheme).is_some_and(|rest| {
            host.is_some_and(|h| h.trim().eq_ignore_ascii_case(rest))
                || rest == self.bound.to_string()
                || (self.bound.ip().is_loopback()
                    && rest == format!("localhost:{}", self.bound.port()))
        });
        if own || self.origins.contains(&o) {
            return Ok(());
        }
        Err(Reply::error(
            403,
            format!(
                "a page of another origin (`Origin: {}`) may not change state here; send the request from a tool without an Origin header, or start the server with --allowed-origin ORIGIN",
                origin.chars().take(256).collect::<String>()
            ),
            json!({"origin": origin}),
        ))
    }
}

/// `name:port`, `[v6]:port` or a bare name; the port is None when absent or not a number.
fn split_host_port(host: &str) -> (&str, Option<u16>) {
    if !has_port(host) {
        return (host, None);
    }
    match host.rsplit_once(':') {
        Some((n, p)) => (n, p.parse().ok()),
        None => (host, None),
    }
}

fn has_port(host: &str) -> bool {
    match host.rfind(']') {
        Some(close) => host[close..].contains(':'),
        // A bare IPv6 address has several colons and no port.
        None => host.matches(':').count() == 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(bound: &str, hosts: &[&str], origins: &[&str]) -> Names {
        let s = |v: &[&str]| v.iter().map(std::string::ToString::to_string).collect::<Vec<_>>();
        Names::new(bound.parse().unwrap(), &s(hosts), &s(origins), false)
    }

    #[test]
    fn hosts() {
        let n = names("127.0.0.1:8080", &["spate.internal", "ui.example:9000"], &[]);
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST:8080",
            "[::1]:8080",
            "spate.internal",
            "spate.internal:1",
            "ui.example:9000",
        ] {
            assert!(n.check_host(Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "127.0.0.1:8081",
            "127.0.0.1",
            "10.0.0.1:8080",
            "ui.example:9001",
            "spate.internal.evil:8080",
        ] {
            assert_eq!(n.check_host(Some(bad)).err().map(|r| r.status), Some(421), "{bad}");
        }
        assert!(n.check_host(None).is_ok());
        let any = names("0.0.0.0:8080", &[], &[]);
        assert!(any.check_host(Some("10.1.2.3:8080")).is_ok());
        assert!(any.check_host(Some("127.0.0.1:18080")).is_ok(), "a published port may differ");
        assert!(any.check_host(Some("localhost:8080")).is_ok());
        assert!(any.check_host(Some("spate:8080")).is_err(), "names need --allowed-host");
        let v6 = names("[::1]:8080", &[], &[]);
        assert!(v6.check_host(Some("[::1]:8080")).is_ok());
        assert!(v6.check_host(Some("localhost:8080")).is_ok());
    }

    #[test]
    fn origins() {
        let n = names("127.0.0.1:8080", &[], &["http://ui.example"]);
        let host = Some("127.0.0.1:8080");
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://ui.example",
            "http://UI.example/",
        ] {
            assert!(n.check_origin(Some(ok), host).is_ok(), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "null",
            "https://127.0.0.1:8080",
            "http://127.0.0.1:8080.evil.example",
        ] {
            assert_eq!(n.check_origin(Some(bad), host).err().map(|r| r.status), Some(403), "{bad}");
        }
        assert!(n.check_origin(None, host).is_ok());
        assert!(
            n.check_origin(Some("http://spate:8080"), Some("spate:8080")).is_ok(),
            "same as Host"
        );
        // Over TLS the server's own origin is https, and plain http is another origin.
        let tls = Names::new("127.0.0.1:8443".parse().unwrap(), &[], &[], true);
        let host = Some("127.0.0.1:8443");
        assert!(tls.check_origin(Some("https://127.0.0.1:8443"), host).is_ok());
        assert!(tls.check_origin(Some("http://127.0.0.1:8443"), host).is_err());
    }
}
