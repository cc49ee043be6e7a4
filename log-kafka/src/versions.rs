//! The APIs and versions this front end serves, as ApiVersions advertises
//! them, and the ApiVersions answer itself.
//!
//! The ranges are those of a real Kafka release line (the 3.x brokers), so
//! clients that infer the broker version from them (kafka-python) turn on
//! what those brokers support. Produce is advertised from version 0 but
//! versions 0–2 are refused, as Kafka 4 does: librdkafka turns compression
//! off against a broker whose Produce range does not start at 0. Versions
//! that need topic ids in requests (Fetch 13+, Produce 10+) or the new
//! group protocol are left out. This module does not handle any other API.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};

use crate::errors::code;

/// `(api, min, max)` of every API answered.
pub(crate) const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DeleteGroups, 0, 2),
];

/// Produce versions below this are advertised but refused (see the module
/// docs).
pub(crate) const PRODUCE_MIN_SERVED: i16 = 3;

/// The range of `api`, if it is served.
pub(crate) fn range(api: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api)
        .map(|&(_, min, max)| (min, max))
}

/// Whether `version` of `api` is served (Produce 0–2 are not, though
/// advertised).
pub(crate) fn serves(api: ApiKey, version: i16) -> bool {
    match range(api) {
        Some((min, max)) => {
            let min = if api == ApiKey::Produce {
                PRODUCE_MIN_SERVED
            } else {
                min
            };
            (min..=max).contains(&version)
        }
        None => false,
    }
}

/// The ApiVersions answer: every range, or UNSUPPORTED_VERSION (with the
/// ranges, so the client can retry at a version it finds there) when the
/// request's own version is not served.
pub(crate) fn api_versions(version_served: bool) -> ApiVersionsResponse {
    let error_code = if version_served {
        code::NONE
    } else {
        code::UNSUPPORTED_VERSION
    };
    let api_keys = SUPPORTED
        .iter()
        .map(|&(key, min, max)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(min)
                .with_max_version(max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}
