//! The long kill -9 loop against the real binary (issue 10): 100 restarts
//! under four idempotent producers (two DURABLE, two WRITTEN) on small
//! segments, so that rolls, retention (every 200 ms) and DeleteRecords all
//! happen between the kills. After every restart each producer first
//! retries the batch it was sending when the server died, with the same
//! sequence, then goes on.
//!
//! After every restart: offsets dense from the log start, every acked
//! record at or past the log start there byte for byte, and no record
//! stored twice (the idempotent producers' retries write nothing). It is
//! `#[ignore]`d (about two minutes); `.ci/run` runs it with `--ignored`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::ServerProcess;
use log_client::proto;
use log_client::{Client, FetchOptions, Isolation, Position, TopicConfig};
use tempfile::TempDir;

const PARTITIONS: u32 = 2;
const ITERATIONS: usize = 100;

type Acked = Arc<Mutex<BTreeMap<(u32, u64), Bytes>>>;

/// One idempotent producer, kept across restarts.
#[derive(Debug, Clone)]
struct Producer {
    id: i64,
    partition: u32,
    ack: proto::Ack,
    next_sequence: u32,
    /// The batch in flight when the server died: its base sequence and
    /// values, retried first after the restart.
    pending: Option<(u32, Vec<Bytes>)>,
    batches: u64,
}

impl Producer {
    fn request(&self, sequence: u32, values: &[Bytes]) -> proto::ProduceRequest {
        proto::ProduceRequest {
            topic: "k".into(),
            partition: Some(self.partition),
            records: values
                .iter()
                .map(|value| proto::Record {
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .collect(),
            ack: self.ack as i32,
            producer_id: Some(self.id),
            producer_epoch: 0,
            base_sequence: sequence,
            ..Default::default()
        }
    }

    /// Sends (the pending batch first) until the server goes away.
    async fn run(mut self, client: Client, acked: Acked) -> Producer {
        loop {
            let (sequence, values) = match self.pending.take() {
                Some(pending) => pending,
                None => {
                    let n = 1 + self.batches % 17;
                    let values: Vec<Bytes> = (0..n)
                        .map(|i| {
                            Bytes::from(format!(
                                "p{}-s{}-{}",
                                self.id,
                                self.next_sequence as u64 + i,
                                "x".repeat(((self.batches * 31 + i) % 200) as usize)
                            ))
                        })
                        .collect();
                    (self.next_sequence, values)
                }
            };
            match client.produce(self.request(sequence, &values)).await {
                Ok(response) => {
                    let mut map = acked.lock().unwrap();
                    for (i, value) in values.iter().enumerate() {
                        map.insert(
                            (self.partition, response.base_offset + i as u64),
                            value.clone(),
                        );
                    }
                    self.next_sequence = sequence + values.len() as u32;
                    self.batches += 1;
                }
                Err(_) => {
                    self.pending = Some((sequence, values));
                    return self;
                }
            }
        }
    }
}

/// Reads every partition from its log start; checks density, every acked
/// record at or past the start, and that no value is stored twice.
async fn verify(client: &Client, acked: &Acked, iteration: usize) -> u64 {
    let acked = acked.lock().unwrap().clone();
    let mut total = 0;
    for p in 0..PARTITIONS {
        let mut seen: HashMap<Bytes, u64> = HashMap::new();
        let first = client
            .fetch("k", p, Position::Earliest, &FetchOptions::default())
            .await
            .unwrap();
        let mut start = first.watermarks.unwrap().log_start_offset;
        let mut next = start;
        loop {
            let fetched = client
                .fetch(
                    "k",
                    p,
                    Position::Offset(next),
                    &FetchOptions::default()
                        .with_isolation(Isolation::Written)
                        .with_max_bytes(4 << 20),
                )
                .await;
            let page = match fetched {
                Ok(page) => page,
                // Retention (every 200 ms) moved the start past the scan:
                // what lies below it is gone on purpose; go on from there.
                Err(err) if err.code() == tonic::Code::OutOfRange => {
                    let moved: u64 = err.metadata("log_start_offset").unwrap().parse().unwrap();
                    assert!(moved > next, "iteration {iteration}: {err:?}");
                    seen.retain(|_, offset| *offset >= moved);
                    (start, next) = (moved, moved);
                    continue;
                }
                Err(err) => panic!("iteration {iteration}: fetch from {p} at {next}: {err:?}"),
            };
            if page.records.is_empty() {
                break;
            }
            for r in page.records {
                assert_eq!(
                    r.offset, next,
                    "iteration {iteration}: offsets dense in {p}"
                );
                let value = r.value.unwrap();
                if let Some(before) = seen.insert(value.clone(), r.offset) {
                    panic!(
                        "iteration {iteration}: {value:?} stored twice in {p}, at {before} and {}",
                        r.offset
                    );
                }
                next += 1;
            }
        }
        for ((_, offset), value) in acked.range((p, start)..(p + 1, 0)) {
            assert_eq!(
                seen.get(value),
                Some(offset),
                "iteration {iteration}: acked record {p}/{offset} lost or moved"
            );
        }
        total += next - start;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 100 kill -9 restarts; .ci/run runs it"]
async fn kill_9_loop_with_rolls_retention_delete_records_and_idempotent_retries() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let acked: Acked = Arc::default();
    let mut producers: Vec<Producer> = (0..4)
        .map(|i| Producer {
            id: 1000 + i,
            partition: i as u32 % PARTITIONS,
            ack: if i < 2 {
                proto::Ack::Durable
            } else {
                proto::Ack::Written
            },
            next_sequence: 0,
            pending: None,
            batches: 0,
        })
        .collect();
    let flags = [
        "--retention-interval-ms",
        "200",
        "--flush-interval-ms",
        "100",
    ];
    let mut deletes = 0;
    for iteration in 0..ITERATIONS {
        let server = ServerProcess::spawn(&data, &flags);
        let client = server.client().await;
        if iteration == 0 {
            let config = TopicConfig::default()
                .with_segment_bytes(16 * 1024)
                .with_retention_bytes(192 * 1024)
                .with_max_batch_bytes(8 * 1024);
            client.create_topic("k", PARTITIONS, config).await.unwrap();
        } else {
            verify(&client, &acked, iteration).await;
        }
        let tasks: Vec<_> = producers
            .drain(..)
            .map(|producer| tokio::spawn(producer.run(client.clone(), Arc::clone(&acked))))
            .collect();
        tokio::time::sleep(Duration::from_millis(60 + (iteration as u64 * 53) % 200)).await;
        if iteration % 3 == 1 {
            let p = (iteration as u32 / 3) % PARTITIONS;
            let page = client
                .fetch("k", p, Position::Earliest, &FetchOptions::default())
                .await
                .unwrap();
            let marks = page.watermarks.unwrap();
            let target = marks.log_start_offset
                + (marks
                    .durable_end_offset
                    .saturating_sub(marks.log_start_offset))
                    / 3;
            if client.delete_records("k", p, target).await.is_ok() {
                deletes += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis((iteration as u64 * 29) % 100)).await;
        server.kill9();
        for task in tasks {
            producers.push(task.await.unwrap());
        }
    }
    let server = ServerProcess::spawn(&data, &flags);
    let client = server.client().await;
    let stored = verify(&client, &acked, ITERATIONS).await;
    // Every pending retry resolves to its original offsets or a new append.
    for producer in producers.drain(..) {
        let producer = tokio::time::timeout(Duration::from_secs(30), async {
            let mut producer = producer;
            if let Some((sequence, values)) = producer.pending.take() {
                let response = client
                    .produce(producer.request(sequence, &values))
                    .await
                    .unwrap();
                let mut map = acked.lock().unwrap();
                for (i, value) in values.iter().enumerate() {
                    map.insert(
                        (producer.partition, response.base_offset + i as u64),
                        value.clone(),
                    );
                }
            }
            producer
        })
        .await
        .unwrap();
        assert!(
            producer.batches > 20,
            "producer {} made progress",
            producer.id
        );
    }
    verify(&client, &acked, ITERATIONS + 1).await;
    assert!(
        stored > 0 && deletes > 10,
        "{stored} records stored, {deletes} deletes"
    );
    assert!(server.terminate().success());
}
