//! The read path: positions, `Fetch` (long poll) and `Subscribe` (replay,
//! then tail).
//!
//! Storage reads run in `spawn_blocking`, many batches per hop (up to the
//! request's byte budget). Waiting for new records awaits the partition's
//! change signal (see [`crate::state`]), marked seen *before* each read so
//! that an append landing between the read and the wait still wakes it.
//! A subscription's memory is bounded and small: messages of at most
//! [`SUBSCRIBE_MESSAGE_BYTES`] (or one batch), a channel of
//! [`SUBSCRIBE_CHANNEL`] message, and a task that reserves its slot in the
//! channel before it reads, so when the client stalls (HTTP/2 flow
//! control) the task waits holding nothing.
//!
//! Deleting a topic cancels its partitions' `deleted` token: a long poll
//! answers NOT_FOUND at once, and a subscription's stream ends with
//! NOT_FOUND (dropping what it buffered) while its task stops, so no
//! reader keeps the deleted files open.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use log_client::proto;
use log_format::{Batch, BatchHeader, Limits};
use log_storage::{Isolation, Log, ReadResult};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::{Code, Status};

use crate::state::{
    Partition, Shared, Slot, duration, now_ms, timestamp, timestamp_ms, watermarks,
};
use crate::status;

/// Messages buffered per subscription. One: with the task reserving its
/// slot before it reads, a stalled subscription holds one message here,
/// one being encoded and one in the HTTP/2 send buffer.
const SUBSCRIBE_CHANNEL: usize = 1;
/// Largest message of a subscription (and its reads), whatever the
/// request's `max_batch_bytes`: what bounds a stalled subscription's
/// memory to a few of these (one in the channel, one in the HTTP/2 send
/// buffer, allocator slack: about 0.6 MiB measured, `tests/memory.rs`).
/// A message still holds at least one whole batch, so batches larger than
/// this count whole.
const SUBSCRIBE_MESSAGE_BYTES: u32 = 128 << 10;
/// Default byte budget of a fetch or a subscription message.
const DEFAULT_MAX_BYTES: u32 = 1 << 20;
/// Default and smallest heartbeat interval of a subscription.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);
/// Longest heartbeat interval a subscription may ask for (longer is
/// INVALID_ARGUMENT: no timer is ever set past what an `Instant` holds).
const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);
/// How much of a call's deadline a long poll leaves for the answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

/// How records are handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Records,
    Encoded,
}

fn format(value: i32) -> Result<Format, Status> {
    match proto::RecordFormat::try_from(value) {
        Ok(proto::RecordFormat::Unspecified | proto::RecordFormat::Records) => Ok(Format::Records),
        Ok(proto::RecordFormat::EncodedBatches) => Ok(Format::Encoded),
        Err(_) => Err(status::invalid("format", format!("unknown format {value}"))),
    }
}

fn isolation(value: i32) -> Result<Isolation, Status> {
    match proto::Isolation::try_from(value) {
        Ok(proto::Isolation::Unspecified | proto::Isolation::Durable) => Ok(Isolation::Durable),
        Ok(proto::Isolation::Written) => Ok(Isolation::Written),
        Err(_) => Err(status::invalid(
            "isolation",
            format!("unknown isolation {value}"),
        )),
    }
}

/// Runs a blocking storage call off the runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "storage task failed");
        status::status(
            Code::Internal,
            status::reason::STORAGE_ERROR,
            "storage task failed",
            &[],
        )
    })?
}

/// Resolves a position to an offset (`None`: nothing matches, a time
/// after the newest record). Blocking (time lookups read the index).
pub(crate) fn resolve(
    shared: &Shared,
    topic: &str,
    partition: u32,
    log: &Log,
    position: Option<&proto::Position>,
) -> Result<Option<u64>, Status> {
    use proto::position::Position as P;
    let marks = log.watermarks();
    let Some(position) = position else {
        return Ok(Some(marks.log_start));
    };
    let policy = proto::ResetPolicy::try_from(position.reset_policy).map_err(|_| {
        status::invalid(
            "position.reset_policy",
            format!("unknown reset policy {}", position.reset_policy),
        )
    })?;
    let offset = match &position.position {
        None => marks.log_start,
        Some(P::Offset(offset)) => *offset,
        Some(P::Time(time)) => {
            return log
                .offset_for_time(timestamp_ms("position.time", time)?)
                .map_err(|e| status::storage(&e));
        }
        Some(P::Boundary(b)) => match proto::Boundary::try_from(*b) {
            Ok(proto::Boundary::Earliest) => marks.log_start,
            Ok(proto::Boundary::Latest) => marks.log_end,
            _ => return Err(status::invalid("position.boundary", "unknown boundary")),
        },
        Some(P::FromEnd(count)) => marks.log_end.saturating_sub(*count).max(marks.log_start),
        Some(P::CommittedGroup(group)) => {
            match shared
                .store
                .committed_offset(group, topic, partition)
                .map_err(|e| status::storage(&e))?
            {
                Some((offset, _)) => offset,
                None => match policy {
                    proto::ResetPolicy::Latest => marks.log_end,
                    proto::ResetPolicy::Earliest => marks.log_start,
                    _ => {
                        return Err(status::status(
                            Code::NotFound,
                            status::reason::NO_COMMITTED_OFFSET,
                            format!(
                                "group {group:?} has no committed offset on {topic}/{partition}"
                            ),
                            &[("group", group.clone())],
                        ));
                    }
                },
            }
        }
    };
    if offset >= marks.log_start && offset <= marks.log_end {
        return Ok(Some(offset));
    }
    match policy {
        proto::ResetPolicy::Earliest => Ok(Some(marks.log_start)),
        proto::ResetPolicy::Latest => Ok(Some(marks.log_end)),
        _ => Err(status::out_of_range(offset, marks.log_start, marks.log_end)),
    }
}

/// How many times a fetch follows a log start that moved under it before
/// it answers OFFSET_OUT_OF_RANGE (each move is a retention pass or a
/// DeleteRecords racing the read).
const MAX_START_MOVES: u32 = 8;

/// Whether a read from `position` means "from the log start, wherever it
/// is": no position, the earliest boundary, or any position whose reset
/// policy is earliest.
fn follows_log_start(position: Option<&proto::Position>) -> bool {
    let Some(position) = position else {
        return true;
    };
    let earliest = proto::Boundary::Earliest as i32;
    position.reset_policy == proto::ResetPolicy::Earliest as i32
        || match position.position {
            None => true,
            Some(proto::position::Position::Boundary(b)) => b == earliest,
            Some(_) => false,
        }
}

/// Where a read starts: the position resolved off the runtime (a time
/// after the newest record starts at the log end).
async fn start(
    shared: &Arc<Shared>,
    part: &Partition,
    topic: &str,
    partition: u32,
    position: Option<&proto::Position>,
) -> Result<u64, Status> {
    let (shared, log, topic, position) = (
        Arc::clone(shared),
        Arc::clone(&part.log),
        topic.to_owned(),
        position.cloned(),
    );
    blocking(move || {
        let offset = resolve(&shared, &topic, partition, &log, position.as_ref())?;
        Ok(offset.unwrap_or_else(|| log.watermarks().log_end))
    })
    .await
}

/// Records and encoded bytes cut out of a storage read.
struct Chunk {
    records: Vec<proto::SequencedRecord>,
    encoded: Bytes,
    next_offset: u64,
    count: u64,
}

/// Cuts a storage read into what a response carries: records from `from`,
/// at most `max_records` and about `max_bytes` (at least one record), or
/// whole encoded batches up to the batch that reaches `max_records`.
fn cut(read: &ReadResult, from: u64, max_records: u64, max_bytes: usize, format: Format) -> Chunk {
    let buf = &read.batches;
    let mut pos = 0usize;
    let mut chunk = Chunk {
        records: Vec::new(),
        encoded: Bytes::new(),
        next_offset: from,
        count: 0,
    };
    let mut size = 0usize;
    'batches: while pos < buf.len() {
        // The storage verified these batches' checksums; the structure was
        // verified on append. Pass-through needs only the headers.
        if format == Format::Encoded {
            let Ok(header) = BatchHeader::parse(&buf[pos..], pos as u64, &Limits::unlimited())
            else {
                break;
            };
            let last = header.last_offset();
            chunk.count += last.saturating_sub(from.max(header.base_offset)) + 1;
            chunk.next_offset = last + 1;
            pos += header.length as usize;
            if chunk.count >= max_records {
                break;
            }
            continue;
        }
        // Records are decoded (and a compressed batch decompressed, once)
        // from a handle on the read buffer, so keys and values are shared,
        // not copied.
        let Ok(header) = BatchHeader::parse(&buf[pos..], pos as u64, &Limits::unlimited()) else {
            break;
        };
        let len = header.length as usize;
        let Some(slice) = buf.get(pos..pos + len).map(|b| buf.slice_ref(b)) else {
            break;
        };
        let Ok(batch) = Batch::decode(slice, &Limits::unlimited()) else {
            break;
        };
        let share = |part: &[u8]| {
            batch
                .share(part)
                .unwrap_or_else(|| Bytes::copy_from_slice(part))
        };
        let append_time = Some(timestamp(batch.header().append_time));
        for record in batch.records() {
            if record.offset() < from {
                continue;
            }
            let message = proto::SequencedRecord {
                offset: record.offset(),
                timestamp: Some(timestamp(record.timestamp())),
                append_time,
                key: record.key().map(share),
                value: record.value().map(share),
                headers: record
                    .headers()
                    .map(|(key, value)| proto::Header {
                        key: key.to_owned(),
                        value: value.map(share),
                    })
                    .collect(),
            };
            let len = prost::Message::encoded_len(&message) + 4;
            if chunk.count > 0 && size + len > max_bytes {
                break 'batches;
            }
            size += len;
            chunk.next_offset = record.offset() + 1;
            chunk.records.push(message);
            chunk.count += 1;
            if chunk.count >= max_records {
                break 'batches;
            }
        }
        pos += len;
    }
    if format == Format::Encoded {
        chunk.encoded = buf.slice(..pos);
    }
    chunk
}

/// `Fetch`: reads at once, or waits (on the change signal) until
/// `min_bytes` are readable or `max_wait` passed.
pub(crate) async fn fetch(
    shared: Arc<Shared>,
    request: proto::FetchRequest,
    deadline: Option<Duration>,
) -> Result<proto::FetchResponse, Status> {
    shared.check_running()?;
    shared
        .counters
        .fetch_requests
        .fetch_add(1, Ordering::Relaxed);
    let format = format(request.format)?;
    let isolation = isolation(request.isolation)?;
    let config = &shared.config;
    let max_bytes = budget(request.max_bytes, config.max_fetch_bytes);
    let max_records = u64::from(match request.max_records {
        0 => config.max_fetch_records,
        n => n.min(config.max_fetch_records),
    });
    // Above the server's cap is clamped to it (the documented contract);
    // malformed is refused.
    let mut wait = match &request.max_wait {
        Some(d) => duration("max_wait", d)?,
        None => Duration::ZERO,
    }
    .min(config.max_wait());
    if let Some(deadline) = deadline {
        wait = wait.min(deadline.saturating_sub(DEADLINE_MARGIN));
    }
    let until = Instant::now() + wait;
    let min_bytes = request.min_bytes.max(1) as usize;
    let part = shared.partition(&request.topic, request.partition)?;
    let offset = start(
        &shared,
        &part,
        &request.topic,
        request.partition,
        request.position.as_ref(),
    )
    .await?;
    let mut offset = offset;
    let follows_start = follows_log_start(request.position.as_ref());
    let mut moved = 0;
    let mut changed = part.changed.subscribe();
    loop {
        changed.borrow_and_update();
        let log = Arc::clone(&part.log);
        let read = blocking(move || Ok(log.read(offset, max_bytes, isolation))).await;
        // A read racing the topic's deletion answers what it is.
        if part.deleted.is_cancelled() {
            return Err(part.gone());
        }
        let read = match read? {
            Ok(read) => read,
            // Retention or DeleteRecords moved the log start past where
            // this read was resolved to start: a position that follows the
            // log start (earliest, or reset to earliest) starts again from
            // the new one, as it would have a moment later.
            Err(log_storage::Error::OffsetOutOfRange { log_start, .. })
                if follows_start && offset < log_start && moved < MAX_START_MOVES =>
            {
                offset = log_start;
                moved += 1;
                continue;
            }
            Err(e) => return Err(status::storage(&e)),
        };
        let enough = read.batches.len() >= min_bytes.min(max_bytes);
        if enough || Instant::now() >= until || shared.shutdown.is_cancelled() {
            let chunk = cut(&read, offset, max_records, max_bytes, format);
            return Ok(proto::FetchResponse {
                records: chunk.records,
                encoded_batches: chunk.encoded,
                next_offset: chunk.next_offset,
                watermarks: Some(watermarks(&read.watermarks)),
                start_offset: offset,
            });
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() { return Err(status::shutting_down()) },
            () = tokio::time::sleep_until(until) => {}
            () = shared.shutdown.cancelled() => {}
            () = part.deleted.cancelled() => return Err(part.gone()),
        }
    }
}

/// A request's byte budget: 0 is the default, capped by the server.
fn budget(asked: u32, cap: u32) -> usize {
    let bytes = match asked {
        0 => DEFAULT_MAX_BYTES.min(cap),
        n => n.min(cap),
    };
    bytes as usize
}

/// `Subscribe`: checks the request and starts the subscription's task.
pub(crate) async fn subscribe(
    shared: Arc<Shared>,
    request: proto::SubscribeRequest,
    slot: Slot,
) -> Result<UntilShutdown<proto::SubscribeResponse>, Status> {
    shared.check_running()?;
    let format = format(request.format)?;
    let isolation = isolation(request.isolation)?;
    let heartbeat = match &request.heartbeat_interval {
        Some(d) => duration("heartbeat_interval", d)?,
        None => DEFAULT_HEARTBEAT,
    };
    if heartbeat > MAX_HEARTBEAT {
        return Err(status::invalid(
            "heartbeat_interval",
            format!("heartbeat interval {heartbeat:?} is longer than {MAX_HEARTBEAT:?}"),
        ));
    }
    let heartbeat = heartbeat.max(MIN_HEARTBEAT);
    let permit = Arc::clone(&shared.subscriptions)
        .try_acquire_owned()
        .map_err(|e| {
            tracing::error!(error = %e, "storage task failed");
            status::status(
                Code::ResourceExhausted,
                status::reason::TOO_MANY_SUBSCRIPTIONS,
                format!(
                    "the server holds its limit of {} subscriptions",
                    shared.config.max_subscriptions
                ),
                &[("limit", shared.config.max_subscriptions.to_string())],
            )
        })?;
    let part = shared.partition(&request.topic, request.partition)?;
    let offset = start(
        &shared,
        &part,
        &request.topic,
        request.partition,
        request.position.as_ref(),
    )
    .await?;
    let (tx, rx) = mpsc::channel(SUBSCRIBE_CHANNEL);
    let stream =
        UntilShutdown::new(rx, shared.shutdown.clone()).or_when(part.deleted.clone(), part.gone());
    let subscription = Subscription {
        max_bytes: budget(
            request.max_batch_bytes,
            shared.config.max_fetch_bytes.min(SUBSCRIBE_MESSAGE_BYTES),
        ),
        remaining: match request.max_records {
            0 => u64::MAX,
            n => n,
        },
        stop_at_end: request.stop_at_end,
        heartbeat,
        isolation,
        format,
        shared,
        part,
        tx,
    };
    tokio::spawn(async move {
        subscription.run(offset).await;
        drop((permit, slot));
    });
    Ok(stream)
}

/// One subscription's task.
struct Subscription {
    shared: Arc<Shared>,
    part: Partition,
    tx: mpsc::Sender<Result<proto::SubscribeResponse, Status>>,
    max_bytes: usize,
    remaining: u64,
    stop_at_end: bool,
    heartbeat: Duration,
    isolation: Isolation,
    format: Format,
}

impl Subscription {
    async fn run(mut self, mut next: u64) {
        use proto::subscribe_response::Event;
        let mut changed = self.part.changed.subscribe();
        let mut caught_up = false;
        let mut last_sent = Instant::now();
        loop {
            // A slot in the channel before the read: a task waiting on a
            // stalled client holds no read in hand.
            let Some(slot) = self.reserve().await else {
                return;
            };
            changed.borrow_and_update();
            let (log, max_bytes, isolation) =
                (Arc::clone(&self.part.log), self.max_bytes, self.isolation);
            let read = blocking(move || {
                log.read(next, max_bytes, isolation)
                    .map_err(|e| status::storage(&e))
            })
            .await;
            if self.part.deleted.is_cancelled() {
                return;
            }
            let read = match read {
                Ok(read) => read,
                Err(status) => {
                    slot.send(Err(status));
                    return;
                }
            };
            if read.batch_count > 0 {
                let chunk = cut(&read, next, self.remaining, self.max_bytes, self.format);
                let start_offset = next;
                next = chunk.next_offset;
                self.remaining = self.remaining.saturating_sub(chunk.count);
                let event = Event::Batch(proto::RecordBatch {
                    records: chunk.records,
                    encoded_batches: chunk.encoded,
                    next_offset: next,
                    watermarks: Some(watermarks(&read.watermarks)),
                    start_offset,
                });
                drop(read);
                slot.send(Ok(proto::SubscribeResponse { event: Some(event) }));
                last_sent = Instant::now();
                if self.remaining == 0 {
                    return;
                }
                continue;
            }
            if caught_up {
                drop(slot);
            } else {
                caught_up = true;
                let event = Event::CaughtUp(proto::CaughtUp {
                    next_offset: next,
                    watermarks: Some(watermarks(&read.watermarks)),
                });
                slot.send(Ok(proto::SubscribeResponse { event: Some(event) }));
                if self.stop_at_end {
                    return;
                }
                last_sent = Instant::now();
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                () = tokio::time::sleep_until(last_sent + self.heartbeat) => {
                    let event = Event::Heartbeat(proto::Heartbeat {
                        next_offset: next,
                        watermarks: Some(watermarks(&self.part.log.watermarks())),
                        server_time: Some(timestamp(now_ms())),
                    });
                    if !self.send(event).await {
                        return;
                    }
                    last_sent = Instant::now();
                }
                () = self.tx.closed() => return,
                () = self.shared.shutdown.cancelled() => return,
                () = self.part.deleted.cancelled() => return,
            }
        }
    }

    /// A slot in the channel; `None` when the client went away, the
    /// server shuts down or the topic was deleted.
    async fn reserve(&self) -> Option<mpsc::OwnedPermit<Result<proto::SubscribeResponse, Status>>> {
        if self.shared.shutdown.is_cancelled() || self.part.deleted.is_cancelled() {
            return None;
        }
        tokio::select! {
            r = self.tx.clone().reserve_owned() => r.ok(),
            () = self.shared.shutdown.cancelled() => None,
            () = self.part.deleted.cancelled() => None,
        }
    }

    /// Sends an event; false when the client went away, the server
    /// shuts down or the topic was deleted (the response stream, an
    /// [`UntilShutdown`], then ends with UNAVAILABLE or NOT_FOUND).
    async fn send(&self, event: proto::subscribe_response::Event) -> bool {
        let message = proto::SubscribeResponse { event: Some(event) };
        tokio::select! {
            r = self.tx.send(Ok(message)) => r.is_ok(),
            () = self.shared.shutdown.cancelled() => false,
            () = self.part.deleted.cancelled() => false,
        }
    }
}

/// A response stream that ends with UNAVAILABLE (`SHUTTING_DOWN`) as soon
/// as shutdown starts, whatever its task is doing: open streams never hold
/// the server up, and clients learn to reconnect elsewhere or later. A
/// subscription's stream also ends, the same way, with NOT_FOUND when its
/// topic is deleted ([`UntilShutdown::or_when`]).
pub(crate) struct UntilShutdown<T> {
    rx: mpsc::Receiver<Result<T, Status>>,
    shutdown: std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
    ended: Option<(
        std::pin::Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
        Status,
    )>,
    done: bool,
}

impl<T> UntilShutdown<T> {
    pub(crate) fn new(
        rx: mpsc::Receiver<Result<T, Status>>,
        token: tokio_util::sync::CancellationToken,
    ) -> Self {
        UntilShutdown {
            rx,
            shutdown: Box::pin(token.cancelled_owned()),
            ended: None,
            done: false,
        }
    }

    /// Also ends the stream with `status` once `token` is cancelled.
    pub(crate) fn or_when(
        mut self,
        token: tokio_util::sync::CancellationToken,
        status: Status,
    ) -> Self {
        self.ended = Some((Box::pin(token.cancelled_owned()), status));
        self
    }
}

impl<T> tokio_stream::Stream for UntilShutdown<T> {
    type Item = Result<T, Status>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::future::Future;
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if self.shutdown.as_mut().poll(cx).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(status::shutting_down())));
        }
        if let Some((ended, status)) = &mut self.ended
            && ended.as_mut().poll(cx).is_ready()
        {
            let status = status.clone();
            self.done = true;
            return Poll::Ready(Some(Err(status)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(kind: proto::position::Position, reset: proto::ResetPolicy) -> proto::Position {
        proto::Position {
            position: Some(kind),
            reset_policy: reset as i32,
        }
    }

    #[test]
    fn reads_from_the_log_start_follow_it_and_others_do_not() {
        use proto::position::Position as P;
        assert!(follows_log_start(None));
        let earliest = P::Boundary(proto::Boundary::Earliest as i32);
        assert!(follows_log_start(Some(&position(
            earliest,
            proto::ResetPolicy::Error
        ))));
        let latest = P::Boundary(proto::Boundary::Latest as i32);
        assert!(!follows_log_start(Some(&position(
            latest.clone(),
            proto::ResetPolicy::Error
        ))));
        assert!(follows_log_start(Some(&position(
            latest,
            proto::ResetPolicy::Earliest
        ))));
        assert!(!follows_log_start(Some(&position(
            P::Offset(7),
            proto::ResetPolicy::Error
        ))));
        assert!(!follows_log_start(Some(&position(
            P::Offset(7),
            proto::ResetPolicy::Latest
        ))));
        assert!(follows_log_start(Some(&position(
            P::Offset(7),
            proto::ResetPolicy::Earliest
        ))));
    }
}
