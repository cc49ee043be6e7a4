//! Durable storage for one node of the commit log.
//!
//! This crate holds the partition log: a directory of segment files
//! named by their first offset (`{base_offset:020}.log`) with a sparse
//! index beside each (from `log-index`), holding record batches encoded by
//! `log-format`. It owns segment rotation, retention by age and size,
//! group commit (many appends sharing one `fdatasync`), crash recovery and
//! the store of topics, partitions and consumer offsets.
//!
//! It stays synchronous and thread-based: it knows nothing of tokio,
//! tonic or any wire protocol.
//!
//! # Layers
//!
//! Top to bottom; each layer uses only the ones below it (the workspace's
//! tidy test, `xtask/tests/tidy.rs`, fails when two sibling modules use
//! each other, directly or in a circle):
//!
//! - `store/`: [`Store`], the topics, partitions and committed offsets of
//!   one data directory (`admin.rs` for creating, deleting and growing
//!   topics, `topic_config.rs`, `offsets.rs`, `background.rs` for the flush
//!   and retention passes, `cleaner.rs` for the log cleaner threads,
//!   `config.rs` for [`StoreConfig`], `lock.rs` for [`lock_data_dir`]).
//! - `partition/`: [`Log`], one partition: `append.rs`, `gather.rs` (small
//!   durable async appends gathered into one write per sync), `commit.rs`
//!   (group commit, the sync leader, poison), `committer.rs`
//!   ([`Committer`], [`Dispatch`]), `latency.rs` (sync and ack latency
//!   histograms), `roll.rs`, `read.rs`, `retention.rs`, `clean/` (the log
//!   cleaner: compaction to the latest record per key, and cold-segment
//!   compression), `recovery.rs` with `sealed_window.rs` (the sealed
//!   segments a crash can have left unsynced), `checkpoint.rs` (the
//!   recovery point), `epochs.rs` (the epoch history), `markers.rs` (the
//!   clean-shutdown marker and the log start), `segment.rs`, `prepare.rs`
//!   (a sealed segment loaded without the partition lock), `prealloc.rs`
//!   (the zeroed runway ahead of the active segment), `producer.rs`
//!   (idempotent producers).
//! - `io/`: the [`Fs`] / [`FileHandle`] seam with [`RealFs`] (`real.rs`),
//!   [`PooledFs`] (`pool.rs`), the durable steps every layer above uses
//!   (`durable.rs`: atomic replace, directory sync chains, the small-file
//!   codec) and, behind the `sim` feature, `SimFs` (`sim/`).
//! - `layout.rs`: every file name and path of the data directory, and the
//!   validation of user-chosen names.
//! - `config.rs`: [`LogConfig`], the settings of one partition.
//! - `error.rs` ([`Error`]) and `util.rs`, which use no other module.
//!
//! # Embedding
//!
//! [`Store::start_locked`] is all an embedder calls: it locks the data
//! directory, opens the store and starts what runs beside it (the
//! background flush and retention thread and the log cleaner threads).
//! The committer of async appends starts on first use
//! ([`Store::committer`]).
//!
//! ```
//! use log_format::{BatchBuilder, Limits, NewRecord};
//! use log_storage::{AppendOptions, Isolation, Store, StoreConfig, TopicConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let data_dir = tmp.path();
//! let store = Store::start_locked(data_dir, StoreConfig::default().with_min_free_bytes(None))?;
//! store.create_topic("events", 1, TopicConfig::default())?;
//! let log = store.partition("events", 0)?;
//! let mut batch = BatchBuilder::new(Limits::default());
//! batch.push(&NewRecord::value(0, b"hello"))?;
//! // Acknowledged once fdatasync'd (the default ack).
//! let appended = log.append(batch.finish()?, AppendOptions::default())?;
//! let read = log.read(appended.base_offset, 1 << 20, Isolation::Durable)?;
//! assert_eq!(read.batch_count, 1);
//! store.close()?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod config;
mod error;
mod io;
mod layout;
mod partition;
mod store;
mod util;

pub use config::{
    Cleanup, CleanupPolicy, DEFAULT_COLD_COMPRESSION_LAG, DEFAULT_DELETE_RETENTION,
    DEFAULT_MIN_CLEANABLE_DIRTY_RATIO, LogConfig,
};
pub use error::{Error, NameKind};
#[cfg(feature = "sim")]
pub use io::{CrashReport, FaultKind, SimFs, SplitMix64, TearKind, TornSector};
pub use io::{
    DEFAULT_OPEN_FILES_BUDGET, DirEntry, FileHandle, Fs, FsLayer, IndexFile, OpenMode, PooledFs,
    RealFs,
};
pub use layout::{MAX_NAME_BYTES, RESERVED_SUFFIXES, validate_consumer_id, validate_topic_name};
pub use partition::{
    Ack, AppendOptions, Appended, CleanReport, CleanerStats, Committer, Completions,
    CompressReport, Dispatch, EpochEnd, EpochStart, Isolation, KEY_MAP_ENTRY_BYTES, KeyMap, Lag,
    LatencySummary, Log, ReadResult, RetentionReport, Usage, Watermarks,
};
pub use store::{
    Background, CleanedPartition, CompressedPartition, DEFAULT_CLEANER_BACKOFF,
    DEFAULT_COMMITTER_THREADS, DEFAULT_FLUSH_INTERVAL, DEFAULT_FREE_SPACE_CHECK_INTERVAL,
    DEFAULT_KEY_MAP_BYTES, DEFAULT_MIN_FREE_BYTES, DEFAULT_PREALLOCATE_BYTES,
    DEFAULT_RETENTION_INTERVAL, DirLock, MAX_OFFSET_METADATA_BYTES, MAX_PARTITIONS,
    OFFSET_FILE_MAX_BYTES, RetentionPass, Store, StoreConfig, TopicConfig, TopicInfo,
    lock_data_dir,
};
