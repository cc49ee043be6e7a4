//! The produce path: from a `ProduceRequest` to a storage append, and the
//! in-order answering of `ProduceStream`.
//!
//! A request is checked and turned into one encoded batch on the calling
//! task (structured records are encoded here; an `encoded_batch` is taken
//! as the producer built it, checksums included), then handed to
//! [`Log::append_then`](log_storage::Log::append_then): the batch is checked
//! and written (`write(2)`, into the page cache) on the calling task, and
//! the ack arrives through a callback — at once for WRITTEN, from the
//! committer's threads after the shared `fdatasync` for DURABLE. No task
//! ever waits for an fsync on a runtime thread.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::BytesMut;
use log_client::proto;
use log_format::{BatchBuilder, Limits, NewRecord, ProducerInfo, RecordHeader};
use log_storage::{Ack, AppendOptions, Appended};
use tokio::sync::{mpsc, oneshot};
use tonic::{Status, Streaming};

use crate::state::{Partition, Shared, now_ms, timestamp, timestamp_ms, watermarks};
use crate::status;

/// Most batches of one `ProduceStream` appended and not yet answered.
const MAX_IN_FLIGHT_PER_STREAM: usize = 64;

/// A produce handed to the storage, waiting for its ack.
pub(crate) struct Pending {
    partition: u32,
    part: Arc<Partition>,
    bytes: u64,
    ack: AckState,
}

/// Whether the ack already came (WRITTEN, or durable already) or is
/// awaited from the committer.
enum AckState {
    Ready(Appended),
    Waiting(oneshot::Receiver<Result<Appended, log_storage::Error>>),
}

impl Pending {
    async fn wait(&mut self) -> AckResult {
        match &mut self.ack {
            AckState::Ready(appended) => Ok(Ok(*appended)),
            AckState::Waiting(rx) => rx.await,
        }
    }
}

/// What the storage answered for a [`Pending`] produce.
type AckResult = Result<Result<Appended, log_storage::Error>, oneshot::error::RecvError>;

/// Checks a request, encodes its batch and appends it; the ack comes
/// through the returned [`Pending`].
pub(crate) fn submit(shared: &Shared, request: proto::ProduceRequest) -> Result<Pending, Status> {
    shared.check_running()?;
    let topic = shared.topic(&request.topic)?;
    let partition = match request.partition {
        Some(p) => p,
        None if !request.partition_key.is_empty() => {
            crc32fast::hash(&request.partition_key) % topic.partitions.max(1)
        }
        None => shared.next_round_robin(topic.partitions),
    };
    let part = shared.partition(&request.topic, partition)?;
    let limits = Limits {
        max_batch_bytes: topic.config.max_batch_bytes,
        ..Limits::default()
    };
    let batch = match (request.records.is_empty(), request.encoded_batch.is_empty()) {
        (false, true) => encode_records(&request, limits)?,
        (true, false) => {
            if request.producer_id.is_some() {
                return Err(status::invalid(
                    "producer_id",
                    "an encoded batch carries its producer id, epoch and sequence in its header",
                ));
            }
            BytesMut::from(request.encoded_batch)
        }
        (true, true) => {
            return Err(status::invalid(
                "records",
                "a produce needs records or an encoded_batch",
            ));
        }
        (false, false) => {
            return Err(status::invalid(
                "encoded_batch",
                "records and encoded_batch are exclusive",
            ));
        }
    };
    let ack = match proto::Ack::try_from(request.ack) {
        Ok(proto::Ack::Unspecified) => topic.config.default_ack,
        Ok(proto::Ack::Written) => Ack::Written,
        Ok(proto::Ack::Durable) => Ack::Durable,
        Err(_) => {
            return Err(status::invalid(
                "ack",
                format!("unknown ack {}", request.ack),
            ));
        }
    };
    let options = AppendOptions {
        ack,
        expected_end_offset: request.expected_log_end_offset,
    };
    let bytes = batch.len() as u64;
    shared
        .counters
        .produce_requests
        .fetch_add(1, Ordering::Relaxed);
    let (tx, mut rx) = oneshot::channel();
    part.log
        .append_then(&shared.committer, batch, options, move |result| {
            let _ = tx.send(result);
        });
    // Checks and the write happen in append_then: an error there is known
    // now, and must stop a stream before its next request is appended.
    let ack = match rx.try_recv() {
        Ok(Ok(appended)) => AckState::Ready(appended),
        Ok(Err(err)) => return Err(status::storage(&err)),
        Err(oneshot::error::TryRecvError::Empty) => AckState::Waiting(rx),
        Err(oneshot::error::TryRecvError::Closed) => return Err(status::shutting_down()),
    };
    Ok(Pending {
        partition,
        part,
        bytes,
        ack,
    })
}

/// Waits for the ack of a submitted produce.
pub(crate) async fn finish(
    shared: &Shared,
    mut pending: Pending,
) -> Result<proto::ProduceResponse, Status> {
    let result = pending.wait().await;
    answer(shared, &pending, result)
}

/// The response (or error) for a produce the storage answered.
fn answer(
    shared: &Shared,
    pending: &Pending,
    result: AckResult,
) -> Result<proto::ProduceResponse, Status> {
    let appended = match result {
        Ok(Ok(appended)) => appended,
        Ok(Err(err)) => return Err(status::storage(&err)),
        Err(_) => return Err(status::shutting_down()),
    };
    // An idempotent retry wrote nothing: it counts as a request only.
    if !appended.duplicate {
        let records = appended.last_offset - appended.base_offset + 1;
        shared
            .counters
            .records_appended
            .fetch_add(records, Ordering::Relaxed);
        shared
            .counters
            .bytes_appended
            .fetch_add(pending.bytes, Ordering::Relaxed);
    }
    let mut marks = pending.part.log.watermarks();
    marks.durable_end = marks
        .durable_end
        .max(appended.durable_end.min(marks.log_end));
    Ok(proto::ProduceResponse {
        partition: pending.partition,
        base_offset: appended.base_offset,
        last_offset: appended.last_offset,
        append_time: Some(timestamp(appended.append_time)),
        watermarks: Some(watermarks(&marks)),
        ack: match appended.ack {
            Ack::Durable => proto::Ack::Durable as i32,
            Ack::Written => proto::Ack::Written as i32,
        },
    })
}

/// Encodes structured records as one batch.
fn encode_records(request: &proto::ProduceRequest, limits: Limits) -> Result<BytesMut, Status> {
    let build = |e: log_format::BuildError| status::build(&e);
    let now = now_ms();
    let mut builder = BatchBuilder::new(limits);
    let mut headers: Vec<RecordHeader<'_>> = Vec::new();
    for record in &request.records {
        headers.clear();
        headers.extend(record.headers.iter().map(|h| RecordHeader {
            key: &h.key,
            value: &h.value,
        }));
        builder
            .push(&NewRecord {
                timestamp: match &record.timestamp {
                    Some(ts) => timestamp_ms("records.timestamp", ts)?,
                    None => now,
                },
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &headers,
            })
            .map_err(build)?;
    }
    if let Some(producer_id) = request.producer_id {
        if producer_id < 0 {
            return Err(status::invalid("producer_id", "must not be negative"));
        }
        let producer_epoch = i16::try_from(request.producer_epoch)
            .map_err(|_| status::invalid("producer_epoch", "must be at most 32767"))?;
        let base_sequence = i32::try_from(request.base_sequence)
            .map_err(|_| status::invalid("base_sequence", "must be below 2^31"))?;
        builder.set_producer(ProducerInfo {
            producer_id,
            producer_epoch,
            base_sequence,
        });
    }
    Ok(BytesMut::from(builder.finish().map_err(build)?))
}

/// Serves one `ProduceStream`: appends requests in order as they arrive
/// (at most [`MAX_IN_FLIGHT_PER_STREAM`] unanswered), answers them in
/// order, and ends with the first error — no request after a failed one is
/// appended.
pub(crate) async fn serve_stream(
    shared: Arc<Shared>,
    mut inbound: Streaming<proto::ProduceStreamRequest>,
    out: mpsc::Sender<Result<proto::ProduceStreamResponse, Status>>,
) {
    let mut queue: VecDeque<Pending> = VecDeque::new();
    let mut head: Option<Pending> = None;
    let mut input_done = false;
    loop {
        if head.is_none() {
            head = queue.pop_front();
        }
        if input_done && head.is_none() {
            return;
        }
        let room = queue.len() + usize::from(head.is_some()) < MAX_IN_FLIGHT_PER_STREAM;
        tokio::select! {
            biased;
            result = async {
                match head.as_mut() {
                    Some(pending) => pending.wait().await,
                    None => std::future::pending().await,
                }
            }, if head.is_some() => {
                let Some(pending) = head.take() else { continue };
                let answer = answer(&shared, &pending, result);
                let failed = answer.is_err();
                let message = answer.map(|response| proto::ProduceStreamResponse { response: Some(response) });
                if out.send(message).await.is_err() || failed {
                    return;
                }
            }
            next = inbound.message(), if room && !input_done => match next {
                Ok(Some(request)) => {
                    let Some(request) = request.request else {
                        let _ = out.send(Err(status::invalid("request", "empty ProduceStreamRequest"))).await;
                        input_done = true;
                        continue;
                    };
                    match submit(&shared, request) {
                        Ok(pending) => queue.push_back(pending),
                        Err(status) => {
                            fail_after(&shared, head.take(), queue, &out, status).await;
                            return;
                        }
                    }
                }
                Ok(None) => input_done = true,
                Err(status) => {
                    // tonic refuses a message over the decode limit with
                    // OUT_OF_RANGE; say what it is. Anything else: the
                    // client went away.
                    if status.code() == tonic::Code::OutOfRange && status.message().contains("too large") {
                        let too_large = status::request_too_large(shared.config.max_request_bytes, "decode limit");
                        fail_after(&shared, head.take(), queue, &out, too_large).await;
                    }
                    return;
                }
            },
            () = shared.shutdown.cancelled(), if head.is_none() && queue.is_empty() => {
                let _ = out.send(Err(status::shutting_down())).await;
                return;
            }
        }
    }
}

/// Answers the produces appended before a failure, in order, then sends
/// the failure (the stream then ends).
async fn fail_after(
    shared: &Shared,
    head: Option<Pending>,
    mut queue: VecDeque<Pending>,
    out: &mpsc::Sender<Result<proto::ProduceStreamResponse, Status>>,
    failure: Status,
) {
    let mut head = head;
    while let Some(pending) = head.take().or_else(|| queue.pop_front()) {
        let answer = finish(shared, pending)
            .await
            .map(|response| proto::ProduceStreamResponse {
                response: Some(response),
            });
        let failed = answer.is_err();
        if out.send(answer).await.is_err() || failed {
            return;
        }
    }
    let _ = out.send(Err(failure)).await;
}
