//! The shapes every handler shares: how a request's answer comes back
//! ([`Reply`]), why a connection closes instead ([`Closing`]), and the
//! decoding of a request body and encoding of an answer with its response
//! header ([`Call`]). It routes nothing (`dispatch.rs` does).

use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Why a connection is closed instead of answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Closing(pub(crate) String);

impl std::fmt::Display for Closing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The rest of a request, run as a task of its own.
pub(crate) type Rest = Pin<Box<dyn Future<Output = Result<Option<Bytes>, Closing>> + Send>>;

/// What starting a request gave.
pub(crate) enum Reply {
    /// The answer (`None`: no answer, for a Produce with `acks=0`).
    Now(Option<Bytes>),
    /// What remains to do before the answer.
    Later(Rest),
}

/// Decodes `body` as the request of `version`.
pub(crate) fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T, Closing> {
    T::decode(body, version).map_err(|e| Closing(format!("malformed request: {e}")))
}

/// Encodes `response` at `version` of `api`, after its response header.
pub(crate) fn encode<T: Encodable>(
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    response: &T,
) -> Result<Bytes, Closing> {
    let mut buf = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, api.response_header_version(version))
        .and_then(|()| response.encode(&mut buf, version))
        .map_err(|e| Closing(format!("cannot encode the {api:?} v{version} answer: {e}")))?;
    Ok(buf.freeze())
}

/// The header of a request being served, for its handler.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) api: ApiKey,
    pub(crate) version: i16,
    pub(crate) correlation_id: i32,
}

impl Call {
    /// Encodes the answer to this call.
    pub(crate) fn answer<T: Encodable>(&self, response: &T) -> Result<Bytes, Closing> {
        encode(self.correlation_id, self.api, self.version, response)
    }

    /// An answer ready now.
    pub(crate) fn now<T: Encodable>(&self, response: &T) -> Result<Reply, Closing> {
        Ok(Reply::Now(Some(self.answer(response)?)))
    }
}
