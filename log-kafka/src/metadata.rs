//! Metadata and FindCoordinator: one broker (this one) leads every
//! partition and coordinates every group, at the address the listener
//! advertises. Also here: finding a topic by name, creating it when Kafka's
//! `auto.create.topics.enable` would.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, FindCoordinatorRequest, FindCoordinatorResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use log_storage::{Error, TopicConfig, TopicInfo};

use crate::errors::{self, code};
use crate::{Ctx, epochs};

/// A stable, non-nil Kafka topic id for a topic: its random 64-bit id in
/// both halves (the high one inverted). A topic created again under the
/// same name has a new id, so a new uuid.
pub(crate) fn topic_uuid(info: &TopicInfo) -> uuid::Uuid {
    uuid::Uuid::from_u64_pair(info.id, !info.id)
}

/// The topic `name`, created with the default partition count when it does
/// not exist and `create` allows it.
pub(crate) fn topic(ctx: &Ctx, name: &str, create: bool) -> Result<TopicInfo, Error> {
    match ctx.store.topic(name) {
        Err(Error::TopicNotFound { .. }) if create && ctx.config.auto_create_topics => {
            match ctx.store.create_topic(
                name,
                ctx.config.default_partitions.max(1),
                TopicConfig::default(),
            ) {
                Ok(info) => {
                    tracing::info!(topic = name, "kafka: topic created on first use");
                    Ok(info)
                }
                // Created by another request meanwhile.
                Err(Error::TopicExists { .. }) => ctx.store.topic(name),
                Err(err) => Err(err),
            }
        }
        other => other,
    }
}

fn broker(ctx: &Ctx) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(BrokerId(ctx.config.node_id))
        .with_host(StrBytes::from_string(ctx.host.clone()))
        .with_port(ctx.port)
}

fn topic_entry(ctx: &Ctx, info: &TopicInfo, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(ctx.config.node_id);
    let partitions = (0..info.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p as i32)
                .with_leader_id(node)
                // The current epoch of an open partition (the server opens
                // them all at start); unknown (-1, clients then skip epoch
                // checks) while one is still being opened, and before
                // version 7, which has no such field.
                .with_leader_epoch(match ctx.store.open_log(&info.name, p) {
                    Some(log) if version >= 7 => epochs::current(&log),
                    _ => epochs::UNKNOWN,
                })
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(info.name.clone()))))
        .with_topic_id(topic_uuid(info))
        .with_partitions(partitions)
}

fn error_entry(name: Option<TopicName>, err: &Error) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_error_code(errors::storage(err).0)
}

/// The Metadata answer.
pub(crate) fn metadata(ctx: &Ctx, request: MetadataRequest, version: i16) -> MetadataResponse {
    // Version 0 has no null list: an empty one means every topic.
    let wanted = match request.topics {
        Some(topics) if version == 0 && topics.is_empty() => None,
        other => other,
    };
    let topics = match wanted {
        None => match ctx.store.list_topics() {
            Ok(mut all) => {
                all.sort_by(|a, b| a.name.cmp(&b.name));
                all.iter()
                    .map(|info| topic_entry(ctx, info, version))
                    .collect()
            }
            Err(err) => {
                tracing::warn!(error = %err, "kafka metadata: cannot list topics");
                Vec::new()
            }
        },
        Some(wanted) => {
            // Auto-creation is the broker's default before version 4, the
            // request's choice from it.
            let create = version < 4 || request.allow_auto_topic_creation;
            wanted
                .into_iter()
                .map(|t| match t.name {
                    Some(name) => match topic(ctx, &name.0, create) {
                        Ok(info) => topic_entry(ctx, &info, version),
                        Err(err) => error_entry(Some(name), &err),
                    },
                    // A request by topic id only: ids are not looked up.
                    None => MetadataResponseTopic::default()
                        .with_topic_id(t.topic_id)
                        .with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION),
                })
                .collect()
        }
    };
    MetadataResponse::default()
        .with_brokers(vec![broker(ctx)])
        .with_cluster_id(Some(StrBytes::from_string(ctx.config.cluster_id.clone())))
        .with_controller_id(BrokerId(ctx.config.node_id))
        .with_topics(topics)
}

/// The FindCoordinator answer: this broker, for every key.
pub(crate) fn find_coordinator(
    ctx: &Ctx,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let host = StrBytes::from_string(ctx.host.clone());
    let node = BrokerId(ctx.config.node_id);
    if version >= 4 {
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node)
                    .with_host(host.clone())
                    .with_port(ctx.port)
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    FindCoordinatorResponse::default()
        .with_node_id(node)
        .with_host(host)
        .with_port(ctx.port)
}
