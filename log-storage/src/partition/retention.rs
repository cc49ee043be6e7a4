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

use super::markers::write_log_start;
use super::segment::Segment;
use super::{Log, watermarks};
use crate::error::{Error, io_error};
use crate::io::durable::remove_if_present;
use crate::util::lock;

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
        let _maintenance = lock(&self.maintenance);
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
            self.trim_epochs(&mut state.epochs, before_offset);
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
    /// tools can judge at any time). A log whose cleanup policy does not
    /// delete (`compact` alone) keeps everything.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionReport, Error> {
        let _maintenance = lock(&self.maintenance);
        if !self.config().cleanup.cleanup_policy.deletes() {
            let state = lock(&self.state);
            return Ok(RetentionReport {
                log_start: watermarks(&state, 0).log_start,
                ..RetentionReport::default()
            });
        }
        let max_age = self.config().retention_max_age;
        let max_bytes = self.config().retention_max_bytes;
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
            self.trim_epochs(&mut lock(&self.state).epochs, log_start);
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

    /// Drops the epoch history's entries wholly below `log_start`. A
    /// failure only leaves entries that no reader can ask about any more
    /// (their records are gone), so it is logged, not returned.
    fn trim_epochs(&self, epochs: &mut super::EpochHistory, log_start: u64) {
        if let Err(err) = epochs.trim_below(&*self.fs, &self.dir, log_start) {
            tracing::warn!(dir = %self.dir.display(), error = %err, "epoch history not trimmed");
        }
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
                .try_for_each(|path| {
                    remove_if_present(&*self.fs, path, "delete segment file").map(|_| ())
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
}
