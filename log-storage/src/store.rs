//! [`Store`]: the topics, partitions and committed offsets of one data
//! directory, and [`lock_data_dir`], its exclusive lock.
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
//! # `topic.config` format (version 1), 64 bytes, little-endian
//!
//! | bytes  | field                                                      |
//! |--------|------------------------------------------------------------|
//! | 0..4   | magic `LTOP`                                               |
//! | 4..6   | version, 1                                                 |
//! | 6..8   | flags: bit 0 `retention_max_age` set, bit 1 `retention_max_bytes` set; others zero |
//! | 8..16  | topic id: random, fixed at creation                        |
//! | 16..20 | partitions                                                 |
//! | 20     | default ack: 0 durable, 1 written                          |
//! | 21..24 | reserved, zero                                             |
//! | 24..32 | `segment_max_bytes`                                        |
//! | 32..40 | `segment_max_age`, ms                                      |
//! | 40..48 | `retention_max_age`, ms (zero when unset)                  |
//! | 48..56 | `retention_max_bytes` (zero when unset)                    |
//! | 56..60 | `max_batch_bytes`                                          |
//! | 60..64 | CRC-32 (IEEE) of bytes 0..60                               |
//!
//! A config that fails any check makes [`Store::open`] fail with
//! [`Error::CorruptMetadata`] naming the file: a topic is never served
//! with a default config in place of its own.
//!
//! # The lock
//!
//! The [`Fs`] seam has no lock call, so the lock is taken on the real file
//! system only, by [`lock_data_dir`], and handed to [`Store::open`]; tests
//! on the simulated file system pass none. It is an OS lock: an exclusive
//! `flock(2)` on `<data>/LOCK` through fs4's `FileExt::try_lock`
//! (`File::try_lock` is stable only since Rust 1.89 and the workspace
//! promises 1.88), held by the open file inside the [`DirLock`] and
//! released by the kernel when the guard is dropped or the process dies,
//! however it dies. A second lock, from this process or another, fails at
//! once with [`Error::Locked`] naming the holder: once it holds the lock, a
//! store writes its pid, process start time and boot id into `LOCK`, as
//! information only (nothing is decided by them; there is no stale lock to
//! take over). `LOCK` is never removed: removing it would let a process
//! that opened the old file and one that created a new one both hold "the"
//! lock. Limits: the lock is advisory (it keeps out other stores, not other
//! programs), and is meant for local file systems (on NFS, Linux turns
//! `flock` into a POSIX lock, which does not keep out a second store of the
//! same process).
//!
//! This module does not schedule retention (each partition's
//! [`Log::enforce_retention`] applies its topic's retention settings when
//! called), and does not check what is appended (the partition [`Log`]
//! does).

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log_format::Limits;

use crate::config::LogConfig;
use crate::error::{Error, io_error};
use crate::io::{Fs, OpenMode};
use crate::log::{Ack, Log};
use crate::names::{self, NameKind, TopicsEntry};
use crate::offsets::{MAX_OFFSET_METADATA_BYTES, Offsets};

/// Most partitions a topic may have.
pub const MAX_PARTITIONS: u32 = 10_000;

/// The persisted settings of a topic, applied to each of its partitions.
/// Durations are stored in whole milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Roll a partition to a new segment once the active one holds this
    /// many bytes. Default 1 GiB; at least 4096, at most 4 GiB − 1.
    pub segment_max_bytes: u64,
    /// Roll once the active segment's first batch is this old. Default 7
    /// days; positive, whole milliseconds.
    pub segment_max_age: Duration,
    /// Retention by age: sealed segments whose newest record was appended
    /// longer ago than this are deleted (`None`: kept whatever their age).
    /// Default `None`, as [`LogConfig`]; positive, whole milliseconds.
    pub retention_max_age: Option<Duration>,
    /// Retention by size: the oldest sealed segments are deleted while a
    /// partition holds more bytes than this (`None`: no size limit).
    /// Default `None`; positive.
    pub retention_max_bytes: Option<u64>,
    /// The ack level producers get when they do not ask for one. Default
    /// [`Ack::Durable`].
    pub default_ack: Ack,
    /// Largest batch accepted, header included, in bytes. Default 8 MiB; at
    /// least 1, at most `segment_max_bytes`.
    pub max_batch_bytes: u32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        let log = LogConfig::default();
        TopicConfig {
            segment_max_bytes: log.segment_max_bytes,
            segment_max_age: log.segment_max_age,
            retention_max_age: log.retention_max_age,
            retention_max_bytes: log.retention_max_bytes,
            default_ack: Ack::Durable,
            max_batch_bytes: log.limits.max_batch_bytes,
        }
    }
}

impl TopicConfig {
    /// Checks every value (see each field); a topic is never created with
    /// an invalid config.
    pub fn validate(&self) -> Result<(), Error> {
        let whole_ms = |setting: &'static str, d: Duration| {
            if !d.subsec_nanos().is_multiple_of(1_000_000) || u64::try_from(d.as_millis()).is_err()
            {
                return Err(Error::InvalidConfig {
                    setting,
                    reason: format!("{d:?} is not a whole number of milliseconds below 2^64"),
                });
            }
            if d.is_zero() {
                return Err(Error::InvalidConfig {
                    setting,
                    reason: "must be positive".into(),
                });
            }
            Ok(())
        };
        whole_ms("segment_max_age", self.segment_max_age)?;
        if let Some(age) = self.retention_max_age {
            whole_ms("retention_max_age", age)?;
        }
        if self.retention_max_bytes == Some(0) {
            return Err(Error::InvalidConfig {
                setting: "retention_max_bytes",
                reason: "must be positive".into(),
            });
        }
        if self.max_batch_bytes == 0 {
            return Err(Error::InvalidConfig {
                setting: "max_batch_bytes",
                reason: "must be positive".into(),
            });
        }
        self.log_config().validate()
    }

    /// The partition [`LogConfig`] this topic config maps to (the index
    /// interval and the record limit keep their defaults; the default ack
    /// is for the server to apply).
    pub fn log_config(&self) -> LogConfig {
        let defaults = LogConfig::default();
        LogConfig {
            segment_max_bytes: self.segment_max_bytes,
            segment_max_age: self.segment_max_age,
            retention_max_age: self.retention_max_age,
            retention_max_bytes: self.retention_max_bytes,
            limits: Limits {
                max_batch_bytes: self.max_batch_bytes,
                ..defaults.limits
            },
            ..defaults
        }
    }
}

/// What a store knows of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// Random id fixed when the topic is created: a topic deleted and
    /// created again under the same name gets a new one, and offsets
    /// committed to the old one are not returned for the new one.
    pub id: u64,
    /// Number of partitions, numbered from 0.
    pub partitions: u32,
    /// The topic's config.
    pub config: TopicConfig,
}

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
    /// The index spacing given to every partition opened, if not the
    /// default ([`Store::with_index_interval_bytes`]).
    index_interval_bytes: Option<u32>,
    /// The pool every file of the store is opened through (`fs` wraps it):
    /// open files stay near its budget however many partitions and
    /// segments there are ([`Store::with_open_files_budget`]).
    pool: crate::pool::PooledFs,
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

/// The content of `topic.config`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TopicMeta {
    id: u64,
    partitions: u32,
    config: TopicConfig,
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // Every update under these locks is a few assignments after the I/O
    // that justifies them: a panic elsewhere leaves the data consistent.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// Threads that close or flush partitions side by side.
const SIDE_BY_SIDE_THREADS: usize = 8;

/// Runs `work` on every log, `SIDE_BY_SIDE_THREADS` at a time; returns how
/// many answered `Ok(true)` and the first error.
fn side_by_side(
    logs: &[Arc<Log>],
    work: impl Fn(&Log) -> Result<bool, Error> + Sync,
) -> (usize, Option<Error>) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..SIDE_BY_SIDE_THREADS.min(logs.len()) {
            scope.spawn(|| {
                while let Some(log) = logs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match work(log) {
                        Ok(true) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(err) => {
                            lock(&first_error).get_or_insert(err);
                        }
                    }
                }
            });
        }
    });
    let first_error = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    (done.into_inner(), first_error)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

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
        let pool = crate::pool::PooledFs::new(fs, crate::pool::DEFAULT_OPEN_FILES_BUDGET);
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
        let topics_dir = names::topics_dir(&dir);
        let offsets_dir = names::offsets_dir(&dir);
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
            match names::classify_topics_entry(&entry.name) {
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
            index_interval_bytes: None,
            pool,
            _lock: lock,
        })
    }

    /// Sets the free-space floor of every partition this store opens
    /// ([`LogConfig::min_free_bytes`]: appends that would leave less space
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
    /// [`LogConfig::default`]'s (4096).
    pub fn with_index_interval_bytes(mut self, interval: u32) -> Store {
        self.index_interval_bytes = Some(interval.max(1));
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

    /// Creates a topic of `partitions` partitions (1 to
    /// [`MAX_PARTITIONS`]), durably: once this returns the topic survives
    /// a crash, and a crash before leaves no trace of it.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<TopicInfo, Error> {
        self.check_open()?;
        let dir = names::topic_dir(&self.dir, name)?;
        check_partitions(partitions)?;
        config.validate()?;
        let _admin = write(&self.admin);
        self.check_open()?;
        if read(&self.topics).contains_key(name)
            || self
                .fs
                .exists(&dir)
                .map_err(io_error("check topic directory", &dir))?
        {
            return Err(Error::TopicExists {
                topic: name.to_owned(),
            });
        }
        let meta = TopicMeta {
            id: nonce(),
            partitions,
            config,
        };
        let staging = self.topics_dir.join(names::staging_name(name, nonce()));
        if let Err(err) = self.build_topic(&staging, &dir, &meta) {
            if let Err(undo) = self.undo_create(&staging, &dir, name) {
                tracing::error!(topic = name, error = %undo, "cannot undo a failed topic creation; the topic may reappear at the next open");
            }
            return Err(err);
        }
        let topic = Topic::new(name.to_owned(), dir, meta);
        let info = topic.info();
        write(&self.topics).insert(name.to_owned(), Arc::new(topic));
        tracing::info!(topic = name, partitions, "topic created");
        Ok(info)
    }

    /// Writes the staging directory with its config, renames it into place
    /// and makes that durable.
    fn build_topic(&self, staging: &Path, dir: &Path, meta: &TopicMeta) -> Result<(), Error> {
        self.fs
            .create_dir_all(staging)
            .map_err(io_error("create topic staging directory", staging))?;
        let path = names::topic_config_path(staging);
        let file = self
            .fs
            .create_new(&path)
            .map_err(io_error("create topic config", &path))?;
        file.write_all_at(&encode_config(meta), 0)
            .map_err(io_error("write topic config", &path))?;
        file.sync_data()
            .map_err(io_error("sync topic config", &path))?;
        self.fs
            .sync_dir(staging)
            .map_err(io_error("sync topic staging directory", staging))?;
        self.fs
            .rename(staging, dir)
            .map_err(io_error("rename topic into place", dir))?;
        self.fs
            .sync_dir(&self.topics_dir)
            .map_err(io_error("sync topics directory", &self.topics_dir))
    }

    /// Undoes a failed [`Store::create_topic`]: the staging directory is
    /// removed, and a topic directory already renamed into place is renamed
    /// away first (never emptied in place, which a crash could leave as a
    /// topic without its config).
    fn undo_create(&self, staging: &Path, dir: &Path, name: &str) -> Result<(), Error> {
        let doomed = self.topics_dir.join(names::doomed_name(name, nonce()));
        if self
            .fs
            .exists(dir)
            .map_err(io_error("check topic directory", dir))?
        {
            self.fs
                .rename(dir, &doomed)
                .map_err(io_error("rename topic directory for deletion", dir))?;
        }
        remove_tree(&*self.fs, &doomed)?;
        remove_tree(&*self.fs, staging)?;
        self.fs
            .sync_dir(&self.topics_dir)
            .map_err(io_error("sync topics directory", &self.topics_dir))
    }

    /// Deletes a topic: closes its open partitions (handles given out fail
    /// with [`Error::Closed`] from then on, and keep reading what they
    /// read), makes the deletion durable, then removes its files and its
    /// committed offsets. A crash at any point leaves the whole topic or
    /// none of it. If this fails before the deletion is visible, the topic
    /// stays, but handles given out before are closed: get new ones from
    /// [`Store::partition`].
    ///
    /// Once the deletion is durable this returns `Ok` even if removing the
    /// files fails (that is logged; the next open removes them).
    pub fn delete_topic(&self, name: &str) -> Result<(), Error> {
        self.check_open()?;
        names::validate_topic_name(name)?;
        let _admin = write(&self.admin);
        self.check_open()?;
        let Some(topic) = write(&self.topics).remove(name) else {
            return Err(Error::TopicNotFound {
                topic: name.to_owned(),
            });
        };
        topic.deleted.store(true, Ordering::SeqCst);
        for slot in read(&topic.slots).iter() {
            let log = lock(slot).take();
            if let Some(log) = log
                && let Err(err) = log.close()
            {
                tracing::warn!(partition = %log.dir().display(), error = %err, "closing a partition of a deleted topic failed");
            }
        }
        let doomed = self.topics_dir.join(names::doomed_name(name, nonce()));
        if let Err(err) = self.fs.rename(&topic.dir, &doomed) {
            // Nothing changed on disk: the topic stays, its partitions reopen
            // on next use.
            topic.deleted.store(false, Ordering::SeqCst);
            write(&self.topics).insert(name.to_owned(), topic.clone());
            return Err(io_error("rename topic directory for deletion", &topic.dir)(
                err,
            ));
        }
        // Until this sync the rename may not be durable: a crash brings the
        // whole topic back (closed cleanly). Removing files before it could
        // leave half a topic, so on failure leave the doomed directory to
        // the next open.
        self.fs
            .sync_dir(&self.topics_dir)
            .map_err(io_error("sync topics directory", &self.topics_dir))?;
        tracing::info!(topic = name, "topic deleted");
        let cleanup = remove_tree(&*self.fs, &doomed)
            .and_then(|()| {
                self.fs
                    .sync_dir(&self.topics_dir)
                    .map_err(io_error("sync topics directory", &self.topics_dir))
            })
            .and_then(|()| self.offsets.remove_topic(name));
        if let Err(err) = cleanup {
            tracing::error!(topic = name, error = %err, "cannot remove the files of a deleted topic; the next open will");
        }
        Ok(())
    }

    /// Grows a topic to `new_total` partitions (at most
    /// [`MAX_PARTITIONS`]); asking for the current count changes nothing,
    /// asking for fewer fails with [`Error::InvalidConfig`]. Durable on
    /// return.
    pub fn create_partitions(&self, name: &str, new_total: u32) -> Result<TopicInfo, Error> {
        self.check_open()?;
        names::validate_topic_name(name)?;
        check_partitions(new_total)?;
        let _admin = write(&self.admin);
        self.check_open()?;
        let topic = self.topic_entry(name)?;
        let mut meta = write(&topic.meta);
        if new_total < meta.partitions {
            return Err(Error::InvalidConfig {
                setting: "partitions",
                reason: format!(
                    "topic {name:?} has {} partitions; partitions can only be added",
                    meta.partitions
                ),
            });
        }
        if new_total > meta.partitions {
            let grown = TopicMeta {
                partitions: new_total,
                ..meta.clone()
            };
            let path = names::topic_config_path(&topic.dir);
            write_atomic(&*self.fs, &path, &encode_config(&grown))?;
            *meta = grown;
            write(&topic.slots).resize_with(new_total as usize, Default::default);
            tracing::info!(topic = name, partitions = new_total, "partitions added");
        }
        drop(meta);
        Ok(topic.info())
    }

    /// What the store knows of a topic.
    pub fn topic(&self, name: &str) -> Result<TopicInfo, Error> {
        self.check_open()?;
        names::validate_topic_name(name)?;
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
        names::validate_topic_name(topic)?;
        let entry = self.topic_entry(topic)?;
        self.open_partition(&entry, partition)
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
        let mut config = read(&topic.meta).config.log_config();
        config.min_free_bytes = self.min_free_bytes;
        if let Some(interval) = self.index_interval_bytes {
            config.index_interval_bytes = interval;
        }
        let log = Arc::new(Log::open(
            self.fs.clone(),
            names::partition_dir(&topic.dir, partition),
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
        names::validate_consumer_id(consumer)?;
        names::validate_topic_name(topic)?;
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
        names::validate_consumer_id(consumer)?;
        names::validate_topic_name(topic)?;
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

    /// Closes every open partition cleanly (see [`Log::close`]); later
    /// calls fail with [`Error::StoreClosed`]. Returns the first error,
    /// after trying every partition. The lock is released when the store is
    /// dropped.
    pub fn close(&self) -> Result<(), Error> {
        self.closed.store(true, Ordering::SeqCst);
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

/// What one [`Store::enforce_retention`] pass deleted, per partition.
pub type RetentionPass = Vec<(String, u32, crate::retention::RetentionReport)>;

impl Store {
    /// One retention pass, judged at `now_ms` (ms since the Unix epoch),
    /// over every partition of every topic that has a retention setting,
    /// opening partitions not yet open. Returns the partitions where
    /// something was deleted. A partition that fails is logged and skipped,
    /// so one bad partition does not stop retention elsewhere; the first
    /// error is returned after the pass.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionPass, Error> {
        self.check_open()?;
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        let mut deleted = Vec::new();
        let mut first_error = None;
        for topic in topics {
            let (partitions, config) = {
                let meta = read(&topic.meta);
                (meta.partitions, meta.config.clone())
            };
            if config.retention_max_age.is_none() && config.retention_max_bytes.is_none() {
                continue;
            }
            for partition in 0..partitions {
                let result = self
                    .open_partition(&topic, partition)
                    .and_then(|log| log.enforce_retention(now_ms));
                match result {
                    Ok(report) if !report.deleted_segments.is_empty() => {
                        deleted.push((topic.name.clone(), partition, report));
                    }
                    Ok(_) | Err(Error::TopicNotFound { .. }) => {}
                    Err(err) => {
                        tracing::warn!(topic = %topic.name, partition, error = %err, "retention failed");
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(deleted),
        }
    }

    /// The open partitions of every topic, each taken from its slot by
    /// `take` (cloned, or taken out at close).
    fn open_logs(&self, take: impl Fn(&mut Option<Arc<Log>>) -> Option<Arc<Log>>) -> Vec<Arc<Log>> {
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        topics
            .iter()
            .flat_map(|topic| {
                read(&topic.slots)
                    .iter()
                    .filter_map(|slot| take(&mut lock(slot)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Syncs every open partition holding WRITTEN (not yet durable) data,
    /// so it becomes durable within one flush interval. Returns how many
    /// partitions were synced.
    pub fn flush_written(&self) -> Result<usize, Error> {
        self.check_open()?;
        let logs = self.open_logs(|slot| slot.clone());
        // Side by side, as at close: many partitions' syncs overlap.
        let (synced, first_error) = side_by_side(&logs, |log| {
            let marks = log.watermarks();
            if marks.durable_end >= marks.log_end {
                return Ok(false);
            }
            log.sync().map(|_| true).inspect_err(|err| {
                tracing::warn!(dir = %log.dir().display(), error = %err, "background flush failed");
            })
        });
        match first_error {
            Some(err) => Err(err),
            None => Ok(synced),
        }
    }
}

/// The store's background work on one thread (not one per partition):
/// [`Store::flush_written`] every `flush_interval` and
/// [`Store::enforce_retention`] every `retention_interval`. Stops (and
/// joins its thread) when dropped.
#[derive(Debug)]
pub struct Background {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Default interval of the background flush of WRITTEN data: 1 s.
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Default interval between retention passes: 5 minutes (Kafka's
/// `log.retention.check.interval.ms`).
pub const DEFAULT_RETENTION_INTERVAL: Duration = Duration::from_secs(300);

impl Background {
    /// Starts the background thread for `store`.
    pub fn start(
        store: Arc<Store>,
        flush_interval: Duration,
        retention_interval: Duration,
    ) -> Result<Background, Error> {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("log-store-background".into())
            .spawn(move || {
                background_loop(&store, &thread_stop, flush_interval, retention_interval)
            })
            .map_err(io_error("start the background thread", Path::new("")))?;
        Ok(Background {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *lock(stopped) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn background_loop(
    store: &Store,
    stop: &(Mutex<bool>, std::sync::Condvar),
    flush_interval: Duration,
    retention_interval: Duration,
) {
    let (stopped, wake) = stop;
    let flush_interval = flush_interval.max(Duration::from_millis(1));
    let retention_interval = retention_interval.max(Duration::from_millis(1));
    let mut next_flush = std::time::Instant::now() + flush_interval;
    let mut next_retention = std::time::Instant::now() + retention_interval;
    loop {
        {
            let mut guard = lock(stopped);
            loop {
                if *guard {
                    return;
                }
                let now = std::time::Instant::now();
                let next = next_flush.min(next_retention);
                if now >= next {
                    break;
                }
                guard = wake
                    .wait_timeout(guard, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let now = std::time::Instant::now();
        if now >= next_flush {
            if let Err(err) = store.flush_written() {
                if matches!(err, Error::StoreClosed { .. }) {
                    return;
                }
                tracing::warn!(error = %err, "background flush pass failed");
            }
            next_flush = now + flush_interval;
        }
        if now >= next_retention {
            let now_ms = crate::log::now_ms();
            match store.enforce_retention(now_ms) {
                Ok(deleted) => {
                    for (topic, partition, report) in deleted {
                        tracing::info!(
                            %topic,
                            partition,
                            segments = report.deleted_segments.len(),
                            bytes = report.deleted_bytes,
                            "retention deleted segments"
                        );
                    }
                }
                Err(Error::StoreClosed { .. }) => return,
                Err(err) => tracing::warn!(error = %err, "retention pass failed"),
            }
            next_retention = now + retention_interval;
        }
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

fn check_partitions(partitions: u32) -> Result<(), Error> {
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(Error::InvalidConfig {
            setting: "partitions",
            reason: format!("{partitions} is outside [1, {MAX_PARTITIONS}]"),
        });
    }
    Ok(())
}

/// Reads a topic directory's config, removing a temp config a crash left.
fn load_topic(fs: &dyn Fs, topics_dir: &Path, name: &str) -> Result<Topic, Error> {
    let dir = names::child(NameKind::Topic, topics_dir, name)?;
    let path = names::topic_config_path(&dir);
    let Some(bytes) = read_small(fs, &path, CONFIG_LEN, "read topic config")? else {
        return Err(Error::CorruptMetadata {
            path,
            position: 0,
            reason: "missing: the topic directory has no config".into(),
        });
    };
    let meta = decode_config(&path, &bytes)?;
    let tmp = names::tmp_file(&path);
    if fs.exists(&tmp).map_err(io_error("check temp file", &tmp))? {
        tracing::warn!(file = %tmp.display(), "removing temp file left by a crash");
        fs.remove_file(&tmp)
            .map_err(io_error("remove temp file", &tmp))?;
        fs.sync_dir(&dir)
            .map_err(io_error("sync topic directory", &dir))?;
    }
    Ok(Topic::new(name.to_owned(), dir, meta))
}

const CONFIG_MAGIC: &[u8; 4] = b"LTOP";
const CONFIG_VERSION: u16 = 1;
const CONFIG_LEN: usize = 64;
const CONFIG_CRC_AT: usize = 60;
const FLAG_RETENTION_AGE: u16 = 1;
const FLAG_RETENTION_BYTES: u16 = 2;

fn ms(d: Duration) -> u64 {
    // Validated: whole milliseconds below 2^64.
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn encode_config(meta: &TopicMeta) -> [u8; CONFIG_LEN] {
    let c = &meta.config;
    let mut flags = 0u16;
    if c.retention_max_age.is_some() {
        flags |= FLAG_RETENTION_AGE;
    }
    if c.retention_max_bytes.is_some() {
        flags |= FLAG_RETENTION_BYTES;
    }
    let mut out = [0u8; CONFIG_LEN];
    out[0..4].copy_from_slice(CONFIG_MAGIC);
    out[4..6].copy_from_slice(&CONFIG_VERSION.to_le_bytes());
    out[6..8].copy_from_slice(&flags.to_le_bytes());
    out[8..16].copy_from_slice(&meta.id.to_le_bytes());
    out[16..20].copy_from_slice(&meta.partitions.to_le_bytes());
    out[20] = match c.default_ack {
        Ack::Durable => 0,
        Ack::Written => 1,
    };
    out[24..32].copy_from_slice(&c.segment_max_bytes.to_le_bytes());
    out[32..40].copy_from_slice(&ms(c.segment_max_age).to_le_bytes());
    out[40..48].copy_from_slice(&c.retention_max_age.map_or(0, ms).to_le_bytes());
    out[48..56].copy_from_slice(&c.retention_max_bytes.unwrap_or(0).to_le_bytes());
    out[56..60].copy_from_slice(&c.max_batch_bytes.to_le_bytes());
    let crc = crc32fast::hash(&out[..CONFIG_CRC_AT]);
    out[CONFIG_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_config(path: &Path, bytes: &[u8]) -> Result<TopicMeta, Error> {
    let corrupt = |position: u64, reason: String| Error::CorruptMetadata {
        path: path.to_path_buf(),
        position,
        reason,
    };
    if bytes.len() < 6 || &bytes[..4] != CONFIG_MAGIC {
        return Err(corrupt(0, "not a topic config (bad magic)".into()));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != CONFIG_VERSION {
        return Err(corrupt(
            4,
            format!("unsupported version {version} (this build reads {CONFIG_VERSION})"),
        ));
    }
    if bytes.len() != CONFIG_LEN {
        return Err(corrupt(
            bytes.len().min(CONFIG_LEN) as u64,
            format!("file is {} bytes, expected {CONFIG_LEN}", bytes.len()),
        ));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&bytes[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let stored = u32_at(CONFIG_CRC_AT);
    let computed = crc32fast::hash(&bytes[..CONFIG_CRC_AT]);
    if stored != computed {
        return Err(corrupt(
            CONFIG_CRC_AT as u64,
            format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    let flags = u16::from_le_bytes([bytes[6], bytes[7]]);
    if flags & !(FLAG_RETENTION_AGE | FLAG_RETENTION_BYTES) != 0 {
        return Err(corrupt(6, format!("unknown flags {flags:#06x}")));
    }
    if bytes[21..24] != [0, 0, 0] {
        return Err(corrupt(21, "reserved bytes are not zero".into()));
    }
    let default_ack = match bytes[20] {
        0 => Ack::Durable,
        1 => Ack::Written,
        other => return Err(corrupt(20, format!("unknown ack level {other}"))),
    };
    let partitions = u32_at(16);
    if partitions == 0 || partitions > MAX_PARTITIONS {
        return Err(corrupt(
            16,
            format!("{partitions} partitions is outside [1, {MAX_PARTITIONS}]"),
        ));
    }
    let config = TopicConfig {
        segment_max_bytes: u64_at(24),
        segment_max_age: Duration::from_millis(u64_at(32)),
        retention_max_age: (flags & FLAG_RETENTION_AGE != 0)
            .then(|| Duration::from_millis(u64_at(40))),
        retention_max_bytes: (flags & FLAG_RETENTION_BYTES != 0).then(|| u64_at(48)),
        default_ack,
        max_batch_bytes: u32_at(56),
    };
    if let Err(err) = config.validate() {
        return Err(corrupt(24, format!("stored config is invalid: {err}")));
    }
    Ok(TopicMeta {
        id: u64_at(8),
        partitions,
        config,
    })
}

/// A random 64-bit value (topic ids, staging and doomed names, lock
/// records): `RandomState`'s per-process random keys over a counter, the
/// pid and the time.
pub(crate) fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    if let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) {
        hasher.write_u128(now.as_nanos());
    }
    hasher.finish()
}

/// Syncs `dir` and every ancestor, so that each one's entry is durable.
fn sync_chain(fs: &dyn Fs, dir: &Path) -> Result<(), Error> {
    for ancestor in dir.ancestors().filter(|a| !a.as_os_str().is_empty()) {
        fs.sync_dir(ancestor)
            .map_err(io_error("sync directory", ancestor))?;
    }
    Ok(())
}

/// Replaces a small file atomically: writes `<path>.tmp`, `fdatasync`s it,
/// renames it over `path` and `fsync`s the directory. A crash leaves the
/// old content or the new one (and maybe the temp file).
pub(crate) fn write_atomic(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = names::tmp_file(path);
    match fs.remove_file(&tmp) {
        Ok(()) => tracing::warn!(file = %tmp.display(), "removed a stale temp file"),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(io_error("remove stale temp file", &tmp)(err)),
    }
    let file = fs
        .create_new(&tmp)
        .map_err(io_error("create temp file", &tmp))?;
    file.write_all_at(bytes, 0)
        .map_err(io_error("write temp file", &tmp))?;
    file.sync_data().map_err(io_error("sync temp file", &tmp))?;
    fs.rename(&tmp, path)
        .map_err(io_error("rename temp file", path))?;
    fs.sync_dir(dir).map_err(io_error("sync directory", dir))
}

/// Reads a whole small file: `None` if it does not exist; a file longer
/// than `max_len` is reported as corrupt without being read.
pub(crate) fn read_small(
    fs: &dyn Fs,
    path: &Path,
    max_len: usize,
    op: &'static str,
) -> Result<Option<Vec<u8>>, Error> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(op, path)(err)),
    };
    let len = file.len().map_err(io_error(op, path))?;
    if len > max_len as u64 {
        return Err(Error::CorruptMetadata {
            path: path.to_path_buf(),
            position: max_len as u64,
            reason: format!("file is {len} bytes, longer than any valid one ({max_len})"),
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(io_error(op, path))?;
    Ok(Some(bytes))
}

/// Removes a directory and everything under it, depth first, without
/// following symbolic links (they are removed as files). Does not sync:
/// callers make the removal durable by syncing the parent once the tree is
/// unreachable. Entries that vanish meanwhile are fine.
pub(crate) fn remove_tree(fs: &dyn Fs, root: &Path) -> Result<(), Error> {
    let gone = |err: &io::Error| err.kind() == io::ErrorKind::NotFound;
    // (directory, listed already): a directory is removed when popped the
    // second time, after everything under it.
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, listed)) = stack.pop() {
        if listed {
            match fs.remove_dir(&dir) {
                Err(err) if !gone(&err) => return Err(io_error("remove directory", &dir)(err)),
                _ => continue,
            }
        }
        let entries = match fs.read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if gone(&err) => continue,
            Err(err) => return Err(io_error("list directory", &dir)(err)),
        };
        stack.push((dir.clone(), true));
        for entry in entries {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                stack.push((path, false));
            } else {
                match fs.remove_file(&path) {
                    Err(err) if !gone(&err) => {
                        return Err(io_error("remove file", &path)(err));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The data directory lock. The one place of this crate that calls `std::fs`
// directly: the `Fs` seam has no lock call, and the lock only matters on the
// real file system.

/// The exclusive lock of a data directory, taken by [`lock_data_dir`]: an
/// OS lock on its `LOCK` file, released when this guard is dropped (or the
/// process dies). Keep it, inside the [`Store`], for as long as anything of
/// the store is in use: partition logs given out keep working after the
/// store is dropped, but the directory is no longer locked then.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    path: PathBuf,
    /// Holds the lock: closing it releases it.
    _file: std::fs::File,
}

impl DirLock {
    /// The locked data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the exclusive lock of the data directory `dir` (created if
/// missing): an OS lock on `dir/LOCK` (see the module docs). Fails at once
/// with [`Error::Locked`], naming the holder as far as `LOCK` says, if a
/// process holds it, this one included.
pub fn lock_data_dir(dir: impl AsRef<Path>) -> Result<DirLock, Error> {
    use std::io::Write;
    let dir = dir.as_ref().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io_error("create data directory", &dir))?;
    let path = dir.join(names::LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error("open lock file", &path))?;
    // Through the trait: std's own `File::try_lock` needs Rust 1.89.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(Error::Locked {
                holder: LockRecord::describe(&text),
                path,
            });
        }
        Err(fs4::TryLockError::Error(err)) => {
            return Err(io_error("lock data directory", &path)(err));
        }
    }
    // Ours now: say who holds it (information for a second locker only).
    let record = LockRecord::current().encode();
    file.set_len(0)
        .and_then(|()| (&file).write_all(record.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(io_error("write lock file", &path))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync data directory", &dir))?;
    tracing::info!(file = %path.display(), "data directory locked");
    Ok(DirLock {
        dir,
        path,
        _file: file,
    })
}

/// What `LOCK` says about its holder: information only.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockRecord {
    pid: u32,
    /// Process start time, clock ticks since boot (`/proc/<pid>/stat`
    /// field 22); 0 when unknown.
    start: u64,
    /// `/proc/sys/kernel/random/boot_id`; empty when unknown.
    boot: String,
}

const LOCK_HEADER: &str = "log-storage data directory lock v2";

impl LockRecord {
    fn current() -> LockRecord {
        LockRecord {
            pid: std::process::id(),
            start: process_start("self").unwrap_or(0),
            boot: boot_id().unwrap_or_default(),
        }
    }

    fn encode(&self) -> String {
        format!(
            "{LOCK_HEADER}\npid {}\nstart {}\nboot {}\n",
            self.pid, self.start, self.boot
        )
    }

    fn decode(text: &str) -> Option<LockRecord> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != LOCK_HEADER {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
        let pid = field("pid")?.parse().ok()?;
        let start = field("start")?.parse().ok()?;
        let boot = field("boot")?.to_owned();
        if lines.next().is_some() {
            return None;
        }
        Some(LockRecord { pid, start, boot })
    }

    /// The holder named in an [`Error::Locked`], from the text of `LOCK`.
    fn describe(text: &str) -> String {
        match LockRecord::decode(text) {
            Some(r) => format!(
                "held by process {} (started {} clock ticks after boot {})",
                r.pid,
                r.start,
                if r.boot.is_empty() { "?" } else { &r.boot }
            ),
            None => "held by another process, which has not written its pid yet".into(),
        }
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn process_start(pid: &str) -> Option<u64> {
    parse_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of `/proc/<pid>/stat`; the command name (field 2) is in
/// parentheses and may hold spaces and parentheses, so count from the last
/// `)`.
fn parse_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TopicMeta {
        let config = TopicConfig {
            retention_max_bytes: Some(1 << 30),
            default_ack: Ack::Written,
            ..TopicConfig::default()
        };
        TopicMeta {
            id: 0xfeed_beef,
            partitions: 12,
            config,
        }
    }

    #[test]
    fn topic_configs_roundtrip() {
        let path = Path::new("/d/topics/t/topic.config");
        let meta = meta();
        assert_eq!(decode_config(path, &encode_config(&meta)).unwrap(), meta);
        let mut none = meta.clone();
        none.config.retention_max_age = None;
        none.config.retention_max_bytes = None;
        assert_eq!(decode_config(path, &encode_config(&none)).unwrap(), none);
    }

    #[test]
    fn every_flipped_bit_and_every_cut_of_a_config_is_reported() {
        let path = Path::new("/d/topics/t/topic.config");
        let bytes = encode_config(&meta());
        for bit in 0..CONFIG_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            let err = decode_config(path, &damaged).unwrap_err();
            assert!(
                matches!(&err, Error::CorruptMetadata { path: p, .. } if p == path),
                "bit {bit}: {err}"
            );
        }
        for len in 0..CONFIG_LEN {
            assert!(decode_config(path, &bytes[..len]).is_err(), "cut at {len}");
        }
        assert!(decode_config(path, &[0u8; CONFIG_LEN]).is_err());
    }

    #[test]
    fn config_validation_refuses_bad_values() {
        let d = TopicConfig::default;
        for bad in [
            TopicConfig {
                segment_max_age: Duration::from_micros(1500),
                ..d()
            },
            TopicConfig {
                retention_max_age: Some(Duration::ZERO),
                ..d()
            },
            TopicConfig {
                retention_max_bytes: Some(0),
                ..d()
            },
            TopicConfig {
                max_batch_bytes: 0,
                ..d()
            },
            TopicConfig {
                segment_max_bytes: 100,
                ..d()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
        TopicConfig::default().validate().unwrap();
    }

    #[test]
    fn lock_records_roundtrip_and_name_their_holder() {
        let record = LockRecord {
            pid: 42,
            start: 12345,
            boot: "9381555c-a5e3-4a96-84c2-b5bccc9ceadb".into(),
        };
        assert_eq!(LockRecord::decode(&record.encode()), Some(record.clone()));
        assert!(LockRecord::describe(&record.encode()).contains("process 42 "));
        let text = record.encode();
        for bad in [
            "",
            "garbage",
            &text[..text.len() - 1],
            &text.replace("pid 42", "pid x"),
            &format!("{text}extra\n"),
        ] {
            assert_eq!(LockRecord::decode(bad), None, "{bad:?}");
            assert!(LockRecord::describe(bad).contains("another process"));
        }
        let me = LockRecord::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0 && !me.boot.is_empty(), "{me:?}");
    }

    #[test]
    fn process_start_is_parsed_past_odd_command_names() {
        let stat = "123 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 999 20";
        assert_eq!(parse_start(stat), Some(999));
        assert!(process_start("self").is_some_and(|s| s > 0));
    }
}
