//! The destinations a run started over HTTP may connect to. Without it the API could make spate
//! connect (and send load) anywhere its host can reach: server-side request forgery. A run's
//! destinations come from its checked config (`RunConfig::destinations`); each must match a
//! rule here, else the start is refused with 403 naming the key.
//!
//! Rules (`spate serve --allow-destination`, repeatable):
//! - `loopback`: 127.0.0.0/8, ::1 and `localhost`, any port (the default when none is given);
//! - `HOST` or `HOST:PORT`: that name or address (`[v6]:PORT` for IPv6), any port or that one;
//! - `*.DOMAIN[:PORT]`: names under DOMAIN;
//! - `ADDR/BITS`: an IP network, any port;
//! - `/PATH`: a Unix socket (PostgreSQL's directory or Redis's socket);
//! - `*`: anywhere (the operator gives up the check).
//!
//! Names are compared as written, never resolved: a name that resolves to an allowed address
//! is still refused, so DNS cannot widen the list. The destinations of the operator's base
//! config (`--config`) are always allowed, port included.

use std::net::IpAddr;

use spate_engine::config::{split_host_port, Destination};
use spate_engine::{ConfigError, RunConfig};

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    Any,
    Loopback,
    Host { name: String, port: Option<u16> },
    Ip { ip: IpAddr, port: Option<u16> },
    Suffix { domain: String, port: Option<u16> },
    Net { net: IpAddr, bits: u8 },
    Socket(String),
}

/// The rules a run's destinations are checked against.
#[derive(Debug, Clone)]
pub(crate) struct Allowlist {
    rules: Vec<Rule>,
}

const FLAG: &str = "--allow-destination";

impl Allowlist {
    /// From the operator's `--allow-destination` values (none: loopback only) and the
    /// destinations of the operator's configs (the base and each profile over it).
    pub(crate) fn new<'a>(
        flags: &[String],
        trusted: impl IntoIterator<Item = &'a Destination>,
    ) -> Result<Allowlist, ConfigError> {
        let mut rules = Vec::new();
        if flags.is_empty() {
            rules.push(Rule::Loopback);
        }
        for f in flags {
            rules.push(parse(f).map_err(|why| {
                ConfigError::new(
                    FLAG,
                    format!("`{f}`: {why}"),
                    "write loopback, HOST, HOST:PORT, [V6]:PORT, *.DOMAIN, ADDR/BITS, /SOCKET or *",
                )
            })?);
        }
        rules.extend(trusted.into_iter().map(exact));
        Ok(Allowlist { rules })
    }

    /// Refuses the first destination of `cfg` no rule allows, naming its key.
    pub(crate) fn check(&self, cfg: &RunConfig) -> Result<(), ConfigError> {
        let fix = format!(
            "use a destination of the server's base config, or ask its operator to allow this one (spate serve {FLAG} HOST[:PORT])"
        );
        let dests = cfg.destinations().map_err(|u| ConfigError::new(u.key, u.why, fix.clone()))?;
        match dests.iter().find(|d| !self.rules.iter().any(|r| allows(r, d))) {
            Some(d) => Err(ConfigError::new(
                d.key,
                format!("`{d}` is not a destination this server lets runs started over HTTP reach"),
                fix,
            )),
            None => Ok(()),
        }
    }
}

/// The rule that allows exactly `d` (a base config's destination).
fn exact(d: &Destination) -> Rule {
    match (d.host.parse::<IpAddr>(), d.port) {
        (_, None) => Rule::Socket(d.host.clone()),
        (Ok(ip), port) => Rule::Ip { ip: ip.to_canonical(), port },
        (Err(_), port) => Rule::Host { name: name(&d.host), port },
    }
}

/// A host name as compared: lower case, without a trailing dot.
fn name(h: &str) -> String {
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn parse(s: &str) -> Result<Rule, String> {
    let s = s.trim();
    match s {
        "" => return Err("is empty".into()),
        "*" => return Ok(Rule::Any),
        "loopback" => return Ok(Rule::Loopback),
        _ => {}
    }
    if s.starts_with('/') {
        return Ok(Rule::Socket(s.to_string()));
    }
    if let Some((net, bits)) = s.split_once('/') {
        let net: IpAddr = net.parse().map_err(|_| format!("`{net}` is not an IP address"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("`{bits}` is not a prefix length (0 to {max})"))?;
        return Ok(Rule::Net { net: net.to_canonical(), bits });
    }
    let (host, port) = split_host_port(s)?;
    let port =
        port.map(|p| p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"))).transpose()?;
    if let Some(domain) = host.strip_prefix("*.") {
        if domain.is_empty() || domain.contains('*') {
            return Err("names no domain after `*.`".into());
        }
        return Ok(Rule::Suffix { domain: name(domain), port });
    }
    if host.is_empty() || host.contains(['*', '/', '@']) {
        return Err(format!("`{host}` is not a host"));
    }
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => Rule::Ip { ip: ip.to_canonical(), port },
        Err(_) => Rule::Host { name: name(host), port },
    })
}

fn allows(rule: &Rule, d: &Destination) -> bool {
    let ip = d.host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let port_ok = |p: &Option<u16>| p.is_none() || *p == d.port;
    match rule {
        Rule::Any => true,
        Rule::Loopback => {
            d.port.is_some()
                && (ip.is_some_and(|ip| ip.is_loopback()) || name(&d.host) == "localhost")
        }
        Rule::Host { name: n, port } => ip.is_none() && name(&d.host) == *n && port_ok(port),
        Rule::Ip { ip: want, port } => ip == Some(*want) && port_ok(port),
        Rule::Suffix { domain, port } => {
            let h = name(&d.host);
            ip.is_none()
                && h.len() > domain.len() + 1
                && h.ends_with(&format!(".{domain}"))
                && port_ok(port)
        }
        Rule::Net { net, bits } => ip.is_some_and(|ip| in_net(ip, *net, *bits)),
        Rule::Socket(path) => d.port.is_none() && d.host == *path,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (u128::from(u32::from(a)), u128::from(u32::from(n)), 32),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(host: &str, port: Option<u16>) -> Destination {
        Destination { key: "k", host: host.into(), port }
    }

    fn ok(rule: &str, host: &str, port: Option<u16>) -> bool {
        allows(&parse(rule).unwrap(), &d(host, port))
    }

    #[test]
    fn rules_match_what_they_say() {
        assert!(ok("loopback", "127.0.0.1", Some(9092)));
        assert!(ok("loopback", "127.8.0.1", Some(1)));
        assert!(ok("loopback", "::1", Some(1)));
        assert!(ok("loopback", "::ffff:127.0.0.1", Some(1)));
        assert!(ok("loopback", "LOCALHOST.", Some(1)));
        assert!(!ok("loopback", "10.0.0.1", Some(1)));
        assert!(!ok("loopback", "localhost.evil.example", Some(1)));
        assert!(!ok("loopback", "/var/run/postgresql", None));
        assert!(ok("kafka.internal", "Kafka.Internal", Some(9092)));
        assert!(ok("kafka.internal:9092", "kafka.internal", Some(9092)));
        assert!(!ok("kafka.internal:9092", "kafka.internal", Some(9093)));
        assert!(ok("*.corp.example", "b1.corp.example", Some(9092)));
        assert!(!ok("*.corp.example", "corp.example", Some(9092)));
        assert!(!ok("*.corp.example", "evilcorp.example", Some(9092)));
        assert!(ok("10.0.0.0/8", "10.200.1.1", Some(5432)));
        assert!(!ok("10.0.0.0/8", "11.0.0.1", Some(5432)));
        assert!(!ok("10.0.0.0/8", "ten.example", Some(5432)));
        assert!(ok("[fd00::1]:9092", "fd00::1", Some(9092)));
        assert!(ok("/var/run/postgresql", "/var/run/postgresql", None));
        assert!(ok("*", "anything.example", Some(1)));
        // A name is never taken for the address it might resolve to.
        assert!(!ok("127.0.0.1", "localhost", Some(1)));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in ["", "h:port", "10.0.0.0/33", "*.", "a*b", "[::1", "x/8"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
