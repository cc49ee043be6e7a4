//! The defects found by crash and bad-input testing (issue 10), one test
//! each, named after what it proves. Each scenario builds the exact disk
//! state a power loss or a failed `fdatasync` can leave, through the
//! simulated file system, then reopens and checks what is served.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::BytesMut;
use log_format::{BatchBuilder, Limits, NewRecord};
use log_storage::{
    Ack, AppendOptions, Appended, Committer, Error, FaultKind, Fs, Isolation, Log, LogConfig,
    OpenMode, SimFs, Store, TopicConfig,
};

use common::{Gate, GatedFs};

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.index_interval_bytes = 64;
    config.limits.max_batch_bytes = 4096;
    config
}

/// Batch `batch` of `records` 60-byte values, from `(producer_id,
/// base_sequence)` if any.
fn encode(batch: u64, records: u64, producer: Option<(i64, i32)>) -> BytesMut {
    common::encode(batch, records, 60, producer)
}

fn written() -> AppendOptions {
    AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    }
}

fn segment_logs(fs: &SimFs, dir: &Path) -> Vec<u64> {
    let mut bases: Vec<u64> = fs
        .read_dir(dir)
        .unwrap()
        .into_iter()
        .filter_map(|e| {
            let name = e.name.to_str()?.to_owned();
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    bases.sort_unstable();
    bases
}

/// Reads every record from the log start with `isolation`; panics on any
/// read error (a damaged batch must never be served).
fn read_all(log: &Log, isolation: Isolation) -> u64 {
    let marks = log.watermarks();
    let mut offset = marks.log_start;
    let mut records = 0;
    loop {
        let result = log
            .read(offset, 1 << 16, isolation)
            .unwrap_or_else(|err| panic!("read at {offset}: {err}"));
        if result.batch_count == 0 {
            return records;
        }
        records += result.next_offset - offset;
        offset = result.next_offset;
    }
}

/// Issue 10, item 1: a crash at any step of a roll keeps the idempotent
/// producer's state: a retry of each of the last five acknowledged batches
/// answers its original offsets and writes nothing.
#[test]
fn a_crash_at_every_step_of_a_roll_keeps_the_producer_state() {
    let dir = Path::new("/data/t/0");
    let mut steps = 0;
    for step in 0.. {
        let mut roll_done = false;
        for seed in 0..6u64 {
            let fs = SimFs::new();
            let (acks, report) = common::crash_after(&fs, seed.wrapping_mul(7919) + step, |fs| {
                let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
                // A first roll, so a snapshot from an older segment exists.
                let mut acks: Vec<(BytesMut, Appended)> = Vec::new();
                for batch in 0..12u64 {
                    if batch == 4 {
                        log.roll_now().unwrap();
                    }
                    let bytes = encode(batch, 3, Some((7, batch as i32 * 3)));
                    let ack = log.append(bytes.clone(), AppendOptions::default()).unwrap();
                    acks.push((bytes, ack));
                }
                fs.fail_nth(step, FaultKind::Eio);
                let rolled = log.roll_now();
                roll_done = rolled.is_ok() && fs.is_fault_armed();
                acks
            });
            let log = common::reopen(
                format_args!("step {step}"),
                Some(&report),
                Log::open(Arc::new(fs.clone()), dir, config()),
            );
            for (bytes, ack) in &acks[acks.len() - 5..] {
                let retry = log
                    .append(bytes.clone(), AppendOptions::default())
                    .unwrap_or_else(|err| panic!("step {step}: retry failed: {err} ({report})"));
                assert!(
                    retry.duplicate,
                    "step {step}: the retry of the batch at {} was appended again at {} ({report})",
                    ack.base_offset, retry.base_offset
                );
                assert_eq!(
                    (retry.base_offset, retry.last_offset),
                    (ack.base_offset, ack.last_offset),
                    "step {step}: original offsets ({report})"
                );
            }
            assert_eq!(log.watermarks().log_end, 36, "step {step} ({report})");
        }
        steps = step;
        if roll_done {
            break;
        }
    }
    assert!(steps > 3, "the roll took {steps} operations");
}

/// Issue 10, item 5: once a roll's `fdatasync` failed, no sync path (the
/// group-commit leader, the committer, `sync`) fsyncs again and
/// acknowledges what may be gone, not even the new segment's.
#[test]
fn a_failed_sync_during_a_roll_poisons_every_sync_path() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let log = Arc::new(Log::open(Arc::new(fs.clone()), dir, config()).unwrap());
    let durable = log
        .append(encode(0, 2, None), AppendOptions::default())
        .unwrap();
    log.append(encode(1, 2, None), written()).unwrap();
    fs.fail_syncs(true);
    // The roll's debt is paid by a sync leader (here `roll_now` itself):
    // the old segment's sync is the one that fails.
    let err = log.roll_now().unwrap_err();
    fs.fail_syncs(false);
    assert!(matches!(err, Error::Poisoned { .. }), "{err}");
    let err = log.sync().unwrap_err();
    assert!(
        matches!(err, Error::Poisoned { .. }),
        "sync after a failed roll: {err}"
    );
    assert_eq!(log.watermarks().durable_end, durable.last_offset + 1);
    // A durable append through the committer is refused too.
    let committer = Committer::start(1);
    let (tx, rx) = std::sync::mpsc::channel();
    log.append_then(
        &committer,
        encode(2, 1, None),
        AppendOptions::default(),
        move |r| {
            tx.send(r).unwrap();
        },
    );
    let result = rx.recv().unwrap();
    assert!(matches!(result, Err(Error::Poisoned { .. })), "{result:?}");
    assert_eq!(log.watermarks().durable_end, durable.last_offset + 1);
}

/// A log on `fs` in `dir` holding one durable batch of two records.
fn opened_with_a_durable_batch(fs: &SimFs, dir: &Path) -> (Log, Appended) {
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    let first = log
        .append(encode(0, 2, None), AppendOptions::default())
        .unwrap();
    (log, first)
}

/// Issue 10, item 3: recovery verifies every byte past the recovery point,
/// even where the index file (which reached the disk) claims to cover it.
#[test]
fn recovery_verifies_every_byte_past_the_recovery_point_whatever_the_index_says() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let (log, first) = opened_with_a_durable_batch(&fs, dir);
    let point = fs.live_file(&dir.join("recovery-point")).unwrap();
    let log_path = dir.join("00000000000000000000.log");
    let synced_len = fs.live_file(&log_path).unwrap().len() as u64;
    for batch in 1..6 {
        log.append(encode(batch, 2, None), written()).unwrap();
    }
    // The index entries reach their file with this sync.
    log.sync().unwrap();
    drop(log);
    // The disk as a power loss during that sync can leave it: the index
    // pages written back, the first unsynced page of the log not, the
    // recovery point as of the sync before.
    let handle = fs
        .open(&dir.join("recovery-point"), OpenMode::ReadWrite)
        .unwrap();
    handle.write_all_at(&point, 0).unwrap();
    handle.set_len(point.len() as u64).unwrap();
    handle.sync_data().unwrap();
    let handle = fs.open(&log_path, OpenMode::ReadWrite).unwrap();
    handle.write_all_at(&[0u8; 100], synced_len).unwrap();
    handle.sync_data().unwrap();
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    let marks = log.watermarks();
    assert_eq!(
        marks.log_end,
        first.last_offset + 1,
        "cut at the first bad byte past the point"
    );
    assert!(marks.epoch >= 1, "the cut moved the epoch");
    assert_eq!(read_all(&log, Isolation::Durable), 2);
    let next = log
        .append(encode(9, 1, None), AppendOptions::default())
        .unwrap();
    assert_eq!(next.base_offset, 2);
}

/// Issue 10, item 4: a partition whose `fdatasync` failed trusts nothing
/// past its last successful sync when reopened: what the failed sync
/// covered is cut (the page cache may claim bytes the disk never got), and
/// the epoch moves.
#[test]
fn a_poisoned_partition_reopens_without_what_its_failed_sync_covered() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let (log, first) = opened_with_a_durable_batch(&fs, dir);
    log.append(encode(1, 2, None), written()).unwrap();
    fs.fail_syncs(true);
    assert!(matches!(log.sync(), Err(Error::Poisoned { .. })));
    fs.fail_syncs(false);
    drop(log);
    // Same boot (no power loss): the page cache still holds batch 1.
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    let marks = log.watermarks();
    assert_eq!(
        marks.log_end,
        first.last_offset + 1,
        "the unsynced batch is cut"
    );
    assert_eq!(marks.epoch, 1, "and the epoch moved");
    assert_eq!(read_all(&log, Isolation::Written), 2);
    drop(log);
    fs.crash(1);
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    assert_eq!(log.watermarks().log_end, first.last_offset + 1);
}

/// Issue 10, item 6: a crash (or an error) in the middle of
/// A log on `fs` in `dir` of nine durable batches in three segments
/// (bases 0, 6 and 12).
fn three_segments(fs: &SimFs, dir: &Path) -> Log {
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    for batch in 0..9u64 {
        if batch % 3 == 0 && batch > 0 {
            log.roll_now().unwrap();
        }
        log.append(encode(batch, 2, None), AppendOptions::default())
            .unwrap();
    }
    log
}

/// `delete_records` never leaks a segment below the persisted log start:
/// recovery and the next call finish the deletion.
#[test]
fn an_interrupted_delete_records_is_finished_by_recovery_and_by_a_repeat() {
    let dir = Path::new("/data/t/0");
    let mut leaked_cases = 0;
    for step in 0..40 {
        let fs = SimFs::new();
        let log = three_segments(&fs, dir);
        assert_eq!(segment_logs(&fs, dir), vec![0, 6, 12]);
        fs.fail_nth(step, FaultKind::Eio);
        let first = log.delete_records(13);
        fs.disarm();
        if first.is_err() {
            leaked_cases += 1;
        }
        // A repeat on the live log finishes the job.
        let start = log.delete_records(13).unwrap();
        assert_eq!(start, 13, "step {step}");
        assert_eq!(segment_logs(&fs, dir), vec![12], "step {step}: repeat");
        drop(log);

        // The same interruption, then a crash: recovery finishes it.
        let fs = SimFs::new();
        let log = three_segments(&fs, dir);
        common::crash_after(&fs, step, |fs| {
            fs.fail_nth(step, FaultKind::Eio);
            let _ = log.delete_records(13);
            drop(log);
        });
        let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
        let start = log.watermarks().log_start;
        let kept: Vec<u64> = segment_logs(&fs, dir);
        let below: Vec<u64> = kept
            .iter()
            .copied()
            .filter(|&b| kept.iter().any(|&next| next > b && next <= start))
            .collect();
        assert!(
            below.is_empty(),
            "step {step}: segments {below:?} below the log start {start} leaked"
        );
        assert_eq!(
            read_all(&log, Isolation::Durable),
            18 - start,
            "step {step}"
        );
    }
    assert!(leaked_cases > 0, "some step interrupted the deletion");
}

/// Issue 10, item 2: a consumer offset is never committed past what is
/// durable: a commit above the durable end makes the log durable up to it
/// first, so after a power loss the committed offset never points past the
/// recovered end.
#[test]
fn a_committed_offset_never_points_past_the_recovered_end() {
    for seed in 0..20u64 {
        let data = PathBuf::from("/data");
        let fs = SimFs::new();
        let ((), report) = common::crash_after(&fs, seed, |fs| {
            let store = Store::open(Arc::new(fs.clone()), &data, None).unwrap();
            store.create_topic("t", 1, TopicConfig::default()).unwrap();
            let log = store.partition("t", 0).unwrap();
            log.append(encode(0, 10, None), AppendOptions::default())
                .unwrap();
            log.append(encode(1, 10, None), written()).unwrap();
            store.commit_offset("group", "t", 0, 20, b"").unwrap();
        });
        let store = Store::open(Arc::new(fs.clone()), &data, None).unwrap();
        let log = store.partition("t", 0).unwrap();
        let committed = store
            .committed_offset("group", "t", 0)
            .unwrap()
            .map(|c| c.0);
        let end = log.watermarks().log_end;
        assert!(
            committed.is_some_and(|c| c <= end),
            "seed {seed}: committed {committed:?} past the recovered end {end} ({report})"
        );
    }
}

/// Issue 10, item 7: a produced batch's offset deltas must be dense
/// (0..count-1). One small batch claiming a last offset delta of 2^32-2
/// would force a roll and burn four billion offsets; it is refused as an
/// invalid batch and changes nothing.
#[test]
fn a_batch_whose_offset_deltas_are_not_dense_is_refused() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    log.append(encode(0, 2, None), AppendOptions::default())
        .unwrap();
    let before = fs.live_snapshot();
    // One record whose offset delta is 2^31-2: headers from the builder,
    // the record written by hand (Kafka's zig-zag varints), both checksums
    // resealed.
    let mut builder = BatchBuilder::new(Limits::default());
    builder.push(&NewRecord::value(0, b"x")).unwrap();
    let built = builder.finish().unwrap();
    let mut sparse = BytesMut::from(&built[..log_format::HEADER_LEN]);
    let delta = i32::MAX as u32 - 1;
    sparse.extend_from_slice(&[22, 0, 0, 0xFC, 0xFF, 0xFF, 0xFF, 0x0F, 0x01, 0x02, b'x', 0]);
    let len = sparse.len() as u32;
    sparse[log_format::field::LENGTH..][..4].copy_from_slice(&len.to_le_bytes());
    sparse[log_format::field::BATCH_LENGTH..][..4].copy_from_slice(&(len - 28).to_be_bytes());
    sparse[log_format::field::LAST_OFFSET_DELTA..][..4].copy_from_slice(&delta.to_be_bytes());
    let kafka = crc32c::crc32c(&sparse[log_format::field::KAFKA_CRC_START..]);
    sparse[log_format::field::KAFKA_CRC..][..4].copy_from_slice(&kafka.to_be_bytes());
    let crc = crc32fast::hash(&sparse[4..log_format::HEADER_LEN]);
    sparse[..4].copy_from_slice(&crc.to_le_bytes());
    assert!(log_format::BatchView::decode(&sparse, 0, &Limits::default()).is_ok());
    let err = log.append(sparse, AppendOptions::default()).unwrap_err();
    assert!(matches!(err, Error::InvalidBatch { .. }), "{err}");
    assert_eq!(fs.live_snapshot(), before, "nothing written");
    assert_eq!(log.watermarks().log_end, 2);
    assert_eq!(segment_logs(&fs, dir), vec![0]);
}

/// Issue 10, item 15: idempotent producer ids idle longer than
/// `producer_id_expiration` (default 7 days) are dropped at the next
/// snapshot; active ones stay.
#[test]
fn idle_producer_ids_expire_at_the_next_snapshot() {
    assert_eq!(
        LogConfig::default().producer_id_expiration,
        std::time::Duration::from_secs(7 * 24 * 3600)
    );
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let mut config = config();
    config.producer_id_expiration = std::time::Duration::from_millis(50);
    let log = Log::open(Arc::new(fs.clone()), dir, config.clone()).unwrap();
    let idle = encode(0, 2, Some((7, 0)));
    log.append(idle.clone(), AppendOptions::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(120));
    let active = encode(1, 2, Some((8, 0)));
    let first = log
        .append(active.clone(), AppendOptions::default())
        .unwrap();
    log.roll_now().unwrap();
    // The active producer is still known: its retry is a duplicate.
    assert!(
        log.append(active.clone(), AppendOptions::default())
            .unwrap()
            .duplicate
    );
    // The idle one was forgotten: its retry is a new producer's batch.
    let again = log.append(idle.clone(), AppendOptions::default()).unwrap();
    assert!(!again.duplicate);
    assert_eq!(again.base_offset, 4);
    // And so it stays after a reopen (the snapshot no longer holds it).
    drop(log);
    let log = Log::open(Arc::new(fs.clone()), dir, config).unwrap();
    let retry = log.append(active, AppendOptions::default()).unwrap();
    assert!(retry.duplicate && retry.base_offset == first.base_offset);
}

/// Issue 10, item 8: an append that rolls runs no `fdatasync` (the roll's
/// syncs are the next sync leader's): a WRITTEN append that fills a segment
/// succeeds while every fsync fails, and only the leader's sync then fails
/// and poisons the partition.
#[test]
fn an_append_that_rolls_runs_no_fsync() {
    let dir = Path::new("/data/t/0");
    let fs = SimFs::new();
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    fs.fail_syncs(true);
    for batch in 0..80 {
        log.append(encode(batch, 3, None), written()).unwrap();
    }
    assert!(segment_logs(&fs, dir).len() > 3, "the appends rolled");
    assert!(matches!(log.sync(), Err(Error::Poisoned { .. })));
    fs.fail_syncs(false);
    assert!(matches!(
        log.append(encode(99, 1, None), written()),
        Err(Error::Poisoned { .. })
    ));
}

/// A gate that blocks whole-file reads of index files while armed (what
/// loading a sealed index does), to show who waits for them.
#[derive(Debug, Clone, Default)]
struct IndexReadGate(Arc<(std::sync::Mutex<(bool, usize)>, std::sync::Condvar)>);

impl IndexReadGate {
    fn set(&self, armed: bool) {
        let (lock, wake) = &*self.0;
        lock.lock().unwrap().0 = armed;
        wake.notify_all();
    }
    fn blocked(&self) -> usize {
        self.0.0.lock().unwrap().1
    }
}

impl Gate for IndexReadGate {
    fn before_read(&self, path: &Path) {
        if path.extension().is_some_and(|e| e == "index") {
            let (lock, wake) = &*self.0;
            let mut gate = lock.lock().unwrap();
            gate.1 += 1;
            while gate.0 {
                gate = wake.wait(gate).unwrap();
            }
            gate.1 -= 1;
        }
    }
}

/// Issue 10, item 8: no partition lock is held across a file read. While a
/// read is loading a sealed segment's index (blocked here inside the file
/// system), the partition's watermarks, appends and other reads go on.
#[test]
fn loading_a_sealed_index_holds_no_partition_lock() {
    let dir = Path::new("/data/t/0");
    let fs = GatedFs {
        inner: SimFs::new(),
        gate: IndexReadGate::default(),
    };
    let log = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
    for batch in 0..60 {
        log.append(encode(batch, 3, None), AppendOptions::default())
            .unwrap();
    }
    log.close().unwrap();
    drop(log);
    let log = Arc::new(Log::open(Arc::new(fs.clone()), dir, config()).unwrap());
    fs.gate.set(true);
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || read_all(&log, Isolation::Durable))
    };
    while fs.gate.blocked() == 0 {
        std::thread::yield_now();
    }
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let marks = log.watermarks();
            let appended = log.append(encode(99, 1, None), written()).unwrap();
            let tail = log
                .read(appended.base_offset, 1 << 16, Isolation::Written)
                .unwrap();
            tx.send((marks, tail.batch_count)).unwrap();
        });
    }
    let answered = rx.recv_timeout(std::time::Duration::from_secs(20));
    fs.gate.set(false);
    let (marks, tail) = answered.expect("the partition stayed locked while an index was read");
    assert_eq!((marks.log_end, tail), (180, 1));
    assert_eq!(reader.join().unwrap(), 180);
}
