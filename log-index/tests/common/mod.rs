//! Helpers shared by the integration tests: linear-scan oracles, random
//! entry sets, and ways to put a given set of entries behind each index
//! implementation.
//!
//! Not every test file uses every helper.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use log_index::{ActiveIndex, IndexEntry, MemIndex, MmapIndex};
use proptest::prelude::*;

/// The floor entry of `target`, by linear scan.
pub fn oracle_lookup_offset(entries: &[IndexEntry], target: u32) -> IndexEntry {
    entries
        .iter()
        .rev()
        .find(|entry| entry.relative_offset <= target)
        .copied()
        .unwrap_or(IndexEntry::SEGMENT_START)
}

/// The first entry whose time is `>= time`, by linear scan.
pub fn oracle_first_at_or_after(entries: &[IndexEntry], time: i64) -> Option<(usize, IndexEntry)> {
    entries
        .iter()
        .position(|entry| entry.max_append_time >= time)
        .map(|index| (index, entries[index]))
}

/// The last entry whose time is `< time`, by linear scan.
pub fn oracle_time_scan_start(entries: &[IndexEntry], time: i64) -> IndexEntry {
    entries
        .iter()
        .rev()
        .find(|entry| entry.max_append_time < time)
        .copied()
        .unwrap_or(IndexEntry::SEGMENT_START)
}

/// A covered log length that fits `entries`: one past the last position, plus `extra`.
pub fn covered_len(entries: &[IndexEntry], extra: u64) -> u64 {
    entries
        .last()
        .map_or(0, |last| u64::from(last.position) + 1)
        + extra
}

/// Entries from deltas: `(offset delta >= 1, position delta >= 1, time delta >= 0)`.
pub fn entries_from_deltas(first_time: i64, deltas: &[(u32, u32, i64)]) -> Vec<IndexEntry> {
    let (mut offset, mut position, mut time) = (0u32, 0u32, first_time);
    let mut entries = Vec::with_capacity(deltas.len());
    for (index, &(offset_delta, position_delta, time_delta)) in deltas.iter().enumerate() {
        // The first entry may sit at relative offset 0 (a segment whose first
        // batch starts past position 0).
        offset = if index == 0 {
            offset_delta - 1
        } else {
            offset + offset_delta
        };
        position += position_delta;
        time += time_delta;
        entries.push(IndexEntry::new(offset, position, time));
    }
    entries
}

/// Random valid entry sets, often long enough to have a warm section, with
/// runs of equal times.
pub fn entry_sets() -> impl Strategy<Value = Vec<IndexEntry>> {
    let delta = (
        1u32..=6,
        1u32..=9000,
        prop_oneof![Just(0i64), 0i64..=4, 0i64..=100_000],
    );
    (
        prop_oneof![
            Just(0i64),
            -1_000_000i64..1_000_000,
            Just(1_700_000_000_000)
        ],
        prop_oneof![
            proptest::collection::vec(delta.clone(), 0..8),
            proptest::collection::vec(delta, 0..1400),
        ],
    )
        .prop_map(|(first_time, deltas)| entries_from_deltas(first_time, &deltas))
}

/// Offsets worth asking about: around every entry, below and beyond all.
pub fn offset_targets(entries: &[IndexEntry]) -> Vec<u32> {
    let mut targets = vec![0, 1, u32::MAX];
    for entry in entries {
        let offset = entry.relative_offset;
        targets.extend([offset.saturating_sub(1), offset, offset.saturating_add(1)]);
    }
    targets
}

/// Times worth asking about: around every entry, below and beyond all.
pub fn time_targets(entries: &[IndexEntry]) -> Vec<i64> {
    let mut targets = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX];
    for entry in entries {
        let time = entry.max_append_time;
        targets.extend([time.saturating_sub(1), time, time.saturating_add(1)]);
    }
    targets
}

/// An active index at `dir/name` holding exactly `entries`: with an interval
/// of one byte, every batch reported gets an entry.
pub fn active_with_entries(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> ActiveIndex {
    let path = dir.join("active.index");
    let mut index = ActiveIndex::create(&path, base_offset, 1).unwrap();
    for (i, entry) in entries.iter().enumerate() {
        let batch_len = entries
            .get(i + 1)
            .map_or(1, |next| next.position - entry.position);
        let added = index
            .on_batch(
                entry.relative_offset,
                entry.position,
                batch_len,
                entry.max_append_time,
            )
            .unwrap();
        assert_eq!(added, Some(*entry));
    }
    index
}

/// Writes a sealed index holding `entries` (through `ActiveIndex::seal`) and
/// returns its path.
pub fn write_sealed(dir: &Path, base_offset: u64, entries: &[IndexEntry], covered: u64) -> PathBuf {
    let index = active_with_entries(dir, base_offset, entries);
    let path = index.path().to_path_buf();
    let sealed = index.seal(covered).unwrap();
    assert_eq!(sealed.entries(), entries);
    path
}

/// `entries` behind `MemIndex::load`.
pub fn mem_index(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> MemIndex {
    let covered = covered_len(entries, 100);
    let path = write_sealed(dir, base_offset, entries, covered);
    MemIndex::load(path, base_offset, covered).unwrap()
}

/// `entries` behind `MmapIndex::open`.
pub fn mmap_index(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> MmapIndex {
    let covered = covered_len(entries, 100);
    let path = write_sealed(dir, base_offset, entries, covered);
    MmapIndex::open(path, base_offset, covered).unwrap()
}

/// `entries` behind a live (unsealed) `ActiveIndex`.
pub fn active_index(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> ActiveIndex {
    active_with_entries(dir, base_offset, entries)
}

/// A small fixed index: 5 entries, base offset 1000, covered length 600.
pub fn small_entries() -> Vec<IndexEntry> {
    vec![
        IndexEntry::new(3, 100, 1_000),
        IndexEntry::new(7, 210, 1_000),
        IndexEntry::new(12, 330, 1_005),
        IndexEntry::new(20, 450, 1_100),
        IndexEntry::new(21, 580, 1_100),
    ]
}

/// Base offset of [`small_entries`].
pub const SMALL_BASE: u64 = 1000;
/// Covered log length of [`small_entries`].
pub const SMALL_COVERED: u64 = 600;

/// Recomputes the CRC of a sealed file image in place (test-side, from the
/// spec: CRC32 of every byte before the last 4).
pub fn fix_crc(bytes: &mut [u8]) {
    let crc_at = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
}
