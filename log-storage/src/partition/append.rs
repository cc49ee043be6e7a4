//! The write path of one partition: [`Log::append`] (acknowledged per
//! [`Ack`]) and [`Log::append_then`] (completed by a callback from the
//! [`Committer`]). Each append checks the batch, the producer's sequence
//! and the free space, stamps offsets and the append time, and writes the
//! batch with one `write(2)` outside the state lock — or, for a small
//! batch of an async durable append, leaves it gathered for the sync
//! cycle's one write (`gather.rs`); the sync is the group commit's
//! (`commit.rs`).

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use log_format::HEADER_LEN;
use log_format::{BatchHeader, BatchView, DecodeError};

use super::commit::Waiter;
use super::gather::MAX_GATHERED_BATCH;
use super::producer::{SequenceError, Verdict};
use super::segment::SegmentIndex;
use super::{Ack, AppendOptions, Appended, Committer, Log, State};
use crate::error::{Error, io_error};
use crate::io::FileHandle;
use crate::util::{lock, now_ms};

impl Log {
    /// Appends one encoded batch (a `log-format` batch, as a producer built
    /// it): checks it, stamps its base offset and append time, writes it and
    /// acknowledges it as `options.ack` asks. On any error nothing is
    /// visible and nothing will be after a restart.
    ///
    /// `batch` is written as given: a buffer the caller owns alone (a
    /// `BytesMut`, or `Bytes` nothing else shares) is stamped in place; a
    /// shared one (a slice of a request buffer) is not copied when large:
    /// its stamped header and its body go out in two writes.
    pub fn append(
        &self,
        batch: impl Into<Bytes>,
        options: AppendOptions,
    ) -> Result<Appended, Error> {
        let mut appended = self.write_batch(batch.into(), options, false)?;
        if options.ack == Ack::Durable {
            let written = std::time::Instant::now();
            appended.durable_end = self.wait_durable(appended.last_offset + 1)?;
            self.durable_wait.record(written.elapsed());
        }
        Ok(appended)
    }

    /// Like [`append`](Self::append), but never waits for an `fdatasync`:
    /// the batch is checked and written on the calling thread, and `done`
    /// is called with the ack once the ack level is met — at once for
    /// [`Ack::Written`], or by `committer`'s threads after the sync that
    /// covers the batch for [`Ack::Durable`] (sharing that sync with every
    /// other append waiting on this partition). `done` is called exactly
    /// once, never with a lock held.
    pub fn append_then(
        self: &Arc<Self>,
        committer: &Committer,
        batch: impl Into<Bytes>,
        options: AppendOptions,
        done: impl FnOnce(Result<Appended, Error>) + Send + 'static,
    ) {
        let gather = options.ack == Ack::Durable && self.config().gather_writes;
        let appended = match self.write_batch(batch.into(), options, gather) {
            Ok(appended) => appended,
            Err(err) => return done(Err(err)),
        };
        let target = appended.last_offset + 1;
        if options.ack == Ack::Written {
            return done(Ok(appended));
        }
        let written = std::time::Instant::now();
        {
            let mut sync = lock(&self.sync);
            if self.poison.get().is_none() && sync.durable_end < target {
                sync.waiters.push(Waiter {
                    target,
                    since: Some(written),
                    done: Box::new(move |result| {
                        done(result.map(|durable_end| Appended {
                            durable_end,
                            ..appended
                        }))
                    }),
                });
                drop(sync);
                committer.request(Arc::clone(self));
                return;
            }
        }
        // Already durable (or poisoned): answer now.
        let durable = self.wait_durable(target);
        self.durable_wait.record(written.elapsed());
        done(durable.map(|durable_end| Appended {
            durable_end,
            ..appended
        }));
    }

    /// Asks `committer` to make everything written so far durable soon,
    /// without anyone waiting for it: what an append acknowledged at
    /// [`Ack::Written`] uses so that readers of durable data see it within
    /// a group-commit cycle rather than at the next background flush. Does
    /// nothing when it is durable already (or the log is poisoned).
    pub fn sync_soon(self: &Arc<Self>, committer: &Committer) {
        {
            let mut sync = lock(&self.sync);
            let target = sync.written_end;
            if self.poison.get().is_some() || sync.durable_end >= target {
                return;
            }
            sync.waiters.push(Waiter {
                target,
                since: None,
                done: Box::new(|_| {}),
            });
        }
        committer.request(Arc::clone(self));
    }

    /// Checks, stamps and writes a batch (or recognises a producer retry);
    /// the returned ack's `durable_end` is the one known now.
    /// With `gather`, a small batch waits to be written with the others of
    /// its sync cycle (`gather.rs`).
    fn write_batch(
        &self,
        batch: Bytes,
        options: AppendOptions,
        gather: bool,
    ) -> Result<Appended, Error> {
        use std::sync::atomic::Ordering;
        if options.ack == Ack::Written {
            return self.write_batch_inner(batch, options, false);
        }
        self.writing.fetch_add(1, Ordering::SeqCst);
        let result = self.write_batch_inner(batch, options, gather);
        self.writing.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn write_batch_inner(
        &self,
        batch: Bytes,
        options: AppendOptions,
        gather: bool,
    ) -> Result<Appended, Error> {
        let header = match BatchView::decode(&batch, 0, &self.config().limits) {
            Ok(view) if view.len() == batch.len() => {
                if self.config().cleanup.cleanup_policy.compacts()
                    && let Some(record) = view.records().position(|r| r.key().is_none())
                {
                    return Err(Error::KeyRequired {
                        dir: self.dir.clone(),
                        record: record as u32,
                    });
                }
                *view.header()
            }
            Ok(view) => {
                return Err(Error::InvalidBatch {
                    source: log_format::Corrupt {
                        position: 0,
                        field_position: view.len() as u64,
                        what: log_format::Defect::TrailingBytes,
                        expected: view.len() as u64,
                        found: batch.len() as u64,
                    },
                });
            }
            Err(DecodeError::Incomplete { needed }) => {
                return Err(Error::IncompleteBatch { needed });
            }
            Err(DecodeError::Corrupt(source)) => return Err(Error::InvalidBatch { source }),
        };
        // A produced batch holds offsets 0..count-1 exactly (the format
        // allows gaps only for batches compaction rewrote): a sparse one
        // would burn offsets and could force a roll per batch.
        if u64::from(header.last_offset_delta) + 1 != u64::from(header.record_count) {
            return Err(Error::InvalidBatch {
                source: log_format::Corrupt {
                    position: 0,
                    field_position: log_format::field::LAST_OFFSET_DELTA as u64,
                    what: log_format::Defect::OffsetDelta,
                    expected: u64::from(header.record_count).saturating_sub(1),
                    found: header.last_offset_delta.into(),
                },
            });
        }
        let _appending = lock(&self.append_lock);
        let mut state = lock(&self.state);
        if state.closed {
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        }
        if let Some(err) = self.poisoned() {
            return Err(err);
        }
        if let Some(damage) = &state.read_only {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
                source: Arc::clone(damage),
            });
        }
        // Idempotent producer: a retry gets its original offsets back and
        // writes nothing; a gap or a stale epoch is refused.
        match state.producers.check(&header) {
            Ok(Verdict::Anonymous | Verdict::Append) => {}
            Ok(Verdict::Duplicate(meta)) => {
                let epoch = state.epochs.latest();
                drop(state);
                let durable_end = lock(&self.sync).durable_end;
                return Ok(Appended {
                    base_offset: meta.base_offset,
                    last_offset: meta.last_offset,
                    append_time: meta.append_time,
                    ack: options.ack,
                    durable_end,
                    epoch,
                    duplicate: true,
                });
            }
            Err(SequenceError::StaleEpoch { epoch, current }) => {
                return Err(Error::ProducerFenced {
                    producer_id: header.producer_id,
                    epoch,
                    current_epoch: current,
                });
            }
            Err(SequenceError::OutOfOrder { expected, found }) => {
                return Err(Error::OutOfOrderSequence {
                    producer_id: header.producer_id,
                    expected,
                    found,
                });
            }
        }
        if let Some(expected) = options.expected_end_offset
            && expected != state.next_offset
        {
            return Err(Error::ConditionFailed {
                expected,
                actual: state.next_offset,
            });
        }
        if let Some(floor) = self.config().min_free_bytes {
            let need = floor.saturating_add(batch.len() as u64);
            let interval = self.config().free_space_check_interval;
            let trusted = state
                .free_space
                .is_some_and(|space| space.available >= need && space.read_at.elapsed() < interval);
            if !trusted {
                let available = self
                    .fs
                    .available_space(&self.dir)
                    .map_err(io_error("check free space", &self.dir))?;
                state.free_space = Some(FreeSpace {
                    available,
                    read_at: Instant::now(),
                });
                if available < need {
                    return Err(Error::DiskFull {
                        dir: self.dir.clone(),
                        available,
                        floor,
                    });
                }
            }
        }
        let append_time = state.last_append_time.max(now_ms());
        if self.needs_roll(&state, header.length, header.last_offset_delta, append_time) {
            state = self.roll(state)?;
        }
        let base_offset = state.next_offset;
        let last_offset = base_offset + u64::from(header.last_offset_delta);
        // Kafka's partitionLeaderEpoch carries our crash-truncation epoch:
        // clients detect reused offsets with it (KIP-320).
        let leader_epoch = i32::try_from(state.epochs.latest()).unwrap_or(i32::MAX);
        let stamp_error = |err| match err {
            DecodeError::Corrupt(source) => Error::InvalidBatch { source },
            DecodeError::Incomplete { needed } => Error::IncompleteBatch { needed },
        };
        let mut stamped = header;
        stamped.base_offset = base_offset;
        stamped.leader_epoch = leader_epoch;
        stamped.append_time = append_time;
        let appended = |durable_end, epoch| Appended {
            base_offset,
            last_offset,
            append_time,
            ack: options.ack,
            durable_end,
            epoch,
            duplicate: false,
        };
        if gather && batch.len() < MAX_GATHERED_BATCH {
            // Written by the next writer of the file, the sync leader at the
            // latest (`gather.rs`).
            let mut wrote = false;
            if !state.gathered.fits(batch.len()) {
                wrote = self.write_gathered(&mut state)?;
            }
            state.gathered.push(&batch, &stamped).map_err(stamp_error)?;
            let epoch = record_append(&mut state, &stamped, batch.len());
            drop(state);
            let durable_end = lock(&self.sync).durable_end;
            if wrote {
                self.changed();
            }
            self.extend_runway(batch.len() as u64);
            return Ok(appended(durable_end, epoch));
        }
        // Whatever is gathered goes first: the file keeps offset order.
        self.write_gathered(&mut state)?;
        let batch =
            Stamped::new(batch, base_offset, leader_epoch, append_time).map_err(stamp_error)?;
        let Some(active) = state.segments.last() else {
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        };
        let position = active.len;
        let file = Arc::clone(&active.file);
        // The write itself runs without the state lock (the append lock
        // keeps other appends, rolls and close out): readers and the sync
        // leader only ever see the length published below.
        drop(state);
        let written = batch.write_at(&*file, position);
        let mut state = lock(&self.state);
        if let Err(err) = written {
            // The append lock kept the active segment in place: its path.
            let log_path = state
                .segments
                .last()
                .map(|s| s.log_path.clone())
                .unwrap_or_default();
            // Cut back to the last whole batch so no partial batch is ever
            // visible; if even that fails, the file can't be trusted.
            let cut = file.set_len(position);
            // The cut took any zeroed runway with it.
            if let Some(active) = state.segments.last_mut() {
                active.zeroed_end = 0;
            }
            let error = io_error("write batch", &log_path)(err);
            if let Err(cut_err) = cut {
                // The cut's failure is the cause: the write's is returned.
                self.poison(io_error("cut back a failed write", &log_path)(cut_err));
            }
            return Err(error);
        }
        let Some(active) = state.segments.last_mut() else {
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        };
        active.len += batch.len() as u64;
        active.end_offset = last_offset + 1;
        active.first_append_time.get_or_insert(append_time);
        active.max_append_time = active.max_append_time.max(append_time);
        if let SegmentIndex::Active(index) = &mut active.index {
            let relative = (base_offset - active.base_offset) as u32;
            if let Err(err) = index.on_batch(relative, position as u32, header.length, append_time)
            {
                // The index is derived data: the next open rebuilds it.
                tracing::warn!(error = %err, "index update failed; it will be rebuilt on open");
            }
        }
        let epoch = record_append(&mut state, &stamped, batch.len());
        drop(state);
        let (durable_end, sleepers) = {
            let mut sync = lock(&self.sync);
            sync.written_end = sync.written_end.max(last_offset + 1);
            (sync.durable_end, sync.sleeping_on_appended)
        };
        if sleepers > 0 {
            self.appended.notify_all();
        }
        self.changed();
        // Still under the append lock: the next appends find zeros ahead.
        self.extend_runway(batch.len() as u64);

        Ok(appended(durable_end, epoch))
    }
}

/// The partition's bookkeeping of an append given its offsets (`stamped`,
/// `len` bytes), written or gathered: the producer's state, the log end,
/// the append clock, the free space. Answers the current epoch.
fn record_append(state: &mut State, stamped: &BatchHeader, len: usize) -> u64 {
    state.producers.record(stamped);
    state.next_offset = stamped.last_offset() + 1;
    state.last_append_time = stamped.append_time;
    if let Some(space) = &mut state.free_space {
        space.available = space.available.saturating_sub(len as u64);
    }
    state.epochs.latest()
}

/// Shared batches at least this long are written as two pieces (stamped
/// header, then body) rather than copied whole to be stamped.
const SPLIT_WRITE_BYTES: usize = MAX_GATHERED_BATCH;

/// A batch stamped with its offset and append time, ready to write.
enum Stamped {
    /// Stamped in place: the caller's buffer was its own, or small enough
    /// to copy.
    Whole(BytesMut),
    /// The stamped header apart from the shared buffer it came in.
    Split {
        header: [u8; HEADER_LEN],
        batch: Bytes,
    },
}

impl Stamped {
    fn new(
        batch: Bytes,
        base_offset: u64,
        leader_epoch: i32,
        append_time: i64,
    ) -> Result<Stamped, DecodeError> {
        let mut stamped = match batch.try_into_mut() {
            Ok(owned) => Stamped::Whole(owned),
            Err(shared) if shared.len() < SPLIT_WRITE_BYTES => {
                Stamped::Whole(BytesMut::from(&shared[..]))
            }
            Err(shared) => {
                let mut header = [0u8; HEADER_LEN];
                header.copy_from_slice(&shared[..HEADER_LEN]);
                Stamped::Split {
                    header,
                    batch: shared,
                }
            }
        };
        match &mut stamped {
            Stamped::Whole(buf) => log_format::stamp(buf, base_offset, leader_epoch, append_time)?,
            Stamped::Split { header, .. } => {
                log_format::stamp(header, base_offset, leader_epoch, append_time)?
            }
        }
        Ok(stamped)
    }

    fn len(&self) -> usize {
        match self {
            Stamped::Whole(buf) => buf.len(),
            Stamped::Split { batch, .. } => batch.len(),
        }
    }

    /// Writes the batch at `position` (on error, any prefix may be
    /// written: the caller cuts it back).
    fn write_at(&self, file: &dyn FileHandle, position: u64) -> std::io::Result<()> {
        match self {
            Stamped::Whole(buf) => file.write_all_at(buf, position),
            Stamped::Split { header, batch } => {
                file.write_all_at(header, position)?;
                file.write_all_at(&batch[HEADER_LEN..], position + HEADER_LEN as u64)
            }
        }
    }
}

/// The last free-space reading of the partition's file system, less what
/// the partition wrote since ([`LogConfig::free_space_check_interval`](crate::LogConfig::free_space_check_interval)).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FreeSpace {
    pub(super) available: u64,
    read_at: Instant,
}
