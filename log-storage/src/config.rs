//! Settings, with their units in their names and their defaults
//! documented: [`LogConfig`] for one partition log, [`StoreConfig`] for how
//! a [`Store`](crate::Store) runs (its free-space floor, open files, the
//! committer threads, the background passes and the log cleaners).
//!
//! This module only holds and checks numbers; it reads no file (the store
//! persists per-topic configs elsewhere).

use std::time::Duration;

use log_format::{Codec, Limits};

use crate::error::Error;

/// Settings of a partition [`Log`](crate::Log). `#[non_exhaustive]`:
/// start from [`LogConfig::default`] and set the fields you need, so that
/// a setting added later keeps its default in your code.
///
/// ```
/// let mut config = log_storage::LogConfig::default();
/// config.segment_max_bytes = 64 << 20;
/// config.min_free_bytes = Some(1 << 30);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LogConfig {
    /// Roll to a new segment once the active one holds this many bytes.
    /// Default 1 GiB. At most 4 GiB − 1 (positions in the index are `u32`).
    pub segment_max_bytes: u64,
    /// Roll to a new segment once the active one's first batch is this old,
    /// so quiet partitions still expire. Default 7 days.
    pub segment_max_age: Duration,
    /// One index entry per this many bytes of log. Default 4096.
    pub index_interval_bytes: u32,
    /// Largest batch and most records per batch accepted. Default
    /// [`Limits::default`] (8 MiB, 1,048,576 records).
    pub limits: Limits,
    /// Delete sealed segments whose newest record was appended longer ago
    /// than this. Default `None` (keep forever).
    pub retention_max_age: Option<Duration>,
    /// Delete the oldest sealed segments while the partition holds more
    /// bytes than this. Default `None` (no size limit).
    pub retention_max_bytes: Option<u64>,
    /// Refuse appends (with [`Error::DiskFull`]) while the file system
    /// has less than this many bytes available, so the disk never fills
    /// up mid-write. Default `None` (no floor: a full disk then fails the
    /// write itself, which is cut back cleanly).
    pub min_free_bytes: Option<u64>,
    /// How long a free-space reading (`statfs`) stands for the floor
    /// check: within it, the figure read minus what this partition wrote
    /// since is trusted, unless it says the append would cross the floor
    /// (then the space is read again). Default zero: every append reads it.
    /// A store started with [`Store::start`](crate::Store::start) uses
    /// [`StoreConfig::free_space_check_interval`] (100 ms): one `statfs`
    /// per append is 5–7 % of the server's CPU on small appends. Other
    /// writers on the file system (other partitions, other programs) are
    /// not counted within the interval: the floor is a guard, and a disk
    /// that fills anyway fails the write, which is cut back cleanly.
    pub free_space_check_interval: Duration,
    /// Forget an idempotent producer id whose last batch was appended
    /// longer ago than this, at the next producer-state snapshot (a roll
    /// or a clean close), as Kafka's `producer.id.expiration.ms` does; a
    /// retry from it after that is a new producer's first batch. Default 7
    /// days.
    pub producer_id_expiration: Duration,
    /// What happens to old sealed segments (Kafka's `cleanup.policy`):
    /// retention deletes them, the cleaner compacts them to the latest
    /// value per key, or both. Default [`CleanupPolicy::Delete`].
    pub cleanup_policy: CleanupPolicy,
    /// Kafka's `min.cleanable.dirty.ratio`: the cleaner takes a log once
    /// the bytes written since its last cleaning are at least this share
    /// of its cleanable bytes. Default 0.5; in `(0, 1]`.
    pub min_cleanable_dirty_ratio: f64,
    /// Kafka's `min.compaction.lag.ms`: a record stays uncompacted at
    /// least this long after its append (the cleaner leaves segments with
    /// newer records alone). Default zero.
    pub min_compaction_lag: Duration,
    /// Kafka's `max.compaction.lag.ms`: a log whose oldest dirty record is
    /// older than this is cleaned whatever its dirty ratio. Default `None`
    /// (no limit).
    pub max_compaction_lag: Option<Duration>,
    /// Kafka's `delete.retention.ms`: a tombstone (a null value) stays this
    /// long after the cleaner first saw it, so readers that are behind
    /// still see the delete; the next cleaning after that drops it.
    /// Default 1 day.
    pub delete_retention: Duration,
    /// Compression of cold segments (topic config
    /// `cold.compression.type`): sealed segments whose newest batch was
    /// appended at least [`cold_compression_lag`](Self::cold_compression_lag)
    /// ago are rewritten with each plain batch compressed by this codec
    /// (batch boundaries, offsets, timestamps kept; batches their producer
    /// compressed stay as they are). [`Codec::None`] (the default) leaves
    /// segments as written; [`Codec::Zstd`] and [`Codec::Lz4`] are
    /// accepted.
    pub cold_codec: Codec,
    /// How old a sealed segment's newest batch must be before its segment
    /// is compressed (`cold.compression.lag.ms`). Default 1 hour.
    pub cold_compression_lag: Duration,
    /// Keep this many bytes of zeros written ahead of the active
    /// segment's end (extended by this much whenever less than half is
    /// left, never past `segment_max_bytes`, not after a batch larger than
    /// a quarter of it), so an append overwrites
    /// blocks the file already has and its `fdatasync` writes no inode:
    /// on ext4 that halves the sync's latency and CPU for small syncs.
    /// The zeros cost their own write once. A sealed or cleanly closed
    /// segment is cut back to its batches; recovery cuts an all-zero tail
    /// past the recovery point without calling it torn. Default 0 (off).
    pub preallocate_bytes: u64,
    /// Gather the small batches of async DURABLE appends
    /// ([`Log::append_then`](crate::Log::append_then)) and write them with
    /// one `write(2)` per group commit, just before its `fdatasync`, rather
    /// than one `write(2)` each: they are readable from that write on. A
    /// failed gathered write poisons the partition. Default `true`: over
    /// gRPC with 64 writers of one record each in flight it cut the
    /// server's CPU per ack by 10–18 %, with acks/s 0.95–1.13× (1.04× on
    /// average) over seven A B pairs (`cargo xtask bench` and A B rounds,
    /// December 2026).
    pub gather_writes: bool,
}

/// What happens to a log's old segments (Kafka's `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CleanupPolicy {
    /// `delete`: retention deletes whole old segments by age and size.
    #[default]
    Delete,
    /// `compact`: the cleaner keeps the latest value per key; retention
    /// settings are ignored.
    Compact,
    /// `compact,delete`: both.
    CompactDelete,
}

impl CleanupPolicy {
    /// Whether retention deletes old segments.
    pub fn deletes(self) -> bool {
        matches!(self, CleanupPolicy::Delete | CleanupPolicy::CompactDelete)
    }

    /// Whether the cleaner compacts the log.
    pub fn compacts(self) -> bool {
        matches!(self, CleanupPolicy::Compact | CleanupPolicy::CompactDelete)
    }

    /// Kafka's name for it: `delete`, `compact` or `compact,delete`.
    pub fn name(self) -> &'static str {
        match self {
            CleanupPolicy::Delete => "delete",
            CleanupPolicy::Compact => "compact",
            CleanupPolicy::CompactDelete => "compact,delete",
        }
    }

    /// Parses Kafka's spelling: a comma-separated list of `delete` and
    /// `compact` in any order, spaces allowed (`None` for anything else).
    pub fn parse(text: &str) -> Option<CleanupPolicy> {
        let (mut delete, mut compact) = (false, false);
        for part in text.split(',') {
            match part.trim() {
                "delete" => delete = true,
                "compact" => compact = true,
                _ => return None,
            }
        }
        match (delete, compact) {
            (true, false) => Some(CleanupPolicy::Delete),
            (false, true) => Some(CleanupPolicy::Compact),
            (true, true) => Some(CleanupPolicy::CompactDelete),
            (false, false) => None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_max_bytes: 1 << 30,
            segment_max_age: Duration::from_secs(7 * 24 * 3600),
            index_interval_bytes: log_index::DEFAULT_INDEX_INTERVAL_BYTES,
            limits: Limits::default(),
            retention_max_age: None,
            retention_max_bytes: None,
            min_free_bytes: None,
            free_space_check_interval: Duration::ZERO,
            producer_id_expiration: Duration::from_secs(7 * 24 * 3600),
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio: DEFAULT_MIN_CLEANABLE_DIRTY_RATIO,
            min_compaction_lag: Duration::ZERO,
            max_compaction_lag: None,
            delete_retention: DEFAULT_DELETE_RETENTION,
            cold_codec: Codec::None,
            cold_compression_lag: DEFAULT_COLD_COMPRESSION_LAG,
            preallocate_bytes: 0,
            gather_writes: true,
        }
    }
}

/// Default [`LogConfig::min_cleanable_dirty_ratio`]: 0.5, as Kafka.
pub const DEFAULT_MIN_CLEANABLE_DIRTY_RATIO: f64 = 0.5;
/// Default [`LogConfig::cold_compression_lag`]: 1 hour.
pub const DEFAULT_COLD_COMPRESSION_LAG: Duration = Duration::from_secs(3600);
/// Default [`LogConfig::delete_retention`]: 1 day, as Kafka.
pub const DEFAULT_DELETE_RETENTION: Duration = Duration::from_secs(24 * 3600);

impl LogConfig {
    /// Checks every value; a log refuses to open with an invalid config.
    pub fn validate(&self) -> Result<(), Error> {
        if self.segment_max_bytes < 4096 || self.segment_max_bytes > u64::from(u32::MAX) {
            return Err(Error::InvalidConfig {
                setting: "segment_max_bytes",
                reason: format!("{} is outside [4096, {}]", self.segment_max_bytes, u32::MAX),
            });
        }
        if self.index_interval_bytes == 0 {
            return Err(Error::InvalidConfig {
                setting: "index_interval_bytes",
                reason: "must be at least 1".into(),
            });
        }
        if u64::from(self.limits.max_batch_bytes) > self.segment_max_bytes {
            return Err(Error::InvalidConfig {
                setting: "limits.max_batch_bytes",
                reason: format!(
                    "{} is larger than segment_max_bytes {}",
                    self.limits.max_batch_bytes, self.segment_max_bytes
                ),
            });
        }
        if self.segment_max_age.is_zero() {
            return Err(Error::InvalidConfig {
                setting: "segment_max_age",
                reason: "must be positive".into(),
            });
        }
        if !matches!(self.cold_codec, Codec::None | Codec::Zstd | Codec::Lz4) {
            return Err(Error::InvalidConfig {
                setting: "cold_codec",
                reason: format!("{} is not one of none, lz4, zstd", self.cold_codec.name()),
            });
        }
        let ratio = self.min_cleanable_dirty_ratio;
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(Error::InvalidConfig {
                setting: "min_cleanable_dirty_ratio",
                reason: format!("{ratio} is outside (0, 1]"),
            });
        }
        if let Some(max) = self.max_compaction_lag
            && max < self.min_compaction_lag
        {
            return Err(Error::InvalidConfig {
                setting: "max_compaction_lag",
                reason: format!(
                    "{max:?} is below min_compaction_lag {:?}",
                    self.min_compaction_lag
                ),
            });
        }
        Ok(())
    }
}

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
    /// ([`Dispatch`](crate::Dispatch)). Default: on its own threads.
    pub completion_dispatch: crate::Dispatch,
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
            completion_dispatch: crate::Dispatch::inline(),
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
    pub fn with_completion_dispatch(mut self, dispatch: crate::Dispatch) -> Self {
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
