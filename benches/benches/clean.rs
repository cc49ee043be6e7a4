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
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use log_format::{BatchBuilder, Limits, NewRecord};
use log_storage::{
    Ack, AppendOptions, CleanupPolicy, DEFAULT_KEY_MAP_BYTES, KeyMap, Log, LogConfig, RealFs,
};
use tempfile::TempDir;

const LOG_BYTES: u64 = 32 << 20;

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 8 << 20;
    config.cleanup_policy = CleanupPolicy::Compact;
    config
}

/// A fresh log of about `LOG_BYTES` of events over `keys` keys, rolled and
/// synced, and the bytes of its sealed segments.
fn dirty_log(keys: u64) -> (TempDir, Log, u64) {
    let dir = tempfile::Builder::new()
        .prefix("log-clean-bench-")
        .tempdir()
        .unwrap();
    let log = Log::open(Arc::new(RealFs), dir.path(), config()).unwrap();
    let mut builder = BatchBuilder::new(Limits::default());
    let mut n = 0u64;
    while log.usage().unwrap().size_bytes < LOG_BYTES {
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

criterion_group!(benches, bench_clean);
criterion_main!(benches);
