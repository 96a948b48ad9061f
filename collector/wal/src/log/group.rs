//! [`Group`]: the records of one group commit, framed in one buffer.

use crate::frame::HEADER_LEN;

/// Records to append together (group commit). Bodies are written straight into one buffer: the only copy.
#[derive(Debug, Default)]
pub struct Group {
    pub(crate) buf: Vec<u8>,
    /// (header offset in `buf`) per record.
    pub(crate) starts: Vec<usize>,
}

impl Group {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one record whose body `write_body` appends to the buffer it is given.
    pub fn push(&mut self, write_body: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.resize(start + HEADER_LEN, 0);
        write_body(&mut self.buf);
        self.starts.push(start);
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Bytes the group takes on disk.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn body_len(&self, i: usize) -> usize {
        let end = self.starts.get(i + 1).copied().unwrap_or(self.buf.len());
        end - self.starts[i] - HEADER_LEN
    }
}
