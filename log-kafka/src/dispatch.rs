//! One request: its header, the API and version check, and the route to
//! its handler.
//!
//! A request that cannot be served (malformed, an unknown API, a version
//! outside the advertised range) is a [`Closing`]: the connection is
//! closed, as Kafka does. ApiVersions is answered at any version: with
//! UNSUPPORTED_VERSION and the ranges at version 0 when its own version is
//! not served (KIP-511). This module does not touch the store.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};

use crate::wire::{Call, Closing, Reply, decode};
use crate::{
    Ctx, admin, alter, configs, epochs, fetch, groups, list_offsets, metadata, offsets, partitions,
    produce, versions,
};

/// Starts the request in `frame` (a whole frame, length prefix removed)
/// from the client at `peer`.
pub(crate) fn start(ctx: &Arc<Ctx>, mut frame: Bytes, peer: SocketAddr) -> Result<Reply, Closing> {
    let Some(head) = frame.get(..4) else {
        return Err(Closing(format!(
            "request of {} bytes is shorter than a header",
            frame.len()
        )));
    };
    let key = i16::from_be_bytes([head[0], head[1]]);
    let version = i16::from_be_bytes([head[2], head[3]]);
    let Ok(api) = ApiKey::try_from(key) else {
        return Err(Closing(format!("unknown api key {key}")));
    };
    let header: RequestHeader = decode(&mut frame, api.request_header_version(version))?;
    let call = Call {
        api,
        version,
        correlation_id: header.correlation_id,
    };
    if api == ApiKey::ApiVersions {
        let served = versions::serves(api, version);
        if served {
            let _request: kafka_protocol::messages::ApiVersionsRequest =
                decode(&mut frame, version)?;
        }
        let call = Call {
            version: if served { version } else { 0 },
            ..call
        };
        return call.now(&versions::api_versions(served));
    }
    if !versions::serves(api, version) {
        return Err(Closing(format!(
            "{api:?} v{version} is not served (advertised: {:?})",
            versions::range(api)
        )));
    }
    let body = &mut frame;
    match api {
        ApiKey::Metadata => call.now(&metadata::metadata(ctx, decode(body, version)?, version)),
        ApiKey::FindCoordinator => call.now(&metadata::find_coordinator(
            ctx,
            decode(body, version)?,
            version,
        )),
        ApiKey::Produce => produce::start(ctx, call, decode(body, version)?),
        ApiKey::InitProducerId => call.now(&produce::init_producer_id(ctx, decode(body, version)?)),
        ApiKey::Fetch => Ok(fetch::start(ctx, call, decode(body, version)?)),
        ApiKey::ListOffsets => call.now(&list_offsets::list_offsets(
            ctx,
            decode(body, version)?,
            version,
        )),
        ApiKey::OffsetForLeaderEpoch => call.now(&epochs::offset_for_leader_epoch(
            ctx,
            decode(body, version)?,
        )),
        ApiKey::OffsetCommit => call.now(&offsets::commit(ctx, decode(body, version)?)),
        ApiKey::OffsetFetch => call.now(&offsets::fetch(ctx, decode(body, version)?)),
        ApiKey::CreateTopics => call.now(&admin::create_topics(ctx, decode(body, version)?)),
        ApiKey::DeleteTopics => {
            call.now(&admin::delete_topics(ctx, decode(body, version)?, version))
        }
        ApiKey::DescribeConfigs => call.now(&configs::describe(ctx, decode(body, version)?)),
        ApiKey::IncrementalAlterConfigs => {
            call.now(&alter::incremental(ctx, decode(body, version)?))
        }
        ApiKey::AlterConfigs => call.now(&alter::whole(ctx, decode(body, version)?)),
        ApiKey::CreatePartitions => call.now(&partitions::create(ctx, decode(body, version)?)),
        ApiKey::DeleteRecords => call.now(&partitions::delete_records(ctx, decode(body, version)?)),
        ApiKey::DescribeCluster => {
            call.now(&partitions::describe_cluster(ctx, decode(body, version)?))
        }
        ApiKey::JoinGroup => {
            let client = groups::Client {
                id: header
                    .client_id
                    .as_ref()
                    .map_or_else(String::new, |id| id.as_str().to_owned()),
                peer,
            };
            Ok(groups::join(ctx, call, &client, decode(body, version)?))
        }
        ApiKey::SyncGroup => Ok(groups::sync(ctx, call, decode(body, version)?)),
        ApiKey::Heartbeat => call.now(&groups::heartbeat(ctx, decode(body, version)?)),
        ApiKey::LeaveGroup => call.now(&groups::leave(ctx, decode(body, version)?, version)),
        ApiKey::DescribeGroups => call.now(&groups::describe(ctx, decode(body, version)?, version)),
        ApiKey::ListGroups => call.now(&groups::list(ctx, decode(body, version)?, version)),
        ApiKey::DeleteGroups => call.now(&groups::delete(ctx, decode(body, version)?)),
        other => Err(Closing(format!("{other:?} is not served"))),
    }
}
