//! Encoding records into a v2 frame: a Kafka RecordBatch v2 inside our
//! frame header.
//!
//! [`BatchBuilder`] writes each record straight into one reusable
//! [`BytesMut`] (or, for a compressed batch, into a second reusable buffer
//! that is compressed at [`finish`](BatchBuilder::finish)): sizes are
//! computed before anything is written, so there is no per-record
//! allocation and a refused record leaves the builder as it was. It
//! produces unstamped frames (base offset 0, no leader epoch, no append
//! time); the log stamps them with [`stamp`](crate::stamp). It does no I/O.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{Codec, compress};
use crate::error::BuildError;
use crate::header::{
    FRAME_HEADER_LEN, HEADER_LEN, KAFKA_LOG_OVERHEAD, KAFKA_MAGIC, NO_LEADER_EPOCH, NO_PRODUCER_ID,
    NO_SEQUENCE, UNSTAMPED_OFFSET, field, put, write_frame_header,
};
use crate::limits::Limits;
use crate::record::NULL_LEN;
use crate::varint;

/// A record header to encode: a UTF-8 key and a byte value that may be
/// null, as Kafka's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// The header's name.
    pub key: &'a str,
    /// The header's value, or `None` for a null value.
    pub value: Option<&'a [u8]>,
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

/// Encodes records into frames, reusing its buffers.
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
    /// The frame: headers, then the records (uncompressed batches) or,
    /// once finished, the compressed records.
    buf: BytesMut,
    /// The records of a compressed batch, before compression.
    plain: BytesMut,
    codec: Codec,
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
            plain: BytesMut::new(),
            codec: Codec::None,
            limits,
            producer: ProducerInfo::NONE,
            record_count: 0,
            base_timestamp: 0,
            max_timestamp: i64::MIN,
        }
    }

    /// Sets the compression codec of the batch being built and of every
    /// following one (default [`Codec::None`]). Records already added are
    /// kept.
    pub fn set_codec(&mut self, codec: Codec) {
        if codec == self.codec {
            return;
        }
        if self.record_count > 0 {
            match (self.codec, codec) {
                (Codec::None, _) => {
                    self.plain.clear();
                    self.plain.extend_from_slice(&self.buf[HEADER_LEN..]);
                    self.buf.clear();
                }
                (_, Codec::None) => {
                    self.buf.clear();
                    self.buf.put_bytes(0, HEADER_LEN);
                    self.buf.extend_from_slice(&self.plain);
                    self.plain.clear();
                }
                _ => {}
            }
        }
        self.codec = codec;
    }

    /// The compression codec of the batch being built.
    pub fn codec(&self) -> Codec {
        self.codec
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

    /// Length in bytes the frame would have if finished now without
    /// compression (0 when empty); a compressed batch is usually shorter.
    pub fn encoded_len(&self) -> usize {
        match (self.record_count, self.codec) {
            (0, _) => 0,
            (_, Codec::None) => self.buf.len(),
            _ => HEADER_LEN + self.plain.len(),
        }
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
        Ok(varint::len_i64(inner as i64) + inner)
    }

    /// Appends a record. On error nothing is written and the builder is
    /// unchanged. The batch is held to [`Limits::max_batch_bytes`] before
    /// compression (and to [`Limits::max_uncompressed_bytes`] when it is
    /// compressed), so a finished batch fits its limit whatever its codec
    /// achieves.
    pub fn push(&mut self, record: &NewRecord<'_>) -> Result<(), BuildError> {
        let max_records = self.limits.max_records.min(i32::MAX as u32);
        if self.record_count >= max_records {
            return Err(BuildError::TooManyRecords { limit: max_records });
        }
        let base_timestamp = if self.record_count == 0 {
            record.timestamp
        } else {
            self.base_timestamp
        };
        let offset_delta = self.record_count;
        let inner = record_inner_len(record, base_timestamp, offset_delta)?;
        let record_len = varint::len_i64(inner as i64) + inner;
        let would_be =
            (self.encoded_len().max(HEADER_LEN) as u64).saturating_add(record_len as u64);
        let limit = u64::from(self.limits.max_batch_bytes);
        let uncompressed_limit = u64::from(self.limits.max_uncompressed_bytes) + HEADER_LEN as u64;
        if would_be > limit || (self.codec != Codec::None && would_be > uncompressed_limit) {
            return Err(BuildError::BatchFull {
                would_be,
                limit: self.limits.max_batch_bytes,
            });
        }
        // Every check passed: from here on nothing can fail.
        if self.record_count == 0 {
            self.buf.clear();
            self.plain.clear();
            if self.codec == Codec::None {
                self.buf.reserve(HEADER_LEN + record_len);
                self.buf.put_bytes(0, HEADER_LEN);
            }
            self.base_timestamp = record.timestamp;
            self.max_timestamp = record.timestamp;
        }
        let buf = if self.codec == Codec::None {
            &mut self.buf
        } else {
            &mut self.plain
        };
        buf.reserve(record_len);
        let start_len = buf.len();
        varint::put_i64(buf, inner as i64);
        buf.put_u8(0); // record attributes, unused
        varint::put_i64(buf, record.timestamp.wrapping_sub(base_timestamp));
        varint::put_i64(buf, offset_delta.into());
        put_nullable(buf, record.key);
        put_nullable(buf, record.value);
        varint::put_i64(buf, record.headers.len() as i64);
        for header in record.headers {
            put_nullable(buf, Some(header.key.as_bytes()));
            put_nullable(buf, header.value);
        }
        debug_assert_eq!(buf.len() - start_len, record_len);
        self.record_count += 1;
        self.max_timestamp = self.max_timestamp.max(record.timestamp);
        Ok(())
    }

    /// Finishes the batch: compresses the records if a codec is set, fills
    /// in Kafka's header and CRC-32C and our frame header, and hands the
    /// frame out. The builder is then empty and ready for the next batch;
    /// its buffers' spare capacity is reused. On error the records are
    /// kept.
    pub fn finish(&mut self) -> Result<Bytes, BuildError> {
        if self.record_count == 0 {
            return Err(BuildError::Empty);
        }
        if self.codec != Codec::None {
            self.buf.clear();
            self.buf.put_bytes(0, HEADER_LEN);
            compress(self.codec, &self.plain, &mut self.buf).map_err(BuildError::Compression)?;
            let length = self.buf.len() as u64;
            if length > u64::from(self.limits.max_batch_bytes) {
                return Err(BuildError::BatchFull {
                    would_be: length,
                    limit: self.limits.max_batch_bytes,
                });
            }
        }
        let fields = KafkaFields {
            attributes: self.codec.id(),
            last_offset_delta: self.record_count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer: self.producer,
            record_count: self.record_count,
        };
        seal_new_frame(&mut self.buf, &fields);
        self.record_count = 0;
        self.producer = ProducerInfo::NONE;
        self.max_timestamp = i64::MIN;
        self.plain.clear();
        Ok(self.buf.split().freeze())
    }

    /// Drops the records added since the last `finish`.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.plain.clear();
        self.record_count = 0;
        self.producer = ProducerInfo::NONE;
        self.max_timestamp = i64::MIN;
    }
}

/// The Kafka header fields a new frame gets from whoever built its records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KafkaFields {
    pub(crate) attributes: u16,
    pub(crate) last_offset_delta: u32,
    pub(crate) base_timestamp: i64,
    pub(crate) max_timestamp: i64,
    pub(crate) producer: ProducerInfo,
    pub(crate) record_count: u32,
}

/// Fills in the headers of the frame in `buf` (`HEADER_LEN` bytes of room,
/// then the records as stored, `buf.len() <= u32::MAX`): Kafka's header
/// with `fields`, an unstamped base offset and leader epoch, Kafka's
/// CRC-32C, then our frame header.
pub(crate) fn seal_new_frame(buf: &mut BytesMut, fields: &KafkaFields) {
    let length = buf.len() as u32;
    let batch_length = length - (FRAME_HEADER_LEN + KAFKA_LOG_OVERHEAD) as u32;
    let header = &mut buf[..HEADER_LEN];
    put(header, field::BASE_OFFSET, &UNSTAMPED_OFFSET.to_be_bytes());
    put(header, field::BATCH_LENGTH, &batch_length.to_be_bytes());
    put(header, field::LEADER_EPOCH, &NO_LEADER_EPOCH.to_be_bytes());
    header[field::KAFKA_MAGIC] = KAFKA_MAGIC;
    put(header, field::ATTRIBUTES, &fields.attributes.to_be_bytes());
    put(
        header,
        field::LAST_OFFSET_DELTA,
        &fields.last_offset_delta.to_be_bytes(),
    );
    put(
        header,
        field::BASE_TIMESTAMP,
        &fields.base_timestamp.to_be_bytes(),
    );
    put(
        header,
        field::MAX_TIMESTAMP,
        &fields.max_timestamp.to_be_bytes(),
    );
    let producer = fields.producer;
    put(
        header,
        field::PRODUCER_ID,
        &producer.producer_id.to_be_bytes(),
    );
    put(
        header,
        field::PRODUCER_EPOCH,
        &producer.producer_epoch.to_be_bytes(),
    );
    put(
        header,
        field::BASE_SEQUENCE,
        &producer.base_sequence.to_be_bytes(),
    );
    put(
        header,
        field::RECORD_COUNT,
        &fields.record_count.to_be_bytes(),
    );
    let crc = crc32c::crc32c(&buf[field::KAFKA_CRC_START..]);
    put(buf, field::KAFKA_CRC, &crc.to_be_bytes());
    write_frame_header(buf, length);
}

#[inline]
pub(crate) fn put_nullable(buf: &mut BytesMut, field: Option<&[u8]>) {
    match field {
        None => varint::put_i64(buf, NULL_LEN.into()),
        Some(bytes) => {
            varint::put_i64(buf, bytes.len() as i64);
            buf.put_slice(bytes);
        }
    }
}

/// Length of a record after its own length prefix, with every field length
/// checked against what the format can describe (`i32::MAX`).
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
    let mut len = 1 + varint::len_i64(timestamp_delta) + varint::len_i64(offset_delta.into());
    len += nullable_len(record.key, "key")?;
    len += nullable_len(record.value, "value")?;
    let header_count =
        i32::try_from(record.headers.len()).map_err(|_too_many| BuildError::FieldTooLong {
            field: "header count",
            len: record.headers.len(),
        })?;
    len += varint::len_i64(header_count.into());
    for header in record.headers {
        len += nullable_len(Some(header.key.as_bytes()), "header key")?;
        len += nullable_len(header.value, "header value")?;
    }
    if len > i32::MAX as usize {
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
