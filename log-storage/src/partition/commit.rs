//! Group commit: many appends share one `fdatasync`. A durable append
//! waits for the sync that covers it; the first waiter with no sync in
//! flight becomes the leader, pays any roll debt, syncs for everyone
//! written so far, and wakes the rest (one `fdatasync` in flight, every
//! append arriving meanwhile rides the next). Async appends wait as
//! [`Waiter`]s, completed outside every lock.
//!
//! The partition's one poison state lives here too: the first failed
//! `fdatasync` of any of its files poisons it, and every path that syncs,
//! acknowledges or writes checks it. Segment syncs are serialised (Linux
//! reports a writeback error to only one of two concurrent callers).

use std::path::Path;
use std::sync::{Arc, MutexGuard};

use super::segment::SegmentIndex;
use super::{Log, SyncState};
use crate::error::{Error, io_error};
use crate::io::FileHandle;
use crate::util::lock;

/// An async append waiting for the durable end to pass `target`.
pub(crate) struct Waiter {
    pub(super) target: u64,
    /// When the batch was written, for a waiter whose ack wait is
    /// measured (`None` for a sync nobody waits for).
    pub(super) since: Option<std::time::Instant>,
    pub(super) done: Box<dyn FnOnce(Result<u64, Error>) + Send>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The async appends one sync made durable (or that the partition's
/// poison failed), with their results: what a [`Committer`]'s
/// [`Dispatch`] is handed, once per sync, to run where it likes.
///
/// Each completion runs exactly once: [`run`](Completions::run) calls
/// them in order, and dropping the batch unrun runs what is left, so a
/// dispatcher that cannot deliver (its runtime gone) loses no ack.
///
/// [`Committer`]: super::Committer
/// [`Dispatch`]: super::Dispatch
pub struct Completions {
    ready: std::vec::IntoIter<(Waiter, Result<u64, Error>)>,
}

impl Completions {
    /// How many appends this batch completes.
    pub fn len(&self) -> usize {
        self.ready.len()
    }

    /// Whether the batch completes nothing.
    pub fn is_empty(&self) -> bool {
        self.ready.len() == 0
    }

    /// Calls every completion, in the order the appends were written.
    pub fn run(mut self) {
        self.run_rest();
    }

    fn run_rest(&mut self) {
        for (waiter, result) in self.ready.by_ref() {
            (waiter.done)(result);
        }
    }
}

impl Drop for Completions {
    fn drop(&mut self) {
        self.run_rest();
    }
}

impl std::fmt::Debug for Completions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Completions")
            .field("len", &self.len())
            .finish()
    }
}

impl Log {
    /// Poisons the partition (the first cause stays) and marks the
    /// recovery point, so that a reopen in this boot trusts nothing past
    /// the last successful sync. May be called with the state lock held.
    pub(crate) fn poison(&self, cause: Error) {
        let cause = Arc::new(cause);
        if self.poison.set(Arc::clone(&cause)).is_ok() {
            tracing::error!(dir = %self.dir.display(), %cause, "partition poisoned");
            lock(&self.sync)
                .checkpoint
                .write_poisoned(&self.dir, self.boot_id);
        }
    }

    /// The error of a poisoned partition, if it is.
    pub(crate) fn poisoned(&self) -> Option<Error> {
        self.poison.get().map(|cause| Error::Poisoned {
            dir: self.dir.clone(),
            source: Arc::clone(cause),
        })
    }

    /// The one way a segment file is synced: never two at once, never
    /// again once the partition is poisoned, and a failure poisons it.
    pub(crate) fn sync_segment(
        &self,
        file: &dyn FileHandle,
        path: &Path,
        what: &'static str,
    ) -> Result<(), Error> {
        let _one = lock(&self.fsync_lock);
        if let Some(err) = self.poisoned() {
            return Err(err);
        }
        let started = std::time::Instant::now();
        let synced = file.sync_data();
        self.sync_latency.record(started.elapsed());
        match synced {
            Ok(()) => Ok(()),
            Err(err) => {
                self.poison(io_error(what, path)(err));
                Err(self.poisoned().unwrap_or_else(|| Error::Closed {
                    dir: self.dir.clone(),
                }))
            }
        }
    }

    /// Makes everything written so far durable (one shared `fdatasync`).
    pub fn sync(&self) -> Result<u64, Error> {
        let target = lock(&self.state).next_offset;
        self.wait_durable(target)
    }

    /// Waits until offsets below `target` are durable, leading a sync when
    /// none is in flight. Returns the durable end.
    pub(super) fn wait_durable(&self, target: u64) -> Result<u64, Error> {
        self.sync_until(&|batch: Completions| batch.run(), |sync| {
            if let Some(err) = self.poisoned() {
                return Some(Err(err));
            }
            (sync.durable_end >= target
                && !self.roll_debt.load(std::sync::atomic::Ordering::SeqCst))
            .then_some(Ok(sync.durable_end))
        })
    }

    /// The committer's work for this partition: sync until no async waiter
    /// is left, completing them as their batches become durable.
    /// Each sync's completions go to `dispatch` as one batch.
    pub(super) fn drive_waiters(&self, dispatch: &dyn Fn(Completions)) {
        self.sync_until(dispatch, |sync| sync.waiters.is_empty().then_some(()));
    }

    /// The one sync loop, for a blocking append and for the committer
    /// alike: complete the async waiters whose batches are durable (outside
    /// the lock), return once `done` says so, else sleep while another
    /// leader's sync runs or lead the next one. The completions of each
    /// look go to `dispatch` together.
    fn sync_until<R>(
        &self,
        dispatch: &dyn Fn(Completions),
        mut done: impl FnMut(&SyncState) -> Option<R>,
    ) -> R {
        let mut sync = lock(&self.sync);
        loop {
            let ready = self.take_ready_waiters(&mut sync);
            if !ready.is_empty() {
                drop(sync);
                dispatch(Completions {
                    ready: ready.into_iter(),
                });
                sync = lock(&self.sync);
                continue;
            }
            if let Some(result) = done(&sync) {
                return result;
            }
            if sync.in_flight {
                // Another leader's sync is running; its end is our next look.
                sync = SyncState::sleep(sync, &self.synced, |s| &mut s.sleeping_on_synced, None);
                continue;
            }
            sync = self.lead_sync(sync);
        }
    }

    /// Runs one sync as the leader: marks it in flight, syncs without any
    /// lock, publishes the result and wakes every waiter.
    fn lead_sync<'a>(&'a self, mut sync: MutexGuard<'a, SyncState>) -> MutexGuard<'a, SyncState> {
        sync.in_flight = true;
        drop(sync);
        // Gather: durable appends already on their way to the file get a
        // few scheduler turns to land, so this sync covers them instead of
        // leaving them for the next one. Bounded: never more than 64 yields.
        for _ in 0..64 {
            if self.writing.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                break;
            }
            std::thread::yield_now();
        }
        let result = self.sync_active();
        self.syncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut sync = lock(&self.sync);
        sync.in_flight = false;
        // A failure has poisoned the partition already.
        if let Ok(end) = result {
            sync.durable_end = sync.durable_end.max(end);
        }
        if sync.sleeping_on_synced > 0 {
            self.synced.notify_all();
        }
        self.changed();
        sync
    }

    /// Removes the async waiters whose batches are now durable (or that can
    /// never be, the partition being poisoned), with their results.
    fn take_ready_waiters(&self, sync: &mut SyncState) -> Vec<(Waiter, Result<u64, Error>)> {
        if sync.waiters.is_empty() {
            return Vec::new();
        }
        let durable_end = sync.durable_end;
        let poisoned = self.poison.get().cloned();
        let (ready, pending): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut sync.waiters)
            .into_iter()
            .partition(|w| poisoned.is_some() || w.target <= durable_end);
        sync.waiters = pending;
        let now = std::time::Instant::now();
        ready
            .into_iter()
            .map(|waiter| {
                if let Some(since) = waiter.since {
                    self.durable_wait
                        .record(now.saturating_duration_since(since));
                }
                let result = match &poisoned {
                    Some(cause) => Err(Error::Poisoned {
                        dir: self.dir.clone(),
                        source: Arc::clone(cause),
                    }),
                    None => Ok(durable_end),
                };
                (waiter, result)
            })
            .collect()
    }

    /// The leader's sync: snapshot the active file and the written end,
    /// `fdatasync` without holding the state lock. A failure poisons the
    /// partition.
    fn sync_active(&self) -> Result<u64, Error> {
        let (file, path, end, base, len, pending, gathered) = {
            let mut state = lock(&self.state);
            // The cycle's gathered batches, with one write (`gather.rs`).
            let gathered = self.write_gathered(&mut state)?;
            let pending = std::mem::take(&mut state.pending_rolls);
            self.roll_debt
                .store(false, std::sync::atomic::Ordering::SeqCst);
            let next_offset = state.next_offset;
            let Some(active) = state.segments.last_mut() else {
                return Err(Error::Closed {
                    dir: self.dir.clone(),
                });
            };
            // Index entries reach their file with every sync (not synced
            // themselves): a crash then rescans at most what the last sync
            // did not cover, not the whole active segment.
            if let SegmentIndex::Active(index) = &mut active.index
                && let Err(err) = index.flush()
            {
                tracing::warn!(error = %err, "index flush failed; it will be rebuilt on open");
            }
            (
                active.file.clone(),
                active.log_path.clone(),
                next_offset,
                active.base_offset,
                active.len,
                pending,
                gathered,
            )
        };
        if gathered {
            // Readers of written data need not wait for the sync.
            self.changed();
        }
        // Rolls since the last sync first: nothing in a new segment is
        // durable before the old segment and the new entries are.
        self.pay_roll_debt(pending, base)?;
        if self
            .dir_debt
            .swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Err(err) = self.fs.sync_dir(&self.dir)
        {
            self.poison(io_error("sync partition directory", &self.dir)(err));
            return Err(self.poisoned().unwrap_or_else(|| Error::Closed {
                dir: self.dir.clone(),
            }));
        }
        self.sync_segment(&*file, &path, "sync segment")?;
        lock(&self.sync)
            .checkpoint
            .write(&self.dir, base, len, self.boot_id);
        Ok(end)
    }
}
