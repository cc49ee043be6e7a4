//! Criterion benches of `log-format`: encoding (build + checksums), decoding
//! with full verification, scanning and stamping, on batches of 1000
//! records of 100 B and 1 KiB values; and compression (`codec/…`): each
//! codec's encode (build + compress) and decode (decompress + verify) of
//! 1000 JSON order events, with the ratio printed.
//!
//! Throughput is reported over the encoded batch bytes (`bytes`) or the
//! records (`elements`). Nothing here touches a disk.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use log_format::{Batch, BatchBuilder, Codec, Limits, NewRecord, Scanned, Scanner, stamp};

const RECORDS: usize = 1000;
const SIZES: [usize; 2] = [100, 1024];

fn limits() -> Limits {
    Limits {
        max_batch_bytes: 64 << 20,
        max_records: 1 << 20,
        ..Limits::default()
    }
}

fn encode(builder: &mut BatchBuilder, value: &[u8]) -> Bytes {
    for i in 0..RECORDS {
        builder
            .push(&NewRecord::value(1_700_000_000_000 + i as i64, value))
            .unwrap();
    }
    builder.finish().unwrap()
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for size in SIZES {
        let value = vec![0x61u8; size];
        let mut builder = BatchBuilder::with_buffer(BytesMut::with_capacity(2 << 20), limits());
        let len = encode(&mut builder, &value).len();
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("bytes", size), &value, |b, value| {
            b.iter(|| black_box(encode(&mut builder, value)));
        });
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_with_input(BenchmarkId::new("records", size), &value, |b, value| {
            b.iter(|| black_box(encode(&mut builder, value)));
        });
    }
    group.finish();
}

fn decode_and_read(bytes: &Bytes, limits: &Limits) -> usize {
    let batch = Batch::decode(bytes.clone(), limits).unwrap();
    let mut total = 0;
    for record in batch.records() {
        total += record.value().map_or(0, <[u8]>::len);
    }
    total
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_verify");
    let limits = limits();
    for size in SIZES {
        let mut builder = BatchBuilder::new(limits);
        let bytes = encode(&mut builder, &vec![0x61u8; size]);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("bytes", size), &bytes, |b, bytes| {
            b.iter(|| black_box(decode_and_read(bytes, &limits)));
        });
        group.throughput(Throughput::Elements(RECORDS as u64));
        group.bench_with_input(BenchmarkId::new("records", size), &bytes, |b, bytes| {
            b.iter(|| black_box(decode_and_read(bytes, &limits)));
        });
    }
    group.finish();
}

fn bench_scan(c: &mut Criterion) {
    // A segment-like buffer: 64 stamped batches back to back, scanned and
    // verified, records not read.
    let mut group = c.benchmark_group("scan_verify");
    let limits = limits();
    for size in SIZES {
        let mut builder = BatchBuilder::new(limits);
        let mut buf = Vec::new();
        for i in 0..64u64 {
            let mut batch = encode(&mut builder, &vec![0x61u8; size]).to_vec();
            stamp(&mut batch, i * RECORDS as u64, 0, 1).unwrap();
            buf.extend_from_slice(&batch);
        }
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &buf, |b, buf| {
            b.iter(|| {
                let mut batches = 0;
                for scanned in Scanner::new(buf, 0, limits) {
                    if let Scanned::Batch(_) = scanned {
                        batches += 1;
                    }
                }
                black_box(batches)
            });
        });
    }
    group.finish();
}

fn bench_stamp(c: &mut Criterion) {
    let mut builder = BatchBuilder::new(limits());
    let mut batch = encode(&mut builder, &[0x61u8; 1024]).to_vec();
    let mut offset = 0u64;
    c.bench_function("stamp/1000x1KiB", |b| {
        b.iter(|| {
            offset += RECORDS as u64;
            stamp(black_box(&mut batch), offset, 0, 1_700_000_000_000).unwrap();
        });
    });
}

/// 1000 events like the seed's: `{"event":"ORDER_PLACED","orderId":…}`,
/// keyed by customer, with a little variety in every field.
fn order_events() -> Vec<(Vec<u8>, Vec<u8>)> {
    const EVENTS: [&str; 4] = [
        "ORDER_PLACED",
        "ORDER_PAID",
        "ORDER_SHIPPED",
        "ORDER_CANCELLED",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..RECORDS)
        .map(|i| {
            let r = next();
            let key = format!("customer-{}", r % 5000).into_bytes();
            let value = format!(
                r#"{{"event":"{}","orderId":{},"customerId":{},"amount":{}.{:02},"currency":"EUR","items":{},"timestamp":{}}}"#,
                EVENTS[(r >> 20) as usize % EVENTS.len()],
                1_000_000 + i as u64 * 7 + r % 5,
                r % 5000,
                (r >> 8) % 2000,
                (r >> 4) % 100,
                1 + (r >> 30) % 9,
                1_700_000_000_000 + i as u64 * 13,
            )
            .into_bytes();
            (key, value)
        })
        .collect()
}

fn encode_events(builder: &mut BatchBuilder, events: &[(Vec<u8>, Vec<u8>)]) -> Bytes {
    for (i, (key, value)) in events.iter().enumerate() {
        builder
            .push(&NewRecord::keyed(1_700_000_000_000 + i as i64, key, value))
            .unwrap();
    }
    builder.finish().unwrap()
}

fn bench_codecs(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let events = order_events();
    let limits = limits();
    let plain_len = {
        let mut builder = BatchBuilder::new(limits);
        encode_events(&mut builder, &events).len()
    };
    for codec in [
        Codec::None,
        Codec::Lz4,
        Codec::Zstd,
        Codec::Snappy,
        Codec::Gzip,
    ] {
        let mut builder = BatchBuilder::with_buffer(BytesMut::with_capacity(2 << 20), limits);
        builder.set_codec(codec);
        let bytes = encode_events(&mut builder, &events);
        eprintln!(
            "[format bench] codec/{}: 1000 JSON order events, {plain_len} B as a plain batch, {} B compressed (ratio {:.2})",
            codec.name(),
            bytes.len(),
            plain_len as f64 / bytes.len() as f64
        );
        // Throughput over the uncompressed batch, for every codec alike.
        group.throughput(Throughput::Bytes(plain_len as u64));
        group.bench_with_input(
            BenchmarkId::new("encode", codec.name()),
            &events,
            |b, events| b.iter(|| black_box(encode_events(&mut builder, events))),
        );
        group.bench_with_input(
            BenchmarkId::new("decode", codec.name()),
            &bytes,
            |b, bytes| b.iter(|| black_box(decode_and_read(bytes, &limits))),
        );
    }
    group.finish();
}

criterion_group!(
    benches,
    bench_encode,
    bench_decode,
    bench_scan,
    bench_stamp,
    bench_codecs
);
criterion_main!(benches);
