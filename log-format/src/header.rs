//! The 77-byte header of a v2 frame: our 16-byte frame header followed by
//! the 61-byte header of the Kafka RecordBatch v2 it carries. Field
//! positions, parsing with the frame checksum, and stamping the
//! log-assigned fields in place.
//!
//! The byte table lives in the crate docs (`lib.rs`) and a test checks it
//! against the constants in [`field`]. This module reads and writes header
//! bytes only; it never looks at the records (see `view.rs`) and never
//! computes Kafka's CRC-32C, which covers the records too.

use crate::codec::{ATTR_CODEC_MASK, Codec};
use crate::error::{DecodeError, Defect};
use crate::limits::Limits;

/// The frame version this crate writes and reads, stored in the magic byte.
pub const FORMAT_VERSION: u8 = 2;

/// The magic byte of a Kafka RecordBatch v2.
pub const KAFKA_MAGIC: u8 = 2;

/// Length of our frame header, before the Kafka batch.
pub const FRAME_HEADER_LEN: usize = 16;

/// Length of a Kafka RecordBatch v2 header (baseOffset to recordsCount).
pub const KAFKA_HEADER_LEN: usize = 61;

/// Length of a frame's headers: ours and Kafka's, up to the records.
pub const HEADER_LEN: usize = FRAME_HEADER_LEN + KAFKA_HEADER_LEN;

/// Bytes of a Kafka batch before its `batchLength` counts: baseOffset
/// (8) and batchLength itself (4). A Kafka batch is `batchLength + 12`
/// bytes long.
pub const KAFKA_LOG_OVERHEAD: usize = 12;

/// Value of the base offset in a batch that the log has not stamped yet.
pub const UNSTAMPED_OFFSET: u64 = 0;

/// Value of the append time in a batch that the log has not stamped yet.
pub const NO_TIMESTAMP: i64 = -1;

/// The largest append time a frame can hold: 2^48 − 2 ms after the epoch
/// (about the year 10889); the all-ones value means "not stamped".
pub const MAX_APPEND_TIME: i64 = (1 << 48) - 2;

/// Value of the producer id in a batch sent without the idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;

/// Value of the producer epoch and base sequence without the idempotent producer.
pub const NO_SEQUENCE: i32 = -1;

/// Kafka's partitionLeaderEpoch of a batch no log has stamped.
pub const NO_LEADER_EPOCH: i32 = -1;

/// Attribute bit 3: the timestamps are the log's append time.
pub const ATTR_LOG_APPEND_TIME: u16 = 1 << 3;

/// Attribute bit 4: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: u16 = 1 << 4;

/// Attribute bit 5: the batch is a control batch (transaction markers).
pub const ATTR_CONTROL: u16 = 1 << 5;

/// Attribute bit 6: the base timestamp is the batch's delete horizon
/// (Kafka's KIP-534): the log cleaner set it on a batch holding tombstones,
/// which it drops once that time has passed. Record timestamps stay base
/// timestamp plus delta.
pub const ATTR_DELETE_HORIZON: u16 = 1 << 6;

/// The append time bytes of an unstamped frame.
const UNSTAMPED_APPEND_TIME: u64 = (1 << 48) - 1;

/// Byte offsets of the header fields within a frame, as in the table of the
/// crate docs. Fields from [`BASE_OFFSET`](field::BASE_OFFSET) on are
/// Kafka's, big-endian; the ones before are ours, little-endian.
pub mod field {
    /// CRC-32 of frame bytes `[LENGTH, HEADER_LEN)`. `u32`, little-endian.
    pub const FRAME_CRC: usize = 0;
    /// Total frame length in bytes, headers included. `u32`.
    pub const LENGTH: usize = 4;
    /// Frame version. `u8`.
    pub const MAGIC: usize = 8;
    /// Reserved flags, zero. `u8`.
    pub const FLAGS: usize = 9;
    /// Server append time in ms since the Unix epoch, stamped by the log.
    /// `u48`, all ones before stamping.
    pub const APPEND_TIME: usize = 10;
    /// First byte of the Kafka RecordBatch.
    pub const KAFKA: usize = super::FRAME_HEADER_LEN;
    /// Kafka baseOffset: offset of the first record, stamped by the log. `i64`.
    pub const BASE_OFFSET: usize = KAFKA;
    /// Kafka batchLength: bytes after this field. `i32`.
    pub const BATCH_LENGTH: usize = KAFKA + 8;
    /// Kafka partitionLeaderEpoch: the log's epoch, stamped by the log. `i32`.
    pub const LEADER_EPOCH: usize = KAFKA + 12;
    /// Kafka magic, 2. `i8`.
    pub const KAFKA_MAGIC: usize = KAFKA + 16;
    /// Kafka CRC-32C of bytes `[ATTRIBUTES, length)`. `u32`.
    pub const KAFKA_CRC: usize = KAFKA + 17;
    /// Kafka attributes: codec, timestamp type, transaction bits. `i16`.
    /// Kafka's CRC starts here.
    pub const ATTRIBUTES: usize = KAFKA + 21;
    /// Offset delta of the last record. `i32`.
    pub const LAST_OFFSET_DELTA: usize = KAFKA + 23;
    /// Timestamp of the first record, ms since the Unix epoch. `i64`.
    pub const BASE_TIMESTAMP: usize = KAFKA + 27;
    /// Largest timestamp of the batch. `i64`.
    pub const MAX_TIMESTAMP: usize = KAFKA + 35;
    /// Idempotent producer id. `i64`.
    pub const PRODUCER_ID: usize = KAFKA + 43;
    /// Idempotent producer epoch. `i16`.
    pub const PRODUCER_EPOCH: usize = KAFKA + 51;
    /// Sequence number of the first record. `i32`.
    pub const BASE_SEQUENCE: usize = KAFKA + 53;
    /// Number of records. `i32`.
    pub const RECORD_COUNT: usize = KAFKA + 57;
    /// First byte of the records.
    pub const RECORDS: usize = super::HEADER_LEN;
    /// First byte covered by Kafka's CRC-32C.
    pub const KAFKA_CRC_START: usize = ATTRIBUTES;
}

/// How a batch's timestamps were set (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer's clock (Kafka's `CreateTime`).
    #[default]
    CreateTime,
    /// The log's clock at append (Kafka's `LogAppendTime`).
    LogAppendTime,
}

/// The decoded header of a frame whose frame checksum, versions, lengths,
/// attributes and limits have been checked (but not, by itself, the Kafka
/// checksum or the records).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Total length of the frame in bytes, headers included.
    pub length: u32,
    /// Server append time, ms since the Unix epoch (stamped by the log), or
    /// [`NO_TIMESTAMP`].
    pub append_time: i64,
    /// Offset of the first record (stamped by the log).
    pub base_offset: u64,
    /// Kafka's partitionLeaderEpoch: the log's epoch when it appended the
    /// batch, or [`NO_LEADER_EPOCH`].
    pub leader_epoch: i32,
    /// Kafka's CRC-32C of the batch as stored.
    pub kafka_crc: u32,
    /// Kafka's attributes as stored.
    pub attributes: u16,
    /// Compression codec of the records.
    pub codec: Codec,
    /// Whose clock the timestamps are.
    pub timestamp_type: TimestampType,
    /// Offset delta of the last record: the batch covers offsets
    /// `base_offset ..= base_offset + last_offset_delta`.
    pub last_offset_delta: u32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// Producer epoch, or [`NO_SEQUENCE`] as `i16`.
    pub producer_epoch: i16,
    /// Sequence of the first record, or [`NO_SEQUENCE`].
    pub base_sequence: i32,
    /// Number of records.
    pub record_count: u32,
}

impl BatchHeader {
    /// Reads and checks the frame header at the start of `buf`, whose first
    /// byte is at `position` in the caller's coordinates (used in
    /// [`Corrupt`](crate::Corrupt)).
    ///
    /// Checks, in this order: the frame version (as soon as it is there),
    /// the frame checksum (before any length is trusted), the lengths, the
    /// limits, Kafka's magic, then the Kafka header fields
    /// (attributes, record count, last offset delta). Needs the 77 header bytes only, not the
    /// records, so a reader can hop from header to header: the frame
    /// checksum covers every header field.
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
        let stored_crc = read_le_u32(header, field::FRAME_CRC);
        let actual_crc = crc32fast::hash(&header[field::LENGTH..]);
        if stored_crc != actual_crc {
            return Err(corrupt(
                field::FRAME_CRC,
                Defect::HeaderChecksum,
                stored_crc.into(),
                actual_crc.into(),
            ));
        }
        // The headers are intact from here on: their fields are what was
        // written.
        let length = read_le_u32(header, field::LENGTH);
        if (length as usize) <= HEADER_LEN {
            return Err(corrupt(
                field::LENGTH,
                Defect::BatchLength,
                HEADER_LEN as u64 + 1,
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
        if header[field::FLAGS] != 0 {
            return Err(corrupt(
                field::FLAGS,
                Defect::ReservedBits,
                0,
                header[field::FLAGS].into(),
            ));
        }
        let batch_length = read_be_u32(header, field::BATCH_LENGTH);
        let kafka_len = u64::from(length) - FRAME_HEADER_LEN as u64;
        if u64::from(batch_length) + KAFKA_LOG_OVERHEAD as u64 != kafka_len {
            return Err(corrupt(
                field::BATCH_LENGTH,
                Defect::BatchLength,
                kafka_len - KAFKA_LOG_OVERHEAD as u64,
                batch_length.into(),
            ));
        }
        let kafka = check_kafka_fields(&header[field::KAFKA..], limits)
            .map_err(|d| corrupt(field::KAFKA + d.at, d.what, d.expected, d.found))?;
        let append_time = read_le_u48(header, field::APPEND_TIME);
        Ok(BatchHeader {
            length,
            append_time: if append_time == UNSTAMPED_APPEND_TIME {
                NO_TIMESTAMP
            } else {
                append_time as i64
            },
            ..kafka
        })
    }

    /// The delete horizon the log cleaner set on this batch (attribute
    /// bit 6, [`ATTR_DELETE_HORIZON`]): its tombstones are dropped by the
    /// first cleaning after this time, ms since the Unix epoch.
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }

    /// Offset of the last record: `base_offset + last_offset_delta`.
    pub fn last_offset(&self) -> u64 {
        self.base_offset
            .saturating_add(self.last_offset_delta.into())
    }
}

/// A defect found in a Kafka header, at a byte relative to the Kafka batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldDefect {
    pub(crate) what: Defect,
    pub(crate) at: usize,
    pub(crate) expected: u64,
    pub(crate) found: u64,
}

/// Checks the fields of the 61-byte Kafka header at the start of `kafka`
/// (`kafka.len() >= KAFKA_HEADER_LEN`, checked by callers): the magic, the
/// attributes (a known codec; no transaction or control bit; reserved bits
/// zero), the record count (≥ 1 and within the limit) and the last offset
/// delta (≥ count − 1). Returns the header with `length` and `append_time`
/// left for the caller; positions in a defect are relative to `kafka`.
pub(crate) fn check_kafka_fields(
    kafka: &[u8],
    limits: &Limits,
) -> Result<BatchHeader, FieldDefect> {
    let k = |frame_field: usize| frame_field - field::KAFKA;
    let defect = |at: usize, what: Defect, expected: u64, found: u64| FieldDefect {
        what,
        at: k(at),
        expected,
        found,
    };
    let magic = kafka[k(field::KAFKA_MAGIC)];
    if magic != KAFKA_MAGIC {
        return Err(defect(
            field::KAFKA_MAGIC,
            Defect::KafkaMagic,
            KAFKA_MAGIC.into(),
            magic.into(),
        ));
    }
    let attributes = read_be_u16(kafka, k(field::ATTRIBUTES));
    let codec_id = attributes & ATTR_CODEC_MASK;
    let Some(codec) = Codec::from_id(codec_id) else {
        return Err(defect(
            field::ATTRIBUTES,
            Defect::UnknownCodec,
            Codec::MAX_KNOWN_ID.into(),
            codec_id.into(),
        ));
    };
    if attributes & ATTR_TRANSACTIONAL != 0 {
        return Err(defect(field::ATTRIBUTES, Defect::Transactional, 0, 4));
    }
    if attributes & ATTR_CONTROL != 0 {
        return Err(defect(field::ATTRIBUTES, Defect::ControlBatch, 0, 5));
    }
    let known = ATTR_CODEC_MASK | ATTR_LOG_APPEND_TIME | ATTR_DELETE_HORIZON;
    if attributes & !known != 0 {
        return Err(defect(
            field::ATTRIBUTES,
            Defect::ReservedBits,
            0,
            (attributes & !known).into(),
        ));
    }
    let record_count = read_be_u32(kafka, k(field::RECORD_COUNT)) as i32;
    if record_count <= 0 {
        return Err(defect(
            field::RECORD_COUNT,
            Defect::EmptyBatch,
            1,
            record_count as u32 as u64,
        ));
    }
    let record_count = record_count as u32;
    if record_count > limits.max_records {
        return Err(defect(
            field::RECORD_COUNT,
            Defect::TooManyRecords,
            limits.max_records.into(),
            record_count.into(),
        ));
    }
    let last_offset_delta = read_be_u32(kafka, k(field::LAST_OFFSET_DELTA));
    if (last_offset_delta as i32) < 0 || last_offset_delta < record_count - 1 {
        return Err(defect(
            field::LAST_OFFSET_DELTA,
            Defect::RecordCount,
            u64::from(record_count - 1),
            last_offset_delta.into(),
        ));
    }
    Ok(BatchHeader {
        length: 0,
        append_time: NO_TIMESTAMP,
        base_offset: read_be_u64(kafka, k(field::BASE_OFFSET)),
        leader_epoch: read_be_u32(kafka, k(field::LEADER_EPOCH)) as i32,
        kafka_crc: read_be_u32(kafka, k(field::KAFKA_CRC)),
        attributes,
        codec,
        timestamp_type: if attributes & ATTR_LOG_APPEND_TIME == 0 {
            TimestampType::CreateTime
        } else {
            TimestampType::LogAppendTime
        },
        last_offset_delta,
        base_timestamp: read_be_u64(kafka, k(field::BASE_TIMESTAMP)) as i64,
        max_timestamp: read_be_u64(kafka, k(field::MAX_TIMESTAMP)) as i64,
        producer_id: read_be_u64(kafka, k(field::PRODUCER_ID)) as i64,
        producer_epoch: read_be_u16(kafka, k(field::PRODUCER_EPOCH)) as i16,
        base_sequence: read_be_u32(kafka, k(field::BASE_SEQUENCE)) as i32,
        record_count,
    })
}

/// Sets the log-assigned fields of the frame at the start of `buf` — the
/// base offset, Kafka's partitionLeaderEpoch (the log's epoch) and the
/// append time (clamped to `0..=MAX_APPEND_TIME`) — and recomputes the
/// frame checksum. Kafka's CRC-32C does not cover those fields and is left
/// as the producer wrote it.
///
/// The frame checksum is verified first, so stamping never blesses a
/// damaged header with a fresh checksum. `buf` must hold at least the
/// headers ([`HEADER_LEN`] bytes); the records need not be there.
pub fn stamp(
    buf: &mut [u8],
    base_offset: u64,
    leader_epoch: i32,
    append_time: i64,
) -> Result<(), DecodeError> {
    BatchHeader::parse(buf, 0, &Limits::unlimited())?;
    put(buf, field::BASE_OFFSET, &base_offset.to_be_bytes());
    put(buf, field::LEADER_EPOCH, &leader_epoch.to_be_bytes());
    let time = append_time.clamp(0, MAX_APPEND_TIME) as u64;
    put(buf, field::APPEND_TIME, &time.to_le_bytes()[..6]);
    seal_frame(buf);
    Ok(())
}

/// Writes the frame header of a frame whose Kafka batch is in place from
/// byte [`FRAME_HEADER_LEN`] of `buf` (`buf.len() >= HEADER_LEN`, checked by
/// callers): length, version, no flags, unstamped append time, checksum.
pub(crate) fn write_frame_header(buf: &mut [u8], length: u32) {
    put(buf, field::LENGTH, &length.to_le_bytes());
    buf[field::MAGIC] = FORMAT_VERSION;
    buf[field::FLAGS] = 0;
    put(
        buf,
        field::APPEND_TIME,
        &UNSTAMPED_APPEND_TIME.to_le_bytes()[..6],
    );
    seal_frame(buf);
}

/// Writes the frame checksum of the headers at the start of `buf`.
fn seal_frame(buf: &mut [u8]) {
    let crc = crc32fast::hash(&buf[field::LENGTH..HEADER_LEN]);
    put(buf, field::FRAME_CRC, &crc.to_le_bytes());
}

#[inline]
pub(crate) fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

// Fixed-width reads of header fields. Callers pass a slice at least as long
// as the header and field constants inside it, so the indexing cannot fail.
#[inline]
fn read_array<const N: usize>(buf: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&buf[at..at + N]);
    out
}

#[inline]
fn read_le_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(read_array(buf, at))
}

#[inline]
fn read_le_u48(buf: &[u8], at: usize) -> u64 {
    let mut out = [0u8; 8];
    out[..6].copy_from_slice(&buf[at..at + 6]);
    u64::from_le_bytes(out)
}

#[inline]
pub(crate) fn read_be_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(read_array(buf, at))
}

#[inline]
pub(crate) fn read_be_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(read_array(buf, at))
}

#[inline]
pub(crate) fn read_be_u64(buf: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(read_array(buf, at))
}
