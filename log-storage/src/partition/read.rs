//! The read side of one partition: [`Log::read`] (batches from an offset,
//! as stored, up to a byte budget, never past what the isolation allows),
//! [`Log::offset_for_time`], [`Log::lag`], [`Log::usage`] and
//! [`Log::wait_for`], the notification long polls and subscriptions sleep
//! on. Readers take the state lock only to look up the index and snapshot
//! what they read, then hop headers and copy without it.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use log_format::DecodeError;

use super::prepare::find;
use super::segment::SegmentIndex;
use super::{Isolation, LatencySummary, Log, ReadResult, SyncState, Watermarks, watermarks};
use crate::error::{Error, io_error};
use crate::util::lock;

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
    /// How long each `fdatasync` of a segment took, since open.
    pub sync_latency: LatencySummary,
    /// How long each durable append waited between its `write(2)` and its
    /// ack (queueing for a group commit plus the sync it rode), since open.
    pub durable_wait: LatencySummary,
}

impl Log {
    /// Reads whole batches from `offset`: at most `max_bytes` (but always
    /// at least one batch when one is there), up to the durable or written
    /// end as `isolation` says.
    pub fn read(
        &self,
        offset: u64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, Error> {
        // A sealed segment's index and mapping are prepared first, without
        // the lock (`prepare.rs`); the second pass reads from memory.
        let mut prepared = false;
        let (marks, visible_end, entry, segment_end, next_segment, reader, empty) = loop {
            let state = lock(&self.state);
            let durable_end = lock(&self.sync).durable_end;
            let marks = watermarks(&state, durable_end);
            let visible_end = match isolation {
                Isolation::Durable => durable_end.min(marks.log_end),
                Isolation::Written => marks.log_end,
            };
            if offset < marks.log_start || offset > marks.log_end {
                return Err(Error::OffsetOutOfRange {
                    requested: offset,
                    log_start: marks.log_start,
                    log_end: marks.log_end,
                });
            }
            let empty = ReadResult {
                batches: Bytes::new(),
                batch_count: 0,
                next_offset: offset,
                watermarks: marks,
            };
            if offset >= visible_end {
                return Ok(empty);
            }
            let at = state
                .segments
                .partition_point(|segment| segment.base_offset <= offset)
                .saturating_sub(1);
            let sealed = at + 1 < state.segments.len();
            let segment = &state.segments[at];
            let unprepared = matches!(segment.index, SegmentIndex::Unloaded)
                || (sealed && segment.mapped.is_none() && !segment.map_failed);
            if unprepared && !prepared {
                let base = segment.base_offset;
                drop(state);
                self.prepare_segment(base, true)?;
                prepared = true;
                continue;
            }
            // From here on the segment is read without the partition lock:
            // bytes below the published length never change.
            break (
                marks,
                visible_end,
                segment.index_floor(offset),
                segment.len,
                sealed.then_some(segment.end_offset),
                segment.reader(),
                empty,
            );
        };
        // Hop batch headers from the floor entry to the batch holding `offset`.
        let mut position = u64::from(entry.position);
        let start = loop {
            if position >= segment_end {
                // Past the last batch of a sealed segment (a cleaner's
                // gap): the next segment holds what comes next.
                return match next_segment {
                    Some(next) if next > offset => self.read(next, max_bytes, isolation),
                    _ => Ok(empty),
                };
            }
            let header = reader.header_at(position)?;
            if header.last_offset() >= offset {
                break position;
            }
            position += u64::from(header.length);
        };
        // Extend over whole visible batches up to max_bytes (at least one).
        let mut end = start;
        let mut next_offset = offset;
        let mut count = 0usize;
        while end < segment_end {
            let header = reader.header_at(end)?;
            if header.base_offset >= visible_end {
                break;
            }
            let len = u64::from(header.length);
            if count > 0 && (end - start + len) as usize > max_bytes {
                break;
            }
            end += len;
            count += 1;
            next_offset = header.last_offset() + 1;
            if (end - start) as usize >= max_bytes {
                break;
            }
        }
        let super::segment::SegmentReader { file, mapped, path } = reader;
        let buf = match mapped {
            Some(map) => {
                let range = usize::try_from(start).unwrap_or(usize::MAX)
                    ..usize::try_from(end).unwrap_or(usize::MAX);
                if range.end > map.len() {
                    return Err(super::segment::corruption(
                        &path,
                        start,
                        DecodeError::Incomplete { needed: 0 },
                    ));
                }
                map.slice(range)
            }
            None => {
                let mut buf = BytesMut::zeroed(usize::try_from(end - start).unwrap_or(usize::MAX));
                file.read_exact_at(&mut buf, start)
                    .map_err(io_error("read batches", &path))?;
                buf.freeze()
            }
        };
        // Verify before serving: a damaged range is never served. The
        // structure was verified on append; the checksums prove the bytes
        // are still those.
        match log_format::check_checksums(&buf, start) {
            Ok(_) => {}
            Err(DecodeError::Corrupt(source)) => {
                return Err(Error::Corruption {
                    path,
                    position: source.position,
                    source,
                });
            }
            Err(err @ DecodeError::Incomplete { .. }) => {
                return Err(super::segment::corruption(&path, start, err));
            }
        }
        Ok(ReadResult {
            batches: buf,
            batch_count: count,
            next_offset,
            watermarks: marks,
        })
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
            sync_latency: self.sync_latency.summary(),
            durable_wait: self.durable_wait.summary(),
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
            sync = match isolation {
                Isolation::Durable => SyncState::sleep(
                    sync,
                    &self.synced,
                    |s| &mut s.sleeping_on_synced,
                    Some(deadline - now),
                ),
                Isolation::Written => SyncState::sleep(
                    sync,
                    &self.appended,
                    |s| &mut s.sleeping_on_appended,
                    Some(deadline - now),
                ),
            };
        }
        drop(sync);
        self.watermarks()
    }
}
