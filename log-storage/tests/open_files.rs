//! Issue 10, item 7: open files grow with neither sealed segments nor idle
//! partitions. A store's files go through a bounded pool (sealed segments
//! opened on demand, the least recently used closed), and opening a
//! partition opens none of its sealed segments.
//!
//! One test in this binary, so the process's own descriptor count
//! (`/proc/self/fd`) is meaningful.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::BytesMut;
use log_storage::{Ack, AppendOptions, Isolation, Store, TopicConfig};
use tempfile::TempDir;

const PARTITIONS: u32 = 40;
const BUDGET: usize = 32;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn batch(partition: u32, i: u64) -> BytesMut {
    let value = format!("p{partition}-{i}-{}", "v".repeat(1000));
    common::batch_of(0, [value], None)
}

fn config() -> TopicConfig {
    let mut config = TopicConfig::default();
    config.segment_max_bytes = 4096;
    config.max_batch_bytes = 4096;
    config
}

#[test]
fn open_files_stay_within_the_budget_whatever_the_partitions_and_segments() {
    let tmp = TempDir::new().unwrap();
    let before = open_fds();
    {
        let store = Store::open_locked(tmp.path())
            .unwrap()
            .with_open_files_budget(BUDGET);
        store.create_topic("t", PARTITIONS, config()).unwrap();
        let written = AppendOptions {
            ack: Ack::Written,
            ..AppendOptions::default()
        };
        for p in 0..PARTITIONS {
            let log = store.partition("t", p).unwrap();
            for i in 0..24 {
                log.append(batch(p, i), written).unwrap();
            }
        }
        // Synced, no file is dirty: the pool is back within its budget.
        store.flush_written().unwrap();
        store
            .partition("t", 0)
            .unwrap()
            .append(batch(0, 24), written)
            .unwrap();
        assert!(
            store.open_files() <= BUDGET + 1,
            "{} open",
            store.open_files()
        );
        // Every record of every partition reads back, sealed segments too.
        for p in 0..PARTITIONS {
            let log = store.partition("t", p).unwrap();
            let mut offset = 0;
            while offset < log.watermarks().log_end {
                let read = log.read(offset, 1 << 20, Isolation::Written).unwrap();
                assert!(read.batch_count > 0);
                offset = read.next_offset;
            }
        }
        assert!(
            store.open_files() <= BUDGET + 1,
            "{} open",
            store.open_files()
        );
        let fds = open_fds() - before;
        assert!(
            fds <= BUDGET + 16,
            "{fds} descriptors open with a budget of {BUDGET}"
        );
        store.close().unwrap();
    }
    // Reopened: every partition open, none of its sealed segments.
    let store = Store::open_locked(tmp.path())
        .unwrap()
        .with_open_files_budget(BUDGET);
    let mut sealed = 0;
    for p in 0..PARTITIONS {
        let log = store.partition("t", p).unwrap();
        sealed += log.usage().unwrap().segment_count - 1;
    }
    assert!(
        sealed >= PARTITIONS as usize * 5,
        "{sealed} sealed segments"
    );
    let fds = open_fds() - before;
    assert!(
        fds <= BUDGET + 16 && store.open_files() <= BUDGET,
        "{fds} descriptors ({} in the pool) for {sealed} sealed segments",
        store.open_files()
    );
}
