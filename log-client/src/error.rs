//! The client's one error type: a gRPC status from the server (with its
//! `google.rpc.ErrorInfo` reason and metadata), a transport failure, or a
//! local mistake caught before anything was sent.
//!
//! [`ErrorKind`] tells what a caller can do about it; [`Error::is_retryable`]
//! says whether the same request may simply be sent again.

use std::collections::HashMap;
use std::fmt;

use tonic::{Code, Status};
use tonic_types::StatusExt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server is shutting down, recovering, or a partition is poisoned;
    /// or the connection failed. Retryable (with backoff).
    Unavailable,
    /// The call's deadline passed before an answer: the outcome is unknown.
    /// Retryable for idempotent requests (the [`Producer`](crate::Producer)
    /// is idempotent).
    Timeout,
    /// A topic, partition or committed offset does not exist.
    NotFound,
    /// The topic already exists.
    AlreadyExists,
    /// The request is malformed: a bad name, a record too large, a batch
    /// with a bad checksum.
    InvalidArgument,
    /// An offset outside the partition's log (see the metadata
    /// `log_start_offset` and `log_end_offset`).
    OutOfRange,
    /// A condition did not hold: conditional append, producer sequence or
    /// epoch.
    FailedPrecondition,
    /// A server limit or the disk's free-space floor. Retryable later.
    ResourceExhausted,
    /// The server found stored data corrupt.
    DataLoss,
    /// The caller cancelled, or something else went wrong.
    Other,
}

impl ErrorKind {
    /// Whether sending the same request again later may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::ResourceExhausted
        )
    }
}

/// A failed call.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    reason: Option<String>,
    metadata: HashMap<String, String>,
    status: Option<Status>,
    transport: Option<std::sync::Arc<tonic::transport::Error>>,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the same request may be sent again (see
    /// [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The server's stable reason (`ErrorInfo.reason`, e.g.
    /// `TOPIC_NOT_FOUND`), when the server sent one.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// One entry of the `ErrorInfo` metadata (e.g. `log_end_offset`).
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The gRPC status, when the error came from one.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// The gRPC code (`Unavailable` for transport failures).
    pub fn code(&self) -> Code {
        self.status.as_ref().map_or(
            match self.kind {
                ErrorKind::Unavailable => Code::Unavailable,
                ErrorKind::InvalidArgument => Code::InvalidArgument,
                _ => Code::Unknown,
            },
            Status::code,
        )
    }

    /// A local error: the request was not sent.
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::InvalidArgument,
            message: message.into(),
            reason: None,
            metadata: HashMap::new(),
            status: None,
            transport: None,
        }
    }

    /// Received data failed its checksums.
    pub(crate) fn data_loss(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::DataLoss,
            message: message.into(),
            reason: None,
            metadata: HashMap::new(),
            status: None,
            transport: None,
        }
    }

    /// The producer or consumer is closed, or its task ended.
    pub(crate) fn closed(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Other,
            message: message.into(),
            reason: None,
            metadata: HashMap::new(),
            status: None,
            transport: None,
        }
    }
}

impl From<Status> for Error {
    fn from(status: Status) -> Error {
        let kind = match status.code() {
            Code::Unavailable | Code::Aborted => ErrorKind::Unavailable,
            Code::DeadlineExceeded => ErrorKind::Timeout,
            Code::NotFound => ErrorKind::NotFound,
            Code::AlreadyExists => ErrorKind::AlreadyExists,
            Code::InvalidArgument => ErrorKind::InvalidArgument,
            Code::OutOfRange => ErrorKind::OutOfRange,
            Code::FailedPrecondition => ErrorKind::FailedPrecondition,
            Code::ResourceExhausted => ErrorKind::ResourceExhausted,
            Code::DataLoss => ErrorKind::DataLoss,
            _ => ErrorKind::Other,
        };
        let (reason, metadata) = match status.get_details_error_info() {
            Some(info) => (Some(info.reason), info.metadata),
            None => (None, HashMap::new()),
        };
        Error {
            kind,
            message: status.message().to_owned(),
            reason,
            metadata,
            status: Some(status),
            transport: None,
        }
    }
}

impl From<tonic::transport::Error> for Error {
    fn from(err: tonic::transport::Error) -> Error {
        Error {
            kind: ErrorKind::Unavailable,
            message: format!("cannot connect: {err}"),
            reason: None,
            metadata: HashMap::new(),
            status: None,
            transport: Some(std::sync::Arc::new(err)),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.status, &self.reason) {
            (Some(status), Some(reason)) => {
                write!(f, "{:?} ({reason}): {}", status.code(), self.message)
            }
            (Some(status), None) => write!(f, "{:?}: {}", status.code(), self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        if let Some(status) = &self.status {
            return Some(status);
        }
        self.transport
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}
