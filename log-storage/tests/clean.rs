//! The log cleaner (compaction): the latest value per key at its original
//! offset, tombstones kept for `delete_retention` and then dropped,
//! idempotent producers' last batches kept whole, small segments merged,
//! the active segment never touched, readers of a replaced segment
//! finishing, and a crash at every step of a pass losing nothing it must
//! keep.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use log_format::{BatchBuilder, BytesScanner, Limits, NewRecord, ProducerInfo, Scanned};
use log_storage::{
    AppendOptions, CleanupPolicy, FaultKind, Isolation, KeyMap, Log, LogConfig, SimFs,
};

/// One record as a reader sees it.
type Seen = common::Keyed;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.index_interval_bytes = 256;
    config.limits.max_batch_bytes = 4096;
    config.cleanup.cleanup_policy = CleanupPolicy::Compact;
    config
}

fn now() -> i64 {
    log_format::now_ms()
}

/// A batch of `(key, value)` records (`None` value: a tombstone).
fn keyed(records: &[(&str, Option<&str>)], producer: Option<(i64, i32)>) -> BytesMut {
    let mut builder = BatchBuilder::new(Limits::default());
    for (key, value) in records {
        builder
            .push(&NewRecord {
                timestamp: 1_700_000_000_000,
                key: Some(key.as_bytes()),
                value: value.map(str::as_bytes),
                headers: &[],
            })
            .unwrap();
    }
    if let Some((producer_id, base_sequence)) = producer {
        builder.set_producer(ProducerInfo {
            producer_id,
            producer_epoch: 0,
            base_sequence,
        });
    }
    BytesMut::from(&builder.finish().unwrap()[..])
}

/// What a reader from the log start sees.
fn read_all(log: &Log) -> Vec<Seen> {
    common::read_keyed(log, 1 << 16)
}

fn check_reads_from_every_offset(log: &Log, seen: &[Seen]) {
    let offsets: Vec<u64> = seen.iter().map(|s| s.0).collect();
    common::check_reads_from_every_offset(log, &offsets, "after cleaning");
}

/// Appends `rounds` batches of 3 records over `keys` keys (values name
/// the round), so that most records are superseded; returns what was
/// written, by offset.
fn fill(log: &Log, rounds: usize, keys: usize) -> BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)> {
    let mut written = BTreeMap::new();
    for round in 0..rounds {
        let records: Vec<(String, String)> = (0..3)
            .map(|i| {
                let key = format!("key-{}", (round * 3 + i) % keys);
                (key, format!("value-{round}-{i}-{}", "x".repeat(40)))
            })
            .collect();
        let refs: Vec<(&str, Option<&str>)> = records
            .iter()
            .map(|(k, v)| (k.as_str(), Some(v.as_str())))
            .collect();
        let ack = log
            .append(keyed(&refs, None), AppendOptions::default())
            .unwrap();
        for (i, (k, v)) in records.into_iter().enumerate() {
            written.insert(
                ack.base_offset + i as u64,
                (k.into_bytes(), Some(v.into_bytes())),
            );
        }
    }
    written
}

/// Checks `seen` against what was `written`: offsets increase, every
/// record is the one written at its offset, and every key's latest record
/// is there.
fn check_compacted(seen: &[Seen], written: &BTreeMap<u64, (Vec<u8>, Option<Vec<u8>>)>) {
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase");
    for (offset, key, value) in seen {
        let (k, v) = &written[offset];
        assert_eq!(
            (k, v),
            (key, value),
            "the record at {offset} is the one written"
        );
    }
    let mut latest: BTreeMap<&[u8], u64> = BTreeMap::new();
    for (offset, (key, _)) in written {
        latest.insert(key, *offset);
    }
    for (key, offset) in latest {
        assert!(
            seen.iter().any(|(o, _, _)| *o == offset),
            "the latest record of {:?} (offset {offset}) is kept",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn compaction_keeps_the_latest_value_per_key_at_its_original_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    let written = fill(&log, 200, 10);
    log.roll_now().unwrap();
    let before = log.usage().unwrap();
    let mut map = KeyMap::with_memory(1 << 20);
    let report = log
        .clean(now(), &mut map)
        .unwrap()
        .expect("something to clean");
    let seen = read_all(&log);
    check_compacted(&seen, &written);
    assert!(
        seen.len() < 40,
        "superseded records are gone: {} of 600 left",
        seen.len()
    );
    assert_eq!(report.records_removed as usize, 600 - seen.len());
    let after = log.usage().unwrap();
    assert!(
        after.size_bytes < before.size_bytes / 5,
        "{before:?} -> {after:?}"
    );
    assert_eq!(log.watermarks().log_end, 600, "offsets never change");
    let stats = log.cleaner_stats(now()).unwrap();
    assert_eq!(stats.dirty_bytes, 0);
    assert_eq!(stats.passes, 1);
    assert_eq!(
        stats.bytes_reclaimed,
        report.bytes_before.saturating_sub(report.bytes_after)
    );
    // A reader in a gap gets the next record; a restart sees the same.
    let next = log.read(1, 1 << 16, Isolation::Written).unwrap();
    assert!(next.batch_count > 0);
    log.close().unwrap();
    drop(log);
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    assert_eq!(read_all(&log), seen, "the same after a restart");
    assert_eq!(
        log.cleaner_stats(now()).unwrap().cleaner_point,
        report.cleaner_point
    );
    assert!(
        log.clean(now(), &mut map).unwrap().is_none(),
        "nothing dirty"
    );
    // Groups are sized by the segments' bytes before cleaning (as Kafka's
    // cleaner does): the segments cleaned once merge at the next pass.
    let more = fill(&log, 3, 10);
    log.roll_now().unwrap();
    let cleaned_once = log.usage().unwrap().segment_count;
    log.clean(now(), &mut map).unwrap().unwrap();
    let merged = log.usage().unwrap().segment_count;
    assert!(
        merged < cleaned_once - 5,
        "small cleaned segments are merged: {cleaned_once} -> {merged}"
    );
    let mut all = written;
    for (offset, (key, value)) in more {
        all.insert(offset, (key, value));
    }
    let seen = read_all(&log);
    check_compacted(&seen, &all);
    log.close().unwrap();
    drop(log);
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    assert_eq!(read_all(&log), seen, "the same after a restart");
    check_reads_from_every_offset(&log, &seen);
}

#[test]
fn a_compacting_log_refuses_a_record_without_a_key_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    let mut builder = BatchBuilder::new(Limits::default());
    builder
        .push(&NewRecord::keyed(1_700_000_000_000, b"k", b"v"))
        .unwrap();
    builder
        .push(&NewRecord::value(1_700_000_000_000, b"no key"))
        .unwrap();
    let keyless = BytesMut::from(&builder.finish().unwrap()[..]);
    let err = log.append(keyless, AppendOptions::default()).unwrap_err();
    assert!(
        matches!(err, log_storage::Error::KeyRequired { record: 1, .. }),
        "{err}"
    );
    assert_eq!(log.watermarks().log_end, 0, "nothing written");
    // A log that only deletes takes it.
    let mut delete = config();
    delete.cleanup.cleanup_policy = CleanupPolicy::Delete;
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path().join("d"), delete).unwrap();
    let mut builder = BatchBuilder::new(Limits::default());
    builder
        .push(&NewRecord::value(1_700_000_000_000, b"no key"))
        .unwrap();
    let keyless = BytesMut::from(&builder.finish().unwrap()[..]);
    log.append(keyless, AppendOptions::default()).unwrap();
}

#[test]
fn the_active_segment_is_never_cleaned_and_a_delete_policy_log_never() {
    let tmp = tempfile::tempdir().unwrap();
    let mut delete = config();
    delete.cleanup.cleanup_policy = CleanupPolicy::Delete;
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path().join("d"), delete).unwrap();
    fill(&log, 100, 4);
    log.roll_now().unwrap();
    let mut map = KeyMap::with_memory(1 << 20);
    assert!(log.clean(now(), &mut map).unwrap().is_none());
    assert_eq!(read_all(&log).len(), 300);

    let mut big = config();
    big.segment_max_bytes = 1 << 20;
    big.limits.max_batch_bytes = 1 << 20;
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path().join("c"), big).unwrap();
    fill(&log, 20, 2);
    assert!(
        log.clean(now(), &mut map).unwrap().is_none(),
        "all in the active segment"
    );
    assert_eq!(read_all(&log).len(), 60);
}

#[test]
fn tombstones_stay_for_delete_retention_after_their_first_cleaning_then_go() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    log.append(
        keyed(&[("a", Some("1")), ("b", Some("2"))], None),
        AppendOptions::default(),
    )
    .unwrap();
    let tombstone = log
        .append(keyed(&[("a", None)], None), AppendOptions::default())
        .unwrap()
        .base_offset;
    fill(&log, 40, 5);
    log.roll_now().unwrap();
    let mut map = KeyMap::with_memory(1 << 20);
    let t0 = now();
    log.clean(t0, &mut map).unwrap().unwrap();
    let seen = read_all(&log);
    assert!(
        seen.iter()
            .any(|(o, k, v)| *o == tombstone && k == b"a" && v.is_none()),
        "the tombstone stays"
    );
    assert!(
        !seen.iter().any(|(o, _, _)| *o == 0),
        "a's old value is gone"
    );
    // New dirty data, cleaned before the horizon: the tombstone stays.
    fill(&log, 40, 5);
    log.roll_now().unwrap();
    log.clean(t0 + DAY_MS - 1, &mut map).unwrap().unwrap();
    assert!(read_all(&log).iter().any(|(o, _, _)| *o == tombstone));
    // After the horizon: gone, and nothing of `a` is left.
    fill(&log, 40, 5);
    log.roll_now().unwrap();
    let report = log.clean(t0 + DAY_MS + 1, &mut map).unwrap().unwrap();
    assert_eq!(report.tombstones_removed, 1);
    assert!(!read_all(&log).iter().any(|(_, k, _)| k == b"a"));
}

/// A value kept by a cleaning although a later tombstone supersedes it
/// (it is the last record of its segment) keeps that tombstone in later
/// passes too, past the tombstone's horizon: the deleted key never comes
/// back. (Found by `clean_model`: the tombstone went at the next pass and
/// the old value was served again.)
#[test]
fn a_tombstone_stays_while_an_older_value_of_its_key_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    let options = AppendOptions::default();
    // Values large enough that the first two segments are too big to be
    // merged into one group: "b" stays the last record of its group.
    let big = "x".repeat(1400);
    log.append(keyed(&[("a", Some(&big))], None), options)
        .unwrap();
    log.append(
        keyed(&[("a", Some(&big)), ("b", Some("old"))], None),
        options,
    )
    .unwrap();
    log.roll_now().unwrap();
    log.append(keyed(&[("b", None), ("a", Some(&big))], None), options)
        .unwrap();
    log.roll_now().unwrap();
    log.append(keyed(&[("a", Some("4"))], None), options)
        .unwrap();
    let mut map = KeyMap::with_memory(1 << 20);
    let t0 = now();
    log.clean(t0, &mut map).unwrap().unwrap();
    let b_values = |log: &Log| -> Vec<Option<Vec<u8>>> {
        read_all(log)
            .into_iter()
            .filter(|(_, k, _)| k == b"b")
            .map(|(_, _, v)| v)
            .collect()
    };
    assert_eq!(b_values(&log), [Some(b"old".to_vec()), None], "first pass");
    // A later pass, past the tombstone's horizon.
    log.roll_now().unwrap();
    log.append(keyed(&[("a", Some("5"))], None), options)
        .unwrap();
    log.clean(t0 + DAY_MS + 1, &mut map).unwrap();
    let seen = b_values(&log);
    assert!(
        seen.last() == Some(&None) || seen.is_empty(),
        "b was deleted, but a reader from the start sees {seen:?}"
    );
    check_reads_from_every_offset(&log, &read_all(&log));
}

#[test]
fn idempotent_producers_keep_their_sequence_across_a_cleaning_and_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    let mut batches = Vec::new();
    for i in 0..60 {
        let value = format!("v{i}{}", "y".repeat(60));
        let batch = keyed(
            &[("k", Some(&value)), ("k", Some(&value))],
            Some((9, i * 2)),
        );
        let ack = log.append(batch.clone(), AppendOptions::default()).unwrap();
        batches.push((batch, ack));
    }
    log.append(
        keyed(&[("other", Some("z"))], None),
        AppendOptions::default(),
    )
    .unwrap();
    log.roll_now().unwrap();
    let mut map = KeyMap::with_memory(1 << 20);
    log.clean(now(), &mut map).unwrap().unwrap();
    // Drop the snapshot so the restart rebuilds producers from the log.
    log.close().unwrap();
    drop(log);
    std::fs::remove_file(tmp.path().join("producer-state")).unwrap();
    std::fs::remove_file(tmp.path().join("clean-shutdown")).unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    for (batch, ack) in &batches[batches.len() - 5..] {
        let retry = log.append(batch.clone(), AppendOptions::default()).unwrap();
        assert!(
            retry.duplicate,
            "the retry of {} is a duplicate",
            ack.base_offset
        );
        assert_eq!(retry.base_offset, ack.base_offset);
    }
    let next = log
        .append(
            keyed(&[("k", Some("next"))], Some((9, 120))),
            AppendOptions::default(),
        )
        .unwrap();
    assert!(!next.duplicate);
}

#[test]
fn a_reader_of_a_replaced_segment_finishes_on_the_old_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let fs = Arc::new(log_storage::PooledFs::new(Arc::new(log_storage::RealFs), 8));
    let log = Arc::new(Log::open(fs, tmp.path(), config()).unwrap());
    let written = fill(&log, 200, 10);
    log.roll_now().unwrap();
    let held = log.read(0, 1 << 16, Isolation::Written).unwrap();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for _ in 0..50 {
                let seen = read_all(&log);
                for (offset, key, value) in &seen {
                    assert_eq!(
                        (key, value),
                        (&written[offset].0, &written[offset].1),
                        "at {offset}"
                    );
                }
            }
        })
    };
    let mut map = KeyMap::with_memory(1 << 20);
    log.clean(now(), &mut map).unwrap().unwrap();
    reader.join().unwrap();
    // The batches read before the swap are still whole.
    let count = BytesScanner::new(held.batches, 0, Limits::unlimited())
        .filter(|s| matches!(s, Scanned::Batch(_)))
        .count();
    assert_eq!(count, held.batch_count);
}

/// A crash (a failed operation, then a power loss) at every step of a
/// cleaning pass: the reopened log serves every key's latest record, only
/// records that were written at their offsets, and a later pass cleans.
#[test]
fn a_crash_at_every_step_of_a_cleaning_loses_nothing_it_must_keep() {
    let dir = Path::new("/data/t/0");
    let mut steps = 0;
    for step in 0.. {
        let mut finished = false;
        for seed in 0..4u64 {
            let fs = SimFs::new();
            let (written, report) = common::crash_after(&fs, seed * 7919 + step, |fs| {
                let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
                let mut written = fill(&log, 120, 8);
                log.roll_now().unwrap();
                // A first pass shrinks the segments; the one that fails
                // merges them.
                log.clean(now(), &mut KeyMap::with_memory(1 << 20)).unwrap();
                written.extend(fill(&log, 30, 8));
                log.roll_now().unwrap();
                fs.fail_nth(step, FaultKind::Eio);
                let cleaned = log.clean(now(), &mut KeyMap::with_memory(1 << 20));
                finished = cleaned.is_ok() && fs.is_fault_armed();
                written
            });
            let log = common::reopen(
                format_args!("step {step} seed {seed}"),
                Some(&report),
                Log::open(Arc::new(fs.clone()), dir, config()),
            );
            assert_eq!(log.watermarks().log_end, 450, "step {step} ({report})");
            let seen = read_all(&log);
            check_compacted(&seen, &written);
            check_reads_from_every_offset(&log, &seen);
            log.clean(now(), &mut KeyMap::with_memory(1 << 20))
                .unwrap_or_else(|err| panic!("step {step}: a later pass failed: {err}"));
            let seen = read_all(&log);
            check_compacted(&seen, &written);
            assert!(seen.len() < 60, "step {step}: cleaned: {} left", seen.len());
        }
        steps = step;
        if finished {
            break;
        }
    }
    assert!(steps > 10, "a pass took {steps} operations");
}

#[test]
fn min_compaction_lag_leaves_recent_segments_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lagged = config();
    lagged.cleanup.min_compaction_lag = Duration::from_secs(3600);
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), lagged).unwrap();
    fill(&log, 100, 4);
    log.roll_now().unwrap();
    let mut map = KeyMap::with_memory(1 << 20);
    assert!(log.clean(now(), &mut map).unwrap().is_none());
    assert!(log.clean(now() + 3_600_001, &mut map).unwrap().is_some());
}

/// Found by the model test: the recovery point's two slots let a torn
/// write fall back to an older point, one that may name a position inside
/// a segment cleaned since. Recovery must not scan that segment as
/// unsynced data (it would cut it there and delete every later segment).
#[test]
fn an_old_recovery_point_inside_a_cleaned_segment_cuts_nothing() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let mut config = config();
    config.index_interval_bytes = 128;
    let open = |fs: &SimFs| Log::open(Arc::new(fs.clone()), dir, config.clone()).unwrap();
    let log = open(&fs);
    log.append(
        keyed(&[("k0", Some("o0v0:"))], None),
        AppendOptions::default(),
    )
    .unwrap();
    log.append(keyed(&[("k1", None)], None), AppendOptions::default())
        .unwrap();
    log.roll_now().unwrap();
    // The tombstone's batch gets a delete horizon: the cleaned segment is
    // longer than the old one, so the old point falls inside a batch.
    log.clean(now(), &mut KeyMap::with_memory(0))
        .unwrap()
        .unwrap();
    drop(log);
    let log = open(&fs);
    log.append(
        keyed(&[("k0", Some("o2v0:"))], None),
        AppendOptions::default(),
    )
    .unwrap();
    drop(log);
    // This seed tears the newer slot of the recovery point.
    let report = fs.crash(7_117_124_571_763_131_816);
    let log = open(&fs);
    assert_eq!(log.watermarks().log_end, 3, "{report}");
}
