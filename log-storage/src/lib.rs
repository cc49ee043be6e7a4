//! Durable storage for one node of the commit log.
//!
//! This crate holds the partition log: a directory of segment files
//! named by their first offset (`{base_offset:020}.log`) with a sparse
//! index beside each (from `log-index`), holding record batches encoded by
//! `log-format`. It owns segment rotation, retention by age and size,
//! group commit (many appends sharing one `fdatasync`), crash recovery and
//! the store of topics, partitions and consumer offsets.
//!
//! It stays synchronous and thread-based: it knows nothing of tokio or
//! tonic.
//!
//! # Layout
//!
//! - `io.rs`: the I/O seam ([`Fs`], [`FileHandle`]) and [`RealFs`]; every
//!   file operation of the crate goes through it.
//! - `pool.rs`: [`PooledFs`], a bounded pool of open files over any `Fs`.
//! - `log.rs`: [`Log`], one partition: append with group commit, read,
//!   roll, clean shutdown and crash recovery.
//! - `roll.rs`: rolling to a new segment, and the roll debt the next sync
//!   leader pays.
//! - `recovery.rs`: crash recovery of a partition on open.
//! - `checkpoint.rs`: the recovery point (durable position, boot, poison).
//! - `producer.rs`: the idempotent producer's state and its snapshot.
//! - `retention.rs`: delete-records, retention by age and size, offset
//!   for a time, waiting for an offset.
//! - `segment.rs`: one segment (log file + index), header hops and scans.
//! - `prepare.rs`: loading a sealed segment's index, mapping and newest
//!   append time without the partition lock.
//! - `naming.rs`: file names of a partition directory.
//! - `store.rs`: [`Store`], the topics, partitions and committed offsets
//!   of one data directory (layout, `topic.config` format, crash-safe
//!   create and delete), and [`lock_data_dir`], its exclusive lock.
//! - `names.rs`: validation of topic names and consumer ids, and the paths
//!   built from them (always inside the data directory).
//! - `offsets.rs`: committed consumer offsets, one atomically replaced file
//!   per consumer, topic and partition.
//! - `config.rs`: [`LogConfig`].
//! - `error.rs`: [`Error`].
//! - `sim.rs`: [`SimFs`], the simulated file system for crash and fault
//!   tests (power loss at sector granularity, failing operations).
#![forbid(unsafe_code)]

mod checkpoint;
mod config;
mod error;
mod io;
mod log;
mod names;
mod naming;
mod offsets;
mod pool;
mod prepare;
mod producer;
mod recovery;
mod retention;
mod roll;
mod segment;
mod sim;
mod store;

pub use config::LogConfig;
pub use error::Error;
pub use io::{DirEntry, FileHandle, Fs, OpenMode, RealFs};
pub use log::{Ack, AppendOptions, Appended, Committer, Isolation, Log, ReadResult, Watermarks};
pub use names::{
    MAX_NAME_BYTES, NameKind, RESERVED_SUFFIXES, validate_consumer_id, validate_topic_name,
};
pub use offsets::{MAX_OFFSET_METADATA_BYTES, OFFSET_FILE_MAX_BYTES};
pub use pool::{DEFAULT_OPEN_FILES_BUDGET, PooledFs};
pub use retention::{Lag, RetentionReport, Usage};
pub use sim::{CrashReport, FaultKind, SimFs, TearKind, TornSector};
pub use store::{
    Background, DEFAULT_FLUSH_INTERVAL, DEFAULT_RETENTION_INTERVAL, DirLock, MAX_PARTITIONS,
    RetentionPass, Store, TopicConfig, TopicInfo, lock_data_dir,
};
