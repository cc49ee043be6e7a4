//! Encoding records into a batch.
//!
//! [`BatchBuilder`] writes each record straight into one reusable
//! [`BytesMut`]: sizes are computed before anything is written, so there is
//! no per-record allocation and a refused record leaves the builder as it
//! was. It produces unstamped batches (base offset 0, no append time); the
//! log stamps them with [`stamp`](crate::stamp). It does no I/O.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::BuildError;
use crate::header::{
    FORMAT_VERSION, HEADER_LEN, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, UNSTAMPED_OFFSET, field,
    seal_header,
};
use crate::limits::Limits;
use crate::record::NULL_LEN;
use crate::varint;

/// A record header to encode: a UTF-8 key and a byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// The header's name.
    pub key: &'a str,
    /// The header's value.
    pub value: &'a [u8],
}

/// A record to encode. Borrowed: the builder copies the bytes into the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewRecord<'a> {
    /// The producer's timestamp, ms since the Unix epoch.
    pub timestamp: i64,
    /// The key, or `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// The headers, in order.
    pub headers: &'a [RecordHeader<'a>],
}

impl<'a> NewRecord<'a> {
    /// A record with a value, no key and no headers.
    pub fn value(timestamp: i64, value: &'a [u8]) -> Self {
        NewRecord {
            timestamp,
            key: None,
            value: Some(value),
            headers: &[],
        }
    }

    /// A record with a key and a value and no headers.
    pub fn keyed(timestamp: i64, key: &'a [u8], value: &'a [u8]) -> Self {
        NewRecord {
            timestamp,
            key: Some(key),
            value: Some(value),
            headers: &[],
        }
    }
}

/// The idempotent producer's identity for one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Producer id, assigned by the log.
    pub producer_id: i64,
    /// Producer epoch; a newer epoch fences older producers with the same id.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record.
    pub base_sequence: i32,
}

impl ProducerInfo {
    /// No idempotent producer: id, epoch and sequence are all `-1`.
    pub const NONE: ProducerInfo = ProducerInfo {
        producer_id: NO_PRODUCER_ID,
        producer_epoch: NO_SEQUENCE as i16,
        base_sequence: NO_SEQUENCE,
    };
}

impl Default for ProducerInfo {
    fn default() -> Self {
        ProducerInfo::NONE
    }
}

/// Encodes records into batches, reusing one buffer.
///
/// ```
/// use log_format::{BatchBuilder, Batch, Limits, NewRecord};
///
/// let mut builder = BatchBuilder::new(Limits::default());
/// builder.push(&NewRecord::keyed(1_700_000_000_000, b"k", b"hello"))?;
/// builder.push(&NewRecord::value(1_700_000_000_001, b"world"))?;
/// let bytes = builder.finish()?;
///
/// let batch = Batch::decode(bytes, &Limits::default())?;
/// let values: Vec<_> = batch.records().map(|r| r.value()).collect();
/// assert_eq!(values, [Some(&b"hello"[..]), Some(&b"world"[..])]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    limits: Limits,
    producer: ProducerInfo,
    record_count: u32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// A builder that refuses records past `limits`.
    pub fn new(limits: Limits) -> Self {
        Self::with_buffer(BytesMut::new(), limits)
    }

    /// A builder that encodes into `buf` (cleared first), e.g. one with
    /// capacity for a whole batch.
    pub fn with_buffer(mut buf: BytesMut, limits: Limits) -> Self {
        buf.clear();
        BatchBuilder {
            buf,
            limits,
            producer: ProducerInfo::NONE,
            record_count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Sets the idempotent producer fields of the batch being built. They
    /// are reset to [`ProducerInfo::NONE`] by [`finish`](Self::finish).
    pub fn set_producer(&mut self, producer: ProducerInfo) {
        self.producer = producer;
    }

    /// Number of records in the batch being built.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// Whether no record was added since the last `finish`.
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// Length in bytes the batch would have if finished now (0 when empty).
    pub fn encoded_len(&self) -> usize {
        self.buf.len()
    }

    /// Length in bytes that `record` takes in a batch whose base timestamp
    /// is `base_timestamp` and where it has offset delta `offset_delta`.
    /// Useful to decide when to start a new batch.
    pub fn record_len(
        record: &NewRecord<'_>,
        base_timestamp: i64,
        offset_delta: u32,
    ) -> Result<usize, BuildError> {
        let inner = record_inner_len(record, base_timestamp, offset_delta)?;
        Ok(varint::len_u64(inner as u64) + inner)
    }

    /// Appends a record. On error nothing is written and the builder is
    /// unchanged.
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<(), BuildError> {
        if self.record_count >= self.limits.max_records {
            return Err(BuildError::TooManyRecords {
                limit: self.limits.max_records,
            });
        }
        let base_timestamp = if self.record_count == 0 {
            record.timestamp
        } else {
            self.base_timestamp
        };
        let offset_delta = self.record_count;
        let inner = record_inner_len(record, base_timestamp, offset_delta)?;
        let record_len = varint::len_u64(inner as u64) + inner;
        let current = if self.record_count == 0 {
            HEADER_LEN
        } else {
            self.buf.len()
        };
        let would_be = (current as u64).saturating_add(record_len as u64);
        if would_be > u64::from(self.limits.max_batch_bytes) {
            return Err(BuildError::BatchFull {
                would_be,
                limit: self.limits.max_batch_bytes,
            });
        }
        // Every check passed: from here on nothing can fail.
        if self.record_count == 0 {
            self.buf.clear();
            self.buf.reserve(HEADER_LEN + record_len);
            self.buf.put_bytes(0, HEADER_LEN);
            self.base_timestamp = record.timestamp;
            self.max_timestamp = record.timestamp;
        } else {
            self.buf.reserve(record_len);
        }
        let start_len = self.buf.len();
        let buf = &mut self.buf;
        varint::put_u64(buf, inner as u64);
        buf.put_u8(0); // record attributes, reserved
        varint::put_i64(buf, record.timestamp.wrapping_sub(base_timestamp));
        varint::put_u64(buf, offset_delta.into());
        put_nullable(buf, record.key);
        put_nullable(buf, record.value);
        varint::put_u64(buf, record.headers.len() as u64);
        for header in record.headers {
            varint::put_u64(buf, header.key.len() as u64);
            buf.put_slice(header.key.as_bytes());
            varint::put_u64(buf, header.value.len() as u64);
            buf.put_slice(header.value);
        }
        debug_assert_eq!(self.buf.len() - start_len, record_len);
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        Ok(())
    }

    /// Finishes the batch: fills in the header and both checksums and hands
    /// the bytes out. The builder is then empty and ready for the next
    /// batch; its buffer's spare capacity is reused.
    pub fn finish(&mut self) -> Result<Bytes, BuildError> {
        if self.record_count == 0 {
            return Err(BuildError::Empty);
        }
        let length = self.buf.len() as u32; // <= max_batch_bytes, checked in push
        let producer = self.producer;
        let header = &mut self.buf[..HEADER_LEN];
        put_at(header, field::LENGTH, &length.to_le_bytes());
        header[field::MAGIC] = FORMAT_VERSION;
        header[field::RESERVED] = 0;
        put_at(header, field::FLAGS, &0u16.to_le_bytes());
        put_at(header, field::BASE_OFFSET, &UNSTAMPED_OFFSET.to_le_bytes());
        put_at(header, field::APPEND_TIME, &NO_TIMESTAMP.to_le_bytes());
        put_at(header, field::ATTRIBUTES, &0u16.to_le_bytes());
        put_at(
            header,
            field::PRODUCER_EPOCH,
            &producer.producer_epoch.to_le_bytes(),
        );
        put_at(
            header,
            field::RECORD_COUNT,
            &self.record_count.to_le_bytes(),
        );
        put_at(
            header,
            field::LAST_OFFSET_DELTA,
            &(self.record_count - 1).to_le_bytes(),
        );
        put_at(
            header,
            field::BASE_SEQUENCE,
            &producer.base_sequence.to_le_bytes(),
        );
        put_at(
            header,
            field::BASE_TIMESTAMP,
            &self.base_timestamp.to_le_bytes(),
        );
        put_at(
            header,
            field::MAX_TIMESTAMP,
            &self.max_timestamp.to_le_bytes(),
        );
        put_at(
            header,
            field::PRODUCER_ID,
            &producer.producer_id.to_le_bytes(),
        );
        let body_crc = crc32fast::hash(&self.buf[field::BODY_START..]);
        put_at(&mut self.buf, field::BODY_CRC, &body_crc.to_le_bytes());
        seal_header(&mut self.buf);
        self.record_count = 0;
        self.producer = ProducerInfo::NONE;
        self.max_timestamp = i64::MIN;
        Ok(self.buf.split().freeze())
    }

    /// Drops the records added since the last `finish`.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.record_count = 0;
        self.producer = ProducerInfo::NONE;
        self.max_timestamp = i64::MIN;
    }
}

#[inline]
fn put_at(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

#[inline]
fn put_nullable(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => varint::put_i64(buf, NULL_LEN.into()),
        Some(bytes) => {
            varint::put_i64(buf, bytes.len() as i64);
            buf.put_slice(bytes);
        }
    }
}

/// Length of a record after its own length prefix, with every field length
/// checked against what the format can describe.
fn record_inner_len(
    record: &NewRecord<'_>,
    base_timestamp: i64,
    offset_delta: u32,
) -> Result<usize, BuildError> {
    let Some(timestamp_delta) = record.timestamp.checked_sub(base_timestamp) else {
        return Err(BuildError::TimestampOutOfRange {
            base: base_timestamp,
            timestamp: record.timestamp,
        });
    };
    let mut len = 1 + varint::len_i64(timestamp_delta) + varint::len_u64(offset_delta.into());
    len += nullable_len(record.key, "key")?;
    len += nullable_len(record.value, "value")?;
    let header_count =
        u32::try_from(record.headers.len()).map_err(|_too_many| BuildError::FieldTooLong {
            field: "header count",
            len: record.headers.len(),
        })?;
    len += varint::len_u64(header_count.into());
    for header in record.headers {
        len += sized_len(header.key.len(), "header key")?;
        len += sized_len(header.value.len(), "header value")?;
    }
    if len > u32::MAX as usize {
        return Err(BuildError::FieldTooLong {
            field: "record",
            len,
        });
    }
    Ok(len)
}

fn nullable_len(field: Option<&[u8]>, name: &'static str) -> Result<usize, BuildError> {
    match field {
        None => Ok(varint::len_i64(NULL_LEN.into())),
        Some(bytes) if bytes.len() <= i32::MAX as usize => {
            Ok(varint::len_i64(bytes.len() as i64) + bytes.len())
        }
        Some(bytes) => Err(BuildError::FieldTooLong {
            field: name,
            len: bytes.len(),
        }),
    }
}

fn sized_len(len: usize, name: &'static str) -> Result<usize, BuildError> {
    if len > u32::MAX as usize {
        return Err(BuildError::FieldTooLong { field: name, len });
    }
    Ok(varint::len_u64(len as u64) + len)
}
