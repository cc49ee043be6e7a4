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
//!
//! A unary `Produce` awaits its callback through a oneshot. A
//! `ProduceStream` does not: each callback builds its response and hands
//! it to the stream's response channel itself ([`StreamAcks`]), in request
//! order, so an ack costs no wake-up of the stream's task — the task only
//! reads requests and appends them. The stream also keeps the partition it
//! last wrote by number: the next request naming the same topic and
//! partition looks nothing up (no topic info, no name check, no map lock)
//! until the topic is deleted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use log_client::proto;
use log_format::{BatchBuilder, Limits, NewRecord, ProducerInfo, RecordHeader};
use log_storage::{Ack, AppendOptions, Appended};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{Notify, mpsc, oneshot};
use tonic::{Status, Streaming};

use crate::state::{Partition, Shared, now_ms, timestamp, timestamp_ms, watermarks};
use crate::status;

/// Most requests of one `ProduceStream` held at once: appended and not
/// answered, or answered and waiting for room in the response channel.
/// Past it the stream reads no more requests until one is sent.
const MAX_IN_FLIGHT_PER_STREAM: usize = 64;

/// Where a produce goes, and what its topic asks of it.
#[derive(Debug, Clone)]
struct Target {
    partition: u32,
    part: Partition,
    max_batch_bytes: u32,
    default_ack: Ack,
}

/// The partition a `ProduceStream` last wrote by number, reused while its
/// requests name the same topic and partition and the topic is not
/// deleted. Sound because a topic's config never changes and partitions
/// are only added: what held for the topic id the partition belongs to
/// holds until [`Partition::is_gone`].
#[derive(Debug, Default)]
struct LastTarget {
    topic: String,
    target: Option<Target>,
}

impl LastTarget {
    fn get(&self, request: &proto::ProduceRequest) -> Option<&Target> {
        let target = self.target.as_ref()?;
        (request.partition == Some(target.partition)
            && request.topic == self.topic
            && !target.part.is_gone())
        .then_some(target)
    }
}

/// A request checked and encoded, ready to append.
struct Prepared {
    target: Target,
    batch: Bytes,
    options: AppendOptions,
}

/// The partition a request goes to: the stream's last one when it names
/// it, else looked up (the topic name checked once, by the store).
fn target(
    shared: &Shared,
    shutting_down: bool,
    request: &mut proto::ProduceRequest,
    last: Option<&mut LastTarget>,
) -> Result<Target, Status> {
    if shutting_down {
        return Err(status::shutting_down());
    }
    shared.check_recovered()?;
    if let Some(target) = last.as_ref().and_then(|last| last.get(request)) {
        return Ok(target.clone());
    }
    let topic = shared
        .store
        .topic(&request.topic)
        .map_err(|e| status::storage(&e))?;
    let partition = match request.partition {
        Some(p) => p,
        None if !request.partition_key.is_empty() => {
            crc32fast::hash(&request.partition_key) % topic.partitions.max(1)
        }
        None => shared.next_round_robin(topic.partitions),
    };
    let target = Target {
        partition,
        part: shared.partition_of(&topic, partition)?,
        max_batch_bytes: topic.config.max_batch_bytes,
        default_ack: topic.config.default_ack,
    };
    if let Some(last) = last
        && request.partition.is_some()
    {
        // The request's name becomes the key: nothing allocated.
        std::mem::swap(&mut last.topic, &mut request.topic);
        last.target = Some(target.clone());
    }
    Ok(target)
}

/// Checks a request (UNAVAILABLE when `shutting_down`) and encodes its
/// batch.
fn prepare(
    shared: &Shared,
    shutting_down: bool,
    mut request: proto::ProduceRequest,
    last: Option<&mut LastTarget>,
) -> Result<Prepared, Status> {
    let target = target(shared, shutting_down, &mut request, last)?;
    let limits = Limits {
        max_batch_bytes: target.max_batch_bytes,
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
            // Passed as it came: the log stores a large shared batch
            // without copying it.
            request.encoded_batch
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
        Ok(proto::Ack::Unspecified) => target.default_ack,
        Ok(proto::Ack::Written) => Ack::Written,
        Ok(proto::Ack::Durable) => Ack::Durable,
        Err(_) => {
            return Err(status::invalid(
                "ack",
                format!("unknown ack {}", request.ack),
            ));
        }
    };
    shared
        .counters
        .produce_requests
        .fetch_add(1, Ordering::Relaxed);
    Ok(Prepared {
        target,
        batch,
        options: AppendOptions {
            ack,
            expected_end_offset: request.expected_log_end_offset,
        },
    })
}

/// A unary produce handed to the storage, waiting for its ack.
pub(crate) struct Pending {
    partition: u32,
    part: Partition,
    bytes: u64,
    ack: AckState,
}

/// Whether the ack already came (WRITTEN, or durable already) or is
/// awaited from the committer.
enum AckState {
    Ready(Appended),
    Waiting(oneshot::Receiver<Result<Appended, log_storage::Error>>),
}

/// Checks a request, encodes its batch and appends it; the ack comes
/// through the returned [`Pending`].
pub(crate) fn submit(shared: &Shared, request: proto::ProduceRequest) -> Result<Pending, Status> {
    let Prepared {
        target,
        batch,
        options,
    } = prepare(shared, shared.shutdown.is_cancelled(), request, None)?;
    let bytes = batch.len() as u64;
    let (tx, mut rx) = oneshot::channel();
    target
        .part
        .log
        .append_then(shared.store.committer(), batch, options, move |result| {
            let _ = tx.send(result);
        });
    // Checks and the write happen in append_then: an error there is known
    // now.
    let ack = match rx.try_recv() {
        Ok(Ok(appended)) => AckState::Ready(appended),
        Ok(Err(err)) => return Err(append_error(shared, &target.part, &err)),
        Err(oneshot::error::TryRecvError::Empty) => AckState::Waiting(rx),
        Err(oneshot::error::TryRecvError::Closed) => return Err(status::shutting_down()),
    };
    Ok(Pending {
        partition: target.partition,
        part: target.part,
        bytes,
        ack,
    })
}

/// Waits for the ack of a submitted produce.
pub(crate) async fn finish(
    shared: &Shared,
    pending: Pending,
) -> Result<proto::ProduceResponse, Status> {
    let result = match pending.ack {
        AckState::Ready(appended) => Ok(appended),
        AckState::Waiting(rx) => match rx.await {
            Ok(result) => result,
            Err(_) => return Err(status::shutting_down()),
        },
    };
    answer(
        shared,
        pending.partition,
        &pending.part,
        pending.bytes,
        result,
    )
}

/// The status of a failed append. A partition closed under the append
/// because its topic was deleted (the store closes the logs before the
/// server forgets them) is NOT_FOUND, as an append a moment later is.
fn append_error(shared: &Shared, part: &Partition, err: &log_storage::Error) -> Status {
    if let log_storage::Error::Closed { .. } = err {
        match shared.store.topic(&part.topic) {
            Ok(topic) if topic.id != part.topic_id => return part.gone(),
            Err(log_storage::Error::TopicNotFound { .. }) => return part.gone(),
            _ => {}
        }
    }
    status::storage(err)
}

/// The response (or error) for a produce the storage answered.
fn answer(
    shared: &Shared,
    partition: u32,
    part: &Partition,
    bytes: u64,
    result: Result<Appended, log_storage::Error>,
) -> Result<proto::ProduceResponse, Status> {
    let appended = result.map_err(|err| append_error(shared, part, &err))?;
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
            .fetch_add(bytes, Ordering::Relaxed);
    }
    let mut marks = part.log.watermarks();
    marks.durable_end = marks
        .durable_end
        .max(appended.durable_end.min(marks.log_end));
    Ok(proto::ProduceResponse {
        partition,
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
fn encode_records(request: &proto::ProduceRequest, limits: Limits) -> Result<Bytes, Status> {
    let build = |e: log_format::BuildError| status::build(&e);
    let now = now_ms();
    let mut builder = BatchBuilder::new(limits);
    let mut headers: Vec<RecordHeader<'_>> = Vec::new();
    for record in &request.records {
        headers.clear();
        headers.extend(record.headers.iter().map(|h| RecordHeader {
            key: &h.key,
            value: h.value.as_deref(),
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
    builder.finish().map_err(build)
}

/// What a `ProduceStream` sends: a response, or the error that ends it.
type StreamItem = Result<proto::ProduceStreamResponse, Status>;

/// The answering side of one `ProduceStream`, shared by its task and the
/// storage callbacks of its appends. Each request gets a slot, in order,
/// before it is appended; its callback fills the slot and sends every
/// answer at the front that is complete, straight into the response
/// channel. Only when that channel is full do answers wait, in order, in
/// `overflow`, for the task to send them as room appears. After an error
/// nothing more is appended or sent.
struct StreamAcks {
    shared: Arc<Shared>,
    out: mpsc::Sender<StreamItem>,
    queue: Mutex<AckQueue>,
    signal: Arc<StreamSignal>,
}

/// How a `ProduceStream`'s task is woken other than by a request.
#[derive(Debug, Default)]
struct StreamSignal {
    /// Answers in `overflow`, an error, a change the task waits for
    /// (`AckQueue::task_waits`), or shutdown.
    wake: Notify,
    /// Set (then `wake` notified) by the stream's shutdown watcher: the
    /// task and every request read this flag, not the shutdown token,
    /// whose checks take its lock.
    shut_down: AtomicBool,
}

#[derive(Debug, Default)]
struct AckQueue {
    /// Sequence number of `pending[0]`.
    front: u64,
    /// The answers of the requests taken, in request order (`None`: not
    /// answered yet).
    pending: VecDeque<Option<StreamItem>>,
    /// Answers, in order, the response channel had no room for.
    overflow: VecDeque<StreamItem>,
    /// An answer is an error: nothing more is appended, and nothing after
    /// it is sent.
    stopping: bool,
    /// The error was sent, or the client is gone: nothing more to send.
    ended: bool,
    /// The task waits for room or for the end, not for a request:
    /// answers wake it.
    task_waits: bool,
}

impl StreamAcks {
    fn lock(&self) -> MutexGuard<'_, AckQueue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the next slot.
    fn take_slot(&self) -> u64 {
        let mut queue = self.lock();
        queue.pending.push_back(None);
        queue.front + queue.pending.len() as u64 - 1
    }

    /// Answers the request of slot `seq`, then sends what is complete at
    /// the front.
    fn complete(&self, seq: u64, item: StreamItem) {
        let mut queue = self.lock();
        let mut wake = std::mem::take(&mut queue.task_waits);
        let index = seq
            .checked_sub(queue.front)
            .and_then(|i| usize::try_from(i).ok())
            .filter(|&i| i < queue.pending.len());
        let Some(index) = index else {
            // Cleared after an earlier error (or the client left).
            drop(queue);
            if wake {
                self.signal.wake.notify_one();
            }
            return;
        };
        if item.is_err() {
            queue.stopping = true;
            wake = true;
        }
        queue.pending[index] = Some(item);
        while let Some(Some(_)) = queue.pending.front() {
            let Some(Some(item)) = queue.pending.pop_front() else {
                break;
            };
            queue.front += 1;
            let failed = item.is_err();
            if queue.overflow.is_empty() {
                match self.out.try_send(item) {
                    Ok(()) => queue.ended |= failed,
                    Err(TrySendError::Full(item)) => {
                        queue.overflow.push_back(item);
                        wake = true;
                    }
                    Err(TrySendError::Closed(_)) => {
                        queue.ended = true;
                        wake = true;
                    }
                }
            } else {
                queue.overflow.push_back(item);
            }
            if failed || queue.ended {
                // Nothing after an error is sent.
                queue.front += queue.pending.len() as u64;
                queue.pending.clear();
                queue.stopping = true;
                wake = true;
                break;
            }
        }
        drop(queue);
        if wake {
            self.signal.wake.notify_one();
        }
    }

    /// Ends the stream with `status` once the requests taken before are
    /// answered.
    fn fail(&self, status: Status) {
        let seq = self.take_slot();
        self.complete(seq, Err(status));
    }

    /// Checks a request, appends it, and has its callback answer it.
    fn submit(self: &Arc<Self>, last: &mut LastTarget, request: proto::ProduceRequest) {
        let shutting_down = self.signal.shut_down.load(Ordering::Acquire);
        let Prepared {
            target,
            batch,
            options,
        } = match prepare(&self.shared, shutting_down, request, Some(last)) {
            Ok(prepared) => prepared,
            Err(status) => return self.fail(status),
        };
        // Taken before the append: the callback may run at once.
        let seq = self.take_slot();
        let bytes = batch.len() as u64;
        let acks = Arc::clone(self);
        let Target {
            partition, part, ..
        } = target;
        let log = Arc::clone(&part.log);
        log.append_then(
            self.shared.store.committer(),
            batch,
            options,
            move |result| {
                let item = answer(&acks.shared, partition, &part, bytes, result).map(|response| {
                    proto::ProduceStreamResponse {
                        response: Some(response),
                    }
                });
                acks.complete(seq, item);
            },
        );
    }
}

/// The response side of a `ProduceStream`: the answers its task and
/// callbacks send, in order, ending with the first error.
pub(crate) type ResponseStream = tokio_stream::wrappers::ReceiverStream<StreamItem>;

/// Responses buffered in a `ProduceStream`'s channel; answers past it wait
/// in the stream's overflow (bounded by [`MAX_IN_FLIGHT_PER_STREAM`]).
const RESPONSE_CHANNEL: usize = 16;

/// Starts serving a `ProduceStream` on its own task.
pub(crate) fn open_stream(
    shared: Arc<Shared>,
    inbound: Streaming<proto::ProduceStreamRequest>,
) -> ResponseStream {
    let (tx, rx) = mpsc::channel(RESPONSE_CHANNEL);
    tokio::spawn(serve_stream(shared, inbound, tx));
    ResponseStream::new(rx)
}

/// Serves one `ProduceStream`: appends requests in order as they arrive
/// (at most [`MAX_IN_FLIGHT_PER_STREAM`] held), has them answered in order
/// by their callbacks, and ends with the first error — no request after a
/// failed one is appended. At shutdown nothing more is appended, and the
/// stream ends with UNAVAILABLE after the answers of what was. The task
/// returns once every request taken is answered (the callbacks send the
/// last answers), or at once when the client goes away.
async fn serve_stream(
    shared: Arc<Shared>,
    mut inbound: Streaming<proto::ProduceStreamRequest>,
    out: mpsc::Sender<StreamItem>,
) {
    let signal = Arc::new(StreamSignal::default());
    // Shutdown is watched by a task of its own, once, rather than polled
    // (a lock or two) every time this task wakes. Its token, a child of
    // the server's, is cancelled when this task returns, ending it.
    let watched = shared.shutdown.child_token();
    let _unwatch = watched.clone().drop_guard();
    tokio::spawn({
        let signal = Arc::clone(&signal);
        async move {
            watched.cancelled().await;
            signal.shut_down.store(true, Ordering::Release);
            signal.wake.notify_one();
        }
    });
    let acks = Arc::new(StreamAcks {
        shared: Arc::clone(&shared),
        out,
        queue: Mutex::new(AckQueue::default()),
        signal,
    });
    let mut last = LastTarget::default();
    let mut input_done = false;
    loop {
        let shutting_down = acks.signal.shut_down.load(Ordering::Acquire);
        let (room, drain) = {
            let mut queue = acks.lock();
            let held = queue.pending.len() + queue.overflow.len();
            if queue.overflow.is_empty()
                && (queue.ended || held == 0 && (queue.stopping || input_done))
            {
                return;
            }
            if shutting_down && !queue.stopping {
                drop(queue);
                acks.fail(status::shutting_down());
                continue;
            }
            let room = !queue.stopping && !input_done && held < MAX_IN_FLIGHT_PER_STREAM;
            queue.task_waits = !room;
            (room, !queue.overflow.is_empty())
        };
        tokio::select! {
            biased;
            permit = acks.out.reserve(), if drain => {
                let Ok(permit) = permit else { return };
                let mut queue = acks.lock();
                if let Some(item) = queue.overflow.pop_front() {
                    queue.ended |= item.is_err();
                    permit.send(item);
                }
            }
            () = acks.signal.wake.notified() => {}
            next = inbound.message(), if room => match next {
                Ok(Some(request)) => match request.request {
                    Some(request) => acks.submit(&mut last, request),
                    None => acks.fail(status::invalid("request", "empty ProduceStreamRequest")),
                },
                Ok(None) => input_done = true,
                Err(status) => {
                    // A message over the limit (the server's length-prefix
                    // check refused it, with a typed status): answered as
                    // is. Anything else: the client went away.
                    if status::is_request_too_large(&status) {
                        acks.fail(status);
                    } else {
                        return;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream's answering side over a store in a temp dir, its response
    /// channel holding `capacity`.
    fn acks(
        capacity: usize,
    ) -> (
        Arc<StreamAcks>,
        mpsc::Receiver<StreamItem>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = log_storage::Store::open_locked(dir.path()).expect("store");
        let shared = Arc::new(Shared::new(
            Arc::new(store),
            crate::config::Config::default(),
            tokio_util::sync::CancellationToken::new(),
        ));
        let (out, rx) = mpsc::channel(capacity);
        let acks = Arc::new(StreamAcks {
            shared,
            out,
            queue: Mutex::new(AckQueue::default()),
            signal: Arc::default(),
        });
        (acks, rx, dir)
    }

    fn ok(base_offset: u64) -> StreamItem {
        Ok(proto::ProduceStreamResponse {
            response: Some(proto::ProduceResponse {
                base_offset,
                ..Default::default()
            }),
        })
    }

    fn offsets(rx: &mut mpsc::Receiver<StreamItem>) -> Vec<Result<u64, tonic::Code>> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|item| match item {
                Ok(r) => Ok(r.response.map_or(u64::MAX, |r| r.base_offset)),
                Err(status) => Err(status.code()),
            })
            .collect()
    }

    #[test]
    fn answers_go_out_in_request_order_whatever_order_they_come_in() {
        let (acks, mut rx, _dir) = acks(16);
        let slots: Vec<u64> = (0..4).map(|_| acks.take_slot()).collect();
        acks.complete(slots[2], ok(2));
        acks.complete(slots[1], ok(1));
        assert_eq!(offsets(&mut rx), []);
        acks.complete(slots[0], ok(0));
        assert_eq!(offsets(&mut rx), [Ok(0), Ok(1), Ok(2)]);
        acks.complete(slots[3], ok(3));
        assert_eq!(offsets(&mut rx), [Ok(3)]);
        let queue = acks.lock();
        assert!(queue.pending.is_empty() && queue.overflow.is_empty() && !queue.stopping);
    }

    #[test]
    fn nothing_after_an_error_is_sent_and_the_stream_stops() {
        let (acks, mut rx, _dir) = acks(16);
        let slots: Vec<u64> = (0..4).map(|_| acks.take_slot()).collect();
        acks.complete(slots[3], ok(3));
        acks.complete(slots[1], Err(Status::aborted("no")));
        // Known at once: nothing more is appended.
        assert!(acks.lock().stopping);
        assert_eq!(offsets(&mut rx), []);
        acks.complete(slots[0], ok(0));
        assert_eq!(offsets(&mut rx), [Ok(0), Err(tonic::Code::Aborted)]);
        acks.complete(slots[2], ok(2));
        assert_eq!(offsets(&mut rx), []);
        let queue = acks.lock();
        assert!(queue.ended && queue.pending.is_empty());
    }

    #[test]
    fn answers_the_channel_has_no_room_for_wait_in_order() {
        let (acks, mut rx, _dir) = acks(1);
        let slots: Vec<u64> = (0..3).map(|_| acks.take_slot()).collect();
        acks.complete(slots[0], ok(0));
        acks.complete(slots[1], ok(1));
        acks.complete(slots[2], ok(2));
        assert_eq!(offsets(&mut rx), [Ok(0)]);
        // Later answers queue behind the waiting ones, for the task.
        let queue = acks.lock();
        assert_eq!(queue.overflow.len(), 2);
        assert!(queue.pending.is_empty());
    }
}
