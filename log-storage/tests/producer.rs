//! The idempotent producer: retries of one of the last five batches get
//! their original offsets and write nothing; gaps and stale epochs are
//! refused; the state survives clean and unclean restarts and rolls.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use log_format::ProducerInfo;
use log_storage::{AppendOptions, Appended, Error, Log, LogConfig, RealFs};
use tempfile::TempDir;

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.limits.max_batch_bytes = 4096;
    config.index_interval_bytes = 256;
    config
}

fn batch(producer_id: i64, epoch: i16, sequence: i32, records: u32) -> BytesMut {
    common::batch_of(
        0,
        (0..records).map(|i| format!("p{producer_id} s{} ", sequence + i as i32)),
        Some(ProducerInfo {
            producer_id,
            producer_epoch: epoch,
            base_sequence: sequence,
        }),
    )
}

fn open(dir: &Path) -> Log {
    Log::open(Arc::new(RealFs), dir, config()).unwrap()
}

fn send(
    log: &Log,
    producer: i64,
    epoch: i16,
    sequence: i32,
    records: u32,
) -> Result<Appended, Error> {
    log.append(
        batch(producer, epoch, sequence, records),
        AppendOptions::default(),
    )
}

#[test]
fn a_retry_gets_the_original_offsets_and_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path());
    let first = send(&log, 1, 0, 0, 3).unwrap();
    let second = send(&log, 1, 0, 3, 2).unwrap();
    let end = log.watermarks().log_end;
    let retry = send(&log, 1, 0, 0, 3).unwrap();
    assert_eq!(
        (retry.base_offset, retry.last_offset),
        (first.base_offset, first.last_offset)
    );
    assert_eq!(retry.append_time, first.append_time);
    assert!(retry.duplicate && !first.duplicate && !second.duplicate);
    assert_eq!(
        send(&log, 1, 0, 3, 2).unwrap().base_offset,
        second.base_offset
    );
    assert_eq!(log.watermarks().log_end, end, "nothing written");
    // Another producer has its own sequences.
    assert_eq!(send(&log, 2, 0, 0, 1).unwrap().base_offset, end);
}

#[test]
fn gaps_and_stale_epochs_are_refused_and_write_nothing() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path());
    send(&log, 1, 5, 0, 2).unwrap();
    let end = log.watermarks().log_end;
    assert!(matches!(
        send(&log, 1, 5, 7, 1),
        Err(Error::OutOfOrderSequence {
            producer_id: 1,
            expected: 2,
            found: 7
        })
    ));
    assert!(matches!(
        send(&log, 1, 4, 2, 1),
        Err(Error::ProducerFenced {
            producer_id: 1,
            epoch: 4,
            current_epoch: 5
        })
    ));
    assert_eq!(log.watermarks().log_end, end);
    // A new epoch restarts at 0 and fences the old one.
    send(&log, 1, 6, 0, 1).unwrap();
    assert!(matches!(
        send(&log, 1, 5, 2, 1),
        Err(Error::ProducerFenced { .. })
    ));
}

#[test]
fn only_the_last_five_batches_are_recognised_as_retries() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path());
    for seq in 0..6 {
        send(&log, 9, 0, seq, 1).unwrap();
    }
    assert!(matches!(
        send(&log, 9, 0, 0, 1),
        Err(Error::OutOfOrderSequence { expected: 6, .. })
    ));
    assert_eq!(send(&log, 9, 0, 1, 1).unwrap().base_offset, 1);
}

#[test]
fn producer_state_survives_restarts_and_rolls() {
    let tmp = TempDir::new().unwrap();
    let mut acks = Vec::new();
    {
        let log = open(tmp.path());
        for seq in 0..40 {
            acks.push(send(&log, 3, 1, seq * 2, 2).unwrap());
        }
        log.close().unwrap();
    }
    {
        // Clean restart: the snapshot.
        let log = open(tmp.path());
        assert_eq!(
            send(&log, 3, 1, 78, 2).unwrap().base_offset,
            acks[39].base_offset
        );
        for seq in 40..60 {
            acks.push(send(&log, 3, 1, seq * 2, 2).unwrap());
        }
        // Dropped without close: a crash.
    }
    let log = open(tmp.path());
    let segments = common::segment_files(tmp.path());
    assert!(segments >= 2, "the log rolled");
    let retry = send(&log, 3, 1, 118, 2).unwrap();
    assert_eq!(
        retry.base_offset, acks[59].base_offset,
        "the snapshot plus the replay know the last batch"
    );
    assert!(matches!(
        send(&log, 3, 1, 200, 1),
        Err(Error::OutOfOrderSequence { expected: 120, .. })
    ));
    assert_eq!(
        send(&log, 3, 1, 120, 1).unwrap().base_offset,
        acks[59].last_offset + 1
    );
}
