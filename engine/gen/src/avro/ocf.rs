//! Avro object container files: the header (magic, `avro.schema`, `avro.codec`, a sync
//! marker), then one block per batch: record count, byte count, the (compressed) datums, the
//! sync marker. What `fastavro.reader` and `avro-tools tojson` read.
//!
//! Blocks are built in buffers kept across batches, and compressors are reused: nothing is
//! allocated per event, and after the first batches nothing per block.

use std::io;

use flate2::{Compress, Compression, FlushCompress};

use super::{push_long, push_str, Codec};

/// Builds a container's header and blocks; the caller writes them.
pub struct OcfWriter {
    codec: Codec,
    sync: [u8; 16],
    /// Datums of the block being built.
    raw: Vec<u8>,
    /// The finished block (header fields, data, sync).
    out: Vec<u8>,
    /// Compressed data.
    z: Vec<u8>,
    deflate: Option<Compress>,
    zstd: Option<zstd::bulk::Compressor<'static>>,
}

impl OcfWriter {
    /// A writer for `schema` (JSON text), and the file header to write first. `sync` should be
    /// random: it separates blocks, and must not occur in the data by chance.
    pub fn new(schema: &str, codec: Codec, sync: [u8; 16]) -> io::Result<(OcfWriter, Vec<u8>)> {
        let mut header = Vec::with_capacity(schema.len() + 64);
        header.extend_from_slice(b"Obj\x01");
        push_long(&mut header, 2);
        push_str(&mut header, b"avro.schema");
        push_str(&mut header, schema.as_bytes());
        push_str(&mut header, b"avro.codec");
        push_str(&mut header, codec.name().as_bytes());
        push_long(&mut header, 0);
        header.extend_from_slice(&sync);
        let deflate = (codec == Codec::Deflate).then(|| Compress::new(Compression::fast(), false));
        let zstd = match codec {
            Codec::Zstandard => Some(zstd::bulk::Compressor::new(1)?),
            _ => None,
        };
        Ok((
            OcfWriter {
                codec,
                sync,
                raw: Vec::new(),
                out: Vec::new(),
                z: Vec::new(),
                deflate,
                zstd,
            },
            header,
        ))
    }

    /// One block holding `datums` (binary-encoded records of the file's schema).
    pub fn block<'a>(&mut self, datums: impl Iterator<Item = &'a [u8]>) -> io::Result<&[u8]> {
        self.raw.clear();
        let mut n = 0i64;
        for d in datums {
            self.raw.extend_from_slice(d);
            n += 1;
        }
        self.out.clear();
        push_long(&mut self.out, n);
        match self.codec {
            Codec::Null => {
                push_long(&mut self.out, self.raw.len() as i64);
                self.out.extend_from_slice(&self.raw);
            }
            Codec::Deflate => {
                let c = self.deflate.as_mut().expect("deflate codec");
                c.reset();
                // Raw deflate (RFC 1951), as the specification asks: no zlib header.
                self.z.clear();
                loop {
                    self.z.reserve(self.raw.len() / 2 + 1024);
                    let done = c.total_in() as usize;
                    let st = c
                        .compress_vec(&self.raw[done..], &mut self.z, FlushCompress::Finish)
                        .map_err(io::Error::other)?;
                    if st == flate2::Status::StreamEnd {
                        break;
                    }
                }
                push_long(&mut self.out, self.z.len() as i64);
                self.out.extend_from_slice(&self.z);
            }
            Codec::Zstandard => {
                let c = self.zstd.as_mut().expect("zstd codec");
                self.z.clear();
                self.z.reserve(zstd::zstd_safe::compress_bound(self.raw.len()));
                c.compress_to_buffer(&self.raw[..], &mut self.z)?;
                push_long(&mut self.out, self.z.len() as i64);
                self.out.extend_from_slice(&self.z);
            }
        }
        self.out.extend_from_slice(&self.sync);
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apache_avro_reads_every_codec() {
        let schema = r#"{"type":"record","name":"r","fields":[{"name":"a","type":"long"},{"name":"s","type":"string"}]}"#;
        for codec in Codec::ALL {
            let (mut w, mut file) = OcfWriter::new(schema, codec, *b"0123456789abcdef").unwrap();
            let mut datums = Vec::new();
            for i in 0..300i64 {
                let mut d = Vec::new();
                push_long(&mut d, i);
                push_str(&mut d, format!("value {i}").as_bytes());
                datums.push(d);
            }
            for chunk in datums.chunks(100) {
                file.extend_from_slice(w.block(chunk.iter().map(std::vec::Vec::as_slice)).unwrap());
            }
            let r = apache_avro::Reader::new(&file[..]).unwrap();
            let vals: Vec<_> = r.map(|v| v.unwrap()).collect();
            assert_eq!(vals.len(), 300, "{codec}");
            use apache_avro::types::Value;
            assert_eq!(
                vals[299],
                Value::Record(vec![
                    ("a".into(), Value::Long(299)),
                    ("s".into(), Value::String("value 299".into()))
                ])
            );
        }
    }
}
