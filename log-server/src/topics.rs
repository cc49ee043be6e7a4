//! Topics on the wire: a storage [`TopicInfo`] as the protobuf `Topic`,
//! and a request's `TopicConfig` as the storage's (unset fields at their
//! defaults, every value checked). No I/O; the services call it.

use std::time::Duration;

use log_client::proto;
use log_format::Codec;
use log_storage::{Ack, CleanupPolicy, TopicConfig, TopicInfo};
use tonic::{Code, Status};

use crate::state::Shared;
use crate::status;

/// The protobuf form of a topic.
pub(crate) fn topic_message(topic: &TopicInfo) -> proto::Topic {
    let c = &topic.config;
    proto::Topic {
        name: topic.name.clone(),
        partition_count: topic.partitions,
        config: Some(proto::TopicConfig {
            retention: c.retention_max_age.map(ms_duration),
            retention_bytes: c.retention_max_bytes,
            segment_bytes: Some(c.segment_max_bytes),
            segment_age: Some(ms_duration(c.segment_max_age)),
            max_batch_bytes: Some(c.max_batch_bytes),
            default_ack: match c.default_ack {
                Ack::Durable => proto::Ack::Durable as i32,
                Ack::Written => proto::Ack::Written as i32,
            },
            cleanup_policy: match c.cleanup.cleanup_policy {
                CleanupPolicy::Delete => proto::CleanupPolicy::Delete,
                CleanupPolicy::Compact => proto::CleanupPolicy::Compact,
                CleanupPolicy::CompactDelete => proto::CleanupPolicy::CompactDelete,
            } as i32,
            min_cleanable_dirty_ratio: Some(c.cleanup.min_cleanable_dirty_ratio),
            min_compaction_lag: Some(ms_duration(c.cleanup.min_compaction_lag)),
            max_compaction_lag: c.cleanup.max_compaction_lag.map(ms_duration),
            delete_retention: Some(ms_duration(c.cleanup.delete_retention)),
            cold_compression: match c.cleanup.cold_codec {
                Codec::Lz4 => proto::Compression::Lz4,
                Codec::Zstd => proto::Compression::Zstd,
                _ => proto::Compression::None,
            } as i32,
            cold_compression_lag: Some(ms_duration(c.cleanup.cold_compression_lag)),
        }),
    }
}

/// A duration on the wire.
pub(crate) fn ms_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A topic config's duration; zero is unset (the storage checks the
/// range: whole milliseconds below 2^64).
fn from_proto_duration(field: &str, d: &prost_types::Duration) -> Result<Option<Duration>, Status> {
    let d = crate::state::duration(field, d)?;
    Ok((!d.is_zero()).then_some(d))
}

/// A storage topic config from a request's (unset fields: defaults).
pub(crate) fn topic_config(
    shared: &Shared,
    config: Option<&proto::TopicConfig>,
) -> Result<TopicConfig, Status> {
    let mut out = TopicConfig::default();
    out.max_batch_bytes = shared.config.max_batch_bytes;
    match config {
        Some(c) => apply_topic_config(shared, out, c),
        None => Ok(out),
    }
}

/// `base` with the settings `c` sets changed (unset fields, unspecified
/// enums: as in `base`), checked.
pub(crate) fn apply_topic_config(
    shared: &Shared,
    base: TopicConfig,
    c: &proto::TopicConfig,
) -> Result<TopicConfig, Status> {
    let mut out = base;
    if let Some(d) = &c.retention {
        out.retention_max_age = from_proto_duration("config.retention", d)?;
    }
    if let Some(b) = c.retention_bytes {
        out.retention_max_bytes = (b > 0).then_some(b);
    }
    if let Some(b) = c.segment_bytes {
        out.segment_max_bytes = b;
    }
    if let Some(d) = &c.segment_age
        && let Some(d) = from_proto_duration("config.segment_age", d)?
    {
        out.segment_max_age = d;
    }
    if let Some(b) = c.max_batch_bytes {
        if b > shared.config.max_batch_bytes {
            return Err(status::status(
                Code::InvalidArgument,
                status::reason::INVALID_CONFIG,
                format!(
                    "max_batch_bytes {b} exceeds the server's limit of {}",
                    shared.config.max_batch_bytes
                ),
                &[("setting", "max_batch_bytes".into())],
            ));
        }
        out.max_batch_bytes = b;
    }
    out.default_ack = match proto::Ack::try_from(c.default_ack) {
        Ok(proto::Ack::Unspecified) => out.default_ack,
        Ok(proto::Ack::Durable) => Ack::Durable,
        Ok(proto::Ack::Written) => Ack::Written,
        Err(_) => return Err(status::invalid("config.default_ack", "unknown ack")),
    };
    out.cleanup.cleanup_policy = match proto::CleanupPolicy::try_from(c.cleanup_policy) {
        Ok(proto::CleanupPolicy::Unspecified) => out.cleanup.cleanup_policy,
        Ok(proto::CleanupPolicy::Delete) => CleanupPolicy::Delete,
        Ok(proto::CleanupPolicy::Compact) => CleanupPolicy::Compact,
        Ok(proto::CleanupPolicy::CompactDelete) => CleanupPolicy::CompactDelete,
        Err(_) => {
            return Err(status::invalid(
                "config.cleanup_policy",
                "unknown cleanup policy",
            ));
        }
    };
    if let Some(ratio) = c.min_cleanable_dirty_ratio {
        out.cleanup.min_cleanable_dirty_ratio = ratio;
    }
    if let Some(d) = &c.min_compaction_lag {
        out.cleanup.min_compaction_lag =
            from_proto_duration("config.min_compaction_lag", d)?.unwrap_or_default();
    }
    if let Some(d) = &c.max_compaction_lag {
        out.cleanup.max_compaction_lag = from_proto_duration("config.max_compaction_lag", d)?;
    }
    if let Some(d) = &c.delete_retention {
        out.cleanup.delete_retention =
            from_proto_duration("config.delete_retention", d)?.unwrap_or_default();
    }
    out.cleanup.cold_codec = match proto::Compression::try_from(c.cold_compression) {
        Ok(proto::Compression::Unspecified) => out.cleanup.cold_codec,
        Ok(proto::Compression::None) => Codec::None,
        Ok(proto::Compression::Lz4) => Codec::Lz4,
        Ok(proto::Compression::Zstd) => Codec::Zstd,
        Err(_) => {
            return Err(status::invalid(
                "config.cold_compression",
                "unknown compression",
            ));
        }
    };
    if let Some(d) = &c.cold_compression_lag {
        out.cleanup.cold_compression_lag =
            from_proto_duration("config.cold_compression_lag", d)?.unwrap_or_default();
    }
    out.validate().map_err(|e| status::storage(&e))?;
    Ok(out)
}
