//! The Kafka wire protocol over the commit log's [`Store`]: Kafka clients
//! and tools (librdkafka and everything built on it, the Java client,
//! kafka-python, kcat) produce to and consume from the same partitions the
//! gRPC API serves, unchanged.
//!
//! Stored batches are Kafka RecordBatch v2 inside `log-format`'s frame, so
//! this crate is an adapter, not a second storage engine: a Produce's
//! batches are checked and framed ([`log_format::frame_kafka`]) and
//! appended as sent; a Fetch answers the Kafka part of the stored frames,
//! never re-encoded. It holds no storage logic of its own.
//!
//! # Layout
//!
//! - [`run`] (`server.rs`): the accept loop, the connection limit and
//!   graceful shutdown.
//! - `conn.rs`: one connection: length-prefixed frames (bounded before
//!   anything is allocated), requests started in order, answers written in
//!   order, a bounded number in flight.
//! - `dispatch.rs`: the request header, the API and version check, and the
//!   route to a handler; `versions.rs` the advertised ranges; `wire.rs`
//!   what handlers share (decoding, encoding, the reply).
//! - Handlers: `metadata.rs` (Metadata, FindCoordinator), `produce.rs`
//!   (Produce, InitProducerId), `fetch.rs` (Fetch, long polls),
//!   `list_offsets.rs`, `offsets.rs` (OffsetCommit, OffsetFetch),
//!   `admin.rs` (CreateTopics, DeleteTopics), `configs.rs`
//!   (DescribeConfigs), `alter.rs` (IncrementalAlterConfigs, AlterConfigs),
//!   `partitions.rs` (CreatePartitions, DeleteRecords,
//!   DescribeCluster), `groups.rs` (JoinGroup, SyncGroup, Heartbeat,
//!   LeaveGroup, DescribeGroups, ListGroups, DeleteGroups over the
//!   coordinator), `epochs.rs` (leader epochs, OffsetForLeaderEpoch).
//! - `errors.rs`: Kafka's error codes and the one mapping from this log's
//!   errors.
//!
//! # Durability
//!
//! `acks=all` (-1) is acknowledged after `fdatasync` (stronger than Kafka,
//! which acknowledges from the page cache); `acks=1` after `write(2)`, with
//! a group-commit sync scheduled at once; `acks=0` gets no answer. The high
//! watermark is the durable end: consumers see only what survives power
//! loss.
//!
//! # Not supported (yet)
//!
//! Transactions (a transactional id or batch is refused), the new consumer
//! group protocol (KIP-848, ConsumerGroupHeartbeat: not advertised, so
//! clients use the classic one), fetch sessions (the answer declines them,
//! as a broker may), topic ids in requests, SASL and TLS.
//!
//! # Groups and epochs
//!
//! Consumer groups run on the shared `log_groups::Coordinator` (classic
//! protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, DescribeGroups,
//! ListGroups, DeleteGroups; commits fenced by generation). Leader epochs
//! are the store's crash-truncation epochs (`epochs.rs`,
//! OffsetForLeaderEpoch).
#![forbid(unsafe_code)]

mod admin;
mod alter;
mod changes;
mod config;
mod configs;
mod conn;
mod dispatch;
mod epochs;
mod errors;
mod fetch;
mod groups;
mod list_offsets;
mod metadata;
mod offsets;
mod partitions;
mod produce;
mod server;
mod versions;
mod wire;

pub use changes::{Changes, OwnChanges};
pub use config::KafkaConfig;
pub use server::run;

use std::sync::Arc;

use log_storage::Store;

/// What every request of every connection shares.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) store: Arc<Store>,
    pub(crate) changes: Arc<dyn Changes>,
    /// The group coordinator (shared with the gRPC front end).
    pub(crate) groups: Arc<log_groups::Coordinator>,
    pub(crate) config: KafkaConfig,
    /// The address Metadata advertises.
    pub(crate) host: String,
    pub(crate) port: i32,
    /// Hands out producer ids (InitProducerId).
    pub(crate) producer_ids: Arc<produce::ProducerIds>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}
