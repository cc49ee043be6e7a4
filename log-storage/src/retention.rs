//! What moves the start of a partition and what finds offsets by time:
//! [`Log::delete_records`], [`Log::enforce_retention`] (by age and by size,
//! whole sealed segments only), [`Log::offset_for_time`], and
//! [`Log::wait_for`], the notification the server's long polls and
//! subscriptions sleep on.
//!
//! Retention is judged on each segment's largest server append time (never
//! a file's mtime, never producer time). It never deletes the active
//! segment. Readers that took a segment's file handle before it was deleted
//! finish their read (the file is unlinked, not truncated, and nothing is
//! mapped), and later reads below the new start get
//! [`Error::OffsetOutOfRange`] with the earliest offset. This module starts
//! no thread: the store calls `enforce_retention` on its own schedule.

use std::path::Path;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use crate::error::{Error, io_error};
use crate::io::Fs;
use crate::log::{Isolation, Log, Watermarks, crc32, lock, watermarks, write_atomic};
use crate::naming;
use crate::prepare::find;
use crate::segment::Segment;

/// How far a reader at some offset is behind the log end
/// ([`Log::lag`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lag {
    /// Records between the offset and the log end.
    pub records: u64,
    /// Stored bytes (whole batches) from the batch holding the offset to
    /// the log end.
    pub bytes: u64,
    /// Append time of the newest batch minus that of the batch holding the
    /// offset, in ms (0 when caught up).
    pub time_ms: u64,
}

impl Lag {
    /// No lag: the reader is at (or past) the log end.
    pub const CAUGHT_UP: Lag = Lag {
        records: 0,
        bytes: 0,
        time_ms: 0,
    };
}

/// A partition's footprint ([`Log::usage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of batches stored, all segments.
    pub size_bytes: u64,
    /// Segment files.
    pub segment_count: usize,
    /// Append time of the newest batch, ms since the Unix epoch (`None`
    /// when the partition is empty).
    pub last_append_time: Option<i64>,
    /// Group-commit `fdatasync`s led since the partition was opened.
    pub syncs: u64,
}

/// What one retention pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Base offsets of the deleted segments.
    pub deleted_segments: Vec<u64>,
    /// Bytes of log deleted.
    pub deleted_bytes: u64,
    /// The first offset still stored.
    pub log_start: u64,
}

impl Log {
    /// Moves the log start to `before_offset`: records below it are no
    /// longer served, and whole segments below it are deleted. Records
    /// below `before_offset` are made durable first and the new start is
    /// persisted (atomic write) before this returns. Returns the new log
    /// start.
    ///
    /// # Errors
    ///
    /// [`Error::OffsetOutOfRange`] when `before_offset` is past the log end.
    pub fn delete_records(&self, before_offset: u64) -> Result<u64, Error> {
        // The new start must not outlive the records before it: make them
        // durable first, or a crash could leave the start past the end.
        if before_offset > lock(&self.sync).durable_end {
            self.sync()?;
        }
        let mut state = lock(&self.state);
        let durable_end = lock(&self.sync).durable_end;
        let marks = watermarks(&state, durable_end);
        if before_offset > marks.log_end {
            return Err(Error::OffsetOutOfRange {
                requested: before_offset,
                log_start: marks.log_start,
                log_end: marks.log_end,
            });
        }
        // A start at or below the current one changes nothing, but still
        // deletes what an interrupted call left below it.
        let before_offset = before_offset.max(marks.log_start);
        if before_offset > state.log_start {
            write_log_start(&*self.fs, &self.dir, before_offset)?;
            state.log_start = before_offset;
        }
        // Whole segments entirely below the new start go.
        let doomed = state
            .segments
            .iter()
            .enumerate()
            .take(state.segments.len().saturating_sub(1))
            .filter(|(i, _)| {
                state
                    .segments
                    .get(i + 1)
                    .is_some_and(|next| next.base_offset <= before_offset)
            })
            .count();
        let removed: Vec<Segment> = state.segments.drain(..doomed).collect();
        drop(state);
        self.changed();
        self.delete_segment_files(removed)?;
        tracing::info!(dir = %self.dir.display(), log_start = before_offset, segments = doomed, "records deleted");
        Ok(before_offset)
    }

    /// Deletes the oldest sealed segments that retention no longer keeps:
    /// those whose largest append time is older than
    /// `config.retention_max_age`, then, while the partition is larger than
    /// `config.retention_max_bytes`, the oldest ones. `now_ms` is the
    /// current time, ms since the Unix epoch (a parameter, so tests and
    /// tools can judge at any time).
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, Error> {
        let max_age = self.config.retention_max_age;
        let max_bytes = self.config.retention_max_bytes;
        // Decide from a snapshot of the sealed segments; their newest
        // append times are read (when not known yet) without the lock.
        let (sealed, mut total): (Vec<(u64, u64)>, u64) = {
            let state = lock(&self.state);
            let sealed = state.segments.len().saturating_sub(1);
            (
                state.segments[..sealed]
                    .iter()
                    .map(|s| (s.base_offset, s.len))
                    .collect(),
                state.segments.iter().map(|s| s.len).sum(),
            )
        };
        let mut doomed = 0;
        while doomed < sealed.len() {
            let (base, segment_len) = sealed[doomed];
            let too_old = match max_age {
                Some(age) => {
                    let age = i64::try_from(age.as_millis()).unwrap_or(i64::MAX);
                    let newest = self.segment_max_time(base)?.unwrap_or(i64::MIN);
                    now_ms.saturating_sub(newest) > age
                }
                None => false,
            };
            let too_big = max_bytes
                .is_some_and(|max| total.saturating_sub(segment_len) >= max && total > max);
            if !(too_old || too_big) {
                break;
            }
            total -= segment_len;
            doomed += 1;
        }
        let mut state = lock(&self.state);
        // Only segments still there, from the front, never the active one
        // (delete-records may have taken some meanwhile).
        let last_doomed = doomed.checked_sub(1).map(|i| sealed[i].0);
        let doomed = state
            .segments
            .iter()
            .take(state.segments.len().saturating_sub(1))
            .take_while(|s| last_doomed.is_some_and(|last| s.base_offset <= last))
            .count();
        let removed: Vec<Segment> = state.segments.drain(..doomed).collect();
        let log_start = watermarks(&state, 0).log_start;
        drop(state);
        let report = RetentionReport {
            deleted_segments: removed.iter().map(|s| s.base_offset).collect(),
            deleted_bytes: removed.iter().map(|s| s.len).sum(),
            log_start,
        };
        self.delete_segment_files(removed)?;
        if !report.deleted_segments.is_empty() {
            tracing::info!(
                dir = %self.dir.display(),
                segments = report.deleted_segments.len(),
                bytes = report.deleted_bytes,
                log_start,
                "retention deleted segments"
            );
        }
        Ok(report)
    }

    /// Removes the files of segments already taken out of the state (with
    /// any that an earlier call failed to delete), oldest first, syncing
    /// the directory after each, so a crash never leaves a hole: at worst
    /// the oldest segments come back (and recovery deletes those below a
    /// persisted log start). On an error the segments not yet deleted wait
    /// in the state, invisible to reads, for the next call or pass.
    fn delete_segment_files(&self, removed: Vec<Segment>) -> Result<(), Error> {
        let mut doomed = std::mem::take(&mut lock(&self.state).undeleted);
        doomed.extend(removed);
        let mut doomed = doomed.into_iter();
        while let Some(segment) = doomed.next() {
            let result = [&segment.log_path, &segment.index_path]
                .into_iter()
                .try_for_each(|path| match self.fs.remove_file(path) {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(err) => Err(io_error("delete segment file", path)(err)),
                })
                .and_then(|()| {
                    self.fs
                        .sync_dir(&self.dir)
                        .map_err(io_error("sync partition directory", &self.dir))
                });
            if let Err(err) = result {
                let mut state = lock(&self.state);
                let left: Vec<Segment> = std::iter::once(segment).chain(doomed).collect();
                state.undeleted.splice(0..0, left);
                return Err(err);
            }
        }
        Ok(())
    }

    /// The first offset whose server append time is `>= time_ms`, or `None`
    /// when every record is older (the caller then uses the log end).
    pub fn offset_for_time(&self, time_ms: i64) -> Result<Option<u64>, Error> {
        let bases: Vec<u64> = lock(&self.state)
            .segments
            .iter()
            .map(|s| s.base_offset)
            .collect();
        for base in bases {
            match self.segment_max_time(base)? {
                Some(newest) if newest >= time_ms => {}
                _ => continue,
            }
            let (segment, start, log_start) = {
                let state = lock(&self.state);
                let log_start = watermarks(&state, 0).log_start;
                let Some(at) = find(&state.segments, base) else {
                    continue;
                };
                let segment = &state.segments[at];
                (
                    segment.detached(),
                    segment.time_scan_start(time_ms),
                    log_start,
                )
            };
            let reader = segment.reader();
            let mut position = u64::from(start.position);
            while position < segment.len {
                let header = reader.header_at(position)?;
                if header.append_time >= time_ms {
                    return Ok(Some(header.base_offset.max(log_start)));
                }
                position += u64::from(header.length);
            }
        }
        Ok(None)
    }

    /// How far a reader whose next offset is `offset` is behind the log
    /// end: in records, in stored bytes and in append time. Offsets below
    /// the log start count from the log start; past the end, lag is zero.
    pub fn lag(&self, offset: u64) -> Result<Lag, Error> {
        let (base, newest) = {
            let state = lock(&self.state);
            let marks = watermarks(&state, 0);
            let offset = offset.max(marks.log_start);
            if offset >= marks.log_end {
                return Ok(Lag::CAUGHT_UP);
            }
            let at = state
                .segments
                .partition_point(|segment| segment.base_offset <= offset)
                .saturating_sub(1);
            // The active segment's newest time is always known.
            let newest = state
                .segments
                .last()
                .map_or(i64::MIN, |s| s.max_append_time);
            (state.segments[at].base_offset, newest)
        };
        self.prepare_segment(base, false)?;
        let (segment, entry, after, marks) = {
            let state = lock(&self.state);
            let marks = watermarks(&state, 0);
            let at = find(&state.segments, base).unwrap_or(0);
            let segment = &state.segments[at];
            let offset = offset.max(marks.log_start);
            let after: u64 = state.segments[at..].iter().map(|s| s.len).sum();
            (
                segment.detached(),
                segment.index_floor(offset),
                after,
                marks,
            )
        };
        let offset = offset.max(marks.log_start);
        if offset >= marks.log_end {
            return Ok(Lag::CAUGHT_UP);
        }
        let reader = segment.reader();
        let mut position = u64::from(entry.position);
        let mut oldest = newest;
        while position < segment.len {
            let header = reader.header_at(position)?;
            if header.last_offset() >= offset {
                oldest = header.append_time;
                break;
            }
            position += u64::from(header.length);
        }
        Ok(Lag {
            records: marks.log_end - offset,
            bytes: after.saturating_sub(position),
            time_ms: u64::try_from(newest.saturating_sub(oldest)).unwrap_or(0),
        })
    }

    /// The partition's size, segment count and newest append time.
    pub fn usage(&self) -> Result<Usage, Error> {
        let (size_bytes, segment_count, last) = {
            let state = lock(&self.state);
            (
                state.segments.iter().map(|s| s.len).sum(),
                state.segments.len(),
                state
                    .segments
                    .iter()
                    .rev()
                    .find(|s| s.len > 0)
                    .map(|s| s.base_offset),
            )
        };
        let last_append_time = match last {
            Some(base) => self.segment_max_time(base)?,
            None => None,
        };
        Ok(Usage {
            size_bytes,
            segment_count,
            last_append_time,
            syncs: self.syncs.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Waits until the log end (with [`Isolation::Written`]) or the durable
    /// end (with [`Isolation::Durable`]) passes `offset`, or `timeout`
    /// elapses, by notification (no polling). Returns the watermarks then.
    pub fn wait_for(&self, offset: u64, isolation: Isolation, timeout: Duration) -> Watermarks {
        let deadline = Instant::now() + timeout;
        // Only the sync lock is held while waiting (the state lock is always
        // taken before it, never after, elsewhere).
        let mut sync = lock(&self.sync);
        loop {
            let end = match isolation {
                Isolation::Durable => sync.durable_end,
                Isolation::Written => sync.written_end,
            };
            let now = Instant::now();
            if end > offset || now >= deadline {
                break;
            }
            let condvar = match isolation {
                Isolation::Durable => &self.synced,
                Isolation::Written => &self.appended,
            };
            sync = condvar
                .wait_timeout(sync, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        drop(sync);
        self.watermarks()
    }
}

/// Persists the log start offset (atomic replace).
fn write_log_start(fs: &dyn Fs, dir: &Path, log_start: u64) -> Result<(), Error> {
    let mut bytes = log_start.to_le_bytes().to_vec();
    let crc = crc32(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    write_atomic(fs, &dir.join(naming::LOG_START), &bytes)
}

/// Reads the persisted log start offset (0 when none was persisted).
pub(crate) fn read_log_start(fs: &dyn Fs, dir: &Path) -> Result<u64, Error> {
    let path = dir.join(naming::LOG_START);
    match fs.read(&path) {
        Ok(bytes) => {
            if bytes.len() == 12 && crc32(&bytes[..8]).to_le_bytes() == bytes[8..12] {
                let mut value = [0u8; 8];
                value.copy_from_slice(&bytes[..8]);
                Ok(u64::from_le_bytes(value))
            } else {
                Err(Error::Corruption {
                    position: 0,
                    source: log_format::Corrupt {
                        position: 0,
                        field_position: 8,
                        what: log_format::Defect::HeaderChecksum,
                        expected: 12,
                        found: bytes.len() as u64,
                    },
                    path,
                })
            }
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(io_error("read log start", &path)(err)),
    }
}
