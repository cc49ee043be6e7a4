//! I/O errors at every operation of a workload: each run fails the n-th
//! file system operation (EIO, ENOSPC or a short write), for every n the
//! workload performs. Whatever fails, nothing acknowledged is lost, no
//! partial batch is ever visible, the error is typed, and the log either
//! keeps taking appends (a failed write is cut back) or refuses them as
//! poisoned (a failed sync) until reopened, which recovers it.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use log_storage::{Ack, AppendOptions, Error, FaultKind, Isolation, Log, LogConfig, SimFs};

use common::Keep;

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.index_interval_bytes = 256;
    config.limits.max_batch_bytes = 4096;
    config
}

fn encode(batch: u64, records: u64) -> (BytesMut, Vec<Vec<u8>>) {
    let values: Vec<Vec<u8>> = (0..records)
        .map(|r| {
            let mut value = format!("b{batch}r{r}").into_bytes();
            value.resize(40 + (batch as usize * 37) % 200, b'x');
            value
        })
        .collect();
    (common::batch_of(1_700_000_000_000, &values, None), values)
}

/// Runs the workload; returns the acknowledged records (offset -> value)
/// and whether an operation failed.
fn workload(log: &Log, acked: &mut BTreeMap<u64, Vec<u8>>) -> Option<Error> {
    for batch in 0..24u64 {
        if batch % 7 == 6
            && let Err(err) = log.roll_now()
        {
            return Some(err);
        }
        let (bytes, values) = encode(batch, 1 + batch % 4);
        let ack = if batch % 3 == 0 {
            Ack::Written
        } else {
            Ack::Durable
        };
        match log.append(
            bytes,
            AppendOptions {
                ack,
                ..AppendOptions::default()
            },
        ) {
            Ok(appended) => {
                for (i, value) in values.into_iter().enumerate() {
                    acked.insert(appended.base_offset + i as u64, value);
                }
            }
            Err(err) => return Some(err),
        }
    }
    None
}

/// Every record the log serves, from its start to its end.
fn read_all(log: &Log) -> BTreeMap<u64, Vec<u8>> {
    common::read_values(log, Keep::All, "reading the whole log")
}

fn check_errors_are_typed(err: &Error) {
    assert!(
        matches!(
            err,
            Error::Io { .. } | Error::Poisoned { .. } | Error::Index { .. }
        ),
        "unexpected error kind: {err:?}"
    );
}

fn run(kind: FaultKind, n: u64, dir: &Path) {
    let fs = SimFs::new();
    let mut acked = BTreeMap::new();
    // A poisoned partition keeps only what its last successful sync made
    // durable: WRITTEN acks past it are cut on reopen (with the epoch).
    let mut trusted_end = None;
    let failure = common::restart_after(&fs, |fs| {
        fs.fail_nth(n, kind);
        match Log::open(Arc::new(fs.clone()), dir, config()) {
            Ok(log) => {
                let failure = workload(&log, &mut acked);
                if let Some(err) = &failure {
                    check_errors_are_typed(err);
                    // After the failure the log either goes on or is poisoned.
                    let (bytes, values) = encode(99, 2);
                    match log.append(bytes, AppendOptions::default()) {
                        Ok(appended) => {
                            for (i, value) in values.into_iter().enumerate() {
                                acked.insert(appended.base_offset + i as u64, value);
                            }
                        }
                        Err(Error::Poisoned { .. }) => {
                            trusted_end = Some(log.watermarks().durable_end);
                        }
                        Err(Error::ReadOnly { .. }) => {}
                        Err(other) => {
                            panic!(
                                "{kind:?} at op {n}: unexpected error after the fault: {other:?}"
                            )
                        }
                    }
                    // What the log serves now holds every ack, nothing partial.
                    let now = read_all(&log);
                    for (offset, value) in &acked {
                        assert_eq!(
                            now.get(offset),
                            Some(value),
                            "{kind:?} at op {n}: ack {offset} not served"
                        );
                    }
                }
                failure
            }
            Err(err) => {
                check_errors_are_typed(&err);
                Some(err)
            }
        }
    });
    let _ = failure;
    // A reopen recovers the partition, with every ack byte for byte.
    let log = common::reopen(
        format_args!("{kind:?} at op {n}"),
        None,
        Log::open(Arc::new(fs.clone()), dir, config()),
    );
    let found = read_all(&log);
    let marks = log.watermarks();
    let offsets: Vec<u64> = found.keys().copied().collect();
    assert_eq!(
        offsets,
        (marks.log_start..marks.log_end).collect::<Vec<_>>(),
        "{kind:?} at op {n}: offsets not dense"
    );
    for (offset, value) in &acked {
        if trusted_end.is_some_and(|end| *offset >= end) {
            assert!(
                found.get(offset) == Some(value) || marks.epoch > 0,
                "{kind:?} at op {n}: written ack {offset} past a failed sync cut without an epoch"
            );
            continue;
        }
        assert_eq!(
            found.get(offset),
            Some(value),
            "{kind:?} at op {n}: ack {offset} lost after reopen"
        );
    }
    let appended = log
        .append(encode(100, 1).0, AppendOptions::default())
        .unwrap();
    assert_eq!(appended.base_offset, marks.log_end);
}

#[test]
fn every_operation_of_a_workload_may_fail_without_losing_an_ack() {
    let dir = Path::new("/data/t/0");
    // Count the operations of the workload without faults.
    let fs = SimFs::new();
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    let mut acked = BTreeMap::new();
    assert!(workload(&log, &mut acked).is_none());
    let total = fs.op_count();
    drop(log);
    assert!(
        total > 100,
        "the workload does real work ({total} operations)"
    );
    for kind in [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite] {
        for n in 0..total {
            run(kind, n, dir);
        }
    }
}

#[test]
fn a_failed_fsync_poisons_the_partition_until_reopened() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    let first = log
        .append(encode(0, 2).0, AppendOptions::default())
        .unwrap();
    fs.fail_syncs(true);
    let err = log
        .append(encode(1, 2).0, AppendOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    fs.fail_syncs(false);
    // No retry of the fsync: later appends are refused, reads still work.
    let err = log
        .append(encode(2, 1).0, AppendOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    let read = log.read(0, 1 << 20, Isolation::Durable).unwrap();
    assert_eq!(
        read.next_offset,
        first.last_offset + 1,
        "reads serve up to the durable end"
    );
    drop(log);
    let log = Log::open(Arc::new(fs), dir, config()).unwrap();
    let appended = log
        .append(encode(3, 1).0, AppendOptions::default())
        .unwrap();
    assert!(appended.base_offset >= 2);
}

#[test]
fn a_full_disk_refuses_appends_and_they_resume_when_space_returns() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    log.append(encode(0, 2).0, AppendOptions::default())
        .unwrap();
    fs.set_capacity(Some(fs.used_bytes() + 100));
    let before = log.watermarks();
    let err = log
        .append(encode(1, 3).0, AppendOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull),
        "{err:?}"
    );
    assert_eq!(log.watermarks().log_end, before.log_end, "nothing appended");
    assert_eq!(read_all(&log).len() as u64, before.log_end);
    fs.set_capacity(None);
    let appended = log
        .append(encode(2, 1).0, AppendOptions::default())
        .unwrap();
    assert_eq!(
        appended.base_offset, before.log_end,
        "appends resume without a restart"
    );
}

/// An append of batch 1 (3 records) to `log` is refused by the 10,000-byte
/// free-space floor, with nothing written.
fn assert_refused_below_the_floor(fs: &SimFs, log: &Log) {
    let used = fs.used_bytes();
    let err = log
        .append(encode(1, 3).0, AppendOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, Error::DiskFull { floor: 10_000, .. }),
        "{err:?}"
    );
    assert_eq!(fs.used_bytes(), used, "nothing written");
}

#[test]
fn the_free_space_floor_refuses_appends_early_and_lets_them_resume() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let mut config = config();
    config.min_free_bytes = Some(10_000);
    let log = Log::open(Arc::new(fs.clone()), dir, config).unwrap();
    log.append(encode(0, 2).0, AppendOptions::default())
        .unwrap();
    fs.set_capacity(Some(fs.used_bytes() + 10_100));
    let before = log.watermarks().log_end;
    assert_refused_below_the_floor(&fs, &log);
    assert_eq!(log.watermarks().log_end, before);
    fs.set_capacity(None);
    assert_eq!(
        log.append(encode(2, 1).0, AppendOptions::default())
            .unwrap()
            .base_offset,
        before
    );
}

#[test]
fn a_clean_reopen_scans_nothing_whatever_the_log_size() {
    let mut ops = Vec::new();
    for batches in [10u64, 400] {
        let dir = Path::new("/data/t/0");
        let fs = SimFs::new();
        let log = Log::open(Arc::new(fs.clone()), dir, LogConfig::default()).unwrap();
        for batch in 0..batches {
            log.append(encode(batch, 3).0, AppendOptions::default())
                .unwrap();
        }
        log.close().unwrap();
        drop(log);
        let before = fs.op_count();
        let log = Log::open(Arc::new(fs.clone()), dir, LogConfig::default()).unwrap();
        ops.push(fs.op_count() - before);
        assert_eq!(log.watermarks().log_end, batches * 3);
        assert_eq!(read_all(&log).len() as u64, batches * 3);
    }
    assert_eq!(
        ops[0], ops[1],
        "file operations of a clean open must not grow with the log"
    );
}

#[test]
fn a_clean_reopen_trusts_the_marker_and_reads_still_refuse_damage() {
    use log_storage::{Fs, OpenMode};
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let log = Log::open(Arc::new(fs.clone()), dir, LogConfig::default()).unwrap();
    for batch in 0..50 {
        log.append(encode(batch, 3).0, AppendOptions::default())
            .unwrap();
    }
    log.close().unwrap();
    drop(log);
    // Damage the last byte of the last batch behind the log's back.
    let path = dir.join("00000000000000000000.log");
    let file = fs.open(&path, OpenMode::ReadWrite).unwrap();
    let len = file.len().unwrap();
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, len - 1).unwrap();
    file.write_all_at(&[byte[0] ^ 1], len - 1).unwrap();
    drop(file);
    // The clean open scans nothing, so it does not see the damage...
    let log = Log::open(Arc::new(fs.clone()), dir, LogConfig::default()).unwrap();
    assert_eq!(log.watermarks().log_end, 150);
    // ...but a read of that batch verifies it and refuses to serve it.
    let err = log.read(149, 1 << 20, Isolation::Durable).unwrap_err();
    assert!(matches!(err, Error::Corruption { .. }), "{err:?}");
}

/// With `free_space_check_interval` set, a free-space reading stands for
/// that long (less what the partition wrote since): a floor crossed by
/// someone else meanwhile is seen at the next reading, and a reading that
/// says the floor would be crossed is always taken again.
#[test]
fn a_free_space_reading_stands_for_its_interval_then_is_taken_again() {
    let fs = SimFs::new();
    let open = |dir: &str, interval_ms: u64| {
        let mut config = config();
        config.min_free_bytes = Some(10_000);
        config.free_space_check_interval = std::time::Duration::from_millis(interval_ms);
        Log::open(Arc::new(fs.clone()), Path::new(dir), config).unwrap()
    };
    // A reading that stands for a minute: another writer fills the disk,
    // and this append is not refused (it fits on the disk).
    let standing = open("/data/t/0", 60_000);
    standing
        .append(encode(0, 2).0, AppendOptions::default())
        .unwrap();
    fs.set_capacity(Some(fs.used_bytes() + 10_100));
    standing
        .append(encode(1, 1).0, AppendOptions::default())
        .unwrap();
    fs.set_capacity(None);
    // A reading that stands 50 ms: past it the space is read again, and
    // the append is refused with nothing written.
    let short = open("/data/t/1", 50);
    short
        .append(encode(0, 2).0, AppendOptions::default())
        .unwrap();
    fs.set_capacity(Some(fs.used_bytes() + 10_100));
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_refused_below_the_floor(&fs, &short);
    // A reading below the floor is never trusted: with room again, appends
    // go on at once.
    fs.set_capacity(None);
    short
        .append(encode(1, 1).0, AppendOptions::default())
        .unwrap();
}
