//! Every RPC through `log-client` against an in-process server on
//! 127.0.0.1:0: admin, produce (records, encoded, stream, conditional,
//! idempotent), fetch (long poll, isolation, formats), subscribe (replay
//! then tail, heartbeats, stop at end), offsets and lag, error codes and
//! reasons, and graceful shutdown with open streams.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestServer;
use log_client::proto;
use log_client::{
    Ack, Consumer, ConsumerConfig, ConsumerMode, ErrorKind, FetchOptions, Isolation, NewRecord,
    Position, Producer, ProducerConfig, RecordFormat, ResetPolicy, TopicConfig,
};
use tonic::Code;

fn record(value: &str) -> proto::Record {
    proto::Record {
        key: None,
        value: Some(Bytes::copy_from_slice(value.as_bytes())),
        headers: vec![],
        timestamp: None,
    }
}

fn produce_request(topic: &str, partition: u32, values: &[&str]) -> proto::ProduceRequest {
    proto::ProduceRequest {
        topic: topic.into(),
        partition: Some(partition),
        records: values.iter().map(|v| record(v)).collect(),
        ..Default::default()
    }
}

async fn end_offset(server: &TestServer, topic: &str, partition: u32) -> u64 {
    let topic = server.client.get_topic(topic).await.unwrap();
    topic.partitions[partition as usize]
        .watermarks
        .log_end_offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_create_describe_list_grow_and_delete_topics() {
    let mut server = TestServer::start().await;
    let c = &server.client;
    let topic = c
        .create_topic("orders", 3, Default::default())
        .await
        .unwrap();
    assert_eq!(topic.partition_count, 3);
    let config = topic.config;
    assert_eq!(config.default_ack, Ack::Durable);
    assert_eq!(config.max_batch_bytes, Some(8 << 20));

    let err = c
        .create_topic("orders", 1, Default::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::AlreadyExists, Some("TOPIC_EXISTS"))
    );

    let described = c.get_topic("orders").await.unwrap();
    assert_eq!(described.partitions.len(), 3);
    assert_eq!(described.partitions[0].watermarks.log_end_offset, 0);
    // On the wire every partition carries its watermarks (the client reads
    // a missing field as zeros, so the check above alone would not fail).
    let raw = c
        .admin_service()
        .get_topic(proto::GetTopicRequest {
            name: "orders".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(raw.partitions.len(), 3);
    assert!(
        raw.partitions.iter().all(|p| p.watermarks.is_some()),
        "{:?}",
        raw.partitions
    );

    for i in 0..5 {
        c.create_topic(&format!("t{i}"), 1, Default::default())
            .await
            .unwrap();
    }
    // Pagination: pages of 2 cover every topic once.
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .admin_service()
            .list_topics(proto::ListTopicsRequest {
                page_size: 2,
                page_token: token.clone(),
                name_prefix: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.topics.len() <= 2);
        names.extend(page.topics.into_iter().map(|t| t.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, ["orders", "t0", "t1", "t2", "t3", "t4"]);

    let grown = c.create_partitions("orders", 5).await.unwrap();
    assert_eq!(grown.partition_count, 5);
    let err = c.create_partitions("orders", 2).await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::FailedPrecondition, Some("CANNOT_SHRINK"))
    );

    c.delete_topic("t0").await.unwrap();
    let err = c.get_topic("t0").await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::NotFound, Some("TOPIC_NOT_FOUND"))
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.is_retryable());
    c.admin_service()
        .delete_topic(proto::DeleteTopicRequest {
            name: "t0".into(),
            allow_missing: true,
        })
        .await
        .unwrap();

    // validate_only creates nothing.
    c.admin_service()
        .create_topic(proto::CreateTopicRequest {
            name: "dry".into(),
            partition_count: 2,
            config: None,
            validate_only: true,
        })
        .await
        .unwrap();
    assert!(c.get_topic("dry").await.is_err());

    let info = c.server_info().await.unwrap();
    let limits = info.limits.unwrap();
    assert_eq!(limits.max_batch_bytes, 8 << 20);
    assert!(limits.max_request_bytes > limits.max_batch_bytes);
    assert!(limits.max_fetch_bytes < 4 << 20);
    assert_eq!(info.storage_format_version, 2);

    c.produce(produce_request("orders", 1, &["a", "b"]))
        .await
        .unwrap();
    let stats = c.stats(Some("orders")).await.unwrap();
    assert_eq!(
        stats.topics[0].partitions[1]
            .watermarks
            .unwrap()
            .log_end_offset,
        2
    );
    assert!(stats.topics[0].partitions[1].size_bytes > 0);
    assert_eq!(stats.records_appended_total, 2);
    assert_eq!(stats.produce_requests_total, 1);

    let watermarks = c.delete_records("orders", 1, 1).await.unwrap();
    assert_eq!(watermarks.log_start_offset, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_fetch_roundtrip_records_byte_for_byte() {
    let mut server = TestServer::start().await;
    let c = &server.client;
    c.create_topic("t", 2, Default::default()).await.unwrap();
    let records = vec![
        proto::Record {
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"v1")),
            headers: vec![proto::Header {
                key: "h".into(),
                value: Some(Bytes::from_static(b"x")),
            }],
            timestamp: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5_000_000,
            }),
        },
        proto::Record {
            key: None,
            value: None,
            headers: vec![],
            timestamp: None,
        },
        proto::Record {
            key: Some(Bytes::new()),
            value: Some(Bytes::from(vec![0u8; 10_000])),
            headers: vec![],
            timestamp: None,
        },
    ];
    let ack = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(1),
            records: records.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((ack.partition, ack.base_offset, ack.last_offset), (1, 0, 2));
    assert_eq!(ack.ack, proto::Ack::Durable as i32);
    let marks = ack.watermarks.unwrap();
    assert_eq!((marks.log_end_offset, marks.durable_end_offset), (3, 3));

    let fetched = c
        .fetch("t", 1, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(fetched.next_offset, 3);
    assert_eq!(fetched.records.len(), 3);
    for (i, (got, sent)) in fetched.records.iter().zip(&records).enumerate() {
        assert_eq!(got.offset, i as u64);
        assert_eq!(got.key, sent.key);
        assert_eq!(got.value, sent.value);
        assert_eq!(got.headers, sent.headers);
        assert!(got.append_time.is_some());
    }
    assert_eq!(fetched.records[0].timestamp, records[0].timestamp);

    // Pass-through: the stored batch, decodable with log-format.
    let encoded = c
        .fetch(
            "t",
            1,
            Position::Offset(1),
            &FetchOptions::default().with_format(RecordFormat::EncodedBatches),
        )
        .await
        .unwrap();
    assert!(encoded.records.is_empty());
    assert_eq!(encoded.start_offset, 1);
    let batch = log_format::Batch::decode(
        encoded.encoded_batches.clone(),
        &log_format::Limits::default(),
    )
    .unwrap();
    assert_eq!(batch.records().count(), 3);

    // max_records and positions.
    let one = c
        .fetch(
            "t",
            1,
            Position::FromEnd(2),
            &FetchOptions::default().with_max_records(1),
        )
        .await
        .unwrap();
    assert_eq!(
        (one.records.len(), one.records[0].offset, one.next_offset),
        (1, 1, 2)
    );

    // Round-robin and keyed partitioning.
    let keyed = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition_key: Bytes::from_static(b"user-7"),
            records: vec![record("x")],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(keyed.partition, crc32fast::hash(b"user-7") % 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_batches_from_the_client_are_appended_as_built() {
    let mut server = TestServer::start().await;
    let c = &server.client;
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let mut builder = log_format::BatchBuilder::new(log_format::Limits::default());
    for i in 0..100u32 {
        builder
            .push(&log_format::NewRecord::value(1, &i.to_le_bytes()))
            .unwrap();
    }
    let batch = builder.finish().unwrap();
    let ack = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(0),
            encoded_batch: batch.clone(),
            ack: proto::Ack::Written as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((ack.base_offset, ack.last_offset), (0, 99));
    assert_eq!(ack.ack, proto::Ack::Written as i32);
    let fetched = c
        .fetch(
            "t",
            0,
            Position::Earliest,
            &FetchOptions::default().with_isolation(Isolation::Written),
        )
        .await
        .unwrap();
    let values: Vec<u32> = fetched
        .records
        .iter()
        .map(|r| u32::from_le_bytes(r.value.as_ref().unwrap()[..].try_into().unwrap()))
        .collect();
    assert_eq!(values, (0..100).collect::<Vec<_>>());

    // A flipped bit anywhere is refused with INVALID_BATCH; nothing changes.
    let mut damaged = batch.to_vec();
    damaged[200] ^= 0x10;
    let err = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(0),
            encoded_batch: damaged.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::InvalidArgument, Some("INVALID_BATCH"))
    );
    assert_eq!(end_offset(&server, "t", 0).await, 100);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_append_and_idempotent_retry() {
    let mut server = TestServer::start().await;
    let c = &server.client;
    c.create_topic("t", 1, Default::default()).await.unwrap();
    c.produce(produce_request("t", 0, &["a", "b"]))
        .await
        .unwrap();

    let mut conditional = produce_request("t", 0, &["c"]);
    conditional.expected_log_end_offset = Some(1);
    let err = c.produce(conditional.clone()).await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::FailedPrecondition, Some("CONDITION_FAILED"))
    );
    assert_eq!(
        (err.metadata("expected"), err.metadata("actual")),
        (Some("1"), Some("2"))
    );
    conditional.expected_log_end_offset = Some(2);
    assert_eq!(c.produce(conditional).await.unwrap().base_offset, 2);

    let mut idempotent = produce_request("t", 0, &["d", "e"]);
    idempotent.producer_id = Some(42);
    idempotent.base_sequence = 0;
    let first = c.produce(idempotent.clone()).await.unwrap();
    let retry = c.produce(idempotent.clone()).await.unwrap();
    assert_eq!((first.base_offset, first.last_offset), (3, 4));
    assert_eq!((retry.base_offset, retry.last_offset), (3, 4));
    assert_eq!(end_offset(&server, "t", 0).await, 5);
    // The retry is a request but appends nothing: 5 requests, 5 records.
    let stats = c.stats(Some("t")).await.unwrap();
    assert_eq!(
        (stats.produce_requests_total, stats.records_appended_total),
        (5, 5)
    );

    // A gap in the sequence and an older epoch are refused.
    idempotent.base_sequence = 7;
    let err = c.produce(idempotent.clone()).await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::FailedPrecondition, Some("OUT_OF_ORDER_SEQUENCE"))
    );
    idempotent.producer_epoch = 1;
    idempotent.base_sequence = 0;
    c.produce(idempotent.clone()).await.unwrap();
    idempotent.producer_epoch = 0;
    let err = c.produce(idempotent).await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::FailedPrecondition, Some("PRODUCER_FENCED"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_right_code_and_reason() {
    let mut server = TestServer::start_with(|c| {
        c.max_batch_bytes = 64 * 1024;
        c.max_request_bytes = 128 * 1024;
    })
    .await;
    let c = &server.client;
    c.create_topic("t", 1, Default::default()).await.unwrap();
    c.produce(produce_request("t", 0, &["a"])).await.unwrap();
    let before = common::listing(&server.data_dir());

    let err = c
        .produce(produce_request("nope", 0, &["a"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::NotFound, Some("TOPIC_NOT_FOUND"))
    );
    let err = c
        .produce(produce_request("t", 9, &["a"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::NotFound, Some("PARTITION_NOT_FOUND"))
    );
    assert_eq!(err.metadata("partition_count"), Some("1"));

    let err = c
        .fetch("t", 0, Position::Offset(5), &FetchOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::OutOfRange, Some("OFFSET_OUT_OF_RANGE"))
    );
    assert_eq!(
        (
            err.metadata("log_start_offset"),
            err.metadata("log_end_offset")
        ),
        (Some("0"), Some("1"))
    );
    // Reset policies clamp instead.
    let latest = FetchOptions::default().with_reset(ResetPolicy::Latest);
    let fetched = c.fetch("t", 0, Position::Offset(5), &latest).await.unwrap();
    assert_eq!((fetched.records.len(), fetched.next_offset), (0, 1));

    // One byte over the batch limit (the request itself is under the
    // transport limit).
    let value = vec![1u8; 64 * 1024];
    let err = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(0),
            records: vec![proto::Record {
                value: Some(value.into()),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::InvalidArgument, Some("RECORD_TOO_LARGE"))
    );
    // Over the transport limit.
    let err = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(0),
            records: vec![proto::Record {
                value: Some(vec![1u8; 200 * 1024].into()),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::ResourceExhausted, Some("REQUEST_TOO_LARGE"))
    );
    let err = c
        .produce(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(0),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::InvalidArgument, Some("INVALID_REQUEST"))
    );

    for name in [
        "../x",
        "/abs",
        "a/b",
        ".",
        "..",
        "",
        &"a".repeat(250),
        "a\0b",
        "a\nb",
    ] {
        let err = c
            .create_topic(name, 1, Default::default())
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.reason()),
            (Code::InvalidArgument, Some("INVALID_TOPIC_NAME")),
            "{name:?}"
        );
    }
    let err = c
        .commit_offset("bad/group", "t", 0, 0, "")
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::InvalidArgument, Some("INVALID_GROUP_NAME"))
    );
    let err = c.commit_offset("g", "t", 0, 99, "").await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::OutOfRange, Some("OFFSET_OUT_OF_RANGE"))
    );
    let err = c
        .fetch(
            "t",
            0,
            Position::committed("never"),
            &FetchOptions::default(),
        )
        .await
        .map(|r| r.next_offset)
        .unwrap();
    assert_eq!(err, 1); // reset policy EARLIEST: from the start
    let strict = FetchOptions::default().with_reset(ResetPolicy::Error);
    let err = c
        .fetch("t", 0, Position::committed("never"), &strict)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::NotFound, Some("NO_COMMITTED_OFFSET"))
    );

    // Huge max_bytes is clamped, not honoured.
    let huge = c
        .fetch(
            "t",
            0,
            Position::Earliest,
            &FetchOptions::default().with_max_bytes(u32::MAX),
        )
        .await
        .unwrap();
    assert_eq!(huge.records.len(), 1);

    assert_eq!(common::listing(&server.data_dir()), before);
    assert_eq!(end_offset(&server, "t", 0).await, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_long_polls_until_a_record_arrives() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let options = FetchOptions::default().with_max_wait(Duration::from_secs(20));
    let started = Instant::now();
    let reader = {
        let c = c.clone();
        tokio::spawn(async move { c.fetch("t", 0, Position::Latest, &options).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.produce(produce_request("t", 0, &["late"])).await.unwrap();
    let fetched = reader.await.unwrap().unwrap();
    assert_eq!(fetched.records.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(10));

    // Nothing arrives: the answer comes after max_wait, empty.
    let started = Instant::now();
    let empty = c
        .fetch(
            "t",
            0,
            Position::Latest,
            &FetchOptions::default().with_max_wait(Duration::from_millis(300)),
        )
        .await
        .unwrap();
    assert!(empty.records.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_isolation_hides_records_not_yet_synced() {
    let mut server = TestServer::start_with(|c| c.flush_interval_ms = 3_600_000).await;
    let c = &server.client;
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let mut written = produce_request("t", 0, &["unsynced"]);
    written.ack = proto::Ack::Written as i32;
    let ack = c.produce(written).await.unwrap();
    let marks = ack.watermarks.unwrap();
    assert_eq!((marks.log_end_offset, marks.durable_end_offset), (1, 0));
    let durable = c
        .fetch("t", 0, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();
    assert!(durable.records.is_empty());
    let all = c
        .fetch(
            "t",
            0,
            Position::Earliest,
            &FetchOptions::default().with_isolation(Isolation::Written),
        )
        .await
        .unwrap();
    assert_eq!(all.records.len(), 1);
    // A durable append syncs the partition: now both are visible.
    c.produce(produce_request("t", 0, &["synced"]))
        .await
        .unwrap();
    let durable = c
        .fetch("t", 0, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(durable.records.len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_replays_then_tails_and_ends_on_shutdown() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    for i in 0..10 {
        c.produce(produce_request("t", 0, &[&format!("r{i}")]))
            .await
            .unwrap();
    }
    let mut stream = c
        .subscribe(proto::SubscribeRequest {
            topic: "t".into(),
            partition: 0,
            position: Some(Position::Earliest.into()),
            heartbeat_interval: Some(prost_types::Duration {
                seconds: 0,
                nanos: 200_000_000,
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    use proto::subscribe_response::Event;
    let mut seen = Vec::new();
    let mut caught_up = 0;
    while caught_up == 0 {
        match stream.message().await.unwrap().unwrap().event.unwrap() {
            Event::Batch(b) => seen.extend(b.records.into_iter().map(|r| r.offset)),
            Event::CaughtUp(c) => {
                caught_up += 1;
                assert_eq!(c.next_offset, 10);
            }
            Event::Heartbeat(_) => {}
        }
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    // Idle: heartbeats.
    match stream.message().await.unwrap().unwrap().event.unwrap() {
        Event::Heartbeat(h) => assert_eq!(h.next_offset, 10),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    // Tail.
    c.produce(produce_request("t", 0, &["new1", "new2"]))
        .await
        .unwrap();
    let mut tail = Vec::new();
    while tail.len() < 2 {
        match stream.message().await.unwrap().unwrap().event.unwrap() {
            Event::Batch(b) => tail.extend(b.records.into_iter().map(|r| r.offset)),
            Event::CaughtUp(_) => caught_up += 1,
            Event::Heartbeat(_) => {}
        }
    }
    assert_eq!(tail, [10, 11]);
    assert_eq!(caught_up, 1, "caught_up is sent once");

    // stop_at_end ends by itself.
    let mut bounded = c
        .subscribe(proto::SubscribeRequest {
            topic: "t".into(),
            partition: 0,
            position: Some(Position::FromEnd(3).into()),
            stop_at_end: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut offsets = Vec::new();
    while let Some(message) = bounded.message().await.unwrap() {
        if let Some(Event::Batch(b)) = message.event {
            offsets.extend(b.records.into_iter().map(|r| r.offset));
        }
    }
    assert_eq!(offsets, [9, 10, 11]);

    // Graceful shutdown with the tail stream open: it ends with
    // UNAVAILABLE and the server stops.
    let stop = tokio::spawn(async move { server.stop().await });
    let err = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::Unavailable);
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_stream_answers_in_order_and_stops_at_the_first_error() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let mut requests: Vec<proto::ProduceStreamRequest> = (0..50)
        .map(|i| proto::ProduceStreamRequest {
            request: Some(produce_request(
                "t",
                0,
                &[&format!("a{i}"), &format!("b{i}")],
            )),
        })
        .collect();
    // Request 30 fails its condition; 31.. must not be appended.
    requests[30]
        .request
        .as_mut()
        .unwrap()
        .expected_log_end_offset = Some(0);
    let mut responses = c
        .log_service()
        .produce_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut next = 0;
    let err = loop {
        match responses.message().await {
            Ok(Some(r)) => {
                let r = r.response.unwrap();
                assert_eq!(r.base_offset, next);
                next = r.last_offset + 1;
            }
            Ok(None) => panic!("no error"),
            Err(status) => break status,
        }
    };
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(next, 60);
    assert_eq!(end_offset(&server, "t", 0).await, 60);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_move_records_and_commit_offsets() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 2, Default::default()).await.unwrap();
    let producer = Producer::new(c.clone(), "t", ProducerConfig::default())
        .await
        .unwrap();
    let mut deliveries = Vec::new();
    for i in 0..1000u32 {
        let record = NewRecord::keyed(format!("k{}", i % 7), i.to_string()).with_header("n", "1");
        deliveries.push(producer.send(record).await.unwrap());
    }
    producer.flush().await.unwrap();
    let mut per_partition = [0u64; 2];
    for d in deliveries {
        let ack = d.await.unwrap();
        per_partition[ack.partition as usize] += 1;
    }
    producer.close().await.unwrap();
    assert_eq!(per_partition.iter().sum::<u64>(), 1000);

    for (mode, p) in [(ConsumerMode::Fetch, 0u32), (ConsumerMode::Subscribe, 1u32)] {
        let config = ConsumerConfig::default()
            .with_mode(mode)
            .with_stop_at_end(true)
            .with_group("g");
        let mut consumer = Consumer::new(c.clone(), "t", p, Position::Earliest, config);
        let mut count = 0u64;
        let mut last = None;
        while let Some(record) = consumer.next().await {
            let record = record.unwrap();
            assert_eq!(Some(record.offset), last.map(|l: u64| l + 1).or(Some(0)));
            assert_eq!(
                record.headers,
                vec![("n".to_owned(), Some(Bytes::from_static(b"1")))]
            );
            last = Some(record.offset);
            count += 1;
        }
        assert_eq!(count, per_partition[p as usize], "{mode:?}");
        assert_eq!(consumer.position(), Some(count));
        consumer.commit().await.unwrap();
    }

    // Lag: partition 0 fully committed, partition 1 committed then grown.
    c.commit_offset("g", "t", 1, 10, "meta").await.unwrap();
    let committed = c.committed_offsets("g", "t", &[]).await.unwrap();
    assert_eq!(committed[0].offset, Some(per_partition[0]));
    assert_eq!((committed[0].lag_records, committed[0].lag_bytes), (0, 0));
    assert_eq!(committed[1].offset, Some(10));
    assert_eq!(committed[1].metadata, "meta");
    assert_eq!(committed[1].lag_records, per_partition[1] - 10);
    assert!(committed[1].lag_bytes > 0);
    let none = c.committed_offsets("other", "t", &[0]).await.unwrap();
    assert_eq!(none[0].offset, None);
    assert_eq!(none[0].lag_records, per_partition[0]);

    // ListOffsets: boundaries, committed, and time.
    let latest = c.list_offsets("t", &[], Position::Latest).await.unwrap();
    assert_eq!(latest.len(), 2);
    assert_eq!(latest[0].offset, Some(per_partition[0]));
    let committed = c
        .list_offsets("t", &[1], Position::committed("g"))
        .await
        .unwrap();
    assert_eq!(committed[0].offset, Some(10));
    let future = Position::Time(4_000_000_000_000);
    assert_eq!(
        c.list_offsets("t", &[0], future).await.unwrap()[0].offset,
        None
    );
    let past = Position::Time(0);
    assert_eq!(
        c.list_offsets("t", &[0], past).await.unwrap()[0].offset,
        Some(0)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_stream_tails_new_records() {
    use tokio_stream::StreamExt;
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let consumer = Consumer::new(
        c.clone(),
        "t",
        0,
        Position::Latest,
        ConsumerConfig::default(),
    );
    let mut stream = Box::pin(consumer.into_stream());
    let producer = tokio::spawn({
        let c = c.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c.produce(produce_request("t", 0, &["x", "y"]))
                .await
                .unwrap();
        }
    });
    let first = stream.next().await.unwrap().unwrap();
    let second = stream.next().await.unwrap().unwrap();
    assert_eq!((first.offset, second.offset), (0, 1));
    assert_eq!(second.value.as_deref(), Some(&b"y"[..]));
    producer.await.unwrap();
    drop(stream);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_serves_then_turns_not_serving_when_shutdown_starts() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let mut server = TestServer::start_with(|c| c.shutdown_grace_ms = 1000).await;
    let channel = tonic::transport::Endpoint::from_shared(format!(
        "http://{}",
        server.server.as_ref().unwrap().addr()
    ))
    .unwrap()
    .connect()
    .await
    .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "log.v1.LogService", "log.v1.AdminService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stop = tokio::spawn(async move { server.stop().await });
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    stop.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_rides_out_a_server_restart_without_duplicates() {
    let mut server = TestServer::start().await;
    let addr = server.server.as_ref().unwrap().addr();
    let data_dir = server.data_dir();
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let config = ProducerConfig::default()
        .with_linger(Duration::from_millis(1))
        .with_retry_backoff(Duration::from_millis(50))
        .with_retries(40);
    let producer = Producer::new(c.clone(), "t", config).await.unwrap();
    let sending = tokio::spawn(async move {
        let mut deliveries = Vec::new();
        for i in 0..3000u32 {
            deliveries.push(
                producer
                    .send(NewRecord::value(i.to_string()))
                    .await
                    .unwrap(),
            );
            if i % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        let mut offsets = Vec::new();
        for d in deliveries {
            offsets.push(d.await.unwrap().offset);
        }
        producer.close().await.unwrap();
        offsets
    });
    tokio::time::sleep(Duration::from_millis(60)).await;
    // Restart on the same port and directory while batches are in flight.
    server.stop().await;
    let mut config = log_server::Config::default();
    config.listen = addr;
    config.kafka_listen = "off".to_owned();
    config.data_dir = data_dir;
    let restarted = log_server::Server::start(config).await.unwrap();
    let offsets = tokio::time::timeout(Duration::from_secs(60), sending)
        .await
        .unwrap()
        .unwrap();
    // Every record acked once, at its own offset, in send order; nothing
    // stored twice.
    assert_eq!(offsets, (0..3000).collect::<Vec<u64>>());
    let client = common::connect(addr).await;
    common::wait_serving(&client).await;
    let end = client.get_topic("t").await.unwrap().partitions[0]
        .watermarks
        .log_end_offset;
    assert_eq!(end, 3000);
    // The producer did reconnect: the new server took produce requests.
    let stats = client.stats(Some("t")).await.unwrap();
    assert!(stats.produce_requests_total > 0);
    let all = client
        .fetch(
            "t",
            0,
            Position::Earliest,
            &FetchOptions::default()
                .with_max_records(5000)
                .with_max_bytes(4 << 20),
        )
        .await
        .unwrap();
    let values: Vec<String> = all
        .records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    assert_eq!(values, (0..3000).map(|i| i.to_string()).collect::<Vec<_>>());
    restarted.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_request_on_a_produce_stream_is_resource_exhausted() {
    let mut server = TestServer::start_with(|c| {
        c.max_batch_bytes = 64 * 1024;
        c.max_request_bytes = 128 * 1024;
    })
    .await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let big = proto::ProduceStreamRequest {
        request: Some(proto::ProduceRequest {
            topic: "t".into(),
            partition: Some(0),
            records: vec![proto::Record {
                value: Some(vec![1u8; 200 * 1024].into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    let small = proto::ProduceStreamRequest {
        request: Some(produce_request("t", 0, &["ok"])),
    };
    let mut responses = c
        .log_service()
        .produce_stream(tokio_stream::iter(vec![small, big]))
        .await
        .unwrap()
        .into_inner();
    let first = responses.message().await.unwrap().unwrap();
    assert_eq!(first.response.unwrap().base_offset, 0);
    let err = log_client::Error::from(responses.message().await.unwrap_err());
    assert_eq!(
        (err.code(), err.reason()),
        (Code::ResourceExhausted, Some("REQUEST_TOO_LARGE"))
    );
    assert_eq!(end_offset(&server, "t", 0).await, 1);
    server.stop().await;
}

fn pb_duration(seconds: i64, nanos: i32) -> prost_types::Duration {
    prost_types::Duration { seconds, nanos }
}

/// Item 10: a duration, timestamp or count out of its range is
/// INVALID_ARGUMENT (reason INVALID_REQUEST, naming the field) before
/// anything runs; none panics a task, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_durations_and_timestamps_are_invalid_argument_and_the_server_keeps_serving() {
    let mut server = TestServer::start_with(|c| c.max_wait_ms = 200).await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let invalid = |err: log_client::Error, field: &str| {
        assert_eq!(
            (err.code(), err.reason()),
            (Code::InvalidArgument, Some("INVALID_REQUEST")),
            "{field}: {err}"
        );
        assert_eq!(err.metadata("field"), Some(field), "{err}");
    };
    let subscribe = |heartbeat: prost_types::Duration| proto::SubscribeRequest {
        topic: "t".into(),
        partition: 0,
        heartbeat_interval: Some(heartbeat),
        ..Default::default()
    };
    for heartbeat in [
        pb_duration(i64::MAX, 999_999_999),
        pb_duration(u32::MAX as i64, 0),
        pb_duration(-1, 0),
        pb_duration(0, -1),
        pb_duration(1, 1_000_000_000),
    ] {
        let err = c.subscribe(subscribe(heartbeat)).await.unwrap_err();
        invalid(err, "heartbeat_interval");
    }
    let fetch = |max_wait: prost_types::Duration| proto::FetchRequest {
        topic: "t".into(),
        partition: 0,
        max_wait: Some(max_wait),
        ..Default::default()
    };
    for max_wait in [
        pb_duration(-1, 0),
        pb_duration(0, -5),
        pb_duration(0, 2_000_000_000),
        pb_duration(i64::MAX, 0),
    ] {
        let err = c.log_service().fetch(fetch(max_wait)).await.unwrap_err();
        invalid(log_client::Error::from(err), "max_wait");
    }
    // A valid duration above the server's cap (here the longest valid
    // one, 10,000 years) is clamped to it: the documented contract.
    let started = Instant::now();
    c.log_service()
        .fetch(fetch(pb_duration(315_576_000_000, 999_999_999)))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // Timestamps outside 0001-01-01 .. 9999-12-31 or with bad nanos.
    for (seconds, nanos) in [(i64::MAX, 0), (i64::MIN, 0), (0, -1), (0, 1_000_000_000)] {
        let ts = prost_types::Timestamp { seconds, nanos };
        let mut request = produce_request("t", 0, &["a"]);
        request.records[0].timestamp = Some(ts);
        invalid(c.produce(request).await.unwrap_err(), "records.timestamp");
        // Not expressible as a `Position::Time` (milliseconds): a raw
        // request.
        let position = proto::Position {
            position: Some(proto::position::Position::Time(ts)),
            reset_policy: 0,
        };
        let err = c
            .log_service()
            .fetch(proto::FetchRequest {
                topic: "t".into(),
                partition: 0,
                position: Some(position),
                ..Default::default()
            })
            .await
            .unwrap_err();
        invalid(log_client::Error::from(err), "position.time");
    }
    // Topic config durations with bad nanos.
    for config in [
        proto::TopicConfig {
            retention: Some(pb_duration(1, 1_000_000_000)),
            ..Default::default()
        },
        proto::TopicConfig {
            segment_age: Some(pb_duration(0, -1)),
            ..Default::default()
        },
    ] {
        let err = c
            .admin_service()
            .create_topic(proto::CreateTopicRequest {
                name: "u".into(),
                partition_count: 1,
                config: Some(config),
                validate_only: false,
            })
            .await
            .unwrap_err();
        let err = log_client::Error::from(err);
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    }
    // Still serving, and a subscription with a sane heartbeat works.
    c.produce(produce_request("t", 0, &["ok"])).await.unwrap();
    let mut stream = c
        .subscribe(subscribe(pb_duration(0, 200_000_000)))
        .await
        .unwrap();
    assert!(stream.message().await.unwrap().is_some());
    server.stop().await;
}

/// Item 9: sockets that connect and never send the HTTP/2 preface are
/// closed after `handshake_timeout_ms` and free their connection slots: a
/// real client gets in although they filled the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_complete_the_http2_handshake_are_closed_and_free_their_slots() {
    use tokio::io::AsyncReadExt;
    let mut server = TestServer::start_with(|c| {
        c.max_connections = 8;
        c.handshake_timeout_ms = 1000;
    })
    .await;
    let addr = server.server.as_ref().unwrap().addr();
    // The test's own client holds one slot; these take the rest and one
    // more (accepted once a slot frees).
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let served = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            if let Ok(client) = log_client::Client::connect(format!("http://{addr}")).await
                && client.list_topics().await.is_ok()
            {
                return;
            }
        }
    })
    .await;
    assert!(
        served.is_ok(),
        "a new client was locked out by 8 idle sockets for {:?}",
        started.elapsed()
    );
    // Every idle socket was closed by the server (EOF or reset).
    for mut socket in idle {
        let mut buf = [0u8; 256];
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // the server's SETTINGS
                }
            }
        })
        .await;
        assert!(closed.is_ok(), "an idle socket is still open");
    }
    // The first client is untouched.
    server.client.list_topics().await.unwrap();
    server.stop().await;
}

/// Item 12: the server's free-space floor reaches every partition: an
/// append that would go below it is RESOURCE_EXHAUSTED, reason DISK_FULL,
/// and writes nothing; reads go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_below_the_free_space_floor_are_resource_exhausted_disk_full() {
    let mut server = TestServer::start_with(|c| c.min_free_bytes = u64::MAX / 2).await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    let err = c
        .produce(produce_request("t", 0, &["a"]))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::ResourceExhausted, Some("DISK_FULL")),
        "{err}"
    );
    assert_eq!(
        err.metadata("floor_bytes"),
        Some(&*(u64::MAX / 2).to_string())
    );
    assert_eq!(end_offset(&server, "t", 0).await, 0);
    c.fetch("t", 0, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();
    server.stop().await;
}

/// Files under `dir` this process still holds open although they were
/// deleted (`/proc/self/fd` links ending in " (deleted)").
fn deleted_files_held_open(dir: &std::path::Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = target.display().to_string();
            if target.starts_with(&dir) && target.ends_with(" (deleted)") {
                out.push(target);
            }
        }
    }
    out
}

/// The next message of a subscription within `within`: a batch, a status,
/// or `None` on timeout (heartbeats and caught-up are skipped).
async fn next_batch_or_status(
    stream: &mut tonic::Streaming<proto::SubscribeResponse>,
    within: Duration,
) -> Option<Result<Vec<u64>, tonic::Status>> {
    use proto::subscribe_response::Event;
    let until = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(until, stream.message())
            .await
            .ok()?;
        match message {
            Ok(Some(m)) => match m.event {
                Some(Event::Batch(b)) => {
                    return Some(Ok(b.records.into_iter().map(|r| r.offset).collect()));
                }
                _ => continue,
            },
            Ok(None) => panic!("subscription ended without a status"),
            Err(status) => return Some(Err(status)),
        }
    }
}

async fn subscribe_caught_up(
    c: &log_client::Client,
    topic: &str,
) -> tonic::Streaming<proto::SubscribeResponse> {
    use proto::subscribe_response::Event;
    let mut stream = c
        .subscribe(proto::SubscribeRequest {
            topic: topic.into(),
            partition: 0,
            position: Some(Position::Earliest.into()),
            heartbeat_interval: Some(pb_duration(0, 200_000_000)),
            ..Default::default()
        })
        .await
        .unwrap();
    loop {
        if let Event::CaughtUp(_) = stream.message().await.unwrap().unwrap().event.unwrap() {
            return stream;
        }
    }
}

/// Item 13: DeleteTopic ends the topic's open subscriptions at once with
/// NOT_FOUND (TOPIC_NOT_FOUND), the stalled one too, and the files they
/// read are released (no deleted file stays open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_ends_its_subscriptions_with_not_found_and_releases_their_files() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    let config = TopicConfig::default()
        .with_segment_bytes(8192)
        .with_max_batch_bytes(4096);
    c.create_topic("t", 1, config).await.unwrap();
    let value = "x".repeat(1000);
    for _ in 0..40 {
        c.produce(produce_request("t", 0, &[&value])).await.unwrap();
    }
    let mut tailing = subscribe_caught_up(&c, "t").await;
    // A stalled subscriber: opened, never read (its channel fills up).
    let stalled = c
        .subscribe(proto::SubscribeRequest {
            topic: "t".into(),
            partition: 0,
            position: Some(Position::Earliest.into()),
            max_batch_bytes: 1024,
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    c.delete_topic("t").await.unwrap();
    let err = next_batch_or_status(&mut tailing, Duration::from_secs(3))
        .await
        .expect("the subscription is still open 3 s after its topic was deleted")
        .unwrap_err();
    let err = log_client::Error::from(err);
    assert_eq!(
        (err.code(), err.reason()),
        (Code::NotFound, Some("TOPIC_NOT_FOUND"))
    );
    let mut stalled = stalled;
    let mut ended = None;
    while let Some(r) = next_batch_or_status(&mut stalled, Duration::from_secs(3)).await {
        if let Err(status) = r {
            ended = Some(status.code());
            break;
        }
    }
    assert_eq!(
        ended,
        Some(Code::NotFound),
        "the stalled subscription ends too"
    );
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let held = deleted_files_held_open(&server.data_dir());
        if held.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "deleted files still open: {held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// Item 13: a Fetch long-polling on a topic answers NOT_FOUND as soon as
/// the topic is deleted, not at the end of its max_wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_polling_fetch_answers_not_found_promptly_when_its_topic_is_deleted() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    c.produce(produce_request("t", 0, &["one"])).await.unwrap();
    let reader = {
        let c = c.clone();
        tokio::spawn(async move {
            let options = FetchOptions::default().with_max_wait(Duration::from_secs(20));
            c.fetch("t", 0, Position::Latest, &options).await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deleted = Instant::now();
    c.delete_topic("t").await.unwrap();
    let err = tokio::time::timeout(Duration::from_secs(3), reader)
        .await
        .expect("the fetch still waits 3 s after its topic was deleted")
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::NotFound, Some("TOPIC_NOT_FOUND"))
    );
    assert!(deleted.elapsed() < Duration::from_secs(3));
    server.stop().await;
}

/// Item 13: a topic deleted and created again under the same name is a
/// new topic to the old topic's readers: the old subscription ends with
/// NOT_FOUND and never delivers the new topic's records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_never_continues_on_a_topic_created_again_under_the_same_name() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    c.produce(produce_request("t", 0, &["old0", "old1"]))
        .await
        .unwrap();
    let mut old = subscribe_caught_up(&c, "t").await;
    c.delete_topic("t").await.unwrap();
    c.create_topic("t", 1, Default::default()).await.unwrap();
    for i in 0..5 {
        c.produce(produce_request("t", 0, &[&format!("new{i}")]))
            .await
            .unwrap();
    }
    match next_batch_or_status(&mut old, Duration::from_secs(3)).await {
        Some(Err(status)) => assert_eq!(status.code(), Code::NotFound),
        Some(Ok(offsets)) => panic!("the old subscription delivered the new topic's {offsets:?}"),
        None => panic!("the old subscription is still open 3 s after its topic was deleted"),
    }
    // A new subscription reads the new topic.
    let fetched = c
        .fetch("t", 0, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();
    assert_eq!(fetched.records.len(), 5);
    server.stop().await;
}
