//! How a [`Store`](crate::Store) started with
//! [`Store::start`](crate::Store::start) runs: [`StoreConfig`] (its
//! free-space floor, open files, the committer threads, the background
//! passes and the log cleaners) and its defaults. The settings of each
//! partition are [`LogConfig`](crate::LogConfig)'s.
//!
//! This module only holds numbers; the store applies them.

use std::time::Duration;

use crate::partition::Dispatch;
// For the links of the docs only.
#[cfg(doc)]
use crate::{Error, LogConfig};

/// Default interval of the background flush of WRITTEN data: 1 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default interval between retention passes: 5 minutes (Kafka's
/// `log.retention.check.interval.ms`).
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(300);
/// Default free-space floor of a started store: 64 MiB.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;
/// Default time a free-space reading stands in a started store: 100 ms.
pub const DEFAULT_FREE_SPACE_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Default number of committer threads of a started store.
pub const DEFAULT_COMMITTER_THREADS: usize = 2;

/// How a [`Store`](crate::Store) started with
/// [`Store::start`](crate::Store::start) runs. Build it from
/// [`StoreConfig::default`] and the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// let config = log_storage::StoreConfig::default()
///     .with_min_free_bytes(None)
///     .with_flush_interval(Duration::from_millis(200));
/// assert_eq!(config.flush_interval, Duration::from_millis(200));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreConfig {
    /// Appends that would leave less free space on the data directory's
    /// file system fail with [`Error::DiskFull`] before writing anything.
    /// `None`: no floor. Default [`DEFAULT_MIN_FREE_BYTES`].
    pub min_free_bytes: Option<u64>,
    /// How long a free-space reading stands for every partition's floor
    /// check ([`LogConfig::free_space_check_interval`]). Default
    /// [`DEFAULT_FREE_SPACE_CHECK_INTERVAL`].
    pub free_space_check_interval: Duration,
    /// Files the store keeps open at most (about). Default
    /// [`DEFAULT_OPEN_FILES_BUDGET`](crate::DEFAULT_OPEN_FILES_BUDGET).
    pub open_files_budget: usize,
    /// Index spacing of every partition, if not [`LogConfig`]'s default.
    pub index_interval_bytes: Option<u32>,
    /// The zeroed runway ahead of every active segment
    /// ([`LogConfig::preallocate_bytes`]). Default
    /// [`DEFAULT_PREALLOCATE_BYTES`] (a started store is a server's: its
    /// many small durable appends are what the runway speeds up).
    pub preallocate_bytes: u64,
    /// Whether every partition gathers small async durable appends into one
    /// write per sync ([`LogConfig::gather_writes`]). Default `true`.
    pub gather_writes: bool,
    /// Threads of the store's [`Committer`](crate::Committer), which
    /// completes async appends of every partition. Default
    /// [`DEFAULT_COMMITTER_THREADS`]; at least 1.
    pub committer_threads: usize,
    /// Where the committer runs the completions of each sync
    /// ([`Dispatch`]). Default: on its own threads.
    pub completion_dispatch: Dispatch,
    /// How often the background thread syncs what WRITTEN appends left in
    /// the page cache. Default [`DEFAULT_FLUSH_INTERVAL`].
    pub flush_interval: Duration,
    /// How often the background thread enforces retention. Default
    /// [`DEFAULT_RETENTION_INTERVAL`].
    pub retention_interval: Duration,
    /// Log cleaner threads (compaction of topics whose cleanup policy
    /// compacts; Kafka's `log.cleaner.threads`). Default 1; 0 starts none.
    pub cleaner_threads: usize,
    /// Memory of the cleaners' key maps, shared between the threads
    /// (Kafka's `log.cleaner.dedupe.buffer.size`). Default
    /// [`DEFAULT_KEY_MAP_BYTES`], 128 MiB:
    /// about 4 million keys per pass.
    pub cleaner_key_map_bytes: usize,
    /// How long a cleaner sleeps when no pass is due, and how long a
    /// partition whose pass failed is left alone (Kafka's
    /// `log.cleaner.backoff.ms`). Default [`DEFAULT_CLEANER_BACKOFF`].
    pub cleaner_backoff: Duration,
}

/// Default memory of the cleaners' key maps
/// ([`StoreConfig::cleaner_key_map_bytes`]): 128 MiB (Kafka's
/// `log.cleaner.dedupe.buffer.size`), about 4 million keys.
pub const DEFAULT_KEY_MAP_BYTES: usize = 128 << 20;

/// Default [`StoreConfig::preallocate_bytes`]: 256 KiB of zeros ahead of
/// each active segment's end (on this project's test machine, 64 KiB to
/// 256 KiB did best for 64 small durable writers; 1 MiB and more made the
/// sync that carries an extension long enough to show in the tail).
pub const DEFAULT_PREALLOCATE_BYTES: u64 = 256 << 10;

/// Default [`StoreConfig::cleaner_backoff`]: 15 s, as Kafka.
pub const DEFAULT_CLEANER_BACKOFF: Duration = Duration::from_secs(15);

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            min_free_bytes: Some(DEFAULT_MIN_FREE_BYTES),
            free_space_check_interval: DEFAULT_FREE_SPACE_CHECK_INTERVAL,
            open_files_budget: crate::io::DEFAULT_OPEN_FILES_BUDGET,
            index_interval_bytes: None,
            preallocate_bytes: DEFAULT_PREALLOCATE_BYTES,
            gather_writes: true,
            committer_threads: DEFAULT_COMMITTER_THREADS,
            completion_dispatch: Dispatch::inline(),
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            retention_interval: DEFAULT_RETENTION_INTERVAL,
            cleaner_threads: 1,
            cleaner_key_map_bytes: DEFAULT_KEY_MAP_BYTES,
            cleaner_backoff: DEFAULT_CLEANER_BACKOFF,
        }
    }
}

impl StoreConfig {
    /// Sets [`StoreConfig::min_free_bytes`].
    pub fn with_min_free_bytes(mut self, floor: Option<u64>) -> Self {
        self.min_free_bytes = floor;
        self
    }

    /// Sets [`StoreConfig::free_space_check_interval`].
    pub fn with_free_space_check_interval(mut self, interval: Duration) -> Self {
        self.free_space_check_interval = interval;
        self
    }

    /// Sets [`StoreConfig::open_files_budget`].
    pub fn with_open_files_budget(mut self, budget: usize) -> Self {
        self.open_files_budget = budget;
        self
    }

    /// Sets [`StoreConfig::index_interval_bytes`].
    pub fn with_index_interval_bytes(mut self, interval: u32) -> Self {
        self.index_interval_bytes = Some(interval.max(1));
        self
    }

    /// Sets [`StoreConfig::preallocate_bytes`] (0: off).
    pub fn with_preallocate_bytes(mut self, bytes: u64) -> Self {
        self.preallocate_bytes = bytes;
        self
    }

    /// Sets [`StoreConfig::gather_writes`].
    pub fn with_gather_writes(mut self, gather: bool) -> Self {
        self.gather_writes = gather;
        self
    }

    /// Sets [`StoreConfig::committer_threads`].
    pub fn with_committer_threads(mut self, threads: usize) -> Self {
        self.committer_threads = threads.max(1);
        self
    }

    /// Sets [`StoreConfig::completion_dispatch`].
    pub fn with_completion_dispatch(mut self, dispatch: Dispatch) -> Self {
        self.completion_dispatch = dispatch;
        self
    }

    /// Sets [`StoreConfig::flush_interval`].
    pub fn with_flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Sets [`StoreConfig::retention_interval`].
    pub fn with_retention_interval(mut self, interval: Duration) -> Self {
        self.retention_interval = interval;
        self
    }

    /// Sets [`StoreConfig::cleaner_threads`].
    pub fn with_cleaner_threads(mut self, threads: usize) -> Self {
        self.cleaner_threads = threads;
        self
    }

    /// Sets [`StoreConfig::cleaner_key_map_bytes`].
    pub fn with_cleaner_key_map_bytes(mut self, bytes: usize) -> Self {
        self.cleaner_key_map_bytes = bytes;
        self
    }

    /// Sets [`StoreConfig::cleaner_backoff`].
    pub fn with_cleaner_backoff(mut self, backoff: Duration) -> Self {
        self.cleaner_backoff = backoff;
        self
    }
}
