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
//! The parts, each a module of its own:
//! - `append.rs`: [`Log::append`] and [`Log::append_then`], the checks and
//!   stamping around one `write(2)`;
//! - `commit.rs`: group commit (the sync leader, durable waiters), the one
//!   poison state and the serialised `fdatasync` of segments;
//! - `committer.rs`: [`Committer`], the thread pool that completes async
//!   appends for any number of partitions;
//! - `latency.rs`: the histograms of `fdatasync` time and durable-ack wait
//!   reported in [`Usage`];
//! - `roll.rs`: rolling to a new segment and the roll debt the next sync
//!   leader pays;
//! - `read.rs`: reads, offsets by time, lag, usage and waiting for an
//!   offset;
//! - `retention.rs`: delete-records and retention by age and size;
//! - `clean/`: the log cleaner (compaction: the latest record per key),
//!   its key map and the crash-safe swap of cleaned segments;
//! - `recovery.rs`: crash recovery on open;
//! - `checkpoint.rs` (the recovery point), `epochs.rs` (the epoch
//!   history) and `markers.rs` (the clean-shutdown marker and the log
//!   start): the partition's small files;
//! - `segment.rs`: one segment (log file + index), header hops and scans;
//! - `prepare.rs`: loading a sealed segment's index and mapping without the
//!   partition lock;
//! - `producer.rs`: the idempotent producers' state and its snapshot.
//!
//! This module holds [`Log`] itself, its state, open and close.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};

use bytes::Bytes;

use crate::config::LogConfig;
use crate::error::{Error, index_error, io_error};
use crate::io::Fs;
use crate::io::durable::write_replace;
use crate::layout;
use crate::util::{duration_ms, lock, now_ms, read, write};

mod append;
mod checkpoint;
mod clean;
mod commit;
mod committer;
mod epochs;
mod gather;
mod latency;
mod markers;
mod prealloc;
mod prepare;
mod producer;
mod read;
mod recovery;
mod retention;
mod roll;
mod sealed_window;
mod segment;

use checkpoint::{Checkpoint, read_recovery_point};
use commit::Waiter;
use epochs::EpochHistory;
use markers::CleanMarker;
use producer::{ProducerStates, encode_producer_snapshot};
use recovery::recover;
use roll::PendingRoll;
use segment::{Segment, SegmentIndex};

pub use clean::{CleanReport, CleanerStats, CompressReport, KEY_MAP_ENTRY_BYTES, KeyMap};
pub use commit::Completions;
pub use committer::{Committer, Dispatch};
pub use epochs::{EpochEnd, EpochStart};
pub use latency::LatencySummary;
pub use read::{Lag, Usage};
pub use retention::RetentionReport;

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
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    /// The settings; [`Log::set_config`] swaps them while the log serves.
    config: RwLock<Arc<LogConfig>>,
    state: Mutex<State>,
    sync: Mutex<SyncState>,
    /// Notified after every sync (durable end moved): durable waiters and
    /// `wait_for(Durable)` sleep on it (with the `sync` mutex).
    synced: Condvar,
    /// Notified after every append (log end moved): only
    /// `wait_for(Written)` sleeps on it (with the `sync` mutex), so appends
    /// never wake durable waiters.
    appended: Condvar,
    /// Called after the log end or the durable end moved (see
    /// [`Log::on_change`]).
    listeners: Listeners,
    /// `fdatasync`s of the active segment led since open (benchmarks
    /// report them next to throughput).
    syncs: std::sync::atomic::AtomicU64,
    /// How long each segment `fdatasync` took.
    sync_latency: latency::LatencyHistogram,
    /// How long each durable append waited between its `write(2)` and
    /// its ack (the group commit's queue plus the sync it rode).
    durable_wait: latency::LatencyHistogram,
    /// Serialises appends (and rolls and close) so that the write(2) of a
    /// batch can happen outside the state lock: readers and syncs never
    /// wait for a direct write, only for the short bookkeeping around it
    /// (and for the one write of a sync cycle's gathered batches,
    /// `gather.rs`).
    append_lock: Mutex<()>,
    /// Durable appends between their start and their write: a sync leader
    /// gives them a moment to land so that one sync covers them too.
    writing: std::sync::atomic::AtomicUsize,
    /// Why the partition is poisoned: set once, by the first failed
    /// `fdatasync` of any of its files, and checked by every path that
    /// syncs, acknowledges or writes. There is one poison state per
    /// partition, never a second one to forget.
    poison: std::sync::OnceLock<Arc<Error>>,
    /// Held across every `fdatasync` of a segment file, so that two syncs of
    /// one file never overlap: Linux reports a writeback error to only one
    /// of two concurrent callers, and the other must not ack.
    fsync_lock: Mutex<()>,
    /// The boot this partition was opened in (see [`Fs::boot_id`]).
    boot_id: Option<[u8; 16]>,
    /// Whether `State::pending_rolls` holds a roll whose syncs have not
    /// run (readable without the state lock, so `wait_durable` knows to
    /// lead a sync even when every record is durable already).
    roll_debt: std::sync::atomic::AtomicBool,
    /// The directory has a change not synced yet (the clean-shutdown
    /// marker's removal at open): the next sync leader syncs it.
    dir_debt: std::sync::atomic::AtomicBool,
    /// What an embedder attached to this partition ([`Log::attachment`]).
    attachment: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
    /// `State::closed`, readable without the state lock; set before the
    /// listeners hear of the close.
    closed: std::sync::atomic::AtomicBool,
    /// Held by whatever removes or replaces sealed segments (a cleaning
    /// pass, retention, delete-records), so they never work on the same
    /// segments at once. Taken before the state lock, never under it.
    maintenance: Mutex<()>,
    /// The cleaner's point and counters (`clean/`).
    cleaner: Mutex<clean::CleanerState>,
}

#[derive(Debug)]
struct State {
    /// Sealed segments, by base offset, then the active one last.
    segments: Vec<Segment>,
    /// Offset of the next record.
    next_offset: u64,
    /// First offset readers may see (`delete_records` moves it inside a
    /// segment; otherwise it is the first segment's base offset).
    log_start: u64,
    /// Largest append time stamped so far (append times never go back).
    last_append_time: i64,
    /// Why the partition takes no writes (damage found by recovery), if it
    /// does not. A poisoned partition is told apart by `Log::poison`.
    read_only: Option<Arc<Error>>,
    /// Which epoch started where; the last entry is the current epoch.
    epochs: EpochHistory,
    closed: bool,
    /// Idempotent producer state.
    producers: ProducerStates,
    /// Segments taken out of `segments` by retention or delete-records
    /// whose files a failed call could not delete yet (the next call
    /// retries them).
    undeleted: Vec<Segment>,
    /// Rolls whose syncs the next sync leader runs (`roll.rs`).
    pending_rolls: Vec<PendingRoll>,
    /// Recovery left a directory change unsynced (moved to `Log::dir_debt`).
    dir_unsynced: bool,
    /// The free-space reading the floor check trusts for a moment.
    free_space: Option<append::FreeSpace>,
    /// Durable appends stamped and waiting for their write, right after
    /// the active segment's length (`gather.rs`).
    gathered: gather::Gathered,
}

#[derive(Debug)]
struct SyncState {
    durable_end: u64,
    /// The log end as of the last append (a mirror of `State::next_offset`
    /// that waiters can read without the state lock).
    written_end: u64,
    in_flight: bool,
    /// The recovery-point file, rewritten (not synced) after every sync.
    checkpoint: Checkpoint,
    /// Async appends waiting for their batch to become durable.
    waiters: Vec<Waiter>,
    /// Threads asleep on `Log::synced` and on `Log::appended`: a notify
    /// with nobody asleep is skipped (std's condvar makes a `futex` call
    /// for every notify, sleepers or not).
    sleeping_on_synced: usize,
    sleeping_on_appended: usize,
}

impl SyncState {
    /// Sleeps on `condvar` (one of `log`'s), counted in `sleepers`.
    pub(crate) fn sleep<'a>(
        mut guard: std::sync::MutexGuard<'a, SyncState>,
        condvar: &Condvar,
        sleepers: fn(&mut SyncState) -> &mut usize,
        timeout: Option<std::time::Duration>,
    ) -> std::sync::MutexGuard<'a, SyncState> {
        *sleepers(&mut guard) += 1;
        let mut guard = match timeout {
            Some(timeout) => {
                condvar
                    .wait_timeout(guard, timeout)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => condvar.wait(guard).unwrap_or_else(PoisonError::into_inner),
        };
        *sleepers(&mut guard) -= 1;
        guard
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
            .exists(&dir.join(layout::CLEAN_SHUTDOWN))
            .map_err(io_error("check clean-shutdown marker", &dir))?
        {
            0
        } else {
            2
        };
        crate::io::durable::sync_ancestors(&*fs, &dir, chain)?;
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
            config: RwLock::new(Arc::new(config)),
            state: Mutex::new(state),
            sync: Mutex::new(SyncState {
                durable_end,
                written_end: durable_end,
                in_flight: false,
                checkpoint,
                waiters: Vec::new(),
                sleeping_on_synced: 0,
                sleeping_on_appended: 0,
            }),
            synced: Condvar::new(),
            appended: Condvar::new(),
            writing: std::sync::atomic::AtomicUsize::new(0),
            listeners: Listeners::default(),
            syncs: std::sync::atomic::AtomicU64::new(0),
            sync_latency: latency::LatencyHistogram::new(),
            durable_wait: latency::LatencyHistogram::new(),
            append_lock: Mutex::new(()),
            poison: std::sync::OnceLock::new(),
            fsync_lock: Mutex::new(()),
            boot_id,
            roll_debt: std::sync::atomic::AtomicBool::new(false),
            dir_debt: std::sync::atomic::AtomicBool::new(dir_debt),
            attachment: std::sync::OnceLock::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
            maintenance: Mutex::new(()),
            cleaner: Mutex::new(clean::CleanerState::default()),
        })
    }

    /// The value an embedder attached to this partition, created by `init`
    /// on the first call: per-partition state of the embedder's own (a
    /// server's change channel, say) found through the store's one registry
    /// of open partitions, with no second map to keep in step. One
    /// attachment per partition: `None` if one of another type is attached.
    pub fn attachment<T: Send + Sync + 'static>(
        &self,
        init: impl FnOnce() -> Arc<T>,
    ) -> Option<Arc<T>> {
        let any = self
            .attachment
            .get_or_init(|| init() as Arc<dyn std::any::Any + Send + Sync>);
        Arc::clone(any).downcast::<T>().ok()
    }

    /// Whether the partition was closed ([`Log::close`]; the store closes
    /// the partitions of a deleted topic). Takes no lock: a change listener
    /// may ask.
    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
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

    /// The log's settings now.
    pub fn config(&self) -> Arc<LogConfig> {
        Arc::clone(&read(&self.config))
    }

    /// Replaces the log's settings while it serves (a topic config
    /// altered): appends, rolls, retention and the cleaner use them from
    /// their next step on. `index_interval_bytes` keeps its current value
    /// (indexes already written are spaced by it).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an invalid config; nothing changes.
    pub fn set_config(&self, mut config: LogConfig) -> Result<(), Error> {
        config.validate()?;
        let mut current = write(&self.config);
        config.index_interval_bytes = current.index_interval_bytes;
        *current = Arc::new(config);
        Ok(())
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

    /// Where `epoch` ends: the first offset past the records written in it
    /// (the log end for the current epoch), with the epoch the answer is
    /// about — `epoch` when it is known, else the largest known epoch
    /// below it. `None` when `epoch` is past the current one. A reader
    /// that saw offset `o` in epoch `e` finds records cut under it when
    /// `epoch_end(e)` ends at or before `o` (Kafka's OffsetForLeaderEpoch).
    pub fn epoch_end(&self, epoch: u64) -> Option<EpochEnd> {
        let state = lock(&self.state);
        state.epochs.end_of(epoch, state.next_offset)
    }

    /// The epoch history, oldest first: each epoch and the offset it
    /// started at. Entries wholly below the log start are dropped.
    pub fn epochs(&self) -> Vec<EpochStart> {
        lock(&self.state).epochs.entries().to_vec()
    }

    /// Forces a roll to a new segment and makes everything before it
    /// durable, paying the roll's debt at once (tests, tools; the append
    /// path leaves that to the next sync leader).
    pub fn roll_now(&self) -> Result<(), Error> {
        {
            let _appending = lock(&self.append_lock);
            let mut state = lock(&self.state);
            self.write_gathered(&mut state)?;
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
            // Gathered batches first: the runway's cut below must not take
            // them (a failed write poisons, as checked next).
            let gathered = self.write_gathered(&mut state);
            if gathered.is_err() || self.poison.get().is_some() || state.read_only.is_some() {
                state.closed = true;
                self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
                return Ok(());
            }
        }
        // A closed segment ends at its last batch (the clean marker's
        // length is the file's); the sync below makes the cut durable.
        self.trim_runway()?;
        // Pays any roll debt and syncs the active segment, no lock held.
        self.sync()?;
        let (snapshot, marker) = {
            let mut state = lock(&self.state);
            let next_offset = state.next_offset;
            let last_append_time = state.last_append_time;
            let cutoff = now_ms().saturating_sub(duration_ms(self.config().producer_id_expiration));
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
        write_replace(&*self.fs, &self.dir.join(layout::PRODUCER_STATE), &snapshot)?;
        write_replace(
            &*self.fs,
            &self.dir.join(layout::CLEAN_SHUTDOWN),
            &marker.encode(),
        )?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_error("sync partition directory", &self.dir))?;
        let mut state = lock(&self.state);
        state.closed = true;
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let mut sync = lock(&self.sync);
        sync.durable_end = sync.durable_end.max(state.next_offset);
        tracing::info!(dir = %self.dir.display(), next_offset = state.next_offset, "partition closed cleanly");
        Ok(())
    }
}

fn watermarks(state: &State, durable_end: u64) -> Watermarks {
    Watermarks {
        log_start: state
            .segments
            .first()
            .map_or(state.next_offset, |s| s.base_offset)
            .max(state.log_start)
            .min(state.next_offset),
        log_end: state.next_offset,
        durable_end: durable_end.min(state.next_offset),
        epoch: state.epochs.latest(),
    }
}
