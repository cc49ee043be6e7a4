//! What a member does between rebalances, and what happens when it stops:
//! syncs (the leader's assignment handed out), heartbeats, leaving, the
//! commit checks, and the expiry of sessions, handed-out member ids and the
//! assignment's deadline.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;

use super::{Done, Group, Out};
use crate::config::GroupConfig;
use crate::error::GroupError;
use crate::types::{GroupState, MemberRef, SyncGroup, Synced};

impl Group {
    /// A sync: answered now (a stable group), when the leader's
    /// assignment arrives, or with an error.
    pub(crate) fn sync(
        &mut self,
        sync: SyncGroup,
        now: Instant,
        config: &GroupConfig,
        done: Done<Synced>,
        out: &mut Out,
    ) {
        if let Err(err) = self.check_member(&sync.member) {
            return out.answer(done, Err(err));
        }
        let type_differs = sync
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t));
        let protocol_differs = sync
            .protocol
            .as_ref()
            .is_some_and(|p| self.protocol.as_ref() != Some(p));
        if type_differs || protocol_differs {
            return out.answer(done, Err(GroupError::InconsistentGroupProtocol));
        }
        if let Some((member, a)) = sync
            .assignments
            .iter()
            .find(|(_, a)| a.len() > config.max_member_bytes)
        {
            return out.answer(
                done,
                Err(GroupError::InvalidRequest(format!(
                    "assignment of {member} is {} bytes, over {}",
                    a.len(),
                    config.max_member_bytes
                ))),
            );
        }
        let id = sync.member.member_id.clone();
        let Some(index) = self.index(&id) else {
            return out.answer(done, Err(GroupError::UnknownMemberId));
        };
        self.members[index].last_seen = now;
        match self.state {
            GroupState::PreparingRebalance => {
                out.answer(done, Err(GroupError::RebalanceInProgress));
            }
            GroupState::Stable => {
                let synced = self.synced(index);
                out.answer(done, Ok(synced));
            }
            GroupState::CompletingRebalance => {
                if let Some(old) = self.members[index].awaiting_sync.replace(done) {
                    out.answer(old, Err(GroupError::RebalanceInProgress));
                }
                if self.leader.as_deref() == Some(id.as_str()) {
                    let mut given: HashMap<String, Bytes> = sync.assignments.into_iter().collect();
                    for member in &mut self.members {
                        member.assignment = given.remove(&member.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.sync_deadline = None;
                    tracing::debug!(group = %self.id, generation = self.generation, "stable");
                    for i in 0..self.members.len() {
                        let synced = self.synced(i);
                        if let Some(done) = self.members[i].awaiting_sync.take() {
                            out.answer(done, Ok(synced));
                        }
                    }
                }
            }
            GroupState::Empty | GroupState::Dead => {
                out.answer(done, Err(GroupError::UnknownMemberId));
            }
        }
    }

    fn synced(&self, index: usize) -> Synced {
        Synced {
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            assignment: self.members[index].assignment.clone(),
        }
    }

    /// The checks of a heartbeat and a sync: a live member of this
    /// generation, not fenced.
    fn check_member(&self, member: &MemberRef) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => return Err(GroupError::CoordinatorNotAvailable),
            GroupState::Empty => return Err(GroupError::UnknownMemberId),
            _ => {}
        }
        if self.fenced(member.group_instance_id.as_deref(), &member.member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if self.index(&member.member_id).is_none() {
            return Err(GroupError::UnknownMemberId);
        }
        if member.generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        Ok(())
    }

    /// A heartbeat: keeps the member's session; REBALANCE_IN_PROGRESS
    /// tells it to rejoin.
    pub(crate) fn heartbeat(&mut self, member: &MemberRef, now: Instant) -> Result<(), GroupError> {
        self.check_member(member)?;
        if let Some(index) = self.index(&member.member_id) {
            self.members[index].last_seen = now;
        }
        match self.state {
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            _ => Ok(()),
        }
    }

    /// Members leave (by member id, or by instance id for static ones).
    pub(crate) fn leave(
        &mut self,
        leaving: &[(String, Option<String>)],
        now: Instant,
        config: &GroupConfig,
        out: &mut Out,
    ) -> Vec<Result<(), GroupError>> {
        let mut removed = false;
        let results = leaving
            .iter()
            .map(|(member_id, instance_id)| {
                let id = match instance_id {
                    Some(instance) => match self.static_members.get(instance) {
                        None => return Err(GroupError::UnknownMemberId),
                        Some(owner) if !member_id.is_empty() && owner != member_id => {
                            return Err(GroupError::FencedInstanceId);
                        }
                        Some(owner) => owner.clone(),
                    },
                    None => member_id.clone(),
                };
                if self.pending.remove(&id).is_some() {
                    return Ok(());
                }
                self.remove(&id, out)?;
                removed = true;
                Ok(())
            })
            .collect();
        if removed {
            tracing::debug!(group = %self.id, "member left");
            self.after_removal(now, config, out);
        }
        results
    }

    fn remove(&mut self, member_id: &str, out: &mut Out) -> Result<(), GroupError> {
        let index = self.index(member_id).ok_or(GroupError::UnknownMemberId)?;
        let mut member = self.members.remove(index);
        if let Some(instance) = &member.instance_id {
            self.static_members.remove(instance);
        }
        member.fail_waiting(&GroupError::UnknownMemberId, out);
        Ok(())
    }

    fn after_removal(&mut self, now: Instant, config: &GroupConfig, out: &mut Out) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now, config, out);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Whether a commit of offsets by `member` is allowed, as Kafka
    /// decides it: a group without members takes commits of generation
    /// -1 (no group management); a member commits in its own generation,
    /// not while the assignment is being handed out.
    pub(crate) fn check_commit(
        &mut self,
        member: &MemberRef,
        now: Instant,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if self.fenced(member.group_instance_id.as_deref(), &member.member_id) {
            return Err(GroupError::FencedInstanceId);
        }
        if member.generation < 0 && self.state == GroupState::Empty {
            return Ok(());
        }
        let index = self
            .index(&member.member_id)
            .ok_or(GroupError::UnknownMemberId)?;
        if member.generation != self.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(GroupError::RebalanceInProgress);
        }
        self.members[index].last_seen = now;
        Ok(())
    }

    /// Expires sessions, pending member ids and rebalance deadlines.
    pub(crate) fn tick(&mut self, now: Instant, config: &GroupConfig, out: &mut Out) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| {
                m.awaiting_join.is_none()
                    && m.awaiting_sync.is_none()
                    && now.saturating_duration_since(m.last_seen) >= m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "session expired");
            let _ = self.remove(id, out);
        }
        if !expired.is_empty() {
            self.after_removal(now, config, out);
        }
        match self.state {
            GroupState::PreparingRebalance => self.try_complete_join(now, out),
            GroupState::CompletingRebalance
                if self.sync_deadline.is_some_and(|deadline| now >= deadline) =>
            {
                // The leader never sent the assignment: whoever did not
                // sync is out, the rest rejoin.
                let late: Vec<String> = self
                    .members
                    .iter()
                    .filter(|m| m.awaiting_sync.is_none())
                    .map(|m| m.id.clone())
                    .collect();
                for id in &late {
                    let _ = self.remove(id, out);
                }
                self.prepare_rebalance(now, config, out);
            }
            _ => {}
        }
    }
}
