//! What an embedder gets from [`Store::start`] alone: the background flush
//! that makes WRITTEN data durable on its interval, a committer for async
//! appends, per-partition attachments found through the store's registry,
//! and a close that stops the background thread.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log_format::{BatchBuilder, Limits, NewRecord};
use log_storage::{Ack, AppendOptions, SimFs, Store, StoreConfig, TopicConfig};

fn batch() -> BytesMut {
    let mut builder = BatchBuilder::new(Limits::default());
    builder
        .push(&NewRecord::value(0, b"v"))
        .expect("record fits");
    BytesMut::from(&builder.finish().expect("batch builds")[..])
}

/// A started store on `fs` with a topic `t` of `partitions` partitions.
fn started(fs: &SimFs, partitions: u32) -> Arc<Store> {
    let config = StoreConfig::default()
        .with_min_free_bytes(None)
        .with_flush_interval(Duration::from_millis(20))
        .with_committer_threads(1);
    let store =
        Store::start(Arc::new(fs.clone()), Path::new("/data"), None, config).expect("store starts");
    store
        .create_topic("t", partitions, TopicConfig::default())
        .expect("topic");
    store
}

#[test]
fn a_started_store_flushes_written_data_by_itself_and_stops_at_close() {
    let fs = SimFs::new();
    let store = started(&fs, 1);
    let log = store.partition("t", 0).expect("partition");
    let written = AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    };
    log.append(batch(), written).expect("append");
    assert_eq!(
        log.watermarks().durable_end,
        0,
        "WRITTEN is not synced by the append"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while log.watermarks().durable_end < 1 {
        assert!(Instant::now() < deadline, "the background flush never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    store.close().expect("close");
    // Closed: the background thread is gone, and the store refuses work.
    assert!(store.partition("t", 0).is_err());
    drop(store);
    // A crash now keeps the flushed record.
    fs.crash(7);
    let store = Store::open(Arc::new(fs.clone()), Path::new("/data"), None).expect("reopen");
    let log = store.partition("t", 0).expect("partition");
    assert_eq!(log.watermarks().log_end, 1);
}

#[test]
fn async_appends_complete_through_the_stores_committer() {
    let fs = SimFs::new();
    let store = started(&fs, 1);
    let log = store.partition("t", 0).expect("partition");
    let (tx, rx) = mpsc::channel();
    for _ in 0..10 {
        let tx = tx.clone();
        log.append_then(
            store.committer(),
            batch(),
            AppendOptions::default(),
            move |r| {
                let _ = tx.send(r.map(|a| a.durable_end));
            },
        );
    }
    for _ in 0..10 {
        let durable_end = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("completed")
            .expect("appended");
        assert!(durable_end >= 1);
    }
    assert_eq!(log.watermarks().durable_end, 10);
}

#[test]
fn an_attachment_is_made_once_per_partition_and_found_through_the_store() {
    let fs = SimFs::new();
    let store = started(&fs, 2);
    let made = AtomicU64::new(0);
    let make = || {
        made.fetch_add(1, Ordering::SeqCst);
        Arc::new(String::from("signal"))
    };
    let first = store
        .partition("t", 0)
        .unwrap()
        .attachment(make)
        .expect("attached");
    let again = store
        .partition("t", 0)
        .unwrap()
        .attachment(make)
        .expect("attached");
    assert!(Arc::ptr_eq(&first, &again), "one attachment per partition");
    assert_eq!(made.load(Ordering::SeqCst), 1);
    // Another partition has its own.
    store
        .partition("t", 1)
        .unwrap()
        .attachment(make)
        .expect("attached");
    assert_eq!(made.load(Ordering::SeqCst), 2);
    // A second type is refused, not confused with the first.
    assert!(
        store
            .partition("t", 0)
            .unwrap()
            .attachment(|| Arc::new(5u32))
            .is_none()
    );
    // Deleting the topic closes its partitions: a holder can tell.
    let log = store.partition("t", 0).unwrap();
    store.delete_topic("t").expect("delete");
    assert!(log.is_closed());
}
