//! Durable async appends gathered into one write per sync cycle: they are
//! not in the file (nor readable) before the sync that covers them, they
//! land in offset order among direct writes, rolls and a close, and a
//! failed gathered write poisons the partition and leaves no partial batch.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use log_storage::{
    Ack, AppendOptions, Committer, Completions, Dispatch, Error, FaultKind, Isolation, Log,
    LogConfig, SimFs,
};

const DIR: &str = "/a/p";

fn file_len(fs: &SimFs) -> usize {
    fs.live_file(&std::path::Path::new(DIR).join("00000000000000000000.log"))
        .map_or(0, |bytes| bytes.len())
}

/// A committer with one thread whose first dispatch blocks until the
/// returned sender is sent to (or dropped): while it blocks, no sync runs,
/// so appends made meanwhile wait gathered.
fn held_committer() -> (Arc<Committer>, mpsc::Sender<()>, mpsc::Receiver<()>) {
    let (release, released) = mpsc::channel::<()>();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let gate = Mutex::new(Some((released, entered_tx)));
    let dispatch = Dispatch::new(move |completions: Completions| {
        let first = gate.lock().unwrap().take();
        if let Some((released, entered)) = first {
            entered.send(()).unwrap();
            let _ = released.recv();
        }
        completions.run();
    });
    (
        Arc::new(Committer::start_with(1, dispatch)),
        release,
        entered,
    )
}

type Acks = mpsc::Receiver<Result<log_storage::Appended, Error>>;

fn append_durable(
    log: &Arc<Log>,
    committer: &Committer,
    value: &[u8],
    acks: &mpsc::Sender<Result<log_storage::Appended, Error>>,
) {
    let acks = acks.clone();
    log.append_then(
        committer,
        common::batch_of(1, [value], None),
        AppendOptions::default(),
        move |result| acks.send(result).unwrap(),
    );
}

/// The default config with gathering on.
fn gathering() -> LogConfig {
    let mut config = LogConfig::default();
    config.gather_writes = true;
    config
}

fn open(fs: &SimFs, config: LogConfig) -> Arc<Log> {
    Arc::new(Log::open(Arc::new(fs.clone()), DIR, config).unwrap())
}

/// A gathering log (no zeroed runway: the file's length is what was
/// written) whose first append was synced by the held committer, which
/// now waits in its first dispatch: appends from here on wait gathered.
/// Its parts: the file system, the log, the held committer, the sender
/// that releases it, the acks' sender and receiver, and the file's length
/// after the first batch.
struct Held(
    SimFs,
    Arc<Log>,
    Arc<Committer>,
    mpsc::Sender<()>,
    mpsc::Sender<Result<log_storage::Appended, Error>>,
    Acks,
    usize,
);

fn held() -> Held {
    let fs = SimFs::new();
    let mut config = gathering();
    config.preallocate_bytes = 0;
    let log = open(&fs, config);
    let (committer, release, entered) = held_committer();
    let (tx, rx) = mpsc::channel();
    append_durable(&log, &committer, b"first!", &tx);
    entered.recv().unwrap();
    let first_len = file_len(&fs);
    Held(fs, log, committer, release, tx, rx, first_len)
}

#[test]
fn gathered_appends_reach_the_file_with_the_sync_that_covers_them() {
    let Held(fs, log, committer, release, tx, rx, first_len) = held();
    assert!(first_len > 0, "the first sync wrote the first batch");
    // The only committer thread is held: these three wait gathered.
    for value in [b"second", b"third!", b"fourth"] {
        append_durable(&log, &committer, value, &tx);
    }
    assert_eq!(file_len(&fs), first_len, "nothing written before the sync");
    assert_eq!(log.watermarks().log_end, 4, "offsets given at once");
    let early = log.read(1, 1 << 16, Isolation::Written).unwrap();
    assert_eq!(early.batch_count, 0, "a gathered batch is not readable yet");
    release.send(()).unwrap();
    let mut offsets: Vec<u64> = (0..4)
        .map(|_| {
            let ack = rx.recv().unwrap().unwrap();
            assert_eq!(ack.ack, Ack::Durable);
            assert!(ack.durable_end > ack.last_offset, "{ack:?}");
            ack.base_offset
        })
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, [0, 1, 2, 3]);
    assert_eq!(file_len(&fs), first_len * 4, "all four written");
    let values = common::read_values(&log, common::Keep::All, "after the sync");
    let values: Vec<&[u8]> = values.values().map(Vec::as_slice).collect();
    assert_eq!(values, [&b"first!"[..], b"second", b"third!", b"fourth"]);
    // What was acked durable survives a power loss.
    drop(log);
    fs.crash(7);
    let log = open(&fs, LogConfig::default());
    assert_eq!(log.watermarks().log_end, 4);
    assert_eq!(
        common::read_values(&log, common::Keep::All, "after the crash").len(),
        4
    );
}

#[test]
fn gathered_and_direct_appends_land_in_offset_order_across_rolls_and_close() {
    let fs = SimFs::new();
    let mut config = gathering();
    config.segment_max_bytes = 16 * 1024;
    config.index_interval_bytes = 512;
    config.limits.max_batch_bytes = 8 * 1024;
    let log = open(&fs, config.clone());
    let committer = Arc::new(Committer::start(2));
    let (tx, rx) = mpsc::channel();
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let (log, committer, tx) = (log.clone(), committer.clone(), tx.clone());
            std::thread::spawn(move || {
                for i in 0..150u64 {
                    let value = format!("w{writer}i{i}");
                    match (writer + i) % 5 {
                        // WRITTEN, direct.
                        0 => {
                            let options = AppendOptions {
                                ack: Ack::Written,
                                ..AppendOptions::default()
                            };
                            let ack = log
                                .append(common::batch_of(1, [value.as_bytes()], None), options)
                                .unwrap();
                            tx.send((ack.base_offset, value)).unwrap();
                        }
                        // Large: written directly even by a durable async append.
                        1 => {
                            let mut big = value.clone().into_bytes();
                            big.resize(5000, b'x');
                            let tx = tx.clone();
                            log.append_then(
                                &committer,
                                common::batch_of(1, [big], None),
                                AppendOptions::default(),
                                move |r| tx.send((r.unwrap().base_offset, value)).unwrap(),
                            );
                        }
                        // Small durable async appends: gathered.
                        _ => {
                            let tx = tx.clone();
                            log.append_then(
                                &committer,
                                common::batch_of(1, [value.as_bytes()], None),
                                AppendOptions::default(),
                                move |r| tx.send((r.unwrap().base_offset, value)).unwrap(),
                            );
                        }
                    }
                }
            })
        })
        .collect();
    drop(tx);
    for writer in writers {
        writer.join().unwrap();
    }
    let expected: std::collections::BTreeMap<u64, String> = rx.iter().collect();
    assert_eq!(expected.len(), 600);
    assert_eq!(
        expected.keys().copied().collect::<Vec<_>>(),
        (0..600).collect::<Vec<_>>()
    );
    let check = |log: &Log, ctx: &str| {
        let found = common::read_values(log, common::Keep::All, ctx);
        assert_eq!(found.len(), 600, "{ctx}");
        for (offset, value) in &found {
            assert!(
                value.starts_with(expected[offset].as_bytes()),
                "{ctx}: offset {offset} holds another append's record"
            );
        }
    };
    log.sync().unwrap();
    check(&log, "live");
    assert!(log.usage().unwrap().segment_count > 10, "rolls happened");
    log.close().unwrap();
    drop(log);
    let log = open(&fs, config);
    check(&log, "reopened");
}

#[test]
fn a_failed_gathered_write_poisons_the_partition_and_leaves_no_partial_batch() {
    let Held(fs, log, committer, release, tx, rx, first_len) = held();
    for value in [b"second", b"third!"] {
        append_durable(&log, &committer, value, &tx);
    }
    // The held committer's next file operation is the gathered write: half
    // of it lands, then it fails.
    fs.fail_nth(0, FaultKind::ShortWrite);
    release.send(()).unwrap();
    let mut results: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
    results.sort_by_key(|r| r.as_ref().map_or(u64::MAX, |a| a.base_offset));
    assert_eq!(results[0].as_ref().unwrap().base_offset, 0, "{results:?}");
    for failed in &results[1..] {
        assert!(matches!(failed, Err(Error::Poisoned { .. })), "{failed:?}");
    }
    assert_eq!(file_len(&fs), first_len, "the half-written batches are cut");
    assert_eq!(log.watermarks().durable_end, 1);
    let refused = log.append(
        common::batch_of(1, [b"late"], None),
        AppendOptions::default(),
    );
    assert!(
        matches!(refused, Err(Error::Poisoned { .. })),
        "{refused:?}"
    );
    // The next open finds the one durable batch and nothing torn.
    drop(log);
    drop(committer);
    fs.crash(3);
    let log = open(&fs, LogConfig::default());
    assert_eq!(log.watermarks().log_end, 1);
}
