//! The bounded listener: [`accept_bounded`] takes a connection only with a
//! permit of the connection cap, and each [`Conn`] must send the HTTP/2
//! preface and SETTINGS within the handshake timeout or be dropped.

use crate::state::{ConnInfo, ConnLoad};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

/// The client's HTTP/2 connection preface, then the 9-byte header of its
/// SETTINGS frame (RFC 9113 §3.4).
const PREFACE_LEN: usize = 24;
const HANDSHAKE_HEADER_LEN: usize = PREFACE_LEN + 9;

/// A connection holding one of the listener's permits until it closes.
#[derive(Debug)]
pub(crate) struct Conn {
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
pub(crate) fn accept_bounded(
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
