//! Produce and InitProducerId.
//!
//! A Produce's batches are checked and framed by
//! [`log_format::frame_kafka`] (all of a partition's before any is
//! written, so a bad one leaves the partition untouched) and appended as
//! sent: `acks=all` waits for the group commit's `fdatasync` (the request's
//! part after its writes runs as its own task, so later requests of the
//! connection are not held behind the sync), `acks=1` answers after
//! `write(2)` and schedules a sync, `acks=0` answers nothing. Producer ids
//! come from [`ProducerIds`]; the sequence checks are the storage's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use log_format::{KAFKA_LOG_OVERHEAD, Limits};
use log_storage::{Ack, AppendOptions, Appended, Error};
use tokio::sync::oneshot;

use crate::Ctx;
use crate::errors::{self, code};
use crate::metadata;
use crate::wire::{Call, Closing, Reply};

/// Hands out idempotent producer ids: the start time in ms in the high
/// bits and a counter in the low 20, so ids of a restarted server do not
/// repeat those it gave before (within 2^20 ids per ms of uptime).
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: AtomicU64,
}

impl ProducerIds {
    pub(crate) fn new() -> ProducerIds {
        let start = u64::try_from(log_format::now_ms()).unwrap_or(0) & ((1 << 42) - 1);
        ProducerIds {
            next: AtomicU64::new(start << 20),
        }
    }

    fn next(&self) -> i64 {
        (self.next.fetch_add(1, Ordering::Relaxed) & (i64::MAX as u64)) as i64
    }
}

/// The InitProducerId answer: a new id at epoch 0, or the same id at the
/// next epoch when the producer names its own (KIP-360). Transactional
/// producers are refused.
pub(crate) fn init_producer_id(
    ctx: &Ctx,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    if request.transactional_id.is_some() {
        return InitProducerIdResponse::default()
            .with_error_code(code::UNSUPPORTED_FOR_MESSAGE_FORMAT)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let (id, epoch) = if request.producer_id.0 >= 0 && request.producer_epoch >= 0 {
        match request.producer_epoch.checked_add(1) {
            Some(epoch) => (request.producer_id.0, epoch),
            None => (ctx.producer_ids.next(), 0),
        }
    } else {
        (ctx.producer_ids.next(), 0)
    };
    InitProducerIdResponse::default()
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch)
}

/// How one partition's part of a Produce ended, or will.
enum Outcome {
    Done(Result<Appended, (i16, String)>),
    /// Durable appends in flight: the first batch's offsets come from the
    /// first receiver.
    Waiting(Vec<oneshot::Receiver<Result<Appended, Error>>>),
}

struct PartitionPart {
    index: i32,
    outcome: Outcome,
    log_start: i64,
}

/// Starts a Produce: writes every batch now, in request order; the answer
/// waits for the syncs `acks=all` asks for.
pub(crate) fn start(ctx: &Arc<Ctx>, call: Call, request: ProduceRequest) -> Result<Reply, Closing> {
    let ack = match request.acks {
        -1 => Some(Ack::Durable),
        0 | 1 => Some(Ack::Written),
        _ => None,
    };
    let refused = if request.transactional_id.is_some() {
        Some((
            code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            "transactions are not supported".to_owned(),
        ))
    } else if ack.is_none() {
        Some((
            code::INVALID_REQUIRED_ACKS,
            format!("acks {} is not -1, 0 or 1", request.acks),
        ))
    } else {
        None
    };
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in request.topic_data {
        let name = topic.name.0.to_string();
        let info = metadata::topic(ctx, &name, true);
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let index = data.index;
            let done = |e: (i16, String)| PartitionPart {
                index,
                outcome: Outcome::Done(Err(e)),
                log_start: -1,
            };
            if let Some(refused) = &refused {
                parts.push(done(refused.clone()));
                continue;
            }
            let info = match &info {
                Ok(info) => info,
                Err(err) => {
                    parts.push(done(errors::storage(err)));
                    continue;
                }
            };
            let log = match u32::try_from(index)
                .map_err(|_negative| Error::PartitionNotFound {
                    topic: name.clone(),
                    partition: 0,
                    partitions: info.partitions,
                })
                .and_then(|p| ctx.store.partition(&name, p))
            {
                Ok(log) => log,
                Err(err) => {
                    parts.push(done(errors::storage(&err)));
                    continue;
                }
            };
            let limits = Limits {
                max_batch_bytes: info.config.max_batch_bytes,
                ..Limits::default()
            };
            let frames = match frames(data.records.unwrap_or_default(), &limits) {
                Ok(frames) => frames,
                Err(e) => {
                    parts.push(done(e));
                    continue;
                }
            };
            let ack = ack.unwrap_or_default();
            let log_start = log.watermarks().log_start as i64;
            let outcome = match ack {
                Ack::Written => {
                    let mut first = None;
                    let mut failed = None;
                    for frame in frames {
                        match log.append(
                            frame,
                            AppendOptions {
                                ack,
                                ..Default::default()
                            },
                        ) {
                            Ok(appended) => {
                                first.get_or_insert(appended);
                            }
                            Err(err) => {
                                failed = Some(errors::storage(&err));
                                break;
                            }
                        }
                    }
                    log.sync_soon(ctx.store.committer());
                    match (failed, first) {
                        (Some(e), _) => Outcome::Done(Err(e)),
                        (None, Some(first)) => Outcome::Done(Ok(first)),
                        (None, None) => Outcome::Done(Err((
                            code::CORRUPT_MESSAGE,
                            "no record batch".to_owned(),
                        ))),
                    }
                }
                Ack::Durable => {
                    let mut waiting = Vec::with_capacity(frames.len());
                    for frame in frames {
                        let (tx, rx) = oneshot::channel();
                        log.append_then(
                            ctx.store.committer(),
                            frame,
                            AppendOptions {
                                ack,
                                ..Default::default()
                            },
                            move |result| {
                                let _ = tx.send(result);
                            },
                        );
                        waiting.push(rx);
                    }
                    if waiting.is_empty() {
                        Outcome::Done(Err((code::CORRUPT_MESSAGE, "no record batch".to_owned())))
                    } else {
                        Outcome::Waiting(waiting)
                    }
                }
            };
            parts.push(PartitionPart {
                index,
                outcome,
                log_start,
            });
        }
        topics.push((topic.name, parts));
    }
    if request.acks == 0 {
        return Ok(Reply::Now(None));
    }
    Ok(Reply::Later(Box::pin(async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, parts) in topics {
            let mut partitions = Vec::with_capacity(parts.len());
            for part in parts {
                let result = match part.outcome {
                    Outcome::Done(result) => result,
                    Outcome::Waiting(waiting) => wait_all(waiting).await,
                };
                partitions.push(partition_response(part.index, part.log_start, result));
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(partitions),
            );
        }
        call.answer(&ProduceResponse::default().with_responses(responses))
            .map(Some)
    })))
}

/// The first batch's ack, once every batch's sync is done; the first error
/// otherwise.
async fn wait_all(
    waiting: Vec<oneshot::Receiver<Result<Appended, Error>>>,
) -> Result<Appended, (i16, String)> {
    let mut first = None;
    let mut failed = None;
    for rx in waiting {
        match rx.await {
            Ok(Ok(appended)) => {
                first.get_or_insert(appended);
            }
            Ok(Err(err)) => {
                failed.get_or_insert(errors::storage(&err));
            }
            Err(_dropped) => {
                failed.get_or_insert((
                    code::KAFKA_STORAGE_ERROR,
                    "the append was dropped".to_owned(),
                ));
            }
        }
    }
    match (failed, first) {
        (Some(e), _) => Err(e),
        (None, Some(first)) => Ok(first),
        (None, None) => Err((code::CORRUPT_MESSAGE, "no record batch".to_owned())),
    }
}

fn partition_response(
    index: i32,
    log_start: i64,
    result: Result<Appended, (i16, String)>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default()
        .with_index(index)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(log_start);
    match result {
        Ok(appended) => response.with_base_offset(appended.base_offset as i64),
        Err((error, message)) => response
            .with_error_code(error)
            .with_base_offset(-1)
            .with_error_message(Some(StrBytes::from_string(message))),
    }
}

/// Splits a partition's records into its batches and frames each, all
/// before anything is written.
fn frames(records: Bytes, limits: &Limits) -> Result<Vec<Bytes>, (i16, String)> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while pos < records.len() {
        let rest = &records[pos..];
        let Some(len) = rest.get(8..12) else {
            return Err((
                code::CORRUPT_MESSAGE,
                format!("records end inside a batch header at byte {pos}"),
            ));
        };
        let batch_len = i32::from_be_bytes([len[0], len[1], len[2], len[3]]);
        let total = usize::try_from(batch_len)
            .ok()
            .and_then(|l| l.checked_add(KAFKA_LOG_OVERHEAD))
            .filter(|&t| t <= rest.len())
            .ok_or_else(|| {
                (
                    code::CORRUPT_MESSAGE,
                    format!("batch at byte {pos} declares {batch_len} bytes past the records"),
                )
            })?;
        let frame =
            log_format::frame_kafka(&rest[..total], limits).map_err(|e| errors::batch(&e))?;
        frames.push(frame);
        pos += total;
    }
    Ok(frames)
}
