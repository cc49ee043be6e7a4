//! Crash recovery of one partition, run by [`Log::open`](crate::Log::open):
//! lists the directory, finishes what a crash interrupted (temp files,
//! indexes without a segment, segments below a persisted log start),
//! reopens the active index, verifies every byte a crash can have taken
//! back, cuts a torn tail, and rebuilds the idempotent producers' state.
//!
//! The rules (`RELIABILITY.md` 4, 12, 13):
//! - A valid clean-shutdown marker means no crash: nothing is scanned.
//! - Otherwise everything past the recovery point is unverified, whatever
//!   the index says: the scan of the active segment starts at or before
//!   it, and index entries past it are dropped and rebuilt.
//! - Past the recovery point the first bad byte starts a torn tail: it is
//!   cut (logged) and the epoch moves. Before it, damage is corruption:
//!   never cut, never served; the partition becomes read-only.
//! - A partition poisoned in this boot (its recovery point says so) trusts
//!   nothing past its last successful sync: the page cache may hold bytes
//!   the disk never got. They are cut, and the epoch moves.
//! - An unclean open after a reboot (a power loss may have dropped whole
//!   unsynced batches, which leaves no torn tail to see) moves the epoch.
//!
//! This module decides nothing about the write path; every file operation
//! goes through the [`Fs`] seam.

use std::path::Path;
use std::sync::Arc;

use log_index::{ActiveIndex, IndexLookup, Reopened};

use super::State;
use super::checkpoint::RecoveryPoint;
use super::epochs::EpochHistory;
use super::markers::CleanMarker;
use super::markers::read_log_start;
use super::prealloc::zero_tail;
use super::producer::{ProducerStates, read_producer_snapshot};
use super::roll::create_segment;
use super::sealed_window::verify_sealed_window;
use super::segment::{ScanEnd, ScanStop, Segment, SegmentIndex, scan_file};
use crate::config::LogConfig;
use crate::error::{Error, index_error, io_error};
use crate::io::durable::{remove_if_present, remove_synced};
use crate::io::{FileHandle, Fs, OpenMode};
use crate::layout::{self, FileKind};

/// Lists a partition directory: the segment base offsets, sorted, and
/// whether a clean-shutdown marker is there. Removes temp files and
/// indexes without a segment (a crash's leftovers, logged), finishes the
/// cleaner's committed swaps; leaves unknown files alone (logged).
fn list_partition_files(fs: &dyn Fs, dir: &Path) -> Result<(Vec<u64>, bool), Error> {
    let mut logs = Vec::new();
    let mut indexes = Vec::new();
    let mut swaps = Vec::new();
    let mut marker_present = false;
    for entry in fs
        .read_dir(dir)
        .map_err(io_error("list partition directory", dir))?
    {
        if entry.is_dir {
            continue;
        }
        match layout::classify(&entry.name) {
            FileKind::Log(base) => logs.push(base),
            FileKind::Index(base) => indexes.push(base),
            FileKind::Temp => {
                let path = dir.join(&entry.name);
                tracing::warn!(file = %path.display(), "removing temp file left by a crash");
                remove_synced(fs, &path)?;
            }
            FileKind::Swap { base, end } => swaps.push((base, end)),
            FileKind::CleanShutdown => marker_present = true,
            FileKind::Epoch => {}
            FileKind::Unknown => {
                tracing::warn!(file = %dir.join(&entry.name).display(), "leaving unknown file alone");
            }
        }
    }
    super::clean::finish_swaps(fs, dir, &swaps, &mut logs, &mut indexes)?;
    logs.sort_unstable();
    for base in indexes {
        if logs.binary_search(&base).is_err() {
            let path = layout::index_path(dir, base);
            tracing::warn!(file = %path.display(), "removing index without a segment");
            remove_synced(fs, &path)?;
        }
    }
    Ok((logs, marker_present))
}
/// Reopens the active segment's index, keeping its valid prefix, or starts
/// it over (logged) when it is missing, damaged or was sealed by a roll
/// that a crash interrupted.
fn reopen_active_index(
    fs: &dyn Fs,
    active: &Segment,
    config: &LogConfig,
    file_len: u64,
) -> Result<(ActiveIndex<Arc<dyn FileHandle>>, bool), Error> {
    let index_file = match fs.open(&active.index_path, OpenMode::ReadWrite) {
        Ok(file) => Some(file),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error("open index", &active.index_path)(err)),
    };
    let reopened = match index_file {
        Some(file) => match ActiveIndex::open_unsealed_in(
            file,
            &active.index_path,
            active.base_offset,
            config.index_interval_bytes,
            file_len,
        ) {
            Ok(reopened) => Some(reopened),
            Err(err) => {
                tracing::warn!(index = %active.index_path.display(), error = %err, "rebuilding active index");
                None
            }
        },
        None => {
            tracing::warn!(index = %active.index_path.display(), "active index missing; rebuilding it");
            None
        }
    };
    match reopened {
        Some(Reopened::Active { index, report }) => {
            if !report.is_clean() {
                tracing::warn!(
                    index = %active.index_path.display(),
                    entries_dropped = report.entries_dropped,
                    bytes_dropped = report.bytes_dropped(),
                    "cut the invalid tail of the active index"
                );
            }
            Ok((index, !report.is_clean()))
        }
        Some(Reopened::Sealed(_)) | None => {
            if fs
                .exists(&active.index_path)
                .map_err(io_error("check index", &active.index_path))?
            {
                remove_synced(fs, &active.index_path)?;
            }
            let file = fs
                .create_new(&active.index_path)
                .map_err(io_error("create index", &active.index_path))?;
            let index = ActiveIndex::create_in(
                file,
                &active.index_path,
                active.base_offset,
                config.index_interval_bytes,
            )
            .map_err(index_error("create index"))?;
            Ok((index, true))
        }
    }
}

/// Opens the segments of `dir` and recovers its state (see the module
/// docs): `point` is the recovery point read before, `boot_id` the current
/// boot's.
pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    config: &LogConfig,
    point: Option<RecoveryPoint>,
    boot_id: Option<[u8; 16]>,
) -> Result<State, Error> {
    let (mut logs, marker_present) = list_partition_files(fs, dir)?;
    let marker = if marker_present {
        let path = dir.join(layout::CLEAN_SHUTDOWN);
        let marker = fs
            .read(&path)
            .ok()
            .and_then(|bytes| CleanMarker::decode(&bytes));
        // The marker is consumed: a crash from now on must scan. The
        // removal is synced by the first sync leader (a stale marker that
        // came back would still have to match the active segment's length
        // to be trusted, and what it says was durable at the close).
        fs.remove_file(&path)
            .map_err(io_error("remove clean-shutdown marker", &path))?;
        marker
    } else {
        None
    };
    let log_start = read_log_start(fs, dir)?;
    let mut epochs = EpochHistory::read(fs, dir, log_start)?;

    if logs.is_empty() {
        let segment = create_segment(fs, dir, 0, config, true)?;
        return Ok(State {
            segments: vec![segment],
            next_offset: 0,
            log_start,
            last_append_time: i64::MIN,
            read_only: None,
            epochs,
            closed: false,
            producers: ProducerStates::default(),
            undeleted: Vec::new(),
            pending_rolls: Vec::new(),
            dir_unsynced: marker_present,
            free_space: None,
            gathered: Default::default(),
        });
    }
    remove_segments_below_start(fs, dir, &mut logs, log_start)?;
    let mut segments = open_segments(fs, dir, &logs, config)?;
    let clean = match segments.last() {
        Some(last) => {
            marker.filter(|m| m.active_base == last.base_offset && m.active_len == last.len)
        }
        None => None,
    };
    let same_boot = point.is_some_and(|p| p.same_boot(boot_id));
    let poisoned = clean.is_none() && same_boot && point.is_some_and(|p| p.poisoned);
    let mut move_epoch = false;
    if clean.is_none() && verify_sealed_window(fs, dir, &mut segments, point, poisoned)? {
        move_epoch = true;
    }

    let mut read_only = None;
    let Some(active) = segments.last_mut() else {
        return Err(Error::Closed {
            dir: dir.to_path_buf(),
        });
    };
    let (mut index, index_rebuilt) = reopen_active_index(fs, active, config, active.len)?;
    let base = active.base_offset;
    // How much of the active segment is known durable: all of it after a
    // clean close, else what the recovery point says of this segment (a
    // point naming an older segment says nothing of this one).
    let synced_len = match clean {
        Some(_) => active.len,
        None => point
            .filter(|p| p.segment_base == base)
            .map_or(0, |p| p.position.min(active.len)),
    };
    if clean.is_none() && !same_boot {
        tracing::warn!(dir = %dir.display(), "unclean open after a reboot: moving the epoch");
        move_epoch = true;
    }
    if poisoned && active.len > synced_len {
        cut_tail(
            active,
            &mut index,
            synced_len,
            "what a failed fdatasync covered",
        )?;
        move_epoch = true;
    }
    if clean.is_none() {
        // Index entries at or past the synced length point at bytes not
        // verified yet: the scan below re-adds them.
        index
            .truncate_to_position(synced_len)
            .map_err(index_error("cut the active index to the recovery point"))?;
    }
    let end = match clean {
        // A clean shutdown with its index whole: nothing to scan. The
        // marker knows the end; only the first batch's header is read (its
        // append time drives the roll by age).
        Some(m) if !index_rebuilt => ScanEnd {
            valid_len: active.len,
            end_offset: (active.len > 0).then_some(m.next_offset),
            first_append_time: if active.len > 0 {
                Some(active.header_at(0)?.append_time)
            } else {
                None
            },
            max_append_time: if active.len > 0 {
                m.last_append_time
            } else {
                i64::MIN
            },
            stop: None,
        },
        // After a crash (or with a rebuilt index): check every batch past
        // the last index entry (at or before the recovery point), feeding
        // the index as it goes.
        _ => {
            let resume = index
                .last_entry()
                .map_or(0, |entry| u64::from(entry.position));
            let resume_after = index.resume_position();
            scan_file(
                &*active.file,
                &active.log_path,
                resume,
                active.len,
                |position, header| {
                    if position >= resume_after {
                        let relative = u32::try_from(header.base_offset - base).unwrap_or(u32::MAX);
                        index
                            .on_batch(relative, position as u32, header.length, header.append_time)
                            .map_err(index_error("rebuild index"))?;
                    }
                    Ok(())
                },
            )?
        }
    };
    let mut next_offset = end
        .end_offset
        .or_else(|| {
            index
                .last_entry()
                .map(|e| base + u64::from(e.relative_offset))
        })
        .unwrap_or(base);
    if let Some(stop) = end.stop {
        let cut_at = end.valid_len;
        // Past the recovery point nothing was synced, and unsynced writes
        // may reach the disk in any order: whatever is wrong there is crash
        // damage, cut from the first bad byte even if a valid batch
        // follows. Before it, data was synced: damage there is corruption,
        // reported and never cut.
        if cut_at >= synced_len {
            // Zeros to the end are a preallocated runway (`prealloc.rs`),
            // not a torn batch: in this boot the page cache kept every
            // write, and after a reboot the epoch moves anyway.
            if zero_tail(&*active.file, &active.log_path, cut_at, active.len)? {
                tracing::info!(
                    segment = %active.log_path.display(),
                    position = cut_at,
                    bytes_cut = active.len - cut_at,
                    "cutting the zeroed runway"
                );
                cut_to(active, &mut index, cut_at)?;
            } else {
                cut_tail(active, &mut index, cut_at, "a torn tail")?;
                move_epoch = true;
            }
        } else {
            let position = match stop {
                ScanStop::Corrupt(c) => c.position,
                ScanStop::Incomplete => cut_at,
            };
            let damage = active.stop_error(stop, position);
            tracing::error!(error = %damage, "partition is read-only: serving up to the damage, taking no writes");
            active.len = cut_at;
            read_only = Some(Arc::new(damage));
        }
    }
    // What the scan found may sit only in the page cache (a process crash
    // keeps written pages): make it durable before calling it durable.
    // After a clean close it was synced already.
    if clean.is_none() {
        active
            .file
            .sync_data()
            .map_err(io_error("sync recovered segment", &active.log_path))?;
    }
    active.end_offset = next_offset;
    active.first_append_time = end.first_append_time;
    active.max_append_time = end.max_append_time;
    active.index = SegmentIndex::Active(index);
    let last_append_time = clean
        .map(|m| m.last_append_time)
        .unwrap_or(end.max_append_time)
        .max(end.max_append_time);
    if let Some(m) = clean {
        next_offset = next_offset.max(m.next_offset);
    }
    if move_epoch {
        // The new epoch starts where the recovered log ends.
        let next = epochs.latest() + 1;
        epochs.start(fs, dir, next, next_offset)?;
    }
    Ok(State {
        producers: recover_producers(fs, dir, &segments, next_offset)?,
        segments,
        next_offset,
        log_start,
        last_append_time,
        read_only,
        epochs,
        closed: false,
        undeleted: Vec::new(),
        pending_rolls: Vec::new(),
        dir_unsynced: marker_present,
        free_space: None,
        gathered: Default::default(),
    })
}

/// Cuts the active segment (and its index) back to `len` bytes, durably,
/// logging what was cut and why.
fn cut_tail(
    active: &mut Segment,
    index: &mut ActiveIndex<Arc<dyn FileHandle>>,
    len: u64,
    what: &str,
) -> Result<(), Error> {
    tracing::warn!(
        segment = %active.log_path.display(),
        position = len,
        bytes_cut = active.len - len,
        "cutting {what}"
    );
    cut_to(active, index, len)
}

/// Cuts the active segment (and its index) back to `len` bytes, durably.
fn cut_to(
    active: &mut Segment,
    index: &mut ActiveIndex<Arc<dyn FileHandle>>,
    len: u64,
) -> Result<(), Error> {
    active
        .file
        .set_len(len)
        .map_err(io_error("cut torn tail", &active.log_path))?;
    active
        .file
        .sync_data()
        .map_err(io_error("sync after cut", &active.log_path))?;
    index
        .truncate_to_position(len)
        .map_err(index_error("cut index with the torn tail"))?;
    active.len = len;
    Ok(())
}

/// Finishes an interrupted `delete_records` or retention pass: the segments
/// that lie entirely below the persisted log start (the next segment starts
/// at or below it) are deleted, oldest first. The active segment stays.
fn remove_segments_below_start(
    fs: &dyn Fs,
    dir: &Path,
    logs: &mut Vec<u64>,
    log_start: u64,
) -> Result<(), Error> {
    let doomed = (0..logs.len().saturating_sub(1))
        .take_while(|&i| logs[i + 1] <= log_start)
        .count();
    if doomed == 0 {
        return Ok(());
    }
    for base in logs.drain(..doomed) {
        for path in [layout::log_path(dir, base), layout::index_path(dir, base)] {
            remove_if_present(fs, &path, "delete segment below the log start")?;
        }
        tracing::warn!(
            dir = %dir.display(),
            segment = base,
            log_start,
            "deleted a segment below the log start that an interrupted deletion left"
        );
    }
    fs.sync_dir(dir)
        .map_err(io_error("sync partition directory", dir))
}

/// Opens every segment file of `logs` (the last one for writing).
fn open_segments(
    fs: &dyn Fs,
    dir: &Path,
    logs: &[u64],
    config: &LogConfig,
) -> Result<Vec<Segment>, Error> {
    let mut segments = Vec::with_capacity(logs.len());
    for (i, &base) in logs.iter().enumerate() {
        let log_path = layout::log_path(dir, base);
        let mode = if i + 1 == logs.len() {
            OpenMode::ReadWrite
        } else {
            OpenMode::Read
        };
        // Sealed segments are not opened here (a pool of open files opens
        // read-only handles on first use): only their length is read.
        let file = fs
            .open(&log_path, mode)
            .map_err(io_error("open segment", &log_path))?;
        let len = match mode {
            OpenMode::ReadWrite => file.len(),
            OpenMode::Read => fs.file_len(&log_path),
        }
        .map_err(io_error("stat segment", &log_path))?;
        let end_offset = logs.get(i + 1).copied().unwrap_or(base);
        segments.push(Segment {
            id: super::segment::next_segment_id(),
            base_offset: base,
            index_path: layout::index_path(dir, base),
            log_path,
            file,
            len,
            zeroed_end: 0,
            end_offset,
            first_append_time: None,
            max_append_time: i64::MIN,
            index_interval_bytes: config.index_interval_bytes,
            index: SegmentIndex::Unloaded,
            mapped: None,
            map_failed: false,
        });
    }
    Ok(segments)
}

/// Rebuilds the idempotent producer state: the snapshot (written before
/// every roll and at a clean close, covering every batch below its
/// offset), then every batch from its offset to the end, in whichever
/// segments they are (Kafka rebuilds producer state from the log the same
/// way). Without a usable snapshot, the whole log is replayed.
fn recover_producers(
    fs: &dyn Fs,
    dir: &Path,
    segments: &[Segment],
    next_offset: u64,
) -> Result<ProducerStates, Error> {
    let Some(first) = segments.first() else {
        return Ok(ProducerStates::default());
    };
    let snapshot = match read_producer_snapshot(fs, dir) {
        Ok(snapshot) => snapshot,
        Err(reason) => {
            tracing::warn!(%reason, "ignoring the producer state snapshot; replaying the log");
            None
        }
    };
    let (from, mut states) = match snapshot {
        Some((offset, states)) if offset <= next_offset => (offset, states),
        Some((offset, _)) => {
            tracing::warn!(
                dir = %dir.display(),
                snapshot = offset,
                next_offset,
                "the producer state snapshot is past the log end; replaying the log"
            );
            (first.base_offset, ProducerStates::default())
        }
        None => (first.base_offset, ProducerStates::default()),
    };
    if from >= next_offset {
        return Ok(states);
    }
    let at = segments
        .partition_point(|segment| segment.base_offset <= from)
        .saturating_sub(1);
    if at + 1 < segments.len() {
        tracing::info!(
            dir = %dir.display(),
            from,
            segments = segments.len() - at,
            "replaying producer state from sealed segments"
        );
    }
    for segment in &segments[at..] {
        let start = match &segment.index {
            SegmentIndex::Active(index) if from > segment.base_offset => u64::from(
                index
                    .lookup_offset(u32::try_from(from - segment.base_offset).unwrap_or(u32::MAX))
                    .position,
            ),
            _ => 0,
        };
        scan_file(
            &*segment.file,
            &segment.log_path,
            start,
            segment.len,
            |_, header| {
                if header.base_offset >= from {
                    states.record(header);
                }
                Ok(())
            },
        )?;
    }
    Ok(states)
}
