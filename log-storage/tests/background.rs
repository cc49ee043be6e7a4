//! The store's one background thread: WRITTEN data becomes durable within
//! a flush interval, and retention runs on its own schedule, over every
//! partition of topics that ask for it.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log_storage::{Ack, AppendOptions, Background, Isolation, SimFs, Store, TopicConfig};

fn batch() -> BytesMut {
    common::batch_of(0, [[1u8; 200]; 10], None)
}

#[test]
fn written_data_is_flushed_and_retention_runs_in_the_background() {
    let store = Arc::new(Store::open(Arc::new(SimFs::new()), "/data", None).unwrap());
    let mut config = TopicConfig::default();
    config.segment_max_bytes = 8 * 1024;
    config.max_batch_bytes = 8 * 1024;
    config.retention_max_bytes = Some(16 * 1024);
    store.create_topic("events", 2, config).unwrap();
    let background = Background::start(
        store.clone(),
        Duration::from_millis(5),
        Duration::from_millis(20),
    )
    .unwrap();
    let written = AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    };
    let p0 = store.partition("events", 0).unwrap();
    for _ in 0..60 {
        p0.append(batch(), written).unwrap();
    }
    let end = p0.watermarks().log_end;
    // Flushed without anyone asking: the durable end catches up.
    let marks = p0.wait_for(end - 1, Isolation::Durable, Duration::from_secs(30));
    assert_eq!(marks.durable_end, end);
    // Retention deletes the oldest segments, down to about the limit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while p0.watermarks().log_start == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(p0.watermarks().log_start > 0, "retention ran");
    drop(background);
    // A topic without retention is left alone.
    store
        .create_topic("keep", 1, TopicConfig::default())
        .unwrap();
    assert!(
        store
            .enforce_retention(i64::MAX)
            .unwrap()
            .iter()
            .all(|(topic, _, _)| topic != "keep")
    );
}
