//! The record batch format of the commit log: the unit that is written,
//! stored, checksummed and sent over the wire.
//!
//! This crate encodes and decodes batches in memory. It does **no I/O**: it
//! never opens a file or a socket, and it knows nothing of segments,
//! indexes or offsets beyond the ones written in a batch.
//!
//! # Layout
//!
//! - [`BatchBuilder`] encodes records into a reusable buffer.
//! - [`BatchView`] and [`Batch`] are verified, zero-copy views of one batch;
//!   their [`Record`]s borrow keys and values from it.
//! - [`Scanner`] and [`BytesScanner`] walk a buffer of many batches and stop
//!   at a torn tail ([`Scanned::Incomplete`]) or damage ([`Scanned::Corrupt`]).
//! - [`check_checksums`] checks stored batches by their CRCs alone.
//! - [`stamp`] sets the log-assigned fields in place.
//! - [`Limits`] bounds what a decoder accepts.
//!
//! # Format specification, version 1
//!
//! All integers are **little-endian**. A batch is a 72-byte header followed
//! by its records, back to back; a segment file is batches back to back.
//!
//! ## Batch header
//!
//! | offset | size | field               | type | meaning |
//! |-------:|-----:|---------------------|------|---------|
//! |      0 |    4 | `header_crc`        | u32  | CRC-32 of header bytes 4..72 |
//! |      4 |    4 | `length`            | u32  | batch length in bytes, header included (≥ 72) |
//! |      8 |    1 | `magic`             | u8   | format version, 1 |
//! |      9 |    1 | `reserved`          | u8   | 0 |
//! |     10 |    2 | `flags`             | u16  | reserved, 0 |
//! |     12 |    4 | `body_crc`          | u32  | CRC-32 of bytes 32..length |
//! |     16 |    8 | `base_offset`       | u64  | offset of the first record; stamped by the log |
//! |     24 |    8 | `append_time`       | i64  | server append time, ms since the Unix epoch; stamped by the log, -1 before |
//! |     32 |    2 | `attributes`        | u16  | bits 0–2: codec (0 = none); other bits reserved, 0 |
//! |     34 |    2 | `producer_epoch`    | i16  | idempotent producer epoch, -1 if none |
//! |     36 |    4 | `record_count`      | u32  | number of records, ≥ 1 |
//! |     40 |    4 | `last_offset_delta` | u32  | offset delta of the last record (≥ record_count − 1) |
//! |     44 |    4 | `base_sequence`     | i32  | idempotent producer sequence of the first record, -1 if none |
//! |     48 |    8 | `base_timestamp`    | i64  | producer timestamp of the first record, ms since the Unix epoch |
//! |     56 |    8 | `max_timestamp`     | i64  | largest producer timestamp in the batch |
//! |     64 |    8 | `producer_id`       | i64  | idempotent producer id, -1 if none |
//! |     72 |      | records             |      | `record_count` records |
//!
//! ## Record
//!
//! | field             | encoding | meaning |
//! |-------------------|----------|---------|
//! | `length`          | uvarint  | bytes of the record after this field |
//! | `attributes`      | u8       | reserved, 0 |
//! | `timestamp_delta` | varint   | producer timestamp minus `base_timestamp` |
//! | `offset_delta`    | uvarint  | offset minus `base_offset`; strictly increasing within a batch |
//! | `key_length`      | varint   | -1 for a null key |
//! | `key`             | bytes    | |
//! | `value_length`    | varint   | -1 for a null value (a tombstone) |
//! | `value`           | bytes    | |
//! | `header_count`    | uvarint  | |
//! | headers           |          | `header_count` × (uvarint key length, UTF-8 key, uvarint value length, value) |
//!
//! `uvarint` is unsigned LEB128 (at most 5 bytes for 32-bit fields, 10 for
//! 64-bit); `varint` is zig-zag then LEB128, as in protobuf. Overlong
//! encodings are rejected.
//!
//! ## Checksums
//!
//! Both are CRC-32 (IEEE, as computed by `crc32fast`).
//!
//! - The **body checksum** covers bytes 32 to the end: every field the
//!   producer sets (attributes, producer fields, counts, timestamps) and the
//!   records. The producer computes it and it is never recomputed, so it
//!   checks the batch end to end, from the producer to every reader.
//! - The **header checksum** covers bytes 4..72, including the body checksum
//!   and the fields the log stamps (`base_offset`, `append_time`). A reader
//!   checks it before trusting `length`, so a torn or damaged header is
//!   caught before its length sends the reader astray. Stamping rewrites
//!   only those two fields and this 60-byte checksum, never the body's.
//!
//! Decoding checks, in order: the version byte, the header checksum, the
//! length (≥ 72 and within [`Limits::max_batch_bytes`]), the reserved bits,
//! the codec, the record count (≥ 1, within [`Limits::max_records`]), that
//! the whole batch is present (otherwise [`DecodeError::Incomplete`]), the
//! body checksum, then the structure of every record (lengths in bounds,
//! offset deltas strictly increasing up to `last_offset_delta`, exactly
//! `record_count` records, UTF-8 header keys). A single flipped bit anywhere
//! in a batch is always detected.
//!
//! ## Version policy
//!
//! The positions and meanings of `header_crc`, `length` and `magic` are
//! fixed for every version. A reader checks `magic` first and refuses a
//! version it does not know ([`Defect::Version`]). A new layout gets a new
//! version number; readers keep reading every older version, and golden
//! files of each version (`tests/data/v1/`) are read back by the tests.
//! Compression codecs take the reserved attribute values 1–7 without a new
//! version; an unknown codec is refused ([`Defect::UnknownCodec`]).
#![forbid(unsafe_code)]
#![deny(clippy::host_endian_bytes, clippy::big_endian_bytes)]

mod builder;
mod error;
mod header;
mod limits;
mod record;
mod scan;
mod varint;
mod view;

pub use builder::{BatchBuilder, NewRecord, ProducerInfo, RecordHeader};
pub use error::{BuildError, Corrupt, DecodeError, Defect};
pub use header::{
    ATTR_CODEC_MASK, BatchHeader, Codec, FORMAT_VERSION, HEADER_LEN, NO_PRODUCER_ID, NO_SEQUENCE,
    NO_TIMESTAMP, UNSTAMPED_OFFSET, field, stamp,
};
pub use limits::{DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_RECORDS, Limits};
pub use record::{Headers, Record};
pub use scan::{BytesScanner, Scanned, Scanner};
pub use view::{Batch, BatchView, Records, check_checksums};

/// The wall clock in the unit of every timestamp of a batch: milliseconds
/// since the Unix epoch (0 before 1970, saturating far in the future). The
/// one clock reading of the workspace: producers stamp records with it,
/// the log stamps append times with it.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
