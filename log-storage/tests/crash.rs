//! Simulated power loss: thousands of seeded crashes over a workload of
//! appends (DURABLE and WRITTEN acks) and rolls, each at a seeded point of
//! the workload (the operation where an injected I/O error stops it), then a
//! seeded crash of the simulated file system and a reopen.
//!
//! After every crash: every DURABLE-acked record is present byte for byte;
//! offsets are dense; whatever lies beyond the acks is whole batches of what
//! was sent, never garbage; a retry of each of the idempotent producer's
//! last surviving batches answers its original offsets (rolls with
//! producers); and the log takes appends at the recovered end. Small index
//! spacing makes index pages reach the disk without the log pages before
//! them in many seeds.
//! The partition is a store's (`Store` over the simulated file system), so
//! consumer commits are part of the workload: a commit above the durable
//! end makes the log durable up to it first, and after every crash the
//! committed offset is the last acknowledged one (or the one whose commit
//! failed) and never points past the recovered end.
//! A failure names its seed; rerun one with `CRASH_SEED=n`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use log_storage::{Ack, AppendOptions, FaultKind, Log, SimFs, Store, TopicConfig};

use common::{Keep, Rng, value};

const SEEDS: u64 = 10_000;

fn config() -> TopicConfig {
    let mut config = TopicConfig::default();
    config.segment_max_bytes = 4096;
    config.max_batch_bytes = 4096;
    config.retention_max_bytes = Some(16 * 1024);
    config
}

fn encode(batch: u64, records: u64, len: usize) -> BytesMut {
    common::encode(batch, records, len, None)
}

/// A batch, from the idempotent producer 7 with this base sequence if any.
fn encode_as(batch: u64, records: u64, len: usize, sequence: Option<i32>) -> BytesMut {
    common::encode(batch, records, len, sequence.map(|s| (7, s)))
}

/// What the workload sent: for each offset, the value sent there and
/// whether a DURABLE ack covered it.
#[derive(Default)]
struct Sent {
    values: BTreeMap<u64, (Vec<u8>, bool)>,
    /// The largest log start a delete-records or retention call returned:
    /// a crash must not bring records below it back.
    acked_start: u64,
    /// The log start when the workload stopped: a crash must not delete
    /// past it.
    last_start: u64,
    /// The idempotent producer's batches, as sent: base offset, record
    /// count and bytes (whether or not they were acknowledged).
    producer_batches: Vec<(u64, u64, BytesMut)>,
    /// The producer's next sequence.
    next_sequence: i32,
    /// The last offset a commit acknowledged, and one whose commit failed
    /// after it (its file may or may not have been replaced).
    committed: Option<u64>,
    commit_unknown: Option<u64>,
}

/// Opens the store (small index spacing, so index pages often reach the
/// disk without the log pages before them) and its one partition,
/// creating the topic when a crash left none.
/// `prealloc`: the zeroed runway ahead of the active segment (0: none).
fn open(fs: &SimFs, prealloc: u64) -> Result<(Store, Arc<Log>), log_storage::Error> {
    let store = Store::open(Arc::new(fs.clone()), Path::new("/data"), None)?
        .with_index_interval_bytes(256)
        .with_preallocate_bytes(prealloc);
    if store.topic("topic").is_err() {
        store.create_topic("topic", 1, config())?;
    }
    let log = store.partition("topic", 0)?;
    Ok((store, log))
}

/// Runs one seed; returns how many producer retries it checked.
fn run_seed(seed: u64, prealloc: u64) -> usize {
    let fs = SimFs::new();
    let mut rng = Rng::new(seed);
    let mut sent = Sent::default();

    // Phase 1: a first life that ends at an injected failure, then power loss.
    let fail_at = rng.below(400);
    let ((), report) = common::crash_after(&fs, seed, |fs| {
        fs.fail_nth(fail_at, FaultKind::Eio);
        if let Ok((store, log)) = open(fs, prealloc) {
            workload(&store, &log, &mut rng, &mut sent, 0);
        }
    });

    // Phase 2: reopen and check.
    let (store, log) = common::reopen(
        format_args!("seed {seed}"),
        Some(&report),
        open(&fs, prealloc),
    );
    let marks = log.watermarks();
    let found = read_everything(&log, seed, &report);
    check(seed, &report, &sent, &found, marks.log_start, marks.log_end);
    check_commit(seed, &report, &sent, &store, marks.log_end);
    let retried = retry_producer_batches(&log, seed, &report, &sent, &found, marks.log_start);

    // Phase 3: the log continues at the recovered end, and that survives.
    let end = marks.log_end;
    let ack = log
        .append(encode(9_999, 2, 10), AppendOptions::default())
        .unwrap_or_else(|err| {
            panic!("seed {seed}: append after recovery failed: {err} ({report})")
        });
    assert_eq!(
        ack.base_offset, end,
        "seed {seed}: continues at the recovered end ({report})"
    );
    let ((), report) = common::crash_after(&fs, seed ^ 0xA5A5, |_| {
        drop(log);
        drop(store);
    });
    let (_store, log) = common::reopen(
        format_args!("seed {seed}"),
        Some(&report),
        open(&fs, prealloc),
    );
    assert_eq!(
        log.watermarks().log_end,
        end + 2,
        "seed {seed}: the acked append survives a second crash"
    );
    retried
}

fn workload(store: &Store, log: &Log, rng: &mut Rng, sent: &mut Sent, first_batch: u64) {
    for batch in first_batch..first_batch + 40 {
        if rng.below(8) == 0 {
            // A consumer commits anywhere up to the log end, often above
            // the durable end (it read WRITTEN records).
            let marks = log.watermarks();
            let offset = marks.log_start + rng.below(marks.log_end - marks.log_start + 1);
            match store.commit_offset("g", "topic", 0, offset, b"") {
                Ok(()) => {
                    sent.committed = Some(offset);
                    sent.commit_unknown = None;
                    // The commit made everything below it durable.
                    for (_, entry) in sent.values.range_mut(..offset) {
                        entry.1 = true;
                    }
                }
                Err(_) => {
                    sent.commit_unknown = Some(offset);
                    return;
                }
            }
        }
        let records = 1 + rng.below(6);
        let len = 1 + rng.below(300) as usize;
        let ack = if rng.below(4) == 0 {
            Ack::Written
        } else {
            Ack::Durable
        };
        if rng.below(15) == 0 && log.roll_now().is_err() {
            return;
        }
        sent.last_start = log.watermarks().log_start;
        if rng.below(12) == 0 {
            let marks = log.watermarks();
            let target = marks.log_start + rng.below(marks.log_end - marks.log_start + 1);
            let result = log.delete_records(target);
            // Even a failed call may have deleted what it took out.
            sent.last_start = log.watermarks().log_start;
            match result {
                Ok(start) => sent.acked_start = sent.acked_start.max(start),
                Err(_) => {
                    // Its outcome is unknown (the rename may have reached
                    // the disk before the directory sync failed): the start
                    // may be anywhere up to the target.
                    sent.last_start = sent.last_start.max(target);
                    return;
                }
            }
            sent.last_start = log.watermarks().log_start;
        }
        if rng.below(10) == 0 {
            let result = log.enforce_retention(i64::MAX);
            sent.last_start = log.watermarks().log_start;
            match result {
                Ok(report) => sent.acked_start = sent.acked_start.max(report.log_start),
                Err(_) => return,
            }
            sent.last_start = log.watermarks().log_start;
        }
        let end = log.watermarks().log_end;
        for r in 0..records {
            sent.values
                .entry(end + r)
                .or_insert_with(|| (value(batch, r, len), false));
        }
        let options = AppendOptions {
            ack,
            ..AppendOptions::default()
        };
        let bytes = if rng.below(2) == 0 {
            let bytes = encode_as(batch, records, len, Some(sent.next_sequence));
            sent.next_sequence += records as i32;
            sent.producer_batches.push((end, records, bytes.clone()));
            bytes
        } else {
            encode(batch, records, len)
        };
        match log.append(bytes, options) {
            Ok(appended) => {
                assert_eq!(appended.base_offset, end);
                if ack == Ack::Durable {
                    for offset in appended.base_offset..=appended.last_offset {
                        if let Some(entry) = sent.values.get_mut(&offset) {
                            entry.1 = true;
                        }
                    }
                    // Everything below the durable end is durable too.
                    for (_, entry) in sent.values.range_mut(..appended.durable_end) {
                        entry.1 = true;
                    }
                }
            }
            Err(_) => return, // the injected failure: this life ends here
        }
    }
}

/// Every record from the log start to its end, byte for byte (a record
/// without a value reads as empty).
fn read_everything(
    log: &Log,
    seed: u64,
    report: &log_storage::CrashReport,
) -> BTreeMap<u64, Vec<u8>> {
    let mut found = BTreeMap::new();
    let ctx = format!("seed {seed} ({report})");
    common::read_written(log, Keep::FromReadOffset, ctx, |offset, value| {
        found.insert(offset, value.unwrap_or_default().to_vec());
    });
    found
}

fn check(
    seed: u64,
    report: &log_storage::CrashReport,
    sent: &Sent,
    found: &BTreeMap<u64, Vec<u8>>,
    start: u64,
    end: u64,
) {
    // Retention never resurrects nor over-deletes.
    assert!(
        start >= sent.acked_start,
        "seed {seed}: log start {start} went back below {} ({report})",
        sent.acked_start
    );
    assert!(
        start <= sent.last_start.max(sent.acked_start),
        "seed {seed}: log start {start} past {} ({report})",
        sent.last_start
    );
    // Dense offsets from start to end.
    let offsets: Vec<u64> = found.keys().copied().collect();
    assert_eq!(
        offsets,
        (start..end).collect::<Vec<_>>(),
        "seed {seed}: offsets not dense ({report})"
    );
    // Every durable ack at or past the start is there, byte for byte.
    for (offset, (value, durable)) in sent.values.range(start..) {
        if *durable {
            assert_eq!(
                found.get(offset),
                Some(value),
                "seed {seed}: durable record {offset} lost or changed ({report})"
            );
        }
    }
    // Nothing else but what was sent, at its offset.
    for (offset, value) in found {
        let Some((sent_value, _)) = sent.values.get(offset) else {
            panic!("seed {seed}: record {offset} was never sent ({report})");
        };
        assert_eq!(
            value, sent_value,
            "seed {seed}: record {offset} is not what was sent ({report})"
        );
    }
}

/// The committed offset survived as acknowledged (or as the failed commit
/// after it may have left it) and never points past the recovered end.
fn check_commit(
    seed: u64,
    report: &log_storage::CrashReport,
    sent: &Sent,
    store: &Store,
    end: u64,
) {
    let committed = store
        .committed_offset("g", "topic", 0)
        .unwrap_or_else(|err| panic!("seed {seed}: committed offset unreadable: {err} ({report})"))
        .map(|(offset, _)| offset);
    assert!(
        committed == sent.committed
            || (sent.commit_unknown.is_some() && committed == sent.commit_unknown),
        "seed {seed}: committed {committed:?}, acknowledged {:?}, unknown {:?} ({report})",
        sent.committed,
        sent.commit_unknown
    );
    assert!(
        committed.is_none_or(|offset| offset <= end),
        "seed {seed}: committed {committed:?} past the recovered end {end} ({report})"
    );
}

/// The idempotent producer's last five batches that survived the crash
/// (all their records there, as sent) are remembered: a retry of each
/// writes nothing and answers its original offsets.
fn retry_producer_batches(
    log: &Log,
    seed: u64,
    report: &log_storage::CrashReport,
    sent: &Sent,
    found: &BTreeMap<u64, Vec<u8>>,
    start: u64,
) -> usize {
    let mut retried = 0;
    let survived: Vec<&(u64, u64, BytesMut)> = sent
        .producer_batches
        .iter()
        .filter(|(base, records, _)| {
            (*base..base + records).all(|o| {
                found.get(&o).is_some() && found.get(&o) == sent.values.get(&o).map(|v| &v.0)
            })
        })
        .collect();
    for (base, records, bytes) in survived.iter().rev().take(5) {
        if *base < start {
            continue;
        }
        let retry = log
            .append(bytes.clone(), AppendOptions::default())
            .unwrap_or_else(|err| {
                panic!("seed {seed}: retry of the batch at {base} failed: {err} ({report})")
            });
        assert!(
            retry.duplicate
                && retry.base_offset == *base
                && retry.last_offset == base + records - 1,
            "seed {seed}: the retry of the batch at {base} was not recognised: {retry:?} ({report})"
        );
        retried += 1;
    }
    retried
}

#[test]
fn every_durable_ack_survives_ten_thousand_crashes() {
    // `CRASH_SEED=n` reruns seed n alone, without the count below.
    let seeds = common::seeds("CRASH_SEED", SEEDS);
    let retried: usize = seeds.iter().map(|&seed| run_seed(seed, 0)).sum();
    if seeds.len() as u64 == SEEDS {
        assert!(
            retried > SEEDS as usize,
            "only {retried} producer retries were checked"
        );
    }
}

#[test]
fn every_durable_ack_survives_crashes_with_a_zeroed_runway() {
    // The same lives with zeros written ahead of the active segment (cut
    // at every roll, 2 KiB at a time in 4 KiB segments, after the batches
    // of up to 512 bytes, about half of them): a crash may
    // keep any part of a runway, its size or neither, and a torn sector may
    // land in it. `CRASH_SEED=n` reruns seed n alone.
    let seeds = common::seeds("CRASH_SEED", SEEDS / 4);
    let retried: usize = seeds.iter().map(|&seed| run_seed(seed, 2048)).sum();
    if seeds.len() as u64 == SEEDS / 4 {
        assert!(
            retried > (SEEDS / 4) as usize,
            "only {retried} producer retries were checked"
        );
    }
}
