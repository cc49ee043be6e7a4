//! Durable storage for one node of the commit log. **Not implemented yet.**
//!
//! This crate will hold the partition log: a directory of segment files
//! named by their first offset (`{base_offset:020}.log`) with a sparse
//! index beside each (from `log-index`), holding record batches encoded by
//! `log-format`. It will own segment rotation, retention by age and size,
//! group commit (many appends sharing one `fdatasync`), crash recovery and
//! the store of topics, partitions and consumer offsets.
//!
//! It will stay synchronous and thread-based: it knows nothing of tokio or
//! tonic. Nothing here is usable yet; the crate exists so that the
//! workspace layout is in place from the first commit.
#![forbid(unsafe_code)]
