//! [`Store`]: the topics, partitions and committed offsets of one data
//! directory. Its parts: `admin.rs` (creating, deleting and growing
//! topics), `topic_config.rs` (a topic's settings and the
//! `topic.config` file), `offsets.rs` (committed offsets), `background.rs`
//! (flush and retention passes, and the thread that runs them),
//! `cleaner.rs` (the log cleaner threads), `config.rs` (how a started
//! store runs, [`StoreConfig`]) and `lock.rs` (the data directory's
//! exclusive lock, [`lock_data_dir`]).
//!
//! # Layout
//!
//! ```text
//! <data>/LOCK                                   lock file (real file system only)
//! <data>/topics/<topic>/topic.config            the topic's config (format below)
//! <data>/topics/<topic>/<partition>/            a partition: a `Log` directory
//! <data>/topics/<prefix>.<nonce>.tmp/           a topic being created (crash leftover)
//! <data>/topics/<prefix>.<nonce>-delete/        a topic being deleted (crash leftover)
//! <data>/offsets/<consumer>/<topic>/<p>.offset  a committed offset (see `offsets.rs`)
//! ```
//!
//! # Crash safety of the namespace
//!
//! - **Create**: the topic is built in a staging directory (its config
//!   written and synced, the directory synced), renamed to its name, and
//!   `topics/` is synced before `create_topic` returns. A crash leaves the
//!   whole topic or a staging directory, which the next open removes.
//!   Partition directories are created by [`Log::open`] on first use.
//! - **Delete**: the topic's open partitions are closed, its directory is
//!   renamed to a `-delete` name and `topics/` is synced (from then on the
//!   topic is gone, durably), then its files are removed and its committed
//!   offsets too. A crash leaves the whole topic or a `-delete` directory,
//!   which the next open removes, with any offsets of topics that no longer
//!   exist.
//! - **Grow partitions** and every other small file: replaced atomically
//!   (temp file, `fdatasync`, rename, directory `fsync`).
//!
//! Partitions are opened lazily, on the first [`Store::partition`] call
//! for each, and stay open: opening the store reads one config per topic
//! and recovers no partition. A [`Log`] starts no thread, so neither does a
//! store, however many partitions it holds; each open partition holds a few
//! file descriptors (active segment, its index, the recovery point, and
//! every sealed segment), so size `RLIMIT_NOFILE` for the partitions in use.
//!
//!
//! This module does not schedule retention (each partition's
//! [`Log::enforce_retention`] applies its topic's retention settings when
//! called), and does not check what is appended (the partition [`Log`]
//! does).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::config::LogConfig;
use crate::error::{Error, NameKind, io_error};
use crate::io::durable::{read_small, remove_tree, sync_chain};
use crate::io::{Fs, PooledFs};
use crate::layout::{self, TopicsEntry};
use crate::partition::{Committer, Log};
use crate::util::{lock, read, write};

mod admin;
mod background;
mod cleaner;
mod config;
mod lock;
mod offsets;
mod topic_config;

use background::side_by_side;
use offsets::Offsets;
use topic_config::{CONFIG_LEN, TopicMeta, decode_config};

pub use background::{Background, RetentionPass};
pub use cleaner::{CleanedPartition, CompressedPartition};
pub use config::{
    DEFAULT_CLEANER_BACKOFF, DEFAULT_COMMITTER_THREADS, DEFAULT_FLUSH_INTERVAL,
    DEFAULT_FREE_SPACE_CHECK_INTERVAL, DEFAULT_KEY_MAP_BYTES, DEFAULT_MIN_FREE_BYTES,
    DEFAULT_PREALLOCATE_BYTES, DEFAULT_RETENTION_INTERVAL, StoreConfig,
};
pub use lock::{DirLock, lock_data_dir};
pub use offsets::{MAX_OFFSET_METADATA_BYTES, OFFSET_FILE_MAX_BYTES};
pub use topic_config::{MAX_PARTITIONS, TopicConfig, TopicInfo};

/// A multi-partition store over one data directory: topics, their
/// partitions (each a [`Log`]) and committed consumer offsets. See the
/// module docs for the layout, the crash safety of each operation and the
/// lock.
///
/// Every method takes `&self`; share the store between threads in an
/// [`Arc`]. Topic creation, deletion and growth are serialised with each
/// other and with offset commits; appends and reads go straight to the
/// partition logs.
#[derive(Debug)]
pub struct Store {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    topics_dir: PathBuf,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Held for writing by create, delete, grow and close; for reading by
    /// offset commits (so a commit never writes offsets of a topic being
    /// deleted).
    admin: RwLock<()>,
    offsets: Offsets,
    closed: AtomicBool,
    /// The free-space floor given to every partition opened
    /// ([`LogConfig::min_free_bytes`]); see [`Store::with_min_free_bytes`].
    min_free_bytes: Option<u64>,
    /// Given to every partition opened ([`LogConfig::free_space_check_interval`]).
    free_space_check_interval: std::time::Duration,
    /// The index spacing given to every partition opened, if not the
    /// default ([`Store::with_index_interval_bytes`]).
    index_interval_bytes: Option<u32>,
    /// The zeroed runway given to every partition opened
    /// ([`LogConfig::preallocate_bytes`]; [`Store::with_preallocate_bytes`]).
    preallocate_bytes: u64,
    /// Whether partitions opened gather small durable async appends
    /// ([`LogConfig::gather_writes`]; [`Store::with_gather_writes`]).
    gather_writes: bool,
    /// The pool every file of the store is opened through (`fs` wraps it):
    /// open files stay near its budget however many partitions and
    /// segments there are ([`Store::with_open_files_budget`]).
    pool: PooledFs,
    /// The committer of async appends ([`Store::committer`]), started on
    /// first use.
    committer: OnceLock<Committer>,
    committer_threads: usize,
    completion_dispatch: crate::Dispatch,
    /// The background passes of a started store ([`Store::start`]).
    background: Mutex<Option<Background>>,
    /// The cleaner threads of a started store ([`Store::start`]).
    cleaners: Mutex<Option<cleaner::Cleaners>>,
    /// The partitions a cleaner thread is cleaning now.
    cleaning: cleaner::Cleaning,
    /// Declared last: released after everything else is dropped.
    _lock: Option<DirLock>,
}

/// An open topic.
#[derive(Debug)]
struct Topic {
    name: String,
    dir: PathBuf,
    meta: RwLock<TopicMeta>,
    /// One slot per partition; a slot holds the partition's log once it was
    /// opened.
    slots: RwLock<Vec<Slot>>,
    /// Set (before the partitions are closed) when the topic is deleted.
    deleted: AtomicBool,
}

/// A partition of an open topic: its log once opened.
type Slot = Arc<Mutex<Option<Arc<Log>>>>;

impl Store {
    /// Opens the store in `data_dir` (created if missing): removes what a
    /// crash left of topic creations and deletions, and reads every topic's
    /// config. Partitions are opened on first use.
    ///
    /// `lock` is the guard of [`lock_data_dir`] for `data_dir` (required in
    /// production on the real file system, see [`Store::open_locked`]);
    /// `None` skips locking, for the simulated file system. The store keeps
    /// the guard until it is dropped.
    pub fn open(
        fs: Arc<dyn Fs>,
        data_dir: impl AsRef<Path>,
        lock: Option<DirLock>,
    ) -> Result<Store, Error> {
        let dir = data_dir.as_ref().to_path_buf();
        let pool = PooledFs::new(fs, crate::io::DEFAULT_OPEN_FILES_BUDGET);
        let fs: Arc<dyn Fs> = Arc::new(pool.clone());
        if let Some(lock) = &lock
            && lock.dir() != dir
        {
            return Err(Error::InvalidConfig {
                setting: "data directory lock",
                reason: format!(
                    "the lock guards {}, not {}",
                    lock.dir().display(),
                    dir.display()
                ),
            });
        }
        let topics_dir = layout::topics_dir(&dir);
        let offsets_dir = layout::offsets_dir(&dir);
        for sub in [&topics_dir, &offsets_dir] {
            fs.create_dir_all(sub)
                .map_err(io_error("create store directory", sub))?;
        }
        // New directories are durable once their parents are synced: sync
        // the chain up to the root (cheap, once per open).
        sync_chain(&*fs, &topics_dir)?;

        let mut topics = BTreeMap::new();
        let mut removed = false;
        for entry in fs
            .read_dir(&topics_dir)
            .map_err(io_error("list topics", &topics_dir))?
        {
            let path = topics_dir.join(&entry.name);
            match layout::classify_topics_entry(&entry.name) {
                TopicsEntry::Leftover if entry.is_dir => {
                    tracing::warn!(dir = %path.display(), "removing what a crash left of a topic creation or deletion");
                    remove_tree(&*fs, &path)?;
                    removed = true;
                }
                TopicsEntry::Topic(name) if entry.is_dir => {
                    let topic = load_topic(&*fs, &topics_dir, name)?;
                    topics.insert(name.to_owned(), Arc::new(topic));
                }
                _ => tracing::warn!(path = %path.display(), "leaving unknown entry alone"),
            }
        }
        if removed {
            fs.sync_dir(&topics_dir)
                .map_err(io_error("sync topics directory", &topics_dir))?;
        }
        let offsets = Offsets::new(fs.clone(), offsets_dir);
        offsets.sweep(|topic| topics.contains_key(topic))?;
        tracing::info!(dir = %dir.display(), topics = topics.len(), "store opened");
        Ok(Store {
            fs,
            dir,
            topics_dir,
            topics: RwLock::new(topics),
            admin: RwLock::new(()),
            offsets,
            closed: AtomicBool::new(false),
            min_free_bytes: None,
            free_space_check_interval: std::time::Duration::ZERO,
            preallocate_bytes: 0,
            gather_writes: true,
            index_interval_bytes: None,
            pool,
            committer: OnceLock::new(),
            committer_threads: config::DEFAULT_COMMITTER_THREADS,
            completion_dispatch: crate::Dispatch::inline(),
            background: Mutex::new(None),
            cleaners: Mutex::new(None),
            cleaning: Mutex::default(),
            _lock: lock,
        })
    }

    /// Opens the store in `data_dir` with `config` and starts what runs
    /// beside it: the background thread that flushes WRITTEN data and
    /// enforces retention on `config`'s intervals, and the log cleaner
    /// threads (`config.cleaner_threads`); both stop when the store is
    /// closed or dropped. The [`Committer`] of async appends starts on the
    /// first async append ([`Store::committer`]). What an embedder calls,
    /// and all it calls; [`Store::open`] opens without starting anything
    /// (tests, tools).
    ///
    /// `lock`: as for [`Store::open`]; see [`Store::start_locked`] for the
    /// real file system.
    pub fn start(
        fs: Arc<dyn Fs>,
        data_dir: impl AsRef<Path>,
        lock: Option<DirLock>,
        config: StoreConfig,
    ) -> Result<Arc<Store>, Error> {
        let mut store = Store::open(fs, data_dir, lock)?
            .with_min_free_bytes(config.min_free_bytes)
            .with_open_files_budget(config.open_files_budget)
            .with_preallocate_bytes(config.preallocate_bytes)
            .with_gather_writes(config.gather_writes);
        if let Some(interval) = config.index_interval_bytes {
            store = store.with_index_interval_bytes(interval);
        }
        store.committer_threads = config.committer_threads.max(1);
        store.completion_dispatch = config.completion_dispatch.clone();
        store.free_space_check_interval = config.free_space_check_interval;
        let store = Arc::new(store);
        let background = Background::start_weak(
            Arc::downgrade(&store),
            config.flush_interval,
            config.retention_interval,
        )?;
        *crate::util::lock(&store.background) = Some(background);
        if config.cleaner_threads > 0 {
            let cleaners = cleaner::Cleaners::start(
                &store,
                cleaner::CleanerSettings {
                    threads: config.cleaner_threads,
                    key_map_bytes: config.cleaner_key_map_bytes,
                    backoff: config.cleaner_backoff,
                },
            )?;
            *crate::util::lock(&store.cleaners) = Some(cleaners);
        }
        Ok(store)
    }

    /// Locks `data_dir` with [`lock_data_dir`] and starts the store in it
    /// on the real file system ([`Store::start`]): the production entry
    /// point.
    pub fn start_locked(
        data_dir: impl AsRef<Path>,
        config: StoreConfig,
    ) -> Result<Arc<Store>, Error> {
        let lock = lock_data_dir(data_dir.as_ref())?;
        Store::start(Arc::new(crate::io::RealFs), data_dir, Some(lock), config)
    }

    /// The committer that completes async appends
    /// ([`Log::append_then`]) of this store's partitions, started with
    /// [`StoreConfig::committer_threads`] threads on first use.
    pub fn committer(&self) -> &Committer {
        self.committer.get_or_init(|| {
            Committer::start_with(self.committer_threads, self.completion_dispatch.clone())
        })
    }

    /// Sets the free-space floor of every partition this store opens
    /// ([`LogConfig::min_free_bytes`](crate::LogConfig::min_free_bytes): appends that would leave less space
    /// available fail with [`Error::DiskFull`]). A store setting, not a
    /// topic one; call it right after opening, before partitions are used.
    /// Default `None` (no floor).
    pub fn with_min_free_bytes(mut self, floor: Option<u64>) -> Store {
        self.min_free_bytes = floor;
        self
    }

    /// Sets the index spacing of every partition opened from now on (one
    /// entry per this many bytes of log; at least 1). A store setting, as
    /// the free-space floor. Default
    /// [`LogConfig::default`](crate::LogConfig::default)'s (4096).
    pub fn with_index_interval_bytes(mut self, interval: u32) -> Store {
        self.index_interval_bytes = Some(interval.max(1));
        self
    }

    /// Sets the zeroed runway of every partition opened from now on
    /// ([`LogConfig::preallocate_bytes`](crate::LogConfig::preallocate_bytes)):
    /// appends then overwrite zeros the file already holds, and their
    /// `fdatasync` writes no inode. A store setting, as the index spacing.
    /// Default 0 (off).
    pub fn with_preallocate_bytes(mut self, bytes: u64) -> Store {
        self.preallocate_bytes = bytes;
        self
    }

    /// Sets whether every partition opened from now on gathers small async
    /// durable appends into one write per sync
    /// ([`LogConfig::gather_writes`](crate::LogConfig::gather_writes)). A
    /// store setting, as the runway. Default `true`.
    pub fn with_gather_writes(mut self, gather: bool) -> Store {
        self.gather_writes = gather;
        self
    }

    /// Sets how many files the store keeps open at most (about: a segment
    /// with unsynced writes stays open, and a read keeps its file open
    /// until it is done). Files are opened on demand and the least recently
    /// used closed. Default [`DEFAULT_OPEN_FILES_BUDGET`](crate::DEFAULT_OPEN_FILES_BUDGET).
    pub fn with_open_files_budget(self, budget: usize) -> Store {
        self.pool.set_budget(budget);
        self
    }

    /// Files the store holds open now (its pool's count).
    pub fn open_files(&self) -> usize {
        self.pool.open_files()
    }

    /// Locks `data_dir` with [`lock_data_dir`] and opens the store in it on
    /// the real file system: the production entry point.
    pub fn open_locked(data_dir: impl AsRef<Path>) -> Result<Store, Error> {
        let lock = lock_data_dir(data_dir.as_ref())?;
        Store::open(Arc::new(crate::io::RealFs), data_dir, Some(lock))
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the store knows of a topic.
    pub fn topic(&self, name: &str) -> Result<TopicInfo, Error> {
        self.check_open()?;
        layout::validate_topic_name(name)?;
        Ok(self.topic_entry(name)?.info())
    }

    /// Every topic, by name.
    pub fn list_topics(&self) -> Result<Vec<TopicInfo>, Error> {
        self.check_open()?;
        Ok(read(&self.topics).values().map(|t| t.info()).collect())
    }

    /// The log of a partition, opened (and recovered) on first use.
    pub fn partition(&self, topic: &str, partition: u32) -> Result<Arc<Log>, Error> {
        self.check_open()?;
        layout::validate_topic_name(topic)?;
        let entry = self.topic_entry(topic)?;
        self.open_partition(&entry, partition)
    }

    /// The log of a partition if it is open already; never opens (or
    /// waits for the recovery of) one: for cheap questions such as its
    /// current epoch. `None` too for an unknown topic or partition.
    pub fn open_log(&self, topic: &str, partition: u32) -> Option<Arc<Log>> {
        let entry = read(&self.topics).get(topic).cloned()?;
        let slot = read(&entry.slots).get(partition as usize)?.clone();
        slot.try_lock().ok()?.clone()
    }

    /// The [`LogConfig`] a partition of a topic with `config` gets: the
    /// topic's settings and the store's (free-space floor, index interval).
    fn partition_config(&self, config: &TopicConfig) -> LogConfig {
        let mut config = config.log_config();
        config.min_free_bytes = self.min_free_bytes;
        config.free_space_check_interval = self.free_space_check_interval;
        config.preallocate_bytes = self.preallocate_bytes;
        config.gather_writes = self.gather_writes;
        if let Some(interval) = self.index_interval_bytes {
            config.index_interval_bytes = interval;
        }
        config
    }

    fn open_partition(&self, topic: &Topic, partition: u32) -> Result<Arc<Log>, Error> {
        let slot = {
            let slots = read(&topic.slots);
            match slots.get(partition as usize) {
                Some(slot) => slot.clone(),
                None => {
                    return Err(Error::PartitionNotFound {
                        topic: topic.name.clone(),
                        partition,
                        partitions: slots.len() as u32,
                    });
                }
            }
        };
        let mut slot = lock(&slot);
        // Checked under the slot lock: a deletion sets the flag before it
        // takes the slots, so no log is opened after it closed them.
        if topic.deleted.load(Ordering::SeqCst) {
            return Err(Error::TopicNotFound {
                topic: topic.name.clone(),
            });
        }
        self.check_open()?;
        if let Some(log) = &*slot {
            return Ok(log.clone());
        }
        let config = self.partition_config(&read(&topic.meta).config);
        let log = Arc::new(Log::open(
            self.fs.clone(),
            layout::partition_dir(&topic.dir, partition),
            config,
        )?);
        *slot = Some(log.clone());
        Ok(log)
    }

    /// Commits a consumer's offset for a partition, with up to
    /// [`MAX_OFFSET_METADATA_BYTES`] of metadata: durable on return. The
    /// offset may be anything up to the partition's log end (the offset the
    /// next record gets); beyond it fails with [`Error::OffsetOutOfRange`].
    /// An offset past the durable end first makes the log durable up to
    /// it, so a committed offset never points past what a power loss
    /// leaves.
    pub fn commit_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        metadata: &[u8],
    ) -> Result<(), Error> {
        self.check_open()?;
        layout::validate_consumer_id(consumer)?;
        layout::validate_topic_name(topic)?;
        if metadata.len() > MAX_OFFSET_METADATA_BYTES {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_OFFSET_METADATA_BYTES,
            });
        }
        let _admin = read(&self.admin);
        self.check_open()?;
        let entry = self.topic_entry(topic)?;
        let log = self.open_partition(&entry, partition)?;
        let marks = log.watermarks();
        if offset > marks.log_end {
            return Err(Error::OffsetOutOfRange {
                requested: offset,
                log_start: marks.log_start,
                log_end: marks.log_end,
            });
        }
        // Never commit past what is durable: a power loss could take those
        // records back and leave the consumer past the recovered end,
        // skipping whatever is produced there next. The commit is held
        // until the log is durable up to it (one shared sync).
        if offset > marks.durable_end {
            log.sync()?;
        }
        let id = read(&entry.meta).id;
        self.offsets
            .commit(consumer, topic, id, partition, offset, metadata)
    }

    /// The offset and metadata a consumer last committed for a partition,
    /// if any. A damaged offset file is an error
    /// ([`Error::CorruptMetadata`]), never "no offset".
    pub fn committed_offset(
        &self,
        consumer: &str,
        topic: &str,
        partition: u32,
    ) -> Result<Option<(u64, Vec<u8>)>, Error> {
        self.check_open()?;
        layout::validate_consumer_id(consumer)?;
        layout::validate_topic_name(topic)?;
        let entry = self.topic_entry(topic)?;
        let (id, partitions) = {
            let meta = read(&entry.meta);
            (meta.id, meta.partitions)
        };
        if partition >= partitions {
            return Err(Error::PartitionNotFound {
                topic: topic.to_owned(),
                partition,
                partitions,
            });
        }
        self.offsets.read(consumer, topic, id, partition)
    }

    /// The consumers (Kafka's groups) with committed offsets, in no order.
    pub fn consumers(&self) -> Result<Vec<String>, Error> {
        self.check_open()?;
        self.offsets.consumers()
    }

    /// Deletes every committed offset of `consumer`, durably: `false` when
    /// it had none.
    pub fn delete_consumer(&self, consumer: &str) -> Result<bool, Error> {
        self.check_open()?;
        layout::validate_consumer_id(consumer)?;
        let _admin = read(&self.admin);
        self.check_open()?;
        self.offsets.remove_consumer(consumer)
    }

    /// Closes every open partition cleanly (see [`Log::close`]); later
    /// calls fail with [`Error::StoreClosed`]. Returns the first error,
    /// after trying every partition. The lock is released when the store is
    /// dropped.
    pub fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::SeqCst);
        // The background passes and the cleaners first (each cleaner ends
        // the pass it is in): none runs while partitions close.
        let background = lock(&self.background).take();
        drop(background);
        let cleaners = lock(&self.cleaners).take();
        drop(cleaners);
        let _admin = write(&self.admin);
        let logs = self.open_logs(|slot| slot.take());
        // Each close waits for its fsyncs: run them side by side, so that
        // shutting down many partitions is bounded by the disk, not by one
        // fsync after another.
        let (_, first_error) = side_by_side(&logs, |log| {
            log.close().inspect_err(|err| {
                tracing::error!(partition = %log.dir().display(), error = %err, "closing a partition failed");
            })?;
            Ok(true)
        });
        tracing::info!(dir = %self.dir.display(), partitions = logs.len(), "store closed");
        first_error.map_or(Ok(()), Err)
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::StoreClosed {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    fn topic_entry(&self, name: &str) -> Result<Arc<Topic>, Error> {
        read(&self.topics)
            .get(name)
            .cloned()
            .ok_or_else(|| Error::TopicNotFound {
                topic: name.to_owned(),
            })
    }
}

impl Topic {
    fn new(name: String, dir: PathBuf, meta: TopicMeta) -> Topic {
        let slots = (0..meta.partitions).map(|_| Arc::default()).collect();
        Topic {
            name,
            dir,
            meta: RwLock::new(meta),
            slots: RwLock::new(slots),
            deleted: AtomicBool::new(false),
        }
    }

    fn info(&self) -> TopicInfo {
        let meta = read(&self.meta);
        TopicInfo {
            name: self.name.clone(),
            id: meta.id,
            partitions: meta.partitions,
            config: meta.config.clone(),
        }
    }
}

/// Reads a topic directory's config, removing a temp config a crash left.
fn load_topic(fs: &dyn Fs, topics_dir: &Path, name: &str) -> Result<Topic, Error> {
    let dir = layout::child(NameKind::Topic, topics_dir, name)?;
    let path = layout::topic_config_path(&dir);
    let Some(bytes) = read_small(fs, &path, CONFIG_LEN, "read topic config")? else {
        return Err(Error::CorruptMetadata {
            path,
            position: 0,
            what: "missing: the topic directory has no config".into(),
        });
    };
    let meta = decode_config(&path, &bytes)?;
    let tmp = layout::tmp_path(&path);
    if fs.exists(&tmp).map_err(io_error("check temp file", &tmp))? {
        tracing::warn!(file = %tmp.display(), "removing temp file left by a crash");
        fs.remove_file(&tmp)
            .map_err(io_error("remove temp file", &tmp))?;
        fs.sync_dir(&dir)
            .map_err(io_error("sync topic directory", &dir))?;
    }
    Ok(Topic::new(name.to_owned(), dir, meta))
}
