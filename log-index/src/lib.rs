//! The sparse per-segment index of the commit log: offset and time lookups,
//! and the index file format.
//!
//! Every segment has one index file. It holds an entry every
//! `index_interval_bytes` of log (4096 by default, counted in bytes, not
//! messages, so the scan of the log after a lookup is bounded in bytes). An
//! entry maps an offset (relative to the segment's base offset) to the byte
//! position of the batch starting there, and carries the largest server
//! append time so far, so one file serves both offset and time lookups.
//!
//! This crate does not read or parse the log: a lookup returns where to
//! *start* reading the segment, and `log-storage` scans batch headers forward
//! from there. The index is derived data: any doubt about a file (every
//! [`Error::is_damaged`] error) means "rebuild it from the segment".
//!
//! # Layout
//!
//! - `entry.rs`: [`IndexEntry`] and its 16-byte encoding ([`ENTRY_LEN`]).
//! - `format.rs`: the other constants of the file format ([`MAGIC`],
//!   [`FOOTER_MAGIC`], [`VERSION`], [`HEADER_LEN`], [`FOOTER_LEN`]), header
//!   and footer encoding, and the one validation every loader runs.
//!
//! Module dependencies go one way, no two modules import each other, directly
//! or through others: `entry` and `error` depend on no other module; `file`
//! on `error`; `format` on `entry` and `error`; `lookup` on `entry`; `mem` and
//! `mmap` on those; `active` on all but `mmap`. The modules are private: every
//! public item has one path, at the crate root.
//! - `lookup.rs`: the [`IndexLookup`] trait, which holds the search code once
//!   for every implementation.
//! - `file.rs`: [`IndexFile`], the positioned file operations an
//!   [`ActiveIndex`] needs (length, read, write, sync, set length), for
//!   [`std::fs::File`] and through [`Arc`](std::sync::Arc) and [`Box`]: the
//!   seam through which the storage layer routes index I/O through its own
//!   (possibly simulated) file system.
//! - `active.rs`: [`ActiveIndex`], the growing index of the active segment
//!   (entry policy, crash recovery, sealing), generic over its [`IndexFile`]
//!   (a [`std::fs::File`] by default): path constructors open a `File`, the
//!   `_in` constructors take any open handle.
//! - `mem.rs`: [`MemIndex`], a sealed index in a `Vec`: loaded with plain
//!   reads ([`MemIndex::load`]), or validated from bytes the caller read
//!   through its own I/O layer ([`MemIndex::from_sealed_bytes`]).
//! - `mmap.rs`: [`MmapIndex`], a sealed index read from a read-only memory
//!   map of a real file (`std::fs` only): the only `unsafe` code of the
//!   workspace.
//! - `error.rs`: [`Error`].
//!
//! # File format, version 1
//!
//! All integers are little-endian. An index file is a header, `N` entries,
//! and, only once sealed, a footer.
//!
//! Header (16 bytes):
//!
//! | byte | field       | type      | value |
//! |------|-------------|-----------|-------|
//! | 0    | magic       | `[u8; 4]` | `b"LIDX"` ([`MAGIC`]) |
//! | 4    | version     | `u16`     | 1 ([`VERSION`]) |
//! | 6    | flags       | `u16`     | 0 (reserved; a reader rejects any other value) |
//! | 8    | base offset | `u64`     | absolute offset of the segment's first record |
//!
//! Entry `i` (16 bytes, at byte `16 + 16 i`):
//!
//! | byte | field           | type  | meaning |
//! |------|-----------------|-------|---------|
//! | 0    | relative offset | `u32` | base offset of the batch minus the segment's base offset |
//! | 4    | position        | `u32` | byte position of the batch in the segment's log file |
//! | 8    | max append time | `i64` | largest server append time (ms since the Unix epoch) of every batch up to and including this one |
//!
//! Footer (24 bytes, at byte `16 + 16 N`, sealed files only):
//!
//! | byte | field           | type      | value |
//! |------|-----------------|-----------|-------|
//! | 0    | entry count     | `u32`     | `N` |
//! | 4    | reserved        | `u32`     | 0 |
//! | 8    | covered log len | `u64`     | length in bytes of the segment's log file the index describes |
//! | 16   | footer magic    | `[u8; 4]` | `b"XDIL"` ([`FOOTER_MAGIC`]) |
//! | 20   | crc32           | `u32`     | CRC-32 (IEEE, `crc32fast`) of every byte of the file before this field |
//!
//! A sealed file is therefore `40 + 16 N` bytes long. An active (unsealed)
//! file is `16 + 16 N` bytes long, plus whatever a crash left behind.
//!
//! Entry invariants, checked by every loader: relative offsets strictly
//! increase; positions strictly increase and the first is past 0 (position
//! 0 belongs to the implicit entry [`IndexEntry::SEGMENT_START`], never
//! stored, so an all-zero entry is never valid: a zero-filled tail is never
//! trusted); max append times never decrease; positions are below the
//! covered log length.
//!
//! A sealed file is rejected, each case with its own [`Error`] variant, when
//! it is shorter than 40 bytes or not `40 + 16 N` long, when a magic, the
//! version or a reserved field is wrong, when the CRC, the entry count, the
//! base offset or the covered length (a stale index) disagrees, or when an
//! entry breaks an invariant.
//!
//! # Entry policy
//!
//! [`ActiveIndex::on_batch`] is called for every batch appended to the
//! segment and adds an entry at the batch's start when its position is at
//! least `index_interval_bytes` past the last entry's (or past 0). The rule
//! depends on the last stored entry only, so after a restart replaying the
//! batches after it rebuilds the same entries.
//!
//! # Lookups
//!
//! [`IndexLookup::lookup_offset`] returns the floor entry of an offset;
//! [`IndexLookup::time_scan_start`] the last entry older than a time (where
//! to scan from for the first batch at or after it);
//! [`IndexLookup::first_entry_at_or_after_time`] the first entry not older.
//! Binary search, trying the last 8 KiB of entries first (the warm section:
//! tail reads are the common case).
#![deny(unsafe_code)]
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

mod active;
mod entry;
mod error;
mod file;
mod format;
mod lookup;
mod mem;
#[allow(unsafe_code)]
mod mmap;

pub use active::{ActiveIndex, DEFAULT_INDEX_INTERVAL_BYTES, RecoveryReport, Reopened};
pub use entry::{ENTRY_LEN, IndexEntry};
pub use error::Error;
pub use file::IndexFile;
pub use format::{FOOTER_LEN, FOOTER_MAGIC, HEADER_LEN, MAGIC, VERSION};
pub use lookup::{IndexLookup, WARM_ENTRIES, WARM_SECTION_BYTES};
pub use mem::MemIndex;
pub use mmap::{MmapIndex, map_sealed_file};
