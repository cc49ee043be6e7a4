//! `MemIndex`: a sealed index held in a `Vec`, loaded with plain reads.
//!
//! It is the loader without mmap (tests, the benchmark baseline, and
//! platforms or callers that prefer not to map), the loader of a sealed file
//! read through another I/O layer ([`MemIndex::from_sealed_bytes`]: the
//! storage layer's simulated file system), the result of sealing an
//! [`ActiveIndex`](crate::ActiveIndex), and an index built from entries in
//! memory. It runs the same validation as [`MmapIndex`](crate::MmapIndex).
//! It never writes a file.

use std::path::Path;

use crate::entry::IndexEntry;
use crate::error::{Error, io_error};
use crate::format;
use crate::lookup::IndexLookup;

/// A sealed, immutable index whose entries live in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemIndex {
    base_offset: u64,
    covered_log_len: u64,
    entries: Vec<IndexEntry>,
}

impl MemIndex {
    /// Reads the sealed index file at `path` whole (`std::fs::read`) and
    /// validates it as [`from_sealed_bytes`](Self::from_sealed_bytes) does:
    /// header, footer, CRC, base offset `expected_base_offset`, covered log
    /// length `covered_log_len` (the segment's log file length now; any other
    /// value means the index is stale) and entry order.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be read, and a damage error
    /// ([`Error::is_damaged`]) when it is not a valid sealed index for this
    /// segment: the caller rebuilds it from the segment.
    pub fn load(
        path: impl AsRef<Path>,
        expected_base_offset: u64,
        covered_log_len: u64,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(io_error("read", path))?;
        Self::from_sealed_bytes(bytes, path, expected_base_offset, covered_log_len)
    }

    /// Validates `bytes`, the whole content of the sealed index file at
    /// `path` (read by the caller, through any I/O layer), exactly as
    /// [`load`](Self::load) and [`MmapIndex::open`](crate::MmapIndex::open)
    /// do: header, footer, CRC, base offset `expected_base_offset`, covered
    /// log length `covered_log_len` (the segment's log file length now) and
    /// entry order. `path` only names the file in errors.
    ///
    /// # Errors
    ///
    /// A damage error ([`Error::is_damaged`]) when the bytes are not a valid
    /// sealed index for this segment: the caller rebuilds it from the
    /// segment.
    pub fn from_sealed_bytes(
        bytes: Vec<u8>,
        path: &Path,
        expected_base_offset: u64,
        covered_log_len: u64,
    ) -> Result<Self, Error> {
        let count = format::validate_sealed(&bytes, path, expected_base_offset, covered_log_len)?;
        let entries = (0..count)
            .map(|index| format::entry_at(&bytes, index))
            .collect();
        Ok(MemIndex {
            base_offset: expected_base_offset,
            covered_log_len,
            entries,
        })
    }

    /// An index over `entries` for the segment at `base_offset` whose log is
    /// `covered_log_len` bytes long.
    ///
    /// # Errors
    ///
    /// The same entry errors as a loader ([`Error::OffsetNotIncreasing`],
    /// [`Error::PositionNotIncreasing`], [`Error::TimeDecreasing`],
    /// [`Error::PositionPastCoveredLength`]) with an empty path and the
    /// position the entry would have in a file.
    pub fn from_entries(
        base_offset: u64,
        covered_log_len: u64,
        entries: Vec<IndexEntry>,
    ) -> Result<Self, Error> {
        format::check_entries(&entries, covered_log_len, Path::new(""))?;
        Ok(MemIndex {
            base_offset,
            covered_log_len,
            entries,
        })
    }

    /// Builds the index from parts already validated (sealing).
    pub(crate) fn from_validated(
        base_offset: u64,
        covered_log_len: u64,
        entries: Vec<IndexEntry>,
    ) -> Self {
        MemIndex {
            base_offset,
            covered_log_len,
            entries,
        }
    }

    /// Length in bytes of the segment log this index describes.
    pub fn covered_log_len(&self) -> u64 {
        self.covered_log_len
    }

    /// The stored entries, in order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The bytes of the sealed index file holding this index: what
    /// [`ActiveIndex::seal`](crate::ActiveIndex::seal) leaves on disk for the
    /// same entries.
    pub fn to_sealed_bytes(&self) -> Vec<u8> {
        format::encode_sealed(self.base_offset, &self.entries, self.covered_log_len)
    }
}

impl IndexLookup for MemIndex {
    fn base_offset(&self) -> u64 {
        self.base_offset
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    #[inline]
    fn entry(&self, index: usize) -> IndexEntry {
        self.entries[index]
    }
}
