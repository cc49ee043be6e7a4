//! The record batch format of the commit log: the unit that is written,
//! stored, checksummed and sent over the wire. Since version 2 every batch
//! is a Kafka RecordBatch v2 (magic 2), byte for byte as Kafka producers
//! send it and consumers expect it, inside a small checked frame of ours.
//!
//! This crate encodes and decodes batches in memory. It does **no I/O**: it
//! never opens a file or a socket, and it knows nothing of segments,
//! indexes or offsets beyond the ones written in a batch.
//!
//! # Layout
//!
//! - [`BatchBuilder`] encodes records into a reusable buffer, compressed
//!   with a [`Codec`] or not.
//! - [`BatchView`] and [`Batch`] are verified, zero-copy views of one frame;
//!   their [`Record`]s borrow keys and values from it (or from its
//!   decompressed records); [`Batch::kafka_batch`] is the Kafka part.
//! - [`frame_kafka`] checks a Kafka batch from a producer and frames it.
//! - [`Scanner`] and [`BytesScanner`] walk a buffer of many frames and stop
//!   at a torn tail ([`Scanned::Incomplete`]) or damage ([`Scanned::Corrupt`]).
//! - [`check_checksums`] checks stored frames by their checksums alone.
//! - [`stamp`] sets the log-assigned fields in place.
//! - [`retain`] rewrites a stored batch with some of its records, at their
//!   original offsets (what a log cleaner writes).
//! - [`Limits`] bounds what a decoder accepts and decompresses.
//!
//! # Format specification, version 2
//!
//! A frame is our 16-byte frame header, **little-endian**, followed by one
//! Kafka RecordBatch v2, **big-endian** as Kafka defines it (Kafka's
//! `DefaultRecordBatch`); a segment file is frames back to back. Offsets
//! in the table are from the start of the frame; the Kafka batch starts at
//! byte 16.
//!
//! ## Batch header
//!
//! | offset | size | field               | type | meaning |
//! |-------:|-----:|---------------------|------|---------|
//! |      0 |    4 | `frame_crc`         | u32  | CRC-32 (IEEE) of bytes 4..77: the rest of our header and all of Kafka's |
//! |      4 |    4 | `length`            | u32  | frame length in bytes, headers included (= 28 + `batch_length`) |
//! |      8 |    1 | `magic`             | u8   | frame version, 2 |
//! |      9 |    1 | `flags`             | u8   | reserved, 0 |
//! |     10 |    6 | `append_time`       | u48  | server append time, ms since the Unix epoch; stamped by the log, all ones before |
//! |     16 |    8 | `base_offset`       | i64  | Kafka baseOffset: offset of the first record; stamped by the log |
//! |     24 |    4 | `batch_length`      | i32  | Kafka batchLength: bytes of the Kafka batch after this field |
//! |     28 |    4 | `leader_epoch`      | i32  | Kafka partitionLeaderEpoch: the log's epoch at append; stamped by the log, -1 before |
//! |     32 |    1 | `kafka_magic`       | i8   | Kafka magic, 2 |
//! |     33 |    4 | `kafka_crc`         | u32  | Kafka CRC-32C (Castagnoli) of bytes 37..`length` |
//! |     37 |    2 | `attributes`        | i16  | bits 0–2 codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd); bit 3 timestamp type (1 = log append time); bit 4 transactional, bit 5 control (both refused); bit 6 delete horizon (set by the log cleaner: `base_timestamp` is then the time its tombstones may go); others 0 |
//! |     39 |    4 | `last_offset_delta` | i32  | offset delta of the last record (≥ `record_count` − 1) |
//! |     43 |    8 | `base_timestamp`    | i64  | timestamp of the first record, ms since the Unix epoch |
//! |     51 |    8 | `max_timestamp`     | i64  | largest timestamp in the batch |
//! |     59 |    8 | `producer_id`       | i64  | idempotent producer id, -1 if none |
//! |     67 |    2 | `producer_epoch`    | i16  | idempotent producer epoch, -1 if none |
//! |     69 |    4 | `base_sequence`     | i32  | sequence of the first record, -1 if none |
//! |     73 |    4 | `record_count`      | i32  | number of records, ≥ 1 |
//! |     77 |      | records             |      | `record_count` records, compressed as a whole by the codec if one is set |
//!
//! ## Record
//!
//! Kafka's `DefaultRecord`; every integer is a zig-zag varint (`varint` for
//! 32-bit fields, `varlong` for 64-bit ones, as protobuf's `sint32` and
//! `sint64`).
//!
//! | field             | encoding | meaning |
//! |-------------------|----------|---------|
//! | `length`          | varint   | bytes of the record after this field |
//! | `attributes`      | i8       | unused, 0 |
//! | `timestamp_delta` | varlong  | timestamp minus `base_timestamp` |
//! | `offset_delta`    | varint   | offset minus `base_offset`; strictly increasing within a batch, 0, 1, 2, … as a producer sends it |
//! | `key_length`      | varint   | -1 for a null key |
//! | `key`             | bytes    | |
//! | `value_length`    | varint   | -1 for a null value (a tombstone) |
//! | `value`           | bytes    | |
//! | `header_count`    | varint   | |
//! | headers           |          | `header_count` × (varint key length, UTF-8 key, varint value length (-1 = null), value) |
//!
//! Overlong varint encodings are rejected.
//!
//! ## Checksums
//!
//! - **Kafka's CRC-32C** covers bytes 37 to the end: every field the
//!   producer sets and the records (compressed, if they are). The producer
//!   computes it and it is never recomputed, so it checks the batch end to
//!   end, from the producer's client to every consumer's.
//! - **The frame checksum** (CRC-32, IEEE, `crc32fast`) covers bytes 4..77:
//!   our fields and Kafka's whole header, including the fields the log
//!   stamps (`append_time`, `base_offset`, `leader_epoch`), which Kafka's
//!   CRC leaves out. A reader checks it before trusting any length, so a
//!   torn or damaged header is caught before its length sends the reader
//!   astray, and a reader can hop from header to header on verified fields.
//!   Stamping rewrites only the stamped fields and this checksum, never
//!   Kafka's.
//!
//! Decoding checks, in order: the frame version, the frame checksum, the
//! lengths (`length` > 77 and within [`Limits::max_batch_bytes`], and
//! `length` = 28 + `batch_length`), the flags, Kafka's magic, the
//! attributes (a known codec; no transaction or control bit; no unknown
//! bit), the record count (≥ 1, within [`Limits::max_records`]), the last
//! offset delta, that the whole frame is present (otherwise
//! [`DecodeError::Incomplete`]), Kafka's CRC-32C, then decompression
//! (bounded by [`Limits::max_uncompressed_bytes`]) and the structure of
//! every record (lengths in bounds, offset deltas strictly increasing up to
//! `last_offset_delta`, exactly `record_count` records, UTF-8 header
//! keys). A single flipped bit anywhere in a frame is always detected.
//!
//! ## Version policy
//!
//! The positions and meanings of `frame_crc`, `length` and `magic` are
//! fixed for every version. A reader checks `magic` first and refuses a
//! version it does not know ([`Defect::Version`], whose message names the
//! version found): version 1 (our own little-endian batch of earlier
//! builds) is refused; no data of it was ever deployed. A new layout gets a
//! new version number, and golden files of each version (`tests/data/v2/`)
//! are read back by the tests.
#![forbid(unsafe_code)]
#![deny(clippy::host_endian_bytes)]

mod builder;
mod codec;
mod error;
mod header;
mod limits;
mod record;
mod retain;
mod scan;
mod varint;
mod view;

pub use builder::{BatchBuilder, NewRecord, ProducerInfo, RecordHeader};
pub use codec::{ATTR_CODEC_MASK, Codec, CodecError};
pub use error::{BuildError, Corrupt, DecodeError, Defect};
pub use header::{
    ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, BatchHeader,
    FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, KAFKA_HEADER_LEN, KAFKA_LOG_OVERHEAD,
    KAFKA_MAGIC, MAX_APPEND_TIME, NO_LEADER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
    TimestampType, UNSTAMPED_OFFSET, field, stamp,
};
pub use limits::{
    DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_RECORDS, DEFAULT_MAX_UNCOMPRESSED_BYTES, Limits,
};
pub use record::{Headers, Record};
pub use retain::{RetainOptions, Retained, recompress, retain};
pub use scan::{BytesScanner, Scanned, Scanner};
pub use view::{Batch, BatchView, Records, check_checksums, frame_kafka};

/// The wall clock in the unit of every timestamp of a batch: milliseconds
/// since the Unix epoch (0 before 1970, saturating far in the future). The
/// one clock reading of the workspace: producers stamp records with it,
/// the log stamps append times with it.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
