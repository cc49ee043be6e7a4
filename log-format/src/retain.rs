//! Rewriting a stored batch with only some of its records: what a log
//! cleaner (compaction) writes in place of a batch whose records were
//! superseded. [`retain`] keeps the records a predicate chooses, each with
//! its original offset and timestamp, in a new frame that is a valid Kafka
//! RecordBatch v2 (new CRC-32C, as Kafka's cleaner writes them): the same
//! base offset, leader epoch, append time, codec, timestamp type and
//! producer fields; the last offset delta becomes the last kept record's,
//! so the batch's offset range shrinks and the log has gaps where dropped
//! records were. Offsets never change.
//!
//! [`recompress`] is the other rewrite of a stored batch: the same records,
//! compressed (what a log writes in place of its cold segments' plain
//! batches).
//!
//! It does no I/O and decides nothing about which records go or which
//! batch is compressed: the caller does.

use bytes::{BufMut, Bytes, BytesMut};

use crate::builder::{KafkaFields, ProducerInfo, put_nullable, seal_new_frame};
use crate::codec::{ATTR_CODEC_MASK, Codec, compress};
use crate::error::BuildError;
use crate::header::{ATTR_DELETE_HORIZON, BatchHeader, HEADER_LEN, TimestampType, stamp};
use crate::record::Record;
use crate::varint;
use crate::view::Batch;

/// How [`retain`] writes the batch it keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetainOptions {
    /// Set this delete horizon (ms since the Unix epoch) on the new batch
    /// (attribute bit 6, Kafka's KIP-534): its base timestamp becomes the
    /// horizon and every record's timestamp delta is rewritten against it.
    /// `None` keeps the batch's own horizon, if it has one.
    pub delete_horizon: Option<i64>,
}

/// What [`retain`] made of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// Every record was kept and no horizon was set: the batch stays as it
    /// is (its bytes are not copied).
    Unchanged,
    /// Some records were kept: the new frame, stamped like the original.
    Rewritten(Bytes),
    /// No record was kept.
    Dropped,
}

/// Rewrites `batch` with the records `keep` chooses (see the module docs).
/// `buf` and `plain` are reusable scratch buffers (the frame, and the
/// records before compression).
///
/// # Errors
///
/// [`BuildError::Compression`] when the batch's codec cannot compress in
/// this build, [`BuildError::TimestampOutOfRange`] when a record's
/// timestamp cannot be written against the horizon, and
/// [`BuildError::FieldTooLong`] for records the format cannot describe
/// (never for records read from a valid batch).
pub fn retain(
    batch: &Batch,
    options: RetainOptions,
    buf: &mut BytesMut,
    plain: &mut BytesMut,
    mut keep: impl FnMut(&Record<'_>) -> bool,
) -> Result<Retained, BuildError> {
    let header = *batch.header();
    let horizon = options.delete_horizon.or(header.delete_horizon());
    let base_timestamp = horizon.unwrap_or(header.base_timestamp);
    let rebased = base_timestamp != header.base_timestamp;
    buf.clear();
    plain.clear();
    if header.codec == Codec::None {
        buf.put_bytes(0, HEADER_LEN);
    }
    let mut kept = 0u32;
    let mut last_delta = 0u32;
    let mut max_timestamp = i64::MIN;
    for record in batch.records() {
        if !keep(&record) {
            continue;
        }
        let out = if header.codec == Codec::None {
            &mut *buf
        } else {
            &mut *plain
        };
        put_record(out, &record, base_timestamp)?;
        kept += 1;
        last_delta = record.offset_delta();
        max_timestamp = max_timestamp.max(record.timestamp());
    }
    if kept == 0 {
        return Ok(Retained::Dropped);
    }
    if kept == header.record_count && !rebased && options.delete_horizon.is_none() {
        return Ok(Retained::Unchanged);
    }
    if header.codec != Codec::None {
        buf.put_bytes(0, HEADER_LEN);
        compress(header.codec, plain, buf).map_err(BuildError::Compression)?;
    }
    let mut attributes = header.attributes;
    if horizon.is_some() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let fields = KafkaFields {
        attributes,
        last_offset_delta: last_delta,
        base_timestamp,
        // A log-append-time batch's timestamps are its max timestamp.
        max_timestamp: match header.timestamp_type {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => max_timestamp,
        },
        producer: producer_of(&header),
        record_count: kept,
    };
    Ok(Retained::Rewritten(seal_like(buf, &fields, &header)))
}

/// Rewrites a plain batch with its records compressed by `codec`, every
/// other field as it was (offsets, timestamps, producer fields, stamps;
/// new CRC-32C), in `buf` (a reusable scratch buffer).
///
/// [`Retained::Unchanged`] when the batch is compressed already (by its
/// producer or an earlier rewrite), when `codec` is [`Codec::None`], and
/// when compression would not make it smaller; never
/// [`Retained::Dropped`].
///
/// # Errors
///
/// [`BuildError::Compression`] when `codec` cannot compress in this build.
pub fn recompress(batch: &Batch, codec: Codec, buf: &mut BytesMut) -> Result<Retained, BuildError> {
    let header = *batch.header();
    if header.codec != Codec::None || codec == Codec::None {
        return Ok(Retained::Unchanged);
    }
    let records = batch.bytes().get(HEADER_LEN..).unwrap_or_default();
    buf.clear();
    buf.put_bytes(0, HEADER_LEN);
    compress(codec, records, buf).map_err(BuildError::Compression)?;
    if buf.len() >= batch.bytes().len() {
        return Ok(Retained::Unchanged);
    }
    let fields = KafkaFields {
        attributes: (header.attributes & !ATTR_CODEC_MASK) | codec.id(),
        last_offset_delta: header.last_offset_delta,
        base_timestamp: header.base_timestamp,
        max_timestamp: header.max_timestamp,
        producer: producer_of(&header),
        record_count: header.record_count,
    };
    Ok(Retained::Rewritten(seal_like(buf, &fields, &header)))
}

/// The producer fields of a stored batch.
fn producer_of(header: &BatchHeader) -> ProducerInfo {
    ProducerInfo {
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
    }
}

/// Seals the new frame in `buf` (room for the headers, then the records)
/// with `fields`, stamped as the stored batch `header` was.
fn seal_like(buf: &mut BytesMut, fields: &KafkaFields, header: &BatchHeader) -> Bytes {
    seal_new_frame(buf, fields);
    let mut frame = buf.split();
    // Cannot fail: the frame was just sealed, with room for its headers.
    let stamped = stamp(
        &mut frame,
        header.base_offset,
        header.leader_epoch,
        header.append_time,
    );
    debug_assert!(stamped.is_ok(), "a sealed frame takes its stamps");
    frame.freeze()
}

/// Writes `record` as Kafka's `DefaultRecord`, its timestamp as a delta
/// from `base_timestamp`, its offset delta and headers as they were.
fn put_record(
    out: &mut BytesMut,
    record: &Record<'_>,
    base_timestamp: i64,
) -> Result<(), BuildError> {
    let Some(timestamp_delta) = record.timestamp().checked_sub(base_timestamp) else {
        return Err(BuildError::TimestampOutOfRange {
            base: base_timestamp,
            timestamp: record.timestamp(),
        });
    };
    let nullable_len = |field: Option<&[u8]>| match field {
        None => varint::len_i64(-1),
        Some(bytes) => varint::len_i64(bytes.len() as i64) + bytes.len(),
    };
    let inner = 1
        + varint::len_i64(timestamp_delta)
        + varint::len_i64(record.offset_delta().into())
        + nullable_len(record.key())
        + nullable_len(record.value())
        + varint::len_i64(record.header_count().into())
        + record.headers.len();
    if inner > i32::MAX as usize {
        return Err(BuildError::FieldTooLong {
            field: "record",
            len: inner,
        });
    }
    out.reserve(varint::len_i64(inner as i64) + inner);
    varint::put_i64(out, inner as i64);
    out.put_u8(0);
    varint::put_i64(out, timestamp_delta);
    varint::put_i64(out, record.offset_delta().into());
    put_nullable(out, record.key());
    put_nullable(out, record.value());
    varint::put_i64(out, record.header_count().into());
    out.put_slice(record.headers);
    Ok(())
}
