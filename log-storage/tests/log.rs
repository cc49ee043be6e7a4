//! The partition log on the real file system: appends and reads across
//! rolls, ack levels, clean and unclean reopen, torn tails, corruption,
//! bad input, and group commit under concurrent writers.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use log_format::{Batch, BytesScanner, Limits, Scanned};
use log_storage::{Ack, AppendOptions, Error, Isolation, Log, LogConfig, RealFs};
use tempfile::TempDir;

fn small_segments() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 16 * 1024;
    config.index_interval_bytes = 512;
    config.limits.max_batch_bytes = 8 * 1024;
    config
}

fn batch(first: u64, records: usize) -> BytesMut {
    common::batch_of(
        1_700_000_000_000,
        (0..records).map(|i| format!("record {}", first + i as u64)),
        None,
    )
}

fn open(dir: &Path, config: LogConfig) -> Log {
    Log::open(Arc::new(RealFs), dir, config).unwrap()
}

/// Reads every record from `from` to the end, as (offset, value) pairs.
fn read_all(log: &Log, from: u64, isolation: Isolation) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let result = log.read(offset, 4096, isolation).unwrap();
        if result.batch_count == 0 {
            break;
        }
        for scanned in BytesScanner::new(result.batches.clone(), 0, Limits::default()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("read returned a bad batch: {scanned:?}");
            };
            for record in batch.records() {
                if record.offset() >= offset {
                    out.push((
                        record.offset(),
                        String::from_utf8(record.value().unwrap().to_vec()).unwrap(),
                    ));
                }
            }
        }
        offset = result.next_offset;
    }
    out
}

fn expected(range: std::ops::Range<u64>) -> Vec<(u64, String)> {
    range.map(|o| (o, format!("record {o}"))).collect()
}

fn segment_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

#[test]
fn appends_get_dense_offsets_and_read_back_across_rolls() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), small_segments());
    let mut next = 0;
    for _ in 0..200 {
        let ack = log
            .append(batch(next, 10), AppendOptions::default())
            .unwrap();
        assert_eq!(ack.base_offset, next);
        assert_eq!(ack.last_offset, next + 9);
        assert_eq!(ack.ack, Ack::Durable);
        assert!(ack.durable_end >= next + 10);
        next += 10;
    }
    assert!(segment_files(tmp.path()).len() > 3, "the log rolled");
    assert_eq!(segment_files(tmp.path())[0], "00000000000000000000.log");
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..2000));
    // Reads can start anywhere, including inside a batch and a segment.
    for start in [0, 1, 9, 10, 555, 1234, 1999] {
        assert_eq!(
            read_all(&log, start, Isolation::Durable),
            expected(start..2000),
            "from {start}"
        );
    }
    let marks = log.watermarks();
    assert_eq!(
        (
            marks.log_start,
            marks.log_end,
            marks.durable_end,
            marks.epoch
        ),
        (0, 2000, 2000, 0)
    );
}

#[test]
fn a_read_returns_at_least_one_batch_even_past_max_bytes() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), small_segments());
    log.append(batch(0, 50), AppendOptions::default()).unwrap();
    let result = log.read(0, 1, Isolation::Durable).unwrap();
    assert_eq!(result.batch_count, 1);
    assert_eq!(result.next_offset, 50);
}

#[test]
fn written_acks_are_invisible_to_durable_reads_until_synced() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), small_segments());
    let options = AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    };
    let ack = log.append(batch(0, 5), options).unwrap();
    assert_eq!(ack.ack, Ack::Written);
    assert_eq!(
        log.read(0, 1 << 20, Isolation::Durable)
            .unwrap()
            .batch_count,
        0
    );
    assert_eq!(
        log.read(0, 1 << 20, Isolation::Written)
            .unwrap()
            .batch_count,
        1
    );
    assert_eq!(log.sync().unwrap(), 5);
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..5));
}

#[test]
fn reopens_at_the_same_end_after_clean_close_and_after_a_crash() {
    let tmp = TempDir::new().unwrap();
    {
        let log = open(tmp.path(), small_segments());
        for i in 0..100 {
            log.append(batch(i * 7, 7), AppendOptions::default())
                .unwrap();
        }
        log.close().unwrap();
        assert!(matches!(
            log.append(batch(0, 1), AppendOptions::default()),
            Err(Error::Closed { .. })
        ));
    }
    {
        let log = open(tmp.path(), small_segments());
        assert_eq!(log.watermarks().log_end, 700);
        log.append(batch(700, 7), AppendOptions::default()).unwrap();
        // Dropped without close: the next open scans the last segment.
    }
    let log = open(tmp.path(), small_segments());
    assert_eq!(log.watermarks().log_end, 707);
    assert_eq!(log.watermarks().epoch, 0);
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..707));
    let ack = log.append(batch(707, 3), AppendOptions::default()).unwrap();
    assert_eq!(ack.base_offset, 707);
}

#[test]
fn a_torn_tail_is_cut_at_every_byte_of_the_last_three_batches() {
    let tmp = TempDir::new().unwrap();
    let mut config = LogConfig::default();
    config.index_interval_bytes = 256;
    let log_name = "00000000000000000000.log";
    {
        let log = open(tmp.path(), config.clone());
        for i in 0..17 {
            log.append(batch(i * 4, 4), AppendOptions::default())
                .unwrap();
        }
        // The last three are only written: a crash may tear them.
        let written = AppendOptions {
            ack: Ack::Written,
            ..AppendOptions::default()
        };
        for i in 17..20 {
            log.append(batch(i * 4, 4), written).unwrap();
        }
    }
    // Snapshot the directory as the crash left it.
    let pristine: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect();
    let full = pristine
        .iter()
        .find(|(p, _)| p.ends_with(log_name))
        .unwrap()
        .1
        .clone();
    // Offsets 68..80 all print with two digits: the last three batches have
    // the same length.
    let batch_len = batch(68, 4).len();
    let synced_len = full.len() - 3 * batch_len;
    for len in synced_len..full.len() {
        for entry in std::fs::read_dir(tmp.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (path, bytes) in &pristine {
            std::fs::write(path, bytes).unwrap();
        }
        let path = tmp.path().join(log_name);
        std::fs::write(&path, &full[..len]).unwrap();
        let log = open(tmp.path(), config.clone());
        let whole_batches = (len - synced_len) / batch_len;
        let end = 68 + 4 * whole_batches as u64;
        let marks = log.watermarks();
        assert_eq!(marks.log_end, end, "file cut to {len}");
        let cut = !(len - synced_len).is_multiple_of(batch_len);
        // A torn part that is all zeros reads as a preallocated runway,
        // which is cut without moving the epoch (`recovery.rs`). A batch
        // starts with its frame CRC, so a one-byte tail is zero in about
        // one run in 256.
        let kept = synced_len + whole_batches * batch_len;
        let zeros = full[kept..len].iter().all(|&b| b == 0);
        assert_eq!(
            marks.epoch >= 1,
            cut && !zeros,
            "a cut of a torn batch bumps the epoch (file cut to {len})"
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            synced_len + whole_batches * batch_len
        );
        assert_eq!(read_all(&log, 0, Isolation::Written), expected(0..end));
        // The log continues at the recovered end.
        assert_eq!(
            log.append(batch(end, 4), AppendOptions::default())
                .unwrap()
                .base_offset,
            end
        );
    }
}

#[test]
fn a_file_shorter_than_its_synced_length_is_reported_not_cut() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("00000000000000000000.log");
    {
        let log = open(tmp.path(), LogConfig::default());
        for i in 0..5 {
            log.append(batch(i * 4, 4), AppendOptions::default())
                .unwrap();
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let log = open(tmp.path(), LogConfig::default());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        bytes.len() - 10,
        "nothing cut"
    );
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..16));
    assert!(matches!(
        log.append(batch(16, 1), AppendOptions::default()),
        Err(Error::ReadOnly { .. })
    ));
}

#[test]
fn corruption_before_a_valid_batch_is_not_cut_and_makes_the_partition_read_only() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("00000000000000000000.log");
    let first_len = batch(0, 3).len();
    {
        let log = open(tmp.path(), LogConfig::default());
        for i in 0..3 {
            log.append(batch(i * 3, 3), AppendOptions::default())
                .unwrap();
        }
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let len_before = bytes.len();
    bytes[first_len + 100] ^= 0x04; // inside the second batch's records
    std::fs::write(&path, &bytes).unwrap();
    let log = open(tmp.path(), LogConfig::default());
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        len_before,
        "nothing cut"
    );
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..3));
    let err = log
        .append(batch(9, 1), AppendOptions::default())
        .unwrap_err();
    assert!(matches!(err, Error::ReadOnly { .. }), "{err}");
}

#[test]
fn bad_batches_change_nothing() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), small_segments());
    log.append(batch(0, 2), AppendOptions::default()).unwrap();
    let size = std::fs::metadata(tmp.path().join("00000000000000000000.log"))
        .unwrap()
        .len();
    let mut flipped = batch(2, 2);
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(
        log.append(flipped, AppendOptions::default()),
        Err(Error::InvalidBatch { .. })
    ));
    let whole = batch(2, 2);
    let torn = BytesMut::from(&whole[..whole.len() - 3]);
    assert!(matches!(
        log.append(torn, AppendOptions::default()),
        Err(Error::IncompleteBatch { needed: 3 })
    ));
    let mut doubled = batch(2, 2);
    doubled.extend_from_slice(&batch(4, 1));
    assert!(matches!(
        log.append(doubled, AppendOptions::default()),
        Err(Error::InvalidBatch { .. })
    ));
    assert!(matches!(
        log.append(BytesMut::new(), AppendOptions::default()),
        Err(Error::IncompleteBatch { .. })
    ));
    let mut tight = small_segments();
    tight.limits.max_records = 1;
    drop(log);
    let log = open(tmp.path(), tight);
    let err = log
        .append(batch(2, 2), AppendOptions::default())
        .unwrap_err();
    assert!(err.is_limit(), "{err}");
    assert_eq!(
        std::fs::metadata(tmp.path().join("00000000000000000000.log"))
            .unwrap()
            .len(),
        size
    );
    assert_eq!(log.watermarks().log_end, 2);
}

#[test]
fn a_conditional_append_with_the_wrong_end_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), small_segments());
    log.append(batch(0, 2), AppendOptions::default()).unwrap();
    let options = AppendOptions {
        expected_end_offset: Some(5),
        ..AppendOptions::default()
    };
    let err = log.append(batch(2, 1), options).unwrap_err();
    assert!(matches!(
        err,
        Error::ConditionFailed {
            expected: 5,
            actual: 2
        }
    ));
    let options = AppendOptions {
        expected_end_offset: Some(2),
        ..AppendOptions::default()
    };
    assert_eq!(log.append(batch(2, 1), options).unwrap().base_offset, 2);
}

#[test]
fn reads_outside_the_log_are_out_of_range() {
    let tmp = TempDir::new().unwrap();
    let log = open(tmp.path(), small_segments());
    log.append(batch(0, 2), AppendOptions::default()).unwrap();
    assert!(matches!(
        log.read(3, 100, Isolation::Durable),
        Err(Error::OffsetOutOfRange {
            requested: 3,
            log_start: 0,
            log_end: 2
        })
    ));
    assert_eq!(log.read(2, 100, Isolation::Durable).unwrap().batch_count, 0);
}

#[test]
fn damaged_or_missing_sealed_indexes_are_rebuilt() {
    let tmp = TempDir::new().unwrap();
    {
        let log = open(tmp.path(), small_segments());
        for i in 0..400 {
            log.append(batch(i * 10, 10), AppendOptions::default())
                .unwrap();
        }
        log.close().unwrap();
    }
    let mut indexes: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "index"))
        .collect();
    indexes.sort();
    std::fs::remove_file(&indexes[0]).unwrap();
    std::fs::write(&indexes[1], vec![0u8; 64]).unwrap();
    std::fs::write(&indexes[2], b"garbage").unwrap();
    std::fs::write(&indexes[3], b"").unwrap();
    let log = open(tmp.path(), small_segments());
    assert!(indexes.len() > 3);
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..4000));
    assert!(indexes[0].exists(), "the rebuilt index was written back");
}

#[test]
fn stray_temp_files_are_removed_and_unknown_files_left_alone() {
    let tmp = TempDir::new().unwrap();
    std::fs::write(tmp.path().join("epoch.tmp"), b"half").unwrap();
    std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();
    let log = open(tmp.path(), small_segments());
    log.append(batch(0, 1), AppendOptions::default()).unwrap();
    assert!(!tmp.path().join("epoch.tmp").exists());
    assert!(tmp.path().join("notes.txt").exists());
}

#[test]
fn concurrent_durable_writers_share_syncs_and_get_dense_offsets() {
    let tmp = TempDir::new().unwrap();
    let log = Arc::new(open(tmp.path(), small_segments()));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let log = log.clone();
            std::thread::spawn(move || {
                let mut offsets = Vec::new();
                for _ in 0..50 {
                    let ack = log.append(batch(0, 1), AppendOptions::default()).unwrap();
                    assert!(ack.durable_end > ack.last_offset);
                    offsets.push(ack.base_offset);
                }
                offsets
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..400).collect::<Vec<_>>());
    let result = log.read(0, 1 << 20, Isolation::Durable).unwrap();
    let count: usize = BytesScanner::new(result.batches, 0, Limits::default())
        .map(|s| match s {
            Scanned::Batch(b) => Batch::records(&b).count(),
            other => panic!("{other:?}"),
        })
        .sum();
    assert!(count > 0);
    assert_eq!(log.watermarks().durable_end, 400);
}

/// A batch that arrives as a slice of a larger shared buffer (a request
/// buffer, say) is stored stamped without being copied first: its header
/// and body go out in two writes. The bytes stored are the batch, stamped;
/// the caller's buffer is left as it was; small shared batches and owned
/// ones are stamped whole.
#[test]
fn shared_batches_are_stored_stamped_and_the_callers_buffer_is_untouched() {
    let tmp = TempDir::new().unwrap();
    let mut config = LogConfig::default();
    config.limits.max_batch_bytes = 1 << 20;
    let log = open(tmp.path(), config);
    // 200 records of ~20 bytes: past the split size.
    let big = batch(0, 400).freeze();
    assert!(big.len() > 4096, "{}", big.len());
    let small = batch(400, 3).freeze();
    let mut request = BytesMut::new();
    request.extend_from_slice(b"prefix");
    request.extend_from_slice(&big);
    request.extend_from_slice(&small);
    let request = request.freeze();
    let big_slice = request.slice(6..6 + big.len());
    let small_slice = request.slice(6 + big.len()..);
    let before = request.clone();
    let durable = AppendOptions::default();
    assert_eq!(log.append(big_slice, durable).unwrap().base_offset, 0);
    assert_eq!(log.append(small_slice, durable).unwrap().base_offset, 400);
    assert_eq!(log.append(batch(403, 2), durable).unwrap().base_offset, 403);
    assert_eq!(
        &request[..],
        &before[..],
        "the shared buffer was not stamped"
    );
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..405));
    // Reopened after an unclean stop (no marker): recovery verifies every
    // batch, headers and checksums included.
    drop(log);
    std::fs::remove_file(tmp.path().join("clean-shutdown")).ok();
    let log = open(tmp.path(), small_segments());
    assert_eq!(log.watermarks().log_end, 405);
    assert_eq!(read_all(&log, 0, Isolation::Durable), expected(0..405));
}
