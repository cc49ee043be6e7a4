//! The settings of one partition log, [`LogConfig`], with their units in
//! their names and their defaults documented, and the log cleaner's
//! ([`Cleanup`], with the cleanup policy), which a topic persists as they
//! are.
//! How a whole store runs is [`StoreConfig`](crate::StoreConfig), in
//! `store/config.rs`; a topic's persisted settings are
//! [`TopicConfig`](crate::TopicConfig).
//!
//! This module only holds and checks numbers; it reads no file and uses
//! no other module of the crate but the errors.

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
    /// [`StoreConfig::free_space_check_interval`](crate::StoreConfig::free_space_check_interval) (100 ms): one `statfs`
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
    /// What the log cleaner does with the old sealed segments: Kafka's
    /// cleanup policy and compaction settings, and cold compression
    /// ([`Cleanup`], which a topic persists as it is). Default
    /// [`Cleanup::default`].
    pub cleanup: Cleanup,
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

/// What the log cleaner does with a log's old sealed segments: Kafka's
/// `cleanup.policy` and compaction settings, and cold compression. The
/// settings a partition's [`LogConfig`] and a topic's persisted
/// [`TopicConfig`](crate::TopicConfig) share. `#[non_exhaustive]`: start
/// from [`Cleanup::default`] and set the fields you need.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Cleanup {
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
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup {
            cleanup_policy: CleanupPolicy::Delete,
            min_cleanable_dirty_ratio: DEFAULT_MIN_CLEANABLE_DIRTY_RATIO,
            min_compaction_lag: Duration::ZERO,
            max_compaction_lag: None,
            delete_retention: DEFAULT_DELETE_RETENTION,
            cold_codec: Codec::None,
            cold_compression_lag: DEFAULT_COLD_COMPRESSION_LAG,
        }
    }
}

impl Cleanup {
    /// Checks the values that depend on nothing else (the codec, the
    /// dirty ratio, the order of the compaction lags).
    pub fn validate(&self) -> Result<(), Error> {
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
            cleanup: Cleanup::default(),
            preallocate_bytes: 0,
            gather_writes: true,
        }
    }
}

/// Default [`Cleanup::min_cleanable_dirty_ratio`]: 0.5, as Kafka.
pub const DEFAULT_MIN_CLEANABLE_DIRTY_RATIO: f64 = 0.5;
/// Default [`Cleanup::cold_compression_lag`]: 1 hour.
pub const DEFAULT_COLD_COMPRESSION_LAG: Duration = Duration::from_secs(3600);
/// Default [`Cleanup::delete_retention`]: 1 day, as Kafka.
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
        self.cleanup.validate()
    }
}
