//! One group's state machine, as Kafka's classic group coordinator runs
//! it: Empty → PreparingRebalance (members join) → CompletingRebalance (the
//! leader computes the assignment) → Stable, and back to
//! PreparingRebalance whenever the membership or a member's protocols
//! change, a member leaves, or a session expires.
//!
//! Time is an argument (`now`), never read here, so every transition is
//! tested without sleeping. Answers that a call completes (its own, or
//! other members' waiting joins and syncs) are pushed onto an [`Out`] and
//! run by the caller after the group's lock is released.
//!
//! This file holds the group, its members and what both halves share;
//! `join.rs` the joins and the rebalance they run, `session.rs` the sync,
//! heartbeats, leaving, commit checks and the expiry of sessions and
//! deadlines.

mod join;
mod session;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::GroupError;
use crate::types::{
    GroupDescription, GroupState, JoinGroup, Joined, MemberDescription, Protocol, Synced,
};

/// A completion: called once, with the answer, outside every lock.
pub(crate) type Done<T> = Box<dyn FnOnce(Result<T, GroupError>) + Send>;

/// Answers to deliver once the group's lock is released.
#[derive(Default)]
pub(crate) struct Out(Vec<Box<dyn FnOnce() + Send>>);

impl Out {
    fn answer<T: Send + 'static>(&mut self, done: Done<T>, result: Result<T, GroupError>) {
        self.0.push(Box::new(move || done(result)));
    }

    /// Runs every answer.
    pub(crate) fn deliver(self) {
        for answer in self.0 {
            answer();
        }
    }
}

struct Member {
    id: String,
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<Protocol>,
    assignment: Bytes,
    last_seen: Instant,
    awaiting_join: Option<Done<Joined>>,
    awaiting_sync: Option<Done<Synced>>,
}

impl Member {
    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    fn update(&mut self, join: &JoinGroup, now: Instant) {
        self.protocols = join.protocols.clone();
        self.session_timeout = join.session_timeout;
        self.rebalance_timeout = join.rebalance_timeout;
        self.client_id = join.client_id.clone();
        self.client_host = join.client_host.clone();
        self.last_seen = now;
    }

    /// Fails the member's waiting join and sync, if any.
    fn fail_waiting(&mut self, error: &GroupError, out: &mut Out) {
        if let Some(done) = self.awaiting_join.take() {
            out.answer(done, Err(error.clone()));
        }
        if let Some(done) = self.awaiting_sync.take() {
            out.answer(done, Err(error.clone()));
        }
    }
}

/// One consumer group.
pub(crate) struct Group {
    id: String,
    state: GroupState,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// In join order (the first is the leader when a new one is needed).
    members: Vec<Member>,
    /// Instance id → member id of each static member.
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until they join
    /// again with them or their deadline passes.
    pending: HashMap<String, Instant>,
    /// PreparingRebalance: the join completes by then, with whoever
    /// rejoined.
    rebalance_deadline: Option<Instant>,
    /// PreparingRebalance of a group that was empty: not before then.
    initial_delay_until: Option<Instant>,
    /// CompletingRebalance: the leader's assignment is due by then.
    sync_deadline: Option<Instant>,
}

impl Group {
    pub(crate) fn new(id: String) -> Group {
        Group {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            sync_deadline: None,
        }
    }

    pub(crate) fn state(&self) -> GroupState {
        self.state
    }

    /// No members, none pending: the coordinator may forget the group.
    pub(crate) fn is_idle(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    /// Marks the group removed: every waiting call fails.
    pub(crate) fn kill(&mut self, out: &mut Out) {
        for member in &mut self.members {
            member.fail_waiting(&GroupError::CoordinatorNotAvailable, out);
        }
        self.members.clear();
        self.static_members.clear();
        self.pending.clear();
        self.state = GroupState::Dead;
    }

    fn index(&self, member_id: &str) -> Option<usize> {
        self.members.iter().position(|m| m.id == member_id)
    }

    /// Whether `instance_id` belongs to a member other than `member_id`.
    fn fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id
            .and_then(|instance| self.static_members.get(instance))
            .is_some_and(|owner| owner != member_id)
    }

    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|p| self.members.iter().all(|m| m.supports(&p.name)))
    }

    pub(crate) fn describe(&self) -> GroupDescription {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupDescription {
            group_id: self.id.clone(),
            state: self.state,
            generation: self.generation,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }
}
