//! Topic configs changed after creation over the Kafka protocol:
//! IncrementalAlterConfigs (SET, DELETE, APPEND and SUBTRACT on the list
//! config, `validate_only`, Kafka's codes for what it refuses) and
//! AlterConfigs (the whole config replaced), read back with
//! DescribeConfigs, at every served version.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

/// `(name, operation, value)` of one IncrementalAlterConfigs change.
type Op = (&'static str, i8, Option<&'static str>);

fn incremental(
    resource_type: i8,
    topic: &str,
    ops: &[Op],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(topic.to_owned()))
                .with_configs(
                    ops.iter()
                        .map(|(name, op, value)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_static_str(name))
                                .with_config_operation(*op)
                                .with_value(value.map(StrBytes::from_static_str))
                        })
                        .collect(),
                ),
        ])
}

async fn describe(c: &mut Client, topic: &str) -> BTreeMap<String, String> {
    let r: DescribeConfigsResponse = c
        .call(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(topic.to_owned()))
                    .with_configuration_keys(None),
            ]),
        )
        .await;
    r.results[0]
        .configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_deref().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_sets_deletes_appends_and_refuses_as_kafka() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let _: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &create("alt", 1)).await;
    let defaults = describe(&mut c, "alt").await;
    for v in 0..=1 {
        let set = incremental(
            2,
            "alt",
            &[
                ("retention.ms", 0, Some("60000")),
                ("cleanup.policy", 2, Some("compact")),
                ("cold.compression.type", 0, Some("zstd")),
            ],
            false,
        );
        let r: IncrementalAlterConfigsResponse =
            c.call(ApiKey::IncrementalAlterConfigs, v, &set).await;
        assert_eq!(r.responses[0].error_code, 0, "v{v}: {:?}", r.responses[0]);
        let now = describe(&mut c, "alt").await;
        assert_eq!(now["retention.ms"], "60000", "v{v}");
        assert_eq!(now["cleanup.policy"], "compact,delete", "v{v}");
        assert_eq!(now["cold.compression.type"], "zstd", "v{v}");
        assert_eq!(now["segment.bytes"], defaults["segment.bytes"], "untouched");
        // SUBTRACT from the list, DELETE back to the default.
        let back = incremental(
            2,
            "alt",
            &[
                ("cleanup.policy", 3, Some("compact")),
                ("retention.ms", 1, None),
                ("cold.compression.type", 1, None),
            ],
            false,
        );
        let r: IncrementalAlterConfigsResponse =
            c.call(ApiKey::IncrementalAlterConfigs, v, &back).await;
        assert_eq!(r.responses[0].error_code, 0, "v{v}: {:?}", r.responses[0]);
        assert_eq!(describe(&mut c, "alt").await, defaults, "v{v}");
    }
    // Refused, each changing nothing: a bad value, APPEND to a non-list,
    // removing the last cleanup policy, an unknown config (INVALID_CONFIG,
    // 40); an unknown topic (3); a broker resource (INVALID_REQUEST, 42).
    let refused: [(i8, &str, Vec<Op>, i16); 6] = [
        (2, "alt", vec![("retention.ms", 0, Some("-5"))], 40),
        (2, "alt", vec![("segment.ms", 2, Some("10"))], 40),
        (2, "alt", vec![("cleanup.policy", 3, Some("delete"))], 40),
        (2, "alt", vec![("no.such.config", 0, Some("1"))], 40),
        (2, "nope", vec![("retention.ms", 0, Some("1000"))], 3),
        (4, "0", vec![("log.retention.ms", 0, Some("1000"))], 42),
    ];
    for (kind, topic, ops, want) in refused {
        // A good change beside the bad one is not applied either.
        let mut ops = ops;
        ops.insert(0, ("segment.ms", 0, Some("120000")));
        let r: IncrementalAlterConfigsResponse = c
            .call(
                ApiKey::IncrementalAlterConfigs,
                1,
                &incremental(kind, topic, &ops, false),
            )
            .await;
        assert_eq!(
            r.responses[0].error_code, want,
            "{ops:?}: {:?}",
            r.responses[0]
        );
        assert_eq!(
            describe(&mut c, "alt").await,
            defaults,
            "{ops:?} changed nothing"
        );
    }
    // validate_only answers but changes nothing.
    let check = incremental(2, "alt", &[("retention.ms", 0, Some("60000"))], true);
    let r: IncrementalAlterConfigsResponse =
        c.call(ApiKey::IncrementalAlterConfigs, 1, &check).await;
    assert_eq!(r.responses[0].error_code, 0);
    assert_eq!(describe(&mut c, "alt").await, defaults);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_the_whole_config() {
    use alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let _: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &create("whole", 1)).await;
    let defaults = describe(&mut c, "whole").await;
    let request = |configs: &[(&'static str, &'static str)]| {
        AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("whole"))
                .with_configs(
                    configs
                        .iter()
                        .map(|(name, value)| {
                            AlterableConfig::default()
                                .with_name(StrBytes::from_static_str(name))
                                .with_value(Some(StrBytes::from_static_str(value)))
                        })
                        .collect(),
                ),
        ])
    };
    for v in 0..=2 {
        let r: AlterConfigsResponse = c
            .call(
                ApiKey::AlterConfigs,
                v,
                &request(&[("retention.ms", "60000"), ("segment.ms", "120000")]),
            )
            .await;
        assert_eq!(r.responses[0].error_code, 0, "v{v}: {:?}", r.responses[0]);
        let now = describe(&mut c, "whole").await;
        assert_eq!(
            (now["retention.ms"].as_str(), now["segment.ms"].as_str()),
            ("60000", "120000")
        );
        // What a later call does not name goes back to its default.
        let r: AlterConfigsResponse = c
            .call(
                ApiKey::AlterConfigs,
                v,
                &request(&[("segment.ms", "120000")]),
            )
            .await;
        assert_eq!(r.responses[0].error_code, 0, "v{v}");
        let now = describe(&mut c, "whole").await;
        assert_eq!(now["retention.ms"], defaults["retention.ms"], "v{v}");
        let r: AlterConfigsResponse = c.call(ApiKey::AlterConfigs, v, &request(&[])).await;
        assert_eq!(r.responses[0].error_code, 0, "v{v}");
        assert_eq!(describe(&mut c, "whole").await, defaults, "v{v}");
    }
    broker.stop().await;
}
