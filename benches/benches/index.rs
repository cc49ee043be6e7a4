//! Sparse index lookups on a 1,000,000-entry index (16 MB), memory-mapped
//! (`MmapIndex`) and in memory (`MemIndex`, the loader without mmap).
//!
//! The index describes a ~4 GB segment with one entry per 4 KiB batch. It is
//! built through `ActiveIndex::on_batch`, sealed to a temporary file and
//! opened by both loaders. Each benchmark answers one lookup per iteration,
//! cycling through precomputed targets: offsets or times among the last few
//! entries (`tail`, the common case of consumers reading the head of the
//! log) or uniformly random over the segment (`random`, 4096 targets, so
//! the cache lines they end on stay cached: this measures the search). One
//! more, `offset_random_cold`, cycles through 2^20 random offsets, so nearly
//! every lookup ends on a cache line (and page) not touched for a while:
//! this measures the memory. Time lookups use `time_scan_start`, the helper
//! the storage layer calls.
//!
//! Target: at most 100 ns per lookup.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use log_index::{ActiveIndex, IndexLookup, MemIndex, MmapIndex};
use tempfile::TempDir;

const ENTRIES: u32 = 1_000_000;
const INTERVAL_BYTES: u32 = 4096;
const RECORDS_PER_BATCH: u32 = 10;
const BASE_OFFSET: u64 = 5_000_000;
const FIRST_TIME: i64 = 1_700_000_000_000;
/// Targets per pattern: a power of two, so the cycle is a mask.
const TARGETS: usize = 1 << 12;
/// Targets of the cold pattern (4 MiB of them, read sequentially).
const COLD_TARGETS: usize = 1 << 20;

/// A tiny xorshift64 generator, so the bench needs no `rand`.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `0..bound` (the modulo bias is irrelevant here).
    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Append time of batch `i`: 1.5 ms apart, so runs of equal milliseconds
/// appear.
fn append_time(i: u32) -> i64 {
    FIRST_TIME + i64::from(i) * 3 / 2
}

/// Builds the index with `ENTRIES` entries (batch 0 at position 0 is the
/// implicit start, batches 1..=ENTRIES get an entry each), seals it in `dir`
/// and returns the path and the covered log length.
fn build_sealed(dir: &TempDir) -> (std::path::PathBuf, u64) {
    let path = dir.path().join("00000000000005000000.index");
    let mut index = ActiveIndex::create(&path, BASE_OFFSET, INTERVAL_BYTES).expect("create index");
    for i in 0..=ENTRIES {
        index
            .on_batch(
                i * RECORDS_PER_BATCH,
                i * INTERVAL_BYTES,
                INTERVAL_BYTES,
                append_time(i),
            )
            .expect("add batch");
    }
    assert_eq!(index.len(), ENTRIES as usize);
    let covered = (u64::from(ENTRIES) + 1) * u64::from(INTERVAL_BYTES);
    index.seal(covered).expect("seal index");
    (path, covered)
}

struct Targets {
    offsets_tail: Vec<u32>,
    offsets_random: Vec<u32>,
    offsets_cold: Vec<u32>,
    times_tail: Vec<i64>,
    times_random: Vec<i64>,
}

fn targets() -> Targets {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let last_offset = u64::from(ENTRIES * RECORDS_PER_BATCH + RECORDS_PER_BATCH - 1);
    let tail_span = u64::from(8 * RECORDS_PER_BATCH);
    let last_time = append_time(ENTRIES);
    let time_span = last_time - FIRST_TIME + 1;
    let offset = |x: u64| u32::try_from(x).expect("offsets fit u32");
    let time = |x: u64| i64::try_from(x).expect("times fit i64");
    Targets {
        offsets_tail: (0..TARGETS)
            .map(|_| offset(last_offset - rng.below(tail_span)))
            .collect(),
        offsets_random: (0..TARGETS)
            .map(|_| offset(rng.below(last_offset + 1)))
            .collect(),
        offsets_cold: (0..COLD_TARGETS)
            .map(|_| offset(rng.below(last_offset + 1)))
            .collect(),
        times_tail: (0..TARGETS)
            .map(|_| last_time - time(rng.below(12)))
            .collect(),
        times_random: (0..TARGETS)
            .map(|_| FIRST_TIME + time(rng.below(time_span.unsigned_abs())))
            .collect(),
    }
}

fn bench_index<I: IndexLookup>(c: &mut Criterion, name: &str, index: &I, targets: &Targets) {
    let mut group = c.benchmark_group(format!("index/{name}"));
    for (pattern, offsets) in [
        ("offset_tail", &targets.offsets_tail),
        ("offset_random", &targets.offsets_random),
        ("offset_random_cold", &targets.offsets_cold),
    ] {
        let mask = offsets.len() - 1;
        group.bench_function(pattern, |b| {
            let mut i = 0usize;
            b.iter(|| {
                let target = offsets[i & mask];
                i = i.wrapping_add(1);
                index.lookup_offset(black_box(target))
            });
        });
    }
    for (pattern, times) in [
        ("time_tail", &targets.times_tail),
        ("time_random", &targets.times_random),
    ] {
        group.bench_function(pattern, |b| {
            let mut i = 0usize;
            b.iter(|| {
                let target = times[i & (TARGETS - 1)];
                i = i.wrapping_add(1);
                index.time_scan_start(black_box(target))
            });
        });
    }
    group.finish();
}

fn lookups(c: &mut Criterion) {
    let dir = TempDir::new().expect("temp dir");
    let (path, covered) = build_sealed(&dir);
    let targets = targets();

    let mmap = MmapIndex::open(&path, BASE_OFFSET, covered).expect("map index");
    assert_eq!(mmap.len(), ENTRIES as usize);
    bench_index(c, "mmap", &mmap, &targets);
    drop(mmap);

    let mem = MemIndex::load(&path, BASE_OFFSET, covered).expect("load index");
    assert_eq!(mem.len(), ENTRIES as usize);
    bench_index(c, "mem", &mem, &targets);
}

criterion_group!(benches, lookups);
criterion_main!(benches);
