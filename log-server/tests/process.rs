//! The real `log-server` binary as a child process: kill -9 under four
//! concurrent producers (every acked record survives byte for byte, offsets
//! stay dense, appends continue at the end), bad input (right code and
//! reason, nothing on disk changes), and SIGTERM (exit 0).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{ServerProcess, listing};
use log_client::proto;
use log_client::{Client, FetchOptions, Isolation, Position};
use tempfile::TempDir;
use tonic::Code;

const PARTITIONS: u32 = 2;
const ITERATIONS: usize = 20;

type Acked = Arc<Mutex<BTreeMap<(u32, u64), Bytes>>>;

/// Reads a whole partition (written isolation) and checks that offsets are
/// dense from the log start and that every acked record is there.
async fn verify(client: &Client, acked: &Acked) -> [u64; PARTITIONS as usize] {
    let mut ends = [0; PARTITIONS as usize];
    let acked = acked.lock().unwrap().clone();
    for p in 0..PARTITIONS {
        let mut next = 0;
        let mut stored = BTreeMap::new();
        loop {
            let page = client
                .fetch(
                    "k",
                    p,
                    Position::Offset(next),
                    &FetchOptions::default()
                        .with_isolation(Isolation::Written)
                        .with_max_bytes(4 << 20),
                )
                .await
                .unwrap();
            if page.records.is_empty() {
                assert_eq!(next, page.watermarks.unwrap().log_end_offset);
                break;
            }
            for r in page.records {
                assert_eq!(r.offset, next, "offsets are dense");
                next += 1;
                stored.insert(r.offset, r.value.unwrap());
            }
        }
        for ((partition, offset), value) in acked.range((p, 0)..(p + 1, 0)) {
            assert_eq!(
                stored.get(offset),
                Some(value),
                "acked record {partition}/{offset} lost or changed"
            );
        }
        ends[p as usize] = next;
    }
    ends
}

async fn produce_until_error(client: Client, producer: u32, ack: proto::Ack, acked: Acked) {
    let partition = producer % PARTITIONS;
    for seq in 0u64.. {
        let records: Vec<proto::Record> = (0..1 + seq % 20)
            .map(|i| proto::Record {
                value: Some(Bytes::from(format!(
                    "p{producer}-s{seq}-r{i}-{}",
                    "x".repeat(((seq * 37 + i) % 300) as usize)
                ))),
                ..Default::default()
            })
            .collect();
        let request = proto::ProduceRequest {
            topic: "k".into(),
            partition: Some(partition),
            records: records.clone(),
            ack: ack as i32,
            ..Default::default()
        };
        match client.produce(request).await {
            Ok(response) => {
                let mut map = acked.lock().unwrap();
                for (i, record) in records.into_iter().enumerate() {
                    map.insert(
                        (partition, response.base_offset + i as u64),
                        record.value.unwrap(),
                    );
                }
            }
            Err(_) => return,
        }
    }
}

async fn kill_9_loop(ack: proto::Ack) {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let acked: Acked = Arc::default();
    for iteration in 0..ITERATIONS {
        let server = ServerProcess::spawn(&data, &[]);
        let client = server.client().await;
        let ends = if iteration == 0 {
            client
                .create_topic("k", PARTITIONS, Default::default())
                .await
                .unwrap();
            [0; PARTITIONS as usize]
        } else {
            verify(&client, &acked).await
        };
        let producers: Vec<_> = (0..4)
            .map(|producer| {
                let (client, acked) = (client.clone(), Arc::clone(&acked));
                tokio::spawn(produce_until_error(client, producer, ack, acked))
            })
            .collect();
        // Let some appends land, then check they continued at the end.
        tokio::time::sleep(Duration::from_millis(100 + (iteration as u64 * 53) % 250)).await;
        {
            let map = acked.lock().unwrap();
            for p in 0..PARTITIONS {
                if let Some(((_, first), _)) = map.range((p, ends[p as usize])..(p + 1, 0)).next() {
                    assert_eq!(*first, ends[p as usize], "appends continue at the end");
                }
            }
        }
        server.kill9();
        for producer in producers {
            producer.await.unwrap();
        }
    }
    let server = ServerProcess::spawn(&data, &[]);
    let client = server.client().await;
    let ends = verify(&client, &acked).await;
    let next = client
        .produce(proto::ProduceRequest {
            topic: "k".into(),
            partition: Some(0),
            records: vec![proto::Record {
                value: Some(Bytes::from_static(b"after")),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(next.base_offset, ends[0]);
    assert!(
        acked.lock().unwrap().len() > 100,
        "the producers made progress"
    );
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_four_producers_keeps_every_durable_ack() {
    kill_9_loop(proto::Ack::Durable).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_four_producers_keeps_every_written_ack() {
    // kill -9 is a process crash: the kernel keeps written pages, so
    // WRITTEN acks survive it too (not a power loss).
    kill_9_loop(proto::Ack::Written).await;
}

/// An encoded batch of one record whose total size is `size` bytes.
fn batch_of_size(size: usize) -> Bytes {
    let unlimited = log_format::Limits::unlimited();
    let mut value_len = size.saturating_sub(100);
    loop {
        let mut builder = log_format::BatchBuilder::new(unlimited);
        builder
            .push(&log_format::NewRecord::value(0, &vec![7u8; value_len]))
            .unwrap();
        let batch = builder.finish().unwrap();
        match batch.len().cmp(&size) {
            std::cmp::Ordering::Equal => return batch,
            std::cmp::Ordering::Less => value_len += size - batch.len(),
            std::cmp::Ordering::Greater => value_len -= 1,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_right_code_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let limit = 64 * 1024;
    let server = ServerProcess::spawn(
        &data,
        &[
            "--max-batch-bytes",
            "65536",
            "--max-request-bytes",
            "131072",
        ],
    );
    let client = server.client().await;
    client
        .create_topic("t", 1, Default::default())
        .await
        .unwrap();
    let produce = |batch: Bytes| proto::ProduceRequest {
        topic: "t".into(),
        partition: Some(0),
        encoded_batch: batch,
        ..Default::default()
    };
    // Exactly the limit is accepted.
    client.produce(produce(batch_of_size(limit))).await.unwrap();
    let before = listing(&data);
    let end = || async {
        client.get_topic("t").await.unwrap().partitions[0]
            .watermarks
            .log_end_offset
    };
    assert_eq!(end().await, 1);
    let expect = |result: Result<proto::ProduceResponse, log_client::Error>, code, reason| {
        let err = result.unwrap_err();
        assert_eq!((err.code(), err.reason()), (code, Some(reason)), "{err}");
    };

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
        let err = client
            .create_topic(name, 1, Default::default())
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), err.reason()),
            (Code::InvalidArgument, Some("INVALID_TOPIC_NAME")),
            "{name:?}"
        );
        let err = client
            .produce(proto::ProduceRequest {
                topic: name.into(),
                partition: Some(0),
                records: vec![proto::Record::default()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::NotFound),
            "{name:?}: {err}"
        );
    }
    // One byte over the batch limit.
    expect(
        client.produce(produce(batch_of_size(limit + 1))).await,
        Code::InvalidArgument,
        "RECORD_TOO_LARGE",
    );
    // Over the transport limit.
    expect(
        client.produce(produce(batch_of_size(200 * 1024))).await,
        Code::ResourceExhausted,
        "REQUEST_TOO_LARGE",
    );
    // A corrupted batch: a flipped bit in the body, and garbage.
    let mut damaged = batch_of_size(1000).to_vec();
    damaged[500] ^= 1;
    expect(
        client.produce(produce(damaged.into())).await,
        Code::InvalidArgument,
        "INVALID_BATCH",
    );
    expect(
        client.produce(produce(Bytes::from(vec![0xAB; 100]))).await,
        Code::InvalidArgument,
        "INVALID_BATCH",
    );
    // Offsets past the end; huge max_bytes.
    let err = client
        .fetch("t", 0, Position::Offset(2), &FetchOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (Code::OutOfRange, Some("OFFSET_OUT_OF_RANGE"))
    );
    let err = client.delete_records("t", 0, 99).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange);
    let page = client
        .fetch(
            "t",
            0,
            Position::Earliest,
            &FetchOptions::default()
                .with_max_bytes(u32::MAX)
                .with_max_records(u32::MAX),
        )
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);

    assert_eq!(listing(&data), before);
    assert_eq!(end().await, 1);
    assert!(server.terminate().success(), "SIGTERM exits 0");
}

/// Anonymous resident memory of a process, in bytes (mapped files, such as
/// sealed segments read through mmap, are not counted).
fn rss_anon(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_neither_slows_producers_nor_grows_the_server() {
    let dir = TempDir::new().unwrap();
    let server = ServerProcess::spawn(&dir.path().join("data"), &[]);
    let client = server.client().await;
    client
        .create_topic("s", 1, Default::default())
        .await
        .unwrap();
    let value = Bytes::from(vec![5u8; 1000]);
    let batch: Vec<proto::Record> = (0..100)
        .map(|_| proto::Record {
            value: Some(value.clone()),
            ..Default::default()
        })
        .collect();
    let produce = || proto::ProduceRequest {
        topic: "s".into(),
        partition: Some(0),
        records: batch.clone(),
        ack: proto::Ack::Written as i32,
        ..Default::default()
    };
    client.produce(produce()).await.unwrap();
    // A subscriber from the start that never reads.
    let stalled_client = server.client().await;
    let stalled = stalled_client
        .subscribe(proto::SubscribeRequest {
            topic: "s".into(),
            partition: 0,
            position: Some(Position::Earliest.into()),
            isolation: proto::Isolation::Written as i32,
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let baseline = rss_anon(server.child.id());
    // 150 MB produced while it stalls: the producer is not held up.
    for _ in 0..1500 {
        tokio::time::timeout(Duration::from_secs(10), client.produce(produce()))
            .await
            .expect("a stalled subscriber must not block producers")
            .unwrap();
    }
    let grown = rss_anon(server.child.id()).saturating_sub(baseline);
    eprintln!(
        "server anonymous memory: {} MiB, grew by {} KiB",
        baseline >> 20,
        grown >> 10
    );
    assert!(
        grown < 64 << 20,
        "server memory grew by {} MiB with a stalled subscriber",
        grown >> 20
    );
    // The subscriber resumes and gets everything, in order.
    let mut stalled = stalled;
    let mut next = 0u64;
    while next < 1501 * 100 {
        let message = stalled.message().await.unwrap().unwrap();
        if let Some(proto::subscribe_response::Event::Batch(b)) = message.event {
            for r in b.records {
                assert_eq!(r.offset, next);
                next += 1;
            }
        }
    }
    drop(stalled);
    assert!(server.terminate().success());
}
