//! One index entry: its fields, its 16-byte little-endian encoding and the
//! implicit entry at the start of every segment.
//!
//! This module knows nothing of files, headers or ordering rules; those live in
//! `format.rs` (validation) and `active.rs` (when an entry is added), which
//! depend on this one, never the reverse.

/// Length of one entry, in bytes.
pub const ENTRY_LEN: usize = 16;

/// Position of the relative offset (`u32`) inside an entry.
pub(crate) const ENTRY_RELATIVE_OFFSET_AT: usize = 0;
/// Position of the log position (`u32`) inside an entry.
pub(crate) const ENTRY_POSITION_AT: usize = 4;
/// Position of the max append time (`i64`) inside an entry.
pub(crate) const ENTRY_MAX_APPEND_TIME_AT: usize = 8;

/// One sparse index entry: a batch of the segment starts at `position`, its
/// base offset is `base_offset + relative_offset`, and `max_append_time` is
/// the largest server append time of every batch from the segment start up to
/// and including that batch.
///
/// On disk: 16 bytes, little-endian, `relative_offset: u32 | position: u32 |
/// max_append_time: i64` (see the [crate docs](crate)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Offset of the batch's first record relative to the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch's first byte in the segment's log file.
    pub position: u32,
    /// Largest server append time so far in the segment, in milliseconds
    /// since the Unix epoch (monotonic over the entries).
    pub max_append_time: i64,
}

impl IndexEntry {
    /// The implicit entry at the start of every segment, never stored:
    /// relative offset 0 at position 0.
    ///
    /// Its time is `i64::MIN`: it stands *before* the first batch, and the
    /// largest append time of no batch at all is the smallest time there is.
    /// So [`IndexLookup::time_scan_start`](crate::IndexLookup::time_scan_start)
    /// can return it for every target time, and a caller that compares its
    /// time with a target never skips the first batch.
    pub const SEGMENT_START: IndexEntry = IndexEntry {
        relative_offset: 0,
        position: 0,
        max_append_time: i64::MIN,
    };

    /// Builds an entry.
    pub const fn new(relative_offset: u32, position: u32, max_append_time: i64) -> Self {
        IndexEntry {
            relative_offset,
            position,
            max_append_time,
        }
    }

    /// The 16-byte on-disk encoding.
    pub fn to_le_bytes(self) -> [u8; ENTRY_LEN] {
        let mut out = [0; ENTRY_LEN];
        out[ENTRY_RELATIVE_OFFSET_AT..ENTRY_RELATIVE_OFFSET_AT + 4]
            .copy_from_slice(&self.relative_offset.to_le_bytes());
        out[ENTRY_POSITION_AT..ENTRY_POSITION_AT + 4].copy_from_slice(&self.position.to_le_bytes());
        out[ENTRY_MAX_APPEND_TIME_AT..ENTRY_MAX_APPEND_TIME_AT + 8]
            .copy_from_slice(&self.max_append_time.to_le_bytes());
        out
    }

    /// Decodes the 16-byte on-disk encoding. Every bit pattern is an entry;
    /// whether it is a *valid* one depends on its neighbours (see
    /// `format::check_entry`).
    #[inline]
    pub fn from_le_bytes(bytes: &[u8; ENTRY_LEN]) -> Self {
        let [
            o0,
            o1,
            o2,
            o3,
            p0,
            p1,
            p2,
            p3,
            t0,
            t1,
            t2,
            t3,
            t4,
            t5,
            t6,
            t7,
        ] = *bytes;
        IndexEntry {
            relative_offset: u32::from_le_bytes([o0, o1, o2, o3]),
            position: u32::from_le_bytes([p0, p1, p2, p3]),
            max_append_time: i64::from_le_bytes([t0, t1, t2, t3, t4, t5, t6, t7]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields_tile_the_entry_as_in_the_spec_table() {
        assert_eq!(ENTRY_LEN, 16);
        assert_eq!(
            [
                ENTRY_RELATIVE_OFFSET_AT,
                ENTRY_POSITION_AT,
                ENTRY_MAX_APPEND_TIME_AT
            ],
            [0, 4, 8]
        );
        assert_eq!(ENTRY_MAX_APPEND_TIME_AT + 8, ENTRY_LEN);
    }

    #[test]
    fn encoding_is_little_endian_in_field_order() {
        let entry = IndexEntry::new(0x0403_0201, 0x0807_0605, 0x100f_0e0d_0c0b_0a09);
        let bytes = entry.to_le_bytes();
        assert_eq!(
            bytes,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        );
        assert_eq!(IndexEntry::from_le_bytes(&bytes), entry);
    }

    #[test]
    fn negative_times_round_trip() {
        for time in [i64::MIN, -1, 0, 1, i64::MAX] {
            let entry = IndexEntry::new(u32::MAX, 7, time);
            assert_eq!(IndexEntry::from_le_bytes(&entry.to_le_bytes()), entry);
        }
    }
}
