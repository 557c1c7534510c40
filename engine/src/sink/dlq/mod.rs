//! The dead-letter file: where an event goes when its sink cannot take it (Kafka's broker is
//! gone, a PostgreSQL transaction cannot commit before the drain timeout, a record was possibly
//! written already and must not be sent twice), one JSON line each.
//!
//! - `DlqLine` is the line format (topic, key, headers, payload, error, attempts); a payload
//!   or key that is not UTF-8 text (Avro) is written base64-encoded as `payload_base64` /
//!   `key_base64` instead;
//! - `writer.rs` appends lines to the file, opened when first needed, whole lines only;
//! - `spate dlq replay` (the `spate` crate) sends a file's records to Kafka again.

mod writer;

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

pub use writer::DlqFile;

/// The identity headers of every event where its sink has headers (Kafka records, DLQ lines):
/// its W3C trace context and its spate id (`{run}-{worker}-{seq}`).
pub const H_TRACEPARENT: &str = "traceparent";
/// The header holding the event's spate id.
pub const H_SPATE_ID: &str = "spate-id";

/// One dead-lettered record as read back from the file.
#[derive(Debug, Serialize, Deserialize)]
pub struct DlqLine {
    /// The Kafka topic (the table, for PostgreSQL).
    pub topic: String,
    /// The record's key as text, if it has one.
    #[serde(default)]
    pub key: Option<String>,
    /// The key, base64-encoded, when it is not UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The record's headers (trace context, spate id).
    pub headers: BTreeMap<String, String>,
    /// The payload as text (empty when `payload_base64` holds it).
    #[serde(default)]
    pub payload: String,
    /// The payload, base64-encoded, when it is not UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_base64: Option<String>,
    /// Why the record was dead-lettered.
    pub error: String,
    /// Send attempts made (0: never sent).
    pub attempts: u32,
}

impl DlqLine {
    /// The record's payload bytes.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        match &self.payload_base64 {
            Some(b) => base64::engine::general_purpose::STANDARD.decode(b),
            None => Ok(self.payload.clone().into_bytes()),
        }
    }

    /// The record's key bytes, if it has a key.
    pub fn key_bytes(&self) -> Result<Option<Vec<u8>>, base64::DecodeError> {
        match (&self.key_base64, &self.key) {
            (Some(b), _) => base64::engine::general_purpose::STANDARD.decode(b).map(Some),
            (None, k) => Ok(k.clone().map(String::into_bytes)),
        }
    }
}

/// The same line, borrowed, as the sink writes it: no copies of text payloads or headers.
pub struct DlqLineRef<'a> {
    /// The Kafka topic (the table, for PostgreSQL).
    pub topic: &'a str,
    /// The record's key, if it has one.
    pub key: Option<&'a [u8]>,
    /// The record's headers (trace context, spate id).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The payload.
    pub payload: &'a [u8],
    /// Why the record is dead-lettered.
    pub error: &'a str,
    /// Send attempts made (0: never sent).
    pub attempts: u32,
}

struct Headers<'a>(&'a [(&'a str, &'a [u8])]);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &String::from_utf8_lossy(v))?;
        }
        m.end()
    }
}

impl Serialize for DlqLineRef<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("topic", self.topic)?;
        match self.key.map(std::str::from_utf8) {
            None => m.serialize_entry("key", &None::<&str>)?,
            Some(Ok(k)) => m.serialize_entry("key", k)?,
            Some(Err(_)) => m.serialize_entry("key_base64", &b64(self.key.unwrap_or_default()))?,
        }
        m.serialize_entry("headers", &Headers(self.headers))?;
        match std::str::from_utf8(self.payload) {
            Ok(p) => m.serialize_entry("payload", p)?,
            Err(_) => m.serialize_entry("payload_base64", &b64(self.payload))?,
        }
        m.serialize_entry("error", self.error)?;
        m.serialize_entry("attempts", &self.attempts)?;
        m.end()
    }
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_line_reads_back_as_an_owned_one() {
        let h: &[(&str, &[u8])] = &[("traceparent", b"00-ab-cd-01"), ("spate-id", b"r-0-1")];
        let l = DlqLineRef {
            topic: "t",
            key: Some(b"k"),
            headers: h,
            payload: b"{\"a\":1}",
            error: "boom",
            attempts: 2,
        };
        let s = serde_json::to_string(&l).unwrap();
        let back: DlqLine = serde_json::from_str(&s).unwrap();
        assert_eq!(back.topic, "t");
        assert_eq!(back.key.as_deref(), Some("k"));
        assert_eq!(back.headers["spate-id"], "r-0-1");
        assert_eq!(back.payload, "{\"a\":1}");
        assert_eq!((back.error.as_str(), back.attempts), ("boom", 2));
        // Binary payloads and keys (Avro) travel base64-encoded, byte for byte.
        let bin = [0u8, 0, 0, 0, 7, 0xff, b'\n', 0x80];
        let l = DlqLineRef {
            topic: "t",
            key: Some(&bin[..6]),
            headers: h,
            payload: &bin,
            error: "e",
            attempts: 0,
        };
        let back: DlqLine = serde_json::from_str(&serde_json::to_string(&l).unwrap()).unwrap();
        assert_eq!(back.payload_bytes().unwrap(), bin);
        assert_eq!(back.key_bytes().unwrap().unwrap(), &bin[..6]);
        assert!(back.payload.is_empty() && back.key.is_none());
    }
}
