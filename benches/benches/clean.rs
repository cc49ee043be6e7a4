//! Criterion bench of the log cleaner (`Log::clean`) on the real file
//! system: the MB/s of dirty log one pass cleans.
//!
//! Each iteration builds, untimed, a fresh log of 32 MiB of keyed JSON
//! order events (100 records a batch, WRITTEN, then rolled and synced) in
//! 8 MiB segments, and times one pass over its sealed segments: mapping
//! the keys, rewriting every segment, the swaps and their fsyncs.
//! Throughput is in bytes of the segments cleaned.
//!
//! - `clean/1k_keys`: every key written about 150 times (most records
//!   superseded: the rewrite is mostly dropping);
//! - `clean/100k_keys`: about 1.5 writes per key (most records kept: the
//!   rewrite is mostly copying, and the key map holds 100 K keys).
//!
//! The bytes cleaned and left are printed (stderr).
//!
//! Cold compression (`Log::compress_cold`, `cold.compression.type`), on a
//! log of plain JSON order events of the same shape (32 MiB, or
//! `COLD_BENCH_MIB` MiB; each iteration builds a fresh one, untimed):
//! - `cold/compress_zstd`, `cold/compress_lz4`: every sealed segment
//!   rewritten compressed, swaps and fsyncs included; throughput in bytes
//!   of plain log; the bytes on disk before and after are printed, and a
//!   measured run leaves them for the report (`EXTRA scenario=cold_…`);
//! - `cold/read_plain`, `cold/read_zstd`: a reader decoding every record
//!   from offset 0 (decompressing each batch, as gRPC's `RECORDS` format
//!   does on the server), from the page cache; throughput in records.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use log_format::{BatchBuilder, BytesScanner, Codec, Limits, NewRecord, Scanned};
use log_storage::{
    Ack, AppendOptions, CleanupPolicy, DEFAULT_KEY_MAP_BYTES, Isolation, KeyMap, Log, LogConfig,
    RealFs,
};
use tempfile::TempDir;

const LOG_BYTES: u64 = 32 << 20;

/// Bytes of the cold-compression bench's log.
fn cold_bytes() -> u64 {
    std::env::var("COLD_BENCH_MIB")
        .ok()
        .and_then(|mib| mib.parse::<u64>().ok())
        .map_or(LOG_BYTES, |mib| mib << 20)
}

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 8 << 20;
    config.cleanup.cleanup_policy = CleanupPolicy::Compact;
    config
}

/// A fresh log of about `LOG_BYTES` of events over `keys` keys, rolled and
/// synced, and the bytes of its sealed segments.
fn dirty_log(keys: u64) -> (TempDir, Log, u64) {
    filled_log(keys, config(), LOG_BYTES)
}

/// A fresh log of about `bytes` of events over `keys` keys, rolled and
/// synced, and the bytes of its sealed segments.
fn filled_log(keys: u64, config: LogConfig, bytes: u64) -> (TempDir, Log, u64) {
    let dir = tempfile::Builder::new()
        .prefix("log-clean-bench-")
        .tempdir()
        .unwrap();
    let log = Log::open(Arc::new(RealFs), dir.path(), config).unwrap();
    let mut builder = BatchBuilder::new(Limits::default());
    let mut n = 0u64;
    while log.usage().unwrap().size_bytes < bytes {
        for _ in 0..100 {
            let key = format!("customer-{}", n % keys);
            let value = format!(
                r#"{{"event":"ORDER_PLACED","orderId":{n},"customer":"{key}","amount":{}.{:02},"timestamp":{}}}"#,
                n % 997,
                n % 100,
                1_700_000_000_000 + n
            );
            builder
                .push(&NewRecord::keyed(
                    1_700_000_000_000,
                    key.as_bytes(),
                    value.as_bytes(),
                ))
                .unwrap();
            n += 1;
        }
        let batch = BytesMut::from(&builder.finish().unwrap()[..]);
        log.append(
            batch,
            AppendOptions {
                ack: Ack::Written,
                expected_end_offset: None,
            },
        )
        .unwrap();
    }
    log.roll_now().unwrap();
    let usage = log.usage().unwrap();
    (dir, log, usage.size_bytes)
}

fn bench_clean(c: &mut Criterion) {
    let mut group = c.benchmark_group("clean");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    let mut map = KeyMap::with_memory(DEFAULT_KEY_MAP_BYTES);
    for (name, keys) in [("1k_keys", 1_000u64), ("100k_keys", 100_000)] {
        let (_dir, _log, bytes) = dirty_log(keys);
        group.throughput(Throughput::Bytes(bytes));
        let mut printed = false;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                || dirty_log(keys),
                |(dir, log, before)| {
                    let report = log
                        .clean(log_format::now_ms(), &mut map)
                        .unwrap()
                        .expect("a dirty log");
                    if !printed {
                        eprintln!(
                            "[clean bench] {name}: {before} B of segments, {} B rewritten into {} B, {} records dropped",
                            report.bytes_before, report.bytes_after, report.records_removed
                        );
                        printed = true;
                    }
                    black_box((dir, log, report))
                },
                BatchSize::PerIteration,
            );
        });
    }
    group.finish();
}

fn cold_config(codec: Codec) -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 8 << 20;
    config.cleanup.cold_codec = codec;
    config.cleanup.cold_compression_lag = Duration::ZERO;
    config
}

/// Every record from offset 0, decoded; answers how many.
fn read_every_record(log: &Log) -> u64 {
    let mut offset = 0;
    let mut records = 0u64;
    let end = log.watermarks().log_end;
    while offset < end {
        let read = log.read(offset, 1 << 20, Isolation::Written).unwrap();
        for scanned in BytesScanner::new(read.batches, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("damage at {offset}");
            };
            for record in batch.records() {
                black_box(record.value());
                records += 1;
            }
        }
        offset = read.next_offset;
    }
    records
}

fn bench_cold(c: &mut Criterion) {
    let mut group = c.benchmark_group("cold");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(10));
    let bytes = cold_bytes();
    for (name, codec) in [("compress_zstd", Codec::Zstd), ("compress_lz4", Codec::Lz4)] {
        let (_dir, _log, plain) = filled_log(u64::MAX, cold_config(codec), bytes);
        group.throughput(Throughput::Bytes(plain));
        let mut printed = false;
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_batched(
                || filled_log(u64::MAX, cold_config(codec), bytes),
                |(dir, log, before)| {
                    while log.compress_cold(log_format::now_ms()).unwrap().is_some() {}
                    if !printed {
                        let after = log.usage().unwrap().size_bytes;
                        eprintln!(
                            "[cold bench] {name}: {before} B of plain segments -> {after} B on disk ({:.2}x)",
                            before as f64 / after.max(1) as f64
                        );
                        benches::write_extra(
                            &format!("cold/{name}"),
                            &format!(
                                "EXTRA system=in-process scenario=cold_{name} bytes_before={before} bytes_after={after} ratio={:.2}",
                                before as f64 / after.max(1) as f64
                            ),
                        );
                        printed = true;
                    }
                    black_box((dir, log))
                },
                BatchSize::PerIteration,
            );
        });
    }
    for (name, codec) in [("read_plain", Codec::None), ("read_zstd", Codec::Zstd)] {
        let (_dir, log, _) = filled_log(u64::MAX, cold_config(codec), bytes);
        while log.compress_cold(log_format::now_ms()).unwrap().is_some() {}
        let records = read_every_record(&log);
        group.throughput(Throughput::Elements(records));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| assert_eq!(read_every_record(&log), records));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_clean, bench_cold);
criterion_main!(benches);
