//! The epoch history: which crash-truncation epoch started at which offset,
//! kept across opens and power losses, and "where does epoch E end?"
//! answered from it (what Kafka's OffsetForLeaderEpoch asks).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{crash_after, encode, reopen, seeds};
use log_storage::{Ack, AppendOptions, EpochEnd, EpochStart, Error, Fs, Log, LogConfig, SimFs};

const DIR: &str = "/data/t/0";

fn open(fs: &SimFs) -> Result<Log, Error> {
    Log::open(Arc::new(fs.clone()), DIR, LogConfig::default())
}

fn written() -> AppendOptions {
    AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    }
}

fn start(epoch: u64, start_offset: u64) -> EpochStart {
    EpochStart {
        epoch,
        start_offset,
    }
}

fn end(epoch: u64, end_offset: u64) -> Option<EpochEnd> {
    Some(EpochEnd { epoch, end_offset })
}

/// A durable batch of `records`, then a WRITTEN one of 3 (lost or kept by
/// the power loss), then the process dies with the power.
fn life(fs: &SimFs, batch: u64, records: u64) {
    let log = open(fs).unwrap();
    log.append(encode(batch, records, 20, None), AppendOptions::default())
        .unwrap();
    log.append(encode(batch + 1, 3, 20, None), written())
        .unwrap();
}

#[test]
fn a_new_partition_is_in_epoch_0_from_offset_0_and_writes_no_history() {
    let fs = SimFs::new();
    let log = open(&fs).unwrap();
    assert_eq!(log.epochs(), vec![start(0, 0)]);
    assert_eq!(log.epoch_end(0), end(0, 0));
    assert_eq!(log.epoch_end(1), None);
    log.append(encode(0, 4, 10, None), AppendOptions::default())
        .unwrap();
    assert_eq!(log.epoch_end(0), end(0, 4));
    log.close().unwrap();
    assert!(fs.live_file(&Path::new(DIR).join("epoch")).is_none());
    // A clean reopen moves nothing.
    let log = open(&fs).unwrap();
    assert_eq!(log.epochs(), vec![start(0, 0)]);
}

/// Every power loss moves the epoch; the new one starts where the
/// recovered log ends, whatever the seed kept of the unsynced tail, and
/// the history of every epoch before survives the next losses.
#[test]
fn each_power_loss_starts_an_epoch_at_the_recovered_end_and_the_history_survives() {
    for seed in seeds("EPOCH_SEED", 40) {
        let fs = SimFs::new();
        let mut ends = Vec::new();
        for round in 0..3u64 {
            let (_, report) = crash_after(&fs, seed * 7 + round, |fs| life(fs, round * 10, 5));
            let log = reopen(
                format_args!("seed {seed} round {round}"),
                Some(&report),
                open(&fs),
            );
            let log_end = log.watermarks().log_end;
            ends.push(log_end);
            let history = log.epochs();
            assert_eq!(history.len() as u64, round + 2, "seed {seed}: {history:?}");
            assert_eq!(history[0], start(0, 0), "seed {seed}");
            for (i, &e) in ends.iter().enumerate() {
                assert_eq!(
                    history[i + 1],
                    start(i as u64 + 1, e),
                    "seed {seed}: {history:?}"
                );
            }
            // Each older epoch ends where the next began; the current one
            // at the log end; a future one is unknown.
            for (i, &e) in ends.iter().enumerate() {
                assert_eq!(log.epoch_end(i as u64), end(i as u64, e), "seed {seed}");
            }
            assert_eq!(log.epoch_end(round + 1), end(round + 1, log_end));
            assert_eq!(log.epoch_end(round + 2), None);
            assert_eq!(log.watermarks().epoch, round + 1);
        }
    }
}

/// An epoch whose records a crash cut, all of them, is superseded: asked
/// about, the answer is the epoch before it, ending where the cut left the
/// log, so a reader that saw the cut records finds them gone.
#[test]
fn an_epoch_whose_records_were_all_cut_is_answered_by_the_one_before() {
    let fs = SimFs::new();
    // Epoch 1 starts at 5.
    let (_, report) = crash_after(&fs, 1, |fs| {
        let log = open(fs).unwrap();
        log.append(encode(0, 5, 20, None), AppendOptions::default())
            .unwrap();
    });
    let log = reopen("first", Some(&report), open(&fs));
    assert_eq!(log.epochs(), vec![start(0, 0), start(1, 5)]);
    // Epoch 1 gets only WRITTEN records, then the sync fails: a reopen in
    // the same boot cuts them all.
    log.append(encode(1, 4, 20, None), written()).unwrap();
    fs.fail_syncs(true);
    assert!(log.sync().is_err());
    fs.fail_syncs(false);
    drop(log);
    let log = open(&fs).unwrap();
    assert_eq!(log.watermarks().log_end, 5);
    assert_eq!(log.epochs(), vec![start(0, 0), start(2, 5)]);
    assert_eq!(log.epoch_end(1), end(0, 5));
    assert_eq!(log.epoch_end(2), end(2, 5));
}

/// Entries wholly below the log start go when it moves; the one that
/// covers it stays.
#[test]
fn moving_the_log_start_drops_the_epochs_wholly_below_it() {
    let fs = SimFs::new();
    for round in 0..2u64 {
        let (_, report) = crash_after(&fs, 3, |fs| {
            let log = open(fs).unwrap();
            log.append(encode(round, 5, 20, None), AppendOptions::default())
                .unwrap();
        });
        drop(reopen("round", Some(&report), open(&fs)));
    }
    let log = open(&fs).unwrap();
    assert_eq!(log.epochs(), vec![start(0, 0), start(1, 5), start(2, 10)]);
    log.delete_records(7).unwrap();
    assert_eq!(log.epochs(), vec![start(1, 5), start(2, 10)]);
    log.delete_records(10).unwrap();
    assert_eq!(log.epochs(), vec![start(2, 10)]);
    drop(log);
    let log = open(&fs).unwrap();
    assert_eq!(log.epochs(), vec![start(2, 10)]);
    assert_eq!(log.epoch_end(2), end(2, 10));
    // Older than every entry left: itself, ending at the first start.
    assert_eq!(log.epoch_end(0), end(0, 10));
}

/// The file of earlier versions (one u64 and its CRC) reads as a history
/// of that one epoch from the log start; a damaged history is reported
/// with its file and byte, never taken as epoch 0.
#[test]
fn a_legacy_epoch_file_is_read_and_a_damaged_one_is_reported() {
    let fs = SimFs::new();
    drop(open(&fs).unwrap());
    let path = Path::new(DIR).join("epoch");
    let mut legacy = 7u64.to_le_bytes().to_vec();
    legacy.extend_from_slice(&crc32fast::hash(&legacy).to_le_bytes());
    let write = |bytes: &[u8]| {
        let _ = fs.remove_file(&path);
        let file = fs.create_new(&path).unwrap();
        file.write_all_at(bytes, 0).unwrap();
        file.sync_data().unwrap();
    };
    write(&legacy);
    let log = open(&fs).unwrap();
    assert_eq!(log.watermarks().epoch, 7);
    assert_eq!(log.epochs(), vec![start(7, 0)]);
    log.close().unwrap();
    drop(log);
    // A history, one byte flipped.
    let (_, report) = crash_after(&fs, 5, |fs| drop(open(fs).unwrap()));
    drop(reopen("history", Some(&report), open(&fs)));
    let mut history = fs.live_file(&path).unwrap();
    assert_eq!(&history[..4], b"LEPH");
    let at = history.len() - 6;
    history[at] ^= 1;
    write(&history);
    match open(&fs) {
        Err(Error::CorruptMetadata { path: p, .. }) => assert_eq!(p, path),
        other => panic!("a damaged history opened: {other:?}"),
    }
}
