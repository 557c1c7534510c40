//! Appends dead-letter lines to the DLQ file. The file is created when first needed (a run that
//! dead-letters nothing leaves none behind). A write that fails part-way (disk full) is cut back
//! to the last whole line, so the file holds exactly the records counted as dead-lettered.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// A DLQ file, appended to in whole lines.
pub struct DlqFile {
    path: PathBuf,
    file: Option<File>,
    /// Length of the file after the last whole write.
    len: u64,
    buf: Vec<u8>,
}

impl DlqFile {
    /// The DLQ file at `path`; nothing is opened until the first append.
    pub fn new(path: PathBuf) -> Self {
        Self { path, file: None, len: 0, buf: Vec::new() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `lines` as JSON lines in one write; all of them are in the file, or none.
    pub fn append<'a, L: Serialize + 'a>(
        &mut self,
        lines: impl IntoIterator<Item = L>,
    ) -> std::io::Result<usize> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut n = 0;
        for l in lines {
            serde_json::to_writer(&mut buf, &l).map_err(std::io::Error::other)?;
            buf.push(b'\n');
            n += 1;
        }
        let res = self.write_whole(&buf);
        self.buf = buf;
        res.map(|()| n)
    }

    fn write_whole(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.file.is_none() {
            let f =
                crate::sink::beneath::open_write(&self.path, crate::sink::beneath::Mode::Append)?;
            self.len = f.metadata()?.len();
            self.file = Some(f);
        }
        let f = self.file.as_mut().expect("opened above");
        match f.write_all(bytes) {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Remove the partial tail so the file holds whole lines only.
                let _ = f.set_len(self.len);
                Err(e)
            }
        }
    }
}
