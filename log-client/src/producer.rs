//! [`Producer`]: batches records per partition (by size and linger time),
//! encodes each batch with `log-format` (checksums computed here, so the
//! server appends the bytes as they are), pipelines the batches over one
//! `ProduceStream`, and retries safely.
//!
//! Safety of retries: the producer is idempotent. It picks a random
//! producer id, numbers each partition's records, and the server stores a
//! batch it already has only once (returning the original offsets). When
//! the stream fails with a retryable error (UNAVAILABLE: server restarting,
//! connection lost) every unacknowledged batch is sent again, in order, on
//! a new stream. At most five batches are in flight, the number of batches
//! per producer the server remembers.
//!
//! A batch that fails for good (a condition, a limit, a missing topic)
//! fails the batches pipelined behind it too (the server appended none of
//! them); the producer then starts a new epoch so later batches are
//! accepted.
//!
//! Not done here: transactions, and choosing partitions by the server's
//! load.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use log_format::{BatchBuilder, Codec, Limits, ProducerInfo, RecordHeader, now_ms};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Client;
use crate::error::Error;
use crate::proto;
use crate::types::{Ack, millis};

/// Most batches the server remembers per producer: the in-flight bound.
const MAX_IN_FLIGHT: usize = 5;

/// Producer settings.
///
/// `#[non_exhaustive]`: start from [`ProducerConfig::default`] and set
/// fields with the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use log_client::{Ack, ProducerConfig};
///
/// let config = ProducerConfig::default()
///     .with_linger(Duration::ZERO)
///     .with_ack(Ack::Written)
///     .with_retries(3);
/// assert_eq!(config.ack, Ack::Written);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProducerConfig {
    /// How long a partition's first record waits for more before its batch
    /// is sent. Default 5 ms; zero sends each record at once.
    pub linger: Duration,
    /// A batch is sent once it holds this many bytes (encoded). Default
    /// 1 MiB; capped by the server's batch limit.
    pub max_batch_bytes: usize,
    /// Batches sent and not yet acknowledged. Default and maximum 5.
    pub max_in_flight: usize,
    /// The ack level (default [`Ack::TopicDefault`]: the topic's default).
    pub ack: Ack,
    /// Retries of a retryable failure before giving up. Default 10.
    pub retries: u32,
    /// Wait before the first retry (doubling, at most 5 s). Default 100 ms.
    pub retry_backoff: Duration,
    /// Records accepted by [`Producer::send`] and not yet in a batch; when
    /// full, `send` waits. Default 100000.
    pub buffer_records: usize,
    /// How each batch's records are compressed (Kafka's codecs; default
    /// [`Codec::None`]). The server stores and serves batches as sent, so
    /// this also saves disk and consumers' bandwidth.
    pub compression: Codec,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            linger: Duration::from_millis(5),
            max_batch_bytes: 1 << 20,
            max_in_flight: MAX_IN_FLIGHT,
            ack: Ack::TopicDefault,
            retries: 10,
            retry_backoff: Duration::from_millis(100),
            buffer_records: 100_000,
            compression: Codec::None,
        }
    }
}

impl ProducerConfig {
    /// Sets [`linger`](Self::linger).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// Sets [`max_batch_bytes`](Self::max_batch_bytes).
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> Self {
        self.max_batch_bytes = bytes;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight).
    pub fn with_max_in_flight(mut self, batches: usize) -> Self {
        self.max_in_flight = batches;
        self
    }

    /// Sets [`ack`](Self::ack).
    pub fn with_ack(mut self, ack: Ack) -> Self {
        self.ack = ack;
        self
    }

    /// Sets [`retries`](Self::retries).
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets [`retry_backoff`](Self::retry_backoff).
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }

    /// Sets [`buffer_records`](Self::buffer_records).
    pub fn with_buffer_records(mut self, records: usize) -> Self {
        self.buffer_records = records;
        self
    }

    /// Sets [`compression`](Self::compression).
    pub fn with_compression(mut self, codec: Codec) -> Self {
        self.compression = codec;
        self
    }
}

/// A record to produce.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    /// The partition; `None`: by key (CRC-32 of the key modulo the
    /// partition count) or, without key, the producer's round-robin.
    pub partition: Option<u32>,
    /// The key (`None`: null key).
    pub key: Option<Bytes>,
    /// The value (`None`: a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order; a `None` value is a null one.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Event time, ms since the Unix epoch (`None`: now).
    pub timestamp: Option<i64>,
}

impl NewRecord {
    /// A record with a value only.
    pub fn value(value: impl Into<Bytes>) -> NewRecord {
        NewRecord {
            value: Some(value.into()),
            ..NewRecord::default()
        }
    }

    /// A record with a key and a value.
    pub fn keyed(key: impl Into<Bytes>, value: impl Into<Bytes>) -> NewRecord {
        NewRecord {
            key: Some(key.into()),
            value: Some(value.into()),
            ..NewRecord::default()
        }
    }

    /// The same record for partition `partition`.
    pub fn to_partition(mut self, partition: u32) -> NewRecord {
        self.partition = Some(partition);
        self
    }

    /// The same record with one more header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> NewRecord {
        self.headers.push((key.into(), Some(value.into())));
        self
    }

    /// The same record with one more header, whose value is null.
    pub fn with_null_header(mut self, key: impl Into<String>) -> NewRecord {
        self.headers.push((key.into(), None));
        self
    }
}

/// Where a produced record was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAck {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// The append time of its batch, ms since the Unix epoch.
    pub append_time: i64,
}

/// The outcome of one [`Producer::send`]: resolves once the record's batch
/// is acknowledged at the producer's ack level.
#[derive(Debug)]
pub struct Delivery(oneshot::Receiver<Result<RecordAck, Error>>);

impl Future for Delivery {
    type Output = Result<RecordAck, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| Err(Error::closed("producer stopped"))))
    }
}

type Waiter = oneshot::Sender<Result<RecordAck, Error>>;

enum Command {
    Record(NewRecord, Waiter),
    Flush(oneshot::Sender<()>),
}

/// A batching, pipelining, idempotent producer for one topic. See the
/// module docs.
#[derive(Debug)]
pub struct Producer {
    tx: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    partitions: u32,
}

impl Producer {
    /// A producer for `topic` (which must exist).
    pub async fn new(
        client: Client,
        topic: &str,
        config: ProducerConfig,
    ) -> Result<Producer, Error> {
        let info = client.get_topic(topic).await?;
        let partitions = info.topic.partition_count.max(1);
        let limit = client
            .server_info()
            .await?
            .limits
            .map_or(1 << 20, |l| l.max_batch_bytes as usize);
        let (tx, rx) = mpsc::channel(config.buffer_records.max(1));
        let task = Task {
            limits: Limits {
                max_batch_bytes: limit as u32,
                ..Limits::default()
            },
            max_batch_bytes: config.max_batch_bytes.min(limit).max(1),
            max_in_flight: config.max_in_flight.clamp(1, MAX_IN_FLIGHT),
            producer_id: random_id(),
            epoch: 0,
            next_sequence: vec![0; partitions as usize],
            open: (0..partitions).map(|_| None).collect(),
            round_robin: 0,
            in_flight: VecDeque::new(),
            stream: None,
            flushes: Vec::new(),
            failures: 0,
            client,
            topic: topic.to_owned(),
            partitions,
            config,
        };
        let task = tokio::spawn(task.run(rx));
        Ok(Producer {
            tx,
            task,
            partitions,
        })
    }

    /// The topic's partition count when the producer started.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Queues a record (waiting while the buffer is full) and returns the
    /// future of its acknowledgement.
    pub async fn send(&self, record: NewRecord) -> Result<Delivery, Error> {
        if let Some(p) = record.partition
            && p >= self.partitions
        {
            return Err(Error::invalid(format!(
                "partition {p} does not exist (the topic has {})",
                self.partitions
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Record(record, tx))
            .await
            .map_err(|_| Error::closed("producer stopped"))?;
        Ok(Delivery(rx))
    }

    /// Sends every queued record now and waits until all are acknowledged
    /// (or failed: see each [`Delivery`]).
    pub async fn flush(&self) -> Result<(), Error> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(tx))
            .await
            .map_err(|_| Error::closed("producer stopped"))?;
        rx.await.map_err(|_| Error::closed("producer stopped"))
    }

    /// Flushes and stops the producer.
    pub async fn close(self) -> Result<(), Error> {
        self.flush().await?;
        drop(self.tx);
        self.task
            .await
            .map_err(|_| Error::closed("producer task failed"))
    }
}

/// A random non-negative producer id.
fn random_id() -> i64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    (hasher.finish() >> 1) as i64
}

/// A partition's batch being filled.
struct Open {
    builder: BatchBuilder,
    waiters: Vec<Waiter>,
    since: Instant,
}

/// A batch sent and not yet acknowledged.
struct Sent {
    partition: u32,
    batch: Bytes,
    waiters: Vec<Waiter>,
}

type Stream = (
    mpsc::Sender<proto::ProduceStreamRequest>,
    tonic::Streaming<proto::ProduceStreamResponse>,
);

struct Task {
    client: Client,
    topic: String,
    partitions: u32,
    config: ProducerConfig,
    limits: Limits,
    max_batch_bytes: usize,
    max_in_flight: usize,
    producer_id: i64,
    epoch: i16,
    next_sequence: Vec<i32>,
    open: Vec<Option<Open>>,
    round_robin: u32,
    in_flight: VecDeque<Sent>,
    stream: Option<Stream>,
    flushes: Vec<oneshot::Sender<()>>,
    /// Stream failures since the last acknowledgement.
    failures: u32,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut input_open = true;
        loop {
            if !input_open && self.in_flight.is_empty() && self.open.iter().all(Option::is_none) {
                for flush in self.flushes.drain(..) {
                    let _ = flush.send(());
                }
                return;
            }
            let room = self.in_flight.len() < self.max_in_flight;
            let due = self
                .open
                .iter()
                .flatten()
                .map(|o| o.since + self.config.linger)
                .min();
            tokio::select! {
                biased;
                response = async {
                    match self.stream.as_mut() {
                        Some((_, responses)) => responses.message().await,
                        None => std::future::pending().await,
                    }
                }, if !self.in_flight.is_empty() && self.stream.is_some() => {
                    self.on_response(response).await;
                }
                () = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                }, if room && due.is_some() => {
                    self.send_due(false).await;
                }
                command = rx.recv(), if room && input_open => match command {
                    Some(Command::Record(record, waiter)) => self.add(record, waiter).await,
                    Some(Command::Flush(done)) => {
                        self.flushes.push(done);
                        self.send_due(true).await;
                    }
                    None => {
                        input_open = false;
                        self.send_due(true).await;
                    }
                },
            }
            if !self.flushes.is_empty()
                && self.in_flight.is_empty()
                && self.open.iter().all(Option::is_none)
            {
                for flush in self.flushes.drain(..) {
                    let _ = flush.send(());
                }
            }
        }
    }

    fn partition_of(&mut self, record: &NewRecord) -> u32 {
        if let Some(p) = record.partition {
            return p;
        }
        if let Some(key) = &record.key {
            return crc32fast::hash(key) % self.partitions;
        }
        // Sticky round-robin: fill the partition with an open batch first.
        if let Some(p) = self.open.iter().position(Option::is_some) {
            return p as u32;
        }
        self.round_robin = (self.round_robin + 1) % self.partitions;
        self.round_robin
    }

    async fn add(&mut self, record: NewRecord, waiter: Waiter) {
        let partition = self.partition_of(&record);
        let headers: Vec<RecordHeader<'_>> = record
            .headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        let new = log_format::NewRecord {
            timestamp: record.timestamp.unwrap_or_else(now_ms),
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            headers: &headers,
        };
        for attempt in 0..2 {
            let limits = self.limits;
            let open = self.open[partition as usize].get_or_insert_with(|| Open {
                builder: {
                    let mut builder = BatchBuilder::new(limits);
                    builder.set_codec(self.config.compression);
                    builder
                },
                waiters: Vec::new(),
                since: Instant::now(),
            });
            match open.builder.push(&new) {
                Ok(()) => {
                    open.waiters.push(waiter);
                    if open.builder.encoded_len() >= self.max_batch_bytes
                        || self.config.linger.is_zero()
                    {
                        self.seal(partition).await;
                    }
                    return;
                }
                Err(err) if attempt == 0 && !open.builder.is_empty() => {
                    let _ = err;
                    // The batch is full: send it, start another.
                    self.seal(partition).await;
                }
                Err(err) => {
                    if open.builder.is_empty() {
                        self.open[partition as usize] = None;
                    }
                    let _ = waiter.send(Err(Error::invalid(format!("record refused: {err}"))));
                    return;
                }
            }
        }
    }

    /// Sends the batches whose linger passed (all with `all`).
    async fn send_due(&mut self, all: bool) {
        let now = Instant::now();
        for p in 0..self.partitions {
            let due = self.open[p as usize]
                .as_ref()
                .is_some_and(|o| all || o.since + self.config.linger <= now);
            if due {
                self.seal(p).await;
            }
        }
    }

    /// Finishes a partition's open batch and sends it.
    async fn seal(&mut self, partition: u32) {
        let Some(mut open) = self.open[partition as usize].take() else {
            return;
        };
        let sequence = &mut self.next_sequence[partition as usize];
        open.builder.set_producer(ProducerInfo {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            base_sequence: *sequence,
        });
        let count = open.builder.record_count();
        let batch = match open.builder.finish() {
            Ok(batch) => batch,
            Err(err) => {
                for waiter in open.waiters {
                    let _ = waiter.send(Err(Error::invalid(format!("batch refused: {err}"))));
                }
                return;
            }
        };
        *sequence = sequence.wrapping_add(count as i32) & i32::MAX;
        let sent = Sent {
            partition,
            batch,
            waiters: open.waiters,
        };
        let request = self.request(&sent);
        self.in_flight.push_back(sent);
        if let Err(err) = self.transmit(request).await {
            self.fail_all(err);
        }
    }

    fn request(&self, sent: &Sent) -> proto::ProduceStreamRequest {
        proto::ProduceStreamRequest {
            request: Some(proto::ProduceRequest {
                topic: self.topic.clone(),
                partition: Some(sent.partition),
                encoded_batch: sent.batch.clone(),
                ack: proto::Ack::from(self.config.ack) as i32,
                ..proto::ProduceRequest::default()
            }),
        }
    }

    /// Sends one request, opening the stream when there is none.
    async fn transmit(&mut self, request: proto::ProduceStreamRequest) -> Result<(), Error> {
        if self.stream.is_none() {
            self.open_stream().await?;
            // open_stream sent every in-flight batch, this one included.
            return Ok(());
        }
        if let Some((tx, _)) = &self.stream {
            // A send error means the stream is gone; the response side
            // reports why and resends.
            let _ = tx.send(request).await;
        }
        Ok(())
    }

    /// Opens a stream (retrying with backoff) and sends every in-flight
    /// batch on it, in order.
    async fn open_stream(&mut self) -> Result<(), Error> {
        let mut backoff = self.config.retry_backoff;
        let mut attempt = 0;
        loop {
            let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT + 1);
            for sent in &self.in_flight {
                let _ = tx.try_send(self.request(sent));
            }
            match self
                .client
                .log_service()
                .produce_stream(ReceiverStream::new(rx))
                .await
            {
                Ok(response) => {
                    self.stream = Some((tx, response.into_inner()));
                    return Ok(());
                }
                Err(status) => {
                    let err = Error::from(status);
                    attempt += 1;
                    if !err.is_retryable() || attempt > self.config.retries {
                        return Err(err);
                    }
                    tracing::debug!(error = %err, attempt, "produce stream failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn on_response(
        &mut self,
        response: Result<Option<proto::ProduceStreamResponse>, tonic::Status>,
    ) {
        let err = match response {
            Ok(Some(message)) => {
                let Some(sent) = self.in_flight.pop_front() else {
                    return;
                };
                let Some(ack) = message.response else {
                    self.fail(sent, Error::closed("server sent an empty answer"));
                    return;
                };
                self.failures = 0;
                let append_time = ack.append_time.as_ref().map_or(0, millis);
                for (i, waiter) in sent.waiters.into_iter().enumerate() {
                    let _ = waiter.send(Ok(RecordAck {
                        partition: ack.partition,
                        offset: ack.base_offset + i as u64,
                        append_time,
                    }));
                }
                return;
            }
            Ok(None) => Error::closed("server ended the produce stream"),
            Err(status) => Error::from(status),
        };
        self.stream = None;
        self.failures += 1;
        let retryable = err.is_retryable() || err.code() == tonic::Code::Unknown;
        if retryable && self.failures <= self.config.retries {
            // Send every unacknowledged batch again on a new stream: the
            // server stores each only once.
            let backoff = self.config.retry_backoff * (1u32 << (self.failures - 1).min(5));
            tokio::time::sleep(backoff.min(Duration::from_secs(5))).await;
            if let Err(err) = self.open_stream().await {
                self.fail_all(err);
            }
            return;
        }
        // A batch failed for good: it and those behind it (not appended).
        self.fail_all(err);
    }

    fn fail(&mut self, sent: Sent, err: Error) {
        for waiter in sent.waiters {
            let _ = waiter.send(Err(err.clone()));
        }
    }

    /// Fails every in-flight batch and starts a new epoch (sequences from
    /// 0), so later batches are accepted.
    fn fail_all(&mut self, err: Error) {
        self.stream = None;
        while let Some(sent) = self.in_flight.pop_front() {
            self.fail(sent, err.clone());
        }
        self.epoch = self.epoch.wrapping_add(1) & i16::MAX;
        // Open batches get their producer fields when sealed.
        self.next_sequence.iter_mut().for_each(|s| *s = 0);
    }
}
