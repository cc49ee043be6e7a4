//! DescribeConfigs: a topic's configs under Kafka's names, with the
//! source Kafka would give (`DEFAULT_CONFIG` for a value left at its
//! default, `TOPIC_CONFIG` for one the topic sets) and its type. A broker
//! resource answers no configs; other resource types are INVALID_REQUEST.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use log_storage::TopicConfig;

use crate::Ctx;
use crate::errors::{self, code};

/// Kafka's `ConfigResource.Type`.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Kafka's `DescribeConfigsResponse.ConfigSource`.
const TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// Kafka's `ConfigDef.Type` as DescribeConfigs v3+ numbers it.
const STRING: i8 = 2;
const INT: i8 = 3;
const LONG: i8 = 5;
const DOUBLE: i8 = 6;
const LIST: i8 = 7;

/// Kafka's spelling of "no limit" for a lag: `Long.MAX_VALUE`.
fn no_limit(d: Option<std::time::Duration>) -> String {
    d.map_or(i64::MAX.to_string(), |d| d.as_millis().to_string())
}

/// `(name, value, default value, type)` of each config a topic has.
fn entries(config: &TopicConfig) -> Vec<(&'static str, String, String, i8)> {
    let default = TopicConfig::default();
    let ms =
        |d: Option<std::time::Duration>| d.map_or("-1".to_owned(), |d| d.as_millis().to_string());
    let bytes = |b: Option<u64>| b.map_or("-1".to_owned(), |b| b.to_string());
    vec![
        (
            "retention.ms",
            ms(config.retention_max_age),
            ms(default.retention_max_age),
            LONG,
        ),
        (
            "retention.bytes",
            bytes(config.retention_max_bytes),
            bytes(default.retention_max_bytes),
            LONG,
        ),
        (
            "segment.bytes",
            config.segment_max_bytes.to_string(),
            default.segment_max_bytes.to_string(),
            INT,
        ),
        (
            "segment.ms",
            config.segment_max_age.as_millis().to_string(),
            default.segment_max_age.as_millis().to_string(),
            LONG,
        ),
        (
            "max.message.bytes",
            config.max_batch_bytes.to_string(),
            default.max_batch_bytes.to_string(),
            INT,
        ),
        (
            "cleanup.policy",
            config.cleanup.cleanup_policy.name().into(),
            default.cleanup.cleanup_policy.name().into(),
            LIST,
        ),
        (
            "min.cleanable.dirty.ratio",
            config.cleanup.min_cleanable_dirty_ratio.to_string(),
            default.cleanup.min_cleanable_dirty_ratio.to_string(),
            DOUBLE,
        ),
        (
            "min.compaction.lag.ms",
            config.cleanup.min_compaction_lag.as_millis().to_string(),
            default.cleanup.min_compaction_lag.as_millis().to_string(),
            LONG,
        ),
        (
            "max.compaction.lag.ms",
            no_limit(config.cleanup.max_compaction_lag),
            no_limit(default.cleanup.max_compaction_lag),
            LONG,
        ),
        (
            "delete.retention.ms",
            config.cleanup.delete_retention.as_millis().to_string(),
            default.cleanup.delete_retention.as_millis().to_string(),
            LONG,
        ),
        (
            "cold.compression.type",
            config.cleanup.cold_codec.name().into(),
            default.cleanup.cold_codec.name().into(),
            STRING,
        ),
        (
            "cold.compression.lag.ms",
            config.cleanup.cold_compression_lag.as_millis().to_string(),
            default.cleanup.cold_compression_lag.as_millis().to_string(),
            LONG,
        ),
    ]
}

/// The DescribeConfigs answer.
pub(crate) fn describe(ctx: &Ctx, request: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                BROKER => result,
                TOPIC => match ctx.store.topic(&resource.resource_name) {
                    Err(err) => {
                        let (error, message) = errors::storage(&err);
                        result
                            .with_error_code(error)
                            .with_error_message(Some(StrBytes::from_string(message)))
                    }
                    Ok(info) => {
                        let configs = entries(&info.config)
                            .into_iter()
                            .filter(|(name, ..)| {
                                resource
                                    .configuration_keys
                                    .as_ref()
                                    .is_none_or(|keys| keys.iter().any(|k| &**k == *name))
                            })
                            .map(|(name, value, default, kind)| {
                                let source = if value == default {
                                    DEFAULT_CONFIG
                                } else {
                                    TOPIC_CONFIG
                                };
                                DescribeConfigsResourceResult::default()
                                    .with_name(StrBytes::from_static_str(name))
                                    .with_value(Some(StrBytes::from_string(value)))
                                    .with_config_source(source)
                                    .with_config_type(kind)
                            })
                            .collect();
                        result.with_configs(configs)
                    }
                },
                other => result
                    .with_error_code(code::INVALID_REQUEST)
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "resource type {other} is not described"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}
