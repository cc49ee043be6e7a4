//! Kafka's error codes, and the one mapping from this log's errors to the
//! code a Kafka broker would answer in the same case.
//!
//! Only the codes this front end answers are here. It does not decide what
//! a handler does after an error (answer per partition, close the
//! connection): the handlers do.

use log_format::{DecodeError, Defect};
use log_storage::Error;

/// Kafka's error codes (`org.apache.kafka.common.protocol.Errors`).
pub(crate) mod code {
    pub(crate) const NONE: i16 = 0;
    pub(crate) const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub(crate) const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub(crate) const CORRUPT_MESSAGE: i16 = 2;
    pub(crate) const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub(crate) const MESSAGE_TOO_LARGE: i16 = 10;
    pub(crate) const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub(crate) const RECORD_LIST_TOO_LARGE: i16 = 18;
    pub(crate) const INVALID_REQUIRED_ACKS: i16 = 21;
    pub(crate) const UNSUPPORTED_VERSION: i16 = 35;
    pub(crate) const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub(crate) const INVALID_PARTITIONS: i16 = 37;
    pub(crate) const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub(crate) const INVALID_REQUEST: i16 = 42;
    pub(crate) const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub(crate) const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub(crate) const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub(crate) const INVALID_CONFIG: i16 = 40;
    pub(crate) const KAFKA_STORAGE_ERROR: i16 = 56;
    pub(crate) const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub(crate) const ILLEGAL_GENERATION: i16 = 22;
    pub(crate) const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub(crate) const INVALID_GROUP_ID: i16 = 24;
    pub(crate) const UNKNOWN_MEMBER_ID: i16 = 25;
    pub(crate) const INVALID_SESSION_TIMEOUT: i16 = 26;
    pub(crate) const REBALANCE_IN_PROGRESS: i16 = 27;
    pub(crate) const NON_EMPTY_GROUP: i16 = 68;
    pub(crate) const GROUP_ID_NOT_FOUND: i16 = 69;
    pub(crate) const FENCED_LEADER_EPOCH: i16 = 74;
    pub(crate) const UNKNOWN_LEADER_EPOCH: i16 = 75;
    pub(crate) const MEMBER_ID_REQUIRED: i16 = 79;
    pub(crate) const GROUP_MAX_SIZE_REACHED: i16 = 81;
    pub(crate) const FENCED_INSTANCE_ID: i16 = 82;
    pub(crate) const INVALID_RECORD: i16 = 87;
}

/// The code Kafka's group coordinator answers for `err`.
pub(crate) fn group(err: &log_groups::GroupError) -> i16 {
    use log_groups::GroupError as G;
    match err {
        G::InvalidGroupId => code::INVALID_GROUP_ID,
        G::UnknownMemberId => code::UNKNOWN_MEMBER_ID,
        G::IllegalGeneration => code::ILLEGAL_GENERATION,
        G::RebalanceInProgress => code::REBALANCE_IN_PROGRESS,
        G::InconsistentGroupProtocol => code::INCONSISTENT_GROUP_PROTOCOL,
        G::InvalidSessionTimeout => code::INVALID_SESSION_TIMEOUT,
        G::GroupMaxSizeReached => code::GROUP_MAX_SIZE_REACHED,
        G::MemberIdRequired { .. } => code::MEMBER_ID_REQUIRED,
        G::FencedInstanceId => code::FENCED_INSTANCE_ID,
        G::NonEmptyGroup => code::NON_EMPTY_GROUP,
        G::GroupIdNotFound => code::GROUP_ID_NOT_FOUND,
        G::CoordinatorNotAvailable => code::COORDINATOR_NOT_AVAILABLE,
        G::InvalidRequest(_) => code::INVALID_REQUEST,
        _ => code::UNKNOWN_SERVER_ERROR,
    }
}

/// The code and message Kafka would answer for `err`.
pub(crate) fn storage(err: &Error) -> (i16, String) {
    let code = match err {
        Error::TopicNotFound { .. } | Error::PartitionNotFound { .. } => {
            code::UNKNOWN_TOPIC_OR_PARTITION
        }
        // A deleted topic's partition, or a store shutting down.
        Error::Closed { .. } | Error::StoreClosed { .. } => code::UNKNOWN_TOPIC_OR_PARTITION,
        Error::TopicExists { .. } => code::TOPIC_ALREADY_EXISTS,
        Error::InvalidName { .. } => code::INVALID_TOPIC_EXCEPTION,
        Error::InvalidConfig { .. } => code::INVALID_CONFIG,
        Error::OffsetOutOfRange { .. } => code::OFFSET_OUT_OF_RANGE,
        Error::ProducerFenced { .. } => code::INVALID_PRODUCER_EPOCH,
        Error::OutOfOrderSequence { .. } => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        Error::InvalidBatch { source } => defect(source.what),
        // Kafka: "Compacted topic cannot accept message without key".
        Error::KeyRequired { .. } => code::INVALID_RECORD,
        Error::IncompleteBatch { .. } => code::CORRUPT_MESSAGE,
        Error::MetadataTooLarge { .. } => code::INVALID_REQUEST,
        Error::Io { .. }
        | Error::Index { .. }
        | Error::Corruption { .. }
        | Error::CorruptMetadata { .. }
        | Error::Poisoned { .. }
        | Error::ReadOnly { .. }
        | Error::DiskFull { .. }
        | Error::Locked { .. } => code::KAFKA_STORAGE_ERROR,
        _ => code::UNKNOWN_SERVER_ERROR,
    };
    (code, err.to_string())
}

/// The code and message Kafka would answer for a batch from a producer
/// that `log-format` refused.
pub(crate) fn batch(err: &DecodeError) -> (i16, String) {
    match err {
        DecodeError::Incomplete { .. } => (code::CORRUPT_MESSAGE, err.to_string()),
        DecodeError::Corrupt(c) => (defect(c.what), err.to_string()),
    }
}

fn defect(what: Defect) -> i16 {
    match what {
        Defect::BatchTooLarge => code::MESSAGE_TOO_LARGE,
        Defect::TooManyRecords | Defect::UncompressedTooLarge => code::RECORD_LIST_TOO_LARGE,
        // Valid Kafka, but not supported here yet: transactions.
        Defect::Transactional | Defect::ControlBatch => code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        Defect::KafkaMagic | Defect::UnsupportedCodec => code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
        // Kafka's LogValidator: InvalidRecordException.
        Defect::OffsetDelta | Defect::RecordCount | Defect::EmptyBatch => code::INVALID_RECORD,
        _ => code::CORRUPT_MESSAGE,
    }
}
