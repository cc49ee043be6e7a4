//! The Rust client of the commit log. **Not implemented yet.**
//!
//! This crate will speak the gRPC contract in `proto/log/v1/log.proto`: topic
//! administration, a batching, pipelining, idempotent `Producer` that encodes
//! batches with `log-format`, and a `Consumer` that fetches or subscribes.
//! It will never depend on `log-storage`. Nothing here is usable yet; the
//! crate exists so that the workspace layout is in place from the first
//! commit.
#![forbid(unsafe_code)]
