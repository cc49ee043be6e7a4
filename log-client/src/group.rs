//! [`GroupConsumer`]: a member of a consumer group. It consumes whatever
//! partitions the server assigns it (Kafka clients in the same group share
//! them), from the group's committed offsets, and commits what it handed
//! out. Before a rebalance the server revokes the assignment: the consumer
//! commits, stops reading and answers, then reads its next assignment, so
//! with commit-after-process no record is processed by two live members.
//!
//! Handing out a record means it was processed by the time
//! [`GroupConsumer::next`] is called again (the usual consumer loop); the
//! commit at a revoke covers exactly those. Each assigned partition is read
//! by a task of its own (long-poll fetches), into one bounded channel.
//!
//! Not done here: pausing partitions, manual assignment (use
//! [`Consumer`](crate::Consumer)), choosing the assignor (the server
//! assigns with Kafka's range rule).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Client;
use crate::consumer::{Consumer, ConsumerConfig, ConsumerMode, ReceivedRecord};
use crate::error::Error;
use crate::proto;
use crate::proto::group_client_message::Message as ClientMessage;
use crate::proto::group_server_message::Message as ServerMessage;
use crate::types::{Isolation, Position, ResetPolicy};

/// Records buffered from all partitions before the readers wait.
const BUFFERED: usize = 1024;

/// Group consumer settings.
///
/// `#[non_exhaustive]`: start from [`GroupConsumerConfig::new`] and set
/// fields with the `with_*` methods:
///
/// ```
/// use log_client::GroupConsumerConfig;
/// use std::time::Duration;
///
/// let config = GroupConsumerConfig::new("billing", ["orders"])
///     .with_session_timeout(Duration::from_secs(6))
///     .with_instance_id("billing-1");
/// assert_eq!(config.topics, vec!["orders".to_owned()]);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupConsumerConfig {
    /// The group.
    pub group: String,
    /// The topics it consumes.
    pub topics: Vec<String>,
    /// A name for this member (member ids start with it).
    pub client_id: String,
    /// Static membership: the same id after a restart, within the session
    /// timeout, gets the same partitions back without a rebalance.
    pub instance_id: Option<String>,
    /// Removed from the group when not heard from for this long (default
    /// 10 s; the server allows 6 s to 30 min).
    pub session_timeout: Duration,
    /// How long a rebalance waits for this member (default 30 s).
    pub rebalance_timeout: Duration,
    /// Where a partition the group never committed starts (default
    /// earliest).
    pub reset: ResetPolicy,
    /// Which records are visible (default durable).
    pub isolation: Isolation,
    /// Longest wait of one fetch (default 500 ms).
    pub max_wait: Duration,
}

impl GroupConsumerConfig {
    /// A member of `group` consuming `topics`, with the defaults.
    pub fn new<T: Into<String>>(
        group: impl Into<String>,
        topics: impl IntoIterator<Item = T>,
    ) -> GroupConsumerConfig {
        GroupConsumerConfig {
            group: group.into(),
            topics: topics.into_iter().map(Into::into).collect(),
            client_id: "log-client".to_owned(),
            instance_id: None,
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            reset: ResetPolicy::Earliest,
            isolation: Isolation::Durable,
            max_wait: Duration::from_millis(500),
        }
    }

    /// Sets [`GroupConsumerConfig::client_id`].
    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    /// Sets [`GroupConsumerConfig::instance_id`].
    pub fn with_instance_id(mut self, id: impl Into<String>) -> Self {
        self.instance_id = Some(id.into());
        self
    }

    /// Sets [`GroupConsumerConfig::session_timeout`].
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Sets [`GroupConsumerConfig::rebalance_timeout`].
    pub fn with_rebalance_timeout(mut self, timeout: Duration) -> Self {
        self.rebalance_timeout = timeout;
        self
    }

    /// Sets [`GroupConsumerConfig::reset`].
    pub fn with_reset(mut self, reset: ResetPolicy) -> Self {
        self.reset = reset;
        self
    }

    /// Sets [`GroupConsumerConfig::isolation`].
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Sets [`GroupConsumerConfig::max_wait`].
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }
}

/// A record handed out by a [`GroupConsumer`], with its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// Its topic.
    pub topic: String,
    /// The record (its partition and offset inside).
    pub record: ReceivedRecord,
}

/// A member's current generation and partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberAssignment {
    /// The member id the server gave this member.
    pub member_id: String,
    /// The generation.
    pub generation: i32,
    /// `(topic, partition)`, sorted.
    pub partitions: Vec<(String, u32)>,
}

/// A member of a consumer group. See the module docs.
#[derive(Debug)]
pub struct GroupConsumer {
    client: Client,
    config: GroupConsumerConfig,
    outbound: mpsc::Sender<proto::GroupClientMessage>,
    inbound: tonic::Streaming<proto::GroupServerMessage>,
    assignment: Option<MemberAssignment>,
    readers: Vec<JoinHandle<()>>,
    records: mpsc::Receiver<(String, Result<ReceivedRecord, Error>)>,
    /// Next offset to commit, per assigned partition with a record handed
    /// out since the assignment.
    handed: BTreeMap<(String, u32), u64>,
    /// A revoke received and not answered yet (its generation): finished
    /// first by the next call, so that `next` may be cancelled anywhere.
    revoking: Option<i32>,
}

impl GroupConsumer {
    /// Joins the group and waits for the first assignment.
    pub async fn join(
        client: &Client,
        config: GroupConsumerConfig,
    ) -> Result<GroupConsumer, Error> {
        let (outbound, rx) = mpsc::channel(4);
        let join = proto::GroupJoin {
            group: config.group.clone(),
            topics: config.topics.clone(),
            client_id: config.client_id.clone(),
            instance_id: config.instance_id.clone(),
            session_timeout_ms: millis(config.session_timeout),
            rebalance_timeout_ms: millis(config.rebalance_timeout),
        };
        outbound
            .send(proto::GroupClientMessage {
                message: Some(ClientMessage::Join(join)),
            })
            .await
            .map_err(|_| Error::invalid("group stream closed before the join"))?;
        let inbound = client.consume_group(ReceiverStream::new(rx)).await?;
        let (_, records) = mpsc::channel(1);
        let mut consumer = GroupConsumer {
            client: client.clone(),
            config,
            outbound,
            inbound,
            assignment: None,
            readers: Vec::new(),
            records,
            handed: BTreeMap::new(),
            revoking: None,
        };
        while consumer.assignment.is_none() {
            consumer.receive().await?;
            consumer.finish_revoke().await?;
        }
        Ok(consumer)
    }

    /// The current assignment (`None` between a revoke and the next one).
    pub fn assignment(&self) -> Option<&MemberAssignment> {
        self.assignment.as_ref()
    }

    /// The next record of any assigned partition; assignments and revokes
    /// are handled on the way (a revoke commits what was handed out). Ends
    /// with an error when the stream to the server does. Cancel-safe: a
    /// revoke interrupted half-way is finished by the next call.
    pub async fn next(&mut self) -> Result<GroupRecord, Error> {
        loop {
            self.finish_revoke().await?;
            if self.assignment.is_none() {
                self.receive().await?;
                continue;
            }
            tokio::select! {
                biased;
                message = self.inbound.message() => self.handle(message?).await?,
                got = self.records.recv() => match got {
                    Some((topic, Ok(record))) => {
                        self.handed
                            .insert((topic.clone(), record.partition), record.offset + 1);
                        return Ok(GroupRecord { topic, record });
                    }
                    Some((_, Err(err))) => return Err(err),
                    // Every reader stopped (nothing assigned): wait for
                    // the server.
                    None => {
                        let message = self.inbound.message().await?;
                        self.handle(message).await?;
                    }
                },
            }
        }
    }

    /// Commits the offset after the last record handed out of each
    /// partition, as this member of its generation (refused with an error
    /// once the generation is over).
    pub async fn commit(&self) -> Result<(), Error> {
        let Some(assignment) = &self.assignment else {
            return Ok(());
        };
        let mut by_topic: BTreeMap<&str, Vec<(u32, u64)>> = BTreeMap::new();
        for ((topic, partition), offset) in &self.handed {
            by_topic
                .entry(topic.as_str())
                .or_default()
                .push((*partition, *offset));
        }
        for (topic, offsets) in by_topic {
            self.client
                .commit_offsets(
                    &self.config.group,
                    topic,
                    &offsets,
                    "",
                    Some((&assignment.member_id, assignment.generation)),
                )
                .await?;
        }
        Ok(())
    }

    /// Commits and leaves the group (its partitions go to the others at
    /// once; a static member keeps them for its session timeout).
    pub async fn close(self) -> Result<(), Error> {
        let committed = self.commit().await;
        // Dropping the consumer stops its readers and ends the stream.
        drop(self);
        committed
    }

    /// Waits for the server's next message and acts on it.
    async fn receive(&mut self) -> Result<(), Error> {
        let message = self.inbound.message().await?;
        self.handle(message).await
    }

    async fn handle(&mut self, message: Option<proto::GroupServerMessage>) -> Result<(), Error> {
        let Some(message) = message.and_then(|m| m.message) else {
            return Err(Error::invalid("the server ended the group stream"));
        };
        match message {
            ServerMessage::Assignment(a) => {
                self.assign(a);
                Ok(())
            }
            ServerMessage::Revoke(r) => {
                self.stop_readers();
                self.revoking = Some(r.generation);
                self.finish_revoke().await
            }
        }
    }

    /// Answers a pending revoke: commits what was handed out, lets go of
    /// the assignment and tells the server. Safe to redo after a
    /// cancellation (the commit is idempotent; the state changes only once
    /// the answer is sent).
    async fn finish_revoke(&mut self) -> Result<(), Error> {
        let Some(generation) = self.revoking else {
            return Ok(());
        };
        if let Err(err) = self.commit().await {
            tracing::warn!(group = %self.config.group, error = %err, "commit at revoke failed");
        }
        self.outbound
            .send(proto::GroupClientMessage {
                message: Some(ClientMessage::Revoked(proto::GroupRevoked { generation })),
            })
            .await
            .map_err(|_| Error::invalid("the group stream closed"))?;
        self.revoking = None;
        self.assignment = None;
        self.handed.clear();
        Ok(())
    }

    /// Starts reading a new assignment, each partition from the group's
    /// committed offset.
    fn assign(&mut self, a: proto::GroupAssignment) {
        self.stop_readers();
        self.handed.clear();
        let mut partitions: Vec<(String, u32)> = a
            .partitions
            .iter()
            .flat_map(|tp| tp.partitions.iter().map(|&p| (tp.topic.clone(), p)))
            .collect();
        partitions.sort();
        let (tx, rx) = mpsc::channel(BUFFERED);
        self.records = rx;
        for (topic, partition) in &partitions {
            let config = ConsumerConfig::default()
                .with_mode(ConsumerMode::Fetch)
                .with_isolation(self.config.isolation)
                .with_max_wait(self.config.max_wait)
                .with_group(self.config.group.clone())
                .with_reset(self.config.reset);
            let mut consumer = Consumer::new(
                self.client.clone(),
                topic,
                *partition,
                Position::committed(self.config.group.clone()),
                config,
            );
            let (tx, topic) = (tx.clone(), topic.clone());
            self.readers.push(tokio::spawn(async move {
                while let Some(next) = consumer.next().await {
                    let failed = next.is_err();
                    if tx.send((topic.clone(), next)).await.is_err() {
                        return;
                    }
                    if failed {
                        // The consumer resumes from its position.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }));
        }
        self.assignment = Some(MemberAssignment {
            member_id: a.member_id,
            generation: a.generation,
            partitions,
        });
    }

    fn stop_readers(&mut self) {
        for reader in self.readers.drain(..) {
            reader.abort();
        }
        // Records read but not handed out are dropped with the channel.
        let (_, rx) = mpsc::channel(1);
        self.records = rx;
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        self.stop_readers();
    }
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}
