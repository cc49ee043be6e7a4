//! The log cleaner of one partition (compaction, Kafka's
//! `cleanup.policy=compact`): [`Log::clean`] keeps the latest record per
//! key in the log's old sealed segments, and [`Log::cleaner_stats`] tells
//! how dirty the log is. A store's cleaner threads call them; this module
//! starts no thread.
//!
//! A pass:
//! 1. takes the cleanable segments: sealed, before the recovery point's
//!    segment (so recovery never scans a cleaned segment as unsynced
//!    data), and older than `min_compaction_lag`; the active segment is
//!    never touched;
//! 2. fills the [`KeyMap`] with the latest offset of every key from the
//!    cleaner point (the first offset no pass has mapped) on, until the
//!    dirty segments end or the map is full, then (while it has room) with
//!    the tombstones below the cleaner point whose delete horizon has
//!    passed: a tombstone goes only when the map holds it;
//! 3. rewrites every cleanable segment below the map's end, merged in
//!    groups of at most `segment_max_bytes` (`rewrite.rs` says which
//!    records go), and swaps each group in (`swap.rs`, crash-safe at every
//!    step),
//!    after persisting `cleaned-below` (recovery never scans a segment
//!    below it as unsynced data);
//! 4. persists the new cleaner point (`cleaner-point`).
//!
//! Offsets never change: a cleaned log has gaps, which every reader skips.
//!
//! `cold.rs` is the other rewrite of sealed segments: it compresses the
//! batches of cold ones (`cold.compression.type`), with the same swap.
//! A pass holds the log's maintenance lock, so retention and
//! delete-records wait for it; appends and reads go on.

mod cold;
mod keymap;
mod rewrite;
mod swap;

use std::collections::{HashMap, HashSet, VecDeque};

use log_format::Limits;

pub use cold::CompressReport;
pub use keymap::{KEY_MAP_ENTRY_BYTES, KeyMap};
pub(crate) use swap::{cleaned_end, finish_swaps};

use self::rewrite::{Policy, Source, for_each_batch, write_group};
use super::Log;
use super::prepare::find;
use super::producer::BATCHES_PER_PRODUCER;
use crate::error::Error;
use crate::io::durable::{read_u64_file, write_u64_file};
use crate::layout;
use crate::util::{duration_ms, lock};

/// What the cleaner knows of a partition ([`Log::cleaner_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CleanerStats {
    /// The first offset no pass has mapped yet.
    pub cleaner_point: u64,
    /// Bytes of cleanable segments below the cleaner point.
    pub clean_bytes: u64,
    /// Bytes of cleanable segments from the cleaner point on.
    pub dirty_bytes: u64,
    /// `dirty_bytes / (clean_bytes + dirty_bytes)`; 0 when nothing is
    /// cleanable.
    pub dirty_ratio: f64,
    /// Whether a pass is due: the log compacts, and its dirty ratio reached
    /// `min_cleanable_dirty_ratio` or its oldest dirty record is older than
    /// `max_compaction_lag`.
    pub due: bool,
    /// When the last pass since open finished, ms since the Unix epoch.
    pub last_clean_time: Option<i64>,
    /// Bytes the passes since open reclaimed.
    pub bytes_reclaimed: u64,
    /// Passes since open.
    pub passes: u64,
    /// When the last pass (cleaning or cold compression) failed, if it did
    /// (the log is retried later).
    pub last_failure: Option<i64>,
    /// Every sealed segment below this offset is compressed (cold
    /// compression, [`Log::compress_cold`]); 0 before its first pass.
    pub compressed_below: u64,
    /// Cold segments compressed since open.
    pub cold_segments: u64,
    /// Bytes cold compression saved since open.
    pub cold_bytes_saved: u64,
}

/// What one [`Log::clean`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanReport {
    /// Segments rewritten.
    pub segments_before: usize,
    /// Segments they became.
    pub segments_after: usize,
    /// Bytes of the segments rewritten.
    pub bytes_before: u64,
    /// Bytes they hold now.
    pub bytes_after: u64,
    /// Records dropped (superseded, or tombstones past their horizon).
    pub records_removed: u64,
    /// Tombstones among them.
    pub tombstones_removed: u64,
    /// The cleaner point after the pass.
    pub cleaner_point: u64,
}

/// The cleaner's state of one log, behind `Log::cleaner`.
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// The cleaner point, once read from its file.
    point: Option<u64>,
    last_clean_time: Option<i64>,
    bytes_reclaimed: u64,
    passes: u64,
    last_failure: Option<i64>,
    /// A swap failed after its commit: recovery finishes it at the next
    /// open; until then the log is not cleaned again.
    swap_failed: bool,
    /// `compressed-below`, once read from its file.
    compressed_point: Option<u64>,
    cold_segments: u64,
    cold_bytes_saved: u64,
}

/// A cleanable segment, as the pass saw it.
#[derive(Debug, Clone, Copy)]
struct Span {
    id: u64,
    base: u64,
    len: u64,
    end_offset: u64,
}

/// The cleanable segments of a log and where its cleaner stands.
#[derive(Debug)]
struct Cleanable {
    spans: Vec<Span>,
    point: u64,
}

impl Log {
    /// How dirty the log is at `now_ms` (ms since the Unix epoch), and
    /// what its cleaner did since open.
    pub fn cleaner_stats(&self, now_ms: i64) -> Result<CleanerStats, Error> {
        let cleanable = self.cleanable(now_ms)?;
        let (clean, dirty) = cleanable.bytes();
        let ratio = if clean + dirty == 0 {
            0.0
        } else {
            dirty as f64 / (clean + dirty) as f64
        };
        let due = self.config().cleanup.cleanup_policy.compacts()
            && dirty > 0
            && (ratio >= self.config().cleanup.min_cleanable_dirty_ratio
                || self.past_max_lag(&cleanable, now_ms)?);
        let compressed_below = self.compressed_point()?;
        let cleaner = lock(&self.cleaner);
        Ok(CleanerStats {
            cleaner_point: cleanable.point,
            clean_bytes: clean,
            dirty_bytes: dirty,
            dirty_ratio: ratio,
            due: due && !cleaner.swap_failed,
            last_clean_time: cleaner.last_clean_time,
            bytes_reclaimed: cleaner.bytes_reclaimed,
            passes: cleaner.passes,
            last_failure: cleaner.last_failure,
            compressed_below,
            cold_segments: cleaner.cold_segments,
            cold_bytes_saved: cleaner.cold_bytes_saved,
        })
    }

    /// Cleans the log now (see the module docs), whatever its dirty ratio,
    /// judging tombstones and the compaction lag at `now_ms`. `map` is the
    /// caller's key map (reused across passes). `None` when there was
    /// nothing to clean: the log does not compact, or nothing is dirty.
    ///
    /// # Errors
    ///
    /// [`Error::CleanFailed`] when the key map cannot hold one batch's
    /// keys or a swap failed earlier, [`Error::Corruption`] for damage
    /// found in a segment read, I/O errors. The log's data is then as it
    /// was (a committed swap is finished by recovery); the failure is
    /// recorded in [`CleanerStats::last_failure`].
    pub fn clean(&self, now_ms: i64, map: &mut KeyMap) -> Result<Option<CleanReport>, Error> {
        let _maintenance = lock(&self.maintenance);
        if !self.config().cleanup.cleanup_policy.compacts() || self.is_closed() {
            return Ok(None);
        }
        self.rewrite_pass(
            now_ms,
            "cleaning",
            || self.clean_pass(now_ms, map),
            |cleaner, report| {
                cleaner.point = Some(report.cleaner_point);
                cleaner.last_clean_time = Some(now_ms);
                cleaner.bytes_reclaimed += report.bytes_before.saturating_sub(report.bytes_after);
                cleaner.passes += 1;
            },
        )
    }

    /// Runs one pass that rewrites sealed segments (`pass`: a cleaning or
    /// a cold compression), with the maintenance lock held by the caller:
    /// refused with [`Error::CleanFailed`] while a failed swap waits for
    /// the next open; a report is counted by `record`, a failure recorded
    /// in [`CleanerStats::last_failure`] and logged as `what` failing.
    fn rewrite_pass<R>(
        &self,
        now_ms: i64,
        what: &str,
        pass: impl FnOnce() -> Result<Option<R>, Error>,
        record: impl FnOnce(&mut CleanerState, &R),
    ) -> Result<Option<R>, Error> {
        if lock(&self.cleaner).swap_failed {
            return Err(Error::CleanFailed {
                dir: self.dir.clone(),
                reason: "a swap failed; the next open finishes it".into(),
            });
        }
        let result = pass();
        let mut cleaner = lock(&self.cleaner);
        match &result {
            Ok(Some(report)) => record(&mut cleaner, report),
            Ok(None) => {}
            Err(err) => {
                cleaner.last_failure = Some(now_ms);
                tracing::warn!(dir = %self.dir.display(), error = %err, "{what} failed; retrying later");
            }
        }
        result
    }

    fn clean_pass(&self, now_ms: i64, map: &mut KeyMap) -> Result<Option<CleanReport>, Error> {
        let cleanable = self.cleanable(now_ms)?;
        let point = cleanable.point;
        let dirty: Vec<Span> = cleanable
            .spans
            .iter()
            .filter(|s| s.end_offset > point && s.len > 0)
            .copied()
            .collect();
        if dirty.is_empty() {
            return Ok(None);
        }
        let limits = self.clean_limits();
        // The key map, from the cleaner point on.
        map.clear();
        let mut map_end = point;
        let mut full = false;
        for span in &dirty {
            let source = self.source(span)?;
            for_each_batch(&source, &limits, |batch| {
                for record in batch.records() {
                    if record.offset() < point {
                        continue;
                    }
                    if let Some(key) = record.key()
                        && !map.insert(key, record.offset())
                    {
                        full = true;
                        return Ok(false);
                    }
                }
                map_end = batch.header().last_offset() + 1;
                Ok(true)
            })?;
            if full {
                break;
            }
            map_end = span.end_offset;
        }
        if map_end <= point {
            return Err(Error::CleanFailed {
                dir: self.dir.clone(),
                reason: format!(
                    "the key map ({} keys) cannot hold the keys of the batch at offset {point}",
                    map.capacity()
                ),
            });
        }
        if !full {
            self.map_expired_tombstones(&cleanable.spans, point, now_ms, &limits, map)?;
        }
        let to_clean: Vec<Span> = cleanable
            .spans
            .iter()
            .filter(|s| s.base < map_end)
            .copied()
            .collect();
        let protected = self.protected_batches(&to_clean)?;
        let policy = Policy {
            map: &*map,
            now_ms,
            delete_retention_ms: duration_ms(self.config().cleanup.delete_retention),
            protected: &protected,
            limits,
        };
        let mut report = CleanReport {
            cleaner_point: map_end,
            ..CleanReport::default()
        };
        // Recovery never scans a segment below the guard as unsynced data,
        // which a cleaned segment must not be (an old recovery point may
        // name a position inside it): the guard moves before any swap.
        if let Some(last) = to_clean.last() {
            self.raise_cleaned_below(last.end_offset)?;
        }
        let mut forced = HashSet::new();
        for group in self.groups(&to_clean) {
            self.clean_group(group, &policy, &mut forced, &mut report)?;
        }
        write_u64_file(&*self.fs, &self.dir.join(layout::CLEANER_POINT), map_end)?;
        tracing::info!(
            dir = %self.dir.display(),
            segments_before = report.segments_before,
            segments_after = report.segments_after,
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            records_removed = report.records_removed,
            cleaner_point = map_end,
            "log cleaned"
        );
        Ok(Some(report))
    }

    /// Adds to the key map the tombstones below the cleaner point whose
    /// delete horizon has passed, while it has room, so that this pass
    /// finds the older records they supersede. A tombstone goes only when
    /// the map holds it (`rewrite.rs`): every older record of its key has
    /// then been judged by this pass, and one kept anyway (the last record
    /// of its group, or in a producer's last batch) keeps the tombstone.
    /// Without them, a tombstone cleaned in an earlier pass would go while
    /// an older value of its key, kept in that pass for one of those
    /// reasons, stayed: the deleted key would come back.
    fn map_expired_tombstones(
        &self,
        spans: &[Span],
        point: u64,
        now_ms: i64,
        limits: &Limits,
        map: &mut KeyMap,
    ) -> Result<(), Error> {
        for span in spans.iter().filter(|s| s.base < point && s.len > 0) {
            let source = self.source(span)?;
            let mut room = true;
            for_each_batch(&source, limits, |batch| {
                let expired = batch
                    .header()
                    .delete_horizon()
                    .is_some_and(|horizon| now_ms >= horizon);
                if !expired {
                    return Ok(true);
                }
                for record in batch.records() {
                    if record.offset() < point
                        && record.is_tombstone()
                        && let Some(key) = record.key()
                        && !map.insert(key, record.offset())
                    {
                        room = false;
                        return Ok(false);
                    }
                }
                Ok(true)
            })?;
            if !room {
                break;
            }
        }
        Ok(())
    }

    /// Cleans one group and swaps it in (or leaves it as it is when
    /// nothing in a single segment changed).
    fn clean_group(
        &self,
        group: &[Span],
        policy: &Policy<'_>,
        forced: &mut HashSet<Vec<u8>>,
        report: &mut CleanReport,
    ) -> Result<(), Error> {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            return Ok(());
        };
        let sources = group
            .iter()
            .map(|span| self.source(span))
            .collect::<Result<Vec<_>, _>>()?;
        let bytes_before: u64 = group.iter().map(|s| s.len).sum();
        let written = write_group(
            &*self.fs,
            &self.dir,
            self.config().index_interval_bytes,
            &sources,
            last.end_offset,
            policy,
            forced,
        );
        drop(sources);
        let (cleaned, removed) = match written {
            Ok(written) => written,
            Err(err) => {
                self.discard_cleaned(first.base);
                return Err(err);
            }
        };
        report.segments_before += group.len();
        report.segments_after += 1;
        report.bytes_before += bytes_before;
        report.records_removed += removed.records;
        report.tombstones_removed += removed.tombstones;
        if !removed.changed && group.len() == 1 {
            self.discard_cleaned(first.base);
            report.bytes_after += bytes_before;
            return Ok(());
        }
        report.bytes_after += cleaned.len;
        let ids: Vec<u64> = group.iter().map(|s| s.id).collect();
        self.install(cleaned, &ids)
    }

    /// The cleanable segments and the cleaner point (see the module docs).
    fn cleanable(&self, now_ms: i64) -> Result<Cleanable, Error> {
        let (candidates, log_start) = {
            let state = lock(&self.state);
            let recovery_base = lock(&self.sync).checkpoint.segment_base();
            let sealed = state.segments.len().saturating_sub(1);
            let candidates: Vec<Span> = state.segments[..sealed]
                .iter()
                .take_while(|s| s.base_offset < recovery_base)
                .map(|s| Span {
                    id: s.id,
                    base: s.base_offset,
                    len: s.len,
                    end_offset: s.end_offset,
                })
                .collect();
            (candidates, super::watermarks(&state, 0).log_start)
        };
        let min_lag = duration_ms(self.config().cleanup.min_compaction_lag);
        let mut spans = Vec::with_capacity(candidates.len());
        for span in candidates {
            if min_lag > 0 {
                let newest = self.segment_max_time(span.base)?.unwrap_or(i64::MIN);
                if now_ms.saturating_sub(newest) < min_lag {
                    break;
                }
            }
            spans.push(span);
        }
        Ok(Cleanable {
            spans,
            point: self.cleaner_point()?.max(log_start),
        })
    }

    /// Persists that segments ending at or below `end` may be cleaned ones
    /// (`cleaned-below`, which only grows).
    fn raise_cleaned_below(&self, end: u64) -> Result<(), Error> {
        let path = self.dir.join(layout::CLEANED_BELOW);
        let current = read_u64_file(&*self.fs, &path, "read cleaned-below")?.unwrap_or(0);
        if end > current {
            write_u64_file(&*self.fs, &path, end)?;
        }
        Ok(())
    }

    /// The persisted cleaner point (0 before the first pass).
    fn cleaner_point(&self) -> Result<u64, Error> {
        if let Some(point) = lock(&self.cleaner).point {
            return Ok(point);
        }
        let path = self.dir.join(layout::CLEANER_POINT);
        let point = read_u64_file(&*self.fs, &path, "read cleaner point")?.unwrap_or(0);
        lock(&self.cleaner).point = Some(point);
        Ok(point)
    }

    /// Whether the oldest dirty record is older than `max_compaction_lag`.
    fn past_max_lag(&self, cleanable: &Cleanable, now_ms: i64) -> Result<bool, Error> {
        let Some(max_lag) = self.config().cleanup.max_compaction_lag else {
            return Ok(false);
        };
        let Some(first_dirty) = cleanable
            .spans
            .iter()
            .find(|s| s.end_offset > cleanable.point && s.len > 0)
        else {
            return Ok(false);
        };
        let oldest = self.source(first_dirty)?.reader.header_at(0)?.append_time;
        Ok(now_ms.saturating_sub(oldest) > duration_ms(max_lag))
    }

    /// What reading `span` needs: its segment prepared (index, mapping)
    /// and a reader of it, if it is still the segment the pass saw.
    fn source(&self, span: &Span) -> Result<Source, Error> {
        self.prepare_segment(span.base, true)?;
        let state = lock(&self.state);
        match find(&state.segments, span.base).map(|at| &state.segments[at]) {
            Some(segment) if segment.id == span.id => Ok(Source {
                base_offset: span.base,
                len: span.len,
                reader: segment.reader(),
            }),
            _ => Err(Error::CleanFailed {
                dir: self.dir.clone(),
                reason: format!("the segment at offset {} went away", span.base),
            }),
        }
    }

    /// Base offsets of the batches kept whole: the last
    /// [`BATCHES_PER_PRODUCER`] batches of each idempotent producer in
    /// `spans`, so that its sequence checks and retries survive a restart
    /// that rebuilds its state from the log.
    fn protected_batches(&self, spans: &[Span]) -> Result<HashSet<u64>, Error> {
        let mut last: HashMap<i64, VecDeque<u64>> = HashMap::new();
        for span in spans {
            let reader = self.source(span)?.reader;
            let mut position = 0;
            while position < span.len {
                let header = reader.header_at(position)?;
                if header.producer_id >= 0 && header.base_sequence >= 0 {
                    let batches = last.entry(header.producer_id).or_default();
                    if batches.len() == BATCHES_PER_PRODUCER {
                        batches.pop_front();
                    }
                    batches.push_back(header.base_offset);
                }
                position += u64::from(header.length);
            }
        }
        Ok(last.into_values().flatten().collect())
    }

    /// `spans` in runs that become one segment each: at most
    /// `segment_max_bytes` of them (before cleaning; and at most 2 GiB,
    /// so that what a delete horizon adds to rewritten batches cannot push
    /// a cleaned segment past the index's `u32` positions) and an offset
    /// span an index can describe.
    fn groups<'a>(&self, spans: &'a [Span]) -> Vec<&'a [Span]> {
        let max_bytes = self.config().segment_max_bytes.min(u64::from(u32::MAX) / 2);
        let mut groups = Vec::new();
        let mut start = 0;
        let mut bytes = 0u64;
        for (i, span) in spans.iter().enumerate() {
            let base = spans[start].base;
            let too_big = bytes + span.len > max_bytes;
            let too_long = span.end_offset - base > u64::from(u32::MAX);
            if i > start && (too_big || too_long) {
                groups.push(&spans[start..i]);
                start = i;
                bytes = 0;
            }
            bytes += span.len;
        }
        if start < spans.len() {
            groups.push(&spans[start..]);
        }
        groups
    }

    /// What the cleaner decodes stored batches with: any batch the log
    /// accepted (its limits when it was written may have been larger).
    fn clean_limits(&self) -> Limits {
        let mut limits = Limits::unlimited();
        limits.max_uncompressed_bytes = self
            .config()
            .limits
            .max_uncompressed_bytes
            .max(Limits::default().max_uncompressed_bytes);
        limits
    }
}

impl Cleanable {
    /// Bytes below and from the cleaner point.
    fn bytes(&self) -> (u64, u64) {
        self.spans.iter().fold((0, 0), |(clean, dirty), s| {
            if s.end_offset > self.point {
                (clean, dirty + s.len)
            } else {
                (clean + s.len, dirty)
            }
        })
    }
}
