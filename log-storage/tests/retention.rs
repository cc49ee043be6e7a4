//! Delete-records, retention by size and by age, offsets by time, and
//! waiting for offsets.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use log_storage::{AppendOptions, Error, Isolation, Log, LogConfig, RealFs};
use tempfile::TempDir;

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 8 * 1024;
    config.index_interval_bytes = 512;
    config.limits.max_batch_bytes = 8 * 1024;
    config
}

fn batch(records: usize) -> BytesMut {
    common::batch_of(0, std::iter::repeat_n([7u8; 100], records), None)
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(Arc::new(RealFs), dir, config).unwrap()
}

fn segments(dir: &Path) -> usize {
    common::segment_files(dir)
}

fn fill(log: &Log, batches: usize) {
    for _ in 0..batches {
        log.append(batch(10), AppendOptions::default()).unwrap();
    }
}

#[test]
fn delete_records_moves_the_start_and_deletes_whole_segments_below_it() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), config());
    fill(&log, 60); // 600 records over several segments
    let before = segments(tmp.path());
    assert!(before > 4);
    assert_eq!(log.delete_records(355).unwrap(), 355);
    assert_eq!(log.watermarks().log_start, 355);
    assert!(segments(tmp.path()) < before);
    match log.read(100, 1 << 20, Isolation::Durable) {
        Err(Error::OffsetOutOfRange {
            requested: 100,
            log_start: 355,
            log_end: 600,
        }) => {}
        other => panic!("{other:?}"),
    }
    let read = log.read(355, 1 << 20, Isolation::Durable).unwrap();
    assert!(read.batch_count > 0);
    assert!(matches!(
        log.delete_records(601),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        log.delete_records(10).unwrap(),
        355,
        "the start never moves back"
    );
    drop(log);
    let log = open(tmp.path(), config());
    assert_eq!(
        log.watermarks().log_start,
        355,
        "the start survives a reopen"
    );
    assert_eq!(log.watermarks().log_end, 600);
}

#[test]
fn retention_by_size_deletes_the_oldest_sealed_segments() {
    let tmp = TempDir::new().unwrap();
    let mut config = config();
    config.retention_max_bytes = Some(20 * 1024);
    let log = open(tmp.path(), config.clone());
    fill(&log, 100);
    let report = log.enforce_retention(i64::MAX).unwrap();
    assert!(!report.deleted_segments.is_empty());
    assert_eq!(report.deleted_segments[0], 0, "oldest first");
    let total: u64 = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(
        total <= 20 * 1024 + 8 * 1024,
        "at most one segment over the limit: {total}"
    );
    assert!(
        total >= 20 * 1024 - 8 * 1024,
        "not more than needed: {total}"
    );
    let marks = log.watermarks();
    assert_eq!(marks.log_start, report.log_start);
    assert_eq!(marks.log_end, 1000);
    drop(log);
    let log = open(tmp.path(), config);
    assert_eq!(log.watermarks().log_start, report.log_start);
}

#[test]
fn retention_by_age_uses_append_time_and_keeps_the_active_segment() {
    let tmp = TempDir::new().unwrap();
    let mut config = config();
    config.retention_max_age = Some(Duration::from_secs(3600));
    let log = open(tmp.path(), config.clone());
    fill(&log, 50);
    let now = log
        .append(batch(1), AppendOptions::default())
        .unwrap()
        .append_time;
    assert!(
        log.enforce_retention(now)
            .unwrap()
            .deleted_segments
            .is_empty(),
        "nothing is an hour old"
    );
    drop(log);
    // Reopened, the sealed segments' times come from their last batches.
    let log = open(tmp.path(), config);
    let report = log.enforce_retention(now + 2 * 3_600_000).unwrap();
    assert!(!report.deleted_segments.is_empty());
    assert_eq!(segments(tmp.path()), 1, "only the active segment is left");
    assert_eq!(log.watermarks().log_end, 501);
    let appended = log.append(batch(1), AppendOptions::default()).unwrap();
    assert_eq!(appended.base_offset, 501);
}

#[test]
fn readers_racing_retention_see_data_or_out_of_range_never_io_errors() {
    let tmp = TempDir::new().unwrap();
    let mut config = config();
    config.retention_max_bytes = Some(16 * 1024);
    let log = Arc::new(open(tmp.path(), config));
    fill(&log, 40);
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            for _ in 0..2000 {
                let start = log.watermarks().log_start;
                match log.read(start, 4096, Isolation::Durable) {
                    Ok(_) | Err(Error::OffsetOutOfRange { .. }) => {}
                    Err(other) => panic!("reader saw {other:?}"),
                }
            }
        })
    };
    for _ in 0..40 {
        fill(&log, 5);
        log.enforce_retention(i64::MAX).unwrap();
    }
    reader.join().unwrap();
}

#[test]
fn offset_for_time_finds_the_first_batch_at_or_after_a_time() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), config());
    let mut acks = Vec::new();
    for i in 0..40 {
        if i % 10 == 0 {
            std::thread::sleep(Duration::from_millis(3));
        }
        acks.push(log.append(batch(5), AppendOptions::default()).unwrap());
    }
    for ack in &acks {
        let expected = acks
            .iter()
            .find(|a| a.append_time >= ack.append_time)
            .unwrap()
            .base_offset;
        assert_eq!(
            log.offset_for_time(ack.append_time).unwrap(),
            Some(expected)
        );
    }
    assert_eq!(log.offset_for_time(i64::MIN).unwrap(), Some(0));
    let last = acks.last().unwrap().append_time;
    assert_eq!(log.offset_for_time(last + 1).unwrap(), None);
    drop(log);
    let log = open(tmp.path(), config());
    let first = &acks[0];
    assert_eq!(log.offset_for_time(first.append_time).unwrap(), Some(0));
}

#[test]
fn wait_for_wakes_on_appends_and_times_out_otherwise() {
    let tmp = TempDir::new().unwrap();
    let log = Arc::new(open(tmp.path(), config()));
    let marks = log.wait_for(0, Isolation::Durable, Duration::from_millis(20));
    assert_eq!(marks.log_end, 0, "timed out with nothing appended");
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.append(batch(3), AppendOptions::default()).unwrap();
        })
    };
    let marks = log.wait_for(0, Isolation::Durable, Duration::from_secs(30));
    assert!(marks.durable_end >= 3);
    writer.join().unwrap();
}

#[test]
fn lag_and_usage_count_records_bytes_and_time_from_an_offset() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), config());
    assert_eq!(log.usage().unwrap().last_append_time, None);
    assert_eq!(log.lag(0).unwrap().records, 0);
    fill(&log, 60);
    let batch_len = batch(10).len() as u64;
    let usage = log.usage().unwrap();
    assert_eq!(usage.size_bytes, 60 * batch_len);
    assert_eq!(usage.segment_count, segments(tmp.path()));
    assert!(usage.last_append_time.is_some());
    let lag = log.lag(0).unwrap();
    assert_eq!((lag.records, lag.bytes), (600, 60 * batch_len));
    // Offset 255 lies in the batch 250..=259: bytes count from that batch.
    let lag = log.lag(255).unwrap();
    assert_eq!((lag.records, lag.bytes), (345, 35 * batch_len));
    assert_eq!(log.lag(600).unwrap().bytes, 0);
    assert_eq!(log.lag(10_000).unwrap().records, 0);
    log.delete_records(100).unwrap();
    assert_eq!(log.lag(0).unwrap().records, 500);
}

#[test]
fn listeners_hear_appends_syncs_deletes_and_close() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), config());
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&heard);
    log.on_change(Arc::new(move || {
        counter.fetch_add(1, Ordering::SeqCst);
    }));
    let written = AppendOptions {
        ack: log_storage::Ack::Written,
        ..AppendOptions::default()
    };
    log.append(batch(1), written).unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 1);
    log.sync().unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 2);
    log.delete_records(1).unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 3);
    log.close().unwrap();
    assert_eq!(heard.load(Ordering::SeqCst), 4);
}
