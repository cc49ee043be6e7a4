//! Fetch: the Kafka part of the stored frames, sliced out and sent as
//! stored (never re-encoded), up to the durable end; a long poll waits on
//! the partitions' change signals (no polling loop) until `min_bytes` are
//! there or `max_wait_ms` passed.
//!
//! Each partition answers whole batches, at least one when one is there
//! (the first may begin before the fetch offset: clients skip those
//! records, as with Kafka), at most `partition_max_bytes`, and the whole
//! answer at most `max_bytes` (and the listener's `max_fetch_bytes`).
//! Fetch sessions are declined (session id 0), which clients handle by
//! sending full requests. READ_COMMITTED reads the same as
//! READ_UNCOMMITTED: there are no transactions. A `current_leader_epoch`
//! other than the partition's is refused per partition (`epochs.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use log_format::{BatchHeader, FRAME_HEADER_LEN, Limits};
use log_storage::{Error, Isolation, Log, Watermarks};
use tokio::time::Instant;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::WatchStream;

use crate::errors::{self, code};
use crate::wire::{Call, Reply};
use crate::{Ctx, epochs};

/// One partition asked for.
struct Wanted {
    topic: usize,
    index: i32,
    offset: i64,
    max_bytes: usize,
    log: Result<Arc<Log>, (i16, String)>,
}

/// Starts a Fetch; it runs as its own task.
pub(crate) fn start(ctx: &Arc<Ctx>, call: Call, request: FetchRequest) -> Reply {
    let ctx = Arc::clone(ctx);
    Reply::Later(Box::pin(async move {
        let response = fetch(&ctx, request).await;
        call.answer(&response).map(Some)
    }))
}

async fn fetch(ctx: &Ctx, request: FetchRequest) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0))
        .min(ctx.config.max_fetch_wait);
    let deadline = Instant::now() + wait;
    let max_bytes = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(ctx.config.max_fetch_bytes);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let mut names: Vec<TopicName> = Vec::with_capacity(request.topics.len());
    let mut wanted = Vec::new();
    let mut signals = tokio_stream::StreamMap::new();
    for topic in request.topics {
        let name = topic.topic.0.to_string();
        let info = ctx.store.topic(&name);
        for p in topic.partitions {
            let log = match &info {
                Err(err) => Err(errors::storage(err)),
                Ok(info) => match u32::try_from(p.partition) {
                    Ok(index) => ctx
                        .store
                        .partition(&name, index)
                        .map_err(|e| errors::storage(&e))
                        .and_then(|log| {
                            epochs::check(&log, p.current_leader_epoch)
                                .map(|()| log)
                                .map_err(|error| (error, "stale or future leader epoch".into()))
                        })
                        .inspect(|log| {
                            // Subscribed before the first read, so a change
                            // after it is not missed.
                            if let Some(rx) = ctx.changes.watch(info, log) {
                                signals.insert(wanted.len(), WatchStream::from_changes(rx));
                            }
                        }),
                    Err(_) => Err((
                        code::UNKNOWN_TOPIC_OR_PARTITION,
                        format!("partition {} does not exist", p.partition),
                    )),
                },
            };
            wanted.push(Wanted {
                topic: names.len(),
                index: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                log,
            });
        }
        names.push(topic.topic);
    }
    loop {
        let (parts, bytes, failed) = read_all(&wanted, max_bytes);
        let expired = Instant::now() >= deadline;
        if bytes >= min_bytes.max(1) || failed || expired || signals.is_empty() {
            return answer(names, parts);
        }
        // Nothing (or too little) yet: wait for a partition to move.
        if tokio::time::timeout_at(deadline, signals.next())
            .await
            .is_err()
        {
            let (parts, _, _) = read_all(&wanted, max_bytes);
            return answer(names, parts);
        }
    }
}

/// Reads every wanted partition once: the answers, the record bytes in
/// them, and whether one failed.
fn read_all(wanted: &[Wanted], max_bytes: usize) -> (Vec<(usize, PartitionData)>, usize, bool) {
    let mut left = max_bytes;
    let mut total = 0;
    let mut failed = false;
    let mut parts = Vec::with_capacity(wanted.len());
    for w in wanted {
        let data = PartitionData::default().with_partition_index(w.index);
        let data = match &w.log {
            Err((error, _)) => {
                failed = true;
                data.with_error_code(*error)
            }
            Ok(log) => {
                // Past the first partition's data, the answer's budget
                // caps each one (the first always gets a batch).
                let budget = if total == 0 {
                    w.max_bytes.max(1)
                } else {
                    w.max_bytes.min(left)
                };
                match read_one(log, w.offset, budget) {
                    Ok((records, marks)) => {
                        total += records.len();
                        left = left.saturating_sub(records.len());
                        with_marks(data, &marks).with_records(Some(records))
                    }
                    Err((error, marks)) => {
                        failed = true;
                        let data = data.with_error_code(error);
                        match marks {
                            Some(marks) => with_marks(data, &marks),
                            None => data,
                        }
                    }
                }
            }
        };
        parts.push((w.topic, data));
    }
    (parts, total, failed)
}

fn with_marks(data: PartitionData, marks: &Watermarks) -> PartitionData {
    data.with_high_watermark(marks.durable_end as i64)
        .with_last_stable_offset(marks.durable_end as i64)
        .with_log_start_offset(marks.log_start as i64)
}

/// The Kafka batches of one partition from `offset`: the stored frames'
/// Kafka parts, back to back.
fn read_one(
    log: &Log,
    offset: i64,
    max_bytes: usize,
) -> Result<(Bytes, Watermarks), (i16, Option<Watermarks>)> {
    let Ok(offset) = u64::try_from(offset) else {
        return Err((code::OFFSET_OUT_OF_RANGE, Some(log.watermarks())));
    };
    if max_bytes == 0 {
        return Ok((Bytes::new(), log.watermarks()));
    }
    let read = match log.read(offset, max_bytes, Isolation::Durable) {
        Ok(read) => read,
        Err(err @ Error::OffsetOutOfRange { .. }) => {
            return Err((errors::storage(&err).0, Some(log.watermarks())));
        }
        Err(err) => {
            tracing::warn!(error = %err, "kafka fetch: read failed");
            return Err((errors::storage(&err).0, None));
        }
    };
    Ok((kafka_batches(&read.batches), read.watermarks))
}

/// The Kafka batch of every frame in `frames` (whole frames the storage
/// verified), back to back.
fn kafka_batches(frames: &Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(frames.len());
    let mut pos = 0usize;
    while pos < frames.len() {
        let Ok(header) = BatchHeader::parse(&frames[pos..], pos as u64, &Limits::unlimited())
        else {
            break;
        };
        let end = pos + header.length as usize;
        let Some(frame) = frames.get(pos + FRAME_HEADER_LEN..end) else {
            break;
        };
        out.extend_from_slice(frame);
        pos = end;
    }
    out.freeze()
}

fn answer(names: Vec<TopicName>, parts: Vec<(usize, PartitionData)>) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = names
        .into_iter()
        .map(|name| FetchableTopicResponse::default().with_topic(name))
        .collect();
    for (topic, data) in parts {
        if let Some(t) = topics.get_mut(topic) {
            t.partitions.push(data);
        }
    }
    FetchResponse::default().with_responses(topics)
}
