//! Joins and the rebalance they run: a new member (dynamic, or static and
//! maybe replacing its earlier self), a known member rejoining, the wait
//! for every member, and the completion that starts a generation with a
//! leader and a protocol.

use std::time::Instant;

use bytes::Bytes;

use super::{Done, Group, Member, Out};
use crate::config::GroupConfig;
use crate::error::GroupError;
use crate::types::{GroupState, JoinGroup, Joined, JoinedMember};

impl Group {
    /// A join: answered now or when the rebalance completes.
    pub(crate) fn join(
        &mut self,
        join: JoinGroup,
        new_member_id: String,
        now: Instant,
        config: &GroupConfig,
        done: Done<Joined>,
        out: &mut Out,
    ) {
        if self.state == GroupState::Dead {
            return out.answer(done, Err(GroupError::CoordinatorNotAvailable));
        }
        if let Some(too_big) = join
            .protocols
            .iter()
            .map(|p| p.metadata.len() + p.name.len())
            .sum::<usize>()
            .checked_sub(config.max_member_bytes)
            .filter(|over| *over > 0)
        {
            return out.answer(
                done,
                Err(GroupError::InvalidRequest(format!(
                    "protocol metadata {too_big} bytes over the {} a member may send",
                    config.max_member_bytes
                ))),
            );
        }
        if !self.supports(&join.protocol_type, &join.protocols) {
            return out.answer(done, Err(GroupError::InconsistentGroupProtocol));
        }
        if join.member_id.is_empty() {
            self.join_new(join, new_member_id, now, config, done, out);
        } else {
            self.join_known(join, now, config, done, out);
        }
    }

    fn join_new(
        &mut self,
        join: JoinGroup,
        member_id: String,
        now: Instant,
        config: &GroupConfig,
        done: Done<Joined>,
        out: &mut Out,
    ) {
        if let Some(instance) = join.group_instance_id.clone() {
            if let Some(old) = self.static_members.get(&instance).cloned() {
                return self.replace_static(join, old, member_id, now, config, done, out);
            }
            return self.add_and_rebalance(join, member_id, now, config, done, out);
        }
        if join.require_known_member_id {
            if self.members.len() + self.pending.len() >= config.max_members {
                return out.answer(done, Err(GroupError::GroupMaxSizeReached));
            }
            self.pending
                .insert(member_id.clone(), now + join.session_timeout);
            return out.answer(done, Err(GroupError::MemberIdRequired { member_id }));
        }
        self.add_and_rebalance(join, member_id, now, config, done, out);
    }

    /// A static member restarting under a new member id: the old id is
    /// fenced, the member keeps its place and assignment. Without a change
    /// of protocols in a stable group, no rebalance: it syncs the current
    /// generation and gets its old assignment back.
    #[allow(clippy::too_many_arguments)]
    fn replace_static(
        &mut self,
        join: JoinGroup,
        old_id: String,
        new_id: String,
        now: Instant,
        config: &GroupConfig,
        done: Done<Joined>,
        out: &mut Out,
    ) {
        let Some(index) = self.index(&old_id) else {
            return self.add_and_rebalance(join, new_id, now, config, done, out);
        };
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        let unchanged = self.members[index].same_protocols(&join.protocols);
        let member = &mut self.members[index];
        member.fail_waiting(&GroupError::FencedInstanceId, out);
        member.id = new_id.clone();
        member.update(&join, now);
        if let Some(instance) = &join.group_instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        match self.state {
            GroupState::Stable if unchanged && !was_leader => {
                let joined = self.joined(&new_id);
                out.answer(done, Ok(joined));
            }
            GroupState::PreparingRebalance => {
                self.members[index].awaiting_join = Some(done);
                self.try_complete_join(now, out);
            }
            _ => {
                self.members[index].awaiting_join = Some(done);
                self.prepare_rebalance(now, config, out);
            }
        }
    }

    fn join_known(
        &mut self,
        join: JoinGroup,
        now: Instant,
        config: &GroupConfig,
        done: Done<Joined>,
        out: &mut Out,
    ) {
        let id = join.member_id.clone();
        if self.pending.remove(&id).is_some() {
            return self.add_and_rebalance(join, id, now, config, done, out);
        }
        if self.fenced(join.group_instance_id.as_deref(), &id) {
            return out.answer(done, Err(GroupError::FencedInstanceId));
        }
        let Some(index) = self.index(&id) else {
            return out.answer(done, Err(GroupError::UnknownMemberId));
        };
        let unchanged = self.members[index].same_protocols(&join.protocols);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                let member = &mut self.members[index];
                member.update(&join, now);
                if let Some(old) = member.awaiting_join.replace(done) {
                    out.answer(old, Err(GroupError::RebalanceInProgress));
                }
                self.try_complete_join(now, out);
            }
            GroupState::CompletingRebalance if unchanged => {
                self.members[index].last_seen = now;
                let joined = self.joined(&id);
                out.answer(done, Ok(joined));
            }
            GroupState::Stable if unchanged && !is_leader => {
                self.members[index].last_seen = now;
                let joined = self.joined(&id);
                out.answer(done, Ok(joined));
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                let member = &mut self.members[index];
                member.update(&join, now);
                member.awaiting_join = Some(done);
                self.prepare_rebalance(now, config, out);
            }
            GroupState::Empty | GroupState::Dead => {
                out.answer(done, Err(GroupError::UnknownMemberId));
            }
        }
    }

    fn add_and_rebalance(
        &mut self,
        join: JoinGroup,
        member_id: String,
        now: Instant,
        config: &GroupConfig,
        done: Done<Joined>,
        out: &mut Out,
    ) {
        if self.members.len() >= config.max_members {
            return out.answer(done, Err(GroupError::GroupMaxSizeReached));
        }
        if self.members.is_empty() {
            self.protocol_type = Some(join.protocol_type.clone());
        }
        if let Some(instance) = &join.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.push(Member {
            id: member_id,
            instance_id: join.group_instance_id.clone(),
            client_id: join.client_id.clone(),
            client_host: join.client_host.clone(),
            session_timeout: join.session_timeout,
            rebalance_timeout: join.rebalance_timeout,
            protocols: join.protocols,
            assignment: Bytes::new(),
            last_seen: now,
            awaiting_join: Some(done),
            awaiting_sync: None,
        });
        self.prepare_rebalance(now, config, out);
    }

    /// What a member is told about the current generation.
    fn joined(&self, member_id: &str) -> Joined {
        let protocol = self.protocol.clone().unwrap_or_default();
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .iter()
                .map(|m| JoinedMember {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    metadata: m.metadata(&protocol),
                })
                .collect()
        } else {
            Vec::new()
        };
        Joined {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader,
            member_id: member_id.to_owned(),
            members,
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now: Instant, config: &GroupConfig, out: &mut Out) {
        match self.state {
            GroupState::PreparingRebalance => {
                // A member joined an initial rebalance: wait a little more
                // for the next, within the rebalance deadline.
                if let (Some(until), Some(deadline)) =
                    (self.initial_delay_until, self.rebalance_deadline)
                {
                    self.initial_delay_until =
                        Some(until.max((now + config.initial_rebalance_delay).min(deadline)));
                }
                return self.try_complete_join(now, out);
            }
            GroupState::CompletingRebalance => {
                for member in &mut self.members {
                    if let Some(done) = member.awaiting_sync.take() {
                        out.answer(done, Err(GroupError::RebalanceInProgress));
                    }
                }
            }
            _ => {}
        }
        let was_empty = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let deadline = now + timeout;
        self.rebalance_deadline = Some(deadline);
        self.initial_delay_until =
            was_empty.then(|| (now + config.initial_rebalance_delay).min(deadline));
        self.sync_deadline = None;
        tracing::debug!(group = %self.id, generation = self.generation, members = self.members.len(), "rebalance");
        self.try_complete_join(now, out);
    }

    pub(super) fn try_complete_join(&mut self, now: Instant, out: &mut Out) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if self.initial_delay_until.is_some_and(|until| now < until) {
            return;
        }
        let all_joined =
            self.pending.is_empty() && self.members.iter().all(|m| m.awaiting_join.is_some());
        let expired = self.rebalance_deadline.is_some_and(|d| now >= d);
        if all_joined || expired {
            self.complete_join(now, out);
        }
    }

    fn complete_join(&mut self, now: Instant, out: &mut Out) {
        // Members that did not rejoin in time are out.
        let (stay, gone): (Vec<Member>, Vec<Member>) = std::mem::take(&mut self.members)
            .into_iter()
            .partition(|m| m.awaiting_join.is_some());
        for mut member in gone {
            if let Some(instance) = &member.instance_id {
                self.static_members.remove(instance);
            }
            member.fail_waiting(&GroupError::UnknownMemberId, out);
        }
        self.members = stay;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.protocol_type = None;
            self.leader = None;
            return;
        }
        self.protocol = self.select_protocol();
        let leader_stays = self
            .leader
            .as_ref()
            .is_some_and(|leader| self.index(leader).is_some());
        if !leader_stays {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.sync_deadline = Some(now + timeout);
        tracing::debug!(group = %self.id, generation = self.generation, members = self.members.len(), protocol = ?self.protocol, "joined");
        let ids: Vec<String> = self.members.iter().map(|m| m.id.clone()).collect();
        for id in ids {
            let joined = self.joined(&id);
            if let Some(index) = self.index(&id) {
                let member = &mut self.members[index];
                member.last_seen = now;
                if let Some(done) = member.awaiting_join.take() {
                    out.answer(done, Ok(joined));
                }
            }
        }
    }

    /// The protocol every member supports that most members prefer (each
    /// votes for the first of its own list that all support).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.iter().all(|m| m.supports(name)))
            .collect();
        let mut votes = vec![0usize; candidates.len()];
        for member in &self.members {
            if let Some(i) = member
                .protocols
                .iter()
                .find_map(|p| candidates.iter().position(|c| *c == p.name))
            {
                votes[i] += 1;
            }
        }
        let best = votes
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?
            .0;
        candidates.get(best).map(|s| (*s).to_owned())
    }
}
