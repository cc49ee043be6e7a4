//! Durable appends gathered into one write per sync cycle.
//!
//! An async append that waits for an `fdatasync` anyway
//! ([`Log::append_then`] at [`Ack::Durable`](super::Ack::Durable)) need
//! not reach the file before the sync that covers it. Its batch is
//! checked, given its offsets and stamped as any append's, then copied
//! behind the others waiting here; whichever writes the active segment
//! next — the sync leader just before its `fdatasync`, or an append, roll
//! or close that writes directly — first writes them all with one
//! `write(2)`. So many small writers cost one `write(2)` per sync instead
//! of one each.
//!
//! Until that write readers do not see the batches: the segment's length,
//! its index and the written end move then, as for any append. The log end
//! (`next_offset`) and the producers' state count them at once, so later
//! appends get later offsets and a producer's retry is recognised.
//!
//! What it does not do: gather a batch of [`MAX_GATHERED_BATCH`] bytes or
//! more (written directly, without a copy), gather appends acknowledged
//! before a sync, or hold more than [`MAX_GATHERED_BYTES`] (the append that
//! would pass it writes what is gathered first). A failed gathered write
//! poisons the partition: the offsets after the failed batches are handed
//! out already, so it cannot take them back as a failed direct write does.

use bytes::BytesMut;
use log_format::{BatchHeader, DecodeError};

use super::segment::SegmentIndex;
use super::{Log, State};
use crate::error::{Error, io_error};
use crate::util::lock;

/// Batches this long or longer are written directly, never gathered.
pub(crate) const MAX_GATHERED_BATCH: usize = 4096;

/// At most this many bytes wait to be written at once.
pub(crate) const MAX_GATHERED_BYTES: usize = 1 << 20;

/// Stamped batches waiting for their write, back to back as they will be
/// in the file, right after the active segment's published length.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    bytes: BytesMut,
    batches: Vec<GatheredBatch>,
}

/// What publishing one gathered batch needs once it is written.
#[derive(Debug, Clone, Copy)]
struct GatheredBatch {
    /// Where it starts in [`Gathered::bytes`].
    at: usize,
    base_offset: u64,
    last_offset: u64,
    /// The header's length field (the index entry's).
    length: u32,
    append_time: i64,
}

impl Gathered {
    /// Bytes waiting.
    pub(crate) fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Whether a batch of `len` bytes fits behind what waits.
    pub(crate) fn fits(&self, len: usize) -> bool {
        self.bytes.len() + len <= MAX_GATHERED_BYTES
    }

    /// Copies `batch` in and stamps the copy with `stamped`'s base offset,
    /// leader epoch and append time; on error nothing is kept.
    pub(crate) fn push(&mut self, batch: &[u8], stamped: &BatchHeader) -> Result<(), DecodeError> {
        let at = self.bytes.len();
        self.bytes.extend_from_slice(batch);
        if let Err(err) = log_format::stamp(
            &mut self.bytes[at..],
            stamped.base_offset,
            stamped.leader_epoch,
            stamped.append_time,
        ) {
            self.bytes.truncate(at);
            return Err(err);
        }
        self.batches.push(GatheredBatch {
            at,
            base_offset: stamped.base_offset,
            last_offset: stamped.last_offset(),
            length: stamped.length,
            append_time: stamped.append_time,
        });
        Ok(())
    }

    /// Forgets what waits, keeping the buffers' capacity.
    fn clear(&mut self) {
        self.bytes.clear();
        self.batches.clear();
    }
}

impl Log {
    /// Writes the gathered batches at the end of the active segment with
    /// one `write(2)`, the state lock held, and publishes them as a direct
    /// append does (length, index entries, written end). Answers whether
    /// anything was written: the caller tells the listeners once it has let
    /// go of the state lock. A failure poisons the partition.
    pub(super) fn write_gathered(&self, state: &mut State) -> Result<bool, Error> {
        if state.gathered.is_empty() {
            return Ok(false);
        }
        let State {
            segments, gathered, ..
        } = state;
        let Some(active) = segments.last_mut() else {
            gathered.clear();
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        };
        let position = active.len;
        if let Err(err) = active.file.write_all_at(&gathered.bytes, position) {
            gathered.clear();
            // No partial batch stays visible to the next open either.
            if let Err(cut_err) = active.file.set_len(position) {
                tracing::error!(segment = %active.log_path.display(), error = %cut_err, "cannot cut back a failed gathered write");
            }
            active.zeroed_end = 0;
            self.poison(io_error("write gathered batches", &active.log_path)(err));
            return Err(self.poisoned().unwrap_or_else(|| Error::Closed {
                dir: self.dir.clone(),
            }));
        }
        for batch in &gathered.batches {
            if let SegmentIndex::Active(index) = &mut active.index {
                let relative = (batch.base_offset - active.base_offset) as u32;
                let at = (position + batch.at as u64) as u32;
                if let Err(err) = index.on_batch(relative, at, batch.length, batch.append_time) {
                    // The index is derived data: the next open rebuilds it.
                    tracing::warn!(error = %err, "index update failed; it will be rebuilt on open");
                }
            }
            active.first_append_time.get_or_insert(batch.append_time);
            active.max_append_time = active.max_append_time.max(batch.append_time);
            active.end_offset = batch.last_offset + 1;
        }
        active.len += gathered.len();
        let end = active.end_offset;
        gathered.clear();
        let sleepers = {
            let mut sync = lock(&self.sync);
            sync.written_end = sync.written_end.max(end);
            sync.sleeping_on_appended
        };
        if sleepers > 0 {
            self.appended.notify_all();
        }
        Ok(true)
    }
}
