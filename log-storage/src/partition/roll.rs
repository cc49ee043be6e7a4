//! Rolling a partition to a new segment, in two halves.
//!
//! The append that rolls does only what needs no `fdatasync`: it creates
//! the new segment's files, hands the old segment's index over to an
//! in-memory copy for readers, and records a [`PendingRoll`]: the *roll
//! debt*. The next sync leader (the committer, `Log::sync`, the background
//! flush or close) pays it before it syncs anything in the new segment:
//! it syncs the old segment, seals its index file, writes the producer
//! snapshot, syncs the directory (the new files' entries) and records the
//! new segment in the recovery point, synced. So no fsync runs on the
//! appending thread, and no append in the new segment is acknowledged
//! DURABLE before the old segment and the new directory entries are on
//! disk.
//!
//! What a crash can leave: the new segment without the old one being whole
//! on disk (the debt was not paid), and a producer snapshot older than the
//! new segment. Recovery handles both: it verifies every segment from the
//! recovery point's on, and replays producers from the snapshot's offset
//! across segments.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use log_index::{ActiveIndex, MemIndex};

use super::producer::{encode_producer_snapshot, write_producer_snapshot};
use super::segment::{Segment, SegmentIndex};
use super::{Log, State};
use crate::config::LogConfig;
use crate::error::{Error, index_error, io_error};
use crate::io::{FileHandle, Fs};
use crate::layout;
use crate::util::{duration_ms, lock, now_ms};

/// A roll whose syncs have not run yet (see the module docs).
#[derive(Debug)]
pub(crate) struct PendingRoll {
    /// The sealed segment's file and path.
    file: Arc<dyn FileHandle>,
    path: PathBuf,
    /// Its index, to seal (footer, sync) once its log is synced.
    index: Option<ActiveIndex<Arc<dyn FileHandle>>>,
    /// Its length at the roll.
    len: u64,
    /// The producer snapshot as of the new segment's base offset.
    snapshot: Vec<u8>,
}

impl Log {
    /// Whether the batch about to be appended must go to a new segment.
    pub(super) fn needs_roll(
        &self,
        state: &State,
        batch_len: u32,
        last_delta: u32,
        now: i64,
    ) -> bool {
        let Some(active) = state.segments.last() else {
            return true;
        };
        // Gathered batches go to the active segment before this one.
        let len = active.len + state.gathered.len();
        if len == 0 {
            return false;
        }
        let too_big = len + u64::from(batch_len) > self.config().segment_max_bytes;
        let too_old = active.first_append_time.is_some_and(|first| {
            now.saturating_sub(first) >= duration_ms(self.config().segment_max_age)
        });
        let relative_end = state.next_offset - active.base_offset + u64::from(last_delta);
        too_big || too_old || relative_end > u64::from(u32::MAX)
    }

    /// Seals the active segment and starts a new one at the log end,
    /// without any `fdatasync` (the debt goes to the next sync leader).
    /// Called with the append lock held (no other append, roll or close
    /// runs); the files are created with the state lock released.
    pub(super) fn roll<'a>(
        &'a self,
        mut state: std::sync::MutexGuard<'a, State>,
    ) -> Result<std::sync::MutexGuard<'a, State>, Error> {
        // What is gathered belongs to the segment being sealed.
        self.write_gathered(&mut state)?;
        let next_offset = state.next_offset;
        // Producers idle past the expiration are forgotten here, at the
        // snapshot (Kafka's `producer.id.expiration.ms`).
        let cutoff = now_ms().saturating_sub(duration_ms(self.config().producer_id_expiration));
        let expired = state.producers.expire_idle(cutoff);
        if expired > 0 {
            tracing::info!(dir = %self.dir.display(), expired, "idle producer ids expired");
        }
        let snapshot = encode_producer_snapshot(next_offset, &state.producers);
        drop(state);
        // A sealed segment ends at its last batch; the sync that pays this
        // roll's debt makes the cut durable with the data.
        self.trim_runway()?;
        let segment = match create_segment(&*self.fs, &self.dir, next_offset, &self.config(), false)
        {
            Ok(segment) => segment,
            Err(err) => {
                // Nothing refers to the half-made files: remove them (not
                // synced: if a crash brings them back, an empty last segment
                // or an index without a log is what recovery expects).
                for path in [
                    layout::log_path(&self.dir, next_offset),
                    layout::index_path(&self.dir, next_offset),
                ] {
                    let _ = self.fs.remove_file(&path);
                }
                return Err(err);
            }
        };
        let mut state = lock(&self.state);
        if let Some(old) = state.segments.last_mut() {
            let index = std::mem::replace(&mut old.index, SegmentIndex::Unloaded);
            let mut to_seal = None;
            if let SegmentIndex::Active(index) = index {
                match MemIndex::from_entries(old.base_offset, old.len, index.entries().to_vec()) {
                    Ok(copy) => old.index = SegmentIndex::Sealed(copy),
                    Err(err) => {
                        tracing::warn!(error = %err, "old index invalid; it will be rebuilt")
                    }
                }
                to_seal = Some(index);
            }
            let pending = PendingRoll {
                file: Arc::clone(&old.file),
                path: old.log_path.clone(),
                index: to_seal,
                len: old.len,
                snapshot,
            };
            state.pending_rolls.push(pending);
            self.roll_debt
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        tracing::info!(segment = %segment.log_path.display(), "rolled to a new segment");
        state.segments.push(segment);
        Ok(state)
    }

    /// Pays the roll debt taken out of the state by the sync leader (see the
    /// module docs), oldest roll first, without any partition lock. A
    /// failed sync of a log or of the directory poisons the partition.
    pub(crate) fn pay_roll_debt(
        &self,
        pending: Vec<PendingRoll>,
        active_base: u64,
    ) -> Result<(), Error> {
        let Some(last) = pending.last() else {
            return Ok(());
        };
        let snapshot = last.snapshot.clone();
        for mut roll in pending {
            self.sync_segment(&*roll.file, &roll.path, "sync segment before a roll")?;
            // Derived data: not synced (a sealed index a power loss damaged
            // fails validation when loaded and is rebuilt).
            if let Some(index) = roll.index.take()
                && let Err(err) = index.seal_without_sync(roll.len)
            {
                tracing::warn!(segment = %roll.path.display(), error = %err, "sealing index failed; it will be rebuilt");
            }
        }
        // The newest snapshot covers every older one. Derived data: a
        // failure costs a longer replay at the next recovery.
        if let Err(err) = write_producer_snapshot(&*self.fs, &self.dir, &snapshot) {
            tracing::warn!(error = %err, "cannot write the producer state snapshot");
        }
        if let Err(err) = self.fs.sync_dir(&self.dir) {
            self.poison(io_error("sync partition directory after a roll", &self.dir)(err));
            return Err(self.poisoned().unwrap_or_else(|| Error::Closed {
                dir: self.dir.clone(),
            }));
        }
        // Every segment before the active one is whole on disk now: say so
        // in the recovery point, durably, so a crash never makes recovery
        // scan them again.
        let point = {
            let mut sync = lock(&self.sync);
            sync.checkpoint
                .write(&self.dir, active_base, 0, self.boot_id);
            sync.checkpoint.handle()
        };
        if let Err(err) = point.sync_data() {
            tracing::warn!(dir = %self.dir.display(), error = %err, "cannot sync the recovery point");
        }
        Ok(())
    }
}

/// Creates an empty segment at `base_offset`: log and index files, and,
/// when `durable`, the log synced and the directory entries synced.
pub(crate) fn create_segment(
    fs: &dyn Fs,
    dir: &Path,
    base_offset: u64,
    config: &LogConfig,
    durable: bool,
) -> Result<Segment, Error> {
    let log_path = layout::log_path(dir, base_offset);
    let index_path = layout::index_path(dir, base_offset);
    let file = fs
        .create_new(&log_path)
        .map_err(io_error("create segment", &log_path))?;
    let index_file = fs
        .create_new(&index_path)
        .map_err(io_error("create index", &index_path))?;
    let index = ActiveIndex::create_in(
        index_file,
        &index_path,
        base_offset,
        config.index_interval_bytes,
    )
    .map_err(index_error("create index"))?;
    if durable {
        file.sync_data()
            .map_err(io_error("sync new segment", &log_path))?;
        fs.sync_dir(dir)
            .map_err(io_error("sync partition directory", dir))?;
    }
    Ok(Segment {
        id: super::segment::next_segment_id(),
        base_offset,
        log_path,
        index_path,
        file,
        len: 0,
        zeroed_end: 0,
        end_offset: base_offset,
        first_append_time: None,
        max_append_time: i64::MIN,
        index_interval_bytes: config.index_interval_bytes,
        index: SegmentIndex::Active(index),
        mapped: None,
        map_failed: false,
    })
}
