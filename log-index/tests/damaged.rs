//! Every kind of damaged index file is rejected with its own error, by every
//! sealed loader (`MemIndex::load`, `MmapIndex::open`,
//! `MemIndex::from_sealed_bytes`); `ActiveIndex::open_unsealed` keeps the
//! longest valid prefix of an unsealed file and rejects a bad header, and
//! `open_unsealed_in` does exactly the same through a `File` or an in-memory
//! `IndexFile`.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use log_index::{
    ActiveIndex, Error, FOOTER_LEN, HEADER_LEN, IndexEntry, IndexFile, IndexLookup, MemIndex,
    MmapIndex, RecoveryReport, Reopened,
};
use tempfile::TempDir;

/// A valid sealed image of the small index.
fn small_image() -> Vec<u8> {
    MemIndex::from_entries(SMALL_BASE, SMALL_COVERED, small_entries())
        .unwrap()
        .to_sealed_bytes()
}

/// Byte position of entry `i`'s field at `field` (0 offset, 4 position, 8 time).
fn entry_field(i: usize, field: usize) -> usize {
    HEADER_LEN + 16 * i + field
}

/// Loads `bytes` as a sealed file with both file loaders, expecting both to
/// fail with a damage error; returns the two errors. `from_sealed_bytes`
/// must fail with the same error.
fn load_both(bytes: &[u8], base: u64, covered: u64) -> (Error, Error) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("0.index");
    std::fs::write(&path, bytes).unwrap();
    let mem = MemIndex::load(&path, base, covered).unwrap_err();
    let mmap = MmapIndex::open(&path, base, covered).unwrap_err();
    let from_bytes = MemIndex::from_sealed_bytes(bytes.to_vec(), &path, base, covered).unwrap_err();
    assert!(mem.is_damaged(), "{mem}");
    assert!(mmap.is_damaged(), "{mmap}");
    assert_eq!(mem.path(), path.as_path());
    assert_eq!(mem.to_string(), mmap.to_string());
    assert_eq!(format!("{mem:?}"), format!("{from_bytes:?}"));
    (mem, mmap)
}

fn rejected(bytes: &[u8]) -> (Error, Error) {
    load_both(bytes, SMALL_BASE, SMALL_COVERED)
}

#[test]
fn accepts_the_undamaged_image() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("0.index");
    std::fs::write(&path, small_image()).unwrap();
    let mem = MemIndex::load(&path, SMALL_BASE, SMALL_COVERED).unwrap();
    let mmap = MmapIndex::open(&path, SMALL_BASE, SMALL_COVERED).unwrap();
    let from_bytes =
        MemIndex::from_sealed_bytes(small_image(), &path, SMALL_BASE, SMALL_COVERED).unwrap();
    assert_eq!(mem.entries(), small_entries().as_slice());
    assert_eq!(mmap.len(), small_entries().len());
    assert_eq!(from_bytes, mem);
}

#[test]
fn rejects_empty_file() {
    let (mem, mmap) = rejected(&[]);
    for err in [mem, mmap] {
        assert!(
            matches!(
                err,
                Error::TooShort {
                    expected_at_least: 40,
                    found: 0,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_file_shorter_than_header_and_footer() {
    let image = small_image();
    for len in [1, HEADER_LEN, HEADER_LEN + FOOTER_LEN - 1] {
        let (mem, mmap) = rejected(&image[..len]);
        for err in [mem, mmap] {
            assert!(
                matches!(err, Error::TooShort { found, .. } if found == len as u64),
                "{err:?}"
            );
        }
    }
}

#[test]
fn rejects_zero_filled_tail() {
    // Preallocated zeros after the footer: the footer is no longer at the end.
    for zeros in [4, 16, 4096] {
        let mut image = small_image();
        image.resize(image.len() + zeros, 0);
        let (mem, mmap) = rejected(&image);
        for err in [mem, mmap] {
            assert!(
                matches!(err, Error::MissingFooter { .. }),
                "{zeros}: {err:?}"
            );
            if let Error::MissingFooter { found, .. } = err {
                assert!(zeros < 8 || found == [0; 4], "{zeros}: {found:?}");
            }
        }
    }
}

#[test]
fn rejects_zero_filled_entries_sealed_with_a_valid_crc() {
    // A writer that sealed a preallocated zero region: the CRC is right, the
    // zero entry after the last real one is not.
    let mut image = small_image();
    let footer = image.split_off(image.len() - FOOTER_LEN);
    image.extend_from_slice(&[0; 32]);
    image.extend_from_slice(&footer);
    let count = u32::try_from(small_entries().len() + 2).unwrap();
    let footer_at = image.len() - FOOTER_LEN;
    image[footer_at..footer_at + 4].copy_from_slice(&count.to_le_bytes());
    fix_crc(&mut image);
    let (err, _) = rejected(&image);
    assert!(
        matches!(
            err,
            Error::OffsetNotIncreasing { index: 5, previous: 21, found: 0, position, .. }
                if position == entry_field(5, 0) as u64
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_file_truncated_mid_entry() {
    let image = small_image();
    for cut in [1, 8, 16, 24, 30] {
        let (mem, mmap) = rejected(&image[..image.len() - cut]);
        for err in [mem, mmap] {
            assert!(matches!(err, Error::MissingFooter { .. }), "{cut}: {err:?}");
        }
    }
}

#[test]
fn rejects_misaligned_length_with_a_footer_at_the_end() {
    let mut image = small_image();
    image.insert(HEADER_LEN, 0xaa);
    let (err, _) = rejected(&image);
    assert!(matches!(err, Error::MisalignedLength { .. }), "{err:?}");
}

#[test]
fn rejects_every_single_bit_flip() {
    let image = small_image();
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flipped.index");
    for byte in 0..image.len() {
        for bit in 0..8 {
            let mut flipped = image.clone();
            flipped[byte] ^= 1 << bit;
            std::fs::write(&path, &flipped).unwrap();
            let mem = MemIndex::load(&path, SMALL_BASE, SMALL_COVERED);
            let mmap = MmapIndex::open(&path, SMALL_BASE, SMALL_COVERED);
            let from_bytes = MemIndex::from_sealed_bytes(flipped, &path, SMALL_BASE, SMALL_COVERED);
            for result in [mem.map(|_| ()), mmap.map(|_| ()), from_bytes.map(|_| ())] {
                match result {
                    Err(err) => assert!(err.is_damaged(), "byte {byte} bit {bit}: {err:?}"),
                    Ok(()) => panic!("byte {byte} bit {bit}: flipped file accepted"),
                }
            }
        }
    }
}

#[test]
fn rejects_bad_checksum() {
    let mut image = small_image();
    let crc_at = image.len() - 4;
    image[crc_at] ^= 0xff;
    let (err, _) = rejected(&image);
    assert!(
        matches!(err, Error::ChecksumMismatch { position, stored, computed, .. }
            if position == crc_at as u64 && stored != computed),
        "{err:?}"
    );
}

#[test]
fn rejects_bad_magic() {
    let mut image = small_image();
    image[..4].copy_from_slice(b"LOGX");
    let (err, _) = rejected(&image);
    assert!(
        matches!(err, Error::BadMagic { position: 0, expected, found, .. }
            if &expected == b"LIDX" && &found == b"LOGX"),
        "{err:?}"
    );
}

#[test]
fn rejects_unsupported_version() {
    let mut image = small_image();
    image[4..6].copy_from_slice(&2u16.to_le_bytes());
    fix_crc(&mut image);
    let (err, _) = rejected(&image);
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                position: 4,
                expected: 1,
                found: 2,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_nonzero_flags() {
    let mut image = small_image();
    image[6] = 1;
    fix_crc(&mut image);
    let (err, _) = rejected(&image);
    assert!(
        matches!(
            err,
            Error::UnknownFlags {
                position: 6,
                found: 1,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_wrong_base_offset() {
    let image = small_image();
    let (err, _) = load_both(&image, SMALL_BASE + 1, SMALL_COVERED);
    assert!(
        matches!(
            err,
            Error::WrongBaseOffset {
                position: 8,
                expected: 1001,
                found: 1000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_wrong_covered_length() {
    let image = small_image();
    for covered in [SMALL_COVERED - 1, SMALL_COVERED + 1, 0] {
        let (err, _) = load_both(&image, SMALL_BASE, covered);
        assert!(
            matches!(err, Error::CoveredLengthMismatch { expected, found: 600, .. } if expected == covered),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_nonzero_reserved_footer_field() {
    let mut image = small_image();
    let reserved_at = image.len() - FOOTER_LEN + 4;
    image[reserved_at] = 9;
    fix_crc(&mut image);
    let (err, _) = rejected(&image);
    assert!(
        matches!(err, Error::NonZeroReserved { found: 9, .. }),
        "{err:?}"
    );
}

#[test]
fn rejects_wrong_entry_count() {
    let mut image = small_image();
    let count_at = image.len() - FOOTER_LEN;
    image[count_at..count_at + 4].copy_from_slice(&4u32.to_le_bytes());
    fix_crc(&mut image);
    let (err, _) = rejected(&image);
    assert!(
        matches!(err, Error::EntryCountMismatch { expected: 5, found: 4, position, .. }
            if position == count_at as u64),
        "{err:?}"
    );
}

/// The small image with entry `i`'s field at `field` set to `value` (LE) and
/// the CRC recomputed, so only the order checks can catch it.
fn with_field(i: usize, field: usize, value: &[u8]) -> Vec<u8> {
    let mut image = small_image();
    let at = entry_field(i, field);
    image[at..at + value.len()].copy_from_slice(value);
    fix_crc(&mut image);
    image
}

#[test]
fn rejects_entries_out_of_order_by_offset() {
    for offset in [7u32, 6, 0] {
        let (err, _) = rejected(&with_field(2, 0, &offset.to_le_bytes()));
        assert!(
            matches!(err, Error::OffsetNotIncreasing { index: 2, previous: 7, found, position, .. }
                if found == offset && position == entry_field(2, 0) as u64),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_entries_out_of_order_by_position() {
    let (err, _) = rejected(&with_field(3, 4, &330u32.to_le_bytes()));
    assert!(
        matches!(err, Error::PositionNotIncreasing { index: 3, previous: 330, found: 330, position, .. }
            if position == entry_field(3, 4) as u64),
        "{err:?}"
    );
}

#[test]
fn rejects_first_entry_at_position_zero() {
    let (err, _) = rejected(&with_field(0, 4, &0u32.to_le_bytes()));
    assert!(
        matches!(
            err,
            Error::PositionNotIncreasing {
                index: 0,
                previous: 0,
                found: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn rejects_entries_out_of_order_by_time() {
    let (err, _) = rejected(&with_field(2, 8, &999i64.to_le_bytes()));
    assert!(
        matches!(err, Error::TimeDecreasing { index: 2, previous: 1_000, found: 999, position, .. }
            if position == entry_field(2, 8) as u64),
        "{err:?}"
    );
}

#[test]
fn rejects_position_past_covered_length() {
    for position in [600u32, 601, u32::MAX] {
        let (err, _) = rejected(&with_field(4, 4, &position.to_le_bytes()));
        assert!(
            matches!(err, Error::PositionPastCoveredLength { index: 4, covered_log_len: 600, found, .. }
                if found == position),
            "{err:?}"
        );
    }
}

#[test]
fn rejects_unsealed_active_file() {
    let dir = TempDir::new().unwrap();
    let mut index = active_with_entries(dir.path(), SMALL_BASE, &small_entries());
    index.flush().unwrap();
    let bytes = std::fs::read(index.path()).unwrap();
    let (err, _) = rejected(&bytes);
    assert!(matches!(err, Error::MissingFooter { .. }), "{err:?}");
}

#[test]
fn loaders_report_a_missing_file_as_io_not_found() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("missing.index");
    for err in [
        MemIndex::load(&path, 0, 0).unwrap_err(),
        MmapIndex::open(&path, 0, 0).unwrap_err(),
    ] {
        assert!(!err.is_damaged());
        match err {
            Error::Io { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }
}

// ---- open_unsealed ----

/// Writes an unsealed file: header and `entries`, then `tail`.
fn write_unsealed(dir: &Path, entries: &[IndexEntry], tail: &[u8]) -> std::path::PathBuf {
    let mut index = active_with_entries(dir, SMALL_BASE, entries);
    index.flush().unwrap();
    let path = index.path().to_path_buf();
    drop(index);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(tail);
    std::fs::write(&path, &bytes).unwrap();
    path
}

/// What a reopen returned, comparable across handle types.
#[derive(Debug, PartialEq)]
enum Outcome {
    Active {
        entries: Vec<IndexEntry>,
        report: RecoveryReport,
        resume_position: u64,
        max_append_time: i64,
    },
    Sealed(MemIndex),
    /// The error's `Debug` text (it names the path, the same in every way).
    Failed(String),
}

fn outcome<F: IndexFile>(result: &Result<Reopened<F>, Error>) -> Outcome {
    match result {
        Ok(Reopened::Active { index, report }) => Outcome::Active {
            entries: index.entries().to_vec(),
            report: *report,
            resume_position: index.resume_position(),
            max_append_time: index.max_append_time(),
        },
        Ok(Reopened::Sealed(index)) => Outcome::Sealed(index.clone()),
        Err(err) => Outcome::Failed(format!("{err:?}")),
    }
}

/// `ActiveIndex::open_unsealed` of the file at `path`, after checking that
/// `open_unsealed_in` of the same bytes, through a `File` (a copy) and
/// through an in-memory file, both labelled `path`, returns the same and
/// leaves the same bytes.
fn open_everywhere(path: &Path, log_len: u64) -> Result<Reopened, Error> {
    let bytes = std::fs::read(path).unwrap();
    let copy = path.with_extension("copy");
    std::fs::write(&copy, &bytes).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&copy)
        .unwrap();
    let in_file = ActiveIndex::open_unsealed_in(file, path, SMALL_BASE, 64, log_len);
    let mem_file = MemFile::with_bytes(&bytes);
    let in_memory = ActiveIndex::open_unsealed_in(mem_file.clone(), path, SMALL_BASE, 64, log_len);
    let by_path = ActiveIndex::open_unsealed(path, SMALL_BASE, 64, log_len);

    let expected = outcome(&by_path);
    assert_eq!(outcome(&in_file), expected);
    assert_eq!(outcome(&in_memory), expected);
    let left = std::fs::read(path).unwrap();
    assert_eq!(std::fs::read(&copy).unwrap(), left);
    assert_eq!(mem_file.bytes(), left);
    std::fs::remove_file(&copy).unwrap();
    by_path
}

fn reopen(path: &Path, log_len: u64) -> (ActiveIndex, RecoveryReport) {
    match open_everywhere(path, log_len).unwrap() {
        Reopened::Active { index, report } => (index, report),
        Reopened::Sealed(_) => panic!("reopened as sealed"),
    }
}

#[test]
fn open_unsealed_keeps_a_whole_file() {
    let dir = TempDir::new().unwrap();
    let path = write_unsealed(dir.path(), &small_entries(), &[]);
    let (index, report) = reopen(&path, SMALL_COVERED);
    assert!(report.is_clean());
    assert_eq!(report.entries_kept, 5);
    assert_eq!(index.entries(), small_entries().as_slice());
    assert_eq!(index.max_append_time(), 1_100);
    assert_eq!(index.resume_position(), 581);
}

#[test]
fn open_unsealed_recovers_prefix_before_zero_filled_tail() {
    let dir = TempDir::new().unwrap();
    let path = write_unsealed(dir.path(), &small_entries(), &[0; 4096]);
    let (index, report) = reopen(&path, SMALL_COVERED);
    assert_eq!(index.entries(), small_entries().as_slice());
    assert_eq!(report.entries_kept, 5);
    assert_eq!(report.entries_dropped, 256);
    assert_eq!(report.bytes_dropped(), 4096);
    assert_eq!(report.recovered_len, (HEADER_LEN + 5 * 16) as u64);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        report.recovered_len
    );
}

#[test]
fn open_unsealed_recovers_prefix_before_garbage_tail() {
    let dir = TempDir::new().unwrap();
    // A plausible-looking entry that goes backwards, then a partial entry.
    let mut tail = IndexEntry::new(30, 200, 2_000).to_le_bytes().to_vec();
    tail.extend_from_slice(&[0xab; 7]);
    let path = write_unsealed(dir.path(), &small_entries(), &tail);
    let (index, report) = reopen(&path, SMALL_COVERED);
    assert_eq!(index.entries(), small_entries().as_slice());
    assert_eq!(report.entries_dropped, 1);
    assert_eq!(report.bytes_dropped(), 23);
}

#[test]
fn open_unsealed_drops_entries_past_the_log_end() {
    let dir = TempDir::new().unwrap();
    let path = write_unsealed(dir.path(), &small_entries(), &[]);
    // The storage layer cut the log at 450: entries at 450 and 580 go.
    let (index, report) = reopen(&path, 450);
    assert_eq!(index.entries(), &small_entries()[..3]);
    assert_eq!(report.entries_dropped, 2);
    assert_eq!(index.resume_position(), 331);
    assert_eq!(index.max_append_time(), 1_005);
}

#[test]
fn open_unsealed_recovers_header_only_file() {
    let dir = TempDir::new().unwrap();
    let path = write_unsealed(dir.path(), &[], &[0; 10]);
    let (index, report) = reopen(&path, 0);
    assert!(index.is_empty());
    assert_eq!(report.bytes_dropped(), 10);
    assert_eq!(index.resume_position(), 0);
    assert_eq!(index.max_append_time(), i64::MIN);
}

#[test]
fn open_unsealed_rejects_bad_header() {
    let dir = TempDir::new().unwrap();
    let path = write_unsealed(dir.path(), &small_entries(), &[]);
    let good = std::fs::read(&path).unwrap();
    type Case = (Vec<u8>, fn(&Error) -> bool);
    let cases: [Case; 4] = [
        (good[..HEADER_LEN - 1].to_vec(), |e| {
            matches!(e, Error::TooShort { .. })
        }),
        (vec![0; 4096], |e| matches!(e, Error::BadMagic { .. })),
        (
            {
                let mut bytes = good.clone();
                bytes[4] = 7;
                bytes
            },
            |e| matches!(e, Error::UnsupportedVersion { found: 7, .. }),
        ),
        (
            {
                let mut bytes = good.clone();
                bytes[8] ^= 1;
                bytes
            },
            |e| matches!(e, Error::WrongBaseOffset { .. }),
        ),
    ];
    for (bytes, is_expected) in cases {
        std::fs::write(&path, &bytes).unwrap();
        let err = open_everywhere(&path, SMALL_COVERED).unwrap_err();
        assert!(is_expected(&err), "{err:?}");
        assert!(err.is_damaged());
        // Nothing was cut.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn open_unsealed_returns_a_sealed_file_as_sealed() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("0.index");
    std::fs::write(&path, small_image()).unwrap();
    match open_everywhere(&path, SMALL_COVERED).unwrap() {
        Reopened::Sealed(index) => assert_eq!(index.entries(), small_entries().as_slice()),
        Reopened::Active { .. } => panic!("a sealed file reopened as active"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), small_image());
}

#[test]
fn open_unsealed_rejects_a_stale_or_damaged_sealed_file() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("0.index");
    std::fs::write(&path, small_image()).unwrap();
    let err = open_everywhere(&path, SMALL_COVERED + 1).unwrap_err();
    assert!(
        matches!(err, Error::CoveredLengthMismatch { .. }),
        "{err:?}"
    );

    let mut image = small_image();
    image[HEADER_LEN + 3] ^= 0x10;
    std::fs::write(&path, &image).unwrap();
    let err = open_everywhere(&path, SMALL_COVERED).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
}
