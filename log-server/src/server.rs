//! Starting and stopping the server: the store (started with its own
//! background passes and committer, [`Store::start_locked`]), the gRPC
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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::config::Config;
use crate::service::Services;
use crate::state::{ConnInfo, ConnLoad, Shared, Slot};
use crate::status;

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
        let data_dir = config.data_dir.clone();
        let store_config = StoreConfig::default()
            .with_min_free_bytes((config.min_free_bytes > 0).then_some(config.min_free_bytes))
            .with_open_files_budget(config.max_open_files as usize)
            .with_committer_threads(config.committer_threads as usize)
            .with_flush_interval(Duration::from_millis(config.flush_interval_ms))
            .with_retention_interval(Duration::from_millis(config.retention_interval_ms));
        let store =
            tokio::task::spawn_blocking(move || Store::start_locked(&data_dir, store_config))
                .await
                .map_err(|e| Error::Task(format!("store open failed: {e}")))?
                .map_err(Error::Storage)?;
        tracing::info!(data_dir = %config.data_dir.display(), "store opened");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, addr, store, config, stop.clone()));
        Ok(Server { addr, stop, task })
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

/// The one streaming call whose inbound messages tonic's own decode
/// limit still measures: its handler (`produce.rs`) turns tonic's error
/// into REQUEST_TOO_LARGE itself. Once it answers
/// [`status::is_request_too_large`] statuses as they are, this goes.
const TONIC_LIMITED: &str = "/log.v1.LogService/ProduceStream";

/// Wraps the body of a call to the log or admin service in [`Limited`],
/// which refuses a message over `limit` (`max_request_bytes`) by its
/// length prefix, before tonic reads or decodes it. tonic's own limit
/// (the same, set on both services) stays behind it, but would answer
/// OUT_OF_RANGE with nothing but a message text to tell it by.
fn limit_request(
    request: http::Request<tonic::body::Body>,
    limit: u32,
) -> http::Request<tonic::body::Body> {
    let path = request.uri().path();
    let ours = path.starts_with("/log.v1.LogService/") || path.starts_with("/log.v1.AdminService/");
    if !ours || path == TONIC_LIMITED {
        return request;
    }
    request.map(|body| tonic::body::Body::new(Limited::new(body, limit)))
}

/// Length-Prefixed-Message framing (the gRPC HTTP/2 protocol): a
/// compressed flag byte, then the message length, big-endian u32.
const PREFIX_LEN: usize = 5;

/// A request body that reads the length prefix of every gRPC message
/// going through it and fails with RESOURCE_EXHAUSTED `REQUEST_TOO_LARGE`
/// (a status whose source is [`status::MessageTooLarge`]) instead of
/// passing on the data frame that completes a prefix over the limit: the
/// decoder behind it never sees that prefix, and the handler (or tonic,
/// for a unary call) gets this status as the body's error.
struct Limited {
    body: tonic::body::Body,
    limit: u32,
    /// The prefix being read and how many of its bytes arrived.
    prefix: [u8; PREFIX_LEN],
    have: usize,
    /// Bytes of the current message still to come.
    rest: u64,
    failed: bool,
}

impl Limited {
    fn new(body: tonic::body::Body, limit: u32) -> Limited {
        Limited {
            body,
            limit,
            prefix: [0; PREFIX_LEN],
            have: 0,
            rest: 0,
            failed: false,
        }
    }

    /// Follows the framing through `data`; the first message over the
    /// limit is the error.
    fn measure(&mut self, mut data: &[u8]) -> Result<(), status::MessageTooLarge> {
        while !data.is_empty() {
            if self.rest > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.rest).unwrap_or(usize::MAX));
                self.rest -= n as u64;
                data = &data[n..];
                continue;
            }
            let n = (PREFIX_LEN - self.have).min(data.len());
            self.prefix[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == PREFIX_LEN {
                self.have = 0;
                let [_, a, b, c, d] = self.prefix;
                let len = u32::from_be_bytes([a, b, c, d]);
                if len > self.limit {
                    return Err(status::MessageTooLarge {
                        len,
                        limit: self.limit,
                    });
                }
                self.rest = u64::from(len);
            }
        }
        Ok(())
    }
}

impl http_body::Body for Limited {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if self.failed {
            return Poll::Ready(None);
        }
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(too_large) = self.measure(data)
        {
            self.failed = true;
            tracing::debug!(
                len = too_large.len,
                limit = too_large.limit,
                "request message over the limit"
            );
            return Poll::Ready(Some(Err(status::message_too_large(too_large))));
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A response that carries a connection [`Slot`] in its extensions (a
/// Fetch's) holds it in its body instead, so that the slot is given back
/// once the body was sent or its stream reset, not when the handler
/// returned: a client that stops reading holds its slot.
fn hold_slot(mut response: http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> {
    let Some(slot) = response.extensions_mut().remove::<Slot>() else {
        return response;
    };
    response.map(|body| tonic::body::Body::new(Holding { body, _slot: slot }))
}

/// A response body and the slot it holds.
struct Holding {
    body: tonic::body::Body,
    _slot: Slot,
}

impl http_body::Body for Holding {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The client's HTTP/2 connection preface, then the 9-byte header of its
/// SETTINGS frame (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;
const HANDSHAKE_HEADER_LEN: usize = PREFACE_LEN + 9;

/// A connection holding one of the listener's permits until it closes.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    /// Until the client's preface and SETTINGS frame arrived.
    handshake: Option<Handshake>,
    /// What the connection's calls hold, against the per-connection caps.
    load: Arc<ConnLoad>,
    _permit: OwnedSemaphorePermit,
}

/// The handshake deadline of a new connection: reads fail with
/// `TimedOut` once it passed (hyper then closes the connection and the
/// permit is released). Afterwards HTTP/2 keepalive watches the peer.
#[derive(Debug)]
struct Handshake {
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    /// The first bytes received, up to the SETTINGS frame header.
    head: [u8; HANDSHAKE_HEADER_LEN],
    received: usize,
}

impl Handshake {
    fn new(timeout: Duration) -> Handshake {
        Handshake {
            deadline: Box::pin(tokio::time::sleep(timeout)),
            timeout,
            head: [0; HANDSHAKE_HEADER_LEN],
            received: 0,
        }
    }

    /// Counts `bytes` just read; true once the preface and the whole first
    /// frame (the SETTINGS frame, by its 24-bit length) arrived.
    fn received(&mut self, bytes: &[u8]) -> bool {
        let copy = bytes
            .len()
            .min(HANDSHAKE_HEADER_LEN.saturating_sub(self.received));
        self.head[self.received..self.received + copy].copy_from_slice(&bytes[..copy]);
        self.received = self.received.saturating_add(bytes.len());
        if self.received < HANDSHAKE_HEADER_LEN {
            return false;
        }
        let h = &self.head[PREFACE_LEN..];
        let frame_len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
        self.received >= HANDSHAKE_HEADER_LEN + frame_len
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        ConnInfo {
            tcp: self.stream.connect_info(),
            load: Arc::clone(&self.load),
        }
    }
}

impl tokio::io::AsyncRead for Conn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut this.stream).poll_read(cx, buf);
        let Some(handshake) = &mut this.handshake else {
            return polled;
        };
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                if handshake.received(&buf.filled()[before..]) {
                    this.handshake = None;
                }
                polled
            }
            Poll::Ready(_) => polled,
            Poll::Pending => {
                if handshake.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                let timeout = handshake.timeout;
                let peer = this.stream.peer_addr().ok();
                tracing::info!(
                    peer = ?peer,
                    timeout_ms = timeout.as_millis() as u64,
                    "closing a connection that did not complete its HTTP/2 handshake in time"
                );
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no HTTP/2 handshake within {timeout:?}"),
                )))
            }
        }
    }
}

impl tokio::io::AsyncWrite for Conn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts connections while fewer than `max` are open; stops accepting
/// when `stop` is cancelled. Each connection must complete its HTTP/2
/// handshake within `handshake_timeout` or is closed (its slot freed).
fn accept_bounded(
    listener: TcpListener,
    max: usize,
    handshake_timeout: Duration,
    stop: CancellationToken,
) -> ReceiverStream<std::io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(1);
    let permits = Arc::new(Semaphore::new(max));
    tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
                () = stop.cancelled() => return,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = stop.cancelled() => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if tx
                        .send(Ok(Conn {
                            stream,
                            handshake: Some(Handshake::new(handshake_timeout)),
                            load: Arc::default(),
                            _permit: permit,
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Length-prefixed messages of these lengths, back to back.
    fn framed(lens: &[u32]) -> Vec<u8> {
        let mut out = Vec::new();
        for &len in lens {
            out.push(0);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend(std::iter::repeat_n(7u8, len as usize));
        }
        out
    }

    fn limited(limit: u32) -> Limited {
        Limited::new(tonic::body::Body::empty(), limit)
    }

    #[test]
    fn messages_up_to_the_limit_pass_in_any_chunking() {
        let bytes = framed(&[0, 10, 100, 3]);
        for chunk in [1, 2, 4, 5, 6, 7, 50, bytes.len()] {
            let mut body = limited(100);
            for piece in bytes.chunks(chunk) {
                body.measure(piece).unwrap();
            }
            assert_eq!((body.have, body.rest), (0, 0), "chunk {chunk}");
        }
    }

    #[test]
    fn the_first_message_over_the_limit_fails_where_its_prefix_completes() {
        let bytes = framed(&[100, 101, 5]);
        for chunk in [1, 3, 5, 105, bytes.len()] {
            let mut body = limited(100);
            let mut failed = None;
            let mut seen = 0;
            for piece in bytes.chunks(chunk) {
                seen += piece.len();
                if let Err(e) = body.measure(piece) {
                    failed = Some((e, seen));
                    break;
                }
            }
            let (err, seen) = failed.unwrap();
            assert_eq!(
                err,
                status::MessageTooLarge {
                    len: 101,
                    limit: 100
                }
            );
            // The chunk that completed the second prefix (bytes 105..110).
            assert!(seen >= 110 && seen < 110 + chunk, "chunk {chunk}: {seen}");
        }
        // A length beyond any u32 limit cannot pass either.
        let mut body = limited(u32::MAX - 1);
        let prefix = [0, 0xff, 0xff, 0xff, 0xff];
        assert!(body.measure(&prefix).is_err());
    }
}
