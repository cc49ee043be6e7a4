//! The server's settings: command-line flags, `LOG_SERVER_*` environment
//! variables and a TOML file, merged with precedence flag > env > file >
//! default. Every setting, its unit and its default is documented on
//! [`Config`]; `log-server --print-config` prints the effective settings
//! as TOML. This module only parses and checks; it opens nothing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::{Deserialize, Serialize};

/// Largest batch the storage accepts by default (log-format's default).
const DEFAULT_MAX_BATCH_BYTES: u32 = 8 << 20;
/// Default free-space floor: 64 MiB, room for several largest batches and
/// the small files a roll or a commit writes.
const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;
/// Largest `max_wait_ms` and connection timeouts: one hour.
const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// The server's settings. In the TOML file every field is optional and
/// takes the default shown when absent; unknown fields are an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// Address to serve gRPC on. Default `127.0.0.1:50051` (loopback; use
    /// `0.0.0.0:50051` to serve other machines). Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address to serve the Kafka protocol on (`log-kafka`), or `off`.
    /// Default `127.0.0.1:9092`. Metadata advertises this listener's own
    /// address. Port 0 picks a free port.
    pub kafka_listen: String,
    /// Data directory (created if missing). Default `./data`.
    pub data_dir: PathBuf,
    /// Largest batch a producer may send, header included, in bytes: the
    /// storage limit of every topic that sets none lower. Default 8 MiB.
    pub max_batch_bytes: u32,
    /// Largest request the server decodes, in bytes. Default: one largest
    /// batch plus 64 KiB of envelope. Larger requests get
    /// RESOURCE_EXHAUSTED, reason `REQUEST_TOO_LARGE`.
    pub max_request_bytes: u32,
    /// Cap on a Fetch's `max_bytes` and a Subscribe's `max_batch_bytes`.
    /// Default 4 MiB − 64 KiB, so that default gRPC clients (4 MiB receive
    /// limit) can read every response that holds no single larger batch.
    pub max_fetch_bytes: u32,
    /// Cap on a Fetch's `max_records` (and its value when unset). Default
    /// 100000.
    pub max_fetch_records: u32,
    /// Cap on a Fetch's `max_wait`, in ms. Default 30000; at most 3600000.
    pub max_wait_ms: u64,
    /// Most subscriptions open at once. Default 1024.
    pub max_subscriptions: u32,
    /// Most subscriptions open at once on one client connection, so that
    /// one client cannot take every slot of `max_subscriptions`; past it
    /// Subscribe answers RESOURCE_EXHAUSTED, reason
    /// `TOO_MANY_SUBSCRIPTIONS_ON_CONNECTION`. Default 64.
    pub max_subscriptions_per_connection: u32,
    /// Most Fetch calls in flight at once on one client connection (a
    /// call counts from its start until its response was sent or its
    /// stream reset, long poll included); past it Fetch answers
    /// RESOURCE_EXHAUSTED, reason `TOO_MANY_FETCHES_ON_CONNECTION`.
    /// Default 64.
    pub max_fetches_per_connection: u32,
    /// Most client connections open at once; further connections wait to
    /// be accepted. Default 1024.
    pub max_connections: u32,
    /// Most concurrent calls per connection (HTTP/2 streams). Default 256.
    pub max_streams_per_connection: u32,
    /// Free-space floor of the data directory's file system, in bytes:
    /// appends that would leave less space available are refused with
    /// RESOURCE_EXHAUSTED, reason `DISK_FULL`, before anything is written,
    /// so the disk never fills up mid-write (reads, commits and retention
    /// go on). 0 disables the floor. Default 64 MiB.
    pub min_free_bytes: u64,
    /// How many files the store keeps open (about: a segment with unsynced
    /// writes stays open, and so does one a read is using); the least
    /// recently used are closed and reopened on demand, so open files grow
    /// with neither partitions nor sealed segments. Keep it well under the
    /// process's open-file limit. Default 1024.
    pub max_open_files: u32,
    /// How often WRITTEN-acked data is made durable in the background, in
    /// ms. Default 1000.
    pub flush_interval_ms: u64,
    /// How often retention runs over every partition, in ms. Default
    /// 300000 (5 minutes).
    pub retention_interval_ms: u64,
    /// Threads that run the fdatasyncs of DURABLE appends for every
    /// partition (group commit). Default 2.
    pub committer_threads: u32,
    /// Log cleaner threads, which compact the partitions of topics whose
    /// cleanup policy compacts (Kafka's `log.cleaner.threads`). 0 starts
    /// none. Default 1.
    pub cleaner_threads: u32,
    /// Zeros kept written ahead of each active segment's end, in bytes, so
    /// a durable append's `fdatasync` writes no inode (see
    /// `log_storage::LogConfig::preallocate_bytes`). 0 turns it off.
    /// Default 262144 (256 KiB).
    pub preallocate_bytes: u64,
    /// Whether small durable appends wait to be written together, with
    /// one `write(2)` per group commit just before its `fdatasync` (see
    /// `log_storage::LogConfig::gather_writes`). Default true.
    pub gather_writes: bool,
    /// Memory of the cleaners' key maps, shared between the threads, in
    /// bytes (Kafka's `log.cleaner.dedupe.buffer.size`): 32 bytes a key.
    /// Default 134217728 (128 MiB, about 4 million keys a pass).
    pub cleaner_key_map_bytes: u64,
    /// How long a cleaner sleeps when no partition needs cleaning, and how
    /// long a partition whose cleaning failed is left alone before it is
    /// tried again, in ms (Kafka's `log.cleaner.backoff.ms`). Default
    /// 15000.
    pub cleaner_backoff_ms: u64,
    /// On shutdown, how long in-flight calls get before open streams are
    /// ended with UNAVAILABLE, in ms. Default 5000.
    pub shutdown_grace_ms: u64,
    /// How long the first rebalance of an empty consumer group waits for
    /// more members, in ms (Kafka's `group.initial.rebalance.delay.ms`).
    /// Default 3000.
    pub group_initial_rebalance_delay_ms: u64,
    /// How long a new connection may take to complete its HTTP/2
    /// handshake (the client preface and its SETTINGS frame), in ms; a
    /// connection that has not is closed, freeing its slot of
    /// `max_connections`. Default 5000; at most 3600000.
    pub handshake_timeout_ms: u64,
    /// Interval of HTTP/2 keepalive pings to clients, in ms. Default
    /// 30000; at most 3600000.
    pub keepalive_interval_ms: u64,
    /// How long a client has to answer a keepalive ping before its
    /// connection is closed, in ms. Default 20000; at most 3600000.
    pub keepalive_timeout_ms: u64,
    /// Threads of the async runtime that serves the network (0: one per
    /// core). Storage work runs on other threads (blocking pool, committer,
    /// background). Default 0.
    pub worker_threads: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            kafka_listen: "127.0.0.1:9092".to_owned(),
            data_dir: PathBuf::from("./data"),
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_request_bytes: DEFAULT_MAX_BATCH_BYTES + (64 << 10),
            max_fetch_bytes: (4 << 20) - (64 << 10),
            max_fetch_records: 100_000,
            max_wait_ms: 30_000,
            max_subscriptions: 1024,
            max_subscriptions_per_connection: 64,
            max_fetches_per_connection: 64,
            max_connections: 1024,
            max_streams_per_connection: 256,
            min_free_bytes: DEFAULT_MIN_FREE_BYTES,
            max_open_files: 1024,
            flush_interval_ms: 1000,
            retention_interval_ms: 300_000,
            committer_threads: 2,
            cleaner_threads: 1,
            preallocate_bytes: log_storage::DEFAULT_PREALLOCATE_BYTES,
            gather_writes: true,
            cleaner_key_map_bytes: 128 << 20,
            cleaner_backoff_ms: 15_000,
            shutdown_grace_ms: 5000,
            group_initial_rebalance_delay_ms: 3000,
            handshake_timeout_ms: 5000,
            keepalive_interval_ms: 30_000,
            keepalive_timeout_ms: 20_000,
            worker_threads: 0,
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug)]
pub struct ConfigError(String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every setting against the others.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |msg: String| Err(ConfigError(msg));
        if self.kafka_listen != "off" && self.kafka_listen.parse::<SocketAddr>().is_err() {
            return bad(format!(
                "kafka_listen = {:?} is neither `off` nor an ADDR:PORT",
                self.kafka_listen
            ));
        }
        if self.max_batch_bytes < 1024 {
            return bad(format!(
                "max_batch_bytes = {} is below 1024",
                self.max_batch_bytes
            ));
        }
        if self.max_request_bytes < self.max_batch_bytes {
            return bad(format!(
                "max_request_bytes = {} is below max_batch_bytes = {}: the largest batch could never be sent",
                self.max_request_bytes, self.max_batch_bytes
            ));
        }
        if self.max_fetch_bytes == 0 || self.max_fetch_records == 0 {
            return bad("max_fetch_bytes and max_fetch_records must be positive".into());
        }
        for (name, value) in [
            ("max_subscriptions", self.max_subscriptions),
            (
                "max_subscriptions_per_connection",
                self.max_subscriptions_per_connection,
            ),
            (
                "max_fetches_per_connection",
                self.max_fetches_per_connection,
            ),
            ("max_connections", self.max_connections),
            ("max_open_files", self.max_open_files),
            (
                "max_streams_per_connection",
                self.max_streams_per_connection,
            ),
            ("committer_threads", self.committer_threads),
        ] {
            if value == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        for (name, value) in [
            ("flush_interval_ms", self.flush_interval_ms),
            ("retention_interval_ms", self.retention_interval_ms),
            ("cleaner_backoff_ms", self.cleaner_backoff_ms),
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
        ] {
            if value == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        for (name, value) in [
            ("keepalive_interval_ms", self.keepalive_interval_ms),
            ("keepalive_timeout_ms", self.keepalive_timeout_ms),
            ("handshake_timeout_ms", self.handshake_timeout_ms),
        ] {
            if value > MAX_TIMEOUT_MS {
                return bad(format!(
                    "{name} = {value} is above {MAX_TIMEOUT_MS} (one hour)"
                ));
            }
        }
        if self.max_wait_ms > MAX_TIMEOUT_MS {
            return bad(format!(
                "max_wait_ms = {} is above {MAX_TIMEOUT_MS} (one hour)",
                self.max_wait_ms
            ));
        }
        Ok(())
    }

    /// The Kafka listener's address, `None` when it is `off` (or not an
    /// address: [`Config::validate`] refuses that).
    pub fn kafka_addr(&self) -> Option<SocketAddr> {
        self.kafka_listen.parse().ok()
    }

    /// Largest response the server encodes: one largest batch (a fetch
    /// always returns the first batch whole) plus 1 MiB of envelope.
    pub fn max_response_bytes(&self) -> u32 {
        self.max_batch_bytes
            .max(self.max_fetch_bytes)
            .saturating_add(1 << 20)
    }

    /// [`Config::max_wait_ms`] as a duration.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }

    /// Reads a TOML file of settings.
    pub fn from_toml_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read config {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| ConfigError(format!("bad config {}: {e}", path.display())))
    }

    /// The settings as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot print the config: {e}\n"))
    }
}

/// The command line of `log-server`.
#[derive(Debug, Parser)]
#[command(
    name = "log-server",
    version,
    about = "Serve an append-only, partitioned commit log over gRPC.",
    long_about = "Serve an append-only, partitioned commit log over gRPC (package log.v1, \
                  proto/log/v1/log.proto), with grpc.health.v1 and server reflection.\n\n\
                  Settings come from flags, then LOG_SERVER_* environment variables, then the \
                  TOML file given by --config, then defaults. Logs go to stderr; filter them \
                  with RUST_LOG (default: info).",
    after_help = "Example: log-server --listen 127.0.0.1:50051 --data-dir ./data"
)]
pub struct Cli {
    /// TOML file of settings (every field of `--print-config`).
    #[arg(long, env = "LOG_SERVER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to serve gRPC on [default: 127.0.0.1:50051].
    #[arg(long, env = "LOG_SERVER_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Address to serve the Kafka protocol on, or `off` [default:
    /// 127.0.0.1:9092].
    #[arg(long, env = "LOG_SERVER_KAFKA_LISTEN", value_name = "ADDR:PORT|off")]
    pub kafka_listen: Option<String>,
    /// Data directory, created if missing [default: ./data].
    #[arg(long, env = "LOG_SERVER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Largest batch accepted, in bytes [default: 8388608].
    #[arg(long, env = "LOG_SERVER_MAX_BATCH_BYTES", value_name = "BYTES")]
    pub max_batch_bytes: Option<u32>,
    /// Largest request decoded, in bytes [default: max batch + 65536].
    #[arg(long, env = "LOG_SERVER_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<u32>,
    /// Cap on the bytes of one fetch [default: 4128768].
    #[arg(long, env = "LOG_SERVER_MAX_FETCH_BYTES", value_name = "BYTES")]
    pub max_fetch_bytes: Option<u32>,
    /// Most subscriptions open at once [default: 1024].
    #[arg(long, env = "LOG_SERVER_MAX_SUBSCRIPTIONS", value_name = "N")]
    pub max_subscriptions: Option<u32>,
    /// Most subscriptions open at once on one connection [default: 64].
    #[arg(
        long,
        env = "LOG_SERVER_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        value_name = "N"
    )]
    pub max_subscriptions_per_connection: Option<u32>,
    /// Most Fetch calls in flight at once on one connection [default: 64].
    #[arg(long, env = "LOG_SERVER_MAX_FETCHES_PER_CONNECTION", value_name = "N")]
    pub max_fetches_per_connection: Option<u32>,
    /// Most connections open at once [default: 1024].
    #[arg(long, env = "LOG_SERVER_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<u32>,
    /// Free-space floor of the data directory, in bytes: appends that would
    /// leave less are refused (RESOURCE_EXHAUSTED, DISK_FULL); 0 disables it
    /// [default: 67108864 (64 MiB)].
    #[arg(long, env = "LOG_SERVER_MIN_FREE_BYTES", value_name = "BYTES")]
    pub min_free_bytes: Option<u64>,
    /// Files the store keeps open, least recently used closed first
    /// [default: 1024].
    #[arg(long, env = "LOG_SERVER_MAX_OPEN_FILES", value_name = "N")]
    pub max_open_files: Option<u32>,
    /// Background flush of WRITTEN data, in ms [default: 1000].
    #[arg(long, env = "LOG_SERVER_FLUSH_INTERVAL_MS", value_name = "MS")]
    pub flush_interval_ms: Option<u64>,
    /// Retention pass interval, in ms [default: 300000].
    #[arg(long, env = "LOG_SERVER_RETENTION_INTERVAL_MS", value_name = "MS")]
    pub retention_interval_ms: Option<u64>,
    /// Log cleaner threads (0: none) [default: 1].
    #[arg(long, env = "LOG_SERVER_CLEANER_THREADS", value_name = "N")]
    pub cleaner_threads: Option<u32>,
    /// Zeros written ahead of each active segment, in bytes (0: off)
    /// [default: 262144].
    #[arg(long, env = "LOG_SERVER_PREALLOCATE_BYTES", value_name = "BYTES")]
    pub preallocate_bytes: Option<u64>,
    /// Small durable appends written together, one write(2) per sync
    /// (true, false) [default: true].
    #[arg(long, env = "LOG_SERVER_GATHER_WRITES", value_name = "BOOL")]
    pub gather_writes: Option<bool>,
    /// Memory of the cleaners' key maps, in bytes [default: 134217728].
    #[arg(long, env = "LOG_SERVER_CLEANER_KEY_MAP_BYTES", value_name = "BYTES")]
    pub cleaner_key_map_bytes: Option<u64>,
    /// Cleaner backoff when idle or after a failure, in ms [default: 15000].
    #[arg(long, env = "LOG_SERVER_CLEANER_BACKOFF_MS", value_name = "MS")]
    pub cleaner_backoff_ms: Option<u64>,
    /// Grace period for in-flight calls at shutdown, in ms [default: 5000].
    #[arg(long, env = "LOG_SERVER_SHUTDOWN_GRACE_MS", value_name = "MS")]
    pub shutdown_grace_ms: Option<u64>,
    /// First rebalance delay of an empty consumer group, in ms [default:
    /// 3000].
    #[arg(
        long,
        env = "LOG_SERVER_GROUP_INITIAL_REBALANCE_DELAY_MS",
        value_name = "MS"
    )]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// Time a new connection has to complete its HTTP/2 handshake before it
    /// is closed, in ms [default: 5000].
    #[arg(long, env = "LOG_SERVER_HANDSHAKE_TIMEOUT_MS", value_name = "MS")]
    pub handshake_timeout_ms: Option<u64>,
    /// Interval of HTTP/2 keepalive pings, in ms [default: 30000].
    #[arg(long, env = "LOG_SERVER_KEEPALIVE_INTERVAL_MS", value_name = "MS")]
    pub keepalive_interval_ms: Option<u64>,
    /// Time a client has to answer a keepalive ping before its connection
    /// is closed, in ms [default: 20000].
    #[arg(long, env = "LOG_SERVER_KEEPALIVE_TIMEOUT_MS", value_name = "MS")]
    pub keepalive_timeout_ms: Option<u64>,
    /// Threads of the async runtime (0: one per core) [default: 0].
    #[arg(long, env = "LOG_SERVER_WORKER_THREADS", value_name = "N")]
    pub worker_threads: Option<u32>,
    /// Print the effective settings as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
}

impl Cli {
    /// The effective settings: each flag (or its environment variable)
    /// over the file over the defaults.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        let file_had_request_limit =
            config.max_request_bytes != Config::default().max_request_bytes;
        if let Some(v) = self.listen {
            config.listen = v;
        }
        if let Some(v) = &self.kafka_listen {
            config.kafka_listen = v.clone();
        }
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.max_batch_bytes {
            config.max_batch_bytes = v;
            if self.max_request_bytes.is_none() && !file_had_request_limit {
                config.max_request_bytes = v.saturating_add(64 << 10);
            }
        }
        if let Some(v) = self.max_request_bytes {
            config.max_request_bytes = v;
        }
        if let Some(v) = self.max_fetch_bytes {
            config.max_fetch_bytes = v;
        }
        if let Some(v) = self.max_subscriptions {
            config.max_subscriptions = v;
        }
        if let Some(v) = self.max_subscriptions_per_connection {
            config.max_subscriptions_per_connection = v;
        }
        if let Some(v) = self.max_fetches_per_connection {
            config.max_fetches_per_connection = v;
        }
        if let Some(v) = self.max_connections {
            config.max_connections = v;
        }
        if let Some(v) = self.min_free_bytes {
            config.min_free_bytes = v;
        }
        if let Some(v) = self.max_open_files {
            config.max_open_files = v;
        }
        if let Some(v) = self.flush_interval_ms {
            config.flush_interval_ms = v;
        }
        if let Some(v) = self.retention_interval_ms {
            config.retention_interval_ms = v;
        }
        if let Some(v) = self.cleaner_threads {
            config.cleaner_threads = v;
        }
        if let Some(v) = self.preallocate_bytes {
            config.preallocate_bytes = v;
        }
        if let Some(v) = self.gather_writes {
            config.gather_writes = v;
        }
        if let Some(v) = self.cleaner_key_map_bytes {
            config.cleaner_key_map_bytes = v;
        }
        if let Some(v) = self.cleaner_backoff_ms {
            config.cleaner_backoff_ms = v;
        }
        if let Some(v) = self.shutdown_grace_ms {
            config.shutdown_grace_ms = v;
        }
        if let Some(v) = self.group_initial_rebalance_delay_ms {
            config.group_initial_rebalance_delay_ms = v;
        }
        if let Some(v) = self.handshake_timeout_ms {
            config.handshake_timeout_ms = v;
        }
        if let Some(v) = self.keepalive_interval_ms {
            config.keepalive_interval_ms = v;
        }
        if let Some(v) = self.keepalive_timeout_ms {
            config.keepalive_timeout_ms = v;
        }
        if let Some(v) = self.worker_threads {
            config.worker_threads = v;
        }
        config.validate()?;
        Ok(config)
    }
}
