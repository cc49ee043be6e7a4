//! IncrementalAlterConfigs and AlterConfigs on topics: a topic's configs
//! changed after its creation, under the names CreateTopics takes
//! (`admin.rs`), persisted by the store and applied to the topic's open
//! partitions at once (`Store::alter_topic_config`).
//!
//! IncrementalAlterConfigs (what `kafka-configs --alter` and the Java
//! admin's `incrementalAlterConfigs` send): SET a value, DELETE (back to
//! the default), APPEND to and SUBTRACT from the one list config,
//! `cleanup.policy`; APPEND or SUBTRACT on any other is INVALID_CONFIG, as
//! Kafka answers. AlterConfigs (the older call, kafka-python's
//! `alter_configs`) replaces the whole config: what it does not name goes
//! back to its default. Either way a refused config changes nothing for
//! its resource, and `validate_only` changes nothing at all. Broker
//! configs are fixed at start: a broker resource is INVALID_REQUEST.

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse as WholeResult;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use log_storage::{CleanupPolicy, TopicConfig};

use crate::Ctx;
use crate::admin::{Refused, apply};
use crate::errors::{self, code};

/// Kafka's `ConfigResource.Type` of a topic.
const TOPIC: i8 = 2;

/// Kafka's `AlterConfigOp.OpType`.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// One change of an IncrementalAlterConfigs resource.
struct Change<'a> {
    name: &'a str,
    operation: i8,
    value: Option<&'a str>,
}

/// The IncrementalAlterConfigs answer.
pub(crate) fn incremental(
    ctx: &Ctx,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let changes: Vec<Change<'_>> = resource
                .configs
                .iter()
                .map(|c| Change {
                    name: c.name.as_str(),
                    operation: c.config_operation,
                    value: c.value.as_deref(),
                })
                .collect();
            let outcome = alter(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |current| {
                    let mut config = current.clone();
                    for change in &changes {
                        incremental_change(&mut config, change)?;
                    }
                    Ok(config)
                },
            );
            let (error, message) = answer(outcome);
            IncrementalResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(error)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The AlterConfigs answer.
pub(crate) fn whole(ctx: &Ctx, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let outcome = alter(
                ctx,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |_| {
                    let mut config = TopicConfig::default();
                    for c in &resource.configs {
                        apply(&mut config, &c.name, c.value.as_deref())?;
                    }
                    Ok(config)
                },
            );
            let (error, message) = answer(outcome);
            WholeResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(error)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// A resource's error code and message.
fn answer(outcome: Result<(), Refused>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (code::NONE, None),
        Err((error, message)) => (error, Some(StrBytes::from_string(message))),
    }
}

/// Alters one resource: `change` makes the new config from the topic's.
fn alter(
    ctx: &Ctx,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(&TopicConfig) -> Result<TopicConfig, Refused>,
) -> Result<(), Refused> {
    if resource_type != TOPIC {
        return Err((
            code::INVALID_REQUEST,
            format!(
                "resource type {resource_type} cannot be altered: broker configs are fixed at start"
            ),
        ));
    }
    let current = ctx.store.topic(name).map_err(|e| errors::storage(&e))?;
    let mut config = change(&current.config)?;
    // As CreateTopics: a batch never spans segments, so a smaller
    // `segment.bytes` lowers an unchanged largest batch with it.
    if u64::from(config.max_batch_bytes) > config.segment_max_bytes
        && config.max_batch_bytes == current.config.max_batch_bytes
    {
        config.max_batch_bytes = u32::try_from(config.segment_max_bytes).unwrap_or(u32::MAX);
    }
    config
        .validate()
        .map_err(|err| (code::INVALID_CONFIG, err.to_string()))?;
    if validate_only {
        return Ok(());
    }
    ctx.store
        .alter_topic_config(name, config)
        .map(drop)
        .map_err(|e| errors::storage(&e))
}

/// Applies one IncrementalAlterConfigs operation to `config`.
fn incremental_change(config: &mut TopicConfig, change: &Change<'_>) -> Result<(), Refused> {
    match change.operation {
        SET => apply(config, change.name, change.value),
        DELETE => reset(config, change.name),
        APPEND | SUBTRACT if change.name == "cleanup.policy" => {
            let Some(value) = change.value else {
                return Err((code::INVALID_CONFIG, "cleanup.policy: no value".into()));
            };
            let (mut delete, mut compact) = (
                config.cleanup.cleanup_policy.deletes(),
                config.cleanup.cleanup_policy.compacts(),
            );
            for item in value.split(',').map(str::trim) {
                let on = change.operation == APPEND;
                match item {
                    "delete" => delete = on,
                    "compact" => compact = on,
                    other => {
                        return Err((
                            code::INVALID_CONFIG,
                            format!("cleanup.policy: {other:?} is not delete or compact"),
                        ));
                    }
                }
            }
            config.cleanup.cleanup_policy = match (delete, compact) {
                (true, false) => CleanupPolicy::Delete,
                (false, true) => CleanupPolicy::Compact,
                (true, true) => CleanupPolicy::CompactDelete,
                (false, false) => {
                    return Err((
                        code::INVALID_CONFIG,
                        "cleanup.policy cannot be empty".into(),
                    ));
                }
            };
            Ok(())
        }
        APPEND | SUBTRACT => Err((
            code::INVALID_CONFIG,
            format!("{} is not a list: only SET and DELETE apply", change.name),
        )),
        other => Err((
            code::INVALID_REQUEST,
            format!("unknown config operation {other}"),
        )),
    }
}

/// Puts config `name` back to its default (DELETE).
fn reset(config: &mut TopicConfig, name: &str) -> Result<(), Refused> {
    let d = TopicConfig::default();
    match name {
        "retention.ms" => config.retention_max_age = d.retention_max_age,
        "retention.bytes" => config.retention_max_bytes = d.retention_max_bytes,
        "segment.bytes" => config.segment_max_bytes = d.segment_max_bytes,
        "segment.ms" => config.segment_max_age = d.segment_max_age,
        "max.message.bytes" => config.max_batch_bytes = d.max_batch_bytes,
        "cleanup.policy" => config.cleanup.cleanup_policy = d.cleanup.cleanup_policy,
        "min.cleanable.dirty.ratio" => {
            config.cleanup.min_cleanable_dirty_ratio = d.cleanup.min_cleanable_dirty_ratio
        }
        "min.compaction.lag.ms" => config.cleanup.min_compaction_lag = d.cleanup.min_compaction_lag,
        "max.compaction.lag.ms" => config.cleanup.max_compaction_lag = d.cleanup.max_compaction_lag,
        "delete.retention.ms" => config.cleanup.delete_retention = d.cleanup.delete_retention,
        "cold.compression.type" => config.cleanup.cold_codec = d.cleanup.cold_codec,
        "cold.compression.lag.ms" => {
            config.cleanup.cold_compression_lag = d.cleanup.cold_compression_lag
        }
        // An unknown name: `apply` refuses it as CreateTopics does.
        other => return apply(config, other, Some("")),
    }
    Ok(())
}
