//! One conformance suite for every `IndexLookup` implementation: `MemIndex`
//! (loaded with plain reads, or validated from bytes read through an
//! in-memory `IndexFile`), `MmapIndex` (read from a mapping) and
//! `ActiveIndex` (live, unsealed; on a `File` opened by path, on a `File`
//! handed to `create_in`, and on an in-memory `IndexFile`). Each must answer
//! exactly as a linear scan of the same entries.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use log_index::{IndexEntry, IndexLookup};

/// Every lookup of `index` equals the linear-scan oracle over `entries`.
fn assert_matches_oracle<I: IndexLookup>(index: &I, base_offset: u64, entries: &[IndexEntry]) {
    assert_eq!(index.base_offset(), base_offset);
    assert_eq!(index.len(), entries.len());
    assert_eq!(index.is_empty(), entries.is_empty());
    assert_eq!(index.last_entry(), entries.last().copied());
    for (i, entry) in entries.iter().enumerate() {
        assert_eq!(index.entry(i), *entry, "entry {i}");
    }
    for target in offset_targets(entries) {
        assert_eq!(
            index.lookup_offset(target),
            oracle_lookup_offset(entries, target),
            "lookup_offset({target})"
        );
    }
    for time in time_targets(entries) {
        assert_eq!(
            index.first_entry_at_or_after_time(time),
            oracle_first_at_or_after(entries, time),
            "first_entry_at_or_after_time({time})"
        );
        assert_eq!(
            index.time_scan_start(time),
            oracle_time_scan_start(entries, time),
            "time_scan_start({time})"
        );
    }
}

macro_rules! conformance_suite {
    ($implementation:ident, $build:path) => {
        mod $implementation {
            use super::*;
            use proptest::prelude::*;
            use tempfile::TempDir;

            fn build(entries: &[IndexEntry]) -> (TempDir, impl IndexLookup) {
                let dir = TempDir::new().unwrap();
                let index = $build(dir.path(), 77, entries);
                (dir, index)
            }

            #[test]
            fn empty_index_answers_segment_start() {
                let (_dir, index) = build(&[]);
                assert!(index.is_empty());
                assert_eq!(index.last_entry(), None);
                for target in [0, 1, u32::MAX] {
                    assert_eq!(index.lookup_offset(target), IndexEntry::SEGMENT_START);
                }
                for time in [i64::MIN, 0, i64::MAX] {
                    assert_eq!(index.first_entry_at_or_after_time(time), None);
                    assert_eq!(index.time_scan_start(time), IndexEntry::SEGMENT_START);
                }
            }

            #[test]
            fn offset_below_first_entry_answers_segment_start() {
                let entries = small_entries();
                let (_dir, index) = build(&entries);
                assert_eq!(index.lookup_offset(0), IndexEntry::SEGMENT_START);
                assert_eq!(index.lookup_offset(2), IndexEntry::SEGMENT_START);
            }

            #[test]
            fn offset_on_an_entry_answers_that_entry() {
                let entries = small_entries();
                let (_dir, index) = build(&entries);
                for entry in &entries {
                    assert_eq!(index.lookup_offset(entry.relative_offset), *entry);
                }
            }

            #[test]
            fn offset_between_entries_answers_the_floor() {
                let entries = small_entries();
                let (_dir, index) = build(&entries);
                assert_eq!(index.lookup_offset(11), entries[1]);
                assert_eq!(index.lookup_offset(19), entries[2]);
            }

            #[test]
            fn offset_beyond_last_entry_answers_last_entry() {
                let entries = small_entries();
                let (_dir, index) = build(&entries);
                assert_eq!(index.lookup_offset(22), entries[4]);
                assert_eq!(index.lookup_offset(u32::MAX), entries[4]);
            }

            #[test]
            fn equal_times_answer_first_of_run_and_scan_from_before_it() {
                // Times 1000, 1000, 1005, 1100, 1100.
                let entries = small_entries();
                let (_dir, index) = build(&entries);
                assert_eq!(index.first_entry_at_or_after_time(1_000), Some((0, entries[0])));
                assert_eq!(index.time_scan_start(1_000), IndexEntry::SEGMENT_START);
                assert_eq!(index.first_entry_at_or_after_time(1_100), Some((3, entries[3])));
                assert_eq!(index.time_scan_start(1_100), entries[2]);
                assert_eq!(index.first_entry_at_or_after_time(1_101), None);
                assert_eq!(index.time_scan_start(1_101), entries[4]);
                assert_eq!(index.time_scan_start(i64::MIN), IndexEntry::SEGMENT_START);
            }

            #[test]
            fn time_before_first_entry_answers_segment_start() {
                let entries = small_entries();
                let (_dir, index) = build(&entries);
                assert_eq!(index.first_entry_at_or_after_time(0), Some((0, entries[0])));
                assert_eq!(index.time_scan_start(0), IndexEntry::SEGMENT_START);
            }

            #[test]
            fn extreme_values_are_answered() {
                let entries = vec![
                    IndexEntry::new(0, 1, i64::MIN),
                    IndexEntry::new(u32::MAX - 1, u32::MAX - 2, 0),
                    IndexEntry::new(u32::MAX, u32::MAX - 1, i64::MAX),
                ];
                let (_dir, index) = build(&entries);
                assert_matches_oracle(&index, 77, &entries);
            }

            #[test]
            fn lookups_across_the_warm_section_match_the_oracle() {
                // Several warm-section sizes, with a run of equal times
                // straddling the warm boundary.
                let deltas: Vec<(u32, u32, i64)> = (0..1500u32)
                    .map(|i| {
                        let time_delta = if (900..1100).contains(&i) { 0 } else { i64::from(i % 2) };
                        (1 + i % 3, 4096 + i % 7, time_delta)
                    })
                    .collect();
                let entries = entries_from_deltas(5, &deltas);
                let (_dir, index) = build(&entries);
                assert_matches_oracle(&index, 77, &entries);
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(64))]
                #[test]
                fn lookups_match_linear_scan_oracle(
                    entries in entry_sets(),
                    offsets in proptest::collection::vec(any::<u32>(), 16),
                    times in proptest::collection::vec(any::<i64>(), 16),
                ) {
                    let (_dir, index) = build(&entries);
                    assert_matches_oracle(&index, 77, &entries);
                    for target in offsets {
                        prop_assert_eq!(index.lookup_offset(target), oracle_lookup_offset(&entries, target));
                    }
                    for time in times {
                        prop_assert_eq!(index.first_entry_at_or_after_time(time), oracle_first_at_or_after(&entries, time));
                        prop_assert_eq!(index.time_scan_start(time), oracle_time_scan_start(&entries, time));
                    }
                }
            }
        }
    };
}

conformance_suite!(mem_index_conforms, mem_index);
conformance_suite!(mmap_index_conforms, mmap_index);
conformance_suite!(active_index_conforms, active_index);
conformance_suite!(active_index_in_file_conforms, active_index_in_file);
conformance_suite!(active_index_in_memory_conforms, active_index_in_memory);
conformance_suite!(mem_index_from_bytes_conforms, mem_index_from_bytes);
