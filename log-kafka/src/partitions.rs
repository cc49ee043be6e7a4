//! CreatePartitions (grow a topic) and DeleteRecords (move a partition's
//! log start forward, durably, as the gRPC call does), plus DescribeCluster
//! (this one broker).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, DescribeClusterRequest, DescribeClusterResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::Ctx;
use crate::errors::{self, code};

/// The CreatePartitions answer.
pub(crate) fn create(ctx: &Ctx, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            let refuse = |error: i16, message: String| {
                CreatePartitionsTopicResult::default()
                    .with_name(topic.name.clone())
                    .with_error_code(error)
                    .with_error_message(Some(StrBytes::from_string(message)))
            };
            let info = match ctx.store.topic(&topic.name.0) {
                Ok(info) => info,
                Err(err) => {
                    let (error, message) = errors::storage(&err);
                    return refuse(error, message);
                }
            };
            let count = match u32::try_from(topic.count) {
                Ok(count) if count > info.partitions => count,
                _ => {
                    return refuse(
                        code::INVALID_PARTITIONS,
                        format!(
                            "topic has {} partitions; {} is not more",
                            info.partitions, topic.count
                        ),
                    );
                }
            };
            if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
                return refuse(
                    code::INVALID_REQUEST,
                    "manual replica assignment is not supported".to_owned(),
                );
            }
            if request.validate_only {
                return result;
            }
            match ctx.store.create_partitions(&topic.name.0, count) {
                Ok(_) => result,
                Err(err) => {
                    let (error, message) = errors::storage(&err);
                    refuse(error, message)
                }
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

/// The DeleteRecords answer: each partition's new low watermark. Offset -1
/// means the high watermark (the durable end).
pub(crate) fn delete_records(ctx: &Ctx, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    let log = match u32::try_from(p.partition_index) {
                        Ok(index) => ctx.store.partition(&topic.name.0, index),
                        Err(_) => {
                            return result.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION);
                        }
                    };
                    let log = match log {
                        Ok(log) => log,
                        Err(err) => return result.with_error_code(errors::storage(&err).0),
                    };
                    let before = match p.offset {
                        -1 => log.watermarks().durable_end,
                        o => match u64::try_from(o) {
                            Ok(o) => o,
                            Err(_) => return result.with_error_code(code::OFFSET_OUT_OF_RANGE),
                        },
                    };
                    match log.delete_records(before) {
                        Ok(start) => result.with_low_watermark(start as i64),
                        Err(err) => result.with_error_code(errors::storage(&err).0),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

/// The DescribeCluster answer: this broker, its own controller.
pub(crate) fn describe_cluster(
    ctx: &Ctx,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let node = BrokerId(ctx.config.node_id);
    DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(ctx.config.cluster_id.clone()))
        .with_controller_id(node)
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(StrBytes::from_string(ctx.host.clone()))
                .with_port(ctx.port),
        ])
}
