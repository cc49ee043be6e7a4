//! The index file format v1: its constants, the header and footer encoders,
//! and the validation every loader shares.
//!
//! The byte tables are in the [crate docs](crate). Validation works on a byte
//! slice, so the mmap loader and the in-memory loader run the very same
//! checks. This module does not open, read or write files.

use std::path::Path;

use crate::entry::{
    ENTRY_LEN, ENTRY_MAX_APPEND_TIME_AT, ENTRY_POSITION_AT, ENTRY_RELATIVE_OFFSET_AT, IndexEntry,
};
use crate::error::Error;

/// Magic at byte 0 of every index file.
pub const MAGIC: [u8; 4] = *b"LIDX";
/// Magic near the end of a sealed index file ([`MAGIC`] reversed).
pub const FOOTER_MAGIC: [u8; 4] = *b"XDIL";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;

/// Length of the header, in bytes.
pub const HEADER_LEN: usize = 16;
/// Length of the footer of a sealed file, in bytes.
pub const FOOTER_LEN: usize = 24;
/// Length of the smallest sealed file (header and footer, no entry), in bytes.
pub(crate) const MIN_SEALED_LEN: usize = HEADER_LEN + FOOTER_LEN;

/// Byte position of the magic in the header.
pub(crate) const HEADER_MAGIC_AT: usize = 0;
/// Byte position of the version (`u16`) in the header.
pub(crate) const HEADER_VERSION_AT: usize = 4;
/// Byte position of the flags (`u16`, reserved, zero) in the header.
pub(crate) const HEADER_FLAGS_AT: usize = 6;
/// Byte position of the segment base offset (`u64`) in the header.
pub(crate) const HEADER_BASE_OFFSET_AT: usize = 8;

/// Position of the entry count (`u32`) inside the footer.
pub(crate) const FOOTER_ENTRY_COUNT_AT: usize = 0;
/// Position of the reserved field (`u32`, zero) inside the footer.
pub(crate) const FOOTER_RESERVED_AT: usize = 4;
/// Position of the covered log length (`u64`) inside the footer.
pub(crate) const FOOTER_COVERED_LOG_LEN_AT: usize = 8;
/// Position of [`FOOTER_MAGIC`] inside the footer.
pub(crate) const FOOTER_MAGIC_AT: usize = 16;
/// Position of the CRC32 (`u32`) inside the footer; it covers every byte of
/// the file before it.
pub(crate) const FOOTER_CRC_AT: usize = 20;

/// The header of an index file for the segment starting at `base_offset`.
pub(crate) fn encode_header(base_offset: u64) -> [u8; HEADER_LEN] {
    let mut out = [0; HEADER_LEN];
    out[HEADER_MAGIC_AT..HEADER_MAGIC_AT + 4].copy_from_slice(&MAGIC);
    out[HEADER_VERSION_AT..HEADER_VERSION_AT + 2].copy_from_slice(&VERSION.to_le_bytes());
    out[HEADER_FLAGS_AT..HEADER_FLAGS_AT + 2].copy_from_slice(&0u16.to_le_bytes());
    out[HEADER_BASE_OFFSET_AT..HEADER_BASE_OFFSET_AT + 8]
        .copy_from_slice(&base_offset.to_le_bytes());
    out
}

/// The footer of a sealed file. `crc` must be the CRC32 of every byte before
/// [`FOOTER_CRC_AT`]: the caller hashes the header, the entries and the
/// footer up to the magic (`&footer[..FOOTER_CRC_AT]`), then stores it with
/// [`set_footer_crc`].
pub(crate) fn encode_footer(entry_count: u32, covered_log_len: u64) -> [u8; FOOTER_LEN] {
    let mut out = [0; FOOTER_LEN];
    out[FOOTER_ENTRY_COUNT_AT..FOOTER_ENTRY_COUNT_AT + 4]
        .copy_from_slice(&entry_count.to_le_bytes());
    out[FOOTER_RESERVED_AT..FOOTER_RESERVED_AT + 4].copy_from_slice(&0u32.to_le_bytes());
    out[FOOTER_COVERED_LOG_LEN_AT..FOOTER_COVERED_LOG_LEN_AT + 8]
        .copy_from_slice(&covered_log_len.to_le_bytes());
    out[FOOTER_MAGIC_AT..FOOTER_MAGIC_AT + 4].copy_from_slice(&FOOTER_MAGIC);
    out
}

/// Stores `crc` in a footer built by [`encode_footer`].
pub(crate) fn set_footer_crc(footer: &mut [u8; FOOTER_LEN], crc: u32) {
    footer[FOOTER_CRC_AT..FOOTER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
}

/// The footer sealing `entries` of the segment at `base_offset`, CRC
/// included: the CRC is computed over the header, the entries and the footer
/// up to its magic, exactly the bytes a sealed file holds before its CRC.
pub(crate) fn sealed_footer(
    base_offset: u64,
    entries: &[IndexEntry],
    covered_log_len: u64,
) -> [u8; FOOTER_LEN] {
    let entry_count = u32::try_from(entries.len())
        .expect("strictly increasing u32 positions bound the entry count to u32");
    let mut footer = encode_footer(entry_count, covered_log_len);
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&encode_header(base_offset));
    let mut chunk = Vec::with_capacity(256 * ENTRY_LEN);
    for group in entries.chunks(256) {
        chunk.clear();
        for entry in group {
            chunk.extend_from_slice(&entry.to_le_bytes());
        }
        hasher.update(&chunk);
    }
    hasher.update(&footer[..FOOTER_CRC_AT]);
    set_footer_crc(&mut footer, hasher.finalize());
    footer
}

/// The whole sealed file holding `entries`.
pub(crate) fn encode_sealed(
    base_offset: u64,
    entries: &[IndexEntry],
    covered_log_len: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(MIN_SEALED_LEN + entries.len() * ENTRY_LEN);
    out.extend_from_slice(&encode_header(base_offset));
    for entry in entries {
        out.extend_from_slice(&entry.to_le_bytes());
    }
    out.extend_from_slice(&sealed_footer(base_offset, entries, covered_log_len));
    out
}

/// Byte position of entry `index` in a file.
pub(crate) fn entry_position(index: usize) -> u64 {
    // usize -> u64 never truncates on the platforms we build for.
    (HEADER_LEN + index * ENTRY_LEN) as u64
}

/// Decodes entry `index` of a file's bytes (header included).
///
/// # Panics
///
/// If the entry lies past the end of `bytes`; callers check the length first.
#[inline]
pub(crate) fn entry_at(bytes: &[u8], index: usize) -> IndexEntry {
    let start = HEADER_LEN + index * ENTRY_LEN;
    match bytes[start..].first_chunk::<ENTRY_LEN>() {
        Some(chunk) => IndexEntry::from_le_bytes(chunk),
        None => panic!("index entry {index} is past the end of the index"),
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[at..at + N]);
    out
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(array(bytes, at))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(array(bytes, at))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(array(bytes, at))
}

/// Checks magic, version and flags of a file's first [`HEADER_LEN`] bytes:
/// whether this build can read the file at all.
fn check_header_format(bytes: &[u8], path: &Path) -> Result<(), Error> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::TooShort {
            path: path.to_path_buf(),
            expected_at_least: HEADER_LEN as u64,
            found: bytes.len() as u64,
        });
    }
    let magic = array::<4>(bytes, HEADER_MAGIC_AT);
    if magic != MAGIC {
        return Err(Error::BadMagic {
            path: path.to_path_buf(),
            position: HEADER_MAGIC_AT as u64,
            expected: MAGIC,
            found: magic,
        });
    }
    let version = u16_at(bytes, HEADER_VERSION_AT);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            position: HEADER_VERSION_AT as u64,
            expected: VERSION,
            found: version,
        });
    }
    let flags = u16_at(bytes, HEADER_FLAGS_AT);
    if flags != 0 {
        return Err(Error::UnknownFlags {
            path: path.to_path_buf(),
            position: HEADER_FLAGS_AT as u64,
            found: flags,
        });
    }
    Ok(())
}

fn check_base_offset(bytes: &[u8], path: &Path, expected: u64) -> Result<(), Error> {
    let found = u64_at(bytes, HEADER_BASE_OFFSET_AT);
    if found != expected {
        return Err(Error::WrongBaseOffset {
            path: path.to_path_buf(),
            position: HEADER_BASE_OFFSET_AT as u64,
            expected,
            found,
        });
    }
    Ok(())
}

/// Checks the header of any index file, sealed or not: magic, version, flags
/// and base offset.
pub(crate) fn check_header(
    bytes: &[u8],
    path: &Path,
    expected_base_offset: u64,
) -> Result<(), Error> {
    check_header_format(bytes, path)?;
    check_base_offset(bytes, path, expected_base_offset)
}

/// Whether a file of `bytes` has the shape and footer magic of a sealed file
/// (nothing else is checked).
pub(crate) fn looks_sealed(bytes: &[u8]) -> bool {
    let len = bytes.len();
    len >= MIN_SEALED_LEN
        && (len - MIN_SEALED_LEN).is_multiple_of(ENTRY_LEN)
        && bytes[len - FOOTER_LEN + FOOTER_MAGIC_AT..len - FOOTER_LEN + FOOTER_MAGIC_AT + 4]
            == FOOTER_MAGIC
}

/// Why an entry cannot follow the previous one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryFault {
    /// Relative offset not greater than the previous entry's.
    Offset { previous: u32, found: u32 },
    /// Position not greater than the previous entry's (or 0 for the first).
    Position { previous: u32, found: u32 },
    /// Max append time smaller than the previous entry's.
    Time { previous: i64, found: i64 },
    /// Position at or past the covered log length.
    PastEnd { covered_log_len: u64, found: u32 },
}

impl EntryFault {
    /// The [`Error`] for this fault at entry `index` of the file at `path`.
    pub(crate) fn into_error(self, path: &Path, index: usize) -> Error {
        let path = path.to_path_buf();
        let at = entry_position(index);
        match self {
            EntryFault::Offset { previous, found } => Error::OffsetNotIncreasing {
                path,
                position: at + ENTRY_RELATIVE_OFFSET_AT as u64,
                index,
                previous,
                found,
            },
            EntryFault::Position { previous, found } => Error::PositionNotIncreasing {
                path,
                position: at + ENTRY_POSITION_AT as u64,
                index,
                previous,
                found,
            },
            EntryFault::Time { previous, found } => Error::TimeDecreasing {
                path,
                position: at + ENTRY_MAX_APPEND_TIME_AT as u64,
                index,
                previous,
                found,
            },
            EntryFault::PastEnd {
                covered_log_len,
                found,
            } => Error::PositionPastCoveredLength {
                path,
                position: at + ENTRY_POSITION_AT as u64,
                index,
                covered_log_len,
                found,
            },
        }
    }
}

/// Checks that `entry` may follow `previous` (`None` for the first stored
/// entry) in an index covering `covered_log_len` bytes of log: relative
/// offsets strictly increase, positions strictly increase and start past 0
/// (position 0 is the implicit segment start, never stored, so an all-zero
/// entry never passes), times never decrease, positions stay below the
/// covered length.
pub(crate) fn check_entry(
    previous: Option<IndexEntry>,
    entry: IndexEntry,
    covered_log_len: u64,
) -> Result<(), EntryFault> {
    if let Some(previous) = previous {
        if entry.relative_offset <= previous.relative_offset {
            return Err(EntryFault::Offset {
                previous: previous.relative_offset,
                found: entry.relative_offset,
            });
        }
        if entry.position <= previous.position {
            return Err(EntryFault::Position {
                previous: previous.position,
                found: entry.position,
            });
        }
        if entry.max_append_time < previous.max_append_time {
            return Err(EntryFault::Time {
                previous: previous.max_append_time,
                found: entry.max_append_time,
            });
        }
    } else if entry.position == 0 {
        return Err(EntryFault::Position {
            previous: 0,
            found: 0,
        });
    }
    if u64::from(entry.position) >= covered_log_len {
        return Err(EntryFault::PastEnd {
            covered_log_len,
            found: entry.position,
        });
    }
    Ok(())
}

/// Checks every entry of `entries` in order; used for entries built in memory.
pub(crate) fn check_entries(
    entries: &[IndexEntry],
    covered_log_len: u64,
    path: &Path,
) -> Result<(), Error> {
    let mut previous = None;
    for (index, &entry) in entries.iter().enumerate() {
        check_entry(previous, entry, covered_log_len)
            .map_err(|fault| fault.into_error(path, index))?;
        previous = Some(entry);
    }
    Ok(())
}

/// Validates a whole sealed index file and returns its entry count.
///
/// Checks, in this order: length (at least header and footer), header
/// magic, version and flags, footer magic, length (whole entries), CRC32,
/// base offset, reserved footer field, entry count, covered log length, then
/// every entry ([`check_entry`]). Format checks come before the CRC so a file of
/// another version is reported as such; content checks come after it so a
/// flipped bit is reported as a checksum mismatch.
pub(crate) fn validate_sealed(
    bytes: &[u8],
    path: &Path,
    expected_base_offset: u64,
    expected_covered_log_len: u64,
) -> Result<usize, Error> {
    let len = bytes.len();
    if len < MIN_SEALED_LEN {
        return Err(Error::TooShort {
            path: path.to_path_buf(),
            expected_at_least: MIN_SEALED_LEN as u64,
            found: len as u64,
        });
    }
    check_header_format(bytes, path)?;

    // The footer is found from the end of the file: its magic is checked
    // before the length, so an unsealed file, a cut file or one with bytes
    // appended is reported as missing its footer.
    let footer_at = len - FOOTER_LEN;
    let footer_magic = array::<4>(bytes, footer_at + FOOTER_MAGIC_AT);
    if footer_magic != FOOTER_MAGIC {
        return Err(Error::MissingFooter {
            path: path.to_path_buf(),
            position: (footer_at + FOOTER_MAGIC_AT) as u64,
            expected: FOOTER_MAGIC,
            found: footer_magic,
        });
    }
    if !(len - MIN_SEALED_LEN).is_multiple_of(ENTRY_LEN) {
        return Err(Error::MisalignedLength {
            path: path.to_path_buf(),
            found: len as u64,
        });
    }
    let crc_at = footer_at + FOOTER_CRC_AT;
    let stored = u32_at(bytes, crc_at);
    let computed = crc32fast::hash(&bytes[..crc_at]);
    if stored != computed {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            position: crc_at as u64,
            stored,
            computed,
        });
    }

    check_base_offset(bytes, path, expected_base_offset)?;
    let reserved = u32_at(bytes, footer_at + FOOTER_RESERVED_AT);
    if reserved != 0 {
        return Err(Error::NonZeroReserved {
            path: path.to_path_buf(),
            position: (footer_at + FOOTER_RESERVED_AT) as u64,
            found: reserved,
        });
    }
    let entry_count = (len - MIN_SEALED_LEN) / ENTRY_LEN;
    let stored_count = u32_at(bytes, footer_at + FOOTER_ENTRY_COUNT_AT);
    if u64::from(stored_count) != entry_count as u64 {
        return Err(Error::EntryCountMismatch {
            path: path.to_path_buf(),
            position: (footer_at + FOOTER_ENTRY_COUNT_AT) as u64,
            expected: entry_count as u64,
            found: u64::from(stored_count),
        });
    }
    let covered = u64_at(bytes, footer_at + FOOTER_COVERED_LOG_LEN_AT);
    if covered != expected_covered_log_len {
        return Err(Error::CoveredLengthMismatch {
            path: path.to_path_buf(),
            position: (footer_at + FOOTER_COVERED_LOG_LEN_AT) as u64,
            expected: expected_covered_log_len,
            found: covered,
        });
    }

    let mut previous = None;
    for index in 0..entry_count {
        let entry = entry_at(bytes, index);
        check_entry(previous, entry, covered).map_err(|fault| fault.into_error(path, index))?;
        previous = Some(entry);
    }
    Ok(entry_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_sizes_and_offsets_match_the_spec_table() {
        assert_eq!(HEADER_LEN, 16);
        assert_eq!(ENTRY_LEN, 16);
        assert_eq!(FOOTER_LEN, 24);
        assert_eq!(MIN_SEALED_LEN, 40);
        // Header fields tile the header without gaps.
        assert_eq!(
            [
                HEADER_MAGIC_AT,
                HEADER_VERSION_AT,
                HEADER_FLAGS_AT,
                HEADER_BASE_OFFSET_AT
            ],
            [0, 4, 6, 8]
        );
        assert_eq!(HEADER_BASE_OFFSET_AT + 8, HEADER_LEN);
        assert_eq!(
            [
                FOOTER_ENTRY_COUNT_AT,
                FOOTER_RESERVED_AT,
                FOOTER_COVERED_LOG_LEN_AT,
                FOOTER_MAGIC_AT,
                FOOTER_CRC_AT
            ],
            [0, 4, 8, 16, 20]
        );
        assert_eq!(FOOTER_CRC_AT + 4, FOOTER_LEN);
        assert_eq!(&MAGIC, b"LIDX");
        assert_eq!(&FOOTER_MAGIC, b"XDIL");
        assert_eq!(VERSION, 1);
    }

    #[test]
    fn header_bytes_follow_the_table() {
        let header = encode_header(0x0102_0304_0506_0708);
        assert_eq!(
            header,
            [b'L', b'I', b'D', b'X', 1, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
    }

    #[test]
    fn footer_bytes_follow_the_table() {
        let mut footer = encode_footer(3, 0x1122_3344_5566_7788);
        set_footer_crc(&mut footer, 0xaabb_ccdd);
        assert_eq!(
            footer,
            [
                3, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, b'X', b'D',
                b'I', b'L', 0xdd, 0xcc, 0xbb, 0xaa
            ]
        );
    }

    #[test]
    fn first_entry_at_position_zero_is_rejected() {
        let zero = IndexEntry::new(0, 0, 0);
        assert_eq!(
            check_entry(None, zero, 100),
            Err(EntryFault::Position {
                previous: 0,
                found: 0
            })
        );
        let first = IndexEntry::new(0, 10, 5);
        assert_eq!(check_entry(None, first, 100), Ok(()));
        assert!(check_entry(Some(first), zero, 100).is_err());
    }

    #[test]
    fn equal_times_are_accepted_and_smaller_times_rejected() {
        let a = IndexEntry::new(1, 10, 5);
        assert_eq!(check_entry(Some(a), IndexEntry::new(2, 20, 5), 100), Ok(()));
        assert_eq!(
            check_entry(Some(a), IndexEntry::new(2, 20, 4), 100),
            Err(EntryFault::Time {
                previous: 5,
                found: 4
            })
        );
        assert_eq!(
            check_entry(Some(a), IndexEntry::new(2, 100, 5), 100),
            Err(EntryFault::PastEnd {
                covered_log_len: 100,
                found: 100
            })
        );
    }
}
