//! [`Consumer`]: the records of one partition as an async sequence (or a
//! [`Stream`]), by long-poll fetches or by one subscription; it tracks its
//! position and commits it for a consumer group.
//!
//! Records travel as the stored encoded batches (the server passes them
//! through without decoding); the consumer verifies every batch's
//! checksums with `log-format` and hands out keys and values that share the
//! received buffer (no copy). A damaged batch is an error, never a record.
//!
//! Not done here: reading several partitions (run one consumer per
//! partition), group membership and rebalancing (a
//! [`GroupConsumer`](crate::GroupConsumer) does both).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use log_format::{BytesScanner, Limits, Scanned};
use tokio_stream::Stream;

use crate::client::{Client, FetchOptions};
use crate::error::Error;
use crate::proto;
use crate::types::{Isolation, Position, RecordFormat, ResetPolicy, Watermarks};

/// How a [`Consumer`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumerMode {
    /// One long-poll `Fetch` after another (each waits at most
    /// `max_wait`).
    Fetch,
    /// One `Subscribe` stream: replay, then tail. The default.
    #[default]
    Subscribe,
}

/// Consumer settings.
///
/// `#[non_exhaustive]`: start from [`ConsumerConfig::default`] and set
/// fields with the `with_*` methods:
///
/// ```
/// use log_client::{ConsumerConfig, ConsumerMode, Isolation};
///
/// let config = ConsumerConfig::default()
///     .with_mode(ConsumerMode::Fetch)
///     .with_isolation(Isolation::Written)
///     .with_group("billing");
/// assert_eq!(config.group.as_deref(), Some("billing"));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConsumerConfig {
    /// Fetch or subscribe.
    pub mode: ConsumerMode,
    /// Which records are visible (default [`Isolation::Durable`]: nothing a
    /// crash could take back).
    pub isolation: Isolation,
    /// Bytes per response (0: the server's default, 1 MiB).
    pub max_bytes: u32,
    /// Longest wait of one fetch for new records. Default 500 ms.
    pub max_wait: Duration,
    /// End the sequence once the visible end is reached.
    pub stop_at_end: bool,
    /// The consumer group [`Consumer::commit`] commits for.
    pub group: Option<String>,
    /// What to do when the start position falls outside the log (`None`:
    /// the position's [default](Position::default_reset)).
    pub reset: Option<ResetPolicy>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            mode: ConsumerMode::default(),
            isolation: Isolation::Durable,
            max_bytes: 0,
            max_wait: Duration::from_millis(500),
            stop_at_end: false,
            group: None,
            reset: None,
        }
    }
}

impl ConsumerConfig {
    /// Sets [`mode`](Self::mode).
    pub fn with_mode(mut self, mode: ConsumerMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets [`isolation`](Self::isolation).
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn with_max_bytes(mut self, bytes: u32) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Sets [`stop_at_end`](Self::stop_at_end).
    pub fn with_stop_at_end(mut self, stop: bool) -> Self {
        self.stop_at_end = stop;
        self
    }

    /// Sets [`group`](Self::group).
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Sets [`reset`](Self::reset).
    pub fn with_reset(mut self, reset: ResetPolicy) -> Self {
        self.reset = Some(reset);
        self
    }
}

/// A record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRecord {
    /// Its partition.
    pub partition: u32,
    /// Its offset.
    pub offset: u64,
    /// The producer's event time, ms since the Unix epoch.
    pub timestamp: i64,
    /// When its batch was appended, ms since the Unix epoch.
    pub append_time: i64,
    /// The key (`None`: null).
    pub key: Option<Bytes>,
    /// The value (`None`: a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order; a `None` value is a null one.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Reads one partition. See the module docs.
#[derive(Debug)]
pub struct Consumer {
    client: Client,
    topic: String,
    partition: u32,
    config: ConsumerConfig,
    /// Where to start, until the first response resolves it.
    start: Option<Position>,
    /// The next offset to hand out.
    next: Option<u64>,
    buffer: VecDeque<ReceivedRecord>,
    subscription: Option<tonic::Streaming<proto::SubscribeResponse>>,
    watermarks: Option<Watermarks>,
    caught_up: bool,
    ended: bool,
}

impl Consumer {
    /// A consumer of `topic`/`partition` from `start` (e.g.
    /// [`Position::Earliest`], [`Position::committed`]).
    pub fn new(
        client: Client,
        topic: &str,
        partition: u32,
        start: Position,
        config: ConsumerConfig,
    ) -> Consumer {
        Consumer {
            client,
            topic: topic.to_owned(),
            partition,
            config,
            start: Some(start),
            next: None,
            buffer: VecDeque::new(),
            subscription: None,
            watermarks: None,
            caught_up: false,
            ended: false,
        }
    }

    /// The offset of the next record this consumer hands out (`None`
    /// before the start position was resolved).
    pub fn position(&self) -> Option<u64> {
        self.next
    }

    /// The partition's watermarks as of the last response.
    pub fn watermarks(&self) -> Option<Watermarks> {
        self.watermarks
    }

    /// Whether the consumer reached the visible end at least once.
    pub fn is_caught_up(&self) -> bool {
        self.caught_up
    }

    /// Commits the position (the next offset to read) for the configured
    /// group.
    pub async fn commit(&self) -> Result<(), Error> {
        let Some(group) = &self.config.group else {
            return Err(Error::invalid("commit needs ConsumerConfig::group"));
        };
        let Some(offset) = self.next else {
            return Ok(());
        };
        self.client
            .commit_offset(group, &self.topic, self.partition, offset, "")
            .await
    }

    /// The next record: waits for one when caught up (unless
    /// `stop_at_end`, then `None`). After an error the consumer may be
    /// called again: it resumes from its position.
    pub async fn next(&mut self) -> Option<Result<ReceivedRecord, Error>> {
        loop {
            if let Some(record) = self.buffer.pop_front() {
                self.next = Some(record.offset + 1);
                return Some(Ok(record));
            }
            if self.ended {
                return None;
            }
            let result = match self.config.mode {
                ConsumerMode::Fetch => self.fetch().await,
                ConsumerMode::Subscribe => self.receive().await,
            };
            if let Err(err) = result {
                self.subscription = None;
                return Some(Err(err));
            }
        }
    }

    /// Turns the consumer into a [`Stream`] of records.
    pub fn into_stream(self) -> impl Stream<Item = Result<ReceivedRecord, Error>> + Send {
        RecordStream {
            consumer: Some(self),
            pending: None,
        }
    }

    /// Where the next read starts, with the reset policy it is read with.
    fn position_to_read(&self) -> (Position, Option<ResetPolicy>) {
        match (self.next, &self.start) {
            // A resumed position was handed out: never skip past it.
            (Some(offset), _) => (Position::Offset(offset), None),
            (None, Some(start)) => (start.clone(), self.config.reset),
            (None, None) => (Position::Earliest, self.config.reset),
        }
    }

    async fn fetch(&mut self) -> Result<(), Error> {
        let (position, reset) = self.position_to_read();
        let options = FetchOptions {
            max_bytes: self.config.max_bytes,
            max_wait: if self.config.stop_at_end {
                Duration::ZERO
            } else {
                self.config.max_wait
            },
            isolation: self.config.isolation,
            format: RecordFormat::EncodedBatches,
            reset,
            ..FetchOptions::default()
        };
        let response = self
            .client
            .fetch(&self.topic, self.partition, position, &options)
            .await?;
        let from = self.next.unwrap_or(response.start_offset);
        self.next = Some(from);
        self.decode(&response.encoded_batches, from)?;
        self.watermarks = response.watermarks.map(Watermarks::from);
        if response.encoded_batches.is_empty() {
            self.caught_up = true;
            if self.config.stop_at_end {
                self.ended = true;
            }
        }
        Ok(())
    }

    async fn receive(&mut self) -> Result<(), Error> {
        use proto::subscribe_response::Event;
        if self.subscription.is_none() {
            let (position, reset) = self.position_to_read();
            let request = proto::SubscribeRequest {
                topic: self.topic.clone(),
                partition: self.partition,
                position: Some(position.to_proto(reset)),
                max_batch_bytes: self.config.max_bytes,
                stop_at_end: self.config.stop_at_end,
                isolation: proto::Isolation::from(self.config.isolation) as i32,
                format: proto::RecordFormat::EncodedBatches as i32,
                ..proto::SubscribeRequest::default()
            };
            self.subscription = Some(self.client.subscribe(request).await?);
        }
        let Some(stream) = self.subscription.as_mut() else {
            return Ok(());
        };
        match stream.message().await? {
            None => {
                self.ended = true;
                self.subscription = None;
            }
            Some(message) => match message.event {
                Some(Event::Batch(batch)) => {
                    let from = self.next.unwrap_or(batch.start_offset);
                    self.next = Some(from);
                    self.decode(&batch.encoded_batches, from)?;
                    self.watermarks = batch.watermarks.map(Watermarks::from);
                }
                Some(Event::CaughtUp(caught_up)) => {
                    self.caught_up = true;
                    if self.next.is_none() {
                        self.next = Some(caught_up.next_offset);
                    }
                    self.watermarks = caught_up.watermarks.map(Watermarks::from);
                }
                Some(Event::Heartbeat(heartbeat)) => {
                    if self.next.is_none() {
                        self.next = Some(heartbeat.next_offset);
                    }
                    self.watermarks = heartbeat.watermarks.map(Watermarks::from);
                }
                None => {}
            },
        }
        Ok(())
    }

    /// Verifies and decodes stored batches, buffering records from `from`.
    fn decode(&mut self, encoded: &Bytes, from: u64) -> Result<(), Error> {
        for scanned in BytesScanner::new(encoded.clone(), 0, Limits::unlimited()) {
            let batch = match scanned {
                Scanned::Batch(batch) => batch,
                Scanned::Incomplete { position, needed } => {
                    return Err(Error::data_loss(format!(
                        "received batch at byte {position} is cut short ({needed} bytes missing)"
                    )));
                }
                Scanned::Corrupt(corrupt) => {
                    return Err(Error::data_loss(format!(
                        "received batch is damaged: {corrupt}"
                    )));
                }
            };
            let append_time = batch.header().append_time;
            for record in batch.records() {
                if record.offset() < from {
                    continue;
                }
                let share = |part: &[u8]| {
                    batch
                        .share(part)
                        .unwrap_or_else(|| Bytes::copy_from_slice(part))
                };
                self.buffer.push_back(ReceivedRecord {
                    partition: self.partition,
                    offset: record.offset(),
                    timestamp: record.timestamp(),
                    append_time,
                    key: record.key().map(share),
                    value: record.value().map(share),
                    headers: record
                        .headers()
                        .map(|(k, v)| (k.to_owned(), v.map(share)))
                        .collect(),
                });
            }
        }
        Ok(())
    }
}

type NextFuture =
    Pin<Box<dyn Future<Output = (Consumer, Option<Result<ReceivedRecord, Error>>)> + Send>>;

/// [`Consumer::into_stream`].
struct RecordStream {
    consumer: Option<Consumer>,
    pending: Option<NextFuture>,
}

impl Stream for RecordStream {
    type Item = Result<ReceivedRecord, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pending.is_none() {
            let Some(mut consumer) = self.consumer.take() else {
                return Poll::Ready(None);
            };
            self.pending = Some(Box::pin(async move {
                let item = consumer.next().await;
                (consumer, item)
            }));
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match pending.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((consumer, item)) => {
                self.pending = None;
                if item.is_some() {
                    self.consumer = Some(consumer);
                }
                Poll::Ready(item)
            }
        }
    }
}
