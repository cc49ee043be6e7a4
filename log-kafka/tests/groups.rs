//! Consumer groups over the Kafka protocol, spoken with the client half of
//! `kafka-protocol`: a member id handed out first (JoinGroup v4+), the
//! leader's assignment handed to every member, a rebalance when a member
//! joins, commits fenced by generation, DescribeGroups, ListGroups,
//! LeaveGroup and DeleteGroups, and every advertised version of each.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;

fn group() -> GroupId {
    GroupId(StrBytes::from_static_str("g"))
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

fn join_request(member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(group())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(b"meta")),
        ])
}

/// Joins with JoinGroup `version`, taking the member id handed out first
/// when the version asks for it.
async fn join(c: &mut Client, version: i16, member_id: &str) -> JoinGroupResponse {
    let r: JoinGroupResponse = c
        .call(ApiKey::JoinGroup, version, &join_request(member_id))
        .await;
    if r.error_code != MEMBER_ID_REQUIRED {
        return r;
    }
    assert!(version >= 4, "v{version} asked for a member id");
    let id = r.member_id.to_string();
    c.call(ApiKey::JoinGroup, version, &join_request(&id)).await
}

fn sync_request(r: &JoinGroupResponse, plan: &[(&str, &str)]) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(group())
        .with_generation_id(r.generation_id)
        .with_member_id(r.member_id.clone())
        .with_assignments(
            plan.iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from((*a).to_owned()))
                })
                .collect(),
        )
}

fn heartbeat(r: &JoinGroupResponse) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(group())
        .with_generation_id(r.generation_id)
        .with_member_id(r.member_id.clone())
}

fn commit(generation: i32, member_id: &str) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(group())
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member_id))
        .with_topics(vec![
            OffsetCommitRequestTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ])
}

async fn commit_error(c: &mut Client, generation: i32, member_id: &str) -> i16 {
    let r: OffsetCommitResponse = c
        .call(ApiKey::OffsetCommit, 8, &commit(generation, member_id))
        .await;
    r.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_sync_rebalance_commit_describe_leave_and_delete() {
    let broker = Broker::start().await;
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    let _: CreateTopicsResponse = a.call(ApiKey::CreateTopics, 5, &create("t", 1)).await;
    let _: ProduceResponse = a
        .call(ApiKey::Produce, 9, &produce("t", 0, -1, kafka_batch(2, 0)))
        .await;

    // One member: a member id first, then generation 1 with it as leader.
    let first: JoinGroupResponse = a.call(ApiKey::JoinGroup, 9, &join_request("")).await;
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED);
    let a1 = join(&mut a, 9, &first.member_id.to_string()).await;
    assert_eq!((a1.error_code, a1.generation_id), (0, 1));
    assert_eq!(a1.leader, a1.member_id);
    assert_eq!(a1.members.len(), 1);
    assert_eq!(a1.members[0].metadata, Bytes::from_static(b"meta"));
    assert_eq!(a1.protocol_name.as_deref(), Some("range"));
    let me = a1.member_id.to_string();
    let r: SyncGroupResponse = a
        .call(ApiKey::SyncGroup, 5, &sync_request(&a1, &[(&me, "p0")]))
        .await;
    assert_eq!((r.error_code, r.assignment.as_ref()), (0, &b"p0"[..]));
    let r: HeartbeatResponse = a.call(ApiKey::Heartbeat, 4, &heartbeat(&a1)).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(commit_error(&mut a, 1, &me).await, 0);

    // A second member: its join waits for the first to rejoin.
    let b_join = tokio::spawn(async move {
        let r = join(&mut b, 9, "").await;
        (b, r)
    });
    let mut rebalancing = false;
    for _ in 0..100 {
        let r: HeartbeatResponse = a.call(ApiKey::Heartbeat, 4, &heartbeat(&a1)).await;
        if r.error_code == REBALANCE_IN_PROGRESS {
            rebalancing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(rebalancing, "the first member was never told to rejoin");
    let a2 = join(&mut a, 9, &me).await;
    let (mut b, b2) = b_join.await.unwrap();
    assert_eq!((a2.generation_id, b2.generation_id), (2, 2));
    assert_eq!(a2.leader, a2.member_id, "the leader stays");
    assert_eq!(a2.members.len(), 2);
    assert!(b2.members.is_empty());
    let other = b2.member_id.to_string();
    // Fencing: the old generation, no generation, an unknown member.
    assert_eq!(commit_error(&mut a, 1, &me).await, ILLEGAL_GENERATION);
    assert_eq!(commit_error(&mut a, -1, "").await, UNKNOWN_MEMBER_ID);
    assert_eq!(commit_error(&mut a, 2, "zombie").await, UNKNOWN_MEMBER_ID);
    assert_eq!(commit_error(&mut a, 2, &me).await, REBALANCE_IN_PROGRESS);
    let follower = tokio::spawn(async move {
        let r: SyncGroupResponse = b.call(ApiKey::SyncGroup, 5, &sync_request(&b2, &[])).await;
        (b, b2, r)
    });
    let r: SyncGroupResponse = a
        .call(
            ApiKey::SyncGroup,
            5,
            &sync_request(&a2, &[(&me, "A"), (&other, "B")]),
        )
        .await;
    assert_eq!(r.assignment.as_ref(), b"A");
    let (mut b, b2, r) = follower.await.unwrap();
    assert_eq!(r.assignment.as_ref(), b"B");
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    assert_eq!(commit_error(&mut b, 2, &other).await, 0);

    let r: DescribeGroupsResponse = a
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default().with_groups(vec![group(), GroupId(s("none"))]),
        )
        .await;
    let g = &r.groups[0];
    assert_eq!(
        (g.group_state.as_str(), g.protocol_data.as_str()),
        ("Stable", "range")
    );
    assert_eq!(g.protocol_type.as_str(), "consumer");
    assert_eq!(g.members.len(), 2);
    assert!(
        g.members
            .iter()
            .any(|m| m.member_assignment.as_ref() == b"B")
    );
    assert!(
        g.members
            .iter()
            .all(|m| m.client_host.as_str() == "/127.0.0.1")
    );
    assert_eq!(r.groups[1].group_state.as_str(), "Empty");
    let r: ListGroupsResponse = a
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    let listed = r.groups.iter().find(|l| l.group_id == group()).unwrap();
    assert_eq!(
        (listed.protocol_type.as_str(), listed.group_state.as_str()),
        ("consumer", "Stable")
    );

    // Not while it has members; then both leave and it goes.
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![group()]);
    let r: DeleteGroupsResponse = a.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(r.results[0].error_code, NON_EMPTY_GROUP);
    let r: LeaveGroupResponse = a
        .call(
            ApiKey::LeaveGroup,
            5,
            &LeaveGroupRequest::default()
                .with_group_id(group())
                .with_members(vec![
                    MemberIdentity::default().with_member_id(a2.member_id.clone()),
                    MemberIdentity::default().with_member_id(b2.member_id.clone()),
                ]),
        )
        .await;
    assert!(r.members.iter().all(|m| m.error_code == 0), "{r:?}");
    let r: HeartbeatResponse = b.call(ApiKey::Heartbeat, 4, &heartbeat(&b2)).await;
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID);
    let r: DeleteGroupsResponse = a.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(r.results[0].error_code, 0);
    let r: DeleteGroupsResponse = a.call(ApiKey::DeleteGroups, 2, &delete).await;
    assert_eq!(r.results[0].error_code, GROUP_ID_NOT_FOUND);
    // Its committed offsets went with it.
    let r: OffsetFetchResponse = a
        .call(
            ApiKey::OffsetFetch,
            7,
            &OffsetFetchRequest::default()
                .with_group_id(group())
                .with_topics(None),
        )
        .await;
    assert!(r.topics.is_empty(), "{r:?}");
    broker.stop().await;
}

/// Every advertised version of each group API answers, and decodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_of_the_group_apis_answers() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    for v in 0..=9 {
        let r = join(&mut c, v, "").await;
        assert_eq!((r.error_code, r.members.len()), (0, 1), "join v{v}");
        for sv in 0..=5 {
            let me = r.member_id.to_string();
            let sync: SyncGroupResponse = c
                .call(ApiKey::SyncGroup, sv, &sync_request(&r, &[(&me, "x")]))
                .await;
            assert_eq!(sync.error_code, 0, "join v{v} sync v{sv}");
        }
        for hv in 0..=4 {
            let h: HeartbeatResponse = c.call(ApiKey::Heartbeat, hv, &heartbeat(&r)).await;
            assert_eq!(h.error_code, 0, "heartbeat v{hv}");
        }
        for dv in 0..=5 {
            let d: DescribeGroupsResponse = c
                .call(
                    ApiKey::DescribeGroups,
                    dv,
                    &DescribeGroupsRequest::default().with_groups(vec![group()]),
                )
                .await;
            assert_eq!(d.groups[0].members.len(), 1, "describe v{dv}");
        }
        for lv in 0..=4 {
            let l: ListGroupsResponse = c
                .call(ApiKey::ListGroups, lv, &ListGroupsRequest::default())
                .await;
            assert_eq!(l.groups.len(), 1, "list v{lv}");
        }
        let leave = if v % 6 < 3 {
            LeaveGroupRequest::default()
                .with_group_id(group())
                .with_member_id(r.member_id.clone())
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group())
                .with_members(vec![
                    MemberIdentity::default().with_member_id(r.member_id.clone()),
                ])
        };
        let lv = v % 6;
        let l: LeaveGroupResponse = c.call(ApiKey::LeaveGroup, lv, &leave).await;
        assert_eq!(l.error_code, 0, "leave v{lv}");
    }
    for v in 0..=2 {
        let r: DeleteGroupsResponse = c
            .call(
                ApiKey::DeleteGroups,
                v,
                &DeleteGroupsRequest::default().with_groups_names(vec![group()]),
            )
            .await;
        assert!(
            [0, GROUP_ID_NOT_FOUND].contains(&r.results[0].error_code),
            "delete v{v}"
        );
    }
    broker.stop().await;
}
