//! Writing one cleaned group: the batches of a run of sealed segments,
//! each kept whole, rewritten with the records the policy keeps
//! ([`log_format::retain`]), or dropped, into `{base}.log.cleaned` with its
//! index in `{base}.index.cleaned`, both synced. Nothing is put in place
//! here (that is `swap.rs`).
//!
//! Which record goes (Kafka's cleaner rules):
//! - a record with a key is dropped when the key map knows a later offset
//!   for its key (it was superseded);
//! - a tombstone (null value) that is its key's latest (or whose key the
//!   map does not know) is kept until the delete horizon of its batch has
//!   passed; a batch that keeps a
//!   tombstone and has no horizon gets one (now + `delete_retention`);
//! - records without a key are kept (compacted topics should have none);
//! - the last few batches of each idempotent producer are kept whole, so
//!   its sequence numbers and retries still check after a restart;
//! - the group's last record is kept, so a cleaned segment still ends
//!   where the next one begins (recovery checks that);
//! - a tombstone is never dropped while an older record of its key is
//!   kept by one of the two rules above, or that value would come back.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use log_format::{Batch, BytesScanner, Limits, RetainOptions, Retained, Scanned, retain};
use log_index::{ActiveIndex, MemIndex};

use super::keymap::KeyMap;
use crate::error::{Error, index_error, io_error};
use crate::io::durable::remove_if_present;
use crate::io::{FileHandle, Fs};
use crate::layout;
use crate::partition::segment::{SegmentReader, corruption};

/// Bytes the cleaner buffers before a write.
const WRITE_CHUNK: usize = 1 << 20;
/// Bytes of an unmapped segment read at a time.
const READ_CHUNK: u64 = 1 << 20;

/// One sealed segment of a group, as the cleaner reads it.
#[derive(Debug)]
pub(super) struct Source {
    pub(super) base_offset: u64,
    pub(super) len: u64,
    pub(super) reader: SegmentReader,
}

/// What decides which records go.
#[derive(Debug)]
pub(super) struct Policy<'a> {
    pub(super) map: &'a KeyMap,
    /// The time the pass judges tombstones at, ms since the Unix epoch.
    pub(super) now_ms: i64,
    /// How long a tombstone stays after its first cleaning, in ms.
    pub(super) delete_retention_ms: i64,
    /// Base offsets of batches kept whole (producers' last batches).
    pub(super) protected: &'a HashSet<u64>,
    pub(super) limits: Limits,
}

/// A cleaned group on disk, synced, not in place yet.
#[derive(Debug)]
pub(super) struct Cleaned {
    pub(super) base_offset: u64,
    /// Base offset of the first segment after the group.
    pub(super) end_offset: u64,
    pub(super) log: PathBuf,
    pub(super) index_file: PathBuf,
    pub(super) len: u64,
    pub(super) index: MemIndex,
    pub(super) first_append_time: Option<i64>,
    pub(super) max_append_time: i64,
}

/// What cleaning a group removed.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Removed {
    pub(super) records: u64,
    pub(super) tombstones: u64,
    /// Whether any batch changed (else the group is left as it is when it
    /// is a single segment).
    pub(super) changed: bool,
}

/// Writes the cleaned form of `sources` (a run of sealed segments from
/// `base_offset` to `end_offset`) to the cleaned files of `dir`.
pub(super) fn write_group(
    fs: &dyn Fs,
    dir: &Path,
    index_interval_bytes: u32,
    sources: &[Source],
    end_offset: u64,
    policy: &Policy<'_>,
    forced: &mut HashSet<Vec<u8>>,
) -> Result<(Cleaned, Removed), Error> {
    let mut removed = Removed::default();
    let mut scratch = (BytesMut::new(), BytesMut::new());
    let mut keep = Vec::new();
    let last_offset = end_offset - 1;
    let (cleaned, changed) = write_rewritten(
        fs,
        dir,
        index_interval_bytes,
        sources,
        end_offset,
        &policy.limits,
        |batch| {
            let header = *batch.header();
            if policy.protected.contains(&header.base_offset) {
                force_superseded(batch, policy, forced);
                return Ok(Retained::Unchanged);
            }
            decide(batch, policy, last_offset, &mut keep, forced, &mut removed);
            let horizon = header.delete_horizon().is_none()
                && batch
                    .records()
                    .zip(&keep)
                    .any(|(record, &kept)| kept && record.is_tombstone());
            let options = RetainOptions {
                delete_horizon: horizon
                    .then(|| policy.now_ms.saturating_add(policy.delete_retention_ms)),
            };
            let mut flags = keep.iter();
            retain(batch, options, &mut scratch.0, &mut scratch.1, |_| {
                flags.next().copied().unwrap_or(true)
            })
            .map_err(|err| Error::CleanFailed {
                dir: dir.to_path_buf(),
                reason: format!("rewriting the batch at {}: {err}", header.base_offset),
            })
        },
    )?;
    removed.changed = changed;
    Ok((cleaned, removed))
}

/// Writes `sources` (a run of sealed segments from `base_offset` to
/// `end_offset`) to the cleaned files of `dir`, each batch as `rewrite`
/// makes it: kept as it is, rewritten, or dropped. Answers the synced
/// files and whether any batch changed.
pub(super) fn write_rewritten(
    fs: &dyn Fs,
    dir: &Path,
    index_interval_bytes: u32,
    sources: &[Source],
    end_offset: u64,
    limits: &Limits,
    mut rewrite: impl FnMut(&Batch) -> Result<Retained, Error>,
) -> Result<(Cleaned, bool), Error> {
    let base_offset = sources.first().map_or(end_offset, |s| s.base_offset);
    let log = layout::cleaned_log_path(dir, base_offset);
    let index_file = layout::cleaned_index_path(dir, base_offset);
    for stale in [&log, &index_file] {
        remove_if_present(fs, stale, "remove stale cleaned file")?;
    }
    let file = fs
        .create_new(&log)
        .map_err(io_error("create cleaned segment", &log))?;
    let index_handle = fs
        .create_new(&index_file)
        .map_err(io_error("create cleaned index", &index_file))?;
    let mut index =
        ActiveIndex::create_in(index_handle, &index_file, base_offset, index_interval_bytes)
            .map_err(index_error("create cleaned index"))?;
    let mut writer = Writer {
        file: &*file,
        path: &log,
        pending: BytesMut::with_capacity(WRITE_CHUNK),
        written: 0,
    };
    let mut changed = false;
    let mut times = (None, i64::MIN);
    for source in sources {
        for_each_batch(source, limits, |batch| {
            let header = *batch.header();
            let frame: Bytes = match rewrite(&batch)? {
                Retained::Unchanged => batch.into_bytes(),
                Retained::Rewritten(frame) => {
                    changed = true;
                    frame
                }
                Retained::Dropped => {
                    changed = true;
                    return Ok(true);
                }
            };
            let position = writer.position();
            let relative = u32::try_from(header.base_offset - base_offset).unwrap_or(u32::MAX);
            index
                .on_batch(
                    relative,
                    u32::try_from(position).unwrap_or(u32::MAX),
                    frame.len() as u32,
                    header.append_time,
                )
                .map(|_| ())
                .map_err(index_error("index cleaned segment"))?;
            times.0.get_or_insert(header.append_time);
            times.1 = times.1.max(header.append_time);
            writer.write(&frame).map(|()| true)
        })?;
    }
    writer.flush()?;
    let len = writer.written;
    file.sync_data()
        .map_err(io_error("sync cleaned segment", &log))?;
    let index = index.seal(len).map_err(index_error("seal cleaned index"))?;
    Ok((
        Cleaned {
            base_offset,
            end_offset,
            log,
            index_file,
            len,
            index,
            first_append_time: times.0,
            max_append_time: times.1,
        },
        changed,
    ))
}

/// Fills `keep` with whether each record of `batch` stays. `forced`
/// gathers the keys of superseded records kept anyway (the group's last
/// record, producers' batches): a tombstone of such a key is never
/// dropped, or the older value would come back. Nor is a tombstone the
/// key map does not hold (its older records were not judged by this pass).
fn decide(
    batch: &Batch,
    policy: &Policy<'_>,
    last_offset: u64,
    keep: &mut Vec<bool>,
    forced: &mut HashSet<Vec<u8>>,
    removed: &mut Removed,
) {
    keep.clear();
    let horizon_passed = batch
        .header()
        .delete_horizon()
        .is_some_and(|horizon| policy.now_ms >= horizon);
    for record in batch.records() {
        let Some(key) = record.key() else {
            keep.push(true);
            continue;
        };
        let superseded = policy
            .map
            .get(key)
            .is_some_and(|latest| record.offset() < latest);
        let stays = if record.offset() == last_offset {
            if superseded {
                forced.insert(key.to_vec());
            }
            true
        } else if superseded {
            removed.records += 1;
            false
        } else if record.is_tombstone()
            && horizon_passed
            && policy.map.get(key) == Some(record.offset())
            && !forced.contains(key)
        {
            removed.records += 1;
            removed.tombstones += 1;
            false
        } else {
            true
        };
        keep.push(stays);
    }
}

/// Adds to `forced` the keys of the superseded records of a batch kept
/// whole.
fn force_superseded(batch: &Batch, policy: &Policy<'_>, forced: &mut HashSet<Vec<u8>>) {
    for record in batch.records() {
        if let Some(key) = record.key()
            && policy
                .map
                .get(key)
                .is_some_and(|latest| record.offset() < latest)
        {
            forced.insert(key.to_vec());
        }
    }
}

/// Calls `f` with every batch of `source`, verified (checksums and
/// records), in order, until it answers `false`; damage is
/// [`Error::Corruption`] with the file and position.
pub(super) fn for_each_batch(
    source: &Source,
    limits: &Limits,
    mut f: impl FnMut(Batch) -> Result<bool, Error>,
) -> Result<(), Error> {
    let reader = &source.reader;
    let mut position = 0u64;
    while position < source.len {
        let bytes = match &reader.mapped {
            Some(map) => {
                let from = usize::try_from(position).unwrap_or(usize::MAX);
                let to = usize::try_from(source.len).unwrap_or(usize::MAX);
                if to > map.len() {
                    return Err(corruption(
                        &reader.path,
                        map.len() as u64,
                        log_format::DecodeError::Incomplete { needed: 0 },
                    ));
                }
                map.slice(from..to)
            }
            None => {
                let header = reader.header_at(position)?;
                let want = (source.len - position)
                    .min(READ_CHUNK)
                    .max(u64::from(header.length));
                let mut buf = BytesMut::zeroed(usize::try_from(want).unwrap_or(usize::MAX));
                reader
                    .file
                    .read_exact_at(&mut buf, position)
                    .map_err(io_error("read segment to clean", &reader.path))?;
                buf.freeze()
            }
        };
        let mut scanner = BytesScanner::new(bytes, position, *limits);
        let mut progressed = false;
        for scanned in scanner.by_ref() {
            match scanned {
                Scanned::Batch(batch) => {
                    position += batch.bytes().len() as u64;
                    progressed = true;
                    if !f(batch)? {
                        return Ok(());
                    }
                }
                Scanned::Incomplete { .. } => break,
                Scanned::Corrupt(corrupt) => {
                    return Err(Error::Corruption {
                        path: reader.path.clone(),
                        position: corrupt.position,
                        source: corrupt,
                    });
                }
            }
        }
        if !progressed {
            return Err(corruption(
                &reader.path,
                position,
                log_format::DecodeError::Incomplete { needed: 0 },
            ));
        }
    }
    Ok(())
}

/// Buffered positioned writes to the cleaned log.
struct Writer<'a> {
    file: &'a dyn FileHandle,
    path: &'a Path,
    pending: BytesMut,
    written: u64,
}

impl Writer<'_> {
    /// Where the next frame starts.
    fn position(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    fn write(&mut self, frame: &[u8]) -> Result<(), Error> {
        self.pending.extend_from_slice(frame);
        if self.pending.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all_at(&self.pending, self.written)
            .map_err(io_error("write cleaned segment", self.path))?;
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}
