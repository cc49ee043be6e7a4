//! Scanning a buffer that holds many batches back to back, as a segment
//! file does.
//!
//! Each step yields a verified batch, or says why it stopped:
//! [`Scanned::Incomplete`] when the buffer ends inside a batch (a torn tail
//! looks like this) and [`Scanned::Corrupt`] when the bytes are damaged. The
//! scanner then stops; deciding whether an incomplete or corrupt tail is a
//! torn write to cut or damage to report is the storage layer's call, not
//! this module's.

use bytes::Bytes;

use crate::error::{Corrupt, DecodeError};
use crate::limits::Limits;
use crate::view::{Batch, BatchView, Verified, verify};

/// One step of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned<B> {
    /// A whole, verified batch.
    Batch(B),
    /// The buffer ends inside the batch starting at `position`: at least
    /// `needed` more bytes are required to read it.
    Incomplete {
        /// Byte position of the start of the incomplete batch.
        position: u64,
        /// Bytes missing past the end of the buffer.
        needed: usize,
    },
    /// The batch at `corrupt.position` is damaged.
    Corrupt(Corrupt),
}

/// Iterates over the batches of a byte slice. Stops after the buffer ends
/// on a batch boundary, or after yielding `Incomplete` or `Corrupt`.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
    base_position: u64,
    limits: Limits,
    stopped: bool,
}

impl<'a> Scanner<'a> {
    /// Scans `buf`, whose first byte is at `base_position` in the caller's
    /// coordinates (for a segment file read from byte `p`, pass `p`, and
    /// every position reported is a file position).
    pub fn new(buf: &'a [u8], base_position: u64, limits: Limits) -> Self {
        Scanner {
            buf,
            pos: 0,
            base_position,
            limits,
            stopped: false,
        }
    }

    /// Position, in the caller's coordinates, just past the last whole batch
    /// yielded: where valid data ends when the scan stopped early.
    pub fn position(&self) -> u64 {
        self.base_position + self.pos as u64
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Scanned<BatchView<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let (verified, length) = match step(
            self.buf,
            &mut self.pos,
            self.base_position,
            &self.limits,
            &mut self.stopped,
        )? {
            Ok(found) => found,
            Err(stop) => return Some(stop),
        };
        let start = self.pos - length;
        let view = BatchView::from_verified(&self.buf[start..self.pos], verified);
        Some(Scanned::Batch(view))
    }
}

/// Like [`Scanner`], over [`Bytes`]: yields owned [`Batch`]es that share the
/// buffer's memory.
#[derive(Debug, Clone)]
pub struct BytesScanner {
    buf: Bytes,
    pos: usize,
    base_position: u64,
    limits: Limits,
    stopped: bool,
}

impl BytesScanner {
    /// Scans `buf`, whose first byte is at `base_position`.
    pub fn new(buf: Bytes, base_position: u64, limits: Limits) -> Self {
        BytesScanner {
            buf,
            pos: 0,
            base_position,
            limits,
            stopped: false,
        }
    }

    /// Position just past the last whole batch yielded.
    pub fn position(&self) -> u64 {
        self.base_position + self.pos as u64
    }
}

impl Iterator for BytesScanner {
    type Item = Scanned<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        let (verified, length) = match step(
            &self.buf,
            &mut self.pos,
            self.base_position,
            &self.limits,
            &mut self.stopped,
        )? {
            Ok(found) => found,
            Err(stop) => return Some(stop),
        };
        let start = self.pos - length;
        Some(Scanned::Batch(Batch::from_verified(
            self.buf.slice(start..self.pos),
            verified,
        )))
    }
}

/// One scan step shared by both scanners: `None` at the end, `Ok` with the
/// verified header (and decompressed records) and length (and `pos` advanced past the batch), or `Err`
/// with the stop to report (and the scanner marked stopped).
#[allow(clippy::type_complexity)]
fn step<B>(
    buf: &[u8],
    pos: &mut usize,
    base_position: u64,
    limits: &Limits,
    stopped: &mut bool,
) -> Option<Result<(Verified, usize), Scanned<B>>> {
    if *stopped || *pos >= buf.len() {
        return None;
    }
    let position = base_position + *pos as u64;
    match verify(&buf[*pos..], position, limits, false) {
        Ok(verified) => {
            let length = verified.0.length as usize;
            *pos += length;
            Some(Ok((verified, length)))
        }
        Err(DecodeError::Incomplete { needed }) => {
            *stopped = true;
            Some(Err(Scanned::Incomplete { position, needed }))
        }
        Err(DecodeError::Corrupt(corrupt)) => {
            *stopped = true;
            Some(Err(Scanned::Corrupt(corrupt)))
        }
    }
}
