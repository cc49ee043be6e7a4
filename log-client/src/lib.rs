//! The Rust client of the commit log, and the generated `log.v1` API.
//!
//! It speaks the gRPC contract in `proto/log/v1/log.proto` (the [`proto`]
//! module is generated from it at build time, with no `protoc`):
//!
//! - [`Client`]: one connection; topic administration and every RPC as a
//!   plain async method.
//! - [`Producer`]: batches records (linger time, batch size), encodes each
//!   batch itself with `log-format` (checksums computed here, so the server
//!   appends the bytes without re-encoding), pipelines batches over
//!   `ProduceStream`, and retries UNAVAILABLE safely: it is an idempotent
//!   producer, so a batch sent twice is stored once.
//! - [`Consumer`]: a [`Stream`](tokio_stream::Stream) of records from one
//!   partition, by long-poll fetches or by a subscription; it tracks its
//!   position and commits it for a consumer group.
//! - [`GroupConsumer`]: a member of a consumer group (Kafka clients may be
//!   members too): it reads whatever partitions the server assigns it,
//!   commits as its generation, and hands partitions over at a rebalance.
//! - [`Error`]: one error type; [`Error::kind`] tells retryable from fatal,
//!   [`Error::reason`] is the server's stable reason (`TOPIC_NOT_FOUND`…).
//! - Plain Rust types for what the calls take and return: [`Position`]
//!   (where a read starts) and [`ResetPolicy`], [`Ack`], [`Isolation`],
//!   [`RecordFormat`], [`TopicConfig`], [`Topic`], [`TopicInfo`],
//!   [`Watermarks`]… The generated messages stay in [`proto`], for raw
//!   calls through [`Client::log_service`] and [`Client::admin_service`].
//!
//! The settings structs ([`ClientConfig`], [`ProducerConfig`],
//! [`ConsumerConfig`], [`FetchOptions`], [`TopicConfig`]) are
//! `#[non_exhaustive]`: start from `Default::default()` and chain their
//! `with_*` methods.
//!
//! It never depends on `log-storage`; the codec is `log-format`'s.
//!
//! # Examples
//!
//! Runnable examples live in `log-client/examples/` and talk to a running
//! `log-server` (`cargo run --release -p log-server`):
//!
//! - `produce.rs`: `cargo run -p log-client --example produce -- TOPIC N`
//!   creates the topic if needed and produces N records with a
//!   [`Producer`].
//! - `consume.rs`: `cargo run -p log-client --example consume -- TOPIC`
//!   reads a partition from the start to its end with a [`Consumer`] and
//!   commits the position for group `example`.
//! - `tail.rs`: `cargo run -p log-client --example tail -- TOPIC`
//!   subscribes from the end and prints records as they arrive.
//!
//! ```no_run
//! use log_client::{Ack, Client, Consumer, ConsumerConfig, Position, Producer, ProducerConfig};
//! use log_client::TopicConfig;
//! # async fn demo() -> Result<(), log_client::Error> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! client.create_topic("orders", 3, TopicConfig::default()).await?;
//! let config = ProducerConfig::default().with_ack(Ack::Durable);
//! let producer = Producer::new(client.clone(), "orders", config).await?;
//! // send() queues the record; awaiting its Delivery waits for the ack.
//! let ack = producer.send(log_client::NewRecord::value("hello")).await?.await?;
//! println!("stored at {}/{}", ack.partition, ack.offset);
//! producer.close().await?;
//!
//! let config = ConsumerConfig::default().with_stop_at_end(true);
//! let mut consumer = Consumer::new(client, "orders", ack.partition, Position::Earliest, config);
//! while let Some(record) = consumer.next().await {
//!     let record = record?;
//!     println!("{}: {:?}", record.offset, record.value);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
mod consumer;
mod error;
mod group;
mod producer;
mod types;

pub use client::{Client, ClientConfig, FetchOptions};
pub use consumer::{Consumer, ConsumerConfig, ConsumerMode, ReceivedRecord};
pub use error::{Error, ErrorKind};
pub use group::{GroupConsumer, GroupConsumerConfig, GroupRecord, MemberAssignment};
/// The compression codecs of a producer's batches (Kafka's: none, gzip, snappy,
/// lz4, zstd), from `log-format`.
pub use log_format::Codec;
pub use producer::{Delivery, NewRecord, Producer, ProducerConfig, RecordAck};
pub use types::{
    Ack, CleanerInfo, CleanupPolicy, CommittedOffset, Isolation, LatencySummary, PartitionInfo,
    PartitionOffset, Position, RecordFormat, ResetPolicy, Topic, TopicConfig, TopicInfo,
    Watermarks,
};

/// The generated `log.v1` API: messages, the clients and (with the
/// `server` feature) the server traits.
pub mod proto {
    #![allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]
    tonic::include_proto!("log.v1");

    /// The encoded `FileDescriptorSet` of `log.proto`, for server
    /// reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/log_v1_descriptor.bin"));
}

/// The domain of every `google.rpc.ErrorInfo` the server sends.
pub const ERROR_DOMAIN: &str = "log.v1";
