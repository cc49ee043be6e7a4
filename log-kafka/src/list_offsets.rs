//! ListOffsets: the earliest offset (-2), the latest (-1: the high
//! watermark, the durable end), or the first offset at or after a time.
//!
//! A time is matched against the log's append times (Kafka's
//! `LogAppendTime`), which the storage indexes; the answer's timestamp is
//! that batch's append time. With append times, which never go back, the
//! max-timestamp query (-3, version 7) is the last durable record, with
//! its batch's append time.
//!
//! The leader epoch is answered unknown (-1), as Metadata answers it: the
//! field exists from version 4 only, the handler does not see the version,
//! and a value there cannot be encoded at versions 1–3 (librdkafka 2.0,
//! Debian's kcat, asks version 2).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use log_format::{BatchHeader, Limits};
use log_storage::{Isolation, Log};

use crate::Ctx;
use crate::errors::{self, code};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// The ListOffsets answer.
pub(crate) fn list_offsets(ctx: &Ctx, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let name = topic.name.0.to_string();
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let log = u32::try_from(p.partition_index)
                        .map_err(|_negative| code::UNKNOWN_TOPIC_OR_PARTITION)
                        .and_then(|index| {
                            ctx.store
                                .partition(&name, index)
                                .map_err(|e| errors::storage(&e).0)
                        });
                    match log.and_then(|log| lookup(&log, p.timestamp)) {
                        Ok((offset, timestamp)) => {
                            response.with_offset(offset).with_timestamp(timestamp)
                        }
                        Err(error) => response.with_error_code(error),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(offset, timestamp)` for one query.
fn lookup(log: &Log, timestamp: i64) -> Result<(i64, i64), i16> {
    let marks = log.watermarks();
    match timestamp {
        LATEST => Ok((marks.durable_end as i64, -1)),
        EARLIEST => Ok((marks.log_start as i64, -1)),
        MAX_TIMESTAMP if marks.durable_end <= marks.log_start => Ok((-1, -1)),
        MAX_TIMESTAMP => with_append_time(log, marks.durable_end - 1),
        t if t >= 0 => match log.offset_for_time(t).map_err(|e| errors::storage(&e).0)? {
            Some(offset) => with_append_time(log, offset),
            None => Ok((-1, -1)),
        },
        _ => Err(code::UNSUPPORTED_VERSION),
    }
}

/// `offset` with the append time of the batch holding it; `(-1, -1)` when
/// it is not durable yet (as if nothing matched).
fn with_append_time(log: &Log, offset: u64) -> Result<(i64, i64), i16> {
    let read = log
        .read(offset, 1, Isolation::Durable)
        .map_err(|e| errors::storage(&e).0)?;
    Ok(
        match BatchHeader::parse(&read.batches, 0, &Limits::unlimited()) {
            Ok(header) => (offset as i64, header.append_time),
            Err(_) => (-1, -1),
        },
    )
}
