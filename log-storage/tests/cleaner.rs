//! The store's cleaner threads: a started store compacts the partitions of
//! a topic whose cleanup policy compacts, by itself, and leaves a `delete`
//! topic alone; the topic's compaction settings survive a restart; cold
//! compression; a topic config altered on a live store.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log_format::{Batch, BatchBuilder, BytesScanner, Limits, NewRecord, Scanned};
use log_storage::{
    AppendOptions, CleanupPolicy, Isolation, Log, SimFs, Store, StoreConfig, TopicConfig,
};

fn keyed(key: &str, value: &str) -> BytesMut {
    let mut builder = BatchBuilder::new(Limits::default());
    builder
        .push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: Some(key.as_bytes()),
            value: Some(value.as_bytes()),
            headers: &[],
        })
        .unwrap();
    BytesMut::from(&builder.finish().unwrap()[..])
}

fn records(log: &Log) -> usize {
    let marks = log.watermarks();
    let mut offset = marks.log_start;
    let mut count = 0;
    while offset < marks.log_end {
        let read = log.read(offset, 1 << 16, Isolation::Written).unwrap();
        for scanned in BytesScanner::new(read.batches, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("bad batch");
            };
            let batch = Batch::decode(batch.into_bytes(), &Limits::unlimited()).unwrap();
            count += batch.records().filter(|r| r.offset() >= offset).count();
        }
        offset = read.next_offset;
    }
    count
}

/// A store started in `/data` on `fs`, with no free-space floor and a
/// cleaner that looks for work every 20 ms.
fn started(fs: &SimFs) -> Arc<Store> {
    let config = StoreConfig::default()
        .with_min_free_bytes(None)
        .with_cleaner_backoff(Duration::from_millis(20));
    Store::start(Arc::new(fs.clone()), Path::new("/data"), None, config).unwrap()
}

fn topic_config(policy: CleanupPolicy) -> TopicConfig {
    let mut config = TopicConfig::default();
    config.segment_max_bytes = 4096;
    config.max_batch_bytes = 4096;
    config.cleanup.cleanup_policy = policy;
    config.cleanup.min_cleanable_dirty_ratio = 0.1;
    config.cleanup.delete_retention = Duration::from_millis(1);
    config
}

#[test]
fn a_started_store_compacts_compacted_topics_by_itself() {
    let fs = SimFs::new();
    let store = started(&fs);
    store
        .create_topic("compacted", 1, topic_config(CleanupPolicy::Compact))
        .unwrap();
    store
        .create_topic("deleted", 1, topic_config(CleanupPolicy::Delete))
        .unwrap();
    for topic in ["compacted", "deleted"] {
        let log = store.partition(topic, 0).unwrap();
        for i in 0..400 {
            let value = format!("value {i} {}", "x".repeat(60));
            log.append(
                keyed(&format!("key-{}", i % 5), &value),
                AppendOptions::default(),
            )
            .unwrap();
        }
        log.roll_now().unwrap();
    }
    let compacted = store.partition("compacted", 0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // A pass may start while the appends still go on and clean only what
    // was sealed then: wait for the passes that follow.
    while records(&compacted) >= 40 {
        assert!(
            Instant::now() < deadline,
            "not compacted within 20 s: {} records left",
            records(&compacted)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = compacted.cleaner_stats(log_format::now_ms()).unwrap();
    assert!(stats.bytes_reclaimed > 0 && stats.last_clean_time.is_some());
    assert_eq!(records(&store.partition("deleted", 0).unwrap()), 400);
    store.close().unwrap();
    drop(store);
    let store = Store::open(Arc::new(fs), Path::new("/data"), None).unwrap();
    let info = store.topic("compacted").unwrap();
    assert_eq!(info.config.cleanup.cleanup_policy, CleanupPolicy::Compact);
    assert_eq!(info.config.cleanup.min_cleanable_dirty_ratio, 0.1);
    assert_eq!(
        info.config.cleanup.delete_retention,
        Duration::from_millis(1)
    );
}

#[test]
fn a_started_store_compresses_the_cold_segments_of_topics_that_ask_for_it() {
    let fs = SimFs::new();
    let store = started(&fs);
    let mut cold = topic_config(CleanupPolicy::Delete);
    cold.cleanup.cold_codec = log_format::Codec::Zstd;
    cold.cleanup.cold_compression_lag = Duration::ZERO;
    store.create_topic("cold", 1, cold).unwrap();
    let log = store.partition("cold", 0).unwrap();
    for i in 0..400 {
        let value = format!("value {i} {}", "x".repeat(60));
        log.append(keyed(&format!("key-{i}"), &value), AppendOptions::default())
            .unwrap();
    }
    log.roll_now().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let sealed_end = log.watermarks().log_end;
    while log
        .cleaner_stats(log_format::now_ms())
        .unwrap()
        .compressed_below
        < sealed_end
    {
        assert!(Instant::now() < deadline, "not compressed within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = log.cleaner_stats(log_format::now_ms()).unwrap();
    assert!(
        stats.cold_segments > 5 && stats.cold_bytes_saved > 0,
        "{stats:?}"
    );
    assert_eq!(records(&log), 400, "nothing dropped");
    store.close().unwrap();
    drop(store);
    let store = Store::open(Arc::new(fs), Path::new("/data"), None).unwrap();
    let info = store.topic("cold").unwrap();
    assert_eq!(info.config.cleanup.cold_codec, log_format::Codec::Zstd);
    assert_eq!(info.config.cleanup.cold_compression_lag, Duration::ZERO);
}

#[test]
fn an_altered_topic_config_reaches_open_partitions_and_survives_a_restart() {
    let fs = SimFs::new();
    let store = started(&fs);
    store
        .create_topic("t", 1, topic_config(CleanupPolicy::Delete))
        .unwrap();
    let log = store.partition("t", 0).unwrap();
    let big = "x".repeat(2000);
    log.append(keyed("k", &big), AppendOptions::default())
        .unwrap();
    // An invalid config changes nothing.
    let mut bad = store.topic("t").unwrap().config;
    bad.cleanup.cold_codec = log_format::Codec::Gzip;
    assert!(matches!(
        store.alter_topic_config("t", bad),
        Err(log_storage::Error::InvalidConfig { .. })
    ));
    assert_eq!(
        store.topic("t").unwrap().config,
        topic_config(CleanupPolicy::Delete)
    );
    // A smaller batch limit and cold compression, on the open partition.
    let mut altered = store.topic("t").unwrap().config;
    altered.max_batch_bytes = 1024;
    altered.cleanup.cold_codec = log_format::Codec::Zstd;
    altered.cleanup.cold_compression_lag = Duration::ZERO;
    let info = store.alter_topic_config("t", altered.clone()).unwrap();
    assert_eq!(info.config, altered);
    assert_eq!(log.config().limits.max_batch_bytes, 1024);
    assert!(
        log.append(keyed("k", &big), AppendOptions::default())
            .is_err()
    );
    for i in 0..300 {
        let value = format!("value {i} {}", "y".repeat(60));
        log.append(keyed(&format!("key-{i}"), &value), AppendOptions::default())
            .unwrap();
    }
    log.roll_now().unwrap();
    let sealed_end = log.watermarks().log_end;
    let deadline = Instant::now() + Duration::from_secs(20);
    while log
        .cleaner_stats(log_format::now_ms())
        .unwrap()
        .compressed_below
        < sealed_end
    {
        assert!(
            Instant::now() < deadline,
            "the cleaner threads did not see the new config"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(records(&log), 301);
    store.close().unwrap();
    drop(store);
    let store = Store::open(Arc::new(fs), Path::new("/data"), None).unwrap();
    assert_eq!(store.topic("t").unwrap().config, altered);
    assert!(matches!(
        store.alter_topic_config("nope", altered),
        Err(log_storage::Error::TopicNotFound { .. })
    ));
}
