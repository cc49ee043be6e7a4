//! The kill -9 loop during cleaning (issue 15): 40 restarts of the real
//! binary while two idempotent producers (one DURABLE, one WRITTEN) write
//! keyed records and tombstones to a compacted topic on small segments,
//! and the server's cleaner (looking every 20 ms, dirty ratio 1 %)
//! compacts them between the kills, and compresses their cold segments
//! (zstd, no lag), so that kills land in the middle of passes and swaps
//! of both. After each restart the producers first retry the
//! batch they were sending, with its sequence.
//!
//! After every restart, for each partition read from its start: offsets
//! increase; every record read is the one written at its offset; every
//! key's latest acked value is there at its offset; a key whose latest
//! acked record is a tombstone either still has it or has nothing older
//! left. `#[ignore]`d (about half a minute); `.ci/run` runs it with
//! `--ignored`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::ServerProcess;
use log_client::proto;
use log_client::{CleanupPolicy, Client, FetchOptions, Isolation, Position, TopicConfig};
use tempfile::TempDir;

const PARTITIONS: u32 = 2;
const ITERATIONS: usize = 40;
const KEYS: u64 = 24;

/// What was acknowledged at each offset of each partition: key and value
/// (`None`: a tombstone).
type Written = Arc<Mutex<BTreeMap<(u32, u64), (Bytes, Option<Bytes>)>>>;

/// An idempotent producer of keyed batches to one partition, kept across
/// restarts: the batch in flight when the server died is retried first,
/// with its sequence, so that after the retry every record in the log is
/// one whose offset is known.
#[derive(Debug, Clone)]
struct Producer {
    partition: u32,
    n: u64,
    sequence: i32,
    pending: Option<Vec<(Bytes, Option<Bytes>)>>,
}

impl Producer {
    fn batch(&self) -> Vec<(Bytes, Option<Bytes>)> {
        let n = self.n;
        (0..1 + n % 9)
            .map(|i| {
                let key = Bytes::from(format!("key-{}", (n + i * 7) % KEYS));
                let value = (!(n + i).is_multiple_of(23)).then(|| {
                    let pad = "v".repeat(((n * 13) % 150) as usize);
                    Bytes::from(format!("p{} n{} {pad}", self.partition, n + i))
                });
                (key, value)
            })
            .collect()
    }

    async fn send(
        &mut self,
        client: &Client,
        records: Vec<(Bytes, Option<Bytes>)>,
        written: &Written,
    ) -> bool {
        let request = proto::ProduceRequest {
            topic: "c".into(),
            partition: Some(self.partition),
            records: records
                .iter()
                .map(|(key, value)| proto::Record {
                    key: Some(key.clone()),
                    value: value.clone(),
                    ..Default::default()
                })
                .collect(),
            ack: if self.partition == 0 {
                proto::Ack::Durable
            } else {
                proto::Ack::Written
            } as i32,
            producer_id: Some(2000 + i64::from(self.partition)),
            producer_epoch: 0,
            base_sequence: self.sequence as u32,
            ..Default::default()
        };
        match client.produce(request).await {
            Ok(response) => {
                let mut map = written.lock().unwrap();
                self.sequence += records.len() as i32;
                for (i, record) in records.into_iter().enumerate() {
                    map.insert((self.partition, response.base_offset + i as u64), record);
                }
                true
            }
            Err(_) => {
                self.pending = Some(records);
                false
            }
        }
    }

    /// Retries the pending batch (true when there is none left).
    async fn retry(&mut self, client: &Client, written: &Written) -> bool {
        match self.pending.take() {
            Some(records) => self.send(client, records, written).await,
            None => true,
        }
    }

    /// Sends until the server goes away.
    async fn run(mut self, client: Client, written: Written) -> Producer {
        loop {
            let records = self.batch();
            if !self.send(&client, records, &written).await {
                return self;
            }
            self.n += 9;
        }
    }
}

/// Reads every partition from its start and checks it against `written`
/// (see the module docs); returns the records read.
async fn verify(client: &Client, written: &Written, iteration: usize) -> usize {
    let written = written.lock().unwrap().clone();
    let mut total = 0;
    for p in 0..PARTITIONS {
        let mut seen: BTreeMap<u64, (Bytes, Option<Bytes>)> = BTreeMap::new();
        let mut next = 0;
        loop {
            let page = client
                .fetch(
                    "c",
                    p,
                    Position::Offset(next),
                    &FetchOptions::default()
                        .with_isolation(Isolation::Written)
                        .with_max_bytes(4 << 20),
                )
                .await
                .unwrap_or_else(|err| {
                    panic!("iteration {iteration}: fetch {p} at {next}: {err:?}")
                });
            if page.records.is_empty() && page.next_offset <= next {
                break;
            }
            for r in page.records {
                assert!(
                    r.offset >= next,
                    "iteration {iteration}: offsets increase in {p}"
                );
                seen.insert(r.offset, (r.key.unwrap(), r.value));
            }
            next = page.next_offset;
        }
        // Every record read is the one acknowledged at its offset (the
        // producers retried their batches in flight first: every record in
        // the log was acknowledged).
        for (offset, (key, value)) in &seen {
            assert_eq!(
                written.get(&(p, *offset)),
                Some(&(key.clone(), value.clone())),
                "iteration {iteration}: record {p}/{offset}"
            );
        }
        // Every key's latest record.
        let mut latest: BTreeMap<&Bytes, (u64, &Option<Bytes>)> = BTreeMap::new();
        for ((_, offset), (key, value)) in written.range((p, 0)..(p + 1, 0)) {
            latest.insert(key, (*offset, value));
        }
        for (key, (offset, value)) in latest {
            let there = seen.contains_key(&offset);
            match value {
                Some(_) => assert!(
                    there,
                    "iteration {iteration}: the latest value of {key:?} at {p}/{offset} is gone"
                ),
                None if !there => assert!(
                    !seen.iter().any(|(o, (k, _))| k == key && *o < offset),
                    "iteration {iteration}: {key:?}'s tombstone went but an older record stayed"
                ),
                None => {}
            }
        }
        total += seen.len();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 40 kill -9 restarts during cleaning; .ci/run runs it"]
async fn kill_9_loop_during_cleaning_keeps_the_latest_value_of_every_key() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let written: Written = Arc::default();
    let flags = ["--cleaner-backoff-ms", "20", "--flush-interval-ms", "100"];
    let mut producers: Vec<Producer> = (0..PARTITIONS)
        .map(|partition| Producer {
            partition,
            n: 0,
            sequence: 0,
            pending: None,
        })
        .collect();
    let mut passes = 0;
    let mut cold = 0;
    for iteration in 0..ITERATIONS {
        let server = ServerProcess::spawn(&data, &flags);
        let client = server.client().await;
        if iteration == 0 {
            let config = TopicConfig::default()
                .with_cleanup_policy(CleanupPolicy::Compact)
                .with_segment_bytes(16 * 1024)
                .with_max_batch_bytes(8 * 1024)
                .with_min_cleanable_dirty_ratio(0.01)
                .with_delete_retention(Duration::from_millis(300))
                .with_cold_compression(log_client::Codec::Zstd, Duration::ZERO);
            client.create_topic("c", PARTITIONS, config).await.unwrap();
        } else {
            for producer in &mut producers {
                assert!(
                    producer.retry(&client, &written).await,
                    "iteration {iteration}: retry"
                );
            }
            verify(&client, &written, iteration).await;
        }
        let tasks: Vec<_> = producers
            .drain(..)
            .map(|producer| tokio::spawn(producer.run(client.clone(), Arc::clone(&written))))
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + (iteration as u64 * 53) % 250)).await;
        // Passes this life ran (the kill lands wherever the next one is).
        if let Ok(info) = client.get_topic("c").await {
            passes += info
                .partitions
                .iter()
                .map(|p| p.cleaner.passes)
                .sum::<u64>();
            cold += info
                .partitions
                .iter()
                .map(|p| p.cleaner.cold_segments)
                .sum::<u64>();
        }
        server.kill9();
        for task in tasks {
            producers.push(task.await.unwrap());
        }
    }
    let server = ServerProcess::spawn(&data, &flags);
    let client = server.client().await;
    for producer in &mut producers {
        assert!(producer.retry(&client, &written).await, "the last retry");
    }
    // Let the cleaner catch up once more, then check what it left.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = verify(&client, &written, ITERATIONS).await;
    let acked = written.lock().unwrap().len();
    let info = client.get_topic("c").await.unwrap();
    assert!(
        info.partitions.iter().all(|p| p.cleaner.cleaner_point > 0),
        "the cleaner ran: {:?}",
        info.partitions
            .iter()
            .map(|p| p.cleaner)
            .collect::<Vec<_>>()
    );
    assert!(
        stored * 2 < acked,
        "compaction kept {stored} of {acked} acked records"
    );
    assert!(
        passes >= ITERATIONS as u64,
        "{passes} cleaning passes over {ITERATIONS} lives"
    );
    assert!(
        cold > 0,
        "no cold segment compressed over {ITERATIONS} lives"
    );
    eprintln!(
        "{passes} cleaning passes and {cold} cold segments compressed over {ITERATIONS} lives; {stored} of {acked} acked records kept"
    );
    assert!(server.terminate().success());
}
