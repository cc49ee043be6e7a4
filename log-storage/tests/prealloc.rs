//! The zeroed runway ahead of the active segment
//! (`LogConfig::preallocate_bytes`): zeros are written ahead of the log and
//! never read, rolls and clean closes cut them so files end at their last
//! batch, a crash's leftover runway is cut by recovery without moving the
//! epoch, and zeros where a synced batch was are corruption, never a
//! runway. The crash harness with a runway is in `crash.rs`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use log_storage::{Ack, AppendOptions, Error, Fs, Log, LogConfig, OpenMode, SimFs};

use common::Keep;

fn config(prealloc: u64) -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 64 << 10;
    config.limits.max_batch_bytes = 8 << 10;
    config.preallocate_bytes = prealloc;
    config
}

fn durable() -> AppendOptions {
    AppendOptions::default()
}

fn written() -> AppendOptions {
    AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    }
}

/// Every `.log` file under `dir` with its live length.
fn log_lengths(fs: &SimFs, dir: &Path) -> BTreeMap<PathBuf, u64> {
    fs.live_snapshot()
        .into_iter()
        .filter(|(path, _)| path.starts_with(dir) && path.extension().is_some_and(|e| e == "log"))
        .map(|(path, bytes)| (path, bytes.len() as u64))
        .collect()
}

/// Appends batches `from..to` (3 records of 200 bytes each) with `options`.
fn append(log: &Log, from: u64, to: u64, options: AppendOptions) {
    for batch in from..to {
        log.append(common::encode(batch, 3, 200, None), options)
            .unwrap();
    }
}

#[test]
fn zeros_are_kept_ahead_of_the_log_and_never_read() {
    let fs = SimFs::new();
    let dir = Path::new("/p");
    let log = Log::open(Arc::new(fs.clone()), dir, config(16 << 10)).unwrap();
    append(&log, 0, 5, written());
    let live = fs.live_file(&dir.join("00000000000000000000.log")).unwrap();
    let logged = log.usage().unwrap().size_bytes;
    assert!(
        live.len() as u64 >= logged + (8 << 10),
        "a runway of at least half the setting: file {} B, log {logged} B",
        live.len()
    );
    assert!(
        live[logged as usize..].iter().all(|&b| b == 0),
        "the runway is zeros"
    );
    let values = common::read_values(&log, Keep::All, "runway");
    assert_eq!(values.len(), 15, "exactly the records appended");
    assert_eq!(values[&14], common::value(4, 2, 200));
}

#[test]
fn rolls_and_a_clean_close_leave_files_as_long_as_without_a_runway() {
    // The same appends with and without a runway: once closed, every
    // segment file has the same length (append times differ, sizes not).
    let lengths = |prealloc: u64| {
        let fs = SimFs::new();
        let dir = Path::new("/p");
        let log = Log::open(Arc::new(fs.clone()), dir, config(prealloc)).unwrap();
        append(&log, 0, 200, written());
        let before = log_lengths(&fs, dir);
        log.close().unwrap();
        (before, log_lengths(&fs, dir))
    };
    let (open_plain, closed_plain) = lengths(0);
    let (open_runway, closed_runway) = lengths(16 << 10);
    assert!(
        closed_plain.len() > 2,
        "the appends rolled: {closed_plain:?}"
    );
    assert_eq!(closed_runway, closed_plain);
    // While open, only the active segment is longer: sealed ones were cut
    // at their roll.
    let active = closed_plain.keys().last().unwrap();
    for (path, len) in &open_runway {
        if path == active {
            assert!(*len > open_plain[path], "the active segment has a runway");
        } else {
            assert_eq!(
                *len,
                open_plain[path],
                "{} was cut at its roll",
                path.display()
            );
        }
    }
}

#[test]
fn a_crash_leaves_a_runway_that_recovery_cuts_without_moving_the_epoch() {
    let fs = SimFs::new();
    let dir = Path::new("/p");
    let (end, epoch) = common::restart_after(&fs, |fs| {
        let log = Log::open(Arc::new(fs.clone()), dir, config(16 << 10)).unwrap();
        append(&log, 0, 20, durable());
        let marks = log.watermarks();
        (marks.log_end, marks.epoch)
    });
    let path = dir.join("00000000000000000000.log");
    let runway = fs.live_file(&path).unwrap().len();
    let log = Log::open(Arc::new(fs.clone()), dir, config(0)).unwrap();
    let marks = log.watermarks();
    assert_eq!(marks.log_end, end, "every batch is back");
    assert_eq!(marks.epoch, epoch, "zeros are not a torn tail");
    let len = fs.live_file(&path).unwrap().len() as u64;
    assert!(
        len < runway as u64,
        "recovery cut the runway: {len} of {runway}"
    );
    assert_eq!(
        len,
        log.usage().unwrap().size_bytes,
        "the file ends at its last batch"
    );
    append(&log, 20, 21, durable());
    assert_eq!(common::read_values(&log, Keep::All, "after").len(), 63);
}

#[test]
fn zeros_where_a_synced_batch_was_are_corruption_not_a_runway() {
    let fs = SimFs::new();
    let dir = Path::new("/p");
    let path = dir.join("00000000000000000000.log");
    let (last_batch_at, logged) = common::restart_after(&fs, |fs| {
        let log = Log::open(Arc::new(fs.clone()), dir, config(16 << 10)).unwrap();
        append(&log, 0, 9, durable());
        let at = log.usage().unwrap().size_bytes;
        append(&log, 9, 10, durable());
        (at, log.usage().unwrap().size_bytes)
    });
    // The disk lost the last synced batch's bytes (zeros where it was).
    let file = fs.open(&path, OpenMode::ReadWrite).unwrap();
    let zeros = vec![0u8; (logged - last_batch_at) as usize];
    file.write_all_at(&zeros, last_batch_at).unwrap();
    file.sync_data().unwrap();
    drop(file);
    let on_disk = fs.live_file(&path).unwrap().len();
    let log = Log::open(Arc::new(fs.clone()), dir, config(16 << 10)).unwrap();
    match log.append(common::encode(10, 1, 10, None), durable()) {
        Err(Error::ReadOnly { source, .. }) => {
            let text = source.to_string();
            assert!(
                text.contains(&last_batch_at.to_string()),
                "the damage names its position: {text}"
            );
        }
        other => panic!("expected read-only, got {other:?}"),
    }
    let values = common::read_values(&log, Keep::All, "damaged");
    assert_eq!(values.len(), 27, "the batches before the damage are served");
    assert_eq!(
        fs.live_file(&path).unwrap().len(),
        on_disk,
        "nothing was cut"
    );
}

#[test]
fn a_batch_larger_than_a_quarter_of_the_runway_adds_none() {
    // Large batches pay their sync in data: zeros ahead would be written
    // twice for nothing.
    let fs = SimFs::new();
    let dir = Path::new("/p");
    let log = Log::open(Arc::new(fs.clone()), dir, config(8 << 10)).unwrap();
    log.append(common::encode(0, 3, 1000, None), written())
        .unwrap();
    let live = fs.live_file(&dir.join("00000000000000000000.log")).unwrap();
    assert_eq!(live.len() as u64, log.usage().unwrap().size_bytes);
    append(&log, 1, 2, written());
    let live = fs.live_file(&dir.join("00000000000000000000.log")).unwrap();
    assert!(live.len() as u64 > log.usage().unwrap().size_bytes);
}
