//! Golden files of format version 2: bytes written by an earlier build must
//! read back the same forever. `cargo xtask fixtures` (which sets
//! `LOG_UPDATE_FIXTURES=1`) rewrites them; otherwise they are only read.
//!
//! - `data/v2/batches.bin`: three stamped frames back to back, as in a
//!   segment file, covering keys, null keys, tombstones, headers (a null
//!   header value among them), the idempotent producer fields, leader
//!   epochs and negative timestamp deltas.
//! - `data/v2/batches.txt`: what a reader must see in them.
//! - `data/v1/batches.bin`: frames of version 1 (earlier builds), which
//!   this build refuses with an error naming the version.
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use bytes::Bytes;
use log_format::{
    BatchBuilder, Limits, NewRecord, ProducerInfo, RecordHeader, Scanned, Scanner, stamp,
};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v2")
}

fn updating() -> bool {
    std::env::var_os("LOG_UPDATE_FIXTURES").is_some_and(|v| v == "1")
}

/// Builds the fixture batches with today's code.
fn build_fixture() -> Vec<u8> {
    let mut builder = BatchBuilder::new(Limits::default());
    let mut out = Vec::new();

    builder
        .push(&NewRecord::keyed(
            1_700_000_000_000,
            b"alpha",
            b"first value",
        ))
        .unwrap();
    builder
        .push(&NewRecord::value(1_700_000_000_250, b"second, no key"))
        .unwrap();
    let mut first = builder.finish().unwrap().to_vec();
    stamp(&mut first, 0, 0, 1_700_000_001_000).unwrap();
    out.extend_from_slice(&first);

    builder.set_producer(ProducerInfo {
        producer_id: 7,
        producer_epoch: 2,
        base_sequence: 40,
    });
    let headers = [
        RecordHeader {
            key: "content-type",
            value: Some(b"text/plain"),
        },
        RecordHeader {
            key: "empty",
            value: Some(b""),
        },
        RecordHeader {
            key: "null",
            value: None,
        },
    ];
    builder
        .push(&NewRecord {
            timestamp: 1_700_000_002_000,
            key: Some(b"beta"),
            value: Some(b"with headers"),
            headers: &headers,
        })
        .unwrap();
    builder
        .push(&NewRecord {
            timestamp: 1_700_000_001_500,
            key: Some(b"alpha"),
            value: None,
            headers: &[],
        })
        .unwrap();
    builder
        .push(&NewRecord {
            timestamp: 1_700_000_002_100,
            key: Some(b""),
            value: Some(b""),
            headers: &[],
        })
        .unwrap();
    let mut second = builder.finish().unwrap().to_vec();
    stamp(&mut second, 2, 1, 1_700_000_003_000).unwrap();
    out.extend_from_slice(&second);

    let big = vec![0x5a; 1000];
    builder.push(&NewRecord::value(-5, &big)).unwrap();
    let mut third = builder.finish().unwrap().to_vec();
    stamp(&mut third, 5, 1, 1_700_000_003_000).unwrap();
    out.extend_from_slice(&third);
    out
}

/// A readable rendering of every field of every batch.
fn describe(bytes: &[u8]) -> String {
    let mut out = String::new();
    for scanned in Scanner::new(bytes, 0, Limits::default()) {
        let Scanned::Batch(view) = scanned else {
            panic!("fixture does not scan: {scanned:?}");
        };
        let h = view.header();
        writeln!(
            out,
            "batch length={} base_offset={} last_offset={} leader_epoch={} append_time={} records={} \
             producer_id={} epoch={} base_sequence={} base_timestamp={} max_timestamp={} kafka_crc={:#010x}",
            h.length,
            h.base_offset,
            h.last_offset(),
            h.leader_epoch,
            h.append_time,
            h.record_count,
            h.producer_id,
            h.producer_epoch,
            h.base_sequence,
            h.base_timestamp,
            h.max_timestamp,
            h.kafka_crc
        )
        .unwrap();
        for record in view.records() {
            let show = |field: Option<&[u8]>| match field {
                None => "null".to_owned(),
                Some(bytes) if bytes.len() > 32 => format!("<{} bytes>", bytes.len()),
                Some(bytes) => format!("{:?}", String::from_utf8_lossy(bytes)),
            };
            write!(
                out,
                "  record offset={} timestamp={} key={} value={}",
                record.offset(),
                record.timestamp(),
                show(record.key()),
                show(record.value())
            )
            .unwrap();
            for (key, value) in record.headers() {
                write!(out, " header[{key:?}]={}", show(value)).unwrap();
            }
            out.push('\n');
        }
    }
    out
}

/// Rewrites the golden files when asked, once per test run, before any
/// test reads them.
fn prepare() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if updating() {
            let bytes = build_fixture();
            std::fs::create_dir_all(data_dir()).unwrap();
            std::fs::write(data_dir().join("batches.bin"), &bytes).unwrap();
            std::fs::write(data_dir().join("batches.txt"), describe(&bytes)).unwrap();
        }
    });
}

#[test]
fn v2_batches_read_back_as_written() {
    prepare();
    let bin = data_dir().join("batches.bin");
    let txt = data_dir().join("batches.txt");
    let stored = std::fs::read(&bin).expect("golden file missing: run `cargo xtask fixtures`");
    let expected = std::fs::read_to_string(&txt).unwrap();
    assert_eq!(describe(&stored), expected);
    // The owning scanner agrees on the batch boundaries.
    let batches = log_format::BytesScanner::new(Bytes::from(stored.clone()), 0, Limits::default())
        .filter(|s| matches!(s, Scanned::Batch(_)))
        .count();
    assert_eq!(batches, 3);
}

#[test]
fn todays_encoder_writes_the_v2_bytes() {
    // Encoding is deterministic and unchanged: a difference here means the
    // format changed, which needs a new version, not new fixtures.
    prepare();
    let stored = std::fs::read(data_dir().join("batches.bin"))
        .expect("golden file missing: run `cargo xtask fixtures`");
    assert_eq!(build_fixture(), stored);
}

#[test]
fn version_1_frames_are_refused_naming_the_version() {
    let v1 = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/batches.bin");
    let stored = std::fs::read(&v1).unwrap();
    let first = Scanner::new(&stored, 0, Limits::default()).next();
    let Some(Scanned::Corrupt(corrupt)) = first else {
        panic!("a v1 frame must be refused: {first:?}");
    };
    assert_eq!(corrupt.what, log_format::Defect::Version);
    assert_eq!((corrupt.expected, corrupt.found), (2, 1));
    let message = corrupt.to_string();
    assert!(message.contains("version 1"), "{message}");
    assert!(message.contains("reads version 2"), "{message}");
}
