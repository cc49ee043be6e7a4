//! The multi-partition store: topic lifecycle, name validation, the data
//! directory lock, persistence of configs and offsets across reopen,
//! damaged metadata files, simulated power loss during topic creation,
//! offset commits and topic deletion, and a thousand partitions without a
//! thread each.
//!
//! Crash tests run seeds 0..200 on the simulated file system; a failure
//! names its seed and the crash report. Rerun one with `STORE_CRASH_SEED=n`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use log_format::{BytesScanner, Limits, Scanned};
use log_storage::{
    Ack, AppendOptions, Error, Isolation, Log, MAX_NAME_BYTES, MAX_OFFSET_METADATA_BYTES,
    MAX_PARTITIONS, NameKind, RealFs, SimFs, Store, TopicConfig, lock_data_dir,
};
use tempfile::TempDir;

use common::Rng;

const CRASH_SEEDS: u64 = 200;

// ---------------------------------------------------------------------------
// Helpers

fn config() -> TopicConfig {
    let mut config = TopicConfig::default();
    config.segment_max_bytes = 64 * 1024;
    config.segment_max_age = Duration::from_secs(3600);
    config.retention_max_age = Some(Duration::from_millis(86_400_123));
    config.retention_max_bytes = Some(10 << 20);
    config.default_ack = Ack::Written;
    config.max_batch_bytes = 16 * 1024;
    config
}

fn batch(tag: &str, records: usize) -> BytesMut {
    common::batch_of(
        1_700_000_000_000,
        (0..records).map(|i| format!("{tag}/{i}")),
        None,
    )
}

fn append(log: &Log, tag: &str, records: usize) -> u64 {
    log.append(batch(tag, records), AppendOptions::default())
        .unwrap()
        .last_offset
        + 1
}

/// Every record value of a partition, in offset order.
fn values(log: &Log) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = log.watermarks().log_start;
    loop {
        let result = log.read(offset, 64 * 1024, Isolation::Written).unwrap();
        if result.batch_count == 0 {
            return out;
        }
        for scanned in BytesScanner::new(result.batches.clone(), 0, Limits::default()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("read returned a bad batch: {scanned:?}");
            };
            for record in batch.records() {
                out.push(String::from_utf8(record.value().unwrap().to_vec()).unwrap());
            }
        }
        offset = result.next_offset;
    }
}

/// Every path under `dir` with the length of each file, sorted.
fn listing(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = entry.metadata().unwrap();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if meta.is_dir() {
                out.push((rel, 0));
                stack.push(path);
            } else {
                out.push((rel, meta.len()));
            }
        }
    }
    out.sort();
    out
}

/// The names of the store's topics, in order.
fn topic_names(store: &Store) -> Vec<String> {
    store
        .list_topics()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect()
}

/// The committed offset and metadata of `consumer` on `topic`/`partition`.
fn committed(store: &Store, consumer: &str, topic: &str, partition: u32) -> Option<(u64, Vec<u8>)> {
    store.committed_offset(consumer, topic, partition).unwrap()
}

fn sim_store(fs: &SimFs) -> Result<Store, Error> {
    Store::open(Arc::new(fs.clone()), "/data", None)
}

fn seeds() -> Vec<u64> {
    common::seeds("STORE_CRASH_SEED", CRASH_SEEDS)
}

// ---------------------------------------------------------------------------
// Topics

#[test]
fn topics_lifecycle_create_grow_list_delete_recreate() {
    let tmp = TempDir::new().unwrap();
    let store = Store::open_locked(tmp.path()).unwrap();

    let info = store.create_topic("orders", 3, config()).unwrap();
    assert_eq!(
        (info.name.as_str(), info.partitions),
        ("orders", 3),
        "{info:?}"
    );
    assert_eq!(info.config, config());
    assert!(matches!(
        store.create_topic("orders", 1, TopicConfig::default()),
        Err(Error::TopicExists { .. })
    ));
    store
        .create_topic("audit", 1, TopicConfig::default())
        .unwrap();
    assert_eq!(topic_names(&store), ["audit", "orders"]);
    assert_eq!(store.topic("orders").unwrap(), info);

    for bad in [0, MAX_PARTITIONS + 1] {
        assert!(matches!(
            store.create_topic("x", bad, TopicConfig::default()),
            Err(Error::InvalidConfig {
                setting: "partitions",
                ..
            })
        ));
    }
    assert!(matches!(
        store.topic("nope"),
        Err(Error::TopicNotFound { .. })
    ));
    assert!(matches!(
        store.partition("nope", 0),
        Err(Error::TopicNotFound { .. })
    ));
    assert!(matches!(
        store.partition("orders", 3),
        Err(Error::PartitionNotFound {
            partition: 3,
            partitions: 3,
            ..
        })
    ));

    // Partitions are logs; the same handle comes back.
    let p0 = store.partition("orders", 0).unwrap();
    assert!(Arc::ptr_eq(&p0, &store.partition("orders", 0).unwrap()));
    assert_eq!(append(&p0, "a", 3), 3);
    assert_eq!(values(&p0), ["a/0", "a/1", "a/2"]);

    // Grow only.
    assert!(matches!(
        store.create_partitions("orders", 2),
        Err(Error::InvalidConfig { .. })
    ));
    assert_eq!(store.create_partitions("orders", 3).unwrap().partitions, 3);
    assert_eq!(store.create_partitions("orders", 5).unwrap().partitions, 5);
    let p4 = store.partition("orders", 4).unwrap();
    append(&p4, "p4", 1);
    assert_eq!(values(&store.partition("orders", 0).unwrap()).len(), 3);

    // Delete: gone, handles refuse appends, offsets go with it.
    store.commit_offset("c", "orders", 0, 2, b"m").unwrap();
    let old_id = info.id;
    store.delete_topic("orders").unwrap();
    assert!(matches!(
        store.topic("orders"),
        Err(Error::TopicNotFound { .. })
    ));
    assert!(matches!(
        store.delete_topic("orders"),
        Err(Error::TopicNotFound { .. })
    ));
    assert!(matches!(
        p0.append(batch("late", 1), AppendOptions::default()),
        Err(Error::Closed { .. })
    ));
    assert!(!tmp.path().join("topics/orders").exists());
    assert!(!tmp.path().join("offsets/c/orders").exists());

    // Recreate under the same name: empty, new id, no old offsets.
    let again = store
        .create_topic("orders", 1, TopicConfig::default())
        .unwrap();
    assert_ne!(again.id, old_id);
    let p0 = store.partition("orders", 0).unwrap();
    assert_eq!(p0.watermarks().log_end, 0);
    assert_eq!(store.committed_offset("c", "orders", 0).unwrap(), None);

    store.close().unwrap();
    assert!(matches!(
        store.topic("audit"),
        Err(Error::StoreClosed { .. })
    ));
    drop(store);
    let store = Store::open_locked(tmp.path()).unwrap();
    assert_eq!(topic_names(&store), ["audit", "orders"]);
}

#[test]
fn partitions_of_a_topic_use_its_config() {
    let fs = SimFs::new();
    let store = sim_store(&fs).unwrap();
    let mut small = TopicConfig::default();
    small.max_batch_bytes = 1024;
    small.segment_max_bytes = 4096;
    small.retention_max_bytes = Some(8192);
    store.create_topic("small", 1, small).unwrap();
    let log = store.partition("small", 0).unwrap();
    let big = batch(&"x".repeat(200), 10);
    assert!(big.len() > 1024);
    let err = log.append(big, AppendOptions::default()).unwrap_err();
    assert!(err.is_limit(), "{err}");
    // Rolls at 4 KiB: many appends make many segments.
    for i in 0..120 {
        append(&log, &format!("{i:0>100}"), 1);
    }
    let segments = fs
        .list_all()
        .into_iter()
        .filter(|p| p.starts_with("/data/topics/small/0") && p.extension() == Some("log".as_ref()))
        .count();
    assert!(segments > 3, "{segments} segments");
    // Retention by size applies the topic's setting.
    let report = log.enforce_retention(0).unwrap();
    assert!(!report.deleted_segments.is_empty(), "{report:?}");
    assert!(log.watermarks().log_start > 0);
}

// ---------------------------------------------------------------------------
// Names

#[test]
fn invalid_names_are_refused_and_leave_the_data_directory_unchanged() {
    let tmp = TempDir::new().unwrap();
    let store = Store::open_locked(tmp.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    store.commit_offset("c", "t", 0, 0, b"").unwrap();
    let before = listing(tmp.path());

    let long = "a".repeat(MAX_NAME_BYTES + 1);
    let table: &[(&str, &str)] = &[
        ("../x", "path separator"),
        ("/abs", "path separator"),
        ("a/b", "path separator"),
        (".", "only of dots"),
        ("..", "only of dots"),
        ("", "empty"),
        (&long, "more than 249"),
        ("a\0b", "NUL"),
        ("a\nb", "line break"),
        ("x.tmp", "suffix"),
        ("x-delete", "suffix"),
        ("x.config", "suffix"),
        ("x.log", "suffix"),
        ("x.index", "suffix"),
        ("a b", "outside"),
        ("ü", "outside"),
    ];
    for &(name, why) in table {
        let check = |what: &str, kind: NameKind, result: Result<(), Error>| match result {
            Err(Error::InvalidName {
                kind: k, reason, ..
            }) => {
                assert_eq!(k, kind, "{what} {name:?}");
                assert!(reason.contains(why), "{what} {name:?}: {reason}");
            }
            other => panic!("{what} {name:?}: expected InvalidName, got {other:?}"),
        };
        let topic = NameKind::Topic;
        check(
            "create",
            topic,
            store
                .create_topic(name, 1, TopicConfig::default())
                .map(drop),
        );
        check("delete", topic, store.delete_topic(name));
        check("topic", topic, store.topic(name).map(drop));
        check("partition", topic, store.partition(name, 0).map(drop));
        check("grow", topic, store.create_partitions(name, 2).map(drop));
        check(
            "commit topic",
            topic,
            store.commit_offset("c", name, 0, 0, b""),
        );
        check(
            "committed topic",
            topic,
            store.committed_offset("c", name, 0).map(drop),
        );
        let consumer = NameKind::Consumer;
        check(
            "commit consumer",
            consumer,
            store.commit_offset(name, "t", 0, 0, b""),
        );
        check(
            "committed consumer",
            consumer,
            store.committed_offset(name, "t", 0).map(drop),
        );
    }
    assert_eq!(listing(tmp.path()), before);

    // The longest name and odd but valid ones work.
    for name in ["a".repeat(MAX_NAME_BYTES), "..a".into(), "A-z_0.9".into()] {
        store
            .create_topic(&name, 1, TopicConfig::default())
            .unwrap();
        store.commit_offset(&name, &name, 0, 0, b"").unwrap();
        store.delete_topic(&name).unwrap();
    }
}

// ---------------------------------------------------------------------------
// The lock

// Taking, refusing and releasing the lock: tests/dir_lock.rs.

#[test]
fn a_lock_must_match_the_directory_it_is_opened_with() {
    let a = TempDir::new().unwrap();
    let b = TempDir::new().unwrap();
    let lock = lock_data_dir(a.path()).unwrap();
    assert!(matches!(
        Store::open(Arc::new(RealFs), b.path(), Some(lock)),
        Err(Error::InvalidConfig { .. })
    ));
}

// ---------------------------------------------------------------------------
// Persistence and damage

#[test]
fn configs_offsets_and_data_survive_reopen_clean_or_not() {
    let tmp = TempDir::new().unwrap();
    let meta = vec![0xABu8; MAX_OFFSET_METADATA_BYTES];
    for clean in [true, false] {
        let sub = tmp.path().join(if clean { "clean" } else { "dirty" });
        let (orders, events) = {
            let store = Store::open_locked(&sub).unwrap();
            let orders = store.create_topic("orders", 2, config()).unwrap();
            store
                .create_topic("events", 1, TopicConfig::default())
                .unwrap();
            store.create_partitions("events", 4).unwrap();
            let end = append(&store.partition("orders", 1).unwrap(), "o", 5);
            store
                .commit_offset("group-1", "orders", 1, end, &meta)
                .unwrap();
            store
                .commit_offset("group-1", "orders", 1, 3, b"later")
                .unwrap();
            store.commit_offset("group-2", "orders", 1, 0, b"").unwrap();
            store
                .commit_offset("group-2", "events", 3, 0, b"e")
                .unwrap();
            let events = store.topic("events").unwrap();
            if clean {
                store.close().unwrap();
            }
            (orders, events)
        };
        assert_eq!(events.partitions, 4);
        let store = Store::open_locked(&sub).unwrap();
        assert_eq!(store.topic("orders").unwrap(), orders);
        let info = store.topic("events").unwrap();
        assert_eq!(info.partitions, 4);
        assert_eq!(info.config, TopicConfig::default());
        assert_eq!(
            store.committed_offset("group-1", "orders", 1).unwrap(),
            Some((3, b"later".to_vec()))
        );
        assert_eq!(
            store.committed_offset("group-2", "orders", 1).unwrap(),
            Some((0, vec![]))
        );
        assert_eq!(
            store.committed_offset("group-2", "events", 3).unwrap(),
            Some((0, b"e".to_vec()))
        );
        assert_eq!(
            store.committed_offset("group-1", "orders", 0).unwrap(),
            None
        );
        assert_eq!(store.committed_offset("nobody", "orders", 0).unwrap(), None);
        assert!(matches!(
            store.committed_offset("group-1", "orders", 2),
            Err(Error::PartitionNotFound { .. })
        ));
        assert_eq!(
            values(&store.partition("orders", 1).unwrap()),
            ["o/0", "o/1", "o/2", "o/3", "o/4"]
        );
    }
}

#[test]
fn commit_offset_refuses_offsets_past_the_log_end_and_oversized_metadata() {
    let fs = SimFs::new();
    let store = sim_store(&fs).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    match store.commit_offset("c", "t", 0, 1, b"") {
        Err(Error::OffsetOutOfRange {
            requested: 1,
            log_end: 0,
            ..
        }) => {}
        other => panic!("expected OffsetOutOfRange, got {other:?}"),
    }
    let too_big = vec![0u8; MAX_OFFSET_METADATA_BYTES + 1];
    assert!(matches!(
        store.commit_offset("c", "t", 0, 0, &too_big),
        Err(Error::MetadataTooLarge { len, max }) if len == MAX_OFFSET_METADATA_BYTES + 1
            && max == MAX_OFFSET_METADATA_BYTES
    ));
    assert!(matches!(
        store.commit_offset("c", "t", 1, 0, b""),
        Err(Error::PartitionNotFound { .. })
    ));
    assert!(matches!(
        store.commit_offset("c", "nope", 0, 0, b""),
        Err(Error::TopicNotFound { .. })
    ));
    // No offset file (nor directory) was written.
    assert!(
        fs.list_all()
            .iter()
            .all(|p| !p.starts_with("/data/offsets/c"))
    );
    assert_eq!(store.committed_offset("c", "t", 0).unwrap(), None);
    let log = store.partition("t", 0).unwrap();
    let end = append(&log, "x", 2);
    store.commit_offset("c", "t", 0, end, b"").unwrap();
    assert_eq!(
        store.committed_offset("c", "t", 0).unwrap(),
        Some((2, vec![]))
    );
}

#[test]
fn a_damaged_topic_config_fails_open_naming_the_file() {
    let tmp = TempDir::new().unwrap();
    drop(
        Store::open_locked(tmp.path())
            .unwrap()
            .create_topic("t", 2, TopicConfig::default())
            .unwrap(),
    );
    let path = tmp.path().join("topics/t/topic.config");
    let good = std::fs::read(&path).unwrap();
    for (what, bytes) in [
        ("flipped bit", {
            let mut b = good.clone();
            b[30] ^= 0x10;
            b
        }),
        ("cut", good[..40].to_vec()),
        ("empty", vec![]),
    ] {
        std::fs::write(&path, &bytes).unwrap();
        match Store::open_locked(tmp.path()) {
            Err(Error::CorruptMetadata { path: p, .. }) => assert_eq!(p, path, "{what}"),
            other => panic!("{what}: expected CorruptMetadata, got {other:?}"),
        }
    }
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        Store::open_locked(tmp.path()),
        Err(Error::CorruptMetadata { .. })
    ));
    std::fs::write(&path, &good).unwrap();
    assert_eq!(
        Store::open_locked(tmp.path())
            .unwrap()
            .topic("t")
            .unwrap()
            .partitions,
        2
    );
}

#[test]
fn a_damaged_offset_file_is_reported_never_read_as_no_offset() {
    let tmp = TempDir::new().unwrap();
    let store = Store::open_locked(tmp.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    let end = append(&store.partition("t", 0).unwrap(), "x", 3);
    store.commit_offset("c", "t", 0, end, b"meta").unwrap();
    let path = tmp.path().join("offsets/c/t/0.offset");
    let good = std::fs::read(&path).unwrap();
    let torn = good[..good.len() - 3].to_vec();
    let mut flipped = good.clone();
    flipped[17] ^= 1; // inside the offset
    let mut zeros = good.clone();
    zeros.fill(0);
    for (what, bytes) in [("torn", torn), ("flipped", flipped), ("zeros", zeros)] {
        std::fs::write(&path, &bytes).unwrap();
        match store.committed_offset("c", "t", 0) {
            Err(Error::CorruptMetadata { path: p, .. }) => assert_eq!(p, path, "{what}"),
            other => panic!("{what}: expected CorruptMetadata, got {other:?}"),
        }
    }
    // A new commit replaces it.
    store.commit_offset("c", "t", 0, 1, b"").unwrap();
    assert_eq!(committed(&store, "c", "t", 0), Some((1, vec![])));
}

#[test]
fn leftovers_of_crashed_creations_and_deletions_are_removed_on_open() {
    let fs = SimFs::new();
    drop(sim_store(&fs).unwrap());
    let doomed = Path::new("/data/topics/old.00000000000000aa-delete");
    let staging = Path::new("/data/topics/new.00000000000000bb.tmp");
    let stale_offsets = Path::new("/data/offsets/c/gone");
    for dir in [&doomed.join("0"), staging, stale_offsets] {
        fs.create_dir_all_durable(dir).unwrap();
    }
    use log_storage::Fs;
    fs.create_new(&doomed.join("0/00000000000000000000.log"))
        .unwrap();
    fs.create_new(&stale_offsets.join("0.offset")).unwrap();
    fs.create_new(Path::new("/data/topics/notes.txt")).unwrap();
    let store = sim_store(&fs).unwrap();
    store
        .create_topic("kept", 1, TopicConfig::default())
        .unwrap();
    store.commit_offset("c", "kept", 0, 0, b"").unwrap();
    fs.create_new(Path::new("/data/offsets/c/kept/0.offset.tmp"))
        .unwrap();
    drop(store);
    let store = sim_store(&fs).unwrap();
    let all = fs.list_all();
    for gone in [doomed, staging, stale_offsets] {
        assert!(
            !all.iter().any(|p| p.starts_with(gone)),
            "{gone:?}: {all:?}"
        );
    }
    assert!(!all.iter().any(|p| p.ends_with("0.offset.tmp")), "{all:?}");
    assert!(all.contains(&PathBuf::from("/data/topics/notes.txt")));
    assert_eq!(committed(&store, "c", "kept", 0), Some((0, vec![])));
}

#[test]
fn concurrent_commits_keep_one_whole_value_per_partition() {
    let fs = SimFs::new();
    let store = Arc::new(sim_store(&fs).unwrap());
    store.create_topic("t", 4, TopicConfig::default()).unwrap();
    for p in 0..4 {
        append(&store.partition("t", p).unwrap(), "x", 100);
    }
    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let store = store.clone();
            std::thread::spawn(move || {
                for i in 0..50u64 {
                    let p = (thread % 4) as u32;
                    let meta = format!("thread {thread} commit {i}");
                    store
                        .commit_offset("c", "t", p, i, meta.as_bytes())
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for p in 0..4u32 {
        let (offset, meta) = store.committed_offset("c", "t", p).unwrap().unwrap();
        assert_eq!(offset, 49);
        let meta = String::from_utf8(meta).unwrap();
        assert!(
            meta == format!("thread {p} commit 49")
                || meta == format!("thread {} commit 49", p + 4),
            "{meta}"
        );
    }
}

// ---------------------------------------------------------------------------
// Simulated power loss

/// (consumer, topic, partition).
type OffsetKey = (String, String, u32);
/// (offset, metadata).
type Committed = (u64, Vec<u8>);

/// What the first life of a crash test was told, and what it attempted.
#[derive(Debug, Default)]
struct Ledger {
    /// Topics whose creation returned, with the partition count acked last.
    topics: BTreeMap<String, u32>,
    /// Partition counts attempted (acked or not), per topic.
    attempted: BTreeMap<String, u32>,
    /// Acked commits: (consumer, topic, partition) -> (offset, metadata).
    offsets: BTreeMap<OffsetKey, Committed>,
    /// A commit that did not return Ok: it may or may not have landed.
    in_flight: Option<(OffsetKey, Committed)>,
    /// Durably acked log ends per (topic, partition).
    ends: BTreeMap<(String, u32), u64>,
}

impl Ledger {
    fn create(&mut self, store: &Store, name: &str, partitions: u32) -> Result<(), Error> {
        self.attempted.insert(name.into(), partitions);
        store.create_topic(name, partitions, config())?;
        self.topics.insert(name.into(), partitions);
        Ok(())
    }

    fn grow(&mut self, store: &Store, name: &str, partitions: u32) -> Result<(), Error> {
        self.attempted.insert(name.into(), partitions);
        store.create_partitions(name, partitions)?;
        self.topics.insert(name.into(), partitions);
        Ok(())
    }

    fn append(&mut self, store: &Store, topic: &str, p: u32, tag: &str) -> Result<(), Error> {
        let ack = store
            .partition(topic, p)?
            .append(batch(tag, 2), AppendOptions::default())?;
        self.ends.insert((topic.into(), p), ack.last_offset + 1);
        Ok(())
    }

    fn commit(
        &mut self,
        store: &Store,
        consumer: &str,
        topic: &str,
        p: u32,
        offset: u64,
        meta: &[u8],
    ) -> Result<(), Error> {
        let key = (consumer.to_string(), topic.to_string(), p);
        self.in_flight = Some((key.clone(), (offset, meta.to_vec())));
        store.commit_offset(consumer, topic, p, offset, meta)?;
        self.in_flight = None;
        self.offsets.insert(key, (offset, meta.to_vec()));
        Ok(())
    }
}

fn create_commit_workload(store: &Store, ledger: &mut Ledger) -> Result<(), Error> {
    ledger.create(store, "orders", 2)?;
    for round in 0..3u64 {
        for p in 0..2 {
            ledger.append(store, "orders", p, &format!("r{round}p{p}"))?;
            let end = ledger.ends[&("orders".to_string(), p)];
            let meta = format!("round {round}").into_bytes();
            ledger.commit(store, "c1", "orders", p, end, &meta)?;
        }
    }
    ledger.create(store, "audit", 1)?;
    ledger.grow(store, "orders", 3)?;
    ledger.commit(store, "c2", "orders", 2, 0, b"new partition")?;
    ledger.append(store, "audit", 0, "a")?;
    ledger.commit(store, "c1", "audit", 0, 2, &[7u8; 100])?;
    ledger.commit(store, "c1", "orders", 0, 1, b"rewind")?;
    Ok(())
}

#[test]
fn a_crash_after_create_topic_or_commit_offset_returned_never_loses_them() {
    // How many operations the whole workload takes, to spread the faults.
    let dry = SimFs::new();
    let store = sim_store(&dry).unwrap();
    create_commit_workload(&store, &mut Ledger::default()).unwrap();
    drop(store);
    let span = dry.op_count() + 20;

    for seed in seeds() {
        let fs = SimFs::new();
        let mut rng = Rng::new(seed);
        let mut ledger = Ledger::default();
        let ((), report) = common::crash_after(&fs, seed, |fs| {
            // Seed 0 runs to the end without a fault.
            if seed != 0 {
                fs.fail_nth(rng.below(span), rng.fault());
            }
            if let Ok(store) = sim_store(fs) {
                let _ = create_commit_workload(&store, &mut ledger);
            }
        });
        let ctx = format!("seed {seed} ({report}); ledger {ledger:?}");

        let store = sim_store(&fs).unwrap_or_else(|e| panic!("reopen failed: {e}; {ctx}"));
        let listed: BTreeMap<_, _> = store
            .list_topics()
            .unwrap()
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        for (name, info) in &listed {
            let attempted = ledger
                .attempted
                .get(name)
                .unwrap_or_else(|| panic!("unknown topic {name}; {ctx}"));
            let acked = ledger.topics.get(name).copied().unwrap_or(0);
            assert!(
                info.partitions == *attempted || info.partitions == acked,
                "{name}: {} partitions; {ctx}",
                info.partitions
            );
            assert_eq!(info.config, config(), "{name}; {ctx}");
            // Whole: every partition opens.
            for p in 0..info.partitions {
                store
                    .partition(name, p)
                    .unwrap_or_else(|e| panic!("{name}/{p}: {e}; {ctx}"));
            }
        }
        for (name, partitions) in &ledger.topics {
            let info = listed
                .get(name)
                .unwrap_or_else(|| panic!("acked topic {name} lost; {ctx}"));
            assert!(info.partitions >= *partitions, "{name}; {ctx}");
        }
        for ((topic, p), end) in &ledger.ends {
            let log = store.partition(topic, *p).unwrap();
            assert!(
                log.watermarks().log_end >= *end,
                "{topic}/{p} lost acked records; {ctx}"
            );
        }
        let mut keys: Vec<_> = ledger.offsets.keys().cloned().collect();
        keys.extend(ledger.in_flight.iter().map(|(k, _)| k.clone()));
        for key in keys {
            let (consumer, topic, p) = &key;
            let found = store
                .committed_offset(consumer, topic, *p)
                .unwrap_or_else(|e| panic!("{key:?}: {e}; {ctx}"));
            let acked = ledger.offsets.get(&key).cloned();
            let flying = ledger
                .in_flight
                .as_ref()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.clone());
            assert!(
                found == acked || (flying.is_some() && found == flying),
                "{key:?}: found {found:?}, acked {acked:?}, in flight {flying:?}; {ctx}"
            );
        }
        // No staging or doomed topic directory, no offset temp file.
        let leftovers: Vec<_> = fs
            .list_all()
            .into_iter()
            .filter(|p| {
                let s = p.to_string_lossy();
                let ours =
                    p.parent() == Some(Path::new("/data/topics")) || p.starts_with("/data/offsets");
                ours && (s.ends_with(".tmp") || s.ends_with("-delete"))
            })
            .collect();
        assert!(leftovers.is_empty(), "leftovers {leftovers:?}; {ctx}");
    }
}

/// Appends to and commits on two topics; returns what was acked.
fn delete_setup(store: &Store) -> Ledger {
    let mut ledger = Ledger::default();
    ledger.create(store, "doomed", 3).unwrap();
    ledger.create(store, "kept", 1).unwrap();
    for p in 0..2 {
        // Partition 2 of "doomed" is never opened.
        ledger.append(store, "doomed", p, "d").unwrap();
        ledger.append(store, "doomed", p, "e").unwrap();
        ledger.commit(store, "c", "doomed", p, 4, b"d").unwrap();
    }
    ledger.append(store, "kept", 0, "k").unwrap();
    ledger.commit(store, "c", "kept", 0, 2, b"k").unwrap();
    ledger.commit(store, "other", "kept", 0, 1, b"").unwrap();
    ledger
}

#[test]
fn a_crash_during_delete_topic_leaves_the_whole_topic_or_none_of_it() {
    let dry = SimFs::new();
    let store = sim_store(&dry).unwrap();
    delete_setup(&store);
    let before = dry.op_count();
    store.delete_topic("doomed").unwrap();
    let span = dry.op_count() - before + 5;
    drop(store);

    let mut outcomes = [0usize; 3]; // deleted (ok), deleted (err), kept (err)
    for seed in seeds() {
        let fs = SimFs::new();
        let mut rng = Rng::new(seed ^ 0xDE1E7E);
        let ((ledger, doomed_files, result), report) = common::crash_after(&fs, seed, |fs| {
            let store = sim_store(fs).unwrap();
            let ledger = delete_setup(&store);
            let doomed_files: Vec<_> = fs
                .live_snapshot()
                .into_iter()
                .filter(|(p, _)| p.starts_with("/data/topics/doomed"))
                .collect();
            if seed != 0 {
                fs.fail_nth(rng.below(span), rng.fault());
            }
            let result = store.delete_topic("doomed");
            drop(store);
            (ledger, doomed_files, result)
        });
        let ctx = format!("seed {seed} ({report}); delete returned {result:?}");

        let store = sim_store(&fs).unwrap_or_else(|e| panic!("reopen failed: {e}; {ctx}"));
        // The other topic is untouched.
        assert_eq!(store.topic("kept").unwrap().partitions, 1, "{ctx}");
        assert_eq!(
            values(&store.partition("kept", 0).unwrap()),
            ["k/0", "k/1"],
            "{ctx}"
        );
        assert_eq!(
            store.committed_offset("c", "kept", 0).unwrap(),
            Some((2, b"k".to_vec())),
            "{ctx}"
        );
        assert_eq!(
            store.committed_offset("other", "kept", 0).unwrap(),
            Some((1, vec![])),
            "{ctx}"
        );
        let all = fs.list_all();
        let traces: Vec<_> = all
            .iter()
            .filter(|p| {
                p.starts_with("/data/topics")
                    && p.to_string_lossy().starts_with("/data/topics/doomed")
                    || p.starts_with("/data/offsets/c/doomed")
            })
            .collect();
        match store.topic("doomed") {
            Err(Error::TopicNotFound { .. }) => {
                outcomes[usize::from(result.is_err())] += 1;
                assert!(traces.is_empty(), "deleted topic left {traces:?}; {ctx}");
            }
            Ok(info) => {
                outcomes[2] += 1;
                assert!(
                    result.is_err(),
                    "delete returned Ok but the topic is back; {ctx}"
                );
                assert_eq!(info.partitions, 3, "{ctx}");
                assert_eq!(info.config, config(), "{ctx}");
                for p in 0..2 {
                    let log = store.partition("doomed", p).unwrap();
                    assert_eq!(
                        values(&log),
                        ["d/0", "d/1", "e/0", "e/1"],
                        "doomed/{p}; {ctx}"
                    );
                    assert_eq!(
                        store.committed_offset("c", "doomed", p).unwrap(),
                        ledger
                            .offsets
                            .get(&("c".into(), "doomed".into(), p))
                            .cloned(),
                        "{ctx}"
                    );
                }
                assert_eq!(
                    store.partition("doomed", 2).unwrap().watermarks().log_end,
                    0
                );
                // Every file the topic had before is still there.
                for (path, _) in &doomed_files {
                    assert!(all.contains(path), "{path:?} lost; {ctx}");
                }
            }
            Err(e) => panic!("unexpected {e}; {ctx}"),
        }
        let leftovers: Vec<_> = all
            .iter()
            .filter(|p| p.to_string_lossy().ends_with("-delete"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}; {ctx}");
    }
    if seeds().len() > 1 {
        // The fault window covers every step: all three outcomes happen.
        assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
    }
}

// ---------------------------------------------------------------------------
// Many partitions

fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Runs in a child process of this test binary (one test, one thread), so
/// no other test's threads come and go while it counts.
#[test]
fn a_thousand_partitions_open_and_take_an_append_each_without_new_threads() {
    const NAME: &str = "a_thousand_partitions_open_and_take_an_append_each_without_new_threads";
    if std::env::var_os("STORE_TEST_CHILD").is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
            .env("STORE_TEST_CHILD", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "child failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    // The real file system (the simulated one is not built for thousands
    // of files). WRITTEN acks: the fsyncs of 1,000 partition opens are
    // already the bulk of this test's time.
    let tmp = TempDir::new().unwrap();
    let before = thread_count();
    let store = Store::open_locked(tmp.path()).unwrap();
    store
        .create_topic("wide", 1000, TopicConfig::default())
        .unwrap();
    let written = AppendOptions {
        ack: Ack::Written,
        ..AppendOptions::default()
    };
    for p in 0..1000 {
        let log = store.partition("wide", p).unwrap();
        let ack = log.append(batch(&format!("p{p}"), 1), written).unwrap();
        assert_eq!(ack.base_offset, 0);
    }
    assert_eq!(thread_count(), before, "threads grew with partitions");
    drop(store);
    let store = Store::open_locked(tmp.path()).unwrap();
    for p in [0, 500, 999] {
        assert_eq!(store.partition("wide", p).unwrap().watermarks().log_end, 1);
    }
    assert_eq!(thread_count(), before);
}
