//! What every RPC shares: the store (and its committer), the open partitions
//! with their change signal, the limits and the counters.
//!
//! The open partitions are the store's ([`Store::partition`]: one
//! registry, no second map here). To each the server attaches, once
//! ([`log_storage::Log::attachment`]), a [`Signal`]: a `tokio::sync::watch`
//! channel bumped by the storage's change listener
//! ([`log_storage::Log::on_change`]) after every append, sync, delete and
//! close, so long polls and subscriptions await it instead of polling the
//! storage; and a token cancelled when the partition's log is closed (its
//! topic deleted): the topic's long polls and subscriptions then end at
//! once with NOT_FOUND and drop their handle on the partition's files. A
//! topic created again under the same name has new logs, so new signals:
//! nothing opened on the old one reads the new. A [`Partition`] handle
//! stays valid until [`Partition::is_gone`] says otherwise, so a
//! `ProduceStream` keeps the one it last wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use log_storage::{Log, Store, TopicInfo, Watermarks};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::config::Config;
use crate::status;

/// An open partition (the store's log) and the server's signal on it.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    pub(crate) log: Arc<Log>,
    signal: Arc<Signal>,
}

/// What the server attaches to each open partition's log.
#[derive(Debug)]
pub(crate) struct Signal {
    /// Bumped whenever the partition's watermarks may have moved.
    pub(crate) changed: watch::Sender<u64>,
    /// The topic's name and id ([`TopicInfo::id`], new for a topic
    /// created again under the same name).
    pub(crate) topic: String,
    pub(crate) topic_id: u64,
    /// Cancelled when the log is closed (its topic deleted).
    pub(crate) deleted: CancellationToken,
    /// Set just before `deleted` is cancelled: the same fact, readable
    /// without the token's lock (checked on every produce to a partition a
    /// stream kept).
    gone: AtomicBool,
}

impl std::ops::Deref for Partition {
    type Target = Signal;

    fn deref(&self) -> &Signal {
        &self.signal
    }
}

impl Signal {
    /// The signal of a partition of `topic`.
    fn new(topic: &TopicInfo) -> Signal {
        let (changed, _) = watch::channel(0u64);
        Signal {
            changed,
            topic: topic.name.clone(),
            topic_id: topic.id,
            deleted: CancellationToken::new(),
            gone: AtomicBool::new(false),
        }
    }

    /// Marks the partition deleted and ends its readers.
    fn forget(&self) {
        self.gone.store(true, Ordering::Release);
        self.deleted.cancel();
    }
}

impl Partition {
    /// Whether the partition's log was closed (its topic deleted, or the
    /// store closed): this handle is never handed out again, and appends
    /// through it must not go on.
    pub(crate) fn is_gone(&self) -> bool {
        self.signal.gone.load(Ordering::Acquire)
    }

    /// NOT_FOUND (`TOPIC_NOT_FOUND`): what readers of a deleted topic get.
    pub(crate) fn gone(&self) -> Status {
        status::storage(&log_storage::Error::TopicNotFound {
            topic: self.signal.topic.clone(),
        })
    }
}

/// What a client connection holds at once, checked against the
/// per-connection caps ([`Config::max_subscriptions_per_connection`],
/// [`Config::max_fetches_per_connection`]) so that one client cannot take
/// every slot. One per connection, shared by its calls through
/// [`ConnInfo`].
#[derive(Debug, Default)]
pub(crate) struct ConnLoad {
    subscriptions: AtomicU32,
    fetches: AtomicU32,
}

/// The connect info of a connection, in every request's extensions: its
/// addresses and its [`ConnLoad`].
#[derive(Debug, Clone)]
pub(crate) struct ConnInfo {
    pub(crate) tcp: tonic::transport::server::TcpConnectInfo,
    pub(crate) load: Arc<ConnLoad>,
}

/// What a slot of a connection is taken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotKind {
    Subscription,
    Fetch,
}

/// A taken slot of a connection, given back when the last clone is
/// dropped (a fetch's travels with its response body until that is sent).
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    _taken: Option<Arc<TakenSlot>>,
}

#[derive(Debug)]
struct TakenSlot {
    load: Arc<ConnLoad>,
    kind: SlotKind,
}

impl Drop for TakenSlot {
    fn drop(&mut self) {
        self.load.counter(self.kind).fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnLoad {
    fn counter(&self, kind: SlotKind) -> &AtomicU32 {
        match kind {
            SlotKind::Subscription => &self.subscriptions,
            SlotKind::Fetch => &self.fetches,
        }
    }
}

/// Counters since start.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) produce_requests: AtomicU64,
    pub(crate) fetch_requests: AtomicU64,
    pub(crate) records_appended: AtomicU64,
    pub(crate) bytes_appended: AtomicU64,
}

/// The state shared by the services.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<Store>,
    pub(crate) config: Config,
    pub(crate) subscriptions: Arc<Semaphore>,
    pub(crate) counters: Counters,
    /// Cancelled at the start of shutdown: streams end with UNAVAILABLE.
    pub(crate) shutdown: CancellationToken,
    pub(crate) start_time: SystemTime,
    round_robin: AtomicU32,
    /// Set once every partition was opened (recovered) at start.
    pub(crate) ready: std::sync::atomic::AtomicBool,
    /// The consumer-group coordinator both front ends share.
    pub(crate) groups: Arc<log_groups::Coordinator>,
}

impl Shared {
    pub(crate) fn new(store: Arc<Store>, config: Config, shutdown: CancellationToken) -> Shared {
        let first_delay = std::time::Duration::from_millis(config.group_initial_rebalance_delay_ms);
        Shared {
            store,
            subscriptions: Arc::new(Semaphore::new(config.max_subscriptions as usize)),
            config,
            counters: Counters::default(),
            shutdown,
            start_time: SystemTime::now(),
            round_robin: AtomicU32::new(0),
            ready: std::sync::atomic::AtomicBool::new(false),
            groups: log_groups::Coordinator::start(
                log_groups::GroupConfig::default().with_initial_rebalance_delay(first_delay),
            ),
        }
    }

    /// Fails with UNAVAILABLE while recovering and once shutdown started.
    pub(crate) fn check_running(&self) -> Result<(), Status> {
        if self.shutdown.is_cancelled() {
            return Err(status::shutting_down());
        }
        self.check_recovered()
    }

    /// Fails with UNAVAILABLE while recovering (the half of
    /// [`check_running`](Self::check_running) for a caller that learns of
    /// shutdown another way: the token's check takes a lock every caller
    /// shares).
    pub(crate) fn check_recovered(&self) -> Result<(), Status> {
        if !self.ready.load(Ordering::Acquire) {
            return Err(status::status(
                tonic::Code::Unavailable,
                status::reason::RECOVERING,
                "server is recovering its partitions",
                &[],
            ));
        }
        Ok(())
    }

    /// A topic's info.
    pub(crate) fn topic(&self, name: &str) -> Result<TopicInfo, Status> {
        self.check_running()?;
        self.store.topic(name).map_err(|e| status::storage(&e))
    }

    /// An open partition (opened on first use), with its change signal.
    pub(crate) fn partition(&self, topic: &str, partition: u32) -> Result<Partition, Status> {
        let info = self.store.topic(topic).map_err(|e| status::storage(&e))?;
        self.partition_of(&info, partition)
    }

    /// An open partition of a topic whose info the caller just read
    /// (opened on first use): the store's log, and the server's signal
    /// attached to it the first time.
    pub(crate) fn partition_of(
        &self,
        topic: &TopicInfo,
        partition: u32,
    ) -> Result<Partition, Status> {
        let log = self
            .store
            .partition(&topic.name, partition)
            .map_err(|e| status::storage(&e))?;
        self.partition_at(topic, log)
    }

    /// The server's handle on `log`, a partition of `topic` the caller
    /// opened: its signal attached the first time.
    pub(crate) fn partition_at(
        &self,
        topic: &TopicInfo,
        log: Arc<Log>,
    ) -> Result<Partition, Status> {
        let signal = log
            .attachment(|| {
                let signal = Arc::new(Signal::new(topic));
                let listener = Arc::clone(&signal);
                let weak = Arc::downgrade(&log);
                log.on_change(Arc::new(move || {
                    // Closed: the topic was deleted (or the store closed).
                    if weak.upgrade().is_some_and(|log| log.is_closed()) {
                        listener.forget();
                    }
                    // No reader waits: nothing to wake, and the signal's
                    // locks are not taken on every append of a partition
                    // nobody reads. A reader subscribes before it reads the
                    // log, so one that subscribes now still sees what just
                    // moved.
                    if listener.changed.receiver_count() > 0 {
                        listener
                            .changed
                            .send_modify(|tick| *tick = tick.wrapping_add(1));
                    }
                }));
                // Closed before the listener was in place: no change will
                // tell it any more.
                if log.is_closed() {
                    signal.forget();
                }
                signal
            })
            .ok_or_else(|| Status::internal("a partition carries another attachment"))?;
        let open = Partition { log, signal };
        if open.is_gone() {
            return Err(open.gone());
        }
        Ok(open)
    }

    /// Takes a slot of `kind` on the connection a request came on (none to
    /// take without connect info: nothing to count against): past the
    /// connection's cap, RESOURCE_EXHAUSTED naming it.
    pub(crate) fn take_slot(
        &self,
        conn: Option<&ConnInfo>,
        kind: SlotKind,
    ) -> Result<Slot, Status> {
        let Some(conn) = conn else {
            return Ok(Slot { _taken: None });
        };
        let (limit, reason, what, setting) = match kind {
            SlotKind::Subscription => (
                self.config.max_subscriptions_per_connection,
                status::reason::TOO_MANY_SUBSCRIPTIONS_ON_CONNECTION,
                "open subscriptions",
                "max_subscriptions_per_connection",
            ),
            SlotKind::Fetch => (
                self.config.max_fetches_per_connection,
                status::reason::TOO_MANY_FETCHES_ON_CONNECTION,
                "fetches in flight",
                "max_fetches_per_connection",
            ),
        };
        let counter = conn.load.counter(kind);
        if counter.fetch_add(1, Ordering::AcqRel) >= limit {
            counter.fetch_sub(1, Ordering::AcqRel);
            tracing::info!(peer = ?conn.tcp.remote_addr(), limit, setting, "connection limit reached");
            return Err(status::status(
                tonic::Code::ResourceExhausted,
                reason,
                format!(
                    "this connection holds its limit of {limit} {what} ({setting}); \
                     wait for one to end, or use another connection"
                ),
                &[("limit", limit.to_string()), ("setting", setting.into())],
            ));
        }
        Ok(Slot {
            _taken: Some(Arc::new(TakenSlot {
                load: Arc::clone(&conn.load),
                kind,
            })),
        })
    }

    /// The next partition for a producer that named none and no key.
    pub(crate) fn next_round_robin(&self, partitions: u32) -> u32 {
        self.round_robin.fetch_add(1, Ordering::Relaxed) % partitions.max(1)
    }
}

/// The protobuf form of a partition's watermarks.
pub(crate) fn watermarks(marks: &Watermarks) -> log_client::proto::Watermarks {
    log_client::proto::Watermarks {
        log_start_offset: marks.log_start,
        log_end_offset: marks.log_end,
        durable_end_offset: marks.durable_end,
        epoch: marks.epoch,
    }
}

/// A protobuf timestamp from ms since the Unix epoch.
pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range
/// of a valid `google.protobuf.Timestamp`.
const MIN_TIMESTAMP_SECONDS: i64 = -62_135_596_800;
const MAX_TIMESTAMP_SECONDS: i64 = 253_402_300_799;
/// Largest valid `google.protobuf.Duration`: about 10,000 years.
const MAX_DURATION_SECONDS: i64 = 315_576_000_000;

/// Ms since the Unix epoch of a request's timestamp (sub-ms truncated):
/// INVALID_ARGUMENT naming `field` outside the range of a valid
/// `google.protobuf.Timestamp` or with nanos outside [0, 10^9).
pub(crate) fn timestamp_ms(field: &str, ts: &prost_types::Timestamp) -> Result<i64, Status> {
    if !(MIN_TIMESTAMP_SECONDS..=MAX_TIMESTAMP_SECONDS).contains(&ts.seconds)
        || !(0..1_000_000_000).contains(&ts.nanos)
    {
        return Err(status::invalid(
            field,
            format!(
                "timestamp {}s {}ns is not within 0001-01-01 and 9999-12-31 with nanos in [0, 10^9)",
                ts.seconds, ts.nanos
            ),
        ));
    }
    Ok(ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000)
}

/// A request's duration: INVALID_ARGUMENT naming `field` when negative,
/// with nanos outside [0, 10^9), or longer than a valid
/// `google.protobuf.Duration`. Callers bound it further.
pub(crate) fn duration(field: &str, d: &prost_types::Duration) -> Result<Duration, Status> {
    if !(0..=MAX_DURATION_SECONDS).contains(&d.seconds) || !(0..1_000_000_000).contains(&d.nanos) {
        return Err(status::invalid(
            field,
            format!(
                "duration {}s {}ns is not a non-negative duration with nanos in [0, 10^9)",
                d.seconds, d.nanos
            ),
        ));
    }
    Ok(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// The time now, ms since the Unix epoch (the workspace's one clock
/// reading, [`log_format::now_ms`]).
pub(crate) use log_format::now_ms;

/// The gRPC server's partition signals, lent to the Kafka front end so
/// that both wait on one signal per partition.
#[derive(Debug)]
pub(crate) struct KafkaChanges(pub(crate) Arc<Shared>);

impl log_kafka::Changes for KafkaChanges {
    fn watch(&self, topic: &TopicInfo, log: &Arc<Log>) -> Option<watch::Receiver<u64>> {
        self.0
            .partition_at(topic, Arc::clone(log))
            .ok()
            .map(|p| p.changed.subscribe())
    }
}
