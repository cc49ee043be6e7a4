//! One record inside a batch, in Kafka's `DefaultRecord` layout: the parser
//! shared by validation and iteration, and the borrowed [`Record`] view.
//!
//! Every integer of a record is a zig-zag varint, as Kafka writes them.
//! Parsing checks every bound and never allocates; keys, values and header
//! fields are slices of the records area (the batch's bytes, or their
//! decompressed form). Encoding lives in `builder.rs`.

use crate::error::Defect;
use crate::varint::{self, VarintError};

/// A record key/value length stored as `-1`: the field is null.
pub(crate) const NULL_LEN: i32 = -1;

/// A record borrowed from a decoded batch. Keys, values and headers are
/// slices of the batch's bytes: nothing is copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub(crate) offset: u64,
    pub(crate) offset_delta: u32,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) header_count: u32,
    pub(crate) headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record's offset in the log: the batch's base offset plus the
    /// record's offset delta (only meaningful once the log stamped the batch).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The record's position within its batch's offset range.
    pub fn offset_delta(&self) -> u32 {
        self.offset_delta
    }

    /// The producer's timestamp of the record, ms since the Unix epoch.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The key, or `None` when null.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value, or `None` when null (a tombstone).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// Whether the value is null: a tombstone for its key.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Number of headers.
    pub fn header_count(&self) -> u32 {
        self.header_count
    }

    /// The headers, in the order they were written: a UTF-8 name and a
    /// value that may be null, as Kafka's headers.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            buf: self.headers,
            pos: 0,
            remaining: self.header_count,
        }
    }
}

/// Iterator over the `(key, value)` headers of a [`Record`]; a null value
/// is `None`.
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // The batch was validated before this view was handed out, so these
        // cannot fail; should they, the iteration ends instead of panicking.
        let (key, value) = parse_header(self.buf, &mut self.pos).ok()?;
        self.remaining -= 1;
        let key = std::str::from_utf8(key).ok()?;
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

/// What went wrong in a record, relative to the start of the records area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordDefect {
    pub(crate) what: Defect,
    pub(crate) at: usize,
    pub(crate) expected: u64,
    pub(crate) found: u64,
}

impl RecordDefect {
    fn framing(at: usize, expected: u64, found: u64) -> RecordDefect {
        RecordDefect {
            what: Defect::RecordFraming,
            at,
            expected,
            found,
        }
    }
}

/// Parses one record starting at `*pos` of `records` (the batch's records
/// area), advancing `*pos` past it. `check_utf8` validates header keys
/// (done once, when the batch is verified).
#[inline]
pub(crate) fn parse_record<'a>(
    records: &'a [u8],
    pos: &mut usize,
    base_offset: u64,
    base_timestamp: i64,
    check_utf8: bool,
) -> Result<Record<'a>, RecordDefect> {
    let start = *pos;
    let mut cursor = start;
    let length = varint::get_i32(records, &mut cursor)
        .map_err(|err| varint_defect(err, start, records.len() - start))?;
    let Ok(length) = usize::try_from(length) else {
        return Err(RecordDefect::framing(start, 0, length as u32 as u64));
    };
    let available = records.len() - cursor;
    if length > available {
        return Err(RecordDefect::framing(
            start,
            length as u64,
            available as u64,
        ));
    }
    let body = &records[cursor..cursor + length];
    let body_start = cursor;
    let mut p = 0usize;
    let at = |p: usize| body_start + p;
    let attributes = *body
        .first()
        .ok_or_else(|| RecordDefect::framing(at(0), 1, 0))?;
    if attributes != 0 {
        return Err(RecordDefect {
            what: Defect::ReservedBits,
            at: at(0),
            expected: 0,
            found: attributes.into(),
        });
    }
    p += 1;
    let timestamp_delta =
        varint::get_i64(body, &mut p).map_err(|err| varint_defect(err, at(p), length - p))?;
    let Some(timestamp) = base_timestamp.checked_add(timestamp_delta) else {
        return Err(RecordDefect {
            what: Defect::TimestampDelta,
            at: at(p),
            expected: 0,
            found: timestamp_delta as u64,
        });
    };
    let offset_at = p;
    let offset_delta =
        varint::get_i32(body, &mut p).map_err(|err| varint_defect(err, at(p), length - p))?;
    let Ok(offset_delta) = u32::try_from(offset_delta) else {
        return Err(RecordDefect {
            what: Defect::OffsetDelta,
            at: at(offset_at),
            expected: 0,
            found: offset_delta as u32 as u64,
        });
    };
    let key = nullable_bytes(body, &mut p, body_start)?;
    let value = nullable_bytes(body, &mut p, body_start)?;
    let count_at = p;
    let header_count =
        varint::get_i32(body, &mut p).map_err(|err| varint_defect(err, at(p), length - p))?;
    let Ok(header_count) = u32::try_from(header_count) else {
        return Err(RecordDefect::framing(
            at(count_at),
            0,
            header_count as u32 as u64,
        ));
    };
    let headers_start = p;
    for _ in 0..header_count {
        let header_at = p;
        let (key, _value) = parse_header(body, &mut p).map_err(|found| {
            RecordDefect::framing(at(header_at), (length - header_at) as u64, found)
        })?;
        if check_utf8 && let Err(err) = std::str::from_utf8(key) {
            return Err(RecordDefect {
                what: Defect::HeaderKeyUtf8,
                at: at(header_at),
                expected: 0,
                found: err.valid_up_to() as u64,
            });
        }
    }
    if p != length {
        return Err(RecordDefect::framing(start, length as u64, p as u64));
    }
    *pos = body_start + length;
    Ok(Record {
        offset: base_offset.wrapping_add(offset_delta.into()),
        offset_delta,
        timestamp,
        key,
        value,
        header_count,
        headers: &body[headers_start..p],
    })
}

/// Reads a zig-zag length (`-1` = null) and that many bytes.
#[inline]
fn nullable_bytes<'a>(
    body: &'a [u8],
    p: &mut usize,
    body_start: usize,
) -> Result<Option<&'a [u8]>, RecordDefect> {
    let at = body_start + *p;
    let len = varint::get_i32(body, p).map_err(|err| varint_defect(err, at, body.len() - *p))?;
    if len == NULL_LEN {
        return Ok(None);
    }
    let Ok(len) = usize::try_from(len) else {
        return Err(RecordDefect::framing(at, 0, len as u64));
    };
    let Some(bytes) = body.get(*p..).and_then(|rest| rest.get(..len)) else {
        return Err(RecordDefect::framing(
            at,
            len as u64,
            (body.len() - *p) as u64,
        ));
    };
    *p += len;
    Ok(Some(bytes))
}

/// Reads one header: varint key length (never null), key, varint value
/// length (`-1` = null), value. On failure returns the number of bytes that
/// were available.
#[inline]
fn parse_header<'a>(buf: &'a [u8], p: &mut usize) -> Result<(&'a [u8], Option<&'a [u8]>), u64> {
    let available = buf.len().saturating_sub(*p) as u64;
    let mut cursor = *p;
    let key = sized(buf, &mut cursor).ok_or(available)?.ok_or(available)?;
    let value = sized(buf, &mut cursor).ok_or(available)?;
    *p = cursor;
    Ok((key, value))
}

/// A zig-zag length and that many bytes: `Some(None)` for a null (`-1`),
/// `None` when malformed.
#[inline]
fn sized<'a>(buf: &'a [u8], p: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = varint::get_i32(buf, p).ok()?;
    if len == NULL_LEN {
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    let bytes = buf.get(*p..)?.get(..len)?;
    *p += len;
    Some(Some(bytes))
}

fn varint_defect(err: VarintError, at: usize, available: usize) -> RecordDefect {
    match err {
        VarintError::Truncated => RecordDefect::framing(at, available as u64 + 1, available as u64),
        VarintError::Overflow => RecordDefect::framing(at, 0, available as u64),
    }
}
