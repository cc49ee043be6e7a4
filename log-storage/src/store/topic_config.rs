//! A topic's settings ([`TopicConfig`]), what the store tells of a topic
//! ([`TopicInfo`]), and their file, `topic.config`.
//!
//! # `topic.config` format (version 3), 112 bytes, little-endian
//!
//! | bytes  | field                                                      |
//! |--------|------------------------------------------------------------|
//! | 0..4   | magic `LTOP`                                               |
//! | 4..6   | version, 3                                                 |
//! | 6..8   | flags: bit 0 `retention_max_age` set, bit 1 `retention_max_bytes` set, bit 2 `max_compaction_lag` set; others zero |
//! | 8..16  | topic id: random, fixed at creation                        |
//! | 16..20 | partitions                                                 |
//! | 20     | default ack: 0 durable, 1 written                          |
//! | 21     | cleanup policy: 0 delete, 1 compact, 2 compact and delete  |
//! | 22     | cold compression codec: Kafka's codec id (0 none, 3 lz4, 4 zstd) |
//! | 23     | reserved, zero                                             |
//! | 24..32 | `segment_max_bytes`                                        |
//! | 32..40 | `segment_max_age`, ms                                      |
//! | 40..48 | `retention_max_age`, ms (zero when unset)                  |
//! | 48..56 | `retention_max_bytes` (zero when unset)                    |
//! | 56..60 | `max_batch_bytes`                                          |
//! | 60..68 | `min_cleanable_dirty_ratio`, IEEE 754 double               |
//! | 68..76 | `min_compaction_lag`, ms                                   |
//! | 76..84 | `max_compaction_lag`, ms (zero when unset)                 |
//! | 84..92 | `delete_retention`, ms                                     |
//! | 92..100 | `cold_compression_lag`, ms                                |
//! | 100..108 | reserved, zero                                           |
//! | 108..112 | CRC-32 (IEEE) of bytes 0..108                            |
//!
//! Older versions are still read, with what they lack at its default:
//! version 2 (100 bytes: bytes 0..92 as above with byte 22 reserved, 4
//! reserved bytes, then the CRC) and version 1 (64 bytes: bytes 0..60 as
//! above with byte 21 reserved, then the CRC; no compaction settings).
//!
//! A config that fails any check makes [`Store::open`] fail with
//! [`Error::CorruptMetadata`] naming the file: a topic is never served
//! with a default config in place of its own.
//!
//! This module reads and writes no file itself: the store hands it bytes.

use std::path::Path;
use std::time::Duration;

use log_format::{Codec, Limits};

use crate::config::{Cleanup, CleanupPolicy, LogConfig};
use crate::error::Error;
use crate::partition::Ack;

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// The persisted settings of a topic, applied to each of its partitions.
/// Each field is the [`LogConfig`] setting of the same name, whose docs
/// say what it does; here, the default and the range a topic accepts.
/// Durations are stored in whole milliseconds, so a topic's must be whole
/// milliseconds. `#[non_exhaustive]`: start from [`TopicConfig::default`]
/// and set the fields you need.
///
/// ```
/// let mut config = log_storage::TopicConfig::default();
/// config.retention_max_bytes = Some(10 << 30);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicConfig {
    /// [`LogConfig::segment_max_bytes`]. Default 1 GiB; 4096 to 4 GiB − 1.
    pub segment_max_bytes: u64,
    /// [`LogConfig::segment_max_age`]. Default 7 days; positive.
    pub segment_max_age: Duration,
    /// [`LogConfig::retention_max_age`] (`None`: kept whatever their age).
    /// Default `None`; positive.
    pub retention_max_age: Option<Duration>,
    /// [`LogConfig::retention_max_bytes`] (`None`: no size limit). Default
    /// `None`; positive.
    pub retention_max_bytes: Option<u64>,
    /// The ack level producers get when they do not ask for one (for the
    /// server to apply; a partition has no default ack). Default
    /// [`Ack::Durable`].
    pub default_ack: Ack,
    /// [`Limits::max_batch_bytes`] of [`LogConfig::limits`]: the largest
    /// batch accepted, header included. Default 8 MiB; 1 to
    /// `segment_max_bytes`.
    pub max_batch_bytes: u32,
    /// [`LogConfig::cleanup`]: the cleanup policy, compaction and cold
    /// compression. Default [`Cleanup::default`]; the lags and the delete
    /// retention whole milliseconds, `max_compaction_lag` positive.
    pub cleanup: Cleanup,
}

impl Default for TopicConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        TopicConfig {
            segment_max_bytes: log.segment_max_bytes,
            segment_max_age: log.segment_max_age,
            retention_max_age: log.retention_max_age,
            retention_max_bytes: log.retention_max_bytes,
            default_ack: Ack::Durable,
            max_batch_bytes: log.limits.max_batch_bytes,
            cleanup: log.cleanup,
        }
    }
}

impl TopicConfig {
    /// Checks every value (see each field); a topic is never created with
    /// an invalid config.
    pub fn validate(&self) -> Result<(), Error> {
        let whole_ms = |setting: &'static str, d: Duration| {
            if !d.subsec_nanos().is_multiple_of(1_000_000) || u64::try_from(d.as_millis()).is_err()
            {
                return Err(Error::InvalidConfig {
                    setting,
                    reason: format!("{d:?} is not a whole number of milliseconds below 2^64"),
                });
            }
            if d.is_zero() {
                return Err(Error::InvalidConfig {
                    setting,
                    reason: "must be positive".into(),
                });
            }
            Ok(())
        };
        whole_ms("segment_max_age", self.segment_max_age)?;
        if let Some(age) = self.retention_max_age {
            whole_ms("retention_max_age", age)?;
        }
        if let Some(lag) = self.cleanup.max_compaction_lag {
            whole_ms("max_compaction_lag", lag)?;
        }
        for (setting, d) in [
            ("min_compaction_lag", self.cleanup.min_compaction_lag),
            ("delete_retention", self.cleanup.delete_retention),
            ("cold_compression_lag", self.cleanup.cold_compression_lag),
        ] {
            if !d.is_zero() {
                whole_ms(setting, d)?;
            }
        }
        if self.retention_max_bytes == Some(0) {
            return Err(Error::InvalidConfig {
                setting: "retention_max_bytes",
                reason: "must be positive".into(),
            });
        }
        if self.max_batch_bytes == 0 {
            return Err(Error::InvalidConfig {
                setting: "max_batch_bytes",
                reason: "must be positive".into(),
            });
        }
        self.log_config().validate()
    }

    /// The partition [`LogConfig`] this topic config maps to (the index
    /// interval and the record limit keep their defaults; the default ack
    /// is for the server to apply).
    pub fn log_config(&self) -> LogConfig {
        let defaults = LogConfig::default();
        LogConfig {
            segment_max_bytes: self.segment_max_bytes,
            segment_max_age: self.segment_max_age,
            retention_max_age: self.retention_max_age,
            retention_max_bytes: self.retention_max_bytes,
            limits: Limits {
                max_batch_bytes: self.max_batch_bytes,
                ..defaults.limits
            },
            cleanup: self.cleanup.clone(),
            ..defaults
        }
    }
}

/// What a store knows of a topic.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// Random id fixed when the topic is created: a topic deleted and
    /// created again under the same name gets a new one, and offsets
    /// committed to the old one are not returned for the new one.
    pub id: u64,
    /// Number of partitions, numbered from 0.
    pub partitions: u32,
    /// The topic's config.
    pub config: TopicConfig,
}

/// The content of `topic.config`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TopicMeta {
    pub(super) id: u64,
    pub(super) partitions: u32,
    pub(super) config: TopicConfig,
}

pub(super) fn check_partitions(partitions: u32) -> Result<(), Error> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(Error::InvalidConfig {
            setting: "partitions",
            reason: format!("{partitions} is outside [1, {MAX_PARTITIONS}]"),
        });
    }
    Ok(())
}

const CONFIG_MAGIC: &[u8; 4] = b"LTOP";
const CONFIG_VERSION: u16 = 3;
pub(super) const CONFIG_LEN: usize = 112;
const CONFIG_CRC_AT: usize = 108;
const V2_LEN: usize = 100;
const V2_CRC_AT: usize = 96;
const V1_LEN: usize = 64;
const V1_CRC_AT: usize = 60;
const FLAG_RETENTION_AGE: u16 = 1;
const FLAG_RETENTION_BYTES: u16 = 2;
const FLAG_MAX_COMPACTION_LAG: u16 = 4;

fn ms(d: Duration) -> u64 {
    // Validated: whole milliseconds below 2^64.
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn encode_config(meta: &TopicMeta) -> [u8; CONFIG_LEN] {
    let c = &meta.config;
    let mut flags = 0u16;
    if c.retention_max_age.is_some() {
        flags |= FLAG_RETENTION_AGE;
    }
    if c.retention_max_bytes.is_some() {
        flags |= FLAG_RETENTION_BYTES;
    }
    if c.cleanup.max_compaction_lag.is_some() {
        flags |= FLAG_MAX_COMPACTION_LAG;
    }
    let mut out = [0u8; CONFIG_LEN];
    out[0..4].copy_from_slice(CONFIG_MAGIC);
    out[4..6].copy_from_slice(&CONFIG_VERSION.to_le_bytes());
    out[6..8].copy_from_slice(&flags.to_le_bytes());
    out[8..16].copy_from_slice(&meta.id.to_le_bytes());
    out[16..20].copy_from_slice(&meta.partitions.to_le_bytes());
    out[20] = match c.default_ack {
        Ack::Durable => 0,
        Ack::Written => 1,
    };
    out[24..32].copy_from_slice(&c.segment_max_bytes.to_le_bytes());
    out[32..40].copy_from_slice(&ms(c.segment_max_age).to_le_bytes());
    out[40..48].copy_from_slice(&c.retention_max_age.map_or(0, ms).to_le_bytes());
    out[48..56].copy_from_slice(&c.retention_max_bytes.unwrap_or(0).to_le_bytes());
    out[56..60].copy_from_slice(&c.max_batch_bytes.to_le_bytes());
    out[21] = match c.cleanup.cleanup_policy {
        CleanupPolicy::Delete => 0,
        CleanupPolicy::Compact => 1,
        CleanupPolicy::CompactDelete => 2,
    };
    out[60..68].copy_from_slice(&c.cleanup.min_cleanable_dirty_ratio.to_bits().to_le_bytes());
    out[68..76].copy_from_slice(&ms(c.cleanup.min_compaction_lag).to_le_bytes());
    out[76..84].copy_from_slice(&c.cleanup.max_compaction_lag.map_or(0, ms).to_le_bytes());
    out[84..92].copy_from_slice(&ms(c.cleanup.delete_retention).to_le_bytes());
    out[22] = c.cleanup.cold_codec.id() as u8;
    out[92..100].copy_from_slice(&ms(c.cleanup.cold_compression_lag).to_le_bytes());
    let crc = crc32fast::hash(&out[..CONFIG_CRC_AT]);
    out[CONFIG_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

pub(super) fn decode_config(path: &Path, bytes: &[u8]) -> Result<TopicMeta, Error> {
    let corrupt = |position: u64, reason: String| Error::CorruptMetadata {
        path: path.to_path_buf(),
        position,
        what: reason,
    };
    if bytes.len() < 6 || &bytes[..4] != CONFIG_MAGIC {
        return Err(corrupt(0, "not a topic config (bad magic)".into()));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    let (len, crc_at) = match version {
        1 => (V1_LEN, V1_CRC_AT),
        2 => (V2_LEN, V2_CRC_AT),
        CONFIG_VERSION => (CONFIG_LEN, CONFIG_CRC_AT),
        _ => {
            return Err(corrupt(
                4,
                format!("unsupported version {version} (this build reads 1 to {CONFIG_VERSION})"),
            ));
        }
    };
    if bytes.len() != len {
        return Err(corrupt(
            bytes.len().min(len) as u64,
            format!("file is {} bytes, expected {len}", bytes.len()),
        ));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let stored = u32_at(crc_at);
    let computed = crc32fast::hash(&bytes[..crc_at]);
    if stored != computed {
        return Err(corrupt(
            crc_at as u64,
            format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
    let known = match version {
        1 => FLAG_RETENTION_AGE | FLAG_RETENTION_BYTES,
        _ => FLAG_RETENTION_AGE | FLAG_RETENTION_BYTES | FLAG_MAX_COMPACTION_LAG,
    };
    if flags & !known != 0 {
        return Err(corrupt(6, format!("unknown flags {flags:#06x}")));
    }
    let (reserved_from, reserved_tail) = match version {
        1 => (21, 0..0),
        2 => (22, 92..96),
        _ => (23, 100..108),
    };
    if bytes[reserved_from..24].iter().any(|&b| b != 0)
        || bytes[reserved_tail].iter().any(|&b| b != 0)
    {
        return Err(corrupt(
            reserved_from as u64,
            "reserved bytes are not zero".into(),
        ));
    }
    let default_ack = match bytes[20] {
        0 => Ack::Durable,
        1 => Ack::Written,
        other => return Err(corrupt(20, format!("unknown ack level {other}"))),
    };
    let partitions = u32_at(16);
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(corrupt(
            16,
            format!("{partitions} partitions is outside [1, {MAX_PARTITIONS}]"),
        ));
    }
    let mut config = TopicConfig {
        segment_max_bytes: u64_at(24),
        segment_max_age: Duration::from_millis(u64_at(32)),
        retention_max_age: (flags & FLAG_RETENTION_AGE != 0)
            .then(|| Duration::from_millis(u64_at(40))),
        retention_max_bytes: (flags & FLAG_RETENTION_BYTES != 0).then(|| u64_at(48)),
        default_ack,
        max_batch_bytes: u32_at(56),
        ..TopicConfig::default()
    };
    if version > 1 {
        config.cleanup.cleanup_policy = match bytes[21] {
            0 => CleanupPolicy::Delete,
            1 => CleanupPolicy::Compact,
            2 => CleanupPolicy::CompactDelete,
            other => return Err(corrupt(21, format!("unknown cleanup policy {other}"))),
        };
        config.cleanup.min_cleanable_dirty_ratio = f64::from_bits(u64_at(60));
        config.cleanup.min_compaction_lag = Duration::from_millis(u64_at(68));
        config.cleanup.max_compaction_lag =
            (flags & FLAG_MAX_COMPACTION_LAG != 0).then(|| Duration::from_millis(u64_at(76)));
        config.cleanup.delete_retention = Duration::from_millis(u64_at(84));
    }
    if version > 2 {
        config.cleanup.cold_codec = Codec::from_id(u16::from(bytes[22]))
            .ok_or_else(|| corrupt(22, format!("unknown codec id {}", bytes[22])))?;
        config.cleanup.cold_compression_lag = Duration::from_millis(u64_at(92));
    }
    if let Err(err) = config.validate() {
        return Err(corrupt(24, format!("stored config is invalid: {err}")));
    }
    Ok(TopicMeta {
        id: u64_at(8),
        partitions,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TopicMeta {
        let config = TopicConfig {
            retention_max_bytes: Some(1 << 30),
            default_ack: Ack::Written,
            ..TopicConfig::default()
        };
        TopicMeta {
            id: 0xfeed_beef,
            partitions: 12,
            config,
        }
    }

    #[test]
    fn topic_configs_roundtrip() {
        let path = Path::new("/d/topics/t/topic.config");
        let meta = meta();
        assert_eq!(decode_config(path, &encode_config(&meta)).unwrap(), meta);
        let mut none = meta.clone();
        none.config.retention_max_age = None;
        none.config.retention_max_bytes = None;
        assert_eq!(decode_config(path, &encode_config(&none)).unwrap(), none);
        let mut compacted = meta.clone();
        compacted.config.cleanup.cleanup_policy = CleanupPolicy::CompactDelete;
        compacted.config.cleanup.min_cleanable_dirty_ratio = 0.25;
        compacted.config.cleanup.min_compaction_lag = Duration::from_secs(60);
        compacted.config.cleanup.max_compaction_lag = Some(Duration::from_secs(3600));
        compacted.config.cleanup.delete_retention = Duration::from_millis(1500);
        compacted.config.cleanup.cold_codec = Codec::Zstd;
        compacted.config.cleanup.cold_compression_lag = Duration::from_secs(90);
        assert_eq!(
            decode_config(path, &encode_config(&compacted)).unwrap(),
            compacted
        );
    }

    #[test]
    fn a_version_2_config_reads_with_cold_compression_off() {
        let path = Path::new("/d/topics/t/topic.config");
        let mut meta = meta();
        meta.config.cleanup.cleanup_policy = CleanupPolicy::Compact;
        let v3 = encode_config(&meta);
        let mut v2 = [0u8; V2_LEN];
        v2[..92].copy_from_slice(&v3[..92]);
        v2[4..6].copy_from_slice(&2u16.to_le_bytes());
        let crc = crc32fast::hash(&v2[..V2_CRC_AT]);
        v2[V2_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_config(path, &v2).unwrap(), meta);
    }

    #[test]
    fn a_version_1_config_reads_with_the_compaction_defaults() {
        let path = Path::new("/d/topics/t/topic.config");
        let meta = meta();
        let v2 = encode_config(&meta);
        let mut v1 = [0u8; V1_LEN];
        v1[..V1_CRC_AT].copy_from_slice(&v2[..V1_CRC_AT]);
        v1[4..6].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&v1[..V1_CRC_AT]);
        v1[V1_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_config(path, &v1).unwrap(), meta);
    }

    #[test]
    fn every_flipped_bit_and_every_cut_of_a_config_is_reported() {
        let path = Path::new("/d/topics/t/topic.config");
        let bytes = encode_config(&meta());
        for bit in 0..CONFIG_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            let err = decode_config(path, &damaged).unwrap_err();
            assert!(
                matches!(&err, Error::CorruptMetadata { path: p, .. } if p == path),
                "bit {bit}: {err}"
            );
        }
        for len in 0..CONFIG_LEN {
            assert!(decode_config(path, &bytes[..len]).is_err(), "cut at {len}");
        }
        assert!(decode_config(path, &[0u8; CONFIG_LEN]).is_err());
    }

    #[test]
    fn config_validation_refuses_bad_values() {
        let d = TopicConfig::default;
        for bad in [
            TopicConfig {
                segment_max_age: Duration::from_micros(1500),
                ..d()
            },
            TopicConfig {
                retention_max_age: Some(Duration::ZERO),
                ..d()
            },
            TopicConfig {
                retention_max_bytes: Some(0),
                ..d()
            },
            TopicConfig {
                max_batch_bytes: 0,
                ..d()
            },
            TopicConfig {
                segment_max_bytes: 100,
                ..d()
            },
            TopicConfig {
                cleanup: Cleanup {
                    cold_codec: Codec::Gzip,
                    ..Cleanup::default()
                },
                ..d()
            },
            TopicConfig {
                cleanup: Cleanup {
                    cold_compression_lag: Duration::from_micros(10),
                    ..Cleanup::default()
                },
                ..d()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        TopicConfig::default().validate().unwrap();
    }
}
