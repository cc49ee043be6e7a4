//! CreateTopics and DeleteTopics, with the topic configs this log has under
//! Kafka's names: `retention.ms`, `retention.bytes`, `segment.bytes`,
//! `segment.ms`, `max.message.bytes`, `cleanup.policy` (`delete`,
//! `compact` or both), `min.cleanable.dirty.ratio`,
//! `min.compaction.lag.ms`, `max.compaction.lag.ms` and
//! `delete.retention.ms`, `cold.compression.type` and
//! `cold.compression.lag.ms`. Any other config is INVALID_CONFIG, as Kafka
//! answers an unknown one. One broker: a replication factor other than 1
//! (or -1, the default) is INVALID_REPLICATION_FACTOR.

use std::time::Duration;

use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use log_format::Codec;
use log_storage::{CleanupPolicy, TopicConfig};

use crate::Ctx;
use crate::errors::{self, code};
use crate::metadata::topic_uuid;

/// A config value refused: the code and message.
pub(crate) type Refused = (i16, String);

fn number(name: &str, value: &str) -> Result<i64, Refused> {
    value.trim().parse::<i64>().map_err(|_| {
        (
            code::INVALID_CONFIG,
            format!("{name} must be an integer, not {value:?}"),
        )
    })
}

fn non_negative(name: &str, value: &str) -> Result<u64, Refused> {
    u64::try_from(number(name, value)?)
        .map_err(|_| (code::INVALID_CONFIG, format!("{name} must not be negative")))
}

/// Applies one Kafka topic config to `config`.
pub(crate) fn apply(
    config: &mut TopicConfig,
    name: &str,
    value: Option<&str>,
) -> Result<(), Refused> {
    let Some(value) = value else {
        // Null: the default, which `config` already has.
        return Ok(());
    };
    match name {
        "retention.ms" => {
            config.retention_max_age = match number(name, value)? {
                -1 => None,
                ms => Some(Duration::from_millis(non_negative(name, &ms.to_string())?)),
            }
        }
        "retention.bytes" => {
            config.retention_max_bytes = match number(name, value)? {
                -1 => None,
                bytes => Some(non_negative(name, &bytes.to_string())?),
            }
        }
        "segment.bytes" => config.segment_max_bytes = non_negative(name, value)?,
        "segment.ms" => config.segment_max_age = Duration::from_millis(non_negative(name, value)?),
        "max.message.bytes" => {
            config.max_batch_bytes = u32::try_from(non_negative(name, value)?).map_err(|_| {
                (
                    code::INVALID_CONFIG,
                    format!("max.message.bytes {value} is too large"),
                )
            })?
        }
        "cleanup.policy" => {
            config.cleanup.cleanup_policy = CleanupPolicy::parse(value).ok_or_else(|| {
                (
                    code::INVALID_CONFIG,
                    format!("cleanup.policy {value:?} is not a list of \"delete\" and \"compact\""),
                )
            })?
        }
        "min.cleanable.dirty.ratio" => {
            config.cleanup.min_cleanable_dirty_ratio = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| *r >= 0.0 && *r <= 1.0)
                .ok_or_else(|| {
                    (
                        code::INVALID_CONFIG,
                        format!(
                            "min.cleanable.dirty.ratio must be a number in [0, 1], not {value:?}"
                        ),
                    )
                })?
                // Kafka accepts 0 (clean whenever anything is dirty).
                .max(f64::MIN_POSITIVE)
        }
        "min.compaction.lag.ms" => {
            config.cleanup.min_compaction_lag = Duration::from_millis(non_negative(name, value)?)
        }
        "max.compaction.lag.ms" => {
            config.cleanup.max_compaction_lag = match non_negative(name, value)? {
                0 => {
                    return Err((
                        code::INVALID_CONFIG,
                        "max.compaction.lag.ms must be positive".into(),
                    ));
                }
                ms if ms >= i64::MAX as u64 => None,
                ms => Some(Duration::from_millis(ms)),
            }
        }
        "delete.retention.ms" => {
            config.cleanup.delete_retention = Duration::from_millis(non_negative(name, value)?)
        }
        "cold.compression.type" => {
            config.cleanup.cold_codec = match value.trim() {
                "none" | "uncompressed" => Codec::None,
                "lz4" => Codec::Lz4,
                "zstd" => Codec::Zstd,
                _ => {
                    return Err((
                        code::INVALID_CONFIG,
                        format!("cold.compression.type {value:?} is not one of none, lz4, zstd"),
                    ));
                }
            }
        }
        "cold.compression.lag.ms" => {
            config.cleanup.cold_compression_lag = Duration::from_millis(non_negative(name, value)?)
        }
        other => {
            return Err((
                code::INVALID_CONFIG,
                format!("unknown topic config {other:?}"),
            ));
        }
    }
    Ok(())
}

/// The CreateTopics answer.
pub(crate) fn create_topics(ctx: &Ctx, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            let refuse = |(error, message): Refused| {
                CreatableTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(error)
                    .with_error_message(Some(StrBytes::from_string(message)))
            };
            if !matches!(topic.replication_factor, -1 | 1) {
                return refuse((
                    code::INVALID_REPLICATION_FACTOR,
                    format!(
                        "replication factor {} on a single broker",
                        topic.replication_factor
                    ),
                ));
            }
            if !topic.assignments.is_empty() {
                return refuse((
                    code::INVALID_REQUEST,
                    "manual replica assignment is not supported".to_owned(),
                ));
            }
            let partitions = match topic.num_partitions {
                -1 => ctx.config.default_partitions.max(1),
                n => match u32::try_from(n) {
                    Ok(n) if n > 0 => n,
                    _ => {
                        return refuse((code::INVALID_PARTITIONS, format!("{n} partitions")));
                    }
                },
            };
            let mut config = TopicConfig::default();
            for c in &topic.configs {
                if let Err(refused) = apply(&mut config, &c.name, c.value.as_deref()) {
                    return refuse(refused);
                }
            }
            // A batch never spans segments here: a `segment.bytes` below the
            // default largest batch lowers it, unless `max.message.bytes`
            // was given too (then the two must agree). Kafka's default
            // largest batch (1 MiB) is never above its smallest segment.
            let max_given = topic
                .configs
                .iter()
                .any(|c| c.name.as_str() == "max.message.bytes" && c.value.is_some());
            if !max_given && u64::from(config.max_batch_bytes) > config.segment_max_bytes {
                config.max_batch_bytes =
                    u32::try_from(config.segment_max_bytes).unwrap_or(u32::MAX);
            }
            if let Err(err) = config.validate() {
                return refuse((code::INVALID_CONFIG, err.to_string()));
            }
            if request.validate_only {
                return match ctx.store.topic(&name) {
                    Ok(_) => refuse((
                        code::TOPIC_ALREADY_EXISTS,
                        format!("topic {name:?} already exists"),
                    )),
                    Err(_) => result
                        .with_num_partitions(partitions as i32)
                        .with_replication_factor(1),
                };
            }
            match ctx.store.create_topic(&name, partitions, config) {
                Ok(info) => result
                    .with_topic_id(topic_uuid(&info))
                    .with_num_partitions(info.partitions as i32)
                    .with_replication_factor(1),
                Err(err) => refuse(errors::storage(&err)),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// The DeleteTopics answer (by name; topics named by id only are not
/// found).
pub(crate) fn delete_topics(
    ctx: &Ctx,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let names: Vec<Option<TopicName>> = if version >= 6 {
        request.topics.into_iter().map(|t| t.name).collect()
    } else {
        request.topic_names.into_iter().map(Some).collect()
    };
    let responses = names
        .into_iter()
        .map(|name| {
            let result = DeletableTopicResult::default().with_name(name.clone());
            let Some(name) = name else {
                return result.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
            };
            match ctx.store.delete_topic(&name.0) {
                Ok(()) => result,
                Err(err) => {
                    let (error, message) = errors::storage(&err);
                    result
                        .with_error_code(error)
                        .with_error_message(Some(StrBytes::from_string(message)))
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}
