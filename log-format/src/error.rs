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
    /// The format version (magic byte) is not one this crate reads.
    /// expected: the newest supported version; found: the byte.
    Version,
    /// The header checksum does not match the header.
    /// expected: the stored CRC; found: the CRC computed over the header.
    HeaderChecksum,
    /// The batch length field is smaller than a header.
    /// expected: the header length; found: the length field.
    BatchLength,
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
    /// A reserved bit or byte is not zero. expected: 0; found: the bits.
    ReservedBits,
    /// The body checksum does not match the body.
    /// expected: the stored CRC; found: the CRC computed over the body.
    BodyChecksum,
    /// A record is malformed: a varint is truncated or overlong, or a length
    /// runs past the record. expected: the bytes the record declares;
    /// found: the bytes actually available or consumed.
    RecordFraming,
    /// A record's offset delta does not grow, or passes the batch's last
    /// offset delta. expected: the smallest (or largest) allowed delta;
    /// found: the delta.
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
            Defect::Version => "unsupported format version",
            Defect::HeaderChecksum => "header checksum mismatch",
            Defect::BatchLength => "batch length shorter than its header",
            Defect::BatchTooLarge => "batch larger than the limit",
            Defect::TooManyRecords => "more records than the limit",
            Defect::EmptyBatch => "batch without records",
            Defect::UnknownCodec => "unknown compression codec",
            Defect::ReservedBits => "reserved bits set",
            Defect::BodyChecksum => "body checksum mismatch",
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
        }
    }
}

impl std::error::Error for BuildError {}
