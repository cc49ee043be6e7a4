//! ListOffsets: the earliest offset (-2), the latest (-1: the high
//! watermark, the durable end), or the first offset at or after a time.
//!
//! A time is matched against the log's append times (Kafka's
//! `LogAppendTime`), which the storage indexes; the answer's timestamp is
//! that batch's append time. With append times, which never go back, the
//! max-timestamp query (-3, version 7) is the last durable record, with
//! its batch's append time.
//!
//! From version 4 the answer carries the partition's current epoch and a
//! client's `current_leader_epoch` is checked against it (`epochs.rs`);
//! versions 1–3 have no such fields (librdkafka 2.0, Debian's kcat, asks
//! version 2).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use log_format::{BatchHeader, Limits};
use log_storage::{Isolation, Log};

use crate::errors::{self, code};
use crate::{Ctx, epochs};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

/// The ListOffsets answer.
pub(crate) fn list_offsets(
    ctx: &Ctx,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
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
                    let log = log
                        .and_then(|log| epochs::check(&log, p.current_leader_epoch).map(|()| log));
                    match log.and_then(|log| Ok((lookup(&log, p.timestamp)?, log))) {
                        Ok(((offset, timestamp), log)) => {
                            let response = response.with_offset(offset).with_timestamp(timestamp);
                            if version >= 4 {
                                response.with_leader_epoch(epochs::current(&log))
                            } else {
                                response
                            }
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
