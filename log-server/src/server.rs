//! Starting and stopping the server: the store (started with its own
//! background passes and cleaners, [`Store::start_locked`]; its committer
//! starts with the first async append), the gRPC
//! services with health and reflection, the bounded listener and the
//! graceful shutdown.
//!
//! Start: bind, open the store, serve with health NOT_SERVING while every
//! partition is opened (crash recovery runs there), then SERVING.
//! Shutdown (SIGINT, SIGTERM or [`Server::shutdown`]): health NOT_SERVING,
//! stop accepting, give in-flight calls [`Config::shutdown_grace_ms`], then
//! end open streams with UNAVAILABLE, close the store (flush, fsync, write
//! the clean-shutdown markers).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log_client::proto::admin_service_server::AdminServiceServer;
use log_client::proto::log_service_server::LogServiceServer;
use log_storage::{Store, StoreConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::limit::{hold_slot, limit_request};
use crate::listener::accept_bounded;
use crate::service::Services;
use crate::state::{KafkaChanges, Shared};

/// Why the server could not start or stopped badly.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A setting is unusable.
    Config(crate::config::ConfigError),
    /// The listen address cannot be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory cannot be opened (locked, unreadable, damaged).
    Storage(log_storage::Error),
    /// Recovery could not open a partition: the server stopped.
    Recovery(log_storage::Error),
    /// The gRPC transport failed.
    Transport(tonic::transport::Error),
    /// Reflection could not be built from the descriptors.
    Reflection(String),
    /// A task of the server (store open, serving) panicked or was cancelled.
    Task(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(e) => write!(f, "bad configuration: {e}"),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Storage(e) => write!(f, "storage: {e}"),
            Error::Recovery(e) => write!(f, "recovery failed: {e}"),
            Error::Transport(e) => write!(f, "transport: {e}"),
            Error::Reflection(e) => write!(f, "reflection: {e}"),
            Error::Task(e) => write!(f, "server task: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::Bind { source, .. } => Some(source),
            Error::Storage(e) | Error::Recovery(e) => Some(e),
            Error::Transport(e) => Some(e),
            Error::Reflection(_) | Error::Task(_) => None,
        }
    }
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    kafka_addr: Option<SocketAddr>,
    stop: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

impl Server {
    /// Binds `config.listen`, then starts as [`Server::start_on`]. Returns
    /// once the port is bound and the store open; health turns SERVING
    /// when recovery is done.
    pub async fn start(config: Config) -> Result<Server, Error> {
        config.validate().map_err(Error::Config)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        Server::start_on(listener, config).await
    }

    /// Serves on `listener`, which the caller bound (`config.listen` is
    /// not used): opens the store and starts serving in a task. Returns
    /// once the store is open; health turns SERVING when recovery is
    /// done. Stop it with [`Server::shutdown`] or [`Server::stop_token`].
    ///
    /// A test binds `127.0.0.1:0` and reads the port from the listener (or
    /// from [`Server::addr`]): no port to guess.
    pub async fn start_on(listener: TcpListener, config: Config) -> Result<Server, Error> {
        config.validate().map_err(Error::Config)?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        // Bound before the store opens, so a port in use fails the start.
        let kafka =
            match config.kafka_addr() {
                None => None,
                Some(kafka_addr) => Some(TcpListener::bind(kafka_addr).await.map_err(
                    |source| Error::Bind {
                        addr: kafka_addr,
                        source,
                    },
                )?),
            };
        let kafka_addr = kafka.as_ref().and_then(|l| l.local_addr().ok());
        let data_dir = config.data_dir.clone();
        let store_config = StoreConfig::default()
            .with_min_free_bytes((config.min_free_bytes > 0).then_some(config.min_free_bytes))
            .with_open_files_budget(config.max_open_files as usize)
            .with_committer_threads(config.committer_threads as usize)
            .with_completion_dispatch(runtime_dispatch(tokio::runtime::Handle::current()))
            .with_flush_interval(Duration::from_millis(config.flush_interval_ms))
            .with_retention_interval(Duration::from_millis(config.retention_interval_ms))
            .with_cleaner_threads(config.cleaner_threads as usize)
            .with_preallocate_bytes(config.preallocate_bytes)
            .with_gather_writes(config.gather_writes)
            .with_cleaner_key_map_bytes(
                usize::try_from(config.cleaner_key_map_bytes).unwrap_or(usize::MAX),
            )
            .with_cleaner_backoff(Duration::from_millis(config.cleaner_backoff_ms));
        let store =
            tokio::task::spawn_blocking(move || Store::start_locked(&data_dir, store_config))
                .await
                .map_err(|e| Error::Task(format!("store open failed: {e}")))?
                .map_err(Error::Storage)?;
        tracing::info!(data_dir = %config.data_dir.display(), "store opened");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, kafka, addr, store, config, stop.clone()));
        Ok(Server {
            addr,
            kafka_addr,
            stop,
            task,
        })
    }

    /// Serves on `listener` until `shutdown` completes, then shuts down
    /// gracefully (health NOT_SERVING, no new connections, the grace
    /// period, open streams ended, the store closed) and returns: the
    /// shape of mini-redis's `server::run`. The binary runs this with
    /// SIGINT/SIGTERM as `shutdown`. Returns early with the error if the
    /// server cannot start or stops by itself (a failed recovery).
    ///
    /// ```no_run
    /// # async fn example() -> Result<(), log_server::Error> {
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    /// let addr = listener.local_addr().expect("bound");
    /// let mut config = log_server::Config::default();
    /// config.data_dir = "/tmp/log-data".into();
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// let server = tokio::spawn(log_server::Server::run(listener, config, async {
    ///     let _ = stopped.await;
    /// }));
    /// // ... clients connect to `addr` ...
    /// # let _ = addr;
    /// let _ = stop.send(());
    /// server.await.expect("server task")?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn run(
        listener: TcpListener,
        config: Config,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let server = Server::start_on(listener, config).await?;
        let stop = server.stop_token();
        let stopped = server.wait();
        tokio::pin!(stopped);
        tokio::select! {
            result = &mut stopped => return result,
            () = shutdown => stop.cancel(),
        }
        stopped.await
    }

    /// The address the Kafka protocol is served on (with the real port
    /// when the config said 0), `None` when it is off.
    pub fn kafka_addr(&self) -> Option<SocketAddr> {
        self.kafka_addr
    }

    /// The address served (with the real port when the config said 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts a graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.stop.cancel();
        self.wait().await
    }

    /// Waits until the server stopped (after [`Server::shutdown`] or a
    /// signal handled by the caller that cancelled [`Server::stop_token`]).
    pub async fn wait(self) -> Result<(), Error> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(Error::Task(e.to_string())),
        }
    }

    /// The token that starts a graceful shutdown when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

async fn serve(
    listener: TcpListener,
    kafka: Option<TcpListener>,
    addr: SocketAddr,
    store: Arc<Store>,
    config: Config,
    stop: CancellationToken,
) -> Result<(), Error> {
    let streams_stop = CancellationToken::new();
    let shared = Arc::new(Shared::new(
        Arc::clone(&store),
        config.clone(),
        streams_stop.clone(),
    ));
    let services = Services {
        shared: Arc::clone(&shared),
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, tonic_health::ServingStatus::NotServing).await;

    let max_request = config.max_request_bytes as usize;
    let max_response = config.max_response_bytes() as usize;
    let log_service = LogServiceServer::new(services.clone())
        .max_decoding_message_size(max_request)
        .max_encoding_message_size(max_response);
    let admin_service = AdminServiceServer::new(services)
        .max_decoding_message_size(max_request)
        .max_encoding_message_size(max_response);
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure())
        .build_v1()
        .map_err(|e| Error::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection(tonic_reflection::server::Builder::configure())
        .build_v1alpha()
        .map_err(|e| Error::Reflection(e.to_string()))?;

    let limit = config.max_request_bytes;
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_millis(config.keepalive_interval_ms)))
        .http2_keepalive_timeout(Some(Duration::from_millis(config.keepalive_timeout_ms)))
        .max_concurrent_streams(Some(config.max_streams_per_connection))
        .tcp_nodelay(true)
        // Windows of one largest request per stream (a 64 KiB default
        // window makes a 100 KiB batch wait for a window update round
        // trip): this is flow-control credit, not memory reserved.
        .initial_stream_window_size(Some(config.max_request_bytes))
        .initial_connection_window_size(Some(config.max_request_bytes.saturating_mul(4)))
        // Frames of up to 1 MiB: a 100 KiB batch arrives in one frame, not
        // seven 16 KiB ones.
        .max_frame_size(Some(1 << 20))
        .layer(tower::util::MapRequestLayer::new(
            move |request: http::Request<tonic::body::Body>| limit_request(request, limit),
        ))
        .layer(tower::util::MapResponseLayer::new(hold_slot))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(log_service)
        .add_service(admin_service);

    // The Kafka front end: same store, same partition signals, same stop.
    let kafka = kafka.map(|listener| {
        let kafka_config = log_kafka::KafkaConfig::default()
            .with_max_connections(config.max_connections as usize)
            .with_max_request_bytes(config.max_request_bytes as usize);
        let changes = Arc::new(KafkaChanges(Arc::clone(&shared)));
        let stop = stop.clone();
        tokio::spawn(log_kafka::run(
            listener,
            Arc::clone(&store),
            changes,
            Arc::clone(&shared.groups),
            kafka_config,
            async move { stop.cancelled().await },
        ))
    });

    let incoming = accept_bounded(
        listener,
        config.max_connections as usize,
        Duration::from_millis(config.handshake_timeout_ms),
        stop.clone(),
    );
    tracing::info!(%addr, "listening");

    // Recovery: open every partition, then report SERVING. A failure
    // stops the server, which then exits with it.
    let recovery = {
        let (store, shared, health, stop) = (
            Arc::clone(&store),
            Arc::clone(&shared),
            health.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let started = Instant::now();
            let opened = tokio::task::spawn_blocking(move || open_all(&store)).await;
            match opened {
                Ok(Ok((topics, partitions))) => {
                    shared.ready.store(true, Ordering::Release);
                    if !stop.is_cancelled() {
                        set_health(&health, tonic_health::ServingStatus::Serving).await;
                    }
                    tracing::info!(
                        topics,
                        partitions,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "recovery done; serving"
                    );
                    None
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "recovery failed; stopping");
                    stop.cancel();
                    Some(Error::Recovery(e))
                }
                Err(e) => {
                    tracing::error!(error = %e, "recovery task failed; stopping");
                    stop.cancel();
                    Some(Error::Task(format!("recovery: {e}")))
                }
            }
        })
    };

    // Shutdown starts: health NOT_SERVING at once (load balancers drain),
    // while the listener stops accepting and in-flight calls get the grace.
    let announce = {
        let (stop, health) = (stop.clone(), health.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            tracing::info!("shutting down: health NOT_SERVING, no new connections");
            set_health(&health, tonic_health::ServingStatus::NotServing).await;
        })
    };
    let signal = {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    };
    let server = router.serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let served = tokio::select! {
        result = &mut server => result,
        () = async { stop.cancelled().await; tokio::time::sleep(grace).await; } => {
            tracing::info!("grace period over: ending open streams with UNAVAILABLE");
            streams_stop.cancel();
            match tokio::time::timeout(grace, &mut server).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("calls still open after the grace period; closing anyway");
                    Ok(())
                }
            }
        }
    };
    streams_stop.cancel();
    if let Some(kafka) = kafka {
        match kafka.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "kafka listener failed"),
            Err(e) => tracing::error!(error = %e, "kafka listener task failed"),
        }
    }
    recovery.abort();
    // Cancelled (still recovering at shutdown) is no failure.
    let recovery_failure = recovery.await.ok().flatten();
    let _ = announce.await;
    let closed = tokio::task::spawn_blocking(move || store.close()).await;
    match closed {
        Ok(Ok(())) => tracing::info!("store closed cleanly; clean-shutdown markers written"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "store close failed");
            return Err(Error::Storage(e));
        }
        Err(e) => tracing::error!(error = %e, "store close task failed"),
    }
    if let Some(e) = recovery_failure {
        return Err(e);
    }
    served.map_err(Error::Transport)
}

/// Sets the health of the server ("") and of both services.
async fn set_health(
    health: &tonic_health::server::HealthReporter,
    status: tonic_health::ServingStatus,
) {
    health.set_service_status("", status).await;
    health.set_service_status("log.v1.LogService", status).await;
    health
        .set_service_status("log.v1.AdminService", status)
        .await;
}

/// Opens every partition of every topic (crash recovery happens here),
/// eight at a time: an unclean open waits for fsyncs, and many partitions
/// should not wait for them one after another.
fn open_all(store: &Store) -> Result<(usize, usize), log_storage::Error> {
    let topics = store.list_topics()?;
    let all: Vec<(&str, u32)> = topics
        .iter()
        .flat_map(|topic| (0..topic.partitions).map(move |p| (topic.name.as_str(), p)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..8.min(all.len()) {
            scope.spawn(|| {
                while let Some(&(topic, p)) =
                    all.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    match store.partition(topic, p) {
                        Ok(log) => {
                            let marks = log.watermarks();
                            tracing::debug!(
                                topic,
                                partition = p,
                                log_end = marks.log_end,
                                epoch = marks.epoch,
                                "partition open"
                            );
                        }
                        Err(err) => {
                            let mut failed = failed
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            failed.get_or_insert(err);
                            // The others stop at their next partition.
                            next.store(all.len(), std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = failed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(err);
    }
    Ok((topics.len(), all.len()))
}

fn reflection(
    builder: tonic_reflection::server::Builder<'_>,
) -> tonic_reflection::server::Builder<'_> {
    builder
        .register_encoded_file_descriptor_set(log_client::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
}

/// Hands each sync's completions to the runtime as one task: the acks of
/// one `fdatasync` then wake their streams from inside the runtime, in
/// one go, and the connection flushes them together instead of one socket
/// write per ack (woken one by one from the committer thread, each ack
/// raced the connection's flush). A runtime already gone drops the task
/// unrun, and the batch then completes on the committer thread.
fn runtime_dispatch(runtime: tokio::runtime::Handle) -> log_storage::Dispatch {
    log_storage::Dispatch::new(move |batch: log_storage::Completions| {
        if batch.len() == 1 {
            // Nothing to gather: a task would only add a hop.
            return batch.run();
        }
        drop(runtime.spawn(async move { batch.run() }));
    })
}
