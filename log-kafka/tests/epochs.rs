//! Leader epochs over the Kafka protocol (KIP-320): a restart whose
//! recovery cut a torn tail moves the partition's epoch; Metadata,
//! ListOffsets and the stored batches carry it; Fetch and ListOffsets fence
//! a stale `current_leader_epoch`; OffsetForLeaderEpoch says where each
//! epoch ends, so a consumer can tell what recovery cut.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::*;

const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

async fn leader_epoch(c: &mut Client, version: i16) -> i32 {
    let request = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(name("t"))),
    ]));
    let r: MetadataResponse = c.call(ApiKey::Metadata, version, &request).await;
    r.topics[0].partitions[0].leader_epoch
}

/// `(error, leader_epoch, end_offset)` for `epoch` asked with `current`.
async fn epoch_end(c: &mut Client, version: i16, current: i32, epoch: i32) -> (i16, i32, i64) {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![
                    OffsetForLeaderPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(current)
                        .with_leader_epoch(epoch),
                ]),
        ]);
    let r: OffsetForLeaderEpochResponse = c
        .call(ApiKey::OffsetForLeaderEpoch, version, &request)
        .await;
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.leader_epoch, p.end_offset)
}

fn fetch_at(offset: i64, current: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_current_leader_epoch(current)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

/// partitionLeaderEpoch of each Kafka batch in `records`.
fn batch_epochs(records: &[u8]) -> Vec<i32> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 17 <= records.len() {
        let len = i32::from_be_bytes(records[at + 8..at + 12].try_into().unwrap()) as usize;
        out.push(i32::from_be_bytes(
            records[at + 12..at + 16].try_into().unwrap(),
        ));
        at += 12 + len;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_on_restart_moves_the_epoch_and_every_api_answers_with_it() {
    let broker = Broker::start().await;
    let mut c = broker.client().await;
    let _: CreateTopicsResponse = c.call(ApiKey::CreateTopics, 5, &create("t", 1)).await;
    let r: ProduceResponse = c
        .call(ApiKey::Produce, 9, &produce("t", 0, -1, kafka_batch(3, 0)))
        .await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    assert_eq!(leader_epoch(&mut c, 12).await, 0);
    // Before version 7 Metadata has no epoch field.
    assert_eq!(leader_epoch(&mut c, 6).await, -1);
    assert_eq!(epoch_end(&mut c, 4, 0, 0).await, (0, 0, 3));
    drop(c);

    // A torn tail after the last sync: the restart cuts it and moves the
    // epoch to 1, starting at 3.
    let dir = broker.stop_keeping().await;
    let segment = dir.path().join("data/topics/t/0/00000000000000000000.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap()
        .write_all(&[0xAB; 40])
        .unwrap();
    let broker = Broker::start_in(dir, log_kafka::KafkaConfig::default()).await;
    // The server opens every partition at start; so does this test.
    broker.store.partition("t", 0).unwrap();
    let mut c = broker.client().await;
    assert_eq!(leader_epoch(&mut c, 12).await, 1);
    let r: ProduceResponse = c
        .call(ApiKey::Produce, 9, &produce("t", 0, -1, kafka_batch(2, 3)))
        .await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 3));

    // The batches carry the epoch they were written in.
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_at(0, 1)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(batch_epochs(p.records.as_ref().unwrap()), vec![0, 1]);

    // Where each epoch ends; a future epoch is undefined.
    for v in 2..=4 {
        assert_eq!(epoch_end(&mut c, v, 1, 0).await, (0, 0, 3), "v{v}");
        assert_eq!(epoch_end(&mut c, v, 1, 1).await, (0, 1, 5), "v{v}");
        assert_eq!(epoch_end(&mut c, v, -1, 2).await, (0, -1, -1), "v{v}");
    }
    // A stale or future current epoch is fenced, as a Kafka leader does.
    assert_eq!(epoch_end(&mut c, 4, 0, 0).await.0, FENCED_LEADER_EPOCH);
    assert_eq!(epoch_end(&mut c, 4, 2, 0).await.0, UNKNOWN_LEADER_EPOCH);
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_at(0, 0)).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, FENCED_LEADER_EPOCH);
    assert!(p.records.as_ref().is_none_or(|r| r.is_empty()));
    let r: FetchResponse = c.call(ApiKey::Fetch, 12, &fetch_at(0, 2)).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        UNKNOWN_LEADER_EPOCH
    );

    // ListOffsets: the epoch from version 4, and the same fencing.
    let list = |current: i32| {
        ListOffsetsRequest::default().with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_current_leader_epoch(current)
                        .with_timestamp(-1),
                ]),
        ])
    };
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 4, &list(1)).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.offset, p.leader_epoch), (0, 5, 1));
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 7, &list(0)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, FENCED_LEADER_EPOCH);
    let r: ListOffsetsResponse = c.call(ApiKey::ListOffsets, 2, &list(-1)).await;
    assert_eq!(r.topics[0].partitions[0].offset, 5);
    broker.stop().await;
}
