//! Model-based test of compaction: random keyed appends and tombstones,
//! rolls, cleaning passes at a moving clock and cold-compression passes
//! (some of either failing at a random
//! operation), power losses and reopens, on the simulated file system.
//! After every step a reader from the log start must see, in offset order,
//! only records that were written at their offsets; every key's latest
//! value; every key's latest tombstone while it is inside its retention
//! window; and no record a later one of its key superseded unless the key
//! had a later record still there.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use log_format::{BatchBuilder, Limits, NewRecord};
use log_storage::{AppendOptions, CleanupPolicy, FaultKind, KeyMap, Log, LogConfig, SimFs};
use proptest::prelude::*;

/// A record's key (0..6) and value (`None`: a tombstone).
type KeyValue = (u8, Option<Vec<u8>>);

/// Tombstones stay this long after their first cleaning (ms).
const RETENTION_MS: i64 = 1000;

#[derive(Debug, Clone)]
enum Op {
    /// Records over keys `0..6`; a `None` value is a tombstone.
    Append(Vec<(u8, Option<u8>)>),
    Roll,
    /// A pass after the clock moved by `advance` ms, failing at operation
    /// `fault` if set.
    Clean {
        advance: u16,
        fault: Option<u8>,
    },
    /// A cold-compression pass, failing at operation `fault` if set.
    Compress {
        fault: Option<u8>,
    },
    Crash {
        seed: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let record = (
        0u8..6,
        prop_oneof![4 => any::<u8>().prop_map(Some), 1 => Just(None)],
    );
    prop_oneof![
        8 => prop::collection::vec(record, 1..5).prop_map(Op::Append),
        2 => Just(Op::Roll),
        3 => (0u16..1500, prop::option::weighted(0.3, any::<u8>()))
            .prop_map(|(advance, fault)| Op::Clean { advance, fault }),
        2 => prop::option::weighted(0.3, any::<u8>()).prop_map(|fault| Op::Compress { fault }),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => Just(Op::Reopen),
    ]
}

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.index_interval_bytes = 128;
    config.limits.max_batch_bytes = 4096;
    config.cleanup.cleanup_policy = CleanupPolicy::Compact;
    config.cleanup.delete_retention = Duration::from_millis(RETENTION_MS as u64);
    // Cold segments compressed as soon as they are sealed and synced.
    config.cleanup.cold_codec = log_format::Codec::Zstd;
    config.cleanup.cold_compression_lag = Duration::ZERO;
    config
}

/// Everything ever written (all acks durable), and the clock.
#[derive(Debug, Default)]
struct Model {
    /// Offset → (key, value, passes tried before it was written).
    records: BTreeMap<u64, (u8, Option<Vec<u8>>, usize)>,
    /// Times of the cleaning passes tried so far, in order.
    cleans: Vec<i64>,
    /// The cleaner's clock.
    now: i64,
}

impl Model {
    /// Checks what a reader from the log start sees.
    fn check(&self, seen: &[(u64, u8, Option<Vec<u8>>)], ctx: &str) {
        assert!(
            seen.windows(2).all(|w| w[0].0 < w[1].0),
            "{ctx}: offsets increase"
        );
        for (offset, key, value) in seen {
            let written = self.records.get(offset).map(|(k, v, _)| (k, v));
            assert_eq!(written, Some((key, value)), "{ctx}: the record at {offset}");
        }
        let mut latest: BTreeMap<u8, u64> = BTreeMap::new();
        for (offset, (key, _, _)) in &self.records {
            latest.insert(*key, *offset);
        }
        for (key, offset) in latest {
            let present = seen.iter().any(|(o, _, _)| *o == offset);
            let (_, value, passes_before) = &self.records[&offset];
            if value.is_some() {
                assert!(
                    present,
                    "{ctx}: key {key}'s latest value at {offset} is there"
                );
                continue;
            }
            // A tombstone's horizon is at least the time of the first pass
            // tried after it was written plus the retention, and it only
            // goes at a pass at or past its horizon.
            let may_be_gone = self.cleans.get(*passes_before).is_some_and(|first| {
                self.cleans[*passes_before..]
                    .iter()
                    .any(|t| *t >= first + RETENTION_MS)
            });
            assert!(
                present || may_be_gone,
                "{ctx}: key {key}'s tombstone at {offset} is inside its retention window"
            );
            if !present {
                assert!(
                    !seen.iter().any(|(_, k, _)| *k == key),
                    "{ctx}: key {key}'s tombstone went but an older record of it stayed"
                );
            }
        }
    }
}

fn batch(records: &[(u8, Option<u8>)], first_offset: u64) -> (BytesMut, Vec<KeyValue>) {
    let mut builder = BatchBuilder::new(Limits::default());
    let mut model = Vec::new();
    for (i, (key, value)) in records.iter().enumerate() {
        let key_bytes = [b'k', b'0' + key];
        let value = value.map(|v| {
            let mut bytes = format!("o{}v{v}:", first_offset + i as u64).into_bytes();
            bytes.resize(bytes.len() + usize::from(v % 64), b'.');
            bytes
        });
        builder
            .push(&NewRecord {
                timestamp: 1_700_000_000_000,
                key: Some(&key_bytes),
                value: value.as_deref(),
                headers: &[],
            })
            .unwrap();
        model.push((*key, value));
    }
    (BytesMut::from(&builder.finish().unwrap()[..]), model)
}

fn read_all(log: &Log) -> Vec<(u64, u8, Option<Vec<u8>>)> {
    common::read_keyed(log, 1 << 14)
        .into_iter()
        .map(|(offset, key, value)| (offset, key[1] - b'0', value))
        .collect()
}

fn run(ops: Vec<Op>) {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let open = |fs: &SimFs| Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    let mut log = Some(open(&fs));
    let mut model = Model {
        now: log_format::now_ms(),
        ..Model::default()
    };
    let mut map = KeyMap::with_memory(0);
    let mut history = String::new();
    for (step, op) in ops.into_iter().enumerate() {
        let mut ctx = format!("step {step} ({op:?})");
        match op {
            Op::Append(records) => {
                let current = log.as_ref().unwrap();
                let end = current.watermarks().log_end;
                let (bytes, written) = batch(&records, end);
                let ack = current.append(bytes, AppendOptions::default()).unwrap();
                assert_eq!(ack.base_offset, end);
                for (i, (key, value)) in written.into_iter().enumerate() {
                    model
                        .records
                        .insert(end + i as u64, (key, value, model.cleans.len()));
                }
            }
            Op::Roll => log.as_ref().unwrap().roll_now().unwrap(),
            Op::Clean { advance, fault } => {
                model.now += i64::from(advance);
                model.cleans.push(model.now);
                if let Some(nth) = fault {
                    fs.fail_nth(u64::from(nth), FaultKind::Eio);
                }
                let result = log.as_ref().unwrap().clean(model.now, &mut map);
                history.push_str(&format!("step {step}: clean {result:?}\n"));
                fs.disarm();
                if fault.is_some() {
                    // A failed operation may have poisoned the log or left
                    // a swap for recovery: start over from the disk.
                    drop(log.take());
                    log = Some(open(&fs));
                }
            }
            Op::Compress { fault } => {
                if let Some(nth) = fault {
                    fs.fail_nth(u64::from(nth), FaultKind::Eio);
                }
                let result = log.as_ref().unwrap().compress_cold(model.now);
                history.push_str(&format!("step {step}: compress {result:?}\n"));
                fs.disarm();
                if fault.is_some() {
                    drop(log.take());
                    log = Some(open(&fs));
                }
            }
            Op::Crash { seed } => {
                drop(log.take());
                let report = fs.crash(seed);
                ctx = format!("{ctx}: {report}");
                log = Some(open(&fs));
            }
            Op::Reopen => {
                let current = log.take().unwrap();
                current.close().unwrap();
                drop(current);
                log = Some(open(&fs));
            }
        }
        let current = log.as_ref().unwrap();
        assert_eq!(
            current.watermarks().log_end,
            model.records.len() as u64,
            "{ctx}: every durable record is there\n{history}"
        );
        let seen = read_all(current);
        model.check(&seen, &ctx);
        // A reader starting anywhere gets what a reader from the start
        // sees from there on.
        let offsets: Vec<u64> = seen.iter().map(|s| s.0).collect();
        common::check_reads_from_every_offset(current, &offsets, &ctx);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn a_reader_from_the_start_sees_the_latest_record_of_every_key(
        ops in prop::collection::vec(op(), 1..80)
    ) {
        run(ops);
    }
}
