//! One store, two protocols: the Kafka listener (`--kafka-listen`) beside
//! gRPC. A record produced over Kafka is read over gRPC with the same key,
//! value, headers, timestamp and offset, and one produced over gRPC is
//! fetched over Kafka as the stored Kafka batch. (The real Kafka clients
//! are exercised by `log-server/tests/kafka/`, from `.ci/run`.)
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{TestServer, kafka_call as call};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use log_client::{FetchOptions, Position};
use log_format::{BatchBuilder, Limits, NewRecord, RecordHeader};
use tokio::net::TcpStream;

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_crosses_from_kafka_to_grpc_and_back_unchanged() {
    let mut server = TestServer::start_with(|c| c.kafka_listen = "127.0.0.1:0".to_owned()).await;
    let kafka: SocketAddr = server.server.as_ref().unwrap().kafka_addr().unwrap();
    let c = server.client.clone();
    c.create_topic("both", 1, Default::default()).await.unwrap();
    let mut stream = TcpStream::connect(kafka).await.unwrap();

    // Kafka → gRPC.
    let mut builder = BatchBuilder::new(Limits::default());
    builder
        .push(&NewRecord {
            timestamp: 1_700_000_000_123,
            key: Some(b"k"),
            value: Some(b"from kafka"),
            headers: &[RecordHeader {
                key: "h",
                value: Some(b"1"),
            }],
        })
        .unwrap();
    let kafka_batch = builder
        .finish()
        .unwrap()
        .slice(log_format::FRAME_HEADER_LEN..);
    let produced: ProduceResponse = call(
        &mut stream,
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic("both"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(kafka_batch)),
                    ]),
            ]),
    )
    .await;
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let read = c
        .fetch("both", 0, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();
    let record = &read.records[0];
    assert_eq!(record.offset, 0);
    assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
    assert_eq!(record.value.as_deref(), Some(&b"from kafka"[..]));
    assert_eq!(record.headers[0].key, "h");
    assert_eq!(record.headers[0].value.as_deref(), Some(&b"1"[..]));
    let ts = record.timestamp.unwrap();
    assert_eq!(
        ts.seconds * 1000 + i64::from(ts.nanos) / 1_000_000,
        1_700_000_000_123
    );

    // gRPC → Kafka: the stored batch, as gRPC's encoded format holds it.
    c.produce(log_client::proto::ProduceRequest {
        topic: "both".into(),
        partition: Some(0),
        records: vec![log_client::proto::Record {
            key: Some(Bytes::from_static(b"g")),
            value: Some(Bytes::from_static(b"from grpc")),
            headers: vec![],
            timestamp: None,
        }],
        ..Default::default()
    })
    .await
    .unwrap();
    let stored = c
        .fetch(
            "both",
            0,
            Position::Offset(1),
            &FetchOptions::default().with_format(log_client::RecordFormat::EncodedBatches),
        )
        .await
        .unwrap()
        .encoded_batches;
    let fetched: FetchResponse = call(
        &mut stream,
        ApiKey::Fetch,
        12,
        &FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic("both"))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(1)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ]),
    )
    .await;
    let part = &fetched.responses[0].partitions[0];
    assert_eq!(part.high_watermark, 2);
    let records = part.records.clone().unwrap();
    assert_eq!(&records[..], &stored[log_format::FRAME_HEADER_LEN..]);
    server.stop().await;
}
