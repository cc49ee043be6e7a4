//! The classic consumer-group protocol over the shared coordinator
//! (`log-groups`): JoinGroup and SyncGroup (answered when the rebalance or
//! the leader's assignment completes: each waits as its own task),
//! Heartbeat, LeaveGroup, DescribeGroups, ListGroups and DeleteGroups.
//!
//! This module only translates: Kafka's fields in, the coordinator's
//! answers out, its refusals as Kafka's codes (`errors::group`). Offsets
//! are `offsets.rs`'s; which partitions a member gets is decided by the
//! leader's client-side assignor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, SyncGroupRequest,
    SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use log_groups::{GroupError, GroupState, JoinGroup, MemberRef, Protocol, SyncGroup};

use crate::Ctx;
use crate::errors::{self, code};
use crate::wire::{Call, Reply};

/// Who sent a request: its header's client id and its address.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    pub(crate) id: String,
    pub(crate) peer: SocketAddr,
}

fn text(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

fn opt(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(text)
}

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A JoinGroup: waits for the rebalance as its own task.
pub(crate) fn join(
    ctx: &Arc<Ctx>,
    call: Call,
    client: &Client,
    request: JoinGroupRequest,
) -> Reply {
    let version = call.version;
    let session_timeout = millis(request.session_timeout_ms);
    let join = JoinGroup {
        group_id: text(&request.group_id.0),
        member_id: text(&request.member_id),
        group_instance_id: opt(&request.group_instance_id),
        client_id: client.id.clone(),
        client_host: format!("/{}", client.peer.ip()),
        session_timeout,
        // Version 0 has no rebalance timeout: the session timeout serves.
        rebalance_timeout: if version >= 1 {
            millis(request.rebalance_timeout_ms)
        } else {
            session_timeout
        },
        protocol_type: text(&request.protocol_type),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol {
                name: text(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        require_known_member_id: version >= 4,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    ctx.groups.join(join, move |result| {
        let _ = tx.send(result);
    });
    Reply::Later(Box::pin(async move {
        let result = rx.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable));
        let no_protocol = || (version < 7).then(|| StrBytes::from_static_str(""));
        let response = match result {
            Ok(joined) => JoinGroupResponse::default()
                .with_generation_id(joined.generation)
                .with_protocol_type(joined.protocol_type.map(str_bytes))
                .with_protocol_name(joined.protocol.map(str_bytes).or_else(no_protocol))
                .with_leader(str_bytes(joined.leader))
                .with_member_id(str_bytes(joined.member_id))
                .with_members(
                    joined
                        .members
                        .into_iter()
                        .map(|m| {
                            JoinGroupResponseMember::default()
                                .with_member_id(str_bytes(m.member_id))
                                .with_group_instance_id(if version >= 5 {
                                    m.group_instance_id.map(str_bytes)
                                } else {
                                    None
                                })
                                .with_metadata(m.metadata)
                        })
                        .collect(),
                ),
            Err(err) => {
                let member_id = match &err {
                    GroupError::MemberIdRequired { member_id } => member_id.clone(),
                    _ => String::new(),
                };
                JoinGroupResponse::default()
                    .with_error_code(errors::group(&err))
                    .with_generation_id(-1)
                    .with_protocol_name(no_protocol())
                    .with_member_id(str_bytes(member_id))
            }
        };
        call.answer(&response).map(Some)
    }))
}

fn member(
    group: &GroupId,
    generation: i32,
    member_id: &StrBytes,
    instance: &Option<StrBytes>,
) -> MemberRef {
    MemberRef {
        group_id: text(&group.0),
        generation,
        member_id: text(member_id),
        group_instance_id: opt(instance),
    }
}

/// A SyncGroup: waits for the leader's assignment as its own task.
pub(crate) fn sync(ctx: &Arc<Ctx>, call: Call, request: SyncGroupRequest) -> Reply {
    let sync = SyncGroup {
        member: member(
            &request.group_id,
            request.generation_id,
            &request.member_id,
            &request.group_instance_id,
        ),
        protocol_type: opt(&request.protocol_type),
        protocol: opt(&request.protocol_name),
        assignments: request
            .assignments
            .into_iter()
            .map(|a| (text(&a.member_id), a.assignment))
            .collect(),
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    ctx.groups.sync(sync, move |result| {
        let _ = tx.send(result);
    });
    let version = call.version;
    Reply::Later(Box::pin(async move {
        let result = rx.await.unwrap_or(Err(GroupError::CoordinatorNotAvailable));
        let response = match result {
            Ok(synced) => {
                let response = SyncGroupResponse::default().with_assignment(synced.assignment);
                if version >= 5 {
                    response
                        .with_protocol_type(synced.protocol_type.map(str_bytes))
                        .with_protocol_name(synced.protocol.map(str_bytes))
                } else {
                    response
                }
            }
            Err(err) => SyncGroupResponse::default()
                .with_error_code(errors::group(&err))
                .with_assignment(Bytes::new()),
        };
        call.answer(&response).map(Some)
    }))
}

/// The Heartbeat answer.
pub(crate) fn heartbeat(ctx: &Ctx, request: HeartbeatRequest) -> HeartbeatResponse {
    let member = member(
        &request.group_id,
        request.generation_id,
        &request.member_id,
        &request.group_instance_id,
    );
    let error = match ctx.groups.heartbeat(&member) {
        Ok(()) => code::NONE,
        Err(err) => errors::group(&err),
    };
    HeartbeatResponse::default().with_error_code(error)
}

/// The LeaveGroup answer: one member (versions 0–2) or several (3+).
pub(crate) fn leave(ctx: &Ctx, request: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group = text(&request.group_id.0);
    if version < 3 {
        let results = ctx
            .groups
            .leave(&group, &[(text(&request.member_id), None)]);
        let error = match results.first() {
            Some(Err(err)) => errors::group(err),
            _ => code::NONE,
        };
        return LeaveGroupResponse::default().with_error_code(error);
    }
    let leaving: Vec<(String, Option<String>)> = request
        .members
        .iter()
        .map(|m| (text(&m.member_id), opt(&m.group_instance_id)))
        .collect();
    let results = ctx.groups.leave(&group, &leaving);
    let members = request
        .members
        .into_iter()
        .zip(results)
        .map(|(m, result)| {
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(match result {
                    Ok(()) => code::NONE,
                    Err(err) => errors::group(&err),
                })
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// The DescribeGroups answer. A group the coordinator does not hold (one
/// known only by its committed offsets, or none) is described as Kafka
/// describes it: Empty, without members.
pub(crate) fn describe(
    ctx: &Ctx,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|id| {
            let described = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_group_state(StrBytes::from_static_str(GroupState::Empty.name()))
                .with_authorized_operations(i32::MIN);
            let Some(d) = ctx.groups.describe(&id.0) else {
                return described;
            };
            let members = d
                .members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(m.member_id))
                        .with_group_instance_id(if version >= 4 {
                            m.group_instance_id.map(str_bytes)
                        } else {
                            None
                        })
                        .with_client_id(str_bytes(m.client_id))
                        .with_client_host(str_bytes(m.client_host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect();
            described
                .with_group_state(StrBytes::from_static_str(d.state.name()))
                .with_protocol_type(str_bytes(d.protocol_type))
                .with_protocol_data(str_bytes(d.protocol))
                .with_members(members)
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

/// The ListGroups answer: the coordinator's groups, and those known only
/// by their committed offsets (as Empty, like Kafka's groups loaded from
/// its offsets topic), filtered by state (version 4+) and type (5+).
pub(crate) fn list(ctx: &Ctx, request: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let mut groups: Vec<(String, String, GroupState)> = ctx
        .groups
        .list()
        .into_iter()
        .map(|g| (g.group_id, g.protocol_type, g.state))
        .collect();
    for consumer in ctx.store.consumers().unwrap_or_default() {
        if !groups.iter().any(|(id, _, _)| *id == consumer) {
            groups.push((consumer, String::new(), GroupState::Empty));
        }
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.as_str().to_lowercase())
        .collect();
    let listed = groups
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.name().to_lowercase()))
        .filter(|_| {
            // Every group here is a classic one.
            request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.as_str().eq_ignore_ascii_case("classic"))
        })
        .map(|(id, protocol_type, state)| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(id)))
                .with_protocol_type(str_bytes(protocol_type));
            let listed = if version >= 4 {
                listed.with_group_state(StrBytes::from_static_str(state.name()))
            } else {
                listed
            };
            if version >= 5 {
                listed.with_group_type(StrBytes::from_static_str("classic"))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}

/// The DeleteGroups answer: a group without members goes, with its
/// committed offsets; one with members is NON_EMPTY_GROUP; one known
/// nowhere GROUP_ID_NOT_FOUND.
pub(crate) fn delete(ctx: &Ctx, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = request
        .groups_names
        .into_iter()
        .map(|id| {
            let name = text(&id.0);
            let error = match ctx.groups.delete(&name) {
                Err(err) => errors::group(&err),
                Ok(held) => match ctx.store.delete_consumer(&name) {
                    Ok(had_offsets) if held || had_offsets => code::NONE,
                    Ok(_) => code::GROUP_ID_NOT_FOUND,
                    Err(err) => errors::storage(&err).0,
                },
            };
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
