//! The gRPC server of the commit log: `log-storage` served over the
//! contract in `proto/log/v1/log.proto` (tonic), with the standard
//! `grpc.health.v1.Health` service and server reflection (v1 and v1alpha),
//! and the `log-server` binary.
//!
//! - `config.rs`: [`Config`] and the [`Cli`]: flags > `LOG_SERVER_*` env >
//!   TOML file > defaults.
//! - `server.rs`: [`Server`]: bind, open the store, recover every
//!   partition (health NOT_SERVING meanwhile), serve, shut down gracefully;
//!   the request-size limit, checked on each message's length prefix.
//! - `service.rs`: the `LogService` and `AdminService` implementations.
//! - `produce.rs`: the append path and `ProduceStream`'s in-order answers.
//! - `read.rs`: positions, long-poll `Fetch`, `Subscribe`.
//! - `group.rs`: `ConsumeGroup`, a gRPC member of a consumer group on the
//!   coordinator the Kafka listener shares; `assign.rs`: the server-side
//!   range assignment in Kafka's consumer-protocol encoding.
//! - `state.rs`: what the calls share: open partitions and their change
//!   signal, limits, counters.
//! - `status.rs`: the one mapping from errors to gRPC statuses with
//!   `google.rpc.ErrorInfo` (domain `log.v1`), and every [`reason`] sent.
//!
//! # Embedding
//!
//! [`Server::run`] serves on a listener the caller bound until a shutdown
//! future completes, then shuts down gracefully; [`Server::start_on`] does
//! the same in a task and hands back a [`Server`] to stop
//! ([`Server::shutdown`]); [`Server::start`] binds [`Config::listen`]
//! first. Bind `127.0.0.1:0` and read the port from the listener:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let addr = listener.local_addr()?;
//! let mut config = log_server::Config::default();
//! config.data_dir = "data".into();
//! let server = log_server::Server::start_on(listener, config).await?;
//! // Clients connect to `http://{addr}`.
//! # let _ = addr;
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```
//!
//! It does not implement authentication or TLS (serve loopback, or put a
//! proxy in front).
#![forbid(unsafe_code)]

mod assign;
mod config;
mod group;
mod limit;
mod listener;
mod produce;
mod read;
mod server;
mod service;
mod state;
mod status;
mod topics;

pub use config::{Cli, Config, ConfigError};
pub use server::{Error, Server};
pub use status::reason;
