//! Compression of cold segments ([`Log::compress_cold`], topic config
//! `cold.compression.type`): a sealed segment whose newest batch is older
//! than `cold_compression_lag` is rewritten with every plain batch
//! compressed by the log's cold codec ([`log_format::recompress`]), then
//! swapped in as the cleaner swaps a cleaned group (`swap.rs`, crash-safe
//! at every step). Batch boundaries, offsets, timestamps, producer fields
//! and append times stay as they were, so the index, readers, recovery
//! and idempotent producers see the same batches; only their bytes shrink.
//! Batches compressed by their producer (or an earlier rewrite) are copied
//! as they are.
//!
//! A pass takes one segment: the first sealed one, before the recovery
//! point's segment, that ends past `compressed-below` (the offset below
//! which every segment was compressed). It persists `cleaned-below` before
//! the swap, as the cleaner does, and `compressed-below` after it; a crash
//! between the two leaves a segment that the next pass reads again and
//! finds compressed already (nothing is rewritten twice). A segment the
//! cleaner merged later may straddle the point: it is taken again, and
//! only its plain batches change.
//!
//! This module starts no thread: the store's cleaner threads call it.

use bytes::BytesMut;
use log_format::{Codec, recompress};

use super::rewrite::{Source, write_rewritten};
use super::{Log, Span};
use crate::error::Error;
use crate::io::durable::{read_u64_file, write_u64_file};
use crate::layout;
use crate::util::{duration_ms, lock};

/// What one [`Log::compress_cold`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompressReport {
    /// Base offset of the segment rewritten.
    pub base_offset: u64,
    /// Its bytes before.
    pub bytes_before: u64,
    /// Its bytes now (the same when every batch was compressed already).
    pub bytes_after: u64,
    /// Batches compressed by the pass.
    pub batches_compressed: u64,
    /// Batches left as they were (compressed already, or not smaller
    /// compressed).
    pub batches_kept: u64,
}

impl Log {
    /// Compresses the oldest cold segment not compressed yet, judged at
    /// `now_ms` (see the module docs). `None` when there is nothing to do:
    /// cold compression is off, or no sealed segment is cold yet.
    ///
    /// # Errors
    ///
    /// [`Error::Corruption`] for damage found in the segment,
    /// [`Error::CleanFailed`] when a swap failed earlier, I/O errors. The
    /// log's data is then as it was (a committed swap is finished by
    /// recovery); the failure is recorded in
    /// [`CleanerStats::last_failure`](super::CleanerStats::last_failure).
    pub fn compress_cold(&self, now_ms: i64) -> Result<Option<CompressReport>, Error> {
        let _maintenance = lock(&self.maintenance);
        let codec = self.config().cleanup.cold_codec;
        if codec == Codec::None || self.is_closed() {
            return Ok(None);
        }
        self.rewrite_pass(
            now_ms,
            "compressing a cold segment",
            || self.compress_pass(now_ms, codec),
            |cleaner, report| {
                cleaner.cold_bytes_saved += report.bytes_before.saturating_sub(report.bytes_after);
                cleaner.cold_segments += 1;
            },
        )
    }

    /// When the last cleaning or compression pass failed, if one did: what
    /// [`CleanerStats::last_failure`](super::CleanerStats::last_failure)
    /// tells, without the stats' segment reads.
    pub fn last_rewrite_failure(&self) -> Option<i64> {
        lock(&self.cleaner).last_failure
    }

    /// Whether a [`Log::compress_cold`] pass at `now_ms` would find a cold
    /// segment to compress.
    pub fn has_cold_segment(&self, now_ms: i64) -> Result<bool, Error> {
        if self.config().cleanup.cold_codec == Codec::None {
            return Ok(false);
        }
        Ok(self.next_cold(now_ms)?.is_some())
    }

    fn compress_pass(&self, now_ms: i64, codec: Codec) -> Result<Option<CompressReport>, Error> {
        let Some(span) = self.next_cold(now_ms)? else {
            return Ok(None);
        };
        let source: Source = self.source(&span)?;
        let mut buf = BytesMut::new();
        let (mut compressed, mut kept) = (0u64, 0u64);
        let written = write_rewritten(
            &*self.fs,
            &self.dir,
            self.config().index_interval_bytes,
            std::slice::from_ref(&source),
            span.end_offset,
            &self.clean_limits(),
            |batch| {
                let out = recompress(batch, codec, &mut buf).map_err(|err| Error::CleanFailed {
                    dir: self.dir.clone(),
                    reason: format!(
                        "compressing the batch at {}: {err}",
                        batch.header().base_offset
                    ),
                })?;
                match out {
                    log_format::Retained::Rewritten(_) => compressed += 1,
                    _ => kept += 1,
                }
                Ok(out)
            },
        );
        drop(source);
        let (rewritten, changed) = match written {
            Ok(written) => written,
            Err(err) => {
                self.discard_cleaned(span.base);
                return Err(err);
            }
        };
        let report = CompressReport {
            base_offset: span.base,
            bytes_before: span.len,
            bytes_after: if changed { rewritten.len } else { span.len },
            batches_compressed: compressed,
            batches_kept: kept,
        };
        if changed {
            self.raise_cleaned_below(span.end_offset)?;
            self.install(rewritten, &[span.id])?;
        } else {
            self.discard_cleaned(span.base);
        }
        write_u64_file(
            &*self.fs,
            &self.dir.join(layout::COMPRESSED_BELOW),
            span.end_offset,
        )?;
        lock(&self.cleaner).compressed_point = Some(span.end_offset);
        tracing::info!(
            dir = %self.dir.display(),
            base_offset = span.base,
            bytes_before = report.bytes_before,
            bytes_after = report.bytes_after,
            batches_compressed = compressed,
            codec = codec.name(),
            "cold segment compressed"
        );
        Ok(Some(report))
    }

    /// The segment the next pass takes, if it is cold at `now_ms`.
    fn next_cold(&self, now_ms: i64) -> Result<Option<Span>, Error> {
        let point = self.compressed_point()?;
        let span = {
            let state = lock(&self.state);
            let recovery_base = lock(&self.sync).checkpoint.segment_base();
            let sealed = state.segments.len().saturating_sub(1);
            state.segments[..sealed]
                .iter()
                .take_while(|s| s.base_offset < recovery_base)
                .find(|s| s.end_offset > point && s.len > 0)
                .map(|s| Span {
                    id: s.id,
                    base: s.base_offset,
                    len: s.len,
                    end_offset: s.end_offset,
                })
        };
        let Some(span) = span else {
            return Ok(None);
        };
        let newest = self.segment_max_time(span.base)?.unwrap_or(i64::MIN);
        let lag = duration_ms(self.config().cleanup.cold_compression_lag);
        Ok((now_ms.saturating_sub(newest) >= lag).then_some(span))
    }

    /// The persisted `compressed-below` (0 before the first pass).
    pub(super) fn compressed_point(&self) -> Result<u64, Error> {
        if let Some(point) = lock(&self.cleaner).compressed_point {
            return Ok(point);
        }
        let path = self.dir.join(layout::COMPRESSED_BELOW);
        let point = read_u64_file(&*self.fs, &path, "read compressed-below")?.unwrap_or(0);
        lock(&self.cleaner).compressed_point = Some(point);
        Ok(point)
    }
}
