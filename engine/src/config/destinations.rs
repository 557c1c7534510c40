//! Every place a run connects to, read from its checked config: brokers, the schema registry,
//! PostgreSQL (its hosts and `hostaddr`s), Redis, a TCP collector, a trace collector. `spate
//! serve` compares them with the destinations its operator allows before it starts a run that
//! came over HTTP. They are read from the values the clients will use (PostgreSQL's URL through
//! tokio-postgres's own parser, Redis's through the redis crate's), so a query parameter such as
//! `?host=` cannot point a connection somewhere the check did not see.

use std::fmt;

use super::run_config::RunConfig;
use crate::sink::config::SinkConfig;

/// One place a run connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The setting that names it, e.g. `sink.kafka.brokers`.
    pub key: &'static str,
    /// A host name, an IP address (IPv6 without brackets), or a Unix socket's path.
    pub host: String,
    /// The TCP port; `None` for a Unix socket.
    pub port: Option<u16>,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) if self.host.contains(':') => write!(f, "[{}]:{p}", self.host),
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// A destination that cannot be read: the key and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The setting.
    pub key: &'static str,
    /// Why (never quoting a password).
    pub why: String,
}

impl RunConfig {
    /// Every place this run connects to. An address spate cannot take apart is an error rather
    /// than left out, so nothing unseen is reached.
    pub fn destinations(&self) -> Result<Vec<Destination>, Unreadable> {
        let mut out = Vec::new();
        match &self.sink {
            SinkConfig::Kafka(k) => {
                if let Some(b) = &k.brokers {
                    for part in b.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        out.push(host_port("sink.kafka.brokers", part, None)?);
                    }
                }
            }
            SinkConfig::Tcp(t) => out.push(host_port("sink.tcp.address", &t.address, None)?),
            SinkConfig::Postgres(p) => postgres("sink.postgres.url", &p.url, &mut out)?,
            SinkConfig::Stdout | SinkConfig::Null | SinkConfig::File(_) => {}
        }
        if let Some(r) = &self.avro.registry {
            out.push(url("avro.schema_registry.url", &r.url)?);
        }
        if let Some(r) = &self.redis {
            let (host, port) =
                r.address().map_err(|e| Unreadable { key: "redis.url", why: e.to_string() })?;
            out.push(Destination { key: "redis.url", host, port });
        }
        if let Some(t) = &self.tracing {
            out.push(url("tracing.endpoint", &t.endpoint.url)?);
        }
        if let Some(a) = &self.audit {
            postgres("audit.url", &a.url, &mut out)?;
        }
        Ok(out)
    }
}

/// `host:port`, `[v6]:port`, or `scheme://host:port` (librdkafka accepts a listener name before
/// a broker's address); `default_port` when none is written.
fn host_port(
    key: &'static str,
    s: &str,
    default_port: Option<u16>,
) -> Result<Destination, Unreadable> {
    let s = s.split_once("://").map_or(s, |(_, rest)| rest);
    let bad = |why: &str| Unreadable { key, why: format!("`{s}` {why}") };
    let (host, port) = split_host_port(s).map_err(bad)?;
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| bad("has no valid port"))?),
        None => default_port,
    };
    if host.is_empty() {
        return Err(bad("names no host"));
    }
    Ok(Destination { key, host: host.to_string(), port })
}

/// `host[:port]`, `[v6][:port]` or a bare IPv6 address, taken apart (the port not yet read).
pub fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    Ok(if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("has no closing `]`")?;
        (h, after.strip_prefix(':'))
    } else if s.matches(':').count() > 1 {
        (s, None)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    })
}

/// An `http(s)://[user@]host[:port][/path]` URL.
fn url(key: &'static str, u: &str) -> Result<Destination, Unreadable> {
    let (scheme, rest) =
        u.split_once("://").ok_or_else(|| Unreadable { key, why: "is not a URL".into() })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let port = if scheme.eq_ignore_ascii_case("https") { 443 } else { 80 };
    host_port(key, authority, Some(port))
}

/// Every host (names and `hostaddr`s) a PostgreSQL URL or key/value string connects to.
fn postgres(key: &'static str, u: &str, out: &mut Vec<Destination>) -> Result<(), Unreadable> {
    use tokio_postgres::config::Host;
    let c: tokio_postgres::Config = u.parse().map_err(|e: tokio_postgres::Error| Unreadable {
        key,
        // tokio-postgres's parse errors name the part, never the password.
        why: e.to_string(),
    })?;
    let ports = c.get_ports();
    let port = |i: usize| match ports {
        [] => 5432,
        [one] => *one,
        many => many.get(i).copied().unwrap_or(5432),
    };
    for (i, h) in c.get_hosts().iter().enumerate() {
        out.push(match h {
            Host::Tcp(name) => Destination { key, host: name.clone(), port: Some(port(i)) },
            Host::Unix(dir) => {
                Destination { key, host: dir.to_string_lossy().into_owned(), port: None }
            }
        });
    }
    for (i, a) in c.get_hostaddrs().iter().enumerate() {
        out.push(Destination { key, host: a.to_string(), port: Some(port(i)) });
    }
    if c.get_hosts().is_empty() && c.get_hostaddrs().is_empty() {
        // libpq's default: the local socket directory; tokio-postgres needs a host.
        return Err(Unreadable { key, why: "names no host".into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_taken_apart() {
        let d = host_port("k", "PLAINTEXT://b1.example:9093", None).unwrap();
        assert_eq!((d.host.as_str(), d.port), ("b1.example", Some(9093)));
        let d = host_port("k", "[::1]:9092", None).unwrap();
        assert_eq!((d.host.as_str(), d.port), ("::1", Some(9092)));
        assert_eq!(d.to_string(), "[::1]:9092");
        assert!(host_port("k", "h:notaport", None).is_err());
        let d = url("k", "https://u:pw@reg.example/base/path").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("reg.example", Some(443)));
        let d = url("k", "http://10.1.2.3:8081").unwrap();
        assert_eq!((d.host.as_str(), d.port), ("10.1.2.3", Some(8081)));
    }

    #[test]
    fn postgres_query_hosts_are_seen() {
        let mut out = Vec::new();
        postgres(
            "k",
            "postgres://u:pw@127.0.0.1:5432/db?host=evil.example&hostaddr=10.9.9.9",
            &mut out,
        )
        .unwrap();
        let hosts: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert!(hosts.contains(&"evil.example:5432".to_string()), "{hosts:?}");
        assert!(hosts.contains(&"10.9.9.9:5432".to_string()), "{hosts:?}");
        let mut out = Vec::new();
        postgres("k", "postgres://u@a:1,b:2/db", &mut out).unwrap();
        let hosts: Vec<String> = out.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["a:1", "b:2"]);
    }
}
