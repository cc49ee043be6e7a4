//! What goes into and comes out of the coordinator: plain values, no wire
//! format. A protocol's metadata and a member's assignment are opaque bytes
//! here (the consumer protocol's encoding is the clients' business, as in
//! Kafka's classic protocol).

use std::time::Duration;

use bytes::Bytes;

/// One protocol a member supports (for consumers, an assignor such as
/// `range` or `cooperative-sticky`) with its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Its name.
    pub name: String,
    /// The member's metadata for it (opaque).
    pub metadata: Bytes,
}

/// A join (Kafka's JoinGroup).
#[derive(Debug, Clone)]
pub struct JoinGroup {
    /// The group.
    pub group_id: String,
    /// The member's id; empty for a member joining for the first time.
    pub member_id: String,
    /// The static member's instance id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The client's id (member ids start with it).
    pub client_id: String,
    /// The client's address, as the front end saw it.
    pub client_host: String,
    /// A member not heard from for this long is removed.
    pub session_timeout: Duration,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout: Duration,
    /// The protocol type (`consumer` for consumers).
    pub protocol_type: String,
    /// The protocols the member supports, preferred first.
    pub protocols: Vec<Protocol>,
    /// A new dynamic member gets its id first and joins again with it
    /// (Kafka JoinGroup versions 4 and up).
    pub require_known_member_id: bool,
}

/// A member as the leader sees it in [`Joined::members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Its id.
    pub member_id: String,
    /// Its instance id, for a static member.
    pub group_instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    pub metadata: Bytes,
}

/// A completed join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The generation the member joined.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The protocol chosen for this generation.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// This member's id.
    pub member_id: String,
    /// Every member with its metadata, for the leader only (empty for the
    /// others).
    pub members: Vec<JoinedMember>,
}

/// Names a member of a generation (heartbeats, syncs, commits).
#[derive(Debug, Clone)]
pub struct MemberRef {
    /// The group.
    pub group_id: String,
    /// The generation the member believes in (-1: none, for commits of a
    /// group that is not managed by the coordinator).
    pub generation: i32,
    /// The member's id (empty: none).
    pub member_id: String,
    /// The static member's instance id, if any.
    pub group_instance_id: Option<String>,
}

/// A sync (Kafka's SyncGroup): the leader sends the assignment, every
/// member gets its part.
#[derive(Debug, Clone)]
pub struct SyncGroup {
    /// Who syncs.
    pub member: MemberRef,
    /// The protocol type the member expects, if it says.
    pub protocol_type: Option<String>,
    /// The protocol the member expects, if it says.
    pub protocol: Option<String>,
    /// The leader's assignment, member id to assignment (ignored from the
    /// others).
    pub assignments: Vec<(String, Bytes)>,
}

/// A completed sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The generation's protocol.
    pub protocol: Option<String>,
    /// This member's assignment.
    pub assignment: Bytes,
}

/// A group's state, named as Kafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// No members (maybe committed offsets).
    Empty,
    /// Waiting for the members to (re)join.
    PreparingRebalance,
    /// Joined; waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
    /// Being removed.
    Dead,
}

impl GroupState {
    /// Kafka's name for it (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Its id.
    pub member_id: String,
    /// Its instance id, for a static member.
    pub group_instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// Its metadata for the group's protocol.
    pub metadata: Bytes,
    /// Its assignment in the current generation.
    pub assignment: Bytes,
}

/// A group, described (Kafka's DescribeGroups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The group.
    pub group_id: String,
    /// Its state.
    pub state: GroupState,
    /// Its generation.
    pub generation: i32,
    /// Its protocol type (empty when none).
    pub protocol_type: String,
    /// The current generation's protocol (empty when none).
    pub protocol: String,
    /// The members.
    pub members: Vec<MemberDescription>,
}

/// A group, listed (Kafka's ListGroups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The group.
    pub group_id: String,
    /// Its protocol type (empty when none).
    pub protocol_type: String,
    /// Its state.
    pub state: GroupState,
}
