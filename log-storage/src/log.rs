//! `Log`: one partition — its segments, the write path with group commit,
//! the read path, rolling, clean shutdown and crash recovery on open.
//!
//! Concurrency: appends are serialised by an append lock; the partition
//! state sits behind a second mutex held only for short bookkeeping (checks
//! and stamping before the `write(2)`, publishing the new length after it),
//! never across a `write(2)` or an `fdatasync`. Readers take the state lock
//! only to look up the index and snapshot what they read, then hop headers
//! and copy without it. Durable appends wait for the sync that covers
//! them; the first waiter with no sync in flight becomes the leader, syncs
//! for everyone written so far, and wakes the rest (group commit: one
//! `fdatasync` in flight, every append arriving meanwhile rides the next).
//! `append_then` completes through a callback run by a shared
//! [`Committer`] pool. No thread is started per partition.
//!
//! Retention, delete-records, time lookups and waiting live in
//! `retention.rs`; the idempotent producer's state in `producer.rs`; the
//! multi-partition store in `store.rs`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use log_format::{BatchView, DecodeError};

use crate::checkpoint::{Checkpoint, read_recovery_point};
use crate::config::LogConfig;
use crate::error::{Error, index_error, io_error};
use crate::io::{FileHandle, Fs};
use crate::naming;
use crate::producer::{ProducerStates, SequenceError, Verdict, encode_producer_snapshot};
use crate::recovery::recover;
use crate::roll::PendingRoll;
use crate::segment::{Segment, SegmentIndex, tmp_path};

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ack {
    /// After `fdatasync`: the batch survives power loss. The default.
    #[default]
    Durable,
    /// After `write(2)`: the batch survives a process crash, not power loss.
    Written,
}

/// Options of one append.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendOptions {
    /// When to acknowledge.
    pub ack: Ack,
    /// Conditional append: fail with [`Error::ConditionFailed`], writing
    /// nothing, unless the log ends at this offset.
    pub expected_end_offset: Option<u64>,
}

/// The acknowledgement of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the batch's first record.
    pub base_offset: u64,
    /// Offset of its last record.
    pub last_offset: u64,
    /// The server append time stamped on it, ms since the Unix epoch.
    pub append_time: i64,
    /// Which ack level was met.
    pub ack: Ack,
    /// Offsets below this are durable (at least as of the ack).
    pub durable_end: u64,
    /// The partition's crash-truncation epoch.
    pub epoch: u64,
    /// The batch is an idempotent producer's retry of a batch already in
    /// the log: nothing was written, and the offsets are the original ones.
    pub duplicate: bool,
}

/// Which records a read may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Only durable records (what a crash cannot take back). The default.
    #[default]
    Durable,
    /// Every written record.
    Written,
}

/// What a read returns: whole batches, back to back, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// The batches, verified, back to back (empty when nothing is there yet).
    pub batches: Bytes,
    /// Number of batches in `batches`.
    pub batch_count: usize,
    /// The offset to read next.
    pub next_offset: u64,
    /// Watermarks when the read was served.
    pub watermarks: Watermarks,
}

/// Where a partition's offsets stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// First offset still stored.
    pub log_start: u64,
    /// Offset the next record will get.
    pub log_end: u64,
    /// Offsets below this are durable.
    pub durable_end: u64,
    /// Crash-truncation epoch.
    pub epoch: u64,
}

/// A partition log.
#[derive(Debug)]
pub struct Log {
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) dir: PathBuf,
    pub(crate) config: LogConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) sync: Mutex<SyncState>,
    /// Notified after every sync (durable end moved): durable waiters and
    /// `wait_for(Durable)` sleep on it (with the `sync` mutex).
    pub(crate) synced: Condvar,
    /// Notified after every append (log end moved): only
    /// `wait_for(Written)` sleeps on it (with the `sync` mutex), so appends
    /// never wake durable waiters.
    pub(crate) appended: Condvar,
    /// Called after the log end or the durable end moved (see
    /// [`Log::on_change`]).
    listeners: Listeners,
    /// `fdatasync`s of the active segment led since open (benchmarks
    /// report them next to throughput).
    pub(crate) syncs: std::sync::atomic::AtomicU64,
    /// Serialises appends (and rolls and close) so that the write(2) of a
    /// batch can happen outside the state lock: readers and syncs never
    /// wait for a write, only for the short bookkeeping around it.
    append_lock: Mutex<()>,
    /// Durable appends between their start and their write: a sync leader
    /// gives them a moment to land so that one sync covers them too.
    writing: std::sync::atomic::AtomicUsize,
    /// Why the partition is poisoned: set once, by the first failed
    /// `fdatasync` of any of its files, and checked by every path that
    /// syncs, acknowledges or writes. There is one poison state per
    /// partition, never a second one to forget.
    poison: std::sync::OnceLock<String>,
    /// Held across every `fdatasync` of a segment file, so that two syncs of
    /// one file never overlap: Linux reports a writeback error to only one
    /// of two concurrent callers, and the other must not ack.
    fsync_lock: Mutex<()>,
    /// The boot this partition was opened in (see [`Fs::boot_id`]).
    pub(crate) boot_id: Option<[u8; 16]>,
    /// Whether `State::pending_rolls` holds a roll whose syncs have not
    /// run (readable without the state lock, so `wait_durable` knows to
    /// lead a sync even when every record is durable already).
    pub(crate) roll_debt: std::sync::atomic::AtomicBool,
    /// The directory has a change not synced yet (the clean-shutdown
    /// marker's removal at open): the next sync leader syncs it.
    dir_debt: std::sync::atomic::AtomicBool,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Sealed segments, by base offset, then the active one last.
    pub(crate) segments: Vec<Segment>,
    /// Offset of the next record.
    pub(crate) next_offset: u64,
    /// First offset readers may see (`delete_records` moves it inside a
    /// segment; otherwise it is the first segment's base offset).
    pub(crate) log_start: u64,
    /// Largest append time stamped so far (append times never go back).
    pub(crate) last_append_time: i64,
    /// Why the partition takes no writes (damage found by recovery), if it
    /// does not. A poisoned partition is told apart by `Log::poison`.
    pub(crate) read_only: Option<String>,
    pub(crate) epoch: u64,
    pub(crate) closed: bool,
    /// Idempotent producer state.
    pub(crate) producers: ProducerStates,
    /// Segments taken out of `segments` by retention or delete-records
    /// whose files a failed call could not delete yet (the next call
    /// retries them).
    pub(crate) undeleted: Vec<Segment>,
    /// Rolls whose syncs the next sync leader runs (`roll.rs`).
    pub(crate) pending_rolls: Vec<PendingRoll>,
    /// Recovery left a directory change unsynced (moved to `Log::dir_debt`).
    pub(crate) dir_unsynced: bool,
}

#[derive(Debug)]
pub(crate) struct SyncState {
    pub(crate) durable_end: u64,
    /// The log end as of the last append (a mirror of `State::next_offset`
    /// that waiters can read without the state lock).
    pub(crate) written_end: u64,
    in_flight: bool,
    /// The recovery-point file, rewritten (not synced) after every sync.
    pub(crate) checkpoint: Checkpoint,
    /// Async appends waiting for their batch to become durable.
    waiters: Vec<Waiter>,
}

/// An async append waiting for the durable end to pass `target`.
pub(crate) struct Waiter {
    target: u64,
    done: Box<dyn FnOnce(Result<u64, Error>) + Send>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Callbacks told that a partition's watermarks moved.
#[derive(Default)]
struct Listeners(std::sync::RwLock<Vec<Arc<dyn Fn() + Send + Sync>>>);

impl Listeners {
    fn notify(&self) {
        let listeners = self.0.read().unwrap_or_else(PoisonError::into_inner);
        for listener in listeners.iter() {
            listener();
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.read().map_or(0, |l| l.len());
        f.debug_struct("Listeners").field("count", &count).finish()
    }
}

/// Calls completions, outside every lock.
fn complete(ready: Vec<(Waiter, Result<u64, Error>)>) {
    for (waiter, result) in ready {
        (waiter.done)(result);
    }
}

/// A small, fixed pool of threads that runs the syncs of async appends
/// ([`Log::append_then`]) for any number of partitions: the thread count
/// does not grow with partitions. Each request names a partition with
/// waiting appends; a thread syncs it until none is left.
#[derive(Debug)]
pub struct Committer {
    queue: Arc<(Mutex<CommitQueue>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct CommitQueue {
    logs: std::collections::VecDeque<Arc<Log>>,
    stopping: bool,
}

impl Committer {
    /// Starts `threads` committer threads (at least one).
    pub fn start(threads: usize) -> Committer {
        let queue = Arc::new((Mutex::new(CommitQueue::default()), Condvar::new()));
        let threads = (0..threads.max(1))
            .map(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("log-commit-{i}"))
                    .spawn(move || committer_loop(&queue))
            })
            .filter_map(|spawned| match spawned {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::error!(error = %err, "cannot start a committer thread");
                    None
                }
            })
            .collect();
        Committer { queue, threads }
    }

    fn request(&self, log: Arc<Log>) {
        let (queue, wake) = &*self.queue;
        let mut queue = lock(queue);
        if queue.logs.iter().any(|queued| Arc::ptr_eq(queued, &log)) {
            // Already queued: a thread will sync it and serve this waiter
            // too; waking another would cost a context switch for nothing.
            return;
        }
        queue.logs.push_back(log);
        wake.notify_one();
        if self.threads.is_empty() {
            // No thread could be started: do the work here rather than never.
            let log = queue.logs.pop_back();
            drop(queue);
            if let Some(log) = log {
                log.drive_waiters();
            }
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        {
            let (queue, wake) = &*self.queue;
            lock(queue).stopping = true;
            wake.notify_all();
        }
        let me = std::thread::current().id();
        for thread in self.threads.drain(..) {
            // Dropped from one of its own callbacks: that thread exits by
            // itself once its work is done; joining it here would deadlock.
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

fn committer_loop(queue: &(Mutex<CommitQueue>, Condvar)) {
    let (queue, wake) = queue;
    loop {
        let log = {
            let mut guard = lock(queue);
            loop {
                if let Some(log) = guard.logs.pop_front() {
                    break log;
                }
                if guard.stopping {
                    return;
                }
                guard = wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
            }
        };
        log.drive_waiters();
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock is an invariant violation elsewhere;
    // the state itself stays consistent (every update is a few plain
    // assignments after the I/O that justifies it), so keep going.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A duration in ms, saturating.
pub(crate) fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Log {
    /// Opens the partition in `dir` (created if missing), recovering from a
    /// crash if the last run did not shut down cleanly.
    pub fn open(fs: Arc<dyn Fs>, dir: impl AsRef<Path>, config: LogConfig) -> Result<Log, Error> {
        config.validate()?;
        let dir = dir.as_ref().to_path_buf();
        let existed = fs
            .exists(&dir)
            .map_err(io_error("check partition directory", &dir))?;
        if !existed {
            fs.create_dir_all(&dir)
                .map_err(io_error("create partition directory", &dir))?;
        }
        // A directory's entry is durable only once its parent is synced:
        // sync the chain a create may have made, or else (the directory may
        // come from a run killed before it synced) the directory and its
        // parent.
        // After a clean shutdown (its marker is there) the previous run
        // synced all of that already.
        let chain = if !existed {
            usize::MAX
        } else if fs
            .exists(&dir.join(naming::CLEAN_SHUTDOWN))
            .map_err(io_error("check clean-shutdown marker", &dir))?
        {
            0
        } else {
            2
        };
        for ancestor in dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .take(chain)
        {
            fs.sync_dir(ancestor)
                .map_err(io_error("sync directory", ancestor))?;
        }
        let boot_id = fs.boot_id();
        let point = read_recovery_point(&*fs, &dir);
        let mut state = recover(&*fs, &dir, &config, point, boot_id)?;
        let dir_debt = std::mem::take(&mut state.dir_unsynced);
        let durable_end = state.next_offset;
        // Recovery synced the active segment: all of it is durable.
        let first = state
            .segments
            .last()
            .map_or((0, 0), |active| (active.base_offset, active.len));
        let checkpoint = Checkpoint::open(&*fs, &dir, point, (first.0, first.1, boot_id))?;
        Ok(Log {
            fs,
            dir,
            config,
            state: Mutex::new(state),
            sync: Mutex::new(SyncState {
                durable_end,
                written_end: durable_end,
                in_flight: false,
                checkpoint,
                waiters: Vec::new(),
            }),
            synced: Condvar::new(),
            appended: Condvar::new(),
            writing: std::sync::atomic::AtomicUsize::new(0),
            listeners: Listeners::default(),
            syncs: std::sync::atomic::AtomicU64::new(0),
            append_lock: Mutex::new(()),
            poison: std::sync::OnceLock::new(),
            fsync_lock: Mutex::new(()),
            boot_id,
            roll_debt: std::sync::atomic::AtomicBool::new(false),
            dir_debt: std::sync::atomic::AtomicBool::new(dir_debt),
        })
    }

    /// Poisons the partition (the first cause stays) and marks the
    /// recovery point, so that a reopen in this boot trusts nothing past
    /// the last successful sync. May be called with the state lock held.
    pub(crate) fn poison(&self, cause: String) {
        if self.poison.set(cause.clone()).is_ok() {
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
            cause: cause.clone(),
        })
    }

    /// The one way a segment file is synced: never two at once, never
    /// again once the partition is poisoned, and a failure poisons it.
    pub(crate) fn sync_segment(
        &self,
        file: &dyn FileHandle,
        path: &Path,
        what: &str,
    ) -> Result<(), Error> {
        let _one = lock(&self.fsync_lock);
        if let Some(err) = self.poisoned() {
            return Err(err);
        }
        match file.sync_data() {
            Ok(()) => Ok(()),
            Err(err) => {
                self.poison(format!("{what} {} failed: {err}", path.display()));
                Err(self
                    .poisoned()
                    .unwrap_or_else(|| io_error("sync segment", path)(err)))
            }
        }
    }

    /// Registers `listener`, called after every append (the log end moved),
    /// every sync (the durable end may have moved), delete-records and
    /// close: what an async server needs to wake its long polls and
    /// subscriptions without polling. Listeners run on the thread that
    /// moved the watermark, possibly with partition locks held: they must
    /// be quick and must not call into this log (a counter bump or a
    /// channel send).
    pub fn on_change(&self, listener: Arc<dyn Fn() + Send + Sync>) {
        self.listeners
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(listener);
    }

    /// Tells the listeners that watermarks moved.
    pub(crate) fn changed(&self) {
        self.listeners.notify();
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Current watermarks.
    pub fn watermarks(&self) -> Watermarks {
        let state = lock(&self.state);
        let durable_end = lock(&self.sync).durable_end;
        watermarks(&state, durable_end)
    }

    /// Appends one encoded batch (a `log-format` batch, as a producer built
    /// it): checks it, stamps its base offset and append time, writes it and
    /// acknowledges it as `options.ack` asks. On any error nothing is
    /// visible and nothing will be after a restart.
    pub fn append(&self, batch: BytesMut, options: AppendOptions) -> Result<Appended, Error> {
        let mut appended = self.write_batch(batch, options)?;
        if options.ack == Ack::Durable {
            appended.durable_end = self.wait_durable(appended.last_offset + 1)?;
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
        batch: BytesMut,
        options: AppendOptions,
        done: impl FnOnce(Result<Appended, Error>) + Send + 'static,
    ) {
        let appended = match self.write_batch(batch, options) {
            Ok(appended) => appended,
            Err(err) => return done(Err(err)),
        };
        let target = appended.last_offset + 1;
        if options.ack == Ack::Written {
            return done(Ok(appended));
        }
        {
            let mut sync = lock(&self.sync);
            if self.poison.get().is_none() && sync.durable_end < target {
                sync.waiters.push(Waiter {
                    target,
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
        done(self.wait_durable(target).map(|durable_end| Appended {
            durable_end,
            ..appended
        }));
    }

    /// Checks, stamps and writes a batch (or recognises a producer retry);
    /// the returned ack's `durable_end` is the one known now.
    fn write_batch(&self, batch: BytesMut, options: AppendOptions) -> Result<Appended, Error> {
        use std::sync::atomic::Ordering;
        if options.ack == Ack::Written {
            return self.write_batch_inner(batch, options);
        }
        self.writing.fetch_add(1, Ordering::SeqCst);
        let result = self.write_batch_inner(batch, options);
        self.writing.fetch_sub(1, Ordering::SeqCst);
        result
    }

    fn write_batch_inner(
        &self,
        mut batch: BytesMut,
        options: AppendOptions,
    ) -> Result<Appended, Error> {
        let header = match BatchView::decode(&batch, 0, &self.config.limits) {
            Ok(view) if view.len() == batch.len() => *view.header(),
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
        if let Some(reason) = &state.read_only {
            return Err(Error::ReadOnly {
                dir: self.dir.clone(),
                reason: reason.clone(),
            });
        }
        // Idempotent producer: a retry gets its original offsets back and
        // writes nothing; a gap or a stale epoch is refused.
        match state.producers.check(&header) {
            Ok(Verdict::Anonymous | Verdict::Append) => {}
            Ok(Verdict::Duplicate(meta)) => {
                let epoch = state.epoch;
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
        if let Some(floor) = self.config.min_free_bytes {
            let available = self
                .fs
                .available_space(&self.dir)
                .map_err(io_error("check free space", &self.dir))?;
            if available < floor.saturating_add(batch.len() as u64) {
                return Err(Error::DiskFull {
                    dir: self.dir.clone(),
                    available,
                    floor,
                });
            }
        }
        let append_time = state.last_append_time.max(now_ms());
        if self.needs_roll(&state, header.length, header.last_offset_delta, append_time) {
            state = self.roll(state)?;
        }
        let base_offset = state.next_offset;
        log_format::stamp(&mut batch, base_offset, append_time).map_err(|err| match err {
            DecodeError::Corrupt(source) => Error::InvalidBatch { source },
            DecodeError::Incomplete { needed } => Error::IncompleteBatch { needed },
        })?;
        let Some(active) = state.segments.last() else {
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        };
        let position = active.len;
        let file = Arc::clone(&active.file);
        let log_path = active.log_path.clone();
        // The write itself runs without the state lock (the append lock
        // keeps other appends, rolls and close out): readers and the sync
        // leader only ever see the length published below.
        drop(state);
        let written = file.write_all_at(&batch, position);
        let mut state = lock(&self.state);
        if let Err(err) = written {
            // Cut back to the last whole batch so no partial batch is ever
            // visible; if even that fails, the file can't be trusted.
            let cut = file.set_len(position);
            let error = io_error("write batch", &log_path)(err);
            if let Err(cut_err) = cut {
                self.poison(format!("{error}; cutting back failed too: {cut_err}"));
            }
            return Err(error);
        }
        let Some(active) = state.segments.last_mut() else {
            return Err(Error::Closed {
                dir: self.dir.clone(),
            });
        };
        active.len += batch.len() as u64;
        let last_offset = base_offset + u64::from(header.last_offset_delta);
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
        let mut stamped = header;
        stamped.base_offset = base_offset;
        stamped.append_time = append_time;
        state.producers.record(&stamped);
        state.next_offset = last_offset + 1;
        state.last_append_time = append_time;
        let epoch = state.epoch;
        drop(state);
        {
            let mut sync = lock(&self.sync);
            sync.written_end = sync.written_end.max(last_offset + 1);
        }
        self.appended.notify_all();
        self.changed();

        let durable_end = lock(&self.sync).durable_end;
        Ok(Appended {
            base_offset,
            last_offset,
            append_time,
            ack: options.ack,
            durable_end,
            epoch,
            duplicate: false,
        })
    }

    /// Makes everything written so far durable (one shared `fdatasync`).
    pub fn sync(&self) -> Result<u64, Error> {
        let target = lock(&self.state).next_offset;
        self.wait_durable(target)
    }

    /// Waits until offsets below `target` are durable, leading a sync when
    /// none is in flight. Returns the durable end.
    fn wait_durable(&self, target: u64) -> Result<u64, Error> {
        let mut sync = lock(&self.sync);
        loop {
            if let Some(err) = self.poisoned() {
                return Err(err);
            }
            if sync.durable_end >= target
                && !self.roll_debt.load(std::sync::atomic::Ordering::SeqCst)
            {
                return Ok(sync.durable_end);
            }
            if sync.in_flight {
                sync = self
                    .synced
                    .wait(sync)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            sync = self.lead_sync(sync);
            let ready = self.take_ready_waiters(&mut sync);
            if !ready.is_empty() {
                drop(sync);
                complete(ready);
                sync = lock(&self.sync);
            }
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
        self.synced.notify_all();
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
        ready
            .into_iter()
            .map(|waiter| {
                let result = match &poisoned {
                    Some(cause) => Err(Error::Poisoned {
                        dir: self.dir.clone(),
                        cause: cause.clone(),
                    }),
                    None => Ok(durable_end),
                };
                (waiter, result)
            })
            .collect()
    }

    /// The committer's work for this partition: sync until no async waiter
    /// is left, completing them as their batches become durable.
    fn drive_waiters(&self) {
        let mut sync = lock(&self.sync);
        loop {
            let ready = self.take_ready_waiters(&mut sync);
            if !ready.is_empty() {
                drop(sync);
                complete(ready);
                sync = lock(&self.sync);
                continue;
            }
            if sync.waiters.is_empty() {
                return;
            }
            if sync.in_flight {
                // Another leader's sync is running; its end is our next look.
                sync = self
                    .synced
                    .wait(sync)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            sync = self.lead_sync(sync);
        }
    }

    /// The leader's sync: snapshot the active file and the written end,
    /// `fdatasync` without holding the state lock. A failure poisons the
    /// partition.
    fn sync_active(&self) -> Result<u64, Error> {
        let (file, path, end, base, len, pending) = {
            let mut state = lock(&self.state);
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
            )
        };
        // Rolls since the last sync first: nothing in a new segment is
        // durable before the old segment and the new entries are.
        self.pay_roll_debt(pending, base)?;
        if self
            .dir_debt
            .swap(false, std::sync::atomic::Ordering::SeqCst)
            && let Err(err) = self.fs.sync_dir(&self.dir)
        {
            self.poison(format!(
                "sync of directory {} failed: {err}",
                self.dir.display()
            ));
            return Err(self
                .poisoned()
                .unwrap_or_else(|| io_error("sync partition directory", &self.dir)(err)));
        }
        self.sync_segment(&*file, &path, "fdatasync of")?;
        lock(&self.sync)
            .checkpoint
            .write(&self.dir, base, len, self.boot_id);
        Ok(end)
    }

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
        let (marks, visible_end, entry, segment_end, reader, empty) = loop {
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
                segment.reader(),
                empty,
            );
        };
        // Hop batch headers from the floor entry to the batch holding `offset`.
        let mut position = u64::from(entry.position);
        let start = loop {
            if position >= segment_end {
                return Ok(empty);
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
        let crate::segment::SegmentReader { file, mapped, path } = reader;
        let buf = match mapped {
            Some(map) => {
                let range = usize::try_from(start).unwrap_or(usize::MAX)
                    ..usize::try_from(end).unwrap_or(usize::MAX);
                if range.end > map.len() {
                    return Err(crate::segment::corruption(
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
                return Err(crate::segment::corruption(&path, start, err));
            }
        }
        Ok(ReadResult {
            batches: buf,
            batch_count: count,
            next_offset,
            watermarks: marks,
        })
    }

    /// Forces a roll to a new segment and makes everything before it
    /// durable, paying the roll's debt at once (tests, tools; the append
    /// path leaves that to the next sync leader).
    pub fn roll_now(&self) -> Result<(), Error> {
        {
            let _appending = lock(&self.append_lock);
            let state = lock(&self.state);
            if state.segments.last().is_some_and(|s| s.len == 0) {
                return Ok(());
            }
            self.roll(state).map(drop)?;
        }
        self.sync().map(drop)
    }

    /// Syncs everything and leaves the clean-shutdown marker, so the next
    /// open scans nothing. Further appends fail with [`Error::Closed`].
    pub fn close(&self) -> Result<(), Error> {
        let result = self.close_inner();
        self.changed();
        result
    }

    fn close_inner(&self) -> Result<(), Error> {
        let _appending = lock(&self.append_lock);
        {
            let mut state = lock(&self.state);
            if state.closed {
                return Ok(());
            }
            if self.poison.get().is_some() || state.read_only.is_some() {
                state.closed = true;
                return Ok(());
            }
        }
        // Pays any roll debt and syncs the active segment, no lock held.
        self.sync()?;
        let (snapshot, marker) = {
            let mut state = lock(&self.state);
            let next_offset = state.next_offset;
            let last_append_time = state.last_append_time;
            let cutoff = now_ms().saturating_sub(duration_ms(self.config.producer_id_expiration));
            state.producers.expire_idle(cutoff);
            let snapshot = encode_producer_snapshot(next_offset, &state.producers);
            let Some(active) = state.segments.last_mut() else {
                return Ok(());
            };
            // The active index's last entries (derived data, not synced: a
            // power loss that damages it makes the next open rebuild it).
            if let SegmentIndex::Active(index) = &mut active.index {
                index.flush().map_err(index_error("flush index at close"))?;
            }
            let marker = CleanMarker {
                next_offset,
                active_base: active.base_offset,
                active_len: active.len,
                last_append_time,
            };
            (snapshot, marker)
        };
        // Both replaced without syncing their data, then one directory sync
        // for both renames: the log is durable already, and a file damaged
        // by a power loss only costs the next open work (a marker that
        // fails its checksum: an unclean open; a snapshot: a replay of the
        // log).
        write_replace(&*self.fs, &self.dir.join(naming::PRODUCER_STATE), &snapshot)?;
        write_replace(
            &*self.fs,
            &self.dir.join(naming::CLEAN_SHUTDOWN),
            &marker.encode(),
        )?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_error("sync partition directory", &self.dir))?;
        let mut state = lock(&self.state);
        state.closed = true;
        let mut sync = lock(&self.sync);
        sync.durable_end = sync.durable_end.max(state.next_offset);
        tracing::info!(dir = %self.dir.display(), next_offset = state.next_offset, "partition closed cleanly");
        Ok(())
    }
}

pub(crate) fn watermarks(state: &State, durable_end: u64) -> Watermarks {
    Watermarks {
        log_start: state
            .segments
            .first()
            .map_or(state.next_offset, |s| s.base_offset)
            .max(state.log_start)
            .min(state.next_offset),
        log_end: state.next_offset,
        durable_end: durable_end.min(state.next_offset),
        epoch: state.epoch,
    }
}

/// Writes a small file atomically: temp file, sync, rename, directory sync.
pub(crate) fn write_atomic(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    replace_via_temp(fs, path, bytes, true)?;
    fs.sync_dir(dir).map_err(io_error("sync directory", dir))
}

/// Replaces a small file without waiting for the disk: temp file, write,
/// rename, no fsync. For files with a checksum whose loss or damage after
/// a power loss only costs the next open work.
pub(crate) fn write_replace(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace_via_temp(fs, path, bytes, false)
}

/// Writes `bytes` to a fresh temp file beside `path` (synced when `sync`)
/// and renames it over `path`.
fn replace_via_temp(fs: &dyn Fs, path: &Path, bytes: &[u8], sync: bool) -> Result<(), Error> {
    let tmp = tmp_path(path);
    if fs.exists(&tmp).map_err(io_error("check temp file", &tmp))? {
        fs.remove_file(&tmp)
            .map_err(io_error("remove stale temp file", &tmp))?;
    }
    let file = fs
        .create_new(&tmp)
        .map_err(io_error("create temp file", &tmp))?;
    file.write_all_at(bytes, 0)
        .map_err(io_error("write temp file", &tmp))?;
    if sync {
        file.sync_data().map_err(io_error("sync temp file", &tmp))?;
    }
    fs.rename(&tmp, path)
        .map_err(io_error("rename temp file", path))
}

/// Removes a file and syncs its directory.
pub(crate) fn remove_synced(fs: &dyn Fs, path: &Path) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.remove_file(path)
        .map_err(io_error("remove file", path))?;
    fs.sync_dir(dir).map_err(io_error("sync directory", dir))
}

/// The clean-shutdown marker: where the log ended, with a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CleanMarker {
    pub(crate) next_offset: u64,
    pub(crate) active_base: u64,
    pub(crate) active_len: u64,
    pub(crate) last_append_time: i64,
}

const MARKER_MAGIC: &[u8; 4] = b"LCLN";
const MARKER_LEN: usize = 4 + 8 * 4 + 4;

impl CleanMarker {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MARKER_LEN);
        out.extend_from_slice(MARKER_MAGIC);
        out.extend_from_slice(&self.next_offset.to_le_bytes());
        out.extend_from_slice(&self.active_base.to_le_bytes());
        out.extend_from_slice(&self.active_len.to_le_bytes());
        out.extend_from_slice(&self.last_append_time.to_le_bytes());
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<CleanMarker> {
        if bytes.len() != MARKER_LEN || &bytes[..4] != MARKER_MAGIC {
            return None;
        }
        let (body, crc) = bytes.split_at(MARKER_LEN - 4);
        if crc32(body).to_le_bytes() != crc {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Some(CleanMarker {
            next_offset: u64_at(4),
            active_base: u64_at(12),
            active_len: u64_at(20),
            last_append_time: u64_at(28) as i64,
        })
    }
}

pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}
