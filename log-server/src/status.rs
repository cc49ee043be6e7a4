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

/// Builds a status with an `ErrorInfo` of `reason` and `metadata`.
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
        "INVALID_REQUEST",
        message,
        &[("field", field.to_owned())],
    )
}

/// UNAVAILABLE, reason `SHUTTING_DOWN`.
pub(crate) fn shutting_down() -> Status {
    status(
        Code::Unavailable,
        "SHUTTING_DOWN",
        "server shutting down",
        &[],
    )
}

/// RESOURCE_EXHAUSTED, reason `REQUEST_TOO_LARGE`.
pub(crate) fn request_too_large(limit: u32, detail: &str) -> Status {
    status(
        Code::ResourceExhausted,
        "REQUEST_TOO_LARGE",
        format!("request larger than the server's limit of {limit} bytes ({detail})"),
        &[("limit", limit.to_string())],
    )
}

/// Maps a storage error (of an operation on `topic`/`partition`).
pub(crate) fn storage(err: &log_storage::Error) -> Status {
    use log_storage::Error as E;
    match err {
        E::TopicNotFound { topic } => status(
            Code::NotFound,
            "TOPIC_NOT_FOUND",
            format!("topic {topic:?} does not exist"),
            &[("topic", topic.clone())],
        ),
        E::PartitionNotFound {
            topic,
            partition,
            partitions,
        } => status(
            Code::NotFound,
            "PARTITION_NOT_FOUND",
            format!("topic {topic:?} has {partitions} partitions; {partition} does not exist"),
            &[
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
                ("partition_count", partitions.to_string()),
            ],
        ),
        E::TopicExists { topic } => status(
            Code::AlreadyExists,
            "TOPIC_EXISTS",
            format!("topic {topic:?} already exists"),
            &[("topic", topic.clone())],
        ),
        E::InvalidName { kind, name, reason } => {
            let reason_code = match kind {
                log_storage::NameKind::Topic => "INVALID_TOPIC_NAME",
                _ => "INVALID_GROUP_NAME",
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
            "CONDITION_FAILED",
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
            "PRODUCER_FENCED",
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
            "OUT_OF_ORDER_SEQUENCE",
            format!("producer {producer_id}: expected sequence {expected}, got {found}"),
            &[
                ("producer_id", producer_id.to_string()),
                ("expected", expected.to_string()),
                ("found", found.to_string()),
            ],
        ),
        E::InvalidBatch { source } if source.what.is_limit() => status(
            Code::InvalidArgument,
            "RECORD_TOO_LARGE",
            format!("batch over a limit: {err}"),
            &[
                ("limit", source.expected.to_string()),
                ("size", source.found.to_string()),
            ],
        ),
        E::InvalidBatch { source } => status(
            Code::InvalidArgument,
            "INVALID_BATCH",
            format!("invalid batch: {err}"),
            &[
                ("position", source.field_position.to_string()),
                ("defect", format!("{:?}", source.what)),
            ],
        ),
        E::IncompleteBatch { needed } => status(
            Code::InvalidArgument,
            "INVALID_BATCH",
            format!("incomplete batch: {needed} more bytes expected"),
            &[("needed", needed.to_string())],
        ),
        E::Build(build) => match build {
            log_format::BuildError::BatchFull { would_be, limit } => status(
                Code::InvalidArgument,
                "RECORD_TOO_LARGE",
                format!("records of {would_be} bytes exceed the batch limit of {limit} bytes"),
                &[("limit", limit.to_string()), ("size", would_be.to_string())],
            ),
            log_format::BuildError::TooManyRecords { limit } => status(
                Code::InvalidArgument,
                "TOO_MANY_RECORDS",
                format!("more than {limit} records in one batch"),
                &[("limit", limit.to_string())],
            ),
            other => status(
                Code::InvalidArgument,
                "INVALID_RECORD",
                format!("invalid record: {other}"),
                &[],
            ),
        },
        E::InvalidConfig { setting, reason } => status(
            Code::InvalidArgument,
            "INVALID_CONFIG",
            format!("invalid {setting}: {reason}"),
            &[("setting", (*setting).to_owned())],
        ),
        E::MetadataTooLarge { len, max } => status(
            Code::InvalidArgument,
            "METADATA_TOO_LARGE",
            format!("offset metadata of {len} bytes exceeds {max}"),
            &[("limit", max.to_string()), ("size", len.to_string())],
        ),
        E::DiskFull {
            available, floor, ..
        } => status(
            Code::ResourceExhausted,
            "DISK_FULL",
            format!("disk below its free-space floor: {available} bytes free, floor {floor}"),
            &[
                ("available_bytes", available.to_string()),
                ("floor_bytes", floor.to_string()),
            ],
        ),
        E::Poisoned { .. } => status(
            Code::Unavailable,
            "PARTITION_POISONED",
            "partition stopped after a failed fsync; restart the server to recover it",
            &[],
        ),
        E::ReadOnly { reason, .. } => status(
            Code::Unavailable,
            "PARTITION_READ_ONLY",
            format!("partition takes no writes: {reason}"),
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
                "CORRUPT_DATA",
                format!("stored data is corrupt in {file} at byte {position}"),
                &[("file", file.clone()), ("position", position.to_string())],
            )
        }
        other if out_of_space(other) => {
            tracing::error!(error = %other, "storage error: no space left");
            status(
                Code::ResourceExhausted,
                "DISK_FULL",
                "no space left on the data directory's file system",
                &[],
            )
        }
        other if out_of_file_descriptors(other) => {
            tracing::error!(error = %other, "storage error: out of file descriptors");
            status(
                Code::ResourceExhausted,
                "TOO_MANY_OPEN_FILES",
                "the server has no file descriptor left (EMFILE/ENFILE)",
                &[],
            )
        }
        other => {
            tracing::error!(error = %other, "storage error");
            status(Code::Internal, "STORAGE_ERROR", "storage error", &[])
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
        "OFFSET_OUT_OF_RANGE",
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
}
