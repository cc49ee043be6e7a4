//! The request-size limit, enforced before tonic decodes anything: every
//! call to the log or admin service has its body wrapped in [`Limited`],
//! which reads each gRPC message's length prefix and fails the call with
//! RESOURCE_EXHAUSTED `REQUEST_TOO_LARGE` (typed: its source is
//! [`status::MessageTooLarge`]) when one is over `max_request_bytes`. A
//! response body that holds a connection's slot until it is sent
//! ([`hold_slot`]) lives here too.

use crate::state::Slot;
use crate::status;

/// Wraps the body of a call to the log or admin service in [`Limited`],
/// which refuses a message over `limit` (`max_request_bytes`) by its
/// length prefix, before tonic reads or decodes it. tonic's own limit
/// (the same, set on both services) stays behind it, but would answer
/// OUT_OF_RANGE with nothing but a message text to tell it by.
pub(crate) fn limit_request(
    request: http::Request<tonic::body::Body>,
    limit: u32,
) -> http::Request<tonic::body::Body> {
    let path = request.uri().path();
    let ours = path.starts_with("/log.v1.LogService/") || path.starts_with("/log.v1.AdminService/");
    if !ours {
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
/// passing on the prefix over the limit: the messages before it in the
/// same data frame go through (a stream's earlier requests are answered),
/// the decoder never sees that prefix whole, and the handler (or tonic,
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
    /// The error to answer once the bytes before it went through.
    pending: Option<status::MessageTooLarge>,
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
            pending: None,
        }
    }

    /// Follows the framing through `data`; the first message over the
    /// limit is the error, with the index in `data` where its prefix
    /// starts (0 if it started in an earlier frame).
    fn measure(&mut self, data: &[u8]) -> Result<(), (usize, status::MessageTooLarge)> {
        let whole = data.len();
        let mut data = data;
        let mut prefix_at = 0;
        while !data.is_empty() {
            if self.rest > 0 {
                let n = data
                    .len()
                    .min(usize::try_from(self.rest).unwrap_or(usize::MAX));
                self.rest -= n as u64;
                data = &data[n..];
                continue;
            }
            if self.have == 0 {
                prefix_at = whole - data.len();
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
                    return Err((
                        prefix_at,
                        status::MessageTooLarge {
                            len,
                            limit: self.limit,
                        },
                    ));
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
        if let Some(too_large) = self.pending.take() {
            self.failed = true;
            return Poll::Ready(Some(Err(status::message_too_large(too_large))));
        }
        let polled = std::pin::Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err((at, too_large)) = self.measure(data)
        {
            tracing::debug!(
                len = too_large.len,
                limit = too_large.limit,
                "request message over the limit"
            );
            if at > 0 {
                // The messages before it go through first.
                let before = data.slice(..at);
                self.pending = Some(too_large);
                return Poll::Ready(Some(Ok(http_body::Frame::data(before))));
            }
            self.failed = true;
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
pub(crate) fn hold_slot(
    mut response: http::Response<tonic::body::Body>,
) -> http::Response<tonic::body::Body> {
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
                if let Err((at, e)) = body.measure(piece) {
                    failed = Some((e, seen, (seen - piece.len(), at)));
                    break;
                }
            }
            let (err, seen, (piece_start, at)) = failed.unwrap();
            assert_eq!(
                err,
                status::MessageTooLarge {
                    len: 101,
                    limit: 100
                }
            );
            // The chunk that completed the second prefix (bytes 105..110),
            // which started at byte 105 (or in an earlier chunk: then 0 in
            // this one).
            assert!(seen >= 110 && seen < 110 + chunk, "chunk {chunk}: {seen}");
            assert_eq!(piece_start + at, 105.max(piece_start), "chunk {chunk}");
        }
        // A length beyond any u32 limit cannot pass either.
        let mut body = limited(u32::MAX - 1);
        let prefix = [0, 0xff, 0xff, 0xff, 0xff];
        assert!(body.measure(&prefix).is_err());
    }

    /// Two messages in one data frame, the second over the limit: the
    /// first goes through whole, then the error.
    #[tokio::test]
    async fn the_messages_before_one_over_the_limit_go_through() {
        use http_body_util::BodyExt;
        let bytes = framed(&[3, 101]);
        let body = tonic::body::Body::new(http_body_util::Full::new(bytes::Bytes::from(bytes)));
        let mut body = Limited::new(body, 100);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], &framed(&[3])[..]);
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(status::is_request_too_large(&err), "{err:?}");
        assert!(body.frame().await.is_none());
    }
}
