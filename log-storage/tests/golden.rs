//! A sample data directory written by an earlier build, which every later
//! build must open and read the same: `data/v2/sample-store/` (a store
//! with topic `orders` of 2 partitions over several segments, a producer
//! id, and a committed offset of group `billing`, closed cleanly), in
//! format v2. `cargo xtask fixtures` (which sets `LOG_UPDATE_FIXTURES=1`)
//! rewrites it; otherwise it is only read (from a copy: opening writes the
//! lock). `data/v1/sample-store/` is the same store in format v1, which
//! this build refuses with an error naming the file, the position and the
//! version found.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use log_format::{BatchBuilder, BytesScanner, Limits, NewRecord, ProducerInfo, Scanned};
use log_storage::{AppendOptions, Isolation, RealFs, Store, TopicConfig};

fn sample_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2/sample-store")
}

fn updating() -> bool {
    std::env::var_os("LOG_UPDATE_FIXTURES").is_some_and(|v| v == "1")
}

/// The records of partition `p`: (key, value) in offset order.
fn expected(p: u32) -> Vec<(String, String)> {
    (0..30)
        .map(|i| (format!("key-{p}-{}", i % 4), format!("value {p}/{i}")))
        .collect()
}

fn write_sample(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let store = Store::open(Arc::new(RealFs), dir, None).unwrap();
    // Every batch is rolled into a segment of its own (roll_now below).
    store
        .create_topic("orders", 2, TopicConfig::default())
        .unwrap();
    for p in 0..2 {
        let log = store.partition("orders", p).unwrap();
        for (chunk, records) in expected(p).chunks(5).enumerate() {
            let mut builder = BatchBuilder::new(Limits::default());
            if p == 1 {
                builder.set_producer(ProducerInfo {
                    producer_id: 77,
                    producer_epoch: 0,
                    base_sequence: (chunk * 5) as i32,
                });
            }
            for (i, (key, value)) in records.iter().enumerate() {
                let ts = 1_700_000_000_000 + (chunk * 5 + i) as i64;
                builder
                    .push(&NewRecord::keyed(ts, key.as_bytes(), value.as_bytes()))
                    .unwrap();
            }
            let batch = BytesMut::from(&builder.finish().unwrap()[..]);
            log.append(batch, AppendOptions::default()).unwrap();
            log.roll_now().unwrap();
        }
    }
    store
        .commit_offset("billing", "orders", 0, 12, b"m1")
        .unwrap();
    store.close().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_sample_data_directory_opens_and_reads_the_same() {
    if updating() {
        write_sample(&sample_dir());
    }
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    copy_dir(&sample_dir(), &dir);
    let store = Store::open_locked(&dir).unwrap();
    let topics = store.list_topics().unwrap();
    assert_eq!(topics.len(), 1);
    assert_eq!(
        (topics[0].name.as_str(), topics[0].partitions),
        ("orders", 2)
    );
    for p in 0..2 {
        let log = store.partition("orders", p).unwrap();
        let marks = log.watermarks();
        assert_eq!(
            (marks.log_start, marks.log_end, marks.durable_end),
            (0, 30, 30)
        );
        assert!(log.usage().unwrap().segment_count >= 6, "several segments");
        let mut got = Vec::new();
        let mut next = 0;
        while next < 30 {
            let read = log.read(next, 1 << 20, Isolation::Durable).unwrap();
            for scanned in BytesScanner::new(read.batches.clone(), 0, Limits::default()) {
                let Scanned::Batch(batch) = scanned else {
                    panic!("damaged sample batch")
                };
                for r in batch.records() {
                    got.push((
                        String::from_utf8(r.key().unwrap().to_vec()).unwrap(),
                        String::from_utf8(r.value().unwrap().to_vec()).unwrap(),
                    ));
                }
            }
            next = read.next_offset;
        }
        assert_eq!(got, expected(p));
    }
    // The idempotent producer's state survived: a retry of its last batch
    // is recognised (same offsets, nothing written).
    let log = store.partition("orders", 1).unwrap();
    let mut builder = BatchBuilder::new(Limits::default());
    builder.set_producer(ProducerInfo {
        producer_id: 77,
        producer_epoch: 0,
        base_sequence: 25,
    });
    for (i, (key, value)) in expected(1)[25..].iter().enumerate() {
        builder
            .push(&NewRecord::keyed(
                1_700_000_000_025 + i as i64,
                key.as_bytes(),
                value.as_bytes(),
            ))
            .unwrap();
    }
    let retry = log
        .append(
            BytesMut::from(&builder.finish().unwrap()[..]),
            AppendOptions::default(),
        )
        .unwrap();
    assert_eq!((retry.base_offset, retry.last_offset), (25, 29));
    assert_eq!(log.watermarks().log_end, 30);
    assert_eq!(
        store.committed_offset("billing", "orders", 0).unwrap(),
        Some((12, b"m1".to_vec()))
    );
    store.close().unwrap();
}

#[test]
fn a_version_1_data_directory_is_refused_naming_the_version() {
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("data");
    copy_dir(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/sample-store"),
        &dir,
    );
    let before = std::fs::read(dir.join("topics/orders/0/00000000000000000000.log")).unwrap();
    // A clean shutdown leaves sealed segments unscanned at open: the first
    // read of one, or the open of the active segment, finds the version.
    let err = Store::open_locked(&dir)
        .and_then(|store| {
            let log = store.partition("orders", 0)?;
            log.read(0, 1 << 20, Isolation::Durable).map(|_| ())
        })
        .unwrap_err();
    let log_storage::Error::Corruption {
        path,
        position,
        source,
    } = &err
    else {
        panic!("expected corruption, got {err}");
    };
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("log"));
    assert_eq!(*position, 0);
    assert_eq!(source.what, log_format::Defect::Version);
    assert_eq!(source.found, 1);
    // The cause, as `source()` gives it, names the version.
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert!(
        cause.as_deref().is_some_and(|c| c.contains("version 1")),
        "{cause:?}"
    );
    // Nothing was cut or rewritten.
    let after = std::fs::read(dir.join("topics/orders/0/00000000000000000000.log")).unwrap();
    assert_eq!(before, after);
}
