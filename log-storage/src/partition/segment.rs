//! One segment of a partition: a log file of batches back to back and its
//! sparse index, plus what the log knows about it (length, offsets, times).
//!
//! A segment reads its own file (header hops, batch ranges) and keeps its
//! index current; it does not decide when to roll, sync or delete (the
//! partition does: `roll.rs`, `commit.rs`, `retention.rs`). Every file
//! operation goes through the [`Fs`](crate::Fs) seam.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use log_format::{BatchHeader, DecodeError, HEADER_LEN, Limits, Scanned, Scanner};
use log_index::{ActiveIndex, IndexEntry, IndexLookup, MemIndex};

use crate::error::{Error, index_error, io_error};
use crate::io::{FileHandle, Fs};
use crate::layout::tmp_path;

/// The index of a segment, in whichever state it is.
#[derive(Debug)]
pub(crate) enum SegmentIndex {
    /// The growing index of the active segment.
    Active(ActiveIndex<Arc<dyn FileHandle>>),
    /// A sealed index, validated and in memory.
    Sealed(MemIndex),
    /// A sealed segment whose index is loaded (or rebuilt) on first use, so
    /// opening a log does not read every index.
    Unloaded,
}

/// One segment.
#[derive(Debug)]
pub(crate) struct Segment {
    /// Unique in this process ([`next_segment_id`]): tells a segment from
    /// the one the cleaner put in its place under the same base offset.
    pub(crate) id: u64,
    pub(crate) base_offset: u64,
    pub(crate) log_path: PathBuf,
    pub(crate) index_path: PathBuf,
    pub(crate) file: Arc<dyn FileHandle>,
    /// Bytes of whole batches in the file.
    pub(crate) len: u64,
    /// The end of the zeros written past `len` (the preallocated runway,
    /// `prealloc.rs`); at or below `len` when there is none.
    pub(crate) zeroed_end: u64,
    /// The offset after the segment's last record (== `base_offset` when
    /// empty). Known for the active segment; for sealed ones it is the next
    /// segment's base offset.
    pub(crate) end_offset: u64,
    /// Append time of the first batch, if known (roll by age).
    pub(crate) first_append_time: Option<i64>,
    /// Largest append time, if known (`i64::MIN` when empty or unknown).
    pub(crate) max_append_time: i64,
    /// Index spacing of this segment's index.
    pub(crate) index_interval_bytes: u32,
    /// The whole file mapped read-only, once sealed and first read: reads
    /// then hop headers and hand out slices without a copy.
    pub(crate) mapped: Option<bytes::Bytes>,
    /// Mapping it failed once (logged): reads use pread from then on
    /// instead of trying again on every read.
    pub(crate) map_failed: bool,
    pub(crate) index: SegmentIndex,
}

/// A new segment id ([`Segment::id`]).
pub(crate) fn next_segment_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// How far forward a scan reads at a time.
const SCAN_CHUNK: usize = 1 << 20;

impl Segment {
    /// The floor index entry for `offset` (absolute), from the index in
    /// memory: the segment start while a sealed index is not loaded yet
    /// (see [`Segment::detached`] for loading it without the partition
    /// lock).
    pub(crate) fn index_floor(&self, offset: u64) -> IndexEntry {
        let relative = u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX);
        match &self.index {
            SegmentIndex::Active(index) => index.lookup_offset(relative),
            SegmentIndex::Sealed(index) => index.lookup_offset(relative),
            SegmentIndex::Unloaded => IndexEntry::SEGMENT_START,
        }
    }

    /// Where a scan by append time may start (the segment start while a
    /// sealed index is not loaded).
    pub(crate) fn time_scan_start(&self, time_ms: i64) -> IndexEntry {
        match &self.index {
            SegmentIndex::Active(index) => index.time_scan_start(time_ms),
            SegmentIndex::Sealed(index) => index.time_scan_start(time_ms),
            SegmentIndex::Unloaded => IndexEntry::SEGMENT_START,
        }
    }

    /// A copy of what reading this segment's files needs (no index, no
    /// mapping), so that loading its index, mapping it or hopping its
    /// headers can run after the partition lock is released. Its file is
    /// the one open now (pinned, as [`Segment::reader`]'s), never one a
    /// pool reopens later by path: the cleaner may have put another file
    /// under that path by then.
    pub(crate) fn detached(&self) -> Segment {
        let file = match self.file.pinned() {
            Some(Ok(file)) => file,
            _ => Arc::clone(&self.file),
        };
        Segment {
            id: self.id,
            base_offset: self.base_offset,
            log_path: self.log_path.clone(),
            index_path: self.index_path.clone(),
            file,
            len: self.len,
            zeroed_end: self.zeroed_end,
            end_offset: self.end_offset,
            first_append_time: self.first_append_time,
            max_append_time: self.max_append_time,
            index_interval_bytes: self.index_interval_bytes,
            mapped: self.mapped.clone(),
            map_failed: self.map_failed,
            index: SegmentIndex::Unloaded,
        }
    }

    /// Loads the sealed index, or rebuilds it from the log when it is
    /// missing or fails validation (the rebuild is logged).
    pub(crate) fn load_sealed_index(&self, fs: &dyn Fs) -> Result<MemIndex, Error> {
        let reason = match fs.read(&self.index_path) {
            Ok(bytes) => match MemIndex::from_sealed_bytes(
                bytes,
                &self.index_path,
                self.base_offset,
                self.len,
            ) {
                Ok(index) => return Ok(index),
                Err(err) => err.to_string(),
            },
            Err(err) => format!("cannot read it: {err}"),
        };
        tracing::warn!(
            index = %self.index_path.display(),
            %reason,
            "rebuilding segment index from its log"
        );
        self.rebuild_index(fs)
    }

    /// Rebuilds the sealed index by scanning the whole log file, writes it
    /// atomically (temp file, sync, rename, directory sync) and returns it.
    /// If writing fails, the rebuilt index is still used from memory.
    pub(crate) fn rebuild_index(&self, fs: &dyn Fs) -> Result<MemIndex, Error> {
        let dir = self.log_path.parent().unwrap_or(Path::new("."));
        let tmp = tmp_path(&self.index_path);
        if fs
            .exists(&tmp)
            .map_err(io_error("check temp index", &tmp))?
        {
            fs.remove_file(&tmp)
                .map_err(io_error("remove stale temp index", &tmp))?;
        }
        let file = fs
            .create_new(&tmp)
            .map_err(io_error("create temp index", &tmp))?;
        let mut index =
            ActiveIndex::create_in(file, &tmp, self.base_offset, self.index_interval_bytes)
                .map_err(index_error("create rebuilt index"))?;
        let base = self.base_offset;
        let end = scan_file(
            &*self.file,
            &self.log_path,
            0,
            self.len,
            |position, header| {
                let relative = u32::try_from(header.base_offset - base).unwrap_or(u32::MAX);
                index
                    .on_batch(relative, position as u32, header.length, header.append_time)
                    .map(|_| ())
                    .map_err(index_error("rebuild index"))
            },
        )?;
        if let Some(stop) = end.stop {
            return Err(self.stop_error(stop, end.valid_len));
        }
        let sealed = index
            .seal(self.len)
            .map_err(index_error("seal rebuilt index"))?;
        fs.rename(&tmp, &self.index_path)
            .map_err(io_error("install rebuilt index", &self.index_path))?;
        fs.sync_dir(dir).map_err(io_error("sync directory", dir))?;
        Ok(sealed)
    }

    /// Reads the header of the batch at `position`.
    pub(crate) fn header_at(&self, position: u64) -> Result<BatchHeader, Error> {
        self.reader().header_at(position)
    }

    /// What reading this segment needs, detached from it: a read can then
    /// hop headers and copy bytes without holding the partition's lock.
    pub(crate) fn reader(&self) -> SegmentReader {
        // Unmapped reads keep the file itself open until they are done,
        // whatever a pool of open files closes meanwhile.
        let file = match (&self.mapped, self.file.pinned()) {
            (None, Some(Ok(file))) => file,
            _ => Arc::clone(&self.file),
        };
        SegmentReader {
            file,
            mapped: self.mapped.clone(),
            path: self.log_path.clone(),
        }
    }

    /// The error for bytes that do not decode at `position` in a range the
    /// log believes whole: corruption either way.
    pub(crate) fn decode_error(&self, err: DecodeError, position: u64) -> Error {
        corruption(&self.log_path, position, err)
    }

    /// The error for a scan of a range believed whole that stopped early.
    pub(crate) fn stop_error(&self, stop: ScanStop, position: u64) -> Error {
        match stop {
            ScanStop::Corrupt(source) => Error::Corruption {
                path: self.log_path.clone(),
                position: source.position,
                source,
            },
            ScanStop::Incomplete => {
                self.decode_error(DecodeError::Incomplete { needed: 0 }, position)
            }
        }
    }
}

/// The error for bytes of `path` that do not decode at `position` in a
/// range the log believes whole: corruption either way (a batch cut short
/// there is damage, not a torn tail).
pub(crate) fn corruption(path: &Path, position: u64, err: DecodeError) -> Error {
    let source = match err {
        DecodeError::Corrupt(source) => source,
        DecodeError::Incomplete { needed } => log_format::Corrupt {
            position,
            field_position: position,
            what: log_format::Defect::BatchLength,
            expected: needed as u64,
            found: 0,
        },
    };
    Error::Corruption {
        path: path.to_path_buf(),
        position: source.position,
        source,
    }
}

/// A segment's file (and its mapping, when sealed) for reading without the
/// partition lock: bytes below the length the log published never change.
#[derive(Debug, Clone)]
pub(crate) struct SegmentReader {
    pub(crate) file: Arc<dyn FileHandle>,
    pub(crate) mapped: Option<bytes::Bytes>,
    pub(crate) path: PathBuf,
}

impl SegmentReader {
    /// Reads the header of the batch at `position`.
    pub(crate) fn header_at(&self, position: u64) -> Result<BatchHeader, Error> {
        if let Some(map) = &self.mapped {
            let bytes = usize::try_from(position)
                .ok()
                .and_then(|at| map.get(at..))
                .unwrap_or_default();
            return BatchHeader::parse(bytes, position, &Limits::unlimited())
                .map_err(|err| corruption(&self.path, position, err));
        }
        let mut buf = [0u8; HEADER_LEN];
        self.file
            .read_exact_at(&mut buf, position)
            .map_err(io_error("read batch header", &self.path))?;
        BatchHeader::parse(&buf, position, &Limits::unlimited())
            .map_err(|err| corruption(&self.path, position, err))
    }
}

/// What scanning a segment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Position just past the last whole, valid batch.
    pub(crate) valid_len: u64,
    /// Offset after the last valid batch's last record, if any batch was found.
    pub(crate) end_offset: Option<u64>,
    /// First append time and largest append time seen.
    pub(crate) first_append_time: Option<i64>,
    pub(crate) max_append_time: i64,
    /// Why the scan stopped before the end of the file, if it did.
    pub(crate) stop: Option<ScanStop>,
}

/// Why a scan stopped before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScanStop {
    /// The file ends inside a batch (a torn tail).
    Incomplete,
    /// A damaged batch.
    Corrupt(log_format::Corrupt),
}

/// Scans `file` from `start` to `file_len`, verifying every batch and
/// calling `on_batch(position, header)` for each, reading `SCAN_CHUNK`
/// bytes at a time.
pub(crate) fn scan_file(
    file: &dyn FileHandle,
    path: &Path,
    start: u64,
    file_len: u64,
    mut on_batch: impl FnMut(u64, &BatchHeader) -> Result<(), Error>,
) -> Result<ScanEnd, Error> {
    let limits = Limits::unlimited();
    let mut end = ScanEnd {
        valid_len: start,
        end_offset: None,
        first_append_time: None,
        max_append_time: i64::MIN,
        stop: None,
    };
    let mut buf = Vec::new();
    let mut pos = start;
    while pos < file_len {
        let remaining = file_len - pos;
        let mut want = remaining.min(SCAN_CHUNK as u64);
        if let Some(len) = peek_len(file, pos, file_len) {
            let len = u64::from(len);
            if len > remaining {
                // The file ends inside this batch: a torn tail (or damage
                // the caller tells apart).
                end.stop = Some(ScanStop::Incomplete);
                return Ok(end);
            }
            // A batch larger than the chunk: read exactly that batch.
            want = want.max(len);
        }
        let want = usize::try_from(want).unwrap_or(SCAN_CHUNK);
        buf.resize(want, 0);
        file.read_exact_at(&mut buf, pos)
            .map_err(io_error("scan segment", path))?;
        let mut scanner = Scanner::new(&buf, pos, limits);
        let mut progressed = false;
        for scanned in scanner.by_ref() {
            match scanned {
                Scanned::Batch(view) => {
                    let position = end.valid_len;
                    on_batch(position, view.header())?;
                    end.valid_len += view.len() as u64;
                    end.end_offset = Some(view.last_offset() + 1);
                    end.first_append_time.get_or_insert(view.append_time());
                    end.max_append_time = end.max_append_time.max(view.append_time());
                    progressed = true;
                }
                Scanned::Incomplete { .. } => break,
                Scanned::Corrupt(corrupt) => {
                    end.stop = Some(ScanStop::Corrupt(corrupt));
                    return Ok(end);
                }
            }
        }
        let consumed = scanner.position() - pos;
        if !progressed || consumed == 0 {
            // The chunk held no whole batch: the file ends inside one.
            if end.valid_len < file_len {
                end.stop = Some(ScanStop::Incomplete);
            }
            return Ok(end);
        }
        pos += consumed;
    }
    Ok(end)
}

/// The length field of a batch header at `pos` whose header checksum holds.
fn peek_len(file: &dyn FileHandle, pos: u64, file_len: u64) -> Option<u32> {
    if file_len - pos < HEADER_LEN as u64 {
        return None;
    }
    let mut header = [0u8; HEADER_LEN];
    file.read_exact_at(&mut header, pos).ok()?;
    BatchHeader::parse(&header, pos, &Limits::unlimited())
        .ok()
        .map(|h| h.length)
}
