//! The gRPC server of the commit log. **Not implemented yet.**
//!
//! This crate will serve `log-storage` over the contract in
//! `proto/log/v1/log.proto` (tonic), with health and reflection services,
//! graceful shutdown and bounded resources on every serving path, and ship
//! the `log-server` binary. Nothing here is usable yet; the crate exists so
//! that the workspace layout is in place from the first commit.
#![forbid(unsafe_code)]
