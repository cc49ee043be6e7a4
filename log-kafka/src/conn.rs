//! One client connection: Kafka's length-prefixed frames in, answers out
//! in request order.
//!
//! The reader starts each request in order (decoding it and doing its
//! in-order part, such as the writes of a Produce); what remains (waiting
//! for `fdatasync`, a long-polling Fetch) runs as its own task, so several
//! requests overlap while their answers still leave in the order the
//! requests came. At most `max_in_flight` requests wait for their answer;
//! the reader waits for the oldest before it reads more, so a client that
//! does not read its answers costs bounded memory. A frame over
//! `max_request_bytes` is refused from its length prefix, before anything
//! is allocated for it, and a malformed request closes the connection with
//! a log line, as Kafka does.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::Ctx;
use crate::dispatch;
use crate::wire::{Closing, Reply};

/// An answer the writer will send in its turn.
enum Queued {
    Now(Option<Bytes>),
    Later(JoinHandle<Result<Option<Bytes>, Closing>>),
}

/// Serves one connection until the client closes it, a request is
/// malformed, or the server stops (`stopped` turns true).
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    mut stopped: watch::Receiver<bool>,
) {
    let (read, write) = stream.into_split();
    let codec = LengthDelimitedCodec::builder()
        .big_endian()
        .length_field_length(4)
        .max_frame_length(ctx.config.max_request_bytes)
        .new_codec();
    let mut frames = FramedRead::new(read, codec);
    let (queue, answers) = mpsc::channel(ctx.config.max_in_flight.max(1));
    let mut writer = tokio::spawn(write_answers(write, answers, peer));
    loop {
        let frame = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            _ = &mut writer => return,
            frame = frames.next() => frame,
        };
        let frame = match frame {
            None => break,
            Some(Ok(frame)) => frame.freeze(),
            Some(Err(err)) => {
                // Oversized (from its length prefix) or a broken stream.
                tracing::info!(%peer, error = %err, "kafka connection closed: bad frame");
                break;
            }
        };
        let queued = match dispatch::start(&ctx, frame, peer) {
            Ok(Reply::Now(answer)) => Queued::Now(answer),
            Ok(Reply::Later(rest)) => Queued::Later(tokio::spawn(rest)),
            Err(closing) => {
                tracing::info!(%peer, reason = %closing, "kafka connection closed");
                break;
            }
        };
        if queue.send(queued).await.is_err() {
            break;
        }
    }
    // The writer sends what was started, then closes.
    drop(queue);
    let _ = writer.await;
}

/// Writes the answers in request order; stops at the first request that
/// must close the connection.
async fn write_answers(
    write: OwnedWriteHalf,
    mut answers: mpsc::Receiver<Queued>,
    peer: SocketAddr,
) {
    let mut out = BufWriter::with_capacity(64 << 10, write);
    while let Some(queued) = answers.recv().await {
        let answer = match queued {
            Queued::Now(answer) => answer,
            Queued::Later(task) => match task.await {
                Ok(Ok(answer)) => answer,
                Ok(Err(closing)) => {
                    tracing::info!(%peer, reason = %closing, "kafka connection closed");
                    break;
                }
                Err(err) => {
                    tracing::error!(%peer, error = %err, "a kafka request handler failed");
                    break;
                }
            },
        };
        if let Some(answer) = answer {
            let Ok(len) = u32::try_from(answer.len()) else {
                tracing::error!(%peer, len = answer.len(), "kafka answer too large to frame");
                break;
            };
            if out.write_all(&len.to_be_bytes()).await.is_err()
                || out.write_all(&answer).await.is_err()
            {
                break;
            }
        }
        // Flush once nothing else is ready: answers that are ready together
        // leave in one write.
        if answers.is_empty() && out.flush().await.is_err() {
            break;
        }
    }
    let _ = out.flush().await;
    let _ = out.shutdown().await;
}
