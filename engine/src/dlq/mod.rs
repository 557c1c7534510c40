//! The dead-letter file: where a record goes when Kafka cannot take it (the broker is gone, or
//! the record was possibly written already and must not be sent twice), one JSON line each.
//!
//! - `DlqLine` is the line format (topic, key, headers, payload, error, attempts);
//! - `writer.rs` appends lines to the file, opened when first needed, whole lines only;
//! - `replay.rs` sends a file's records again (`spate dlq replay`).

mod replay;
mod writer;

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

pub use replay::{replay, ReplayReport};
pub use writer::DlqFile;

/// One dead-lettered record as read back from the file.
#[derive(Debug, Serialize, Deserialize)]
pub struct DlqLine {
    pub topic: String,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub payload: String,
    pub error: String,
    pub attempts: u32,
}

/// The same line, borrowed, as the sink writes it: no copies of payloads or headers.
#[derive(Serialize)]
pub struct DlqLineRef<'a> {
    pub topic: &'a str,
    pub key: Option<&'a str>,
    #[serde(serialize_with = "header_map")]
    pub headers: &'a [(&'a str, &'a [u8])],
    pub payload: &'a str,
    pub error: &'a str,
    pub attempts: u32,
}

fn header_map<S: Serializer>(h: &&[(&str, &[u8])], s: S) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(h.len()))?;
    for (k, v) in h.iter() {
        m.serialize_entry(k, &String::from_utf8_lossy(v))?;
    }
    m.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_line_reads_back_as_an_owned_one() {
        let h: &[(&str, &[u8])] = &[("traceparent", b"00-ab-cd-01"), ("spate-id", b"r-0-1")];
        let l = DlqLineRef { topic: "t", key: Some("k"), headers: h, payload: "{\"a\":1}", error: "boom", attempts: 2 };
        let s = serde_json::to_string(&l).unwrap();
        let back: DlqLine = serde_json::from_str(&s).unwrap();
        assert_eq!(back.topic, "t");
        assert_eq!(back.key.as_deref(), Some("k"));
        assert_eq!(back.headers["spate-id"], "r-0-1");
        assert_eq!(back.payload, "{\"a\":1}");
        assert_eq!((back.error.as_str(), back.attempts), ("boom", 2));
    }
}
