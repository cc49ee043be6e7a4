//! Verified, zero-copy views of one batch: [`BatchView`] borrows a byte
//! slice, [`Batch`] owns a [`Bytes`] handle; both hand out [`Record`]s that
//! borrow from the batch.
//!
//! A view only exists for bytes that passed every check (header checksum,
//! limits, body checksum, record structure), so iterating its records never
//! fails. This module does not scan buffers of many batches (`scan.rs`) and
//! does not build batches (`builder.rs`).

use bytes::Bytes;

use crate::error::{Corrupt, DecodeError, Defect};
use crate::header::{BatchHeader, Codec, HEADER_LEN, field};
use crate::limits::Limits;
use crate::record::{Record, parse_record};

/// Checks the batch at the start of `buf` completely and returns its header.
/// `position` is where `buf` starts in the caller's coordinates.
pub(crate) fn verify(
    buf: &[u8],
    position: u64,
    limits: &Limits,
) -> Result<BatchHeader, DecodeError> {
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
    let actual_crc = crc32fast::hash(&batch[field::BODY_START..]);
    if actual_crc != header.body_crc {
        return Err(corrupt(
            field::BODY_CRC,
            Defect::BodyChecksum,
            header.body_crc.into(),
            actual_crc.into(),
        ));
    }
    match header.codec {
        Codec::None => {}
    }
    let records = &batch[HEADER_LEN..];
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
        .map_err(|d| corrupt(HEADER_LEN + d.at, d.what, d.expected, d.found))?;
        count += 1;
        if count > header.record_count {
            return Err(corrupt(
                HEADER_LEN + record_at,
                Defect::RecordCount,
                header.record_count.into(),
                count.into(),
            ));
        }
        let delta = record.offset_delta();
        let min_delta = last_delta.map_or(0, |last| u64::from(last) + 1);
        if u64::from(delta) < min_delta {
            return Err(corrupt(
                HEADER_LEN + record_at,
                Defect::OffsetDelta,
                min_delta,
                delta.into(),
            ));
        }
        if delta > header.last_offset_delta {
            return Err(corrupt(
                HEADER_LEN + record_at,
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
    Ok(header)
}

/// Checks the batches back to back in `buf` by their checksums only: the
/// header rules and both CRCs, without walking the records. For data whose
/// structure was verified when it was written (a log's own segments): a
/// CRC match proves the bytes are those that passed. Returns the number of
/// batches; a buffer ending inside a batch is [`DecodeError::Incomplete`].
/// `position` is where `buf` starts in the caller's coordinates.
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
        let actual = crc32fast::hash(&batch[field::BODY_START..]);
        if actual != header.body_crc {
            return Err(DecodeError::corrupt(
                at,
                field::BODY_CRC,
                Defect::BodyChecksum,
                header.body_crc.into(),
                actual.into(),
            ));
        }
        pos += length;
        count += 1;
    }
    Ok(count)
}

/// A verified batch borrowed from a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct BatchView<'a> {
    bytes: &'a [u8],
    header: BatchHeader,
}

impl<'a> BatchView<'a> {
    /// Verifies the batch at the start of `buf` (which may hold more after
    /// it) and returns a view of exactly that batch. `position` is where
    /// `buf` starts in the caller's coordinates, used in errors.
    pub fn decode(buf: &'a [u8], position: u64, limits: &Limits) -> Result<Self, DecodeError> {
        let header = verify(buf, position, limits)?;
        Ok(BatchView {
            bytes: &buf[..header.length as usize],
            header,
        })
    }

    /// Wraps bytes that [`verify`] accepted (exactly one batch).
    pub(crate) fn from_verified(bytes: &'a [u8], header: BatchHeader) -> Self {
        BatchView { bytes, header }
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, header included, exactly as stored.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length of the batch in bytes, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a batch has a header and at least one record.
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

    /// The records, in offset order.
    pub fn records(&self) -> Records<'a> {
        Records {
            records: &self.bytes[HEADER_LEN..],
            pos: 0,
            base_offset: self.header.base_offset,
            base_timestamp: self.header.base_timestamp,
        }
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
}

impl Batch {
    /// Verifies that `bytes` hold exactly one batch.
    pub fn decode(bytes: Bytes, limits: &Limits) -> Result<Batch, DecodeError> {
        let header = verify(&bytes, 0, limits)?;
        if bytes.len() != header.length as usize {
            return Err(DecodeError::Corrupt(Corrupt {
                position: 0,
                field_position: u64::from(header.length),
                what: Defect::TrailingBytes,
                expected: header.length.into(),
                found: bytes.len() as u64,
            }));
        }
        Ok(Batch { bytes, header })
    }

    /// Wraps bytes that [`verify`] accepted, with their header.
    pub(crate) fn from_verified(bytes: Bytes, header: BatchHeader) -> Batch {
        Batch { bytes, header }
    }

    /// A borrowed view of this batch.
    pub fn view(&self) -> BatchView<'_> {
        BatchView {
            bytes: &self.bytes,
            header: self.header,
        }
    }

    /// The decoded header.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The batch's bytes, header included, exactly as stored.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Gives the bytes back.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// The records, in offset order.
    pub fn records(&self) -> Records<'_> {
        self.view().records()
    }

    /// A [`Bytes`] sharing the memory of `part`, a slice of this batch (a
    /// record's key or value), without copying; `None` if `part` does not
    /// lie within this batch.
    pub fn share(&self, part: &[u8]) -> Option<Bytes> {
        let start = self.bytes.as_ptr() as usize;
        let end = start + self.bytes.len();
        let part_start = part.as_ptr() as usize;
        if part.is_empty() {
            return Some(Bytes::new());
        }
        if part_start < start || part_start + part.len() > end {
            return None;
        }
        Some(self.bytes.slice_ref(part))
    }
}
