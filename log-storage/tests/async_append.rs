//! Appends that complete through a callback: durable acks come from a
//! small fixed pool of committer threads that share syncs across appends,
//! for any number of partitions.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

use bytes::BytesMut;
use log_storage::{Ack, AppendOptions, Committer, Error, Log, LogConfig, SimFs};

fn batch() -> BytesMut {
    common::batch_of(0, [b"hello"], None)
}

/// A log at `/a/p` on `fs`, with the default settings.
fn open(fs: &SimFs) -> Arc<Log> {
    Arc::new(Log::open(Arc::new(fs.clone()), "/a/p", LogConfig::default()).unwrap())
}

/// Append options asking for a WRITTEN ack.
fn written() -> AppendOptions {
    AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    }
}

#[test]
fn durable_callbacks_arrive_once_each_with_dense_offsets() {
    let fs = SimFs::new();
    let log = open(&fs);
    let committer = Arc::new(Committer::start(2));
    let (tx, rx) = mpsc::channel();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (log, committer, tx) = (log.clone(), committer.clone(), tx.clone());
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let tx = tx.clone();
                    log.append_then(
                        &committer,
                        batch(),
                        AppendOptions::default(),
                        move |result| {
                            tx.send(result).unwrap();
                        },
                    );
                }
            })
        })
        .collect();
    drop(tx);
    for writer in writers {
        writer.join().unwrap();
    }
    let mut offsets: Vec<u64> = rx
        .iter()
        .map(|result| {
            let ack = result.unwrap();
            assert_eq!(ack.ack, Ack::Durable);
            assert!(
                ack.durable_end > ack.last_offset,
                "acked before durable: {ack:?}"
            );
            ack.base_offset
        })
        .collect();
    offsets.sort_unstable();
    assert_eq!(offsets, (0..1000).collect::<Vec<_>>());
    assert_eq!(log.watermarks().durable_end, 1000);
}

#[test]
fn written_callbacks_arrive_at_once() {
    let log = Arc::new(Log::open(Arc::new(SimFs::new()), "/a/p", LogConfig::default()).unwrap());
    let committer = Committer::start(1);
    let (tx, rx) = mpsc::channel();
    let options = written();
    log.append_then(&committer, batch(), options, move |r| tx.send(r).unwrap());
    let ack = rx
        .try_recv()
        .expect("called before append_then returned")
        .unwrap();
    assert_eq!(ack.ack, Ack::Written);
}

#[test]
fn a_failed_sync_fails_every_waiting_callback() {
    let fs = SimFs::new();
    let log = open(&fs);
    let committer = Committer::start(1);
    fs.fail_syncs(true);
    let (tx, rx) = mpsc::channel();
    for _ in 0..10 {
        let tx = tx.clone();
        log.append_then(&committer, batch(), AppendOptions::default(), move |r| {
            tx.send(r).unwrap()
        });
    }
    drop(tx);
    let results: Vec<_> = rx.iter().collect();
    assert_eq!(results.len(), 10);
    for result in results {
        assert!(matches!(result, Err(Error::Poisoned { .. })), "{result:?}");
    }
}

fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn many_partitions_share_the_committer_threads() {
    let fs = SimFs::new();
    let committer = Committer::start(2);
    let before = threads();
    let logs: Vec<Arc<Log>> = (0..200)
        .map(|p| {
            Arc::new(
                Log::open(
                    Arc::new(fs.clone()),
                    PathBuf::from(format!("/t/{p}")),
                    LogConfig::default(),
                )
                .unwrap(),
            )
        })
        .collect();
    let (tx, rx) = mpsc::channel();
    for log in &logs {
        let tx = tx.clone();
        log.append_then(&committer, batch(), AppendOptions::default(), move |r| {
            tx.send(r).unwrap()
        });
    }
    drop(tx);
    assert_eq!(rx.iter().filter(|r| r.is_ok()).count(), 200);
    // Other tests of this binary may run threads meanwhile; this one adds none.
    assert!(
        threads() <= before + 4,
        "threads grew with partitions: {before} -> {}",
        threads()
    );
}

/// `sync_soon` makes WRITTEN data durable through the committer, with no
/// waiter and no background flush (a bare log has none).
#[test]
fn sync_soon_makes_written_data_durable_without_a_waiter() {
    let fs = SimFs::new();
    let log = open(&fs);
    let committer = Committer::start(1);
    let written = written();
    for _ in 0..3 {
        log.append(batch(), written).unwrap();
    }
    assert_eq!(log.watermarks().durable_end, 0);
    log.sync_soon(&committer);
    // Until offset 2, the last written, is durable.
    let marks = log.wait_for(
        2,
        log_storage::Isolation::Durable,
        std::time::Duration::from_secs(30),
    );
    assert_eq!(marks.durable_end, 3);
    // Nothing to do now: no sync is queued for nothing.
    let syncs = log.usage().unwrap().syncs;
    log.sync_soon(&committer);
    drop(committer);
    assert_eq!(log.usage().unwrap().syncs, syncs);
}

/// Every DURABLE append, blocking or async, is one sample of the
/// durable-wait histogram; WRITTEN appends are none; every segment sync is
/// one sample of the fdatasync histogram.
#[test]
fn usage_counts_one_durable_wait_per_durable_append_and_one_sample_per_sync() {
    let fs = SimFs::new();
    let log = open(&fs);
    let committer = Committer::start(1);
    let written = written();
    for _ in 0..10 {
        log.append(batch(), AppendOptions::default()).unwrap();
    }
    for _ in 0..5 {
        log.append(batch(), written).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    for _ in 0..20 {
        let tx = tx.clone();
        log.append_then(&committer, batch(), AppendOptions::default(), move |r| {
            tx.send(r.is_ok()).unwrap();
        });
    }
    assert!((0..20).all(|_| rx.recv().unwrap()));
    let usage = log.usage().unwrap();
    assert_eq!(usage.durable_wait.count, 30);
    assert!(usage.durable_wait.p50 <= usage.durable_wait.p99);
    assert!(usage.durable_wait.p99 <= usage.durable_wait.max);
    assert!(usage.syncs > 0);
    assert!(
        usage.sync_latency.count >= usage.syncs,
        "{} fdatasync samples for {} syncs",
        usage.sync_latency.count,
        usage.syncs
    );
}

/// A dispatcher gets each sync's completions as one batch, on a committer
/// thread, and whatever it hands elsewhere completes exactly once: run
/// there, or run by dropping the batch unrun.
#[test]
fn a_dispatcher_gets_each_syncs_completions_as_a_batch_and_each_runs_once() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let log = Arc::new(Log::open(Arc::new(SimFs::new()), "/a/p", LogConfig::default()).unwrap());
    let batches = Arc::new(Mutex::new(Vec::new()));
    let handed = Arc::new(Mutex::new(Vec::new()));
    let dispatch = {
        let (batches, handed) = (batches.clone(), handed.clone());
        log_storage::Dispatch::new(move |completions: log_storage::Completions| {
            batches.lock().unwrap().push(completions.len());
            // Every other batch is handed to another thread, which drops
            // it unrun: dropping runs it.
            let mut handed = handed.lock().unwrap();
            if handed.len() % 2 == 0 {
                handed.push(std::thread::spawn(move || drop(completions)));
            } else {
                handed.push(std::thread::spawn(move || completions.run()));
            }
        })
    };
    let committer = Arc::new(Committer::start_with(2, dispatch));
    let calls = Arc::new(AtomicUsize::new(0));
    // An append whose batch a sync covered before its waiter was queued is
    // answered at once, on its own thread, in no batch.
    let inline = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (log, committer, tx, calls, inline) = (
                log.clone(),
                committer.clone(),
                tx.clone(),
                calls.clone(),
                inline.clone(),
            );
            std::thread::spawn(move || {
                let writer = std::thread::current().id();
                for _ in 0..100 {
                    let (tx, calls, inline) = (tx.clone(), calls.clone(), inline.clone());
                    log.append_then(&committer, batch(), AppendOptions::default(), move |r| {
                        calls.fetch_add(1, Ordering::SeqCst);
                        if std::thread::current().id() == writer {
                            inline.fetch_add(1, Ordering::SeqCst);
                        }
                        tx.send(r.unwrap().base_offset).unwrap();
                    });
                }
            })
        })
        .collect();
    drop(tx);
    for writer in writers {
        writer.join().unwrap();
    }
    let mut offsets: Vec<u64> = rx.iter().collect();
    for thread in handed.lock().unwrap().drain(..) {
        thread.join().unwrap();
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..400).collect::<Vec<_>>());
    assert_eq!(calls.load(Ordering::SeqCst), 400, "each completion once");
    let batches = batches.lock().unwrap();
    assert_eq!(
        batches.iter().sum::<usize>() + inline.load(Ordering::SeqCst),
        400,
        "every completion not answered inline came in a batch"
    );
    assert!(
        batches.iter().all(|&n| n > 0),
        "no empty batch: {batches:?}"
    );
}
