//! Durable storage for one node of the commit log. **Work in progress.**
//!
//! This crate will hold the partition log: a directory of segment files
//! named by their first offset (`{base_offset:020}.log`) with a sparse
//! index beside each (from `log-index`), holding record batches encoded by
//! `log-format`. It will own segment rotation, retention by age and size,
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
//! - `log.rs`: [`Log`], one partition: append with group commit, read,
//!   roll, clean shutdown and crash recovery.
//! - `retention.rs`: delete-records, retention by age and size, offset
//!   for a time, waiting for an offset.
//! - `segment.rs`: one segment (log file + index), header hops and scans.
//! - `naming.rs`: file names of a partition directory.
//! - `config.rs`: [`LogConfig`].
//! - `error.rs`: [`Error`].
//! - `sim.rs`: [`SimFs`], the simulated file system for crash and fault
//!   tests (power loss at sector granularity, failing operations).
#![forbid(unsafe_code)]

mod config;
mod error;
mod io;
mod log;
mod naming;
mod retention;
mod segment;
mod sim;

pub use config::LogConfig;
pub use error::Error;
pub use io::{DirEntry, FileHandle, Fs, OpenMode, RealFs};
pub use retention::RetentionReport;
pub use log::{Ack, AppendOptions, Appended, Isolation, Log, ReadResult, Watermarks};
pub use sim::{CrashReport, FaultKind, SimFs, TearKind, TornSector};
