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
#![forbid(unsafe_code)]

mod io;

pub use io::{DirEntry, FileHandle, Fs, OpenMode, RealFs};
