//! `MmapIndex`: a sealed index read straight from a read-only memory map.
//!
//! This is the only module of the workspace with `unsafe` code: the calls
//! that map a sealed file (`memmap2`), under the invariant stated at each.
//! [`map_sealed_file`] lends the same service to the storage layer for
//! sealed segment files, so that `unsafe` stays in this one module. Entries are
//! decoded from the mapping on each access (16 little-endian bytes, no copy),
//! after the same validation as [`MemIndex::load`](crate::MemIndex::load).
//! This module never maps a file for writing and never maps an active index.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::entry::{ENTRY_LEN, IndexEntry};
use crate::error::{Error, io_error};
use crate::format::{self, HEADER_LEN, MIN_SEALED_LEN};
use crate::lookup::IndexLookup;

/// A sealed, immutable index read from a read-only memory map of its file.
///
/// Opening costs one pass over the file (CRC and order checks); lookups then
/// touch only the pages the binary search visits.
#[derive(Debug)]
pub struct MmapIndex {
    map: Mmap,
    path: PathBuf,
    base_offset: u64,
    covered_log_len: u64,
    len: usize,
}

impl MmapIndex {
    /// Maps the sealed index file at `path` read-only and validates it like
    /// [`MemIndex::load`](crate::MemIndex::load): header, footer, CRC, base
    /// offset `expected_base_offset`, covered log length `covered_log_len`
    /// (the segment's log file length now) and entry order.
    ///
    /// Contract: the file must be sealed (written whole by
    /// [`ActiveIndex::seal`](crate::ActiveIndex::seal), synced) and must not
    /// be written, truncated or extended by anyone while the returned index
    /// lives; deleting (unlinking) it is fine. The storage layer keeps this
    /// contract for every sealed segment.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened, inspected or mapped; a
    /// damage error ([`Error::is_damaged`]) when it is not a valid sealed
    /// index for this segment (a file shorter than header and footer, empty
    /// included, is rejected before mapping).
    pub fn open(
        path: impl AsRef<Path>,
        expected_base_offset: u64,
        covered_log_len: u64,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        let file = File::open(path).map_err(io_error("open", path))?;
        let file_len = file.metadata().map_err(io_error("stat", path))?.len();
        if file_len < MIN_SEALED_LEN as u64 {
            return Err(Error::TooShort {
                path: path.to_path_buf(),
                expected_at_least: MIN_SEALED_LEN as u64,
                found: file_len,
            });
        }
        // SAFETY: the mapping is read-only and the file is a sealed index:
        // `ActiveIndex::seal` wrote every byte with write(2) (no hole, so no
        // block is allocated on a fault), synced it, and nothing writes,
        // truncates or extends a sealed index afterwards (the contract of
        // this function, kept by the storage layer). So the mapped bytes
        // never change behind the `&[u8]` that `Mmap` hands out, and no
        // access within its length can fault (SIGBUS). The storage layer only
        // ever unlinks a sealed index, which is safe: the mapping keeps the
        // inode alive until it is dropped. Any content is acceptable input:
        // it is validated below before an entry is served. (A read error of
        // the device itself while paging in would still raise SIGBUS: the
        // accepted cost of mmap, as for every mapped file.)
        let map = unsafe { Mmap::map(&file) }.map_err(io_error("map", path))?;
        let len = format::validate_sealed(&map, path, expected_base_offset, covered_log_len)?;
        Ok(MmapIndex {
            map,
            path: path.to_path_buf(),
            base_offset: expected_base_offset,
            covered_log_len,
            len,
        })
    }

    /// The mapped index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length in bytes of the segment log this index describes.
    pub fn covered_log_len(&self) -> u64 {
        self.covered_log_len
    }
}

/// Maps the first `len` bytes of a sealed file read-only and hands them
/// out as zero-copy [`bytes::Bytes`] (the mapping lives as long as any
/// slice of it). `len` 0 gives empty bytes without mapping.
///
/// Contract, as for [`MmapIndex::open`]: the file is sealed — its first
/// `len` bytes were written with write(2) (no hole) and synced, and nobody
/// writes, truncates or extends that range while any returned slice
/// lives; unlinking the file is fine.
///
/// # Errors
///
/// The I/O error of the `mmap` call, or [`std::io::ErrorKind::UnexpectedEof`]
/// when the file is shorter than `len`.
pub fn map_sealed_file(file: &File, len: u64) -> std::io::Result<bytes::Bytes> {
    if len == 0 {
        return Ok(bytes::Bytes::new());
    }
    let file_len = file.metadata()?.len();
    if file_len < len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("file is {file_len} bytes, shorter than the {len} to map"),
        ));
    }
    let map_len = usize::try_from(len).map_err(std::io::Error::other)?;
    // SAFETY: a read-only mapping of `len` bytes that exist on disk (checked
    // just above; sealed files are written whole, never sparse), and the
    // caller keeps the contract of this function: the range is never
    // written, truncated or extended while mapped, so the bytes behind the
    // returned `Bytes` never change and no access within them can fault,
    // save a read error of the device itself (the accepted cost of mmap).
    let map = unsafe { memmap2::MmapOptions::new().len(map_len).map(file) }?;
    Ok(bytes::Bytes::from_owner(map))
}

impl IndexLookup for MmapIndex {
    fn base_offset(&self) -> u64 {
        self.base_offset
    }

    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn entry(&self, index: usize) -> IndexEntry {
        // `validate_sealed` checked that the file holds `len` entries after
        // the header. Slicing them first makes `index >= len` panic (it
        // would otherwise read the footer) with a single bounds check, and
        // keeps the search loop free of branches.
        let entries = &self.map[HEADER_LEN..HEADER_LEN + self.len * ENTRY_LEN];
        IndexEntry::from_le_bytes(&entries.as_chunks::<ENTRY_LEN>().0[index])
    }
}
