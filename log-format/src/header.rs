//! The fixed 72-byte batch header: field positions, parsing with its
//! checksum, and stamping the log-assigned fields in place.
//!
//! The byte table lives in the crate docs (`lib.rs`) and a test checks it
//! against the constants in [`field`]. This module reads and writes header
//! bytes only; it never looks at the records (see `view.rs`).

use crate::error::{DecodeError, Defect};
use crate::limits::Limits;

/// The format version this crate writes, stored in the magic byte.
pub const FORMAT_VERSION: u8 = 1;

/// Length of the batch header in bytes (format version 1).
pub const HEADER_LEN: usize = 72;

/// Value of the base offset in a batch that the log has not stamped yet.
pub const UNSTAMPED_OFFSET: u64 = 0;

/// Value of the append time in a batch that the log has not stamped yet.
pub const NO_TIMESTAMP: i64 = -1;

/// Value of the producer id in a batch sent without the idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;

/// Value of the producer epoch and base sequence without the idempotent producer.
pub const NO_SEQUENCE: i32 = -1;

/// Byte offsets of the header fields, as in the table of the crate docs.
pub mod field {
    /// CRC-32 of header bytes `[LENGTH, HEADER_LEN)`. `u32`.
    pub const HEADER_CRC: usize = 0;
    /// Total batch length in bytes, header included. `u32`.
    pub const LENGTH: usize = 4;
    /// Format version. `u8`.
    pub const MAGIC: usize = 8;
    /// Reserved, zero. `u8`.
    pub const RESERVED: usize = 9;
    /// Reserved flags, zero. `u16`.
    pub const FLAGS: usize = 10;
    /// CRC-32 of bytes `[BODY_START, length)`. `u32`.
    pub const BODY_CRC: usize = 12;
    /// Offset of the first record, stamped by the log. `u64`.
    pub const BASE_OFFSET: usize = 16;
    /// Server append time in ms since the Unix epoch, stamped by the log. `i64`.
    pub const APPEND_TIME: usize = 24;
    /// Attributes: compression codec and reserved bits. `u16`. The body
    /// checksum starts here.
    pub const ATTRIBUTES: usize = 32;
    /// Producer epoch. `i16`.
    pub const PRODUCER_EPOCH: usize = 34;
    /// Number of records. `u32`.
    pub const RECORD_COUNT: usize = 36;
    /// Offset delta of the last record. `u32`.
    pub const LAST_OFFSET_DELTA: usize = 40;
    /// Sequence number of the first record for the idempotent producer. `i32`.
    pub const BASE_SEQUENCE: usize = 44;
    /// Producer timestamp of the first record, ms since the Unix epoch. `i64`.
    pub const BASE_TIMESTAMP: usize = 48;
    /// Largest producer timestamp of the batch. `i64`.
    pub const MAX_TIMESTAMP: usize = 56;
    /// Producer id for the idempotent producer. `i64`.
    pub const PRODUCER_ID: usize = 64;
    /// First byte covered by the body checksum.
    pub const BODY_START: usize = ATTRIBUTES;
}

/// Bits 0–2 of the attributes: the compression codec of the records.
pub const ATTR_CODEC_MASK: u16 = 0b111;

/// The compression codec of a batch's records (attribute bits 0–2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Codec {
    /// Records are stored as they are.
    #[default]
    None,
}

impl Codec {
    /// The highest codec id this crate knows.
    pub const MAX_KNOWN_ID: u16 = 0;

    /// The codec for an id, or `None` when the id is unknown.
    pub fn from_id(id: u16) -> Option<Codec> {
        match id {
            0 => Some(Codec::None),
            _ => None,
        }
    }

    /// The id stored in the attribute bits.
    pub fn id(self) -> u16 {
        match self {
            Codec::None => 0,
        }
    }
}

/// The decoded header of a batch whose header checksum, version, length and
/// limits have been checked (but not, by itself, its body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Total length of the batch in bytes, header included.
    pub length: u32,
    /// CRC-32 of the body as stored.
    pub body_crc: u32,
    /// Offset of the first record (stamped by the log).
    pub base_offset: u64,
    /// Server append time, ms since the Unix epoch (stamped by the log), or
    /// [`NO_TIMESTAMP`].
    pub append_time: i64,
    /// Compression codec of the records.
    pub codec: Codec,
    /// Producer epoch, or [`NO_SEQUENCE`] as `i16`.
    pub producer_epoch: i16,
    /// Number of records.
    pub record_count: u32,
    /// Offset delta of the last record: the batch covers offsets
    /// `base_offset ..= base_offset + last_offset_delta`.
    pub last_offset_delta: u32,
    /// Sequence of the first record, or [`NO_SEQUENCE`].
    pub base_sequence: i32,
    /// Producer timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest producer timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
}

impl BatchHeader {
    /// Reads and checks the header at the start of `buf`, whose first byte is
    /// at `position` in the caller's coordinates (used in [`Corrupt`](crate::Corrupt)).
    ///
    /// Checks, in this order: the version byte (as soon as it is there), the
    /// header checksum (before the length is trusted), the length, the limits,
    /// the record count, the codec and reserved bits. Needs only the header's
    /// bytes, not the body's, so a reader can hop from header to header.
    pub fn parse(buf: &[u8], position: u64, limits: &Limits) -> Result<BatchHeader, DecodeError> {
        let corrupt = |at: usize, what: Defect, expected: u64, found: u64| {
            DecodeError::corrupt(position, at, what, expected, found)
        };
        if let Some(&magic) = buf.get(field::MAGIC)
            && magic != FORMAT_VERSION
        {
            return Err(corrupt(
                field::MAGIC,
                Defect::Version,
                FORMAT_VERSION.into(),
                magic.into(),
            ));
        }
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Err(DecodeError::Incomplete {
                needed: HEADER_LEN - buf.len(),
            });
        };
        let stored_crc = read_u32(header, field::HEADER_CRC);
        let actual_crc = crc32fast::hash(&header[field::LENGTH..]);
        if stored_crc != actual_crc {
            return Err(corrupt(
                field::HEADER_CRC,
                Defect::HeaderChecksum,
                stored_crc.into(),
                actual_crc.into(),
            ));
        }
        // The header is intact from here on: its fields are what was written.
        let length = read_u32(header, field::LENGTH);
        if (length as usize) < HEADER_LEN {
            return Err(corrupt(
                field::LENGTH,
                Defect::BatchLength,
                HEADER_LEN as u64,
                length.into(),
            ));
        }
        if length > limits.max_batch_bytes {
            return Err(corrupt(
                field::LENGTH,
                Defect::BatchTooLarge,
                limits.max_batch_bytes.into(),
                length.into(),
            ));
        }
        let reserved = u16::from(header[field::RESERVED]) | read_u16(header, field::FLAGS);
        if reserved != 0 {
            return Err(corrupt(
                field::RESERVED,
                Defect::ReservedBits,
                0,
                reserved.into(),
            ));
        }
        let attributes = read_u16(header, field::ATTRIBUTES);
        let codec_id = attributes & ATTR_CODEC_MASK;
        let Some(codec) = Codec::from_id(codec_id) else {
            return Err(corrupt(
                field::ATTRIBUTES,
                Defect::UnknownCodec,
                Codec::MAX_KNOWN_ID.into(),
                codec_id.into(),
            ));
        };
        if attributes & !ATTR_CODEC_MASK != 0 {
            return Err(corrupt(
                field::ATTRIBUTES,
                Defect::ReservedBits,
                0,
                (attributes & !ATTR_CODEC_MASK).into(),
            ));
        }
        let record_count = read_u32(header, field::RECORD_COUNT);
        if record_count == 0 {
            return Err(corrupt(field::RECORD_COUNT, Defect::EmptyBatch, 1, 0));
        }
        if record_count > limits.max_records {
            return Err(corrupt(
                field::RECORD_COUNT,
                Defect::TooManyRecords,
                limits.max_records.into(),
                record_count.into(),
            ));
        }
        let last_offset_delta = read_u32(header, field::LAST_OFFSET_DELTA);
        if last_offset_delta < record_count - 1 {
            return Err(corrupt(
                field::LAST_OFFSET_DELTA,
                Defect::RecordCount,
                u64::from(record_count - 1),
                last_offset_delta.into(),
            ));
        }
        Ok(BatchHeader {
            length,
            body_crc: read_u32(header, field::BODY_CRC),
            base_offset: read_u64(header, field::BASE_OFFSET),
            append_time: read_i64(header, field::APPEND_TIME),
            codec,
            producer_epoch: read_u16(header, field::PRODUCER_EPOCH) as i16,
            record_count,
            last_offset_delta,
            base_sequence: read_u32(header, field::BASE_SEQUENCE) as i32,
            base_timestamp: read_i64(header, field::BASE_TIMESTAMP),
            max_timestamp: read_i64(header, field::MAX_TIMESTAMP),
            producer_id: read_i64(header, field::PRODUCER_ID),
        })
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> u64 {
        self.base_offset
            .saturating_add(self.last_offset_delta.into())
    }
}

/// Sets the base offset and append time of the batch at the start of `buf`
/// and recomputes the header checksum, without touching the body or its
/// checksum (those fields are outside it).
///
/// The header checksum is verified first, so stamping never blesses a
/// damaged header with a fresh checksum. `buf` must hold at least the
/// header; the records need not be there.
pub fn stamp(buf: &mut [u8], base_offset: u64, append_time: i64) -> Result<(), DecodeError> {
    let limits = Limits::unlimited();
    BatchHeader::parse(buf, 0, &limits)?;
    buf[field::BASE_OFFSET..field::BASE_OFFSET + 8].copy_from_slice(&base_offset.to_le_bytes());
    buf[field::APPEND_TIME..field::APPEND_TIME + 8].copy_from_slice(&append_time.to_le_bytes());
    seal_header(buf);
    Ok(())
}

/// Writes the header checksum of the header at the start of `buf`
/// (`buf.len() >= HEADER_LEN`, checked by callers).
pub(crate) fn seal_header(buf: &mut [u8]) {
    let crc = crc32fast::hash(&buf[field::LENGTH..HEADER_LEN]);
    buf[field::HEADER_CRC..field::HEADER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
}

// Fixed-width little-endian reads of header fields. The header slice is
// `HEADER_LEN` long and every field constant lies inside it, so the indexing
// cannot fail; `try_into` of a sub-slice of the right length cannot either.
#[inline]
fn read_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

#[inline]
pub(crate) fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(read_array(buf, at))
}

#[inline]
pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(read_array(buf, at))
}

#[inline]
pub(crate) fn read_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(read_array(buf, at))
}

#[inline]
pub(crate) fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_le_bytes(read_array(buf, at))
}
