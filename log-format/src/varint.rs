//! Variable-length integers: unsigned LEB128 and zig-zag signed, as in
//! protobuf and Kafka's record v2 (which writes every integer of a record
//! zig-zag).
//!
//! Decoding works on a byte slice and a cursor, checks every bound before
//! reading, and rejects encodings longer than the type allows (so a run of
//! `0x80` bytes cannot make it loop or overflow). It does not allocate.

use bytes::BufMut;

/// The longest encoding of a `u32`.
pub(crate) const MAX_LEN_U32: usize = 5;
/// The longest encoding of a `u64`.
pub(crate) const MAX_LEN_U64: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The slice ended inside the varint.
    Truncated,
    /// The encoding is longer than the type allows or overflows it.
    Overflow,
}

/// Number of bytes `value` takes as an unsigned varint.
#[inline]
pub(crate) fn len_u64(value: u64) -> usize {
    // 1 byte per started group of 7 bits; zero still takes one byte.
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Number of bytes `value` takes as a zig-zag varint.
#[inline]
pub(crate) fn len_i64(value: i64) -> usize {
    len_u64(zigzag(value))
}

#[inline]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline]
fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// Appends `value` as an unsigned varint.
#[inline]
pub(crate) fn put_u64(buf: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        buf.put_u8((value as u8) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

/// Appends `value` as a zig-zag varint.
#[inline]
pub(crate) fn put_i64(buf: &mut impl BufMut, value: i64) {
    put_u64(buf, zigzag(value));
}

/// Reads an unsigned varint of at most `max_len` bytes at `*pos`, advancing it.
#[inline]
fn get(buf: &[u8], pos: &mut usize, max_len: usize) -> Result<u64, VarintError> {
    let mut result: u64 = 0;
    let mut shift = 0u32;
    let mut i = *pos;
    loop {
        let Some(&byte) = buf.get(i) else {
            return Err(VarintError::Truncated);
        };
        i += 1;
        let low = u64::from(byte & 0x7f);
        if shift == 63 && low > 1 {
            return Err(VarintError::Overflow);
        }
        result |= low << shift;
        if byte & 0x80 == 0 {
            *pos = i;
            return Ok(result);
        }
        shift += 7;
        if i - *pos >= max_len {
            return Err(VarintError::Overflow);
        }
    }
}

/// Reads a zig-zag varint (`i64`).
#[inline]
pub(crate) fn get_i64(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    if let Some(&byte) = buf.get(*pos)
        && byte < 0x80
    {
        *pos += 1;
        return Ok(unzigzag(u64::from(byte)));
    }
    get(buf, pos, MAX_LEN_U64).map(unzigzag)
}

/// Reads a zig-zag varint of at most 5 bytes that must fit an `i32`, as
/// Kafka's `readVarint`.
#[inline]
pub(crate) fn get_i32(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    // Fast path: one byte, the common case for lengths and small deltas.
    if let Some(&byte) = buf.get(*pos)
        && byte < 0x80
    {
        *pos += 1;
        return Ok(unzigzag(u64::from(byte)) as i32);
    }
    let mut cursor = *pos;
    let value = get(buf, &mut cursor, MAX_LEN_U32)?;
    let value = u32::try_from(value).map_err(|_overflow| VarintError::Overflow)?;
    *pos = cursor;
    // Zig-zag over 32 bits: the low bit is the sign.
    Ok(((value >> 1) as i32) ^ -((value & 1) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn u64_roundtrips_with_predicted_length(value in any::<u64>()) {
            let mut buf = Vec::new();
            put_u64(&mut buf, value);
            prop_assert_eq!(buf.len(), len_u64(value));
            let mut pos = 0;
            prop_assert_eq!(get(&buf, &mut pos, MAX_LEN_U64), Ok(value));
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn i64_roundtrips_with_predicted_length(value in any::<i64>()) {
            let mut buf = Vec::new();
            put_i64(&mut buf, value);
            prop_assert_eq!(buf.len(), len_i64(value));
            let mut pos = 0;
            prop_assert_eq!(get_i64(&buf, &mut pos), Ok(value));
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn i32_roundtrips_as_kafka_writes_it(value in any::<i32>()) {
            let mut buf = Vec::new();
            put_i64(&mut buf, value.into());
            prop_assert!(buf.len() <= MAX_LEN_U32);
            let mut pos = 0;
            prop_assert_eq!(get_i32(&buf, &mut pos), Ok(value));
            prop_assert_eq!(pos, buf.len());
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut pos = 0;
            let _ = get_i64(&bytes, &mut pos);
            let mut pos = 0;
            let _ = get_i32(&bytes, &mut pos);
        }
    }

    #[test]
    fn rejects_overlong_and_truncated_encodings() {
        let mut pos = 0;
        // Six bytes for a 32-bit field is overlong, even if the value fits.
        assert_eq!(get_i32(&[0x80; 6], &mut pos), Err(VarintError::Overflow));
        assert_eq!(
            get_i32(&[0x82, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos),
            Err(VarintError::Overflow)
        );
        assert_eq!(pos, 0);
        assert_eq!(
            get_i32(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos),
            Err(VarintError::Overflow)
        );
        assert_eq!(
            get_i32(&[0x80, 0x80], &mut pos),
            Err(VarintError::Truncated)
        );
        assert_eq!(get_i64(&[0xff; 10], &mut pos), Err(VarintError::Overflow));
        // u32::MAX zig-zag decodes to i32::MIN; u32::MAX - 1 to i32::MAX.
        assert_eq!(
            get_i32(&[0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos),
            Ok(i32::MIN)
        );
        pos = 0;
        assert_eq!(
            get_i32(&[0xfe, 0xff, 0xff, 0xff, 0x0f], &mut pos),
            Ok(i32::MAX)
        );
    }
}
