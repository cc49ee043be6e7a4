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
//! - [`Error`]: one error type; [`Error::kind`] tells retryable from fatal,
//!   [`Error::reason`] is the server's stable reason (`TOPIC_NOT_FOUND`…).
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
//! use log_client::{Client, Producer, ProducerConfig};
//! # async fn demo() -> Result<(), log_client::Error> {
//! let client = Client::connect("http://127.0.0.1:50051").await?;
//! client.create_topic("orders", 3, Default::default()).await?;
//! let producer = Producer::new(client.clone(), "orders", ProducerConfig::default()).await?;
//! // send() queues the record; awaiting its Delivery waits for the ack.
//! let ack = producer.send(log_client::NewRecord::value("hello")).await?.await?;
//! println!("stored at {}/{}", ack.partition, ack.offset);
//! producer.close().await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod client;
mod consumer;
mod error;
mod producer;

pub use client::{Client, ClientConfig, FetchOptions};
pub use consumer::{Consumer, ConsumerConfig, ConsumerMode, ReceivedRecord};
pub use error::{Error, ErrorKind};
pub use producer::{Delivery, NewRecord, Producer, ProducerConfig, RecordAck};

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
