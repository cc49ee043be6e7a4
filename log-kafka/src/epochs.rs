//! Leader epochs, Kafka's truncation detection (KIP-320), answered with the
//! store's crash-truncation epoch: every stored batch carries it as
//! partitionLeaderEpoch, Metadata and ListOffsets report the current one,
//! Fetch and ListOffsets check a client's `current_leader_epoch` against
//! it, and OffsetForLeaderEpoch says where an older epoch ends, so a
//! consumer that read past what a crash later cut finds out and resets (or
//! raises `LogTruncationException`), as against Kafka after an unclean
//! leader election.
//!
//! This module holds no state: the epoch history is the partition's own
//! (`log_storage::Log::epoch_end`).

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use log_storage::Log;

use crate::Ctx;
use crate::errors::{self, code};

/// Kafka's "no epoch" (`RecordBatch.NO_PARTITION_LEADER_EPOCH`).
pub(crate) const UNKNOWN: i32 = -1;

/// The partition's current epoch as Kafka's i32.
pub(crate) fn current(log: &Log) -> i32 {
    i32::try_from(log.watermarks().epoch).unwrap_or(i32::MAX)
}

/// Checks a client's `current_leader_epoch` as a Kafka leader does: -1
/// skips the check, an older epoch is FENCED_LEADER_EPOCH (the client
/// refreshes its metadata), a newer one UNKNOWN_LEADER_EPOCH (the client
/// knows of an epoch this server has not reached; it retries).
pub(crate) fn check(log: &Log, current_leader_epoch: i32) -> Result<(), i16> {
    if current_leader_epoch < 0 {
        return Ok(());
    }
    let ours = current(log);
    match current_leader_epoch.cmp(&ours) {
        std::cmp::Ordering::Less => Err(code::FENCED_LEADER_EPOCH),
        std::cmp::Ordering::Greater => Err(code::UNKNOWN_LEADER_EPOCH),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// The OffsetForLeaderEpoch answer: per partition, the epoch asked about
/// (or the largest known one below it) and the offset where it ends; an
/// epoch past the current one is answered -1 / -1 (undefined), as Kafka
/// answers it.
pub(crate) fn offset_for_leader_epoch(
    ctx: &Ctx,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.topic.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(UNKNOWN)
                        .with_end_offset(-1);
                    let log = u32::try_from(p.partition)
                        .map_err(|_negative| code::UNKNOWN_TOPIC_OR_PARTITION)
                        .and_then(|index| {
                            ctx.store
                                .partition(&name, index)
                                .map_err(|e| errors::storage(&e).0)
                        });
                    let log = match log
                        .and_then(|log| check(&log, p.current_leader_epoch).map(|()| log))
                    {
                        Ok(log) => log,
                        Err(error) => return answer.with_error_code(error),
                    };
                    let end = u64::try_from(p.leader_epoch)
                        .ok()
                        .and_then(|epoch| log.epoch_end(epoch));
                    match end {
                        Some(end) => answer
                            .with_leader_epoch(i32::try_from(end.epoch).unwrap_or(i32::MAX))
                            .with_end_offset(i64::try_from(end.end_offset).unwrap_or(i64::MAX)),
                        None => answer,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
