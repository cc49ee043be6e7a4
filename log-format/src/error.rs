//! The errors of this crate: what went wrong decoding a batch (`DecodeError`,
//! with `Corrupt` and its `Defect`) and what went wrong building one
//! (`BuildError`).
//!
//! Decoding distinguishes "the buffer ends before the batch does"
//! ([`DecodeError::Incomplete`], which is what a torn tail looks like and is
//! not corruption) from "these bytes are not a valid batch"
//! ([`DecodeError::Corrupt`]). This module knows no paths: callers that read
//! files add the file name and turn buffer positions into file positions.

use std::fmt;

/// Which rule a batch broke. Carried by [`Corrupt`] together with the byte
/// position and the expected and found values; the meaning of those two
/// numbers is given for each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Defect {
    /// The frame version (magic byte) is not one this crate reads: version
    /// 1 frames of earlier builds, for one. expected: the version this crate
    /// reads; found: the byte.
    Version,
    /// The frame checksum does not match the headers (ours and Kafka's).
    /// expected: the stored CRC; found: the CRC computed over the headers.
    HeaderChecksum,
    /// A length field disagrees with the format: the frame is no longer
    /// than its headers, or Kafka's batchLength is not the frame length
    /// less the frame header and 12 bytes, or a Kafka batch is not the
    /// length of its buffer. expected: the length the format requires;
    /// found: the field.
    BatchLength,
    /// Kafka's magic byte is not 2 (RecordBatch v2): an older Kafka
    /// message format. expected: 2; found: the byte.
    KafkaMagic,
    /// The batch is longer than [`Limits::max_batch_bytes`](crate::Limits).
    /// expected: the limit; found: the batch length.
    BatchTooLarge,
    /// The batch holds more records than [`Limits::max_records`](crate::Limits).
    /// expected: the limit; found: the record count.
    TooManyRecords,
    /// The batch declares zero records. expected: 1; found: 0.
    EmptyBatch,
    /// The attributes name a compression codec this crate does not know.
    /// expected: the highest known codec id; found: the codec id.
    UnknownCodec,
    /// The batch is compressed with a codec whose cargo feature is off in
    /// this build. expected: 0; found: the codec id.
    UnsupportedCodec,
    /// The batch belongs to a transaction (attribute bit 4), which this
    /// log does not support yet. expected: 0; found: the bit, 4.
    Transactional,
    /// The batch is a control batch (attribute bit 5: transaction markers),
    /// which this log does not support yet. expected: 0; found: the bit, 5.
    ControlBatch,
    /// The compressed records are not a valid stream of their codec.
    /// expected: 0; found: the codec id.
    Decompression,
    /// The records decompress to more than
    /// [`Limits::max_uncompressed_bytes`](crate::Limits). expected: the
    /// limit; found: the limit + 1 (decoding stops there).
    UncompressedTooLarge,
    /// A reserved bit or byte is not zero. expected: 0; found: the bits.
    ReservedBits,
    /// Kafka's CRC-32C does not match the batch (attributes to the end).
    /// expected: the stored CRC; found: the CRC computed over the bytes.
    BodyChecksum,
    /// A record is malformed: a varint is truncated or overlong, or a length
    /// runs past the record. expected: the bytes the record declares;
    /// found: the bytes actually available or consumed.
    RecordFraming,
    /// A record's offset delta does not grow, or passes the batch's last
    /// offset delta, or (in a batch from a producer) is not its index.
    /// expected: the smallest (or largest, or only) allowed delta; found:
    /// the delta.
    OffsetDelta,
    /// A record's timestamp overflows `i64` when added to the base timestamp.
    /// expected: 0; found: the delta as stored (two's complement).
    TimestampDelta,
    /// A header key is not UTF-8. expected: 0; found: the byte index of the
    /// first invalid byte within the key.
    HeaderKeyUtf8,
    /// The number of records in the body differs from the record count, or
    /// the last record's offset delta differs from the last offset delta.
    /// expected: the header's value; found: the body's value.
    RecordCount,
    /// Bytes remain after a batch where exactly one batch was expected.
    /// expected: the batch length; found: the buffer length.
    TrailingBytes,
}

impl Defect {
    /// Whether this defect is a configured limit being exceeded rather than
    /// damage: the batch may be well formed but is refused by policy.
    pub fn is_limit(self) -> bool {
        matches!(self, Defect::BatchTooLarge | Defect::TooManyRecords)
    }

    /// A short lowercase description, used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Defect::Version => "unsupported frame version",
            Defect::HeaderChecksum => "frame checksum mismatch",
            Defect::BatchLength => "batch length inconsistent",
            Defect::KafkaMagic => "not a kafka record batch v2",
            Defect::BatchTooLarge => "batch larger than the limit",
            Defect::TooManyRecords => "more records than the limit",
            Defect::EmptyBatch => "batch without records",
            Defect::UnknownCodec => "unknown compression codec",
            Defect::UnsupportedCodec => "compression codec not built in",
            Defect::Transactional => "transactional batch (attribute bit 4) not supported",
            Defect::ControlBatch => "control batch (attribute bit 5) not supported",
            Defect::Decompression => "compressed records are malformed",
            Defect::UncompressedTooLarge => "records decompress past the limit",
            Defect::ReservedBits => "reserved bits set",
            Defect::BodyChecksum => "kafka crc-32c mismatch",
            Defect::RecordFraming => "malformed record",
            Defect::OffsetDelta => "record offset delta out of order",
            Defect::TimestampDelta => "record timestamp overflows",
            Defect::HeaderKeyUtf8 => "record header key is not utf-8",
            Defect::RecordCount => "record count mismatch",
            Defect::TrailingBytes => "trailing bytes after the batch",
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes that are not a valid batch: where, which rule, and the numbers.
///
/// `position` is the byte position of the start of the offending batch in
/// the caller's coordinates (a [`Scanner`](crate::Scanner) started at file
/// position `p` reports file positions), and `field_position` the byte where
/// the defect was found, when narrower than the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Corrupt {
    /// Byte position of the start of the batch.
    pub position: u64,
    /// Byte position of the field or record where the defect was found.
    pub field_position: u64,
    /// Which rule was broken.
    pub what: Defect,
    /// The value the format requires (see [`Defect`] for each variant).
    pub expected: u64,
    /// The value found in the bytes.
    pub found: u64,
}

impl fmt::Display for Corrupt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.what == Defect::Version {
            return write!(
                f,
                "frame version {} in batch at byte {} is not supported: this build reads version {}",
                self.found, self.position, self.expected
            );
        }
        write!(
            f,
            "{} in batch at byte {} (at byte {}): expected {:#x}, found {:#x}",
            self.what, self.position, self.field_position, self.expected, self.found
        )
    }
}

impl std::error::Error for Corrupt {}

/// Why a buffer could not be decoded as a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The buffer ends before the batch does: `needed` more bytes are
    /// required to know more. Not corruption by itself: this is what a torn
    /// tail, or a batch still arriving, looks like.
    Incomplete {
        /// Bytes missing past the end of the buffer.
        needed: usize,
    },
    /// The bytes are not a valid batch.
    Corrupt(Corrupt),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Incomplete { needed } => {
                write!(f, "incomplete batch: {needed} more bytes needed")
            }
            DecodeError::Corrupt(corrupt) => corrupt.fmt(f),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Incomplete { .. } => None,
            DecodeError::Corrupt(corrupt) => Some(corrupt),
        }
    }
}

impl DecodeError {
    /// A [`DecodeError::Corrupt`] for the batch at `position`, found at
    /// byte `at` of the batch.
    pub(crate) fn corrupt(
        position: u64,
        at: usize,
        what: Defect,
        expected: u64,
        found: u64,
    ) -> Self {
        DecodeError::Corrupt(Corrupt {
            position,
            field_position: position + at as u64,
            what,
            expected,
            found,
        })
    }
}

impl From<Corrupt> for DecodeError {
    fn from(corrupt: Corrupt) -> Self {
        DecodeError::Corrupt(corrupt)
    }
}

/// Why a record could not be added to a batch, or a batch not finished.
/// The builder is unchanged when it returns one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Adding the record would make the batch longer than the limit.
    /// Finish the batch and start another; a record that does not fit an
    /// empty batch can never be sent.
    BatchFull {
        /// The batch length the record would lead to, in bytes.
        would_be: u64,
        /// The limit, in bytes.
        limit: u32,
    },
    /// The batch already holds the maximum number of records.
    TooManyRecords {
        /// The limit.
        limit: u32,
    },
    /// A key, value, header or header count is longer than the format can
    /// describe (`i32::MAX` bytes for keys and values).
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The record's timestamp is so far from the batch's base timestamp that
    /// their difference overflows `i64`.
    TimestampOutOfRange {
        /// The batch's base timestamp (the first record's).
        base: i64,
        /// The record's timestamp.
        timestamp: i64,
    },
    /// `finish` was called on a batch with no records; the format has no
    /// empty batches.
    Empty,
    /// The records could not be compressed with the builder's codec (its
    /// cargo feature is off, for one).
    Compression(crate::codec::CodecError),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::BatchFull { would_be, limit } => write!(
                f,
                "record does not fit: the batch would be {would_be} bytes, the limit is {limit}"
            ),
            BuildError::TooManyRecords { limit } => {
                write!(f, "batch already holds the maximum of {limit} records")
            }
            BuildError::FieldTooLong { field, len } => {
                write!(f, "record {field} is too long: {len} bytes")
            }
            BuildError::TimestampOutOfRange { base, timestamp } => write!(
                f,
                "record timestamp {timestamp} is too far from the batch base timestamp {base}"
            ),
            BuildError::Empty => f.write_str("cannot finish a batch without records"),
            BuildError::Compression(e) => write!(f, "cannot compress the batch: {e}"),
        }
    }
}

impl std::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BuildError::Compression(e) => Some(e),
            _ => None,
        }
    }
}
