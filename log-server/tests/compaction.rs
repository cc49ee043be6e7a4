//! Compacted topics over gRPC: a topic created with the compact cleanup
//! policy is cleaned by the server's cleaner threads; `GetTopic` reports its
//! config and the cleaner's figures; both consumer modes read the latest
//! value of every key at its original offset, skipping the gaps; a record
//! without a key is refused. A topic with cold compression is rewritten
//! compressed and read back whole.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use log_client::{
    CleanupPolicy, Consumer, ConsumerConfig, ConsumerMode, NewRecord, Position, Producer,
    ProducerConfig, TopicConfig,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_compacts_a_compacted_topic_and_readers_skip_the_gaps() {
    let mut server = TestServer::start_with(|c| c.cleaner_backoff_ms = 50).await;
    let c = server.client.clone();
    let config = TopicConfig::default()
        .with_cleanup_policy(CleanupPolicy::Compact)
        .with_segment_bytes(4096)
        .with_max_batch_bytes(4096)
        .with_min_cleanable_dirty_ratio(0.01);
    c.create_topic("prices", 1, config).await.unwrap();
    let topic = c.get_topic("prices").await.unwrap();
    assert_eq!(
        topic.topic.config.cleanup_policy,
        Some(CleanupPolicy::Compact)
    );
    assert_eq!(topic.topic.config.min_cleanable_dirty_ratio, Some(0.01));
    assert_eq!(
        topic.topic.config.delete_retention,
        Some(Duration::from_secs(24 * 3600))
    );

    let producer = Producer::new(c.clone(), "prices", ProducerConfig::default())
        .await
        .unwrap();
    // A record without a key is refused, as Kafka refuses it.
    let keyless = c
        .produce(log_client::proto::ProduceRequest {
            topic: "prices".into(),
            records: vec![log_client::proto::Record {
                value: Some("no key".into()),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(keyless.code(), tonic::Code::InvalidArgument, "{keyless:?}");
    assert_eq!(keyless.reason(), Some("KEY_REQUIRED"));
    let mut latest = std::collections::BTreeMap::new();
    for i in 0..600u32 {
        let key = format!("item-{}", i % 10);
        let value = format!("{key} price {i} {}", "x".repeat(40));
        latest.insert(key.clone(), (u64::from(i), value.clone()));
        producer
            .send(NewRecord::keyed(key, value))
            .await
            .unwrap()
            .await
            .unwrap();
    }
    producer.close().await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let cleaner = loop {
        let info = c.get_topic("prices").await.unwrap().partitions[0];
        if info.cleaner.passes > 0 {
            break info.cleaner;
        }
        assert!(Instant::now() < deadline, "no cleaning within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(cleaner.bytes_reclaimed > 0, "{cleaner:?}");
    assert!(cleaner.last_clean_time.is_some() && cleaner.cleaner_point > 0);

    for mode in [ConsumerMode::Fetch, ConsumerMode::Subscribe] {
        let config = ConsumerConfig::default()
            .with_mode(mode)
            .with_stop_at_end(true);
        let mut consumer = Consumer::new(c.clone(), "prices", 0, Position::Earliest, config);
        let mut seen = std::collections::BTreeMap::new();
        let mut count = 0;
        let mut last = None;
        while let Some(record) = consumer.next().await {
            let record = record.unwrap();
            assert!(
                last.is_none_or(|l| record.offset > l),
                "{mode:?}: offsets increase"
            );
            last = Some(record.offset);
            let key = String::from_utf8(record.key.unwrap().to_vec()).unwrap();
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            seen.insert(key, (record.offset, value));
            count += 1;
        }
        assert_eq!(seen, latest, "{mode:?}: the latest value of every key");
        assert!(count < 200, "{mode:?}: {count} of 600 records read");
        assert_eq!(last, Some(599), "{mode:?}");
    }
    server.stop().await;
}

/// A topic given cold compression after its creation: the server rewrites
/// its sealed segments with zstd, `GetTopic` reports the config and the bytes saved, and both
/// consumer modes read every record as it was produced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_compresses_cold_segments_and_readers_see_every_record() {
    let mut server = TestServer::start_with(|c| c.cleaner_backoff_ms = 50).await;
    let c = server.client.clone();
    let config = TopicConfig::default()
        .with_segment_bytes(8192)
        .with_max_batch_bytes(8192);
    c.create_topic("orders", 1, config).await.unwrap();
    // Turned on after creation (AlterTopicConfig): the other settings stay.
    let topic = c
        .alter_topic_config(
            "orders",
            TopicConfig::default().with_cold_compression(log_client::Codec::Zstd, Duration::ZERO),
        )
        .await
        .unwrap();
    assert_eq!(topic.config.segment_bytes, Some(8192));
    let topic = c.get_topic("orders").await.unwrap();
    assert_eq!(
        topic.topic.config.cold_compression,
        Some(log_client::Codec::Zstd)
    );
    assert_eq!(
        topic.topic.config.cold_compression_lag,
        Some(Duration::ZERO)
    );
    assert_eq!(topic.topic.config.segment_bytes, Some(8192));
    // A bad value is refused and changes nothing.
    let bad = c
        .alter_topic_config("orders", TopicConfig::default().with_segment_bytes(10))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    assert_eq!(
        c.get_topic("orders")
            .await
            .unwrap()
            .topic
            .config
            .segment_bytes,
        Some(8192)
    );
    let producer_config = ProducerConfig::default().with_max_batch_bytes(4096);
    let producer = Producer::new(c.clone(), "orders", producer_config)
        .await
        .unwrap();
    let mut written = Vec::new();
    let mut acks = Vec::new();
    for i in 0..600u32 {
        let value = format!(
            r#"{{"order_id":{i},"customer":"c-{}","status":"created","amount_cents":{}}}"#,
            i % 37,
            i * 13
        );
        written.push(value.clone());
        // Acks awaited later: the producer batches the records.
        acks.push(
            producer
                .send(NewRecord::keyed(format!("order-{i}"), value))
                .await
                .unwrap(),
        );
    }
    for ack in acks {
        ack.await.unwrap();
    }
    producer.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cleaner = loop {
        let info = c.get_topic("orders").await.unwrap().partitions[0];
        if info.cleaner.cold_segments >= 3 {
            break info.cleaner;
        }
        assert!(Instant::now() < deadline, "no cold compression within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        cleaner.cold_bytes_saved > 0 && cleaner.compressed_below > 0,
        "{cleaner:?}"
    );
    for mode in [ConsumerMode::Fetch, ConsumerMode::Subscribe] {
        let config = ConsumerConfig::default()
            .with_mode(mode)
            .with_stop_at_end(true);
        let mut consumer = Consumer::new(c.clone(), "orders", 0, Position::Earliest, config);
        let mut seen = Vec::new();
        while let Some(record) = consumer.next().await {
            let record = record.unwrap();
            assert_eq!(record.offset, seen.len() as u64, "{mode:?}: no gaps");
            seen.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
        }
        assert_eq!(seen, written, "{mode:?}: every record as produced");
    }
    server.stop().await;
}
