//! `ConsumeGroup`: a gRPC member of a consumer group, for as long as its
//! stream is open. The server joins the shared coordinator on the member's
//! behalf (as a Kafka consumer with the `range` protocol, so Kafka clients
//! and gRPC members share groups), computes the assignment when the member
//! leads (`assign.rs`), pushes it, heartbeats for it, and before each
//! rebalance pushes a revoke and waits (at most the rebalance timeout) for
//! the member to answer that it committed and let go.
//!
//! One task per stream; the outbound channel holds at most
//! [`OUTBOUND`] messages (an assignment and a revoke are all a member ever
//! has pending). A closed stream leaves the group at once, except for a
//! static member, which keeps its place for its session timeout so that a
//! restart gets its partitions back.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use log_client::proto;
use log_groups::{GroupError, JoinGroup, Joined, MemberRef, Protocol, SyncGroup, Synced};
use proto::group_client_message::Message as ClientMessage;
use proto::group_server_message::Message as ServerMessage;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use crate::assign;
use crate::state::Shared;
use crate::status;

/// Messages buffered towards one member.
const OUTBOUND: usize = 4;
const DEFAULT_SESSION: Duration = Duration::from_secs(10);
const DEFAULT_REBALANCE: Duration = Duration::from_secs(30);

/// The response stream of `ConsumeGroup`.
pub(crate) type GroupStream = ReceiverStream<Result<proto::GroupServerMessage, Status>>;

/// Starts serving one `ConsumeGroup` stream on its own task.
pub(crate) fn open(
    shared: Arc<Shared>,
    inbound: Streaming<proto::GroupClientMessage>,
    peer: String,
) -> GroupStream {
    let (tx, rx) = mpsc::channel(OUTBOUND);
    tokio::spawn(async move {
        let mut member = Member {
            shared,
            inbound,
            tx,
            id: String::new(),
            generation: -1,
            peer,
        };
        let result = member.serve().await;
        if let Err(status) = result {
            let _ = member.tx.send(Err(status)).await;
        }
    });
    ReceiverStream::new(rx)
}

/// What the client asked for, checked.
struct Wanted {
    group: String,
    topics: Vec<String>,
    client_id: String,
    instance_id: Option<String>,
    session: Duration,
    rebalance: Duration,
}

/// How a wait on the coordinator ended.
enum Waited<T> {
    Done(Result<T, GroupError>),
    /// The client went away (or sent something that ends the stream).
    Gone,
}

struct Member {
    shared: Arc<Shared>,
    inbound: Streaming<proto::GroupClientMessage>,
    tx: mpsc::Sender<Result<proto::GroupServerMessage, Status>>,
    id: String,
    generation: i32,
    peer: String,
}

impl Member {
    async fn serve(&mut self) -> Result<(), Status> {
        let wanted = self.first().await?;
        let result = self.run(&wanted).await;
        if !self.id.is_empty() && wanted.instance_id.is_none() {
            self.shared
                .groups
                .leave(&wanted.group, &[(self.id.clone(), None)]);
        }
        result
    }

    /// The GroupJoin that opens the stream, checked.
    async fn first(&mut self) -> Result<Wanted, Status> {
        let Some(message) = self.inbound.message().await? else {
            return Err(status::invalid(
                "join",
                "the stream ended before a GroupJoin",
            ));
        };
        let Some(ClientMessage::Join(join)) = message.message else {
            return Err(status::invalid(
                "join",
                "the first message must be a GroupJoin",
            ));
        };
        if join.topics.is_empty() {
            return Err(status::invalid(
                "topics",
                "a member consumes at least one topic",
            ));
        }
        let mut topics = Vec::new();
        for name in &join.topics {
            let topic = self.shared.topic(name)?;
            if !topics.contains(&topic.name) {
                topics.push(topic.name.clone());
            }
        }
        let ms = |v: u32, default: Duration| {
            if v == 0 {
                default
            } else {
                Duration::from_millis(u64::from(v))
            }
        };
        Ok(Wanted {
            group: join.group,
            topics,
            client_id: if join.client_id.is_empty() {
                "grpc".to_owned()
            } else {
                join.client_id
            },
            instance_id: join.instance_id,
            session: ms(join.session_timeout_ms, DEFAULT_SESSION),
            rebalance: ms(join.rebalance_timeout_ms, DEFAULT_REBALANCE),
        })
    }

    fn me(&self, wanted: &Wanted) -> MemberRef {
        MemberRef {
            group_id: wanted.group.clone(),
            generation: self.generation,
            member_id: self.id.clone(),
            group_instance_id: wanted.instance_id.clone(),
        }
    }

    /// Join, sync, hold the assignment until a rebalance, revoke; again.
    async fn run(&mut self, wanted: &Wanted) -> Result<(), Status> {
        loop {
            let joined = match self.join(wanted).await {
                Waited::Gone => return Ok(()),
                Waited::Done(Ok(joined)) => joined,
                Waited::Done(Err(GroupError::UnknownMemberId)) if !self.id.is_empty() => {
                    self.id.clear();
                    continue;
                }
                Waited::Done(Err(GroupError::RebalanceInProgress)) => continue,
                Waited::Done(Err(err)) => return Err(status::group(&err, &wanted.group)),
            };
            self.id = joined.member_id.clone();
            self.generation = joined.generation;
            let assignments = if joined.leader == joined.member_id {
                self.lead(&joined)
            } else {
                Vec::new()
            };
            let synced = match self.sync(wanted, assignments).await {
                Waited::Gone => return Ok(()),
                Waited::Done(Ok(synced)) => synced,
                Waited::Done(Err(GroupError::UnknownMemberId)) => {
                    self.id.clear();
                    continue;
                }
                Waited::Done(Err(
                    GroupError::RebalanceInProgress | GroupError::IllegalGeneration,
                )) => {
                    continue;
                }
                Waited::Done(Err(err)) => return Err(status::group(&err, &wanted.group)),
            };
            let assignment = assign::decode(&synced.assignment).unwrap_or_else(|| {
                tracing::warn!(group = %wanted.group, "an assignment that does not decode: none taken");
                assign::Assignment::new()
            });
            let message = ServerMessage::Assignment(proto::GroupAssignment {
                member_id: self.id.clone(),
                generation: self.generation,
                partitions: assignment
                    .into_iter()
                    .filter(|(topic, _)| wanted.topics.contains(topic))
                    .map(|(topic, partitions)| proto::TopicPartitions { topic, partitions })
                    .collect(),
            });
            if !self.send(message).await {
                return Ok(());
            }
            match self.hold(wanted).await? {
                Held::Gone => return Ok(()),
                Held::Revoke => {
                    let revoke = ServerMessage::Revoke(proto::GroupRevoke {
                        generation: self.generation,
                    });
                    if !self.send(revoke).await || !self.await_revoked(wanted).await? {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn send(&self, message: ServerMessage) -> bool {
        self.tx
            .send(Ok(proto::GroupServerMessage {
                message: Some(message),
            }))
            .await
            .is_ok()
    }

    async fn join(&mut self, wanted: &Wanted) -> Waited<Joined> {
        let (tx, rx) = oneshot::channel();
        self.shared.groups.join(
            JoinGroup {
                group_id: wanted.group.clone(),
                member_id: self.id.clone(),
                group_instance_id: wanted.instance_id.clone(),
                client_id: wanted.client_id.clone(),
                client_host: self.peer.clone(),
                session_timeout: wanted.session,
                rebalance_timeout: wanted.rebalance,
                protocol_type: assign::PROTOCOL_TYPE.to_owned(),
                protocols: vec![Protocol {
                    name: assign::PROTOCOL.to_owned(),
                    metadata: assign::subscription(&wanted.topics),
                }],
                require_known_member_id: false,
            },
            move |r| {
                let _ = tx.send(r);
            },
        );
        self.wait(rx).await
    }

    async fn sync(
        &mut self,
        wanted: &Wanted,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> Waited<Synced> {
        let (tx, rx) = oneshot::channel();
        self.shared.groups.sync(
            SyncGroup {
                member: self.me(wanted),
                protocol_type: Some(assign::PROTOCOL_TYPE.to_owned()),
                protocol: Some(assign::PROTOCOL.to_owned()),
                assignments,
            },
            move |r| {
                let _ = tx.send(r);
            },
        );
        self.wait(rx).await
    }

    /// Waits for the coordinator's answer while watching the client: a
    /// closed stream ends the wait.
    async fn wait<T>(&mut self, rx: oneshot::Receiver<Result<T, GroupError>>) -> Waited<T> {
        let mut rx = pin!(rx);
        loop {
            tokio::select! {
                answer = &mut rx => {
                    return Waited::Done(answer.unwrap_or(Err(GroupError::CoordinatorNotAvailable)));
                }
                message = self.inbound.message() => match message {
                    Ok(Some(_stale)) => {}
                    Ok(None) | Err(_) => return Waited::Gone,
                },
                () = self.shared.shutdown.cancelled() => return Waited::Gone,
            }
        }
    }

    /// The leader's assignment: range over every member's subscription.
    fn lead(&self, joined: &Joined) -> Vec<(String, bytes::Bytes)> {
        let members: Vec<(String, Vec<String>)> = joined
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.clone(),
                    assign::subscribed_topics(&m.metadata).unwrap_or_default(),
                )
            })
            .collect();
        let store = &self.shared.store;
        assign::range(&members, |topic| {
            store.topic(topic).ok().map(|t| t.partitions)
        })
        .into_iter()
        .map(|(id, a)| (id, assign::encode(&a)))
        .collect()
    }

    /// Holds the assignment: heartbeats until the group rebalances (or
    /// the member was removed), the client goes, or the server stops.
    async fn hold(&mut self, wanted: &Wanted) -> Result<Held, Status> {
        let every = heartbeat_interval(wanted.session);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => match self.shared.groups.heartbeat(&self.me(wanted)) {
                    Ok(()) => {}
                    Err(GroupError::RebalanceInProgress) => return Ok(Held::Revoke),
                    Err(GroupError::UnknownMemberId | GroupError::IllegalGeneration) => {
                        // Removed (a session that expired) or a generation
                        // moved on without us: let go, then join anew.
                        self.id.clear();
                        return Ok(Held::Revoke);
                    }
                    Err(err) => return Err(status::group(&err, &wanted.group)),
                },
                message = self.inbound.message() => match message {
                    Ok(Some(m)) => {
                        if matches!(m.message, Some(ClientMessage::Join(_))) {
                            return Err(status::invalid("join", "a stream joins once"));
                        }
                    }
                    Ok(None) | Err(_) => return Ok(Held::Gone),
                },
                () = self.shared.shutdown.cancelled() => return Err(status::shutting_down()),
            }
        }
    }

    /// Waits for the member's GroupRevoked for this generation, keeping
    /// its session alive; `false` when the client went away. Past the
    /// rebalance timeout the member is rejoined anyway (its commits of
    /// the old generation are refused from then on).
    async fn await_revoked(&mut self, wanted: &Wanted) -> Result<bool, Status> {
        let every = heartbeat_interval(wanted.session);
        let deadline = tokio::time::Instant::now() + wanted.rebalance;
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {
                    let _ = self.shared.groups.heartbeat(&self.me(wanted));
                }
                message = self.inbound.message() => match message {
                    Ok(Some(proto::GroupClientMessage {
                        message: Some(ClientMessage::Revoked(r)),
                    })) if r.generation == self.generation => return Ok(true),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return Ok(false),
                },
                () = tokio::time::sleep_until(deadline) => {
                    tracing::warn!(group = %wanted.group, member = %self.id, "no GroupRevoked within the rebalance timeout; rejoining");
                    return Ok(true);
                }
                () = self.shared.shutdown.cancelled() => return Err(status::shutting_down()),
            }
        }
    }
}

/// How holding an assignment ended.
enum Held {
    /// Revoke, then rejoin.
    Revoke,
    /// The client went away.
    Gone,
}

/// A third of the session timeout, within 100 ms to 3 s (as Kafka
/// clients' default ratio).
fn heartbeat_interval(session: Duration) -> Duration {
    (session / 3).clamp(Duration::from_millis(100), Duration::from_secs(3))
}
