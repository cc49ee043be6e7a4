//! Compression of cold segments (`LogConfig::cleanup.cold_codec`): sealed segments
//! older than the lag are rewritten with their plain batches compressed,
//! every record readable at its offset as before (from every offset, after
//! a reopen, after a cleaning), producers' compressed batches kept byte
//! for byte, the active segment never touched, and a crash at every step
//! of a pass losing nothing.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use log_format::{BatchBuilder, BytesScanner, Codec, Limits, NewRecord, Scanned};
use log_storage::{
    AppendOptions, CleanupPolicy, FaultKind, Isolation, KeyMap, Log, LogConfig, SimFs,
};

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 16 << 10;
    config.index_interval_bytes = 512;
    config.limits.max_batch_bytes = 16 << 10;
    config.cleanup.cold_codec = Codec::Zstd;
    config.cleanup.cold_compression_lag = Duration::ZERO;
    config
}

fn now() -> i64 {
    log_format::now_ms()
}

/// A batch of `n` JSON order events from `first` on, compressed by `codec`.
fn orders(first: u64, n: u64, codec: Codec) -> BytesMut {
    let mut builder = BatchBuilder::new(Limits::default());
    builder.set_codec(codec);
    for i in first..first + n {
        let value = format!(
            r#"{{"order_id":{i},"customer_id":"cust-{:04}","status":"created","items":[{{"sku":"sku-{}","qty":{}}}],"amount_cents":{},"currency":"EUR"}}"#,
            i % 997,
            i % 113,
            1 + i % 5,
            (i * 7919) % 100_000
        );
        let key = format!("order-{}", i % 50);
        builder
            .push(&NewRecord::keyed(
                1_700_000_000_000 + i as i64,
                key.as_bytes(),
                value.as_bytes(),
            ))
            .unwrap();
    }
    BytesMut::from(&builder.finish().unwrap()[..])
}

/// Appends `batches` batches of 20 orders (every fifth compressed by its
/// producer with lz4) and rolls; answers the bytes of the lz4 batches.
fn fill(log: &Log, batches: u64) -> Vec<Bytes> {
    let mut producer_compressed = Vec::new();
    for b in 0..batches {
        let codec = if b % 5 == 4 { Codec::Lz4 } else { Codec::None };
        let first = log.watermarks().log_end;
        log.append(orders(first, 20, codec), AppendOptions::default())
            .unwrap();
        if codec == Codec::Lz4 {
            producer_compressed.push(first);
        }
    }
    log.roll_now().unwrap();
    producer_compressed
        .into_iter()
        .map(|offset| first_batch(log, offset).1)
        .collect()
}

/// The first batch read from `offset`: its codec and bytes.
fn first_batch(log: &Log, offset: u64) -> (Codec, Bytes) {
    let read = log.read(offset, 1, Isolation::Written).unwrap();
    match BytesScanner::new(read.batches, 0, Limits::unlimited()).next() {
        Some(Scanned::Batch(batch)) => (batch.header().codec, batch.bytes().clone()),
        other => panic!("no batch at {offset}: {other:?}"),
    }
}

/// The codec of every batch, in offset order.
fn codecs(log: &Log) -> Vec<(u64, Codec)> {
    let mut out = Vec::new();
    let mut offset = log.watermarks().log_start;
    while offset < log.watermarks().log_end {
        let read = log.read(offset, 1 << 20, Isolation::Written).unwrap();
        for scanned in BytesScanner::new(read.batches, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("damage at {offset}: {scanned:?}");
            };
            out.push((batch.header().base_offset, batch.header().codec));
            offset = batch.header().last_offset() + 1;
        }
    }
    out
}

fn compress_all(log: &Log, now: i64) -> u64 {
    let mut passes = 0;
    while log.compress_cold(now).unwrap().is_some() {
        passes += 1;
    }
    passes
}

fn bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn cold_segments_are_compressed_and_read_back_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    let producer_compressed = fill(&log, 200);
    let active_base = log.watermarks().log_end;
    log.append(
        orders(log.watermarks().log_end, 20, Codec::None),
        AppendOptions::default(),
    )
    .unwrap();
    let before = common::read_keyed(&log, 1 << 16);
    let disk_before = bytes_on_disk(tmp.path());
    let passes = compress_all(&log, now());
    assert!(passes > 5, "one pass per sealed segment: {passes}");
    let disk_after = bytes_on_disk(tmp.path());
    assert!(
        disk_after * 3 < disk_before,
        "JSON shrinks: {disk_before} -> {disk_after}"
    );
    let stats = log.cleaner_stats(now()).unwrap();
    assert_eq!(stats.cold_segments, passes);
    assert!(stats.cold_bytes_saved > disk_before / 2, "{stats:?}");
    assert_eq!(stats.compressed_below, active_base);
    // Sealed segments: zstd, but for the producers' lz4 batches, byte for
    // byte. The active segment: as written.
    for (offset, codec) in codecs(&log) {
        let want = if offset >= active_base {
            Codec::None
        } else if (offset / 20) % 5 == 4 {
            Codec::Lz4
        } else {
            Codec::Zstd
        };
        assert_eq!(codec, want, "batch at {offset}");
    }
    for bytes in &producer_compressed {
        let offset = u64::from_be_bytes(bytes[16..24].try_into().unwrap());
        assert_eq!(&first_batch(&log, offset).1, bytes, "at {offset}");
    }
    assert_eq!(common::read_keyed(&log, 1 << 16), before);
    let offsets: Vec<u64> = before.iter().map(|r| r.0).collect();
    common::check_reads_from_every_offset(&log, &offsets, "after compression");
    assert_eq!(
        log.compress_cold(now()).unwrap(),
        None,
        "nothing left to do"
    );
    drop(log);
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), config()).unwrap();
    assert_eq!(common::read_keyed(&log, 1 << 16), before, "after a reopen");
    assert_eq!(
        log.compress_cold(now()).unwrap(),
        None,
        "the point persists"
    );
}

#[test]
fn the_lag_and_a_log_without_a_cold_codec_leave_segments_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut lagged = config();
    lagged.cleanup.cold_compression_lag = Duration::from_secs(3600);
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), lagged).unwrap();
    fill(&log, 40);
    assert_eq!(log.compress_cold(now()).unwrap(), None);
    assert!(log.compress_cold(now() + 3_600_001).unwrap().is_some());
    let tmp = tempfile::tempdir().unwrap();
    let mut off = config();
    off.cleanup.cold_codec = Codec::None;
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), off).unwrap();
    fill(&log, 40);
    assert_eq!(log.compress_cold(now()).unwrap(), None);
    assert!(codecs(&log).iter().all(|(_, c)| *c != Codec::Zstd));
}

#[test]
fn a_compacted_log_keeps_its_compressed_batches_compressed() {
    let tmp = tempfile::tempdir().unwrap();
    let mut compacted = config();
    compacted.cleanup.cleanup_policy = CleanupPolicy::Compact;
    let log = Log::open(Arc::new(log_storage::RealFs), tmp.path(), compacted).unwrap();
    fill(&log, 100);
    let active_base = log.watermarks().log_end;
    compress_all(&log, now());
    log.clean(now(), &mut KeyMap::with_memory(1 << 20))
        .unwrap()
        .unwrap();
    let seen = common::read_keyed(&log, 1 << 16);
    assert!(seen.len() < 200, "compacted: {} left", seen.len());
    let keys: std::collections::BTreeSet<_> = seen.iter().map(|r| r.1.clone()).collect();
    assert_eq!(keys.len(), 50, "every key's latest value stays");
    for (offset, codec) in codecs(&log) {
        if offset < active_base {
            assert_ne!(codec, Codec::None, "batch at {offset} stays compressed");
        }
    }
}

/// A crash (a failed operation, then a power loss) at every step of a
/// compression pass: the reopened log serves every record as written, and
/// a later pass finishes the work.
#[test]
fn a_crash_at_every_step_of_a_compression_loses_nothing() {
    let dir = Path::new("/data/t/0");
    let mut steps = 0;
    for step in 0.. {
        let mut finished = false;
        for seed in 0..3u64 {
            let fs = SimFs::new();
            let (before, report) = common::crash_after(&fs, seed * 7919 + step, |fs| {
                let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
                fill(&log, 30);
                // A first pass compresses one segment; the one that fails
                // the next.
                log.compress_cold(now()).unwrap().unwrap();
                let before = common::read_keyed(&log, 1 << 16);
                fs.fail_nth(step, FaultKind::Eio);
                let pass = log.compress_cold(now());
                finished = pass.is_ok() && fs.is_fault_armed();
                before
            });
            let log = common::reopen(
                format_args!("step {step} seed {seed}"),
                Some(&report),
                Log::open(Arc::new(fs.clone()), dir, config()),
            );
            assert_eq!(log.watermarks().log_end, 600, "step {step} ({report})");
            let seen = common::read_keyed(&log, 1 << 16);
            assert_eq!(seen, before, "step {step} seed {seed} ({report})");
            let offsets: Vec<u64> = seen.iter().map(|r| r.0).collect();
            common::check_reads_from_every_offset(&log, &offsets, format_args!("step {step}"));
            compress_all(&log, now());
            assert_eq!(common::read_keyed(&log, 1 << 16), before, "step {step}");
            let active_base = 600;
            assert!(
                codecs(&log)
                    .iter()
                    .all(|(o, c)| *o >= active_base || *c != Codec::None),
                "step {step}: a later pass compressed every sealed segment"
            );
        }
        steps = step;
        if finished {
            break;
        }
    }
    assert!(steps > 8, "a pass took {steps} operations");
}
