//! The consumer-group coordinator: members join a group, one generation
//! after another; the leader's assignment is handed to every member;
//! members that stop heartbeating are removed after their session timeout
//! and the rest rebalance; offset commits are fenced by generation and
//! member id, so a zombie's commit is refused. It is Kafka's classic group
//! protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), static
//! membership included, with every wire format left to the front ends: the
//! Kafka listener and the gRPC group API both call this crate.
//!
//! What it does not do: store anything. Membership is soft state (after a
//! restart members rejoin, as Kafka clients do when their coordinator
//! moves); committed offsets are the store's, written by the front end
//! once [`Coordinator::check_commit`] allows them. It computes no
//! assignment: the leader's client does (range, roundrobin,
//! cooperative-sticky are client-side assignors in the classic protocol).
//!
//! Concurrency: each group has its own lock, held only for a state
//! transition; answers (completions passed to [`Coordinator::join`] and
//! [`Coordinator::sync`]) run after it is released, so a flood of joins on
//! one group never stalls another. A ticker thread, started by
//! [`Coordinator::start`], expires sessions and rebalance deadlines.
//!
//! The modules: `group/` (one group's state machine: `mod.rs`, with
//! `join.rs` for joins and the rebalance and `session.rs` for syncs,
//! heartbeats, leaving and expiry), `types.rs` (the values in and out),
//! `config.rs` (bounds and timings), `error.rs` (what is refused).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Instant;

mod config;
mod error;
mod group;
mod types;

pub use config::GroupConfig;
pub use error::GroupError;
pub use types::{
    GroupDescription, GroupListing, GroupState, JoinGroup, Joined, JoinedMember, MemberDescription,
    MemberRef, Protocol, SyncGroup, Synced,
};

use group::{Group, Out};

/// Where the coordinator reads the time.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The group coordinator (see the crate docs).
pub struct Coordinator {
    config: GroupConfig,
    groups: RwLock<HashMap<String, Arc<Mutex<Group>>>>,
    ids: AtomicU64,
    seed: u64,
    clock: Clock,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

fn lock(group: &Mutex<Group>) -> std::sync::MutexGuard<'_, Group> {
    group.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Coordinator {
    /// A coordinator with its ticker thread, which stops when the last
    /// `Arc` is dropped.
    pub fn start(config: GroupConfig) -> Arc<Coordinator> {
        let coordinator = Arc::new(Coordinator::new(config));
        let weak: Weak<Coordinator> = Arc::downgrade(&coordinator);
        let tick = coordinator.config.tick;
        let spawned = std::thread::Builder::new()
            .name("group-ticker".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(c) => c.tick(),
                        None => return,
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "group ticker not started: sessions expire only on calls");
        }
        coordinator
    }

    /// A coordinator without a ticker: the caller calls
    /// [`Coordinator::tick`] (tests, embedders with their own timer).
    pub fn new(config: GroupConfig) -> Coordinator {
        Coordinator::with_clock(config, Arc::new(Instant::now))
    }

    /// A coordinator without a ticker that reads the time from `clock`
    /// (tests move time by hand).
    pub fn with_clock(config: GroupConfig, clock: Clock) -> Coordinator {
        Coordinator {
            clock,
            config,
            groups: RwLock::new(HashMap::new()),
            ids: AtomicU64::new(0),
            seed: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    fn group(&self, id: &str) -> Option<Arc<Mutex<Group>>> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn group_or_create(&self, id: &str) -> Result<Arc<Mutex<Group>>, GroupError> {
        if let Some(group) = self.group(id) {
            return Ok(group);
        }
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = groups.get(id) {
            return Ok(Arc::clone(group));
        }
        if groups.len() >= self.config.max_groups {
            tracing::warn!(
                groups = groups.len(),
                "group refused: the coordinator is full"
            );
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let group = Arc::new(Mutex::new(Group::new(id.to_owned())));
        groups.insert(id.to_owned(), Arc::clone(&group));
        Ok(group)
    }

    fn check_group_id(&self, id: &str) -> Result<(), GroupError> {
        if id.is_empty() || id.len() > self.config.max_group_id_bytes {
            return Err(GroupError::InvalidGroupId);
        }
        Ok(())
    }

    /// A fresh member id, `{client_id}-{32 hex digits}` as Kafka's.
    fn new_member_id(&self, client_id: &str) -> String {
        let n = self.ids.fetch_add(1, Ordering::Relaxed);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(self.seed ^ n);
        let client: String = client_id.chars().take(64).collect();
        format!("{client}-{:016x}{n:016x}", h.finish())
    }

    /// Joins (or rejoins) a group; `done` gets the answer once the
    /// rebalance completes (at once when no rebalance is needed, or on an
    /// error).
    pub fn join(
        &self,
        join: JoinGroup,
        done: impl FnOnce(Result<Joined, GroupError>) + Send + 'static,
    ) {
        let done: group::Done<Joined> = Box::new(done);
        let checked = self.check_group_id(&join.group_id).and_then(|()| {
            let timeout = join.session_timeout;
            if timeout < self.config.min_session_timeout
                || timeout > self.config.max_session_timeout
            {
                return Err(GroupError::InvalidSessionTimeout);
            }
            if join.member_id.is_empty() {
                self.group_or_create(&join.group_id)
            } else {
                self.group(&join.group_id)
                    .ok_or(GroupError::UnknownMemberId)
            }
        });
        let group = match checked {
            Ok(group) => group,
            Err(err) => return done(Err(err)),
        };
        let mut out = Out::default();
        let new_id = self.new_member_id(&join.client_id);
        lock(&group).join(join, new_id, (self.clock)(), &self.config, done, &mut out);
        out.deliver();
    }

    /// A sync; `done` gets this member's assignment once the leader's
    /// arrives (at once in a stable group, or on an error).
    pub fn sync(
        &self,
        sync: SyncGroup,
        done: impl FnOnce(Result<Synced, GroupError>) + Send + 'static,
    ) {
        let Some(group) = self.group(&sync.member.group_id) else {
            return done(Err(GroupError::UnknownMemberId));
        };
        let mut out = Out::default();
        lock(&group).sync(sync, (self.clock)(), &self.config, Box::new(done), &mut out);
        out.deliver();
    }

    /// A heartbeat: `Ok` keeps the member's session;
    /// [`GroupError::RebalanceInProgress`] asks it to rejoin.
    pub fn heartbeat(&self, member: &MemberRef) -> Result<(), GroupError> {
        let group = self
            .group(&member.group_id)
            .ok_or(GroupError::UnknownMemberId)?;
        lock(&group).heartbeat(member, (self.clock)())
    }

    /// Members leave `group_id`: each by member id, or by instance id (and
    /// member id, when given) for a static member. One result each.
    pub fn leave(
        &self,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Vec<Result<(), GroupError>> {
        let Some(group) = self.group(group_id) else {
            return members
                .iter()
                .map(|_| Err(GroupError::UnknownMemberId))
                .collect();
        };
        let mut out = Out::default();
        let results = lock(&group).leave(members, (self.clock)(), &self.config, &mut out);
        out.deliver();
        results
    }

    /// Whether `member` may commit offsets for its group now (see
    /// [`GroupError`] for the refusals): a group the coordinator does not
    /// manage takes commits of generation -1 only.
    pub fn check_commit(&self, member: &MemberRef) -> Result<(), GroupError> {
        self.check_group_id(&member.group_id)?;
        match self.group(&member.group_id) {
            Some(group) => lock(&group).check_commit(member, (self.clock)()),
            None if member.generation < 0 => Ok(()),
            None => Err(GroupError::IllegalGeneration),
        }
    }

    /// A group as it stands, if the coordinator knows it.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        self.group(group_id).map(|g| lock(&g).describe())
    }

    /// Every group the coordinator knows (groups known only by their
    /// committed offsets are the store's to list).
    pub fn list(&self) -> Vec<GroupListing> {
        let groups: Vec<Arc<Mutex<Group>>> = self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        groups
            .iter()
            .map(|g| {
                let d = lock(g).describe();
                GroupListing {
                    group_id: d.group_id,
                    protocol_type: d.protocol_type,
                    state: d.state,
                }
            })
            .collect()
    }

    /// Forgets a group without members ([`GroupError::NonEmptyGroup`]
    /// otherwise); `Ok(false)` when it knew none by that id. Its offsets
    /// are the caller's to delete.
    pub fn delete(&self, group_id: &str) -> Result<bool, GroupError> {
        let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
        let Some(group) = groups.get(group_id).cloned() else {
            return Ok(false);
        };
        let mut out = Out::default();
        {
            let mut g = lock(&group);
            if !g.is_idle() {
                return Err(GroupError::NonEmptyGroup);
            }
            g.kill(&mut out);
        }
        groups.remove(group_id);
        drop(groups);
        out.deliver();
        Ok(true)
    }

    /// Expires sessions and deadlines, and forgets groups left without
    /// members (the ticker thread calls it every [`GroupConfig::tick`]).
    pub fn tick(&self) {
        let now = (self.clock)();
        let groups: Vec<(String, Arc<Mutex<Group>>)> = self
            .groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), Arc::clone(v)))
            .collect();
        let mut idle = Vec::new();
        for (id, group) in groups {
            let mut out = Out::default();
            {
                let mut g = lock(&group);
                g.tick(now, &self.config, &mut out);
                if g.is_idle() && g.state() == GroupState::Empty {
                    idle.push(id);
                }
            }
            out.deliver();
        }
        if !idle.is_empty() {
            let mut groups = self.groups.write().unwrap_or_else(PoisonError::into_inner);
            for id in idle {
                // Still idle under the map's lock: nobody joined meanwhile.
                let still_idle = groups.get(&id).is_some_and(|g| {
                    let g = lock(g);
                    g.is_idle() && g.state() == GroupState::Empty
                });
                if still_idle {
                    groups.remove(&id);
                }
            }
        }
    }
}
