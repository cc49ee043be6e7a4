//! `ActiveIndex`: the growing index of the active segment, its entry policy,
//! its crash recovery and its sealing.
//!
//! The entry policy lives here, so the storage layer only reports every batch
//! it appends ([`ActiveIndex::on_batch`]) and cannot get the spacing or the
//! time monotonicity wrong. Entries are kept in a `Vec` and appended to the
//! file with positioned writes through an [`IndexFile`] handle (a
//! [`std::fs::File`] by default, or the storage layer's own handle type);
//! nothing is ever mapped. This module does not read the log, does not sync
//! the directory (creating and deleting index files, and syncing their
//! directory, is the storage layer's job) and does not decide when to roll a
//! segment.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::entry::{ENTRY_LEN, IndexEntry};
use crate::error::{Error, io_error};
use crate::file::{self, IndexFile};
use crate::format::{self, FOOTER_LEN, HEADER_LEN};
use crate::lookup::IndexLookup;
use crate::mem::MemIndex;

/// Default spacing of index entries, in bytes of log: one entry per 4 KiB
/// (Kafka's `index.interval.bytes`). The scan after a lookup reads less than
/// this much log plus one batch.
pub const DEFAULT_INDEX_INTERVAL_BYTES: u32 = 4096;

/// Unwritten entries are written once they fill 4 KiB.
const FLUSH_THRESHOLD_ENTRIES: usize = 4096 / ENTRY_LEN;

/// The index of the active segment: entries in memory, appended to an
/// unsealed file (header and entries, no footer).
///
/// Every file operation goes through `F`, an [`IndexFile`]: a
/// [`std::fs::File`] by default, opened by the path constructors
/// ([`create`](ActiveIndex::create),
/// [`open_unsealed`](ActiveIndex::open_unsealed)); any other handle (the
/// storage layer's, a simulated file) through the `_in` constructors
/// ([`create_in`](Self::create_in), [`open_unsealed_in`](Self::open_unsealed_in)),
/// which take the handle already open and the path for error messages.
///
/// Lifecycle: `create` / [`create_in`](Self::create_in) (or `open_unsealed`
/// / [`open_unsealed_in`](Self::open_unsealed_in) after a restart), then
/// [`on_batch`](Self::on_batch) for every batch appended to the segment, in
/// order, with [`flush`](Self::flush) / [`sync_data`](Self::sync_data) when
/// the storage layer wants the entries on file, and
/// [`truncate_to_position`](Self::truncate_to_position) when it cuts the
/// segment's tail; finally [`seal`](Self::seal) when the segment rolls.
///
/// Lookups ([`IndexLookup`]) see every entry added, written or not.
/// Dropping the index writes nothing: entries not yet flushed are lost, as
/// in a crash, and come back when the caller replays the batches after the
/// last entry on file (see [`Reopened::Active`]).
///
/// After a failed `sync_data` the index is poisoned: every later mutating
/// call returns [`Error::Poisoned`] (lookups keep working). The file is
/// derived data: drop it and rebuild it from the segment.
#[derive(Debug)]
pub struct ActiveIndex<F: IndexFile = File> {
    /// The index file, for error messages and [`path`](Self::path) only.
    path: PathBuf,
    file: F,
    base_offset: u64,
    interval_bytes: u32,
    entries: Vec<IndexEntry>,
    /// Entries `..written` are in the file; the rest wait for `flush`.
    written: usize,
    /// The smallest relative offset the next batch may have.
    next_min_offset: u64,
    /// The smallest position the next batch may have (the end of the last
    /// batch, or just past the last entry after a reopen or a truncation).
    next_min_position: u64,
    /// The largest append time seen (`i64::MIN` before any batch).
    max_append_time: i64,
    poisoned: bool,
}

/// What [`ActiveIndex::open_unsealed`] (or
/// [`open_unsealed_in`](ActiveIndex::open_unsealed_in)) found.
#[derive(Debug)]
pub enum Reopened<F: IndexFile = File> {
    /// The file was an unsealed (active) index. Its longest valid prefix was
    /// kept and the file cut to it; `report` says what was dropped.
    ///
    /// The caller then replays, through [`ActiveIndex::on_batch`], every batch
    /// of the segment at or after [`ActiveIndex::resume_position`] (the byte
    /// after the last kept entry's position, or 0), so the entries and the
    /// running max append time are exactly those of an index built from
    /// scratch.
    Active {
        /// The reopened index.
        index: ActiveIndex<F>,
        /// What recovery kept and dropped, for the caller's log.
        report: RecoveryReport,
    },
    /// The file carries a valid footer: the index was sealed (for example a
    /// crash after sealing, before the next segment was created). It passed
    /// the full sealed validation, with the given log length as covered
    /// length, and is returned loaded; the file is left untouched (and the
    /// handle dropped). The segment is complete: the caller rolls to a new
    /// one rather than appending to it.
    Sealed(MemIndex),
}

/// What [`ActiveIndex::open_unsealed`] kept and dropped from an unsealed file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Entries kept: the longest prefix of valid entries.
    pub entries_kept: usize,
    /// Whole entries after that prefix that were dropped (a partial entry at
    /// the end of the file is counted in the bytes only).
    pub entries_dropped: usize,
    /// File length found, in bytes.
    pub original_len: u64,
    /// File length after recovery, in bytes: header plus kept entries. Also
    /// the byte position of the first byte dropped, if any.
    pub recovered_len: u64,
}

impl RecoveryReport {
    /// Bytes cut from the end of the file.
    pub fn bytes_dropped(&self) -> u64 {
        self.original_len - self.recovered_len
    }

    /// Whether the file was whole: nothing dropped.
    pub fn is_clean(&self) -> bool {
        self.original_len == self.recovered_len
    }
}

fn check_interval(path: &Path, interval_bytes: u32) -> Result<(), Error> {
    if interval_bytes == 0 {
        return Err(Error::InvalidArgument {
            path: path.to_path_buf(),
            argument: "index interval bytes",
            expected_at_least: 1,
            found: 0,
        });
    }
    Ok(())
}

impl ActiveIndex<File> {
    /// Creates the index file of the segment whose first offset is
    /// `base_offset` (the file must not exist) and writes its header. One
    /// entry is added per `interval_bytes` of log
    /// ([`DEFAULT_INDEX_INTERVAL_BYTES`] is the usual value).
    ///
    /// Opens the file (`create_new`, read and write), then works as
    /// [`create_in`](Self::create_in).
    ///
    /// Neither the file nor its directory is synced: syncing the directory
    /// after the create is the storage layer's job; call
    /// [`sync_data`](Self::sync_data) for the file.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an `interval_bytes` of 0 (no file is
    /// created), [`Error::Io`] when the file exists or cannot be created or
    /// written (a header write that failed may leave a short file behind,
    /// which [`open_unsealed`](Self::open_unsealed) rejects as too short).
    pub fn create(
        path: impl AsRef<Path>,
        base_offset: u64,
        interval_bytes: u32,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        check_interval(path, interval_bytes)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io_error("create", path))?;
        Self::create_in(file, path, base_offset, interval_bytes)
    }

    /// Reopens the index of the active segment after a restart (clean or
    /// not). `log_len` is the segment's log length after the storage layer's
    /// own torn-tail recovery.
    ///
    /// Opens the file (read and write), then works as
    /// [`open_unsealed_in`](Self::open_unsealed_in), which describes the
    /// recovery.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an `interval_bytes` of 0, [`Error::Io`]
    /// when the file cannot be opened, read or cut, and a damage error
    /// ([`Error::is_damaged`]) for a bad header or a sealed file that fails
    /// validation: the caller deletes the file and rebuilds the index.
    pub fn open_unsealed(
        path: impl AsRef<Path>,
        base_offset: u64,
        interval_bytes: u32,
        log_len: u64,
    ) -> Result<Reopened, Error> {
        let path = path.as_ref();
        check_interval(path, interval_bytes)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_error("open", path))?;
        Self::open_unsealed_in(file, path, base_offset, interval_bytes, log_len)
    }
}

impl<F: IndexFile> ActiveIndex<F> {
    /// Starts the index of the segment whose first offset is `base_offset`
    /// in `file`, an open handle to a new, empty file, and writes its header
    /// at byte 0. `path` names the file in errors and
    /// [`path`](Self::path); nothing is opened through it. One entry is added
    /// per `interval_bytes` of log ([`DEFAULT_INDEX_INTERVAL_BYTES`] is the
    /// usual value).
    ///
    /// Nothing is synced: creating the file and syncing its directory is the
    /// caller's job; call [`sync_data`](Self::sync_data) for the file.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an `interval_bytes` of 0 (nothing is
    /// written). [`Error::Io`] when the file's length cannot be read, when
    /// the file is not empty (kind [`io::ErrorKind::AlreadyExists`]: stale
    /// bytes after a new header could pass for entries on a reopen; nothing
    /// is written) or when the header write fails (a short file may be left
    /// behind, which [`open_unsealed_in`](Self::open_unsealed_in) rejects as
    /// too short).
    pub fn create_in(
        file: F,
        path: impl AsRef<Path>,
        base_offset: u64,
        interval_bytes: u32,
    ) -> Result<Self, Error> {
        let path = path.as_ref();
        check_interval(path, interval_bytes)?;
        let len = file.len().map_err(io_error("inspect", path))?;
        if len != 0 {
            return Err(io_error("create", path)(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("the file is not empty: {len} bytes"),
            )));
        }
        file.write_all_at(&format::encode_header(base_offset), 0)
            .map_err(io_error("write header of", path))?;
        Ok(Self::with_entries(
            path,
            file,
            base_offset,
            interval_bytes,
            Vec::new(),
        ))
    }

    /// Reopens the index of the active segment after a restart (clean or
    /// not), from `file`, an open, readable and writable handle to it.
    /// `path` names the file in errors and [`path`](Self::path); nothing is
    /// opened through it. `log_len` is the segment's log length after the
    /// storage layer's own torn-tail recovery.
    ///
    /// Reads the whole file through `file`. Unsealed file: checks the header
    /// (magic, version, flags, base offset), then keeps the longest prefix of
    /// whole entries that are valid (relative offsets and positions strictly
    /// increasing, the first past position 0, times non-decreasing, positions
    /// below `log_len`; so a zero-filled or garbage tail stops the prefix),
    /// cuts the file to it (through `file`) and returns [`Reopened::Active`]
    /// with a [`RecoveryReport`]. The cut is not synced: a crash before the
    /// next sync only makes the next reopen cut again.
    ///
    /// A file with a footer magic where a sealed file has it is validated as
    /// a sealed file covering `log_len` bytes (as
    /// [`MemIndex::from_sealed_bytes`]) and returned as [`Reopened::Sealed`];
    /// nothing is written.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an `interval_bytes` of 0 (nothing is
    /// read), [`Error::Io`] when the file cannot be read or cut, and a damage
    /// error ([`Error::is_damaged`]) for a bad header or a sealed file that
    /// fails validation: the caller deletes the file and rebuilds the index.
    pub fn open_unsealed_in(
        file: F,
        path: impl AsRef<Path>,
        base_offset: u64,
        interval_bytes: u32,
        log_len: u64,
    ) -> Result<Reopened<F>, Error> {
        let path = path.as_ref();
        check_interval(path, interval_bytes)?;
        let bytes = file::read_all(&file, path)?;
        format::check_header(&bytes, path, base_offset)?;

        if format::looks_sealed(&bytes) {
            let sealed = MemIndex::from_sealed_bytes(bytes, path, base_offset, log_len)?;
            return Ok(Reopened::Sealed(sealed));
        }

        let whole = (bytes.len() - HEADER_LEN) / ENTRY_LEN;
        let mut entries = Vec::with_capacity(whole);
        let mut previous = None;
        for index in 0..whole {
            let entry = format::entry_at(&bytes, index);
            if format::check_entry(previous, entry, log_len).is_err() {
                break;
            }
            entries.push(entry);
            previous = Some(entry);
        }
        let report = RecoveryReport {
            entries_kept: entries.len(),
            entries_dropped: whole - entries.len(),
            original_len: bytes.len() as u64,
            recovered_len: format::entry_position(entries.len()),
        };
        if !report.is_clean() {
            file.set_len(report.recovered_len)
                .map_err(io_error("cut the invalid tail of", path))?;
        }
        let index = Self::with_entries(path, file, base_offset, interval_bytes, entries);
        Ok(Reopened::Active { index, report })
    }

    /// An index whose file holds exactly `entries`, with the batch state
    /// resumed from the last of them.
    fn with_entries(
        path: &Path,
        file: F,
        base_offset: u64,
        interval_bytes: u32,
        entries: Vec<IndexEntry>,
    ) -> Self {
        let mut index = ActiveIndex {
            path: path.to_path_buf(),
            file,
            base_offset,
            interval_bytes,
            written: entries.len(),
            entries,
            next_min_offset: 0,
            next_min_position: 0,
            max_append_time: i64::MIN,
            poisoned: false,
        };
        index.resume_from_last_entry();
        index
    }

    /// Resets the batch state to what the last entry (or the segment start)
    /// proves: batches are then replayed from just past its position.
    fn resume_from_last_entry(&mut self) {
        match self.entries.last() {
            Some(last) => {
                self.next_min_offset = u64::from(last.relative_offset) + 1;
                self.next_min_position = u64::from(last.position) + 1;
                self.max_append_time = last.max_append_time;
            }
            None => {
                self.next_min_offset = 0;
                self.next_min_position = 0;
                self.max_append_time = i64::MIN;
            }
        }
    }

    /// Reports one batch appended to the segment; call it for every batch,
    /// in log order. `relative_offset` is the batch's base offset minus the
    /// segment's, `position` the byte position of its first byte in the log
    /// file, `batch_len` its length in bytes, `append_time` its server append
    /// time (ms since the Unix epoch).
    ///
    /// Adds the entry `(relative_offset, position, max append time so far)`,
    /// and returns it, when `position >= last entry's position +
    /// interval_bytes` (taking 0 for the last position while no entry is
    /// stored, so no entry ever points at position 0). The rule depends only
    /// on the last stored entry, so replaying the batches after it (see
    /// [`resume_position`](Self::resume_position)) rebuilds exactly the same
    /// entries. The max append time is tracked over every batch, so entry
    /// times never decrease even if `append_time` does.
    ///
    /// Once 4 KiB of entries wait to be written, they are written first.
    ///
    /// # Errors
    ///
    /// Nothing changes on error.
    /// - [`Error::BatchOutOfOrder`]: `relative_offset` is not greater than
    ///   the previous batch's (or the last entry's), or `position` is before
    ///   the end of the previous batch (or not past the last entry's).
    /// - [`Error::InvalidArgument`]: `batch_len` is 0.
    /// - [`Error::Io`] from writing the waiting entries, [`Error::Poisoned`].
    pub fn on_batch(
        &mut self,
        relative_offset: u32,
        position: u32,
        batch_len: u32,
        append_time: i64,
    ) -> Result<Option<IndexEntry>, Error> {
        self.check_not_poisoned()?;
        if batch_len == 0 {
            return Err(Error::InvalidArgument {
                path: self.path.clone(),
                argument: "batch length",
                expected_at_least: 1,
                found: 0,
            });
        }
        if u64::from(relative_offset) < self.next_min_offset {
            return Err(Error::BatchOutOfOrder {
                path: self.path.clone(),
                field: "relative offset",
                expected_at_least: self.next_min_offset,
                found: u64::from(relative_offset),
            });
        }
        if u64::from(position) < self.next_min_position {
            return Err(Error::BatchOutOfOrder {
                path: self.path.clone(),
                field: "position",
                expected_at_least: self.next_min_position,
                found: u64::from(position),
            });
        }
        let last_position = self.entries.last().map_or(0, |last| last.position);
        let add = u64::from(position) >= u64::from(last_position) + u64::from(self.interval_bytes);
        if add && self.entries.len() - self.written >= FLUSH_THRESHOLD_ENTRIES {
            self.flush()?;
        }

        let max_append_time = self.max_append_time.max(append_time);
        self.max_append_time = max_append_time;
        self.next_min_offset = u64::from(relative_offset) + 1;
        self.next_min_position = u64::from(position) + u64::from(batch_len);
        if !add {
            return Ok(None);
        }
        let entry = IndexEntry::new(relative_offset, position, max_append_time);
        self.entries.push(entry);
        Ok(Some(entry))
    }

    /// Writes the entries added since the last flush to the file, in one
    /// positioned write ([`IndexFile::write_all_at`]) just past the entries
    /// already written; no sync.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the write fails: the entries stay waiting and the
    /// next flush writes them again at the same place (whatever part of them
    /// reached the file is overwritten). [`Error::Poisoned`].
    pub fn flush(&mut self) -> Result<(), Error> {
        self.check_not_poisoned()?;
        if self.written == self.entries.len() {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity((self.entries.len() - self.written) * ENTRY_LEN);
        for entry in &self.entries[self.written..] {
            bytes.extend_from_slice(&entry.to_le_bytes());
        }
        self.file
            .write_all_at(&bytes, format::entry_position(self.written))
            .map_err(io_error("write entries to", &self.path))?;
        self.written = self.entries.len();
        Ok(())
    }

    /// [`flush`](Self::flush)es, then syncs the file
    /// ([`IndexFile::sync_data`], `fdatasync` for a [`File`]).
    ///
    /// # Errors
    ///
    /// As `flush` (a failed write does not poison); a failed sync returns
    /// [`Error::Io`] and poisons the index: every later mutating call returns
    /// [`Error::Poisoned`].
    pub fn sync_data(&mut self) -> Result<(), Error> {
        self.flush()?;
        if let Err(source) = self.file.sync_data() {
            self.poisoned = true;
            return Err(io_error("sync", &self.path)(source));
        }
        Ok(())
    }

    /// Drops every entry whose position is `>= position`, in memory and in
    /// the file; returns how many were dropped. Call it when the storage
    /// layer cuts the segment's log to `position` bytes.
    ///
    /// If a batch already reported may have been cut (`position` is before
    /// the end of the last batch reported), the batch state goes back to the
    /// last kept entry, as after [`open_unsealed_in`](Self::open_unsealed_in): the
    /// caller replays the batches still in the log at or after
    /// [`resume_position`](Self::resume_position) so the max append time is
    /// right again.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be cut ([`IndexFile::set_len`];
    /// nothing changed in memory), [`Error::Poisoned`].
    pub fn truncate_to_position(&mut self, position: u64) -> Result<usize, Error> {
        self.check_not_poisoned()?;
        let keep = self
            .entries
            .partition_point(|entry| u64::from(entry.position) < position);
        let dropped = self.entries.len() - keep;
        if dropped == 0 && position >= self.next_min_position {
            return Ok(0);
        }
        let on_file = keep.min(self.written);
        self.file
            .set_len(format::entry_position(on_file))
            .map_err(io_error("truncate", &self.path))?;
        self.entries.truncate(keep);
        self.written = on_file;
        self.resume_from_last_entry();
        Ok(dropped)
    }

    /// Seals the index of a segment whose log is `covered_log_len` bytes
    /// long: writes the waiting entries and the footer (entry count, covered
    /// length, CRC32 of the whole file) with positioned writes, cuts anything
    /// past it, syncs the file ([`IndexFile::sync_data`]), drops the handle
    /// and returns the entries as a [`MemIndex`]. The file can then be loaded
    /// by [`MmapIndex::open`](crate::MmapIndex::open) or [`MemIndex::load`]
    /// (a real file), or read through any handle and checked by
    /// [`MemIndex::from_sealed_bytes`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when `covered_log_len` is before the end of
    /// the last batch reported (or not past the last entry), [`Error::Io`],
    /// [`Error::Poisoned`]. The index is consumed either way; after an error
    /// the file may be unsealed or partly sealed, which loaders reject: the
    /// caller rebuilds it.
    pub fn seal(self, covered_log_len: u64) -> Result<MemIndex, Error> {
        self.seal_inner(covered_log_len, true)
    }

    /// [`seal`](Self::seal) without the final `sync_data`: for a caller
    /// that treats the index as derived data and validates it when it loads
    /// it (a sealed file that a power loss damaged fails validation and is
    /// rebuilt). Errors as [`seal`](Self::seal).
    pub fn seal_without_sync(self, covered_log_len: u64) -> Result<MemIndex, Error> {
        self.seal_inner(covered_log_len, false)
    }

    fn seal_inner(mut self, covered_log_len: u64, sync: bool) -> Result<MemIndex, Error> {
        self.check_not_poisoned()?;
        if covered_log_len < self.next_min_position {
            return Err(Error::InvalidArgument {
                path: self.path.clone(),
                argument: "covered log length",
                expected_at_least: self.next_min_position,
                found: covered_log_len,
            });
        }
        self.flush()?;
        let footer = format::sealed_footer(self.base_offset, &self.entries, covered_log_len);
        let footer_at = format::entry_position(self.entries.len());
        let path = &self.path;
        self.file
            .write_all_at(&footer, footer_at)
            .map_err(io_error("write footer of", path))?;
        self.file
            .set_len(footer_at + FOOTER_LEN as u64)
            .map_err(io_error("truncate", path))?;
        if sync {
            self.file.sync_data().map_err(io_error("sync", path))?;
        }
        Ok(MemIndex::from_validated(
            self.base_offset,
            covered_log_len,
            self.entries,
        ))
    }

    /// The index file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Spacing of entries, in bytes of log.
    pub fn interval_bytes(&self) -> u32 {
        self.interval_bytes
    }

    /// The largest append time seen so far (over every batch reported, or
    /// proven by the last entry after a reopen); `i64::MIN` when none.
    pub fn max_append_time(&self) -> i64 {
        self.max_append_time
    }

    /// The smallest log position the next [`on_batch`](Self::on_batch) may
    /// report: the end of the last batch reported; after
    /// [`open_unsealed_in`](Self::open_unsealed_in) or a cutting
    /// [`truncate_to_position`](Self::truncate_to_position), one past the
    /// last entry's position (0 with no entry). After a reopen the caller
    /// replays every batch starting at or after it.
    pub fn resume_position(&self) -> u64 {
        self.next_min_position
    }

    /// Entries added but not yet written to the file.
    pub fn unflushed_entries(&self) -> usize {
        self.entries.len() - self.written
    }

    /// The stored entries, written or not, in order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Whether an earlier sync failed (see [`Error::Poisoned`]).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    fn check_not_poisoned(&self) -> Result<(), Error> {
        if self.poisoned {
            return Err(Error::Poisoned {
                path: self.path.clone(),
            });
        }
        Ok(())
    }
}

impl<F: IndexFile> IndexLookup for ActiveIndex<F> {
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
