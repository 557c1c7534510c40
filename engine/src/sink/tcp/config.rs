//! `sink: {tcp: ...}`: where the collector listens and how events are framed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_yaml_ng::{Mapping, Value};

use spate_core::ConfigError;

/// How events are delimited on the stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// Each event ends with a newline (events already do; a batch is written as it is).
    #[default]
    Newline,
    /// RFC 6587 octet counting: `LEN SP MSG` per event, no newline (binary events need it).
    Octet,
}

/// `sink: {tcp: ...}` as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTcp {
    /// `HOST:PORT` of the collector.
    pub address: String,
    /// `newline` (default) or `octet`.
    #[serde(default)]
    pub framing: Framing,
}

/// A checked TCP sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// `HOST:PORT` of the collector.
    pub address: String,
    /// How events are delimited on the stream.
    pub framing: Framing,
}

impl TcpConfig {
    /// `tcp://HOST:PORT[?framing=octet]`.
    pub fn display(&self) -> String {
        match self.framing {
            Framing::Newline => format!("tcp://{}", self.address),
            Framing::Octet => format!("tcp://{}?framing=octet", self.address),
        }
    }
}

impl RawTcp {
    /// Checks the address is `HOST:PORT`.
    pub fn validate(&self) -> Result<TcpConfig, ConfigError> {
        let a = &self.address;
        let ok = a
            .rsplit_once(':')
            .and_then(|(h, p)| (!h.is_empty()).then_some(p))
            .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(ConfigError::new(
                "sink.tcp.address",
                format!("`{a}` is not HOST:PORT"),
                "write e.g. 127.0.0.1:5140",
            ));
        }
        Ok(TcpConfig { address: a.clone(), framing: self.framing })
    }
}

/// `tcp://HOST:PORT[?framing=newline|octet]` as the settings of the tagged form.
pub fn shorthand(s: &str, key: &str) -> Result<Mapping, ConfigError> {
    let rest = s.strip_prefix("tcp://").unwrap_or(s);
    let (addr, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mut m = Mapping::new();
    m.insert("address".into(), Value::from(addr));
    match query {
        "" => {}
        "framing=newline" => {
            m.insert("framing".into(), "newline".into());
        }
        "framing=octet" => {
            m.insert("framing".into(), "octet".into());
        }
        q => {
            return Err(ConfigError::new(
                key,
                format!("unknown tcp option `{q}`"),
                "use tcp://HOST:PORT, optionally ?framing=newline or ?framing=octet",
            ))
        }
    }
    Ok(m)
}
