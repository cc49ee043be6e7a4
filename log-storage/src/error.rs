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
use std::sync::Arc;

use log_format::{Corrupt, Defect};

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
        /// What failed first (an [`Error::Io`] naming the file and the
        /// operation), also given as [`source`](std::error::Error::source).
        source: Arc<Error>,
    },
    /// The partition stopped taking writes because stored data is damaged
    /// below its end (see [`Error::Corruption`]); it stays readable up to
    /// the damage.
    ReadOnly {
        /// The partition directory.
        dir: PathBuf,
        /// The damage found (an [`Error::Corruption`] or
        /// [`Error::CorruptMetadata`] naming the file and the byte), also
        /// given as [`source`](std::error::Error::source).
        source: Arc<Error>,
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
    /// A batch for a partition that compacts holds a record without a key
    /// (compaction keeps the latest record per key: a keyless one could
    /// never be superseded); nothing was written.
    KeyRequired {
        /// The partition directory.
        dir: PathBuf,
        /// Which record of the batch (0 is the first).
        record: u32,
    },
    /// The log cleaner could not clean a partition (its data is as it
    /// was; the cleaner retries it later).
    CleanFailed {
        /// The partition directory.
        dir: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The partition is closed.
    Closed {
        /// The partition directory.
        dir: PathBuf,
    },
    /// A topic name or consumer id was refused before it became a path;
    /// nothing was created or changed.
    InvalidName {
        /// Which kind of name.
        kind: NameKind,
        /// The name as given (at most its first 256 characters).
        name: String,
        /// Why it was refused.
        reason: String,
    },
    /// The data directory is locked by another store (this process or
    /// another one).
    Locked {
        /// The lock file.
        path: PathBuf,
        /// Who holds it, as far as the lock file says.
        holder: String,
    },
    /// A topic to create exists already; nothing was changed.
    TopicExists {
        /// The topic.
        topic: String,
    },
    /// No such topic.
    TopicNotFound {
        /// The topic.
        topic: String,
    },
    /// The topic has no such partition.
    PartitionNotFound {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: u32,
        /// How many partitions the topic has.
        partitions: u32,
    },
    /// The metadata of a committed offset is larger than allowed; nothing
    /// was written.
    MetadataTooLarge {
        /// Its length in bytes.
        len: usize,
        /// The largest length accepted.
        max: usize,
    },
    /// A small file of the store or of a partition (a topic config, a
    /// committed offset, an epoch, a log start, a cleaner point) is
    /// damaged. It is reported, never replaced by a default. (Files that
    /// only save work are not: a damaged recovery point, clean-shutdown
    /// marker or producer snapshot is logged and rebuilt from the log.)
    CorruptMetadata {
        /// The file.
        path: PathBuf,
        /// Byte position of the problem in the file.
        position: u64,
        /// What is wrong, with expected and found values.
        what: String,
    },
    /// The store is closed.
    StoreClosed {
        /// The data directory.
        dir: PathBuf,
    },
    /// The file system has less space available than the configured floor
    /// (`min_free_bytes`): the append was refused before writing anything.
    DiskFull {
        /// The partition directory.
        dir: PathBuf,
        /// Bytes available.
        available: u64,
        /// The floor, in bytes.
        floor: u64,
    },
    /// An idempotent producer's batch carries an older epoch than the
    /// producer's current one: a newer instance fenced it. Nothing written.
    ProducerFenced {
        /// The producer id.
        producer_id: i64,
        /// The batch's epoch.
        epoch: i16,
        /// The producer's current epoch.
        current_epoch: i16,
    },
    /// An idempotent producer's batch does not follow its previous one (a
    /// gap or a reordering) and is not a retry of one of its last five.
    /// Nothing written.
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence the next batch must start at.
        expected: i32,
        /// The batch's base sequence.
        found: i32,
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
            Error::Poisoned { dir, source } => write!(
                f,
                "partition {} takes no writes until reopened: {source}",
                dir.display()
            ),
            Error::ReadOnly { dir, source } => {
                write!(f, "partition {} is read-only: {source}", dir.display())
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
            Error::Closed { dir } => write!(f, "partition {} is closed", dir.display()),
            Error::KeyRequired { dir, record } => write!(
                f,
                "partition {} compacts: every record needs a key, and record {record} of the batch has none",
                dir.display()
            ),
            Error::CleanFailed { dir, reason } => {
                write!(f, "cannot clean partition {}: {reason}", dir.display())
            }
            Error::InvalidName { kind, name, reason } => {
                write!(f, "invalid {kind} {name:?}: {reason}")
            }
            Error::Locked { path, holder } => {
                write!(f, "data directory is locked: {} ({holder})", path.display())
            }
            Error::TopicExists { topic } => write!(f, "topic {topic:?} exists already"),
            Error::TopicNotFound { topic } => write!(f, "no topic {topic:?}"),
            Error::PartitionNotFound {
                topic,
                partition,
                partitions,
            } => write!(
                f,
                "topic {topic:?} has no partition {partition} (it has {partitions})"
            ),
            Error::MetadataTooLarge { len, max } => write!(
                f,
                "offset metadata is {len} bytes, more than the {max} allowed"
            ),
            Error::CorruptMetadata {
                path,
                position,
                what,
            } => write!(
                f,
                "corrupt metadata file {} at byte {position}: {what}",
                path.display()
            ),
            Error::StoreClosed { dir } => write!(f, "store {} is closed", dir.display()),
            Error::DiskFull {
                dir,
                available,
                floor,
            } => write!(
                f,
                "not enough disk space for {}: {available} bytes available, the floor is {floor}",
                dir.display()
            ),
            Error::ProducerFenced {
                producer_id,
                epoch,
                current_epoch,
            } => write!(
                f,
                "producer {producer_id} with epoch {epoch} is fenced by epoch {current_epoch}"
            ),
            Error::OutOfOrderSequence {
                producer_id,
                expected,
                found,
            } => write!(
                f,
                "producer {producer_id} sent sequence {found}, expected {expected}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Index { source, .. } => Some(source),
            Error::InvalidBatch { source } | Error::Corruption { source, .. } => Some(source),
            Error::Poisoned { source, .. } | Error::ReadOnly { source, .. } => Some(&**source),
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

/// Which kind of name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A topic name.
    Topic,
    /// A consumer id.
    Consumer,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Topic => "topic name",
            NameKind::Consumer => "consumer id",
        })
    }
}
