//! The golden file of format v1: `tests/data/v1/small.index`.
//!
//! With `LOG_UPDATE_FIXTURES=1` (`cargo xtask fixtures`) the test rewrites
//! the file; otherwise it reads it back with both loaders, decodes it again
//! by hand from the byte table in the crate docs, and checks that today's
//! writer still produces the very same bytes. A failure here means the disk
//! format changed: bump the version rather than regenerate.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use log_index::{ActiveIndex, IndexEntry, IndexLookup, MemIndex, MmapIndex};
use tempfile::TempDir;

const FIXTURES_ENV: &str = "LOG_UPDATE_FIXTURES";
const BASE_OFFSET: u64 = 1_234_567;
const INTERVAL_BYTES: u32 = 256;

fn fixture_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/v1/small.index")
}

/// The deterministic segment: 40 batches of varied lengths, record counts
/// and append times (some going backwards, some equal).
fn batches() -> Vec<(u32, u32, u32, i64)> {
    let (mut offset, mut position) = (0u32, 0u32);
    (0..40u32)
        .map(|i| {
            let len = 61 + (i * 37) % 150;
            let records = 1 + i % 4;
            let append_time = 1_700_000_000_000 + i64::from(i / 3) * 7 - i64::from(i % 5 == 4) * 20;
            let batch = (offset, position, len, append_time);
            offset += records;
            position += len;
            batch
        })
        .collect()
}

/// Builds and seals the golden index in `dir`; returns its bytes, entries
/// and covered length.
fn build(dir: &TempDir) -> (Vec<u8>, Vec<IndexEntry>, u64) {
    let path = dir.path().join("small.index");
    let mut index = ActiveIndex::create(&path, BASE_OFFSET, INTERVAL_BYTES).unwrap();
    let mut covered = 0;
    for (offset, position, len, time) in batches() {
        index.on_batch(offset, position, len, time).unwrap();
        covered = u64::from(position) + u64::from(len);
    }
    let sealed = index.seal(covered).unwrap();
    (
        std::fs::read(&path).unwrap(),
        sealed.entries().to_vec(),
        covered,
    )
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}
fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}
fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

#[test]
fn golden_v1_small_index_reads_back_with_both_loaders() {
    let dir = TempDir::new().unwrap();
    let (built, built_entries, covered) = build(&dir);
    let path = fixture_path();
    if std::env::var_os(FIXTURES_ENV).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &built).unwrap();
    }
    let golden = std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "cannot read {} ({err}); create it with `cargo xtask fixtures`",
            path.display()
        )
    });

    // Decode by hand, from the spec table.
    assert_eq!(&golden[0..4], b"LIDX");
    assert_eq!(u16_at(&golden, 4), 1);
    assert_eq!(u16_at(&golden, 6), 0);
    assert_eq!(u64_at(&golden, 8), BASE_OFFSET);
    assert_eq!((golden.len() - 40) % 16, 0);
    let count = (golden.len() - 40) / 16;
    let footer = golden.len() - 24;
    assert_eq!(u32_at(&golden, footer) as usize, count);
    assert_eq!(u32_at(&golden, footer + 4), 0);
    assert_eq!(u64_at(&golden, footer + 8), covered);
    assert_eq!(&golden[footer + 16..footer + 20], b"XDIL");
    assert_eq!(
        u32_at(&golden, footer + 20),
        crc32fast::hash(&golden[..footer + 20])
    );
    let by_hand: Vec<IndexEntry> = (0..count)
        .map(|i| {
            let at = 16 + 16 * i;
            IndexEntry::new(
                u32_at(&golden, at),
                u32_at(&golden, at + 4),
                i64::from_le_bytes(golden[at + 8..at + 16].try_into().unwrap()),
            )
        })
        .collect();
    assert!(by_hand.len() > 10, "the fixture should hold a few entries");

    // Both loaders agree with the hand decoding, entry by entry.
    let mem = MemIndex::load(&path, BASE_OFFSET, covered).unwrap();
    let mmap = MmapIndex::open(&path, BASE_OFFSET, covered).unwrap();
    assert_eq!(mem.len(), count);
    assert_eq!(mmap.len(), count);
    for (i, entry) in by_hand.iter().enumerate() {
        assert_eq!(mem.entry(i), *entry, "mem entry {i}");
        assert_eq!(mmap.entry(i), *entry, "mmap entry {i}");
    }

    // Today's writer still writes the same bytes.
    assert_eq!(built_entries, by_hand);
    assert!(
        built == golden,
        "the writer no longer produces the v1 golden file"
    );
}
