//! Starting and stopping the server: the store, the background thread, the
//! gRPC services with health and reflection, the bounded listener and the
//! graceful shutdown.
//!
//! Start: bind, open the store, serve with health NOT_SERVING while every
//! partition is opened (crash recovery runs there), then SERVING.
//! Shutdown (SIGINT, SIGTERM or [`Server::shutdown`]): health NOT_SERVING,
//! stop accepting, give in-flight calls [`Config::shutdown_grace_ms`], then
//! end open streams with UNAVAILABLE, close the store (flush, fsync, write
//! the clean-shutdown markers).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use log_client::proto::admin_service_server::AdminServiceServer;
use log_client::proto::log_service_server::LogServiceServer;
use log_storage::{Background, Store};
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
    /// Binds `config.listen`, opens the store and starts serving. Returns
    /// once the port is bound; health turns SERVING when recovery is done.
    pub async fn start(config: Config) -> Result<Server, Error> {
        config.validate().map_err(Error::Config)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let data_dir = config.data_dir.clone();
        let floor = (config.min_free_bytes > 0).then_some(config.min_free_bytes);
        let open_files = config.max_open_files as usize;
        let store = tokio::task::spawn_blocking(move || {
            Store::open_locked(&data_dir).map(|s| {
                s.with_min_free_bytes(floor)
                    .with_open_files_budget(open_files)
            })
        })
        .await
        .map_err(|e| Error::Task(format!("store open failed: {e}")))?
        .map_err(Error::Storage)?;
        let store = Arc::new(store);
        tracing::info!(data_dir = %config.data_dir.display(), "store opened");
        let stop = CancellationToken::new();
        let task = tokio::spawn(serve(listener, addr, store, config, stop.clone()));
        Ok(Server { addr, stop, task })
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
    let background = Background::start(
        Arc::clone(&store),
        Duration::from_millis(config.flush_interval_ms),
        Duration::from_millis(config.retention_interval_ms),
    )
    .map_err(Error::Storage)?;
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
        .layer(tower::util::MapResponseLayer::new(
            move |response: http::Response<tonic::body::Body>| {
                hold_slot(too_large(response, limit))
            },
        ))
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
    drop(background);
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

/// tonic answers a request over the decode limit with OUT_OF_RANGE and no
/// details; this rewrites that answer to RESOURCE_EXHAUSTED with reason
/// `REQUEST_TOO_LARGE` (OUT_OF_RANGE is reserved for offsets here).
fn too_large(
    response: http::Response<tonic::body::Body>,
    limit: u32,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers();
    let is_out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v.as_bytes() == b"11");
    let too_large = headers.get("grpc-message").is_some_and(|v| {
        let m = v.as_bytes();
        m.windows(9).any(|w| w == b"too large") || m.windows(11).any(|w| w == b"too%20large")
    });
    if !(is_out_of_range && too_large) {
        return response;
    }
    status::request_too_large(limit, "decode limit").into_http()
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
        use std::future::Future;
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
