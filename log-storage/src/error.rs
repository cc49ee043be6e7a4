//! The one error type of this crate.
//!
//! Every variant says what the log was doing and on which file or
//! partition. I/O errors are built by one helper ([`io_error`]) so that
//! none loses its operation or path. Corruption carries the file and the
//! byte position. This module does not decide what a caller does with an
//! error; the server maps them to status codes in one place.

use std::fmt;
use std::io;
use std::path::PathBuf;

use log_format::{BuildError, Corrupt, Defect};

/// An error of the `log-storage` crate.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A file system operation failed.
    Io {
        /// What the log was doing ("write batch", "sync segment", ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An index file could not be used (`log-index` error).
    Index {
        /// What the log was doing.
        op: &'static str,
        /// The cause, which names the index file.
        source: log_index::Error,
    },
    /// A batch offered for appending is not a valid batch, or breaks a
    /// limit: nothing was written.
    InvalidBatch {
        /// Why, with the byte position within the offered bytes.
        source: Corrupt,
    },
    /// A batch offered for appending is incomplete: its length field asks
    /// for more bytes than were given. Nothing was written.
    IncompleteBatch {
        /// Bytes missing.
        needed: usize,
    },
    /// Stored data is damaged: a batch in a segment fails its checks. The
    /// damaged range is never served.
    Corruption {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the damaged batch in the file.
        position: u64,
        /// What is wrong, with expected and found values.
        source: Corrupt,
    },
    /// An earlier write or `fdatasync` of this partition failed: after a
    /// failed fsync the page cache may claim data the disk never got, so the
    /// partition takes no more writes until it is reopened. Reads up to the
    /// durable offset still work.
    Poisoned {
        /// The partition directory.
        dir: PathBuf,
        /// What failed first.
        cause: String,
    },
    /// The partition stopped taking writes because stored data is damaged
    /// below its end (see [`Error::Corruption`]); it stays readable up to
    /// the damage.
    ReadOnly {
        /// The partition directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A read asked for an offset outside `[log_start, log_end]`.
    OffsetOutOfRange {
        /// The offset asked for.
        requested: u64,
        /// The first offset still stored.
        log_start: u64,
        /// The offset the next record will get.
        log_end: u64,
    },
    /// A conditional append found another end offset than expected; nothing
    /// was written.
    ConditionFailed {
        /// The end offset the caller expected.
        expected: u64,
        /// The actual end offset.
        actual: u64,
    },
    /// A configuration value is out of range.
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Encoding a batch failed (a `log-format` builder error).
    Build(BuildError),
    /// The partition is closed.
    Closed {
        /// The partition directory.
        dir: PathBuf,
    },
}

impl Error {
    /// Whether the error is a limit on what a batch may be (too large, too
    /// many records) rather than damage or misuse.
    pub fn is_limit(&self) -> bool {
        matches!(self, Error::InvalidBatch { source } if source.what.is_limit())
    }

    /// The defect of an invalid or corrupt batch, if this is one.
    pub fn defect(&self) -> Option<Defect> {
        match self {
            Error::InvalidBatch { source } | Error::Corruption { source, .. } => Some(source.what),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, .. } => write!(f, "cannot {op}: {}", path.display()),
            Error::Index { op, .. } => write!(f, "cannot {op}: index unusable"),
            Error::InvalidBatch { source } => write!(f, "invalid batch: {source}"),
            Error::IncompleteBatch { needed } => {
                write!(f, "incomplete batch: {needed} bytes missing")
            }
            Error::Corruption { path, position, .. } => {
                write!(f, "corrupt batch in {} at byte {position}", path.display())
            }
            Error::Poisoned { dir, cause } => write!(
                f,
                "partition {} takes no writes until reopened: {cause}",
                dir.display()
            ),
            Error::ReadOnly { dir, reason } => {
                write!(f, "partition {} is read-only: {reason}", dir.display())
            }
            Error::OffsetOutOfRange {
                requested,
                log_start,
                log_end,
            } => write!(
                f,
                "offset {requested} is out of range: the log holds [{log_start}, {log_end})"
            ),
            Error::ConditionFailed { expected, actual } => write!(
                f,
                "expected the log to end at offset {expected}, it ends at {actual}"
            ),
            Error::InvalidConfig { setting, reason } => write!(f, "invalid {setting}: {reason}"),
            Error::Build(err) => write!(f, "cannot build batch: {err}"),
            Error::Closed { dir } => write!(f, "partition {} is closed", dir.display()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Index { source, .. } => Some(source),
            Error::InvalidBatch { source } | Error::Corruption { source, .. } => Some(source),
            Error::Build(err) => Some(err),
            _ => None,
        }
    }
}

/// Builds the closure that turns an [`io::Error`] into [`Error::Io`] for
/// `op` on `path`: `file.sync_data().map_err(io_error("sync segment", &path))`.
pub(crate) fn io_error(
    op: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { op, path, source }
}

/// Builds the closure that turns a [`log_index::Error`] into [`Error::Index`].
pub(crate) fn index_error(op: &'static str) -> impl FnOnce(log_index::Error) -> Error {
    move |source| Error::Index { op, source }
}
