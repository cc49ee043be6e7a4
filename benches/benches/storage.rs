//! Criterion benches of `log-storage` on the real file system (`RealFs`):
//! one producer appending 1,000,000 records (1000 batches of 1000 records
//! of 100 B or 1 KiB values, one batch in flight) with durable or written
//! acks, reading them all back, concurrent writers of single-record durable
//! appends (group commit), and reopening a log after a crash.
//!
//! Every log lives in a fresh `tempfile` directory under
//! `std::env::temp_dir()` (`$TMPDIR`, else `/tmp`); the file system it is on
//! is printed (stderr) before the first bench that touches the disk, with a
//! measured `fdatasync` latency on it. The directories are removed when
//! each bench ends. Fixtures are built on a bench's first run, so a
//! filtered run (`-- append/written`) builds only what it times.
//!
//! - `append/{durable,written}/{100,1024}`: each iteration opens a fresh
//!   log and appends 1000 pre-encoded batches. Encoding is benched in
//!   `format.rs` and is not timed here; neither is copying the encoded
//!   batch into the 1000 `BytesMut` the appends consume (the log stamps
//!   them in place; they are carved out of one allocation, freed after the
//!   clock stops), which is done before the clock starts and timed on its
//!   own as `append/copy_only/{100,1024}`. Throughput is in records; the
//!   payload MB/s (MB = 10^6 bytes of values) and the per-batch ack latency
//!   (p50 / p99) are printed to stderr. Right before each case,
//!   `append/raw_pwrite{,_fdatasync}/{100,1024}` writes the same batches to
//!   a plain file with `pwrite` (and an `fdatasync` after each for the
//!   durable case): the floor the disk and page cache set, without the log.
//!   `append/verify_only/{100,1024}` times the full check `Log::append`
//!   makes of each batch (on one cache-warm batch).
//! - `read/{100,1024}`: reads the 1M records back from offset 0, 1 MiB per
//!   `Log::read`, and iterates every record through `BytesScanner` (which
//!   verifies both checksums and the record structure again, as a client
//!   would). The data is in the page cache: it was just written.
//!   `read_pieces/..` times the parts apart: `Log::read` alone, the `pread`
//!   of the same byte ranges into fresh zeroed buffers, the zeroed
//!   allocations alone, and the client scan over results already in memory.
//! - `group_commit/{1,8,64}_writers`: that many threads, each doing 100
//!   single-record (100 B) durable appends per iteration, released
//!   together; throughput in acks. 64 writers is the target case. The ack
//!   latency percentiles, the number of `fdatasync`s the log issued (one
//!   per distinct `durable_end` acked) and a single-`fdatasync` latency on
//!   the same disk are printed (criterion has no percentile API).
//! - `reopen_after_crash/{200MB_32MiB_segments,2GB_256MiB_segments}/..`:
//!   builds a log of 1 KiB records, drops it without `close()` (a process
//!   crash: no clean-shutdown marker, the active segment's tail never
//!   synced), then times `Log::open`. 200 MB by default, with 32 MiB
//!   segments so there are still several sealed ones; `BENCH_LARGE=1`
//!   builds 2 GB with 256 MiB segments. `index_kept` reopens with the
//!   active index as the crash left it (recovery scans from its last
//!   entry); `active_index_lost` deletes the active segment's index first
//!   (as if its unsynced pages were lost), so recovery rebuilds it by
//!   scanning the whole active segment. The first open after the crash
//!   (which also syncs the dirty tail) is timed once and printed. The page
//!   cache is warm throughout.
//!
//! Targets are reported, never asserted. Durable figures depend heavily on
//! what else the machine is doing: run them on an idle machine.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::hint::black_box;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Once};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use log_format::{BatchBuilder, BatchView, BytesScanner, Limits, NewRecord, Scanned};
use log_storage::{Ack, AppendOptions, Committer, Isolation, Log, LogConfig, RealFs};
use tempfile::TempDir;

const RECORDS_PER_BATCH: usize = 1000;
const BATCHES: usize = 1000;
const TOTAL_RECORDS: u64 = (RECORDS_PER_BATCH * BATCHES) as u64;
const SIZES: [usize; 2] = [100, 1024];
const READ_MAX_BYTES: usize = 1 << 20;
const WRITER_COUNTS: [usize; 3] = [1, 8, 64];
const APPENDS_PER_WRITER: usize = 100;
const FSYNC_PROBES: usize = 200;

// ---------------------------------------------------------------- helpers

/// One encoded, unstamped batch of `records` records of `size`-byte values.
fn encode_batch(records: usize, size: usize) -> Bytes {
    let value = vec![0x61u8; size];
    let mut builder = BatchBuilder::new(Limits::default());
    for i in 0..records {
        builder
            .push(&NewRecord::value(1_700_000_000_000 + i as i64, &value))
            .unwrap();
    }
    builder.finish().unwrap()
}

/// `n` owned copies of `batch`, as the appends consume them (the log stamps
/// each in place), carved out of one allocation, and the empty remainder,
/// which keeps that allocation alive. Drop the remainder after the clock
/// stops: with one allocation per copy, the last append's free let the
/// allocator hand the whole heap back at once (80-120 ms for 1 GB here).
fn copies(batch: &Bytes, n: usize) -> (Vec<BytesMut>, BytesMut) {
    let mut all = BytesMut::with_capacity(batch.len() * n);
    for _ in 0..n {
        all.extend_from_slice(batch);
    }
    let parts = (0..n).map(|_| all.split_to(batch.len())).collect();
    (parts, all)
}

fn scratch() -> TempDir {
    tempfile::Builder::new()
        .prefix("log-storage-bench-")
        .tempdir()
        .unwrap()
}

fn open_log(dir: &Path, config: LogConfig) -> Log {
    Log::open(Arc::new(RealFs), dir, config).unwrap()
}

fn options(ack: Ack) -> AppendOptions {
    AppendOptions {
        ack,
        expected_end_offset: None,
    }
}

/// The mount holding `path`, from `/proc/self/mounts` (longest prefix).
fn filesystem_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut fields = line.split_whitespace();
        let (Some(dev), Some(mount), Some(fstype), Some(opts)) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if path.starts_with(mount) && best.as_ref().is_none_or(|(len, _)| mount.len() >= *len) {
            best = Some((
                mount.len(),
                format!("{fstype} on {dev} at {mount} ({opts})"),
            ));
        }
    }
    best.map_or_else(|| "unknown file system".into(), |(_, found)| found)
}

/// Latencies of `FSYNC_PROBES` `fdatasync`s, each after appending 100 bytes
/// to a small file in `dir` (the file grows, as a log segment does), sorted.
fn fdatasync_latencies(dir: &Path) -> Vec<Duration> {
    let path = dir.join("fdatasync-probe");
    let mut file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .unwrap();
    let data = [0x61u8; 100];
    let mut out = Vec::with_capacity(FSYNC_PROBES);
    for _ in 0..FSYNC_PROBES {
        file.write_all(&data).unwrap();
        let start = Instant::now();
        file.sync_data().unwrap();
        out.push(start.elapsed());
    }
    drop(file);
    std::fs::remove_file(&path).unwrap();
    out.sort_unstable();
    out
}

/// Nearest-rank percentile of a sorted slice.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn fsync_summary(sorted: &[Duration]) -> String {
    let mean = sorted.iter().sum::<Duration>() / sorted.len().max(1) as u32;
    format!(
        "fdatasync after a 100 B append, {} calls: p50 {:.0} us, p99 {:.0} us, mean {:.0} us, max {:.0} us",
        sorted.len(),
        us(percentile(sorted, 50.0)),
        us(percentile(sorted, 99.0)),
        us(mean),
        us(percentile(sorted, 100.0)),
    )
}

/// Prints where the logs live and one `fdatasync` measurement there, once.
fn print_environment() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let dir = scratch();
        eprintln!(
            "[storage bench] temp dir {} on {}",
            dir.path().display(),
            filesystem_of(dir.path())
        );
        eprintln!(
            "[storage bench] {}",
            fsync_summary(&fdatasync_latencies(dir.path()))
        );
    });
}

/// Durations of timed runs of one bench, with per-operation latencies.
#[derive(Default)]
struct RunStats {
    runs: Vec<Duration>,
    latencies: Vec<Duration>,
    /// Per run: which batch was the slowest, and how slow.
    slowest: Vec<(usize, Duration)>,
}

impl RunStats {
    /// Prints the rate over the runs and the per-batch latencies (stderr).
    fn print(&mut self, id: &str, size: usize) {
        if self.runs.is_empty() {
            return;
        }
        self.latencies.sort_unstable();
        let (mean, best, worst) = self.rates(TOTAL_RECORDS as f64);
        eprintln!(
            "[storage bench] {id}: {} runs (warm-up included), mean {:.2} M rec/s = {:.0} MB/s \
             payload (best {:.2}, worst {:.2} M rec/s); latency per 1000-record batch \
             p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            self.runs.len(),
            mean / 1e6,
            mean * size as f64 / 1e6,
            best / 1e6,
            worst / 1e6,
            ms(percentile(&self.latencies, 50.0)),
            ms(percentile(&self.latencies, 99.0)),
            ms(percentile(&self.latencies, 100.0)),
        );
        let slowest: Vec<String> = self
            .slowest
            .iter()
            .take(12)
            .map(|(at, took)| format!("#{at} {:.1} ms", ms(*took)))
            .collect();
        eprintln!(
            "[storage bench]   slowest batch of each run (first 12): {}",
            slowest.join(", ")
        );
    }

    /// Records one timed run and its per-batch latencies, in order.
    fn add(&mut self, elapsed: Duration, latencies: Vec<Duration>) {
        self.runs.push(elapsed);
        if let Some((at, took)) = latencies.iter().enumerate().max_by_key(|(_, took)| **took) {
            self.slowest.push((at, *took));
        }
        self.latencies.extend(latencies);
    }

    fn rates(&self, per_run: f64) -> (f64, f64, f64) {
        let total: Duration = self.runs.iter().sum();
        let mean = per_run * self.runs.len() as f64 / total.as_secs_f64();
        let best = self.runs.iter().min().copied().unwrap_or_default();
        let worst = self.runs.iter().max().copied().unwrap_or_default();
        (
            mean,
            per_run / best.as_secs_f64(),
            per_run / worst.as_secs_f64(),
        )
    }
}

// ----------------------------------------------------------------- append

fn measurement_time(ack: Ack, size: usize) -> Duration {
    // Sized so that each case takes ~10 iterations at the target rates.
    match (ack, size) {
        (Ack::Durable, 100) => Duration::from_secs(4),
        (Ack::Durable, _) => Duration::from_secs(10),
        (Ack::Written, 100) => Duration::from_secs(2),
        (Ack::Written, _) => Duration::from_secs(4),
    }
}

/// The disk's floor for one batch in flight: the same 1000 batches written
/// with `pwrite` to a fresh file, with an `fdatasync` after each when `sync`
/// (`append/raw_pwrite_fdatasync/..`) or none (`append/raw_pwrite/..`), no
/// log.
fn bench_raw_pwrite(
    group: &mut BenchmarkGroup<'_, WallTime>,
    batch: &Bytes,
    size: usize,
    sync: bool,
) {
    let name = if sync {
        "raw_pwrite_fdatasync"
    } else {
        "raw_pwrite"
    };
    let mut stats = RunStats::default();
    group.throughput(Throughput::Elements(TOTAL_RECORDS));
    group.measurement_time(measurement_time(
        if sync { Ack::Durable } else { Ack::Written },
        size,
    ));
    group.bench_with_input(BenchmarkId::new(name, size), batch, |b, batch| {
        print_environment();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = scratch();
                let file = OpenOptions::new()
                    .create_new(true)
                    .read(true)
                    .write(true)
                    .open(dir.path().join("raw.log"))
                    .unwrap();
                let mut latencies = Vec::with_capacity(BATCHES);
                let start = Instant::now();
                let mut position = 0u64;
                for _ in 0..BATCHES {
                    let sent = Instant::now();
                    file.write_all_at(batch, position).unwrap();
                    if sync {
                        file.sync_data().unwrap();
                    }
                    latencies.push(sent.elapsed());
                    position += batch.len() as u64;
                }
                let elapsed = start.elapsed();
                total += elapsed;
                stats.add(elapsed, latencies);
                drop(file);
                drop(dir);
            }
            total
        });
    });
    stats.print(&format!("append/{name}/{size}"), size);
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500));

    for size in SIZES {
        let batch = encode_batch(RECORDS_PER_BATCH, size);
        group.throughput(Throughput::Elements(TOTAL_RECORDS));
        group.measurement_time(Duration::from_secs(2));
        group.bench_with_input(BenchmarkId::new("copy_only", size), &batch, |b, batch| {
            b.iter_with_large_drop(|| copies(batch, BATCHES));
        });
        // The check `Log::append` makes of every batch (both checksums, every
        // record), on one cache-warm batch: a lower bound of its cost.
        let limits = LogConfig::default().limits;
        group.bench_with_input(BenchmarkId::new("verify_only", size), &batch, |b, batch| {
            b.iter(|| {
                for _ in 0..BATCHES {
                    black_box(BatchView::decode(black_box(batch), 0, &limits).unwrap());
                }
            });
        });
    }

    for (ack, name) in [(Ack::Durable, "durable"), (Ack::Written, "written")] {
        for size in SIZES {
            let batch = encode_batch(RECORDS_PER_BATCH, size);
            // Right before each log case, the same writes without the log.
            bench_raw_pwrite(&mut group, &batch, size, ack == Ack::Durable);
            let mut stats = RunStats::default();
            group.throughput(Throughput::Elements(TOTAL_RECORDS));
            group.measurement_time(measurement_time(ack, size));
            group.bench_with_input(BenchmarkId::new(name, size), &batch, |b, batch| {
                print_environment();
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // Untimed: a fresh log, and the batches to append.
                        let dir = scratch();
                        let log = open_log(dir.path(), LogConfig::default());
                        let (inputs, keep) = copies(batch, BATCHES);
                        let mut latencies = Vec::with_capacity(BATCHES);

                        let start = Instant::now();
                        for input in inputs {
                            let sent = Instant::now();
                            let appended = log.append(input, options(ack)).unwrap();
                            latencies.push(sent.elapsed());
                            black_box(appended);
                        }
                        let elapsed = start.elapsed();

                        total += elapsed;
                        stats.add(elapsed, latencies);
                        let marks = log.watermarks();
                        assert_eq!(marks.log_end, TOTAL_RECORDS);
                        if ack == Ack::Durable {
                            assert_eq!(marks.durable_end, TOTAL_RECORDS);
                        }
                        // Untimed: freeing the batches, dropping the log
                        // and removing its files.
                        drop(keep);
                        drop(log);
                        drop(dir);
                    }
                    total
                });
            });
            stats.print(&format!("append/{name}/{size}"), size);
        }
    }
    group.finish();
}

// ------------------------------------------------------------------- read

/// A synced log of 1000 batches of 1000 records of `size` bytes, with what
/// reading it back returns.
struct ReadFixture {
    log: Log,
    /// Every `Log::read` result of a read from offset 0, in order.
    results: Vec<Bytes>,
    /// The file ranges those results came from.
    ranges: Vec<(u64, usize)>,
    segment: PathBuf,
    _dir: TempDir,
}

impl ReadFixture {
    fn new(size: usize) -> Self {
        print_environment();
        let dir = scratch();
        let log = open_log(dir.path(), LogConfig::default());
        let batch = encode_batch(RECORDS_PER_BATCH, size);
        for input in copies(&batch, BATCHES).0 {
            log.append(input, options(Ack::Written)).unwrap();
        }
        log.sync().unwrap();
        let (records, payload) = read_all(&log);
        assert_eq!(records, TOTAL_RECORDS);
        assert_eq!(payload, TOTAL_RECORDS * size as u64);
        let mut results = Vec::new();
        read_each(&log, |batches| results.push(batches));
        let mut ranges = Vec::with_capacity(results.len());
        let mut at = 0u64;
        for batches in &results {
            ranges.push((at, batches.len()));
            at += batches.len() as u64;
        }
        let logs = log_files(dir.path());
        assert_eq!(logs.len(), 1, "expected one segment: {logs:?}");
        ReadFixture {
            log,
            results,
            ranges,
            segment: logs[0].clone(),
            _dir: dir,
        }
    }
}

/// Reads everything from offset 0, 1 MiB per call; calls `each` on every
/// result.
fn read_each(log: &Log, mut each: impl FnMut(Bytes)) {
    let mut offset = 0;
    loop {
        let result = log
            .read(offset, READ_MAX_BYTES, Isolation::Durable)
            .unwrap();
        if result.batch_count == 0 {
            break;
        }
        offset = result.next_offset;
        each(result.batches);
    }
    assert_eq!(offset, TOTAL_RECORDS);
}

/// Iterates every record of a read result, verifying every batch.
/// Returns (records, payload bytes).
fn scan_records(batches: Bytes) -> (u64, u64) {
    let mut records = 0u64;
    let mut payload = 0u64;
    for scanned in BytesScanner::new(batches, 0, Limits::default()) {
        let Scanned::Batch(batch) = scanned else {
            panic!("damaged read result: {scanned:?}");
        };
        for record in batch.records() {
            records += 1;
            payload += record.value().map_or(0, <[u8]>::len) as u64;
        }
    }
    (records, payload)
}

fn read_all(log: &Log) -> (u64, u64) {
    let mut totals = (0u64, 0u64);
    read_each(log, |batches| {
        let (records, payload) = scan_records(batches);
        totals.0 += records;
        totals.1 += payload;
    });
    totals
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    logs.sort();
    logs
}

fn bench_read(c: &mut Criterion) {
    for size in SIZES {
        let mut fixture: Option<ReadFixture> = None;
        let mut group = c.benchmark_group("read");
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(if size == 100 { 2 } else { 5 }))
            .throughput(Throughput::Elements(TOTAL_RECORDS));
        let mut runs = Vec::new();
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            let log = &fixture.get_or_insert_with(|| ReadFixture::new(size)).log;
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(read_all(log));
                }
                let elapsed = start.elapsed();
                runs.push(elapsed / iters as u32);
                elapsed
            });
        });
        group.finish();
        if !runs.is_empty() {
            let mean = runs.iter().sum::<Duration>() / runs.len() as u32;
            let rate = TOTAL_RECORDS as f64 / mean.as_secs_f64();
            eprintln!(
                "[storage bench] read/{size}: mean {:.2} M rec/s = {:.0} MB/s payload over {} samples",
                rate / 1e6,
                rate * size as f64 / 1e6,
                runs.len()
            );
        }

        // The parts of a read, timed apart.
        let mut group = c.benchmark_group("read_pieces");
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(if size == 100 { 2 } else { 4 }))
            .throughput(Throughput::Elements(TOTAL_RECORDS));
        group.bench_function(BenchmarkId::new("log_read_only", size), |b| {
            let log = &fixture.get_or_insert_with(|| ReadFixture::new(size)).log;
            b.iter(|| read_each(log, |batches| drop(black_box(batches))));
        });
        // The same records in a sealed segment: read through its read-only
        // memory map (no copy) instead of pread.
        let sealed_dir = scratch();
        let sealed = open_log(sealed_dir.path(), LogConfig::default());
        for input in copies(&encode_batch(RECORDS_PER_BATCH, size), BATCHES).0 {
            sealed.append(input, options(Ack::Written)).unwrap();
        }
        sealed.roll_now().unwrap();
        group.bench_function(BenchmarkId::new("log_read_sealed_mmap", size), |b| {
            b.iter(|| read_each(&sealed, |batches| drop(black_box(batches))));
        });
        drop(sealed);
        drop(sealed_dir);
        group.bench_function(BenchmarkId::new("pread_only", size), |b| {
            let fx = fixture.get_or_insert_with(|| ReadFixture::new(size));
            let file = std::fs::File::open(&fx.segment).unwrap();
            b.iter(|| {
                for &(at, len) in &fx.ranges {
                    let mut buf = BytesMut::zeroed(len);
                    file.read_exact_at(&mut buf, at).unwrap();
                    black_box(buf.freeze());
                }
            });
        });
        group.bench_function(BenchmarkId::new("alloc_zeroed_only", size), |b| {
            let fx = fixture.get_or_insert_with(|| ReadFixture::new(size));
            b.iter(|| {
                for &(_, len) in &fx.ranges {
                    black_box(BytesMut::zeroed(len));
                }
            });
        });
        group.bench_function(BenchmarkId::new("client_scan_only", size), |b| {
            let fx = fixture.get_or_insert_with(|| ReadFixture::new(size));
            b.iter(|| {
                for batches in &fx.results {
                    black_box(scan_records(batches.clone()));
                }
            });
        });
        group.finish();
    }
}

// ----------------------------------------------------------- group commit

struct GroupFixture {
    log: Log,
    record: Bytes,
    fsync_before: Vec<Duration>,
    dir: TempDir,
}

/// Runs `writers` threads, each appending its batches with durable acks,
/// released together. Returns the time from release to the last ack, and
/// each thread's (ack latency, durable end acked) pairs.
fn run_writers(log: &Log, inputs: Vec<Vec<BytesMut>>) -> (Duration, Vec<Vec<(Duration, u64)>>) {
    let barrier = Barrier::new(inputs.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .into_iter()
            .map(|batches| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut acks = Vec::with_capacity(batches.len());
                    barrier.wait();
                    for batch in batches {
                        let sent = Instant::now();
                        let appended = log.append(batch, options(Ack::Durable)).unwrap();
                        acks.push((sent.elapsed(), appended.durable_end));
                    }
                    acks
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let results: Vec<Vec<(Duration, u64)>> =
            handles.into_iter().map(|h| h.join().unwrap()).collect();
        (start.elapsed(), results)
    })
}

/// One logical writer of the callback path: issues its next append from
/// the previous one's completion, until `remaining` is zero, then reports
/// its latencies on `done`.
fn issue_async(
    log: Arc<Log>,
    committer: Arc<Committer>,
    record: BytesMut,
    remaining: usize,
    mut latencies: Vec<Duration>,
    done: std::sync::mpsc::Sender<Vec<Duration>>,
) {
    if remaining == 0 {
        let _ = done.send(latencies);
        return;
    }
    let started = Instant::now();
    let (next_log, next_committer, next_record) = (log.clone(), committer.clone(), record.clone());
    log.append_then(
        &committer,
        record,
        AppendOptions::default(),
        move |result| {
            result.unwrap();
            latencies.push(started.elapsed());
            issue_async(
                next_log,
                next_committer,
                next_record,
                remaining - 1,
                latencies,
                done,
            );
        },
    );
}

/// 64 writers with one durable append in flight each, through the callback
/// path the server uses (`Log::append_then` + a 2-thread `Committer`): no
/// thread blocks per ack.
fn bench_group_commit_callbacks(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_commit_callbacks");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    let writers = 64;
    let dir = scratch();
    let log = Arc::new(open_log(
        &dir.path().join("partition"),
        LogConfig::default(),
    ));
    let committer = Arc::new(Committer::start(2));
    let record = BytesMut::from(&encode_batch(1, 100)[..]);
    let mut latencies: Vec<Duration> = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut acks = 0usize;
    group.throughput(Throughput::Elements((writers * APPENDS_PER_WRITER) as u64));
    group.bench_function(format!("{writers}_writers"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (tx, rx) = std::sync::mpsc::channel();
                let start = Instant::now();
                for _ in 0..writers {
                    issue_async(
                        log.clone(),
                        committer.clone(),
                        record.clone(),
                        APPENDS_PER_WRITER,
                        Vec::with_capacity(APPENDS_PER_WRITER),
                        tx.clone(),
                    );
                }
                drop(tx);
                for writer in rx.iter() {
                    latencies.extend(writer);
                }
                let run = start.elapsed();
                total += run;
                elapsed += run;
                acks += writers * APPENDS_PER_WRITER;
            }
            total
        });
    });
    latencies.sort_unstable();
    let syncs = log.usage().map_or(0, |u| u.syncs);
    if let Ok(usage) = log.usage() {
        benches::write_extra(
            "group_commit_callbacks",
            &format!(
                "EXTRA system=in-process scenario=group_commit_callbacks writers={writers} acks={acks} secs={:.3} syncs={} sync_p50_us={} sync_p99_us={} wait_p50_us={} wait_p99_us={}",
                elapsed.as_secs_f64(),
                usage.syncs,
                usage.sync_latency.p50.as_micros(),
                usage.sync_latency.p99.as_micros(),
                usage.durable_wait.p50.as_micros(),
                usage.durable_wait.p99.as_micros(),
            ),
        );
    }
    eprintln!(
        "[storage bench] group_commit_callbacks/{writers}_writers: {acks} acks, mean {:.1} K acks/s, \
         {syncs} fdatasyncs ({:.1} acks each); ack latency p50 {:.0} us, p99 {:.0} us, max {:.0} us",
        acks as f64 / elapsed.as_secs_f64().max(1e-9) / 1e3,
        acks as f64 / (syncs.max(1)) as f64,
        us(percentile(&latencies, 50.0)),
        us(percentile(&latencies, 99.0)),
        us(percentile(&latencies, 100.0)),
    );
    group.finish();
}

fn bench_group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_commit");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4));
    // 64 writers is the target case; 1 and 8 show how it scales.
    for writers in WRITER_COUNTS {
        let mut fixture: Option<GroupFixture> = None;
        let mut latencies: Vec<Duration> = Vec::new();
        let mut runs: Vec<Duration> = Vec::new();
        let mut syncs = 0usize;
        let acks_per_run = writers * APPENDS_PER_WRITER;
        group.throughput(Throughput::Elements(acks_per_run as u64));
        group.bench_function(format!("{writers}_writers"), |b| {
            let fx = fixture.get_or_insert_with(|| {
                print_environment();
                let dir = scratch();
                let log = open_log(&dir.path().join("partition"), LogConfig::default());
                let fsync_before = fdatasync_latencies(dir.path());
                GroupFixture {
                    log,
                    record: encode_batch(1, 100),
                    fsync_before,
                    dir,
                }
            });
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // Untimed: the batches, and the threads (parked on a
                    // barrier until the clock starts).
                    let inputs: Vec<Vec<BytesMut>> = (0..writers)
                        .map(|_| copies(&fx.record, APPENDS_PER_WRITER).0)
                        .collect();
                    let (elapsed, results) = run_writers(&fx.log, inputs);
                    total += elapsed;
                    runs.push(elapsed);
                    // Each sync's leader acks with exactly the end that
                    // sync made durable, so distinct ends = syncs issued.
                    let mut ends = BTreeSet::new();
                    for (latency, end) in results.into_iter().flatten() {
                        latencies.push(latency);
                        ends.insert(end);
                    }
                    syncs += ends.len();
                }
                total
            });
        });
        let Some(fx) = fixture else {
            continue;
        };
        let fsync_after = fdatasync_latencies(fx.dir.path());
        latencies.sort_unstable();
        let acks = runs.len() * acks_per_run;
        let elapsed: Duration = runs.iter().sum();
        let fsync_p50 = percentile(&fx.fsync_before, 50.0);
        let ack_p99 = percentile(&latencies, 99.0);
        eprintln!(
            "[storage bench] group_commit/{writers}_writers: {} runs (warm-up included), {} acks, \
             mean {:.1} K acks/s; {} fdatasyncs by the log ({:.1} acks per sync, {:.0} syncs/s); \
             ack latency p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
            runs.len(),
            acks,
            acks as f64 / elapsed.as_secs_f64() / 1e3,
            syncs,
            acks as f64 / syncs.max(1) as f64,
            syncs as f64 / elapsed.as_secs_f64(),
            us(percentile(&latencies, 50.0)),
            us(percentile(&latencies, 90.0)),
            us(ack_p99),
            us(percentile(&latencies, 99.9)),
            us(percentile(&latencies, 100.0)),
        );
        eprintln!(
            "[storage bench]   before: {}",
            fsync_summary(&fx.fsync_before)
        );
        eprintln!("[storage bench]   after:  {}", fsync_summary(&fsync_after));
        eprintln!(
            "[storage bench]   ack p99 = {:.1} x the fdatasync p50 measured before (target at 64 writers: within 2)",
            ack_p99.as_secs_f64() / fsync_p50.as_secs_f64().max(1e-9)
        );
    }
    group.finish();
}

// ------------------------------------------------------- reopen after crash

/// A log of 1 KiB records in several segments, dropped without `close()`.
struct CrashedLog {
    path: PathBuf,
    config: LogConfig,
    active_index: PathBuf,
    _dir: TempDir,
}

impl CrashedLog {
    fn new(id: &str, target_bytes: u64, segment_bytes: u64, large: bool) -> Self {
        print_environment();
        let mut config = LogConfig::default();
        config.segment_max_bytes = segment_bytes;
        let dir = scratch();
        let path = dir.path().join("partition");
        let batch = encode_batch(RECORDS_PER_BATCH, 1024);
        let batches = target_bytes.div_ceil(batch.len() as u64);
        let built = Instant::now();
        {
            let log = open_log(&path, config.clone());
            for _ in 0..batches {
                let input = BytesMut::from(&batch[..]);
                log.append(input, options(Ack::Written)).unwrap();
            }
            // Dropped without close(): no clean-shutdown marker, the
            // active segment's tail written but never synced.
        }
        let built = built.elapsed();
        let logs = log_files(&path);
        let active = logs.last().unwrap().clone();
        let active_len = std::fs::metadata(&active).unwrap().len();

        let start = Instant::now();
        let log = open_log(&path, config.clone());
        let first_open = start.elapsed();
        assert_eq!(log.watermarks().log_end, batches * RECORDS_PER_BATCH as u64);
        drop(log);
        eprintln!(
            "[storage bench] reopen_after_crash/{id}: built {:.2} GB in {:.1} s ({} segments: \
             {} sealed, active {:.0} MB); first open after the crash (syncs the dirty tail): \
             {:.1} ms{}",
            (batches * batch.len() as u64) as f64 / 1e9,
            built.as_secs_f64(),
            logs.len(),
            logs.len() - 1,
            active_len as f64 / 1e6,
            ms(first_open),
            if large {
                ""
            } else {
                " (set BENCH_LARGE=1 for 2 GB with 256 MiB segments)"
            },
        );
        CrashedLog {
            path,
            config,
            active_index: active.with_extension("index"),
            _dir: dir,
        }
    }

    /// Times one `Log::open` (a crash recovery), then drops the log
    /// without `close()` again, so every open is a recovery.
    fn time_open(&self) -> Duration {
        let start = Instant::now();
        let log = open_log(&self.path, self.config.clone());
        let elapsed = start.elapsed();
        drop(log);
        elapsed
    }
}

fn bench_reopen(c: &mut Criterion) {
    let large = std::env::var("BENCH_LARGE").is_ok_and(|v| v == "1");
    let (target_bytes, segment_bytes, id) = if large {
        (2_000_000_000u64, 256u64 << 20, "2GB_256MiB_segments")
    } else {
        (200_000_000u64, 32u64 << 20, "200MB_32MiB_segments")
    };
    let mut fixture: Option<CrashedLog> = None;
    let mut group = c.benchmark_group("reopen_after_crash");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function(BenchmarkId::new(id, "index_kept"), |b| {
        let fx =
            fixture.get_or_insert_with(|| CrashedLog::new(id, target_bytes, segment_bytes, large));
        b.iter_custom(|iters| (0..iters).map(|_| fx.time_open()).sum());
    });
    group.bench_function(BenchmarkId::new(id, "active_index_lost"), |b| {
        let fx =
            fixture.get_or_insert_with(|| CrashedLog::new(id, target_bytes, segment_bytes, large));
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    std::fs::remove_file(&fx.active_index).unwrap();
                    fx.time_open()
                })
                .sum()
        });
    });
    group.finish();
    // The fixture's directory is removed here.
}

criterion_group!(
    benches,
    bench_append,
    bench_read,
    bench_group_commit,
    bench_group_commit_callbacks,
    bench_reopen
);
criterion_main!(benches);
