//! Settings of one partition log, with their units in their names and their
//! defaults documented.
//!
//! This module only holds and checks numbers; it reads no file (the store
//! persists per-topic configs elsewhere).

use std::time::Duration;

use log_format::Limits;

use crate::error::Error;

/// Settings of a partition [`Log`](crate::Log).
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Forget an idempotent producer id whose last batch was appended
    /// longer ago than this, at the next producer-state snapshot (a roll
    /// or a clean close), as Kafka's `producer.id.expiration.ms` does; a
    /// retry from it after that is a new producer's first batch. Default 7
    /// days.
    pub producer_id_expiration: Duration,
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
            producer_id_expiration: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

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
        Ok(())
    }
}
