//! Helpers the storage tests share: one seeded RNG and the seed list, one
//! crash harness (a life on the simulated file system, its end, the
//! reopen), the batch builders, one whole-log read, and a wrapper file
//! system that gates operations. Each test binary declares `mod common;`
//! and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::{self, Display};
use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use log_format::{BatchBuilder, BytesScanner, Limits, NewRecord, ProducerInfo, Scanned};
use log_storage::{
    CrashReport, FaultKind, FileHandle, Fs, FsLayer, Isolation, Log, OpenMode, SimFs, SplitMix64,
    Watermarks,
};

// ---------------------------------------------------------------------------
// Seeds

/// The seeded stream of choices of a test ([`SplitMix64`], the one `SimFs`
/// draws its crashes from), with the tests' own `below`.
#[derive(Debug, Clone)]
pub(crate) struct Rng(SplitMix64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(SplitMix64::new(seed))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A number in `0..n` (0 when `n` is 0), by modulo: the choices every
    /// seed has made since these tests were written.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// One of the injected fault kinds.
    pub(crate) fn fault(&mut self) -> FaultKind {
        [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite][self.below(3) as usize]
    }
}

/// The seeds of a seeded run: only the one in the environment variable
/// `var` when it is set (to rerun a failure), else `0..count`.
pub(crate) fn seeds(var: &str, count: u64) -> Vec<u64> {
    match std::env::var(var) {
        Ok(seed) => vec![
            seed.parse()
                .unwrap_or_else(|err| panic!("{var}={seed} is not a seed: {err}")),
        ],
        Err(_) => (0..count).collect(),
    }
}

// ---------------------------------------------------------------------------
// The crash harness

/// One life on `fs` that ends at a power loss: runs `life` (which arms its
/// own fault with `fs.fail_nth`, if any, where it wants it, and drops every
/// log and store it opened before returning: the process dies with the
/// power), disarms a fault that has not fired, crashes the file system with
/// `seed`, and returns what `life` returned with the crash report.
pub(crate) fn crash_after<T>(
    fs: &SimFs,
    seed: u64,
    life: impl FnOnce(&SimFs) -> T,
) -> (T, CrashReport) {
    let out = restart_after(fs, life);
    let report = fs.crash(seed);
    (out, report)
}

/// One life on `fs` that ends with the process only (same boot, the page
/// cache keeps everything): runs `life` as [`crash_after`] does and disarms
/// a fault that has not fired.
pub(crate) fn restart_after<T>(fs: &SimFs, life: impl FnOnce(&SimFs) -> T) -> T {
    let out = life(fs);
    fs.disarm();
    out
}

/// What a reopen after [`crash_after`] or [`restart_after`] opened; a
/// failure names `ctx` and the crash report, if any.
pub(crate) fn reopen<R, E: Display>(
    ctx: impl Display,
    report: Option<&CrashReport>,
    opened: Result<R, E>,
) -> R {
    opened.unwrap_or_else(|err| match report {
        Some(report) => panic!("{ctx}: reopen failed: {err} ({report})"),
        None => panic!("{ctx}: reopen failed: {err}"),
    })
}

// ---------------------------------------------------------------------------
// Batches

/// A batch of `values`, every record at `timestamp`, from `producer` if any.
pub(crate) fn batch_of<V: AsRef<[u8]>>(
    timestamp: i64,
    values: impl IntoIterator<Item = V>,
    producer: Option<ProducerInfo>,
) -> BytesMut {
    let mut builder = BatchBuilder::new(Limits::default());
    for value in values {
        builder
            .push(&NewRecord::value(timestamp, value.as_ref()))
            .unwrap();
    }
    if let Some(producer) = producer {
        builder.set_producer(producer);
    }
    BytesMut::from(&builder.finish().unwrap()[..])
}

/// The value of record `record` of batch `batch`: `b{batch}r{record}:`
/// padded to `len` bytes with a letter of the batch's.
pub(crate) fn value(batch: u64, record: u64, len: usize) -> Vec<u8> {
    let mut v = format!("b{batch}r{record}:").into_bytes();
    v.resize(len.max(v.len()), b'a' + (batch % 26) as u8);
    v
}

/// Batch `batch` of `records` [`value`]s of `len` bytes, from the
/// idempotent producer `(producer_id, base_sequence)` (epoch 0) if any.
pub(crate) fn encode(
    batch: u64,
    records: u64,
    len: usize,
    producer: Option<(i64, i32)>,
) -> BytesMut {
    batch_of(
        1_700_000_000_000,
        (0..records).map(|r| value(batch, r, len)),
        producer.map(|(producer_id, base_sequence)| ProducerInfo {
            producer_id,
            producer_epoch: 0,
            base_sequence,
        }),
    )
}

// ---------------------------------------------------------------------------
// Reading the whole log

/// Which records of each served batch a whole-log read keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Every record of every batch served.
    All,
    /// Those at or past the log start the read began at.
    FromLogStart,
    /// Those at or past the offset each read asked for.
    FromReadOffset,
}

/// Reads the log from its start to its end as of the call, with WRITTEN
/// isolation, 64 KiB at a time: every read must succeed and serve a batch,
/// every batch must be whole. `record` gets each kept record's offset and
/// value. Returns the watermarks the read went by; failures name `ctx`.
pub(crate) fn read_written(
    log: &Log,
    keep: Keep,
    ctx: impl Display,
    mut record: impl FnMut(u64, Option<&[u8]>),
) -> Watermarks {
    let marks = log.watermarks();
    let mut offset = marks.log_start;
    while offset < marks.log_end {
        let result = log
            .read(offset, 1 << 16, Isolation::Written)
            .unwrap_or_else(|err| panic!("{ctx}: read at {offset} failed: {err}"));
        assert!(
            result.batch_count > 0,
            "{ctx}: no batch at {offset} below the end"
        );
        let from = match keep {
            Keep::All => 0,
            Keep::FromLogStart => marks.log_start,
            Keep::FromReadOffset => offset,
        };
        for scanned in BytesScanner::new(result.batches, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("{ctx}: served a bad batch: {scanned:?}");
            };
            for r in batch.records().filter(|r| r.offset() >= from) {
                record(r.offset(), r.value());
            }
        }
        offset = result.next_offset;
    }
    marks
}

/// [`read_written`] into a map of offset to value; a record without a
/// value fails it.
pub(crate) fn read_values(log: &Log, keep: Keep, ctx: impl Display) -> BTreeMap<u64, Vec<u8>> {
    let mut found = BTreeMap::new();
    read_written(log, keep, ctx, |offset, value| {
        found.insert(offset, value.unwrap().to_vec());
    });
    found
}

/// One record as a reader sees it: offset, key (empty when null), value
/// (`None`: a tombstone).
pub(crate) type Keyed = (u64, Vec<u8>, Option<Vec<u8>>);

/// Every record from the log start to its end, read `chunk` bytes at a
/// time with WRITTEN isolation: what a reader from the start sees. Every
/// served batch must be valid (both checksums, the records) and every read
/// must move on.
pub(crate) fn read_keyed(log: &Log, chunk: usize) -> Vec<Keyed> {
    let marks = log.watermarks();
    let mut offset = marks.log_start;
    let mut seen = Vec::new();
    while offset < marks.log_end {
        let result = log.read(offset, chunk, Isolation::Written).unwrap();
        assert!(result.batch_count > 0, "nothing served at {offset}");
        for scanned in BytesScanner::new(result.batches, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("a bad batch served: {scanned:?}");
            };
            let batch =
                log_format::Batch::decode(batch.into_bytes(), &Limits::unlimited()).unwrap();
            for record in batch.records().filter(|r| r.offset() >= offset) {
                seen.push((
                    record.offset(),
                    record.key().unwrap_or_default().to_vec(),
                    record.value().map(<[u8]>::to_vec),
                ));
            }
        }
        assert!(result.next_offset > offset, "a read at {offset} moved on");
        offset = result.next_offset;
    }
    seen
}

/// A read from any offset of the log starts with the first record at or
/// past it of `offsets` (what a reader from the start saw): no stale
/// segment hides under a cleaned one.
pub(crate) fn check_reads_from_every_offset(log: &Log, offsets: &[u64], ctx: impl Display) {
    let marks = log.watermarks();
    for offset in marks.log_start..marks.log_end {
        let result = log.read(offset, 1, Isolation::Written).unwrap();
        let first = BytesScanner::new(result.batches, 0, Limits::unlimited())
            .find_map(|s| match s {
                Scanned::Batch(batch) => Some(batch),
                _ => None,
            })
            .and_then(|batch| batch.records().map(|r| r.offset()).find(|o| *o >= offset));
        let expected = offsets.iter().copied().find(|o| *o >= offset);
        assert_eq!(
            first, expected,
            "{ctx}: the first record read from {offset}"
        );
    }
}

// ---------------------------------------------------------------------------
// A gated file system

/// What a [`GatedFs`] does in front of the simulated file system.
pub(crate) trait Gate: Send + Sync + fmt::Debug {
    /// Wraps each file opened or created (by default, as it is).
    fn file(&self, file: Arc<dyn FileHandle>) -> Arc<dyn FileHandle> {
        file
    }

    /// Runs before a whole-file read of `path` (by default, nothing).
    fn before_read(&self, _path: &Path) {}
}

/// The simulated file system behind a [`Gate`], which can park or watch
/// operations; everything else goes straight through (a whole-file read
/// too, after [`Gate::before_read`]: the file it reads is not wrapped).
#[derive(Debug, Clone)]
pub(crate) struct GatedFs<G> {
    pub(crate) inner: SimFs,
    pub(crate) gate: G,
}

impl<G: Gate> FsLayer for GatedFs<G> {
    fn inner(&self) -> &dyn Fs {
        &self.inner
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.gate.file(self.inner.create_new(path)?))
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.gate.file(self.inner.open(path, mode)?))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.gate.before_read(path);
        self.inner.read(path)
    }
}

/// How many segment log files (`*.log`) a partition directory on the real
/// file system holds.
pub(crate) fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("list the partition directory")
        .filter(|e| {
            e.as_ref()
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".log")
        })
        .count()
}
