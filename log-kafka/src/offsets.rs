//! OffsetCommit and OffsetFetch: a group's committed offsets, the same the
//! gRPC API commits and reads (the store's, held until durable).
//!
//! A commit is fenced as Kafka fences it (`log_groups::Coordinator::
//! check_commit`): a member of a managed group commits in its own
//! generation, a zombie or a stale generation is refused
//! (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
//! REBALANCE_IN_PROGRESS), and a group without members takes commits of
//! generation -1 (a consumer that assigns its partitions by hand).

use kafka_protocol::messages::offset_commit_request::OffsetCommitRequestPartition;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::Ctx;
use crate::errors::{self, code};

/// The OffsetCommit answer.
pub(crate) fn commit(ctx: &Ctx, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let fenced = ctx
        .groups
        .check_commit(&log_groups::MemberRef {
            group_id: group.clone(),
            generation: request.generation_id_or_member_epoch,
            member_id: request.member_id.as_str().to_owned(),
            group_instance_id: request
                .group_instance_id
                .as_ref()
                .map(|s| s.as_str().to_owned()),
        })
        .err()
        .map(|err| errors::group(&err));
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let metadata = p.committed_metadata.as_deref().unwrap_or("");
                    let error = match fenced {
                        Some(error) => error,
                        None => store_commit(ctx, &group, &name, &p, metadata),
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// Commits one partition's offset to the store: the Kafka code of the
/// outcome.
fn store_commit(
    ctx: &Ctx,
    group: &str,
    topic: &str,
    p: &OffsetCommitRequestPartition,
    metadata: &str,
) -> i16 {
    match (
        u32::try_from(p.partition_index),
        u64::try_from(p.committed_offset),
    ) {
        (Ok(index), Ok(offset)) => {
            match ctx
                .store
                .commit_offset(group, topic, index, offset, metadata.as_bytes())
            {
                Ok(_) => code::NONE,
                Err(err) => errors::storage(&err).0,
            }
        }
        (Err(_), _) => code::UNKNOWN_TOPIC_OR_PARTITION,
        (_, Err(_)) => code::OFFSET_OUT_OF_RANGE,
    }
}

/// The OffsetFetch answer (one group, versions 1–7): -1 for a partition
/// asked for without a committed offset.
pub(crate) fn fetch(ctx: &Ctx, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let group = request.group_id.0.to_string();
    // A null list asks for the group's committed offsets: the partitions
    // that have one, as Kafka answers (not every partition with -1).
    let wanted: Vec<(TopicName, Vec<i32>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect(),
        None => ctx
            .store
            .list_topics()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|info| {
                let partitions: Vec<i32> = (0..info.partitions)
                    .filter(|&p| {
                        matches!(
                            ctx.store.committed_offset(&group, &info.name, p),
                            Ok(Some(_))
                        )
                    })
                    .map(|p| p as i32)
                    .collect();
                (!partitions.is_empty())
                    .then(|| (TopicName(StrBytes::from_string(info.name)), partitions))
            })
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .map(|(name, partitions)| {
            let topic = name.0.to_string();
            let partitions = partitions
                .into_iter()
                .map(|index| {
                    let response = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::from_static_str("")));
                    let Ok(p) = u32::try_from(index) else {
                        return response.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                    };
                    match ctx.store.committed_offset(&group, &topic, p) {
                        Ok(Some((offset, metadata))) => response
                            .with_committed_offset(offset as i64)
                            .with_metadata(Some(StrBytes::from_string(
                                String::from_utf8_lossy(&metadata).into_owned(),
                            ))),
                        Ok(None) => response,
                        Err(err) => response.with_error_code(errors::storage(&err).0),
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}
