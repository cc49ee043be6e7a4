//! The group membership APIs (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup), advertised so that clients infer the broker version right,
//! and refused until the log has consumer groups: each answers
//! UNSUPPORTED_VERSION, which clients report as the broker not supporting
//! the feature. Assigning partitions by hand and committing offsets for a
//! group id works (`offsets.rs`).

use kafka_protocol::messages::{
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, SyncGroupRequest, SyncGroupResponse,
};

use crate::errors::code;

fn refused(api: &str, group: &str) {
    tracing::info!(
        group,
        api,
        "kafka: consumer groups are not supported yet; refused"
    );
}

pub(crate) fn join(request: JoinGroupRequest) -> JoinGroupResponse {
    refused("JoinGroup", &request.group_id.0);
    JoinGroupResponse::default()
        .with_error_code(code::UNSUPPORTED_VERSION)
        .with_generation_id(-1)
}

pub(crate) fn sync(request: SyncGroupRequest) -> SyncGroupResponse {
    refused("SyncGroup", &request.group_id.0);
    SyncGroupResponse::default().with_error_code(code::UNSUPPORTED_VERSION)
}

pub(crate) fn heartbeat(request: HeartbeatRequest) -> HeartbeatResponse {
    refused("Heartbeat", &request.group_id.0);
    HeartbeatResponse::default().with_error_code(code::UNSUPPORTED_VERSION)
}

pub(crate) fn leave(request: LeaveGroupRequest) -> LeaveGroupResponse {
    refused("LeaveGroup", &request.group_id.0);
    LeaveGroupResponse::default().with_error_code(code::UNSUPPORTED_VERSION)
}
