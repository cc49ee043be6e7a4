//! The one place where errors become gRPC statuses.
//!
//! Every status carries a `google.rpc.ErrorInfo` with domain `log.v1`, a
//! stable reason (clients branch on it, never on the message) and the
//! useful numbers in its metadata. Codes follow the gRPC guidance:
//! NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT (bad names, too large, bad
//! checksum), OUT_OF_RANGE (offsets; carries the log start and end),
//! FAILED_PRECONDITION (condition, sequence, epoch), RESOURCE_EXHAUSTED
//! (disk floor and a full disk: `DISK_FULL`; out of file descriptors:
//! `TOO_MANY_OPEN_FILES`; limits), UNAVAILABLE (poisoned partition, shutting down),
//! DATA_LOSS (corruption met while reading), INTERNAL (I/O failures; no
//! path is leaked except the data file of a corruption, relative to the
//! data directory).

use std::collections::HashMap;

use log_client::ERROR_DOMAIN;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// Every `google.rpc.ErrorInfo` reason the server sends (domain
/// `log.v1`), with the status code it goes with. These strings are part
/// of the contract: clients branch on them, so one is never renamed or
/// reused for another meaning. Every status the server builds takes its
/// reason from here.
pub mod reason {
    /// INVALID_ARGUMENT: a request field is malformed or out of range
    /// (metadata `field` names it).
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    /// UNAVAILABLE: the server is shutting down (or the store closed);
    /// retry against the restarted server.
    pub const SHUTTING_DOWN: &str = "SHUTTING_DOWN";
    /// UNAVAILABLE: the server is still recovering its partitions after a
    /// start; retry shortly.
    pub const RECOVERING: &str = "RECOVERING";
    /// RESOURCE_EXHAUSTED: the request message is larger than
    /// `max_request_bytes` (metadata `limit`).
    pub const REQUEST_TOO_LARGE: &str = "REQUEST_TOO_LARGE";
    /// NOT_FOUND: the topic does not exist (or was deleted under a read).
    pub const TOPIC_NOT_FOUND: &str = "TOPIC_NOT_FOUND";
    /// NOT_FOUND: the topic has no such partition.
    pub const PARTITION_NOT_FOUND: &str = "PARTITION_NOT_FOUND";
    /// ALREADY_EXISTS: CreateTopic of a topic that exists.
    pub const TOPIC_EXISTS: &str = "TOPIC_EXISTS";
    /// INVALID_ARGUMENT: the topic name is not allowed.
    pub const INVALID_TOPIC_NAME: &str = "INVALID_TOPIC_NAME";
    /// INVALID_ARGUMENT: the consumer group name is not allowed.
    pub const INVALID_GROUP_NAME: &str = "INVALID_GROUP_NAME";
    /// FAILED_PRECONDITION: a conditional append's expected log end is
    /// not the actual one.
    pub const CONDITION_FAILED: &str = "CONDITION_FAILED";
    /// FAILED_PRECONDITION: an idempotent producer's epoch is older than
    /// the partition's.
    pub const PRODUCER_FENCED: &str = "PRODUCER_FENCED";
    /// FAILED_PRECONDITION: an idempotent producer's sequence has a gap.
    pub const OUT_OF_ORDER_SEQUENCE: &str = "OUT_OF_ORDER_SEQUENCE";
    /// INVALID_ARGUMENT: a batch or record is over a size limit.
    pub const RECORD_TOO_LARGE: &str = "RECORD_TOO_LARGE";
    /// INVALID_ARGUMENT: an encoded batch is malformed, incomplete or
    /// fails its checksums.
    pub const INVALID_BATCH: &str = "INVALID_BATCH";
    /// INVALID_ARGUMENT: more records than one batch may hold.
    pub const TOO_MANY_RECORDS: &str = "TOO_MANY_RECORDS";
    /// INVALID_ARGUMENT: a record cannot be encoded.
    pub const INVALID_RECORD: &str = "INVALID_RECORD";
    /// INVALID_ARGUMENT: a record without a key sent to a topic whose
    /// cleanup policy compacts (metadata `record`: which one).
    pub const KEY_REQUIRED: &str = "KEY_REQUIRED";
    /// INVALID_ARGUMENT: a topic setting is invalid or over the server's
    /// limit (metadata `setting`).
    pub const INVALID_CONFIG: &str = "INVALID_CONFIG";
    /// FAILED_PRECONDITION: CreatePartitions asked for fewer partitions
    /// than the topic has.
    pub const CANNOT_SHRINK: &str = "CANNOT_SHRINK";
    /// INVALID_ARGUMENT: committed offset metadata is too long.
    pub const METADATA_TOO_LARGE: &str = "METADATA_TOO_LARGE";
    /// RESOURCE_EXHAUSTED: the data directory's free space is below the
    /// floor, or the disk is full.
    pub const DISK_FULL: &str = "DISK_FULL";
    /// RESOURCE_EXHAUSTED: the process has no file descriptor left.
    pub const TOO_MANY_OPEN_FILES: &str = "TOO_MANY_OPEN_FILES";
    /// RESOURCE_EXHAUSTED: the server holds `max_subscriptions`
    /// subscriptions.
    pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
    /// RESOURCE_EXHAUSTED: the connection holds
    /// `max_subscriptions_per_connection` subscriptions.
    pub const TOO_MANY_SUBSCRIPTIONS_ON_CONNECTION: &str = "TOO_MANY_SUBSCRIPTIONS_ON_CONNECTION";
    /// RESOURCE_EXHAUSTED: the connection has
    /// `max_fetches_per_connection` Fetch calls in flight.
    pub const TOO_MANY_FETCHES_ON_CONNECTION: &str = "TOO_MANY_FETCHES_ON_CONNECTION";
    /// UNAVAILABLE: the partition stopped taking writes after a failed
    /// fsync; a restart recovers it.
    pub const PARTITION_POISONED: &str = "PARTITION_POISONED";
    /// UNAVAILABLE: the partition is read-only (damage found before its
    /// recovery point).
    pub const PARTITION_READ_ONLY: &str = "PARTITION_READ_ONLY";
    /// OUT_OF_RANGE: the offset is outside the log (metadata
    /// `log_start_offset`, `log_end_offset`).
    pub const OFFSET_OUT_OF_RANGE: &str = "OFFSET_OUT_OF_RANGE";
    /// NOT_FOUND: a position at a group's committed offset, the group has
    /// none and the reset policy says to fail.
    pub const NO_COMMITTED_OFFSET: &str = "NO_COMMITTED_OFFSET";
    /// DATA_LOSS: stored data failed its checksum while being read
    /// (metadata `file`, `position`).
    pub const CORRUPT_DATA: &str = "CORRUPT_DATA";
    /// INTERNAL: any other storage failure.
    pub const STORAGE_ERROR: &str = "STORAGE_ERROR";
    /// ABORTED: a group member's generation is over, or the member was
    /// removed (its session expired) or replaced (a static member started
    /// again): it must not commit, and rejoins.
    pub const GROUP_MEMBER_FENCED: &str = "GROUP_MEMBER_FENCED";
    /// ABORTED: the group is handing out a new assignment; commit again
    /// once assigned.
    pub const GROUP_REBALANCING: &str = "GROUP_REBALANCING";
    /// FAILED_PRECONDITION: a commit without a member for a group that has
    /// members, or a join whose protocols the group's members do not share.
    pub const GROUP_CONFLICT: &str = "GROUP_CONFLICT";
    /// RESOURCE_EXHAUSTED: the group has its maximum of members, or the
    /// server its maximum of groups.
    pub const GROUP_LIMIT: &str = "GROUP_LIMIT";

    /// All of the above, once each.
    pub const ALL: &[&str] = &[
        INVALID_REQUEST,
        SHUTTING_DOWN,
        RECOVERING,
        REQUEST_TOO_LARGE,
        TOPIC_NOT_FOUND,
        PARTITION_NOT_FOUND,
        TOPIC_EXISTS,
        INVALID_TOPIC_NAME,
        INVALID_GROUP_NAME,
        CONDITION_FAILED,
        PRODUCER_FENCED,
        OUT_OF_ORDER_SEQUENCE,
        RECORD_TOO_LARGE,
        INVALID_BATCH,
        TOO_MANY_RECORDS,
        INVALID_RECORD,
        KEY_REQUIRED,
        INVALID_CONFIG,
        CANNOT_SHRINK,
        METADATA_TOO_LARGE,
        DISK_FULL,
        TOO_MANY_OPEN_FILES,
        TOO_MANY_SUBSCRIPTIONS,
        TOO_MANY_SUBSCRIPTIONS_ON_CONNECTION,
        TOO_MANY_FETCHES_ON_CONNECTION,
        PARTITION_POISONED,
        PARTITION_READ_ONLY,
        OFFSET_OUT_OF_RANGE,
        NO_COMMITTED_OFFSET,
        CORRUPT_DATA,
        STORAGE_ERROR,
        GROUP_MEMBER_FENCED,
        GROUP_REBALANCING,
        GROUP_CONFLICT,
        GROUP_LIMIT,
    ];
}

/// Builds a status with an `ErrorInfo` of `reason` (one of [`reason`]'s)
/// and `metadata`.
pub(crate) fn status(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: &[(&str, String)],
) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// INVALID_ARGUMENT, reason `INVALID_REQUEST`, naming the field.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Status {
    status(
        Code::InvalidArgument,
        reason::INVALID_REQUEST,
        message,
        &[("field", field.to_owned())],
    )
}

/// UNAVAILABLE, reason `SHUTTING_DOWN`.
pub(crate) fn shutting_down() -> Status {
    status(
        Code::Unavailable,
        reason::SHUTTING_DOWN,
        "server shutting down",
        &[],
    )
}

/// The status of a group refusal (`group` names the group).
pub(crate) fn group(err: &log_groups::GroupError, group: &str) -> Status {
    use log_groups::GroupError as G;
    let (code, why) = match err {
        G::UnknownMemberId | G::IllegalGeneration | G::FencedInstanceId => {
            (Code::Aborted, reason::GROUP_MEMBER_FENCED)
        }
        G::RebalanceInProgress => (Code::Aborted, reason::GROUP_REBALANCING),
        G::InconsistentGroupProtocol | G::NonEmptyGroup => {
            (Code::FailedPrecondition, reason::GROUP_CONFLICT)
        }
        G::GroupMaxSizeReached => (Code::ResourceExhausted, reason::GROUP_LIMIT),
        G::CoordinatorNotAvailable => (Code::Unavailable, reason::GROUP_LIMIT),
        G::InvalidGroupId => (Code::InvalidArgument, reason::INVALID_GROUP_NAME),
        _ => (Code::InvalidArgument, reason::INVALID_REQUEST),
    };
    status(
        code,
        why,
        format!("group {group}: {err}"),
        &[("group", group.to_owned())],
    )
}

/// FAILED_PRECONDITION, reason `GROUP_CONFLICT`: a commit without a member
/// for a group whose members the coordinator holds.
pub(crate) fn group_has_members(group: &str) -> Status {
    status(
        Code::FailedPrecondition,
        reason::GROUP_CONFLICT,
        format!("group {group} has members: commit as one (CommitOffsetsRequest.member)"),
        &[("group", group.to_owned())],
    )
}

/// RESOURCE_EXHAUSTED, reason `REQUEST_TOO_LARGE`.
pub(crate) fn request_too_large(limit: u32, detail: &str) -> Status {
    status(
        Code::ResourceExhausted,
        reason::REQUEST_TOO_LARGE,
        format!("request larger than the server's limit of {limit} bytes ({detail})"),
        &[("limit", limit.to_string())],
    )
}

/// A request message whose gRPC length prefix says it is larger than the
/// server's `max_request_bytes`: found before the message is read or
/// decoded (see `server.rs`, `Limited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MessageTooLarge {
    /// The message's length, from its prefix.
    pub(crate) len: u32,
    /// The limit.
    pub(crate) limit: u32,
}

impl std::fmt::Display for MessageTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a request message of {} bytes exceeds the limit of {} bytes",
            self.len, self.limit
        )
    }
}

impl std::error::Error for MessageTooLarge {}

/// RESOURCE_EXHAUSTED, reason `REQUEST_TOO_LARGE`, for `err`, which is the
/// status's source: [`is_request_too_large`] recognises it by type.
pub(crate) fn message_too_large(err: MessageTooLarge) -> Status {
    let mut status = request_too_large(err.limit, &format!("message of {} bytes", err.len));
    status.set_source(std::sync::Arc::new(err));
    status
}

/// Whether `status` is the answer to a request message over the limit
/// (built by [`message_too_large`]): by its source's type, not its text.
/// A streaming handler that reads such a status from its inbound stream
/// should answer it as is.
pub(crate) fn is_request_too_large(status: &Status) -> bool {
    // Through a stream the body's error comes back wrapped (a status whose
    // source is tonic's body error, whose source is ours): the whole chain
    // is searched, by type.
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        if cause.is::<MessageTooLarge>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The status of a batch the server could not build from a request's
/// records (INVALID_ARGUMENT): over the batch size limit, too many
/// records, or a record the format refuses.
pub(crate) fn build(err: &log_format::BuildError) -> Status {
    match err {
        log_format::BuildError::BatchFull { would_be, limit } => status(
            Code::InvalidArgument,
            reason::RECORD_TOO_LARGE,
            format!("records of {would_be} bytes exceed the batch limit of {limit} bytes"),
            &[("limit", limit.to_string()), ("size", would_be.to_string())],
        ),
        log_format::BuildError::TooManyRecords { limit } => status(
            Code::InvalidArgument,
            reason::TOO_MANY_RECORDS,
            format!("more than {limit} records in one batch"),
            &[("limit", limit.to_string())],
        ),
        other => status(
            Code::InvalidArgument,
            reason::INVALID_RECORD,
            format!("invalid record: {other}"),
            &[],
        ),
    }
}

/// Maps a storage error (of an operation on `topic`/`partition`).
pub(crate) fn storage(err: &log_storage::Error) -> Status {
    use log_storage::Error as E;
    match err {
        E::TopicNotFound { topic } => status(
            Code::NotFound,
            reason::TOPIC_NOT_FOUND,
            format!("topic {topic:?} does not exist"),
            &[("topic", topic.clone())],
        ),
        E::PartitionNotFound {
            topic,
            partition,
            partitions,
        } => status(
            Code::NotFound,
            reason::PARTITION_NOT_FOUND,
            format!("topic {topic:?} has {partitions} partitions; {partition} does not exist"),
            &[
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
                ("partition_count", partitions.to_string()),
            ],
        ),
        E::TopicExists { topic } => status(
            Code::AlreadyExists,
            reason::TOPIC_EXISTS,
            format!("topic {topic:?} already exists"),
            &[("topic", topic.clone())],
        ),
        E::InvalidName { kind, name, reason } => {
            let reason_code = match kind {
                log_storage::NameKind::Topic => reason::INVALID_TOPIC_NAME,
                _ => reason::INVALID_GROUP_NAME,
            };
            status(
                Code::InvalidArgument,
                reason_code,
                format!("invalid {kind} {name:?}: {reason}"),
                &[("name", name.escape_debug().to_string())],
            )
        }
        E::OffsetOutOfRange {
            requested,
            log_start,
            log_end,
        } => out_of_range(*requested, *log_start, *log_end),
        E::ConditionFailed { expected, actual } => status(
            Code::FailedPrecondition,
            reason::CONDITION_FAILED,
            format!("expected the log to end at {expected}; it ends at {actual}"),
            &[
                ("expected", expected.to_string()),
                ("actual", actual.to_string()),
            ],
        ),
        E::ProducerFenced {
            producer_id,
            epoch,
            current_epoch,
        } => status(
            Code::FailedPrecondition,
            reason::PRODUCER_FENCED,
            format!("producer {producer_id} epoch {epoch} is fenced by epoch {current_epoch}"),
            &[
                ("producer_id", producer_id.to_string()),
                ("epoch", epoch.to_string()),
                ("current_epoch", current_epoch.to_string()),
            ],
        ),
        E::OutOfOrderSequence {
            producer_id,
            expected,
            found,
        } => status(
            Code::FailedPrecondition,
            reason::OUT_OF_ORDER_SEQUENCE,
            format!("producer {producer_id}: expected sequence {expected}, got {found}"),
            &[
                ("producer_id", producer_id.to_string()),
                ("expected", expected.to_string()),
                ("found", found.to_string()),
            ],
        ),
        E::KeyRequired { record, .. } => status(
            Code::InvalidArgument,
            reason::KEY_REQUIRED,
            format!("{err}"),
            &[("record", record.to_string())],
        ),
        E::InvalidBatch { source } if source.what.is_limit() => status(
            Code::InvalidArgument,
            reason::RECORD_TOO_LARGE,
            format!("batch over a limit: {err}"),
            &[
                ("limit", source.expected.to_string()),
                ("size", source.found.to_string()),
            ],
        ),
        E::InvalidBatch { source } => status(
            Code::InvalidArgument,
            reason::INVALID_BATCH,
            format!("invalid batch: {err}"),
            &[
                ("position", source.field_position.to_string()),
                ("defect", format!("{:?}", source.what)),
            ],
        ),
        E::IncompleteBatch { needed } => status(
            Code::InvalidArgument,
            reason::INVALID_BATCH,
            format!("incomplete batch: {needed} more bytes expected"),
            &[("needed", needed.to_string())],
        ),
        E::InvalidConfig { setting, reason } => status(
            Code::InvalidArgument,
            reason::INVALID_CONFIG,
            format!("invalid {setting}: {reason}"),
            &[("setting", (*setting).to_owned())],
        ),
        E::MetadataTooLarge { len, max } => status(
            Code::InvalidArgument,
            reason::METADATA_TOO_LARGE,
            format!("offset metadata of {len} bytes exceeds {max}"),
            &[("limit", max.to_string()), ("size", len.to_string())],
        ),
        E::DiskFull {
            available, floor, ..
        } => status(
            Code::ResourceExhausted,
            reason::DISK_FULL,
            format!("disk below its free-space floor: {available} bytes free, floor {floor}"),
            &[
                ("available_bytes", available.to_string()),
                ("floor_bytes", floor.to_string()),
            ],
        ),
        E::Poisoned { .. } => status(
            Code::Unavailable,
            reason::PARTITION_POISONED,
            "partition stopped after a failed fsync; restart the server to recover it",
            &[],
        ),
        E::ReadOnly { source, .. } => status(
            Code::Unavailable,
            reason::PARTITION_READ_ONLY,
            format!("partition takes no writes: {source}"),
            &[],
        ),
        E::Closed { .. } | E::StoreClosed { .. } => shutting_down(),
        E::Corruption { path, position, .. } | E::CorruptMetadata { path, position, .. } => {
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            tracing::error!(error = %err, "corruption met while serving");
            status(
                Code::DataLoss,
                reason::CORRUPT_DATA,
                format!("stored data is corrupt in {file} at byte {position}"),
                &[("file", file.clone()), ("position", position.to_string())],
            )
        }
        other if out_of_space(other) => {
            tracing::error!(error = %other, "storage error: no space left");
            status(
                Code::ResourceExhausted,
                reason::DISK_FULL,
                "no space left on the data directory's file system",
                &[],
            )
        }
        other if out_of_file_descriptors(other) => {
            tracing::error!(error = %other, "storage error: out of file descriptors");
            status(
                Code::ResourceExhausted,
                reason::TOO_MANY_OPEN_FILES,
                "the server has no file descriptor left (EMFILE/ENFILE)",
                &[],
            )
        }
        other => {
            tracing::error!(error = %other, "storage error");
            status(Code::Internal, reason::STORAGE_ERROR, "storage error", &[])
        }
    }
}

/// Whether EMFILE (24) or ENFILE (23), the process's or the system's
/// open-file limit, caused `err`, anywhere in its source chain.
fn out_of_file_descriptors(err: &log_storage::Error) -> bool {
    caused_by_io(err, |io| matches!(io.raw_os_error(), Some(23 | 24)))
}

/// Whether an I/O error of kind `StorageFull` (ENOSPC) or `QuotaExceeded`
/// (EDQUOT) caused `err`, anywhere in its source chain.
fn out_of_space(err: &log_storage::Error) -> bool {
    caused_by_io(err, |io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        )
    })
}

/// Whether an I/O error that `is_it` accepts caused `err`, anywhere in its
/// source chain.
fn caused_by_io(err: &log_storage::Error, is_it: impl Fn(&std::io::Error) -> bool) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>().is_some_and(&is_it) {
            return true;
        }
        cause = e.source();
    }
    false
}

/// OUT_OF_RANGE, reason `OFFSET_OUT_OF_RANGE`, with the log start and end.
pub(crate) fn out_of_range(requested: u64, log_start: u64, log_end: u64) -> Status {
    status(
        Code::OutOfRange,
        reason::OFFSET_OUT_OF_RANGE,
        format!("offset {requested} is outside the log [{log_start}, {log_end}]"),
        &[
            ("requested_offset", requested.to_string()),
            ("log_start_offset", log_start.to_string()),
            ("log_end_offset", log_end.to_string()),
        ],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io;
    use std::path::PathBuf;

    use super::*;

    fn reason(status: &Status) -> String {
        status.get_details_error_info().unwrap().reason
    }

    #[test]
    fn a_full_disk_is_resource_exhausted_disk_full_never_internal() {
        let floor = storage(&log_storage::Error::DiskFull {
            dir: PathBuf::from("/data/topics/t/0"),
            available: 10,
            floor: 64 << 20,
        });
        assert_eq!(floor.code(), Code::ResourceExhausted);
        assert_eq!(reason(&floor), "DISK_FULL");
        for kind in [io::ErrorKind::StorageFull, io::ErrorKind::QuotaExceeded] {
            let err = log_storage::Error::Io {
                op: "write batch",
                path: PathBuf::from("/data/topics/t/0/00000000000000000000.log"),
                source: io::Error::from(kind),
            };
            let status = storage(&err);
            assert_eq!(status.code(), Code::ResourceExhausted, "{kind:?}");
            assert_eq!(reason(&status), "DISK_FULL", "{kind:?}");
            assert!(!status.message().contains("/data"), "{}", status.message());
        }
        // Other I/O errors stay INTERNAL.
        let other = storage(&log_storage::Error::Io {
            op: "write batch",
            path: PathBuf::from("/data/x"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        });
        assert_eq!(other.code(), Code::Internal);
    }

    #[test]
    fn every_reason_is_upper_snake_and_listed_once() {
        let mut seen = std::collections::HashSet::new();
        for r in reason::ALL {
            assert!(
                !r.is_empty() && r.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{r:?}"
            );
            assert!(seen.insert(*r), "{r:?} listed twice");
        }
        let here = include_str!("status.rs");
        let declared = here
            .lines()
            .filter(|line| line.starts_with("    pub const "))
            .count();
        // ALL itself is one of them.
        assert_eq!(
            declared,
            reason::ALL.len() + 1,
            "a reason is missing from ALL"
        );
    }

    /// No source file but this one spells a reason as a string literal.
    #[test]
    fn reasons_are_spelled_only_here() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for entry in std::fs::read_dir(&src).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "status.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for r in reason::ALL {
                assert!(
                    !text.contains(&format!("\"{r}\"")),
                    "{name} spells the reason {r:?}: use status::reason::*"
                );
            }
        }
    }

    #[test]
    fn a_message_over_the_limit_is_recognised_by_type_not_text() {
        let status = message_too_large(MessageTooLarge {
            len: 200,
            limit: 100,
        });
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(reason(&status), reason::REQUEST_TOO_LARGE);
        assert!(is_request_too_large(&status));
        assert!(is_request_too_large(&status.clone()));
        // The same code, reason and words without the source is not it.
        let lookalike = request_too_large(100, "message of 200 bytes");
        assert!(!is_request_too_large(&lookalike));
        assert!(!is_request_too_large(&Status::out_of_range(
            "Error, decoded message length too large"
        )));
    }
}
