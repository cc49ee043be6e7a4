//! What the coordinator refuses, one variant per reason a Kafka group
//! coordinator has for it; the front ends map each to their own code.

use std::fmt;

/// Why a group call was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// The group id is empty or too long.
    InvalidGroupId,
    /// The member is not (or no longer) in the group: it rejoins with an
    /// empty member id.
    UnknownMemberId,
    /// The call names a generation other than the group's: the member
    /// rejoins.
    IllegalGeneration,
    /// A rebalance is running: the member rejoins.
    RebalanceInProgress,
    /// The member's protocol type or protocols match none of the group's.
    InconsistentGroupProtocol,
    /// The session timeout is outside the coordinator's bounds.
    InvalidSessionTimeout,
    /// The group has as many members as it may.
    GroupMaxSizeReached,
    /// A new dynamic member must join again with this member id (Kafka's
    /// MEMBER_ID_REQUIRED, join versions 4 and up).
    MemberIdRequired {
        /// The id to join with.
        member_id: String,
    },
    /// Another member took over this static member's instance id.
    FencedInstanceId,
    /// The group still has members (it cannot be deleted).
    NonEmptyGroup,
    /// No such group.
    GroupIdNotFound,
    /// The coordinator holds as many groups as it may, or is shutting
    /// down: the client retries later.
    CoordinatorNotAvailable,
    /// A request field is out of bounds (an assignment or metadata larger
    /// than the coordinator keeps).
    InvalidRequest(String),
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupError::InvalidGroupId => write!(f, "invalid group id"),
            GroupError::UnknownMemberId => write!(f, "unknown member id"),
            GroupError::IllegalGeneration => write!(f, "illegal generation"),
            GroupError::RebalanceInProgress => write!(f, "rebalance in progress"),
            GroupError::InconsistentGroupProtocol => {
                write!(f, "protocol type or protocols inconsistent with the group")
            }
            GroupError::InvalidSessionTimeout => write!(f, "session timeout out of bounds"),
            GroupError::GroupMaxSizeReached => write!(f, "group has its maximum of members"),
            GroupError::MemberIdRequired { member_id } => {
                write!(f, "member id required: join again as {member_id}")
            }
            GroupError::FencedInstanceId => write!(f, "static member fenced by a newer member"),
            GroupError::NonEmptyGroup => write!(f, "group has members"),
            GroupError::GroupIdNotFound => write!(f, "no such group"),
            GroupError::CoordinatorNotAvailable => write!(f, "coordinator not available"),
            GroupError::InvalidRequest(what) => write!(f, "invalid request: {what}"),
        }
    }
}

impl std::error::Error for GroupError {}
