//! The gRPC server of the commit log: `log-storage` served over the
//! contract in `proto/log/v1/log.proto` (tonic), with the standard
//! `grpc.health.v1.Health` service and server reflection (v1 and v1alpha),
//! and the `log-server` binary.
//!
//! - `config.rs`: [`Config`] and the [`Cli`]: flags > `LOG_SERVER_*` env >
//!   TOML file > defaults.
//! - `server.rs`: [`Server`]: bind, open the store, recover every
//!   partition (health NOT_SERVING meanwhile), serve, shut down gracefully.
//! - `service.rs`: the `LogService` and `AdminService` implementations.
//! - `produce.rs`: the append path and `ProduceStream`'s in-order answers.
//! - `read.rs`: positions, long-poll `Fetch`, `Subscribe`.
//! - `state.rs`: what the calls share: open partitions and their change
//!   signal, limits, counters.
//! - `status.rs`: the one mapping from errors to gRPC statuses with
//!   `google.rpc.ErrorInfo` (domain `log.v1`).
//!
//! It does not implement consumer-group membership, authentication or
//! TLS (serve loopback, or put a proxy in front).
#![forbid(unsafe_code)]

mod config;
mod produce;
mod read;
mod server;
mod service;
mod state;
mod status;

pub use config::{Cli, Config, ConfigError};
pub use server::{Error, Server};
