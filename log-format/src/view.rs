//! Verified, zero-copy views of one batch: [`BatchView`] borrows a byte
//! slice, [`Batch`] owns a [`Bytes`] handle; both hand out [`Record`]s that
//! borrow from the batch.
//!
//! A view only exists for bytes that passed every check (frame checksum,
//! limits, Kafka's CRC-32C, record structure), so iterating its records
//! never fails. The records of a compressed batch are decompressed once,
//! when it is verified, into a buffer the view owns; the stored bytes stay
//! as they are. Also here: [`frame_kafka`], which checks a Kafka batch from
//! a producer and frames it. This module does not scan buffers of many
//! batches (`scan.rs`) and does not build batches (`builder.rs`).

use bytes::{Bytes, BytesMut};

use crate::codec::{Codec, CodecError, decompress};
use crate::error::{Corrupt, DecodeError, Defect};
use crate::header::{
    BatchHeader, FRAME_HEADER_LEN, KAFKA_HEADER_LEN, KAFKA_LOG_OVERHEAD, field, read_be_u32,
    write_frame_header,
};
use crate::limits::Limits;
use crate::record::{Record, parse_record};

/// What [`verify`] found: the header, and the decompressed records of a
/// compressed batch (`None` when the records are stored as they are).
pub(crate) type Verified = (BatchHeader, Option<Bytes>);

/// Checks the frame at the start of `buf` completely and returns its header
/// (and its decompressed records, if compressed). `position` is where `buf`
/// starts in the caller's coordinates. `dense`: the offset deltas must be
/// exactly 0, 1, 2, … (a batch from a producer, before any compaction).
pub(crate) fn verify(
    buf: &[u8],
    position: u64,
    limits: &Limits,
    dense: bool,
) -> Result<Verified, DecodeError> {
    let header = BatchHeader::parse(buf, position, limits)?;
    let length = header.length as usize;
    let Some(batch) = buf.get(..length) else {
        return Err(DecodeError::Incomplete {
            needed: length - buf.len(),
        });
    };
    let corrupt = |at: usize, what: Defect, expected: u64, found: u64| {
        DecodeError::corrupt(position, at, what, expected, found)
    };
    let actual_crc = crc32c::crc32c(&batch[field::KAFKA_CRC_START..]);
    if actual_crc != header.kafka_crc {
        return Err(corrupt(
            field::KAFKA_CRC,
            Defect::BodyChecksum,
            header.kafka_crc.into(),
            actual_crc.into(),
        ));
    }
    let stored = &batch[field::RECORDS..];
    let decompressed = match header.codec {
        Codec::None => None,
        codec => {
            let limit = limits.max_uncompressed_bytes as usize;
            let mut out = Vec::new();
            decompress(codec, stored, limit, &mut out).map_err(|e| match e {
                CodecError::TooLarge { limit } => corrupt(
                    field::RECORDS,
                    Defect::UncompressedTooLarge,
                    limit as u64,
                    limit as u64 + 1,
                ),
                CodecError::Unsupported { codec } => corrupt(
                    field::ATTRIBUTES,
                    Defect::UnsupportedCodec,
                    0,
                    codec.id().into(),
                ),
                _ => corrupt(field::RECORDS, Defect::Decompression, 0, codec.id().into()),
            })?;
            Some(Bytes::from(out))
        }
    };
    // Positions inside decompressed records cannot be mapped to stored
    // bytes: their defects point at the start of the records.
    let (records, at_base) = match &decompressed {
        None => (stored, Some(field::RECORDS)),
        Some(bytes) => (&bytes[..], None),
    };
    let at = |p: usize| at_base.map_or(field::RECORDS, |base| base + p);
    let mut pos = 0usize;
    let mut count: u32 = 0;
    let mut last_delta: Option<u32> = None;
    while pos < records.len() {
        let record_at = pos;
        let record = parse_record(
            records,
            &mut pos,
            header.base_offset,
            header.base_timestamp,
            true,
        )
        .map_err(|d| corrupt(at(d.at), d.what, d.expected, d.found))?;
        count += 1;
        if count > header.record_count {
            return Err(corrupt(
                at(record_at),
                Defect::RecordCount,
                header.record_count.into(),
                count.into(),
            ));
        }
        let delta = record.offset_delta();
        let min_delta = last_delta.map_or(0, |last| u64::from(last) + 1);
        let out_of_order = u64::from(delta) < min_delta;
        if out_of_order || (dense && u64::from(delta) != min_delta) {
            return Err(corrupt(
                at(record_at),
                Defect::OffsetDelta,
                min_delta,
                delta.into(),
            ));
        }
        if delta > header.last_offset_delta {
            return Err(corrupt(
                at(record_at),
                Defect::OffsetDelta,
                header.last_offset_delta.into(),
                delta.into(),
            ));
        }
        last_delta = Some(delta);
    }
    if count != header.record_count {
        return Err(corrupt(
            field::RECORD_COUNT,
            Defect::RecordCount,
            header.record_count.into(),
            count.into(),
        ));
    }
    if last_delta != Some(header.last_offset_delta) {
        return Err(corrupt(
            field::LAST_OFFSET_DELTA,
            Defect::RecordCount,
            header.last_offset_delta.into(),
            last_delta.map_or(0, u64::from),
        ));
    }
    Ok((header, decompressed))
}

/// Checks the frames back to back in `buf` by their checksums only: the
/// header rules, the frame checksum and Kafka's CRC-32C, without walking
/// (or decompressing) the records. For data whose structure was verified
/// when it was written (a log's own segments): a CRC match proves the bytes
/// are those that passed. Returns the number of batches; a buffer ending
/// inside a batch is [`DecodeError::Incomplete`]. `position` is where `buf`
/// starts in the caller's coordinates.
pub fn check_checksums(buf: &[u8], position: u64) -> Result<usize, DecodeError> {
    let limits = Limits::unlimited();
    let mut pos = 0usize;
    let mut count = 0usize;
    while pos < buf.len() {
        let at = position + pos as u64;
        let header = BatchHeader::parse(&buf[pos..], at, &limits)?;
        let length = header.length as usize;
        let Some(batch) = buf[pos..].get(..length) else {
            return Err(DecodeError::Incomplete {
                needed: length - (buf.len() - pos),
            });
        };
        let actual = crc32c::crc32c(&batch[field::KAFKA_CRC_START..]);
        if actual != header.kafka_crc {
            return Err(DecodeError::corrupt(
                at,
                field::KAFKA_CRC,
                Defect::BodyChecksum,
                header.kafka_crc.into(),
                actual.into(),
            ));
        }
        pos += length;
        count += 1;
    }
    Ok(count)
}

/// Checks a Kafka RecordBatch v2 as a producer sends it — exactly one
/// batch filling `kafka`: its lengths, magic, attributes, CRC-32C, limits,
/// and records whose offset deltas are 0, 1, 2, … — and frames it: the
/// unstamped v2 frame around a copy of the bytes, ready for the log to
/// stamp. Positions in an error are relative to `kafka`.
pub fn frame_kafka(kafka: &[u8], limits: &Limits) -> Result<Bytes, DecodeError> {
    let shift = |e: DecodeError| match e {
        DecodeError::Corrupt(c) => DecodeError::Corrupt(Corrupt {
            position: c.position.saturating_sub(FRAME_HEADER_LEN as u64),
            field_position: c.field_position.saturating_sub(FRAME_HEADER_LEN as u64),
            ..c
        }),
        incomplete => incomplete,
    };
    let Some(prefix) = kafka.get(..KAFKA_HEADER_LEN) else {
        return Err(DecodeError::Incomplete {
            needed: KAFKA_HEADER_LEN - kafka.len(),
        });
    };
    let batch_length = u64::from(read_be_u32(prefix, field::BATCH_LENGTH - field::KAFKA));
    let declared = batch_length + KAFKA_LOG_OVERHEAD as u64;
    if declared != kafka.len() as u64 {
        let what = if declared > kafka.len() as u64 {
            Defect::BatchLength
        } else {
            Defect::TrailingBytes
        };
        return Err(DecodeError::corrupt(
            0,
            field::BATCH_LENGTH - field::KAFKA,
            what,
            kafka.len() as u64 - KAFKA_LOG_OVERHEAD.min(kafka.len()) as u64,
            batch_length,
        ));
    }
    let length = kafka.len() as u64 + FRAME_HEADER_LEN as u64;
    if length > u64::from(limits.max_batch_bytes) {
        return Err(DecodeError::corrupt(
            0,
            0,
            Defect::BatchTooLarge,
            limits.max_batch_bytes.into(),
            length,
        ));
    }
    let mut frame = BytesMut::with_capacity(length as usize);
    frame.resize(FRAME_HEADER_LEN, 0);
    frame.extend_from_slice(kafka);
    write_frame_header(&mut frame, length as u32);
    verify(&frame, 0, limits, true).map_err(shift)?;
    Ok(frame.freeze())
}

/// A verified batch borrowed from a byte slice.
#[derive(Debug, Clone)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
    header: BatchHeader,
    /// The decompressed records of a compressed batch.
    decompressed: Option<Bytes>,
}

impl<'a> BatchView<'a> {
    /// Verifies the frame at the start of `buf` (which may hold more after
    /// it) and returns a view of exactly that frame. `position` is where
    /// `buf` starts in the caller's coordinates, used in errors.
    pub fn decode(buf: &'a [u8], position: u64, limits: &Limits) -> Result<Self, DecodeError> {
        let (header, decompressed) = verify(buf, position, limits, false)?;
        Ok(BatchView {
            bytes: &buf[..header.length as usize],
            header,
            decompressed,
        })
    }

    /// Wraps bytes that [`verify`] accepted (exactly one frame).
    pub(crate) fn from_verified(bytes: &'a [u8], (header, decompressed): Verified) -> Self {
        BatchView {
            bytes,
            header,
            decompressed,
        }
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The frame's bytes, headers included, exactly as stored.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The Kafka RecordBatch v2 inside the frame, exactly as stored: what a
    /// Kafka Fetch response carries.
    pub fn kafka_batch(&self) -> &'a [u8] {
        &self.bytes[FRAME_HEADER_LEN..]
    }

    /// Length of the frame in bytes, headers included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a batch has headers and at least one record.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> u64 {
        self.header.base_offset
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> u64 {
        self.header.last_offset()
    }

    /// Number of records.
    pub fn record_count(&self) -> u32 {
        self.header.record_count
    }

    /// Server append time, ms since the Unix epoch.
    pub fn append_time(&self) -> i64 {
        self.header.append_time
    }

    /// The records, in offset order (decompressed, for a compressed batch).
    pub fn records(&self) -> Records<'_> {
        Records::of(self.bytes, self.decompressed.as_ref(), &self.header)
    }
}

/// Iterator over the records of a verified batch.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    records: &'a [u8],
    pos: usize,
    base_offset: u64,
    base_timestamp: i64,
}

impl<'a> Records<'a> {
    /// The records of a verified frame: its decompressed records when it
    /// has them, else its own from byte 77.
    fn of(frame: &'a [u8], decompressed: Option<&'a Bytes>, header: &BatchHeader) -> Self {
        let records = match decompressed {
            Some(bytes) => &bytes[..],
            None => &frame[field::RECORDS..],
        };
        Records {
            records,
            pos: 0,
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    #[inline]
    fn next(&mut self) -> Option<Record<'a>> {
        if self.pos >= self.records.len() {
            return None;
        }
        // The batch was verified when the view was made; a failure here is
        // impossible, and ends the iteration rather than panicking.
        parse_record(
            self.records,
            &mut self.pos,
            self.base_offset,
            self.base_timestamp,
            false,
        )
        .ok()
    }
}

/// A verified batch owning its bytes through a reference-counted [`Bytes`]:
/// cheap to clone, to keep, and to slice keys and values out of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    bytes: Bytes,
    header: BatchHeader,
    /// The decompressed records of a compressed batch.
    decompressed: Option<Bytes>,
}

impl Batch {
    /// Verifies that `bytes` hold exactly one frame.
    pub fn decode(bytes: Bytes, limits: &Limits) -> Result<Batch, DecodeError> {
        let (header, decompressed) = verify(&bytes, 0, limits, false)?;
        if bytes.len() != header.length as usize {
            return Err(DecodeError::Corrupt(Corrupt {
                position: 0,
                field_position: u64::from(header.length),
                what: Defect::TrailingBytes,
                expected: header.length.into(),
                found: bytes.len() as u64,
            }));
        }
        Ok(Batch {
            bytes,
            header,
            decompressed,
        })
    }

    /// Wraps bytes that [`verify`] accepted, with what it found.
    pub(crate) fn from_verified(bytes: Bytes, (header, decompressed): Verified) -> Batch {
        Batch {
            bytes,
            header,
            decompressed,
        }
    }

    /// A borrowed view of this batch.
    pub fn view(&self) -> BatchView<'_> {
        BatchView {
            bytes: &self.bytes,
            header: self.header,
            decompressed: self.decompressed.clone(),
        }
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The frame's bytes, headers included, exactly as stored.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The Kafka RecordBatch v2 inside the frame, exactly as stored.
    pub fn kafka_batch(&self) -> &[u8] {
        &self.bytes[FRAME_HEADER_LEN..]
    }

    /// Gives the bytes back.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The records, in offset order (decompressed, for a compressed batch).
    pub fn records(&self) -> Records<'_> {
        Records::of(&self.bytes, self.decompressed.as_ref(), &self.header)
    }

    /// A [`Bytes`] sharing the memory of `part`, a slice of this batch or
    /// of its decompressed records (a record's key or value), without
    /// copying; `None` if `part` lies in neither.
    pub fn share(&self, part: &[u8]) -> Option<Bytes> {
        if part.is_empty() {
            return Some(Bytes::new());
        }
        let within = |buf: &Bytes| {
            let start = buf.as_ptr() as usize;
            let part_start = part.as_ptr() as usize;
            part_start >= start && part_start + part.len() <= start + buf.len()
        };
        if within(&self.bytes) {
            return Some(self.bytes.slice_ref(part));
        }
        match &self.decompressed {
            Some(d) if within(d) => Some(d.slice_ref(part)),
            _ => None,
        }
    }
}
