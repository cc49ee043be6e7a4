//! `ActiveIndex`: the entry policy, argument checks, buffered writes,
//! restart and replay, truncation and sealing.
//!
//! Every test runs three times, once per way to reach the index file
//! ([`Backend`]): a `File` opened by the path constructors (`create`,
//! `open_unsealed`), a `File` the test opens and hands to the `_in`
//! constructors, and an in-memory `IndexFile` (`MemFile`) through the `_in`
//! constructors.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Backend, MemFiles, OpenFiles, PathFiles};
use log_index::{
    ActiveIndex, DEFAULT_INDEX_INTERVAL_BYTES, Error, HEADER_LEN, IndexEntry, IndexFile,
    IndexLookup, MemIndex, MmapIndex, Reopened,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// One batch as the storage layer reports it.
#[derive(Clone, Copy, Debug)]
struct Batch {
    relative_offset: u32,
    position: u32,
    len: u32,
    append_time: i64,
}

impl Batch {
    fn end(&self) -> u64 {
        u64::from(self.position) + u64::from(self.len)
    }
}

/// Contiguous batches from `(record count, length, append time)`.
fn batches(specs: &[(u32, u32, i64)]) -> Vec<Batch> {
    let (mut offset, mut position) = (0, 0);
    specs
        .iter()
        .map(|&(records, len, append_time)| {
            let batch = Batch {
                relative_offset: offset,
                position,
                len,
                append_time,
            };
            offset += records;
            position += len;
            batch
        })
        .collect()
}

fn batch_specs() -> impl Strategy<Value = Vec<(u32, u32, i64)>> {
    proptest::collection::vec(
        (
            1u32..=50,
            prop_oneof![1u32..=300, 1u32..=20_000],
            1_000i64..1_100,
        ),
        0..300,
    )
}

/// The entry policy, written as plainly as possible.
fn policy_oracle(batches: &[Batch], interval: u32) -> Vec<IndexEntry> {
    let mut entries: Vec<IndexEntry> = Vec::new();
    let mut max_time = i64::MIN;
    for batch in batches {
        max_time = max_time.max(batch.append_time);
        let last = entries.last().map_or(0, |e| u64::from(e.position));
        if u64::from(batch.position) >= last + u64::from(interval) {
            entries.push(IndexEntry::new(
                batch.relative_offset,
                batch.position,
                max_time,
            ));
        }
    }
    entries
}

fn feed<F: IndexFile>(index: &mut ActiveIndex<F>, batches: &[Batch]) {
    for batch in batches {
        index
            .on_batch(
                batch.relative_offset,
                batch.position,
                batch.len,
                batch.append_time,
            )
            .unwrap();
    }
}

fn build<B: Backend>(b: &B, name: &str, interval: u32, batches: &[Batch]) -> ActiveIndex<B::File> {
    let mut index = b.create(name, 500, interval).unwrap();
    assert_eq!(index.path(), b.path(name));
    feed(&mut index, batches);
    index
}

fn reopen<B: Backend>(b: &B, name: &str, interval: u32, log_len: u64) -> ActiveIndex<B::File> {
    match b.open_unsealed(name, 500, interval, log_len).unwrap() {
        Reopened::Active { index, .. } => index,
        Reopened::Sealed(_) => panic!("reopened as sealed"),
    }
}

fn log_end(batches: &[Batch]) -> u64 {
    batches.last().map_or(0, Batch::end)
}

/// The tests, generic over the backend; `active_suite!` runs each with
/// every backend.
mod cases {
    use super::*;

    pub(super) fn adds_an_entry_once_interval_bytes_of_log_have_passed<B: Backend>() {
        // Batches of 1000 bytes with an interval of 4096: entries at 5000 (first
        // position >= 4096), 10000 (>= 9096), 15000 ...
        let specs: Vec<_> = (0..20).map(|i| (10, 1000, 1_000 + i)).collect();
        let batches = batches(&specs);
        let b = B::new();
        let index = build(&b, "a.index", DEFAULT_INDEX_INTERVAL_BYTES, &batches);
        let positions: Vec<u32> = index.entries().iter().map(|e| e.position).collect();
        assert_eq!(positions, [5000, 10000, 15000]);
        assert_eq!(index.entries()[0], IndexEntry::new(50, 5000, 1_005));
    }

    pub(super) fn on_batch_returns_the_entry_it_adds<B: Backend>() {
        let b = B::new();
        let mut index = b.create("a.index", 0, 100).unwrap();
        assert_eq!(index.on_batch(0, 0, 60, 5).unwrap(), None);
        assert_eq!(index.on_batch(3, 60, 60, 9).unwrap(), None);
        assert_eq!(
            index.on_batch(7, 120, 60, 7).unwrap(),
            Some(IndexEntry::new(7, 120, 9))
        );
    }

    pub(super) fn entry_times_never_decrease_even_if_append_times_do<B: Backend>() {
        let batches = batches(&[(1, 100, 50), (1, 100, 10), (1, 100, 20), (1, 100, 5)]);
        let b = B::new();
        let index = build(&b, "a.index", 100, &batches);
        let times: Vec<i64> = index.entries().iter().map(|e| e.max_append_time).collect();
        assert_eq!(times, [50, 50, 50]);
        assert_eq!(index.max_append_time(), 50);
    }

    pub(super) fn rejects_out_of_order_batches_without_change<B: Backend>() {
        let b = B::new();
        let mut index = b.create("a.index", 0, 10).unwrap();
        index.on_batch(0, 0, 20, 1).unwrap();
        index.on_batch(5, 20, 20, 2).unwrap();
        let before = index.entries().to_vec();

        let cases = [
            (5, 40, 10, "relative offset", 6, 5), // offset repeated
            (4, 40, 10, "relative offset", 6, 4), // offset backwards
            (6, 39, 10, "position", 40, 39),      // overlaps the previous batch
            (6, 0, 10, "position", 40, 0),        // position backwards
        ];
        for (offset, position, len, want_field, want_min, want_found) in cases {
            let err = index.on_batch(offset, position, len, 99).unwrap_err();
            match err {
                Error::BatchOutOfOrder {
                    field,
                    expected_at_least,
                    found,
                    ..
                } => {
                    assert_eq!(
                        (field, expected_at_least, found),
                        (want_field, want_min, want_found)
                    );
                }
                other => panic!("{other:?}"),
            }
            assert!(!index.entries().is_empty());
            assert_eq!(index.entries(), before.as_slice());
            assert_eq!(index.max_append_time(), 2);
            assert_eq!(index.resume_position(), 40);
        }
        let err = index.on_batch(6, 40, 0, 99).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    argument: "batch length",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(index.max_append_time(), 2);
        // The next correct batch is accepted as if nothing happened.
        assert_eq!(
            index.on_batch(6, 40, 10, 3).unwrap(),
            Some(IndexEntry::new(6, 40, 3))
        );
    }

    pub(super) fn create_rejects_zero_interval_and_an_existing_file<B: Backend>() {
        let b = B::new();
        let err = b.create("a.index", 0, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        // Nothing written (an `_in` caller may have created the file).
        assert_eq!(b.read("a.index").unwrap_or_default(), b"");

        let index = b.create("b.index", 7, 1).unwrap();
        assert_eq!(b.len("b.index"), HEADER_LEN as u64);
        drop(index);
        let header = b.read("b.index").unwrap();
        match b.create("b.index", 7, 1).unwrap_err() {
            Error::Io { source, path, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
                assert_eq!(path, b.path("b.index"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(b.read("b.index").unwrap(), header);
    }

    pub(super) fn writes_entries_on_flush_and_when_four_kib_are_waiting<B: Backend>() {
        let b = B::new();
        let mut index = b.create("a.index", 0, 1).unwrap();
        let file_len = || b.len("a.index");
        for i in 0..256u32 {
            index.on_batch(i, i + 1, 1, 0).unwrap();
        }
        assert_eq!(index.unflushed_entries(), 256);
        assert_eq!(file_len(), HEADER_LEN as u64);
        index.on_batch(256, 257, 1, 0).unwrap();
        assert_eq!(index.unflushed_entries(), 1);
        assert_eq!(file_len(), (HEADER_LEN + 256 * 16) as u64);
        index.flush().unwrap();
        assert_eq!(index.unflushed_entries(), 0);
        assert_eq!(file_len(), (HEADER_LEN + 257 * 16) as u64);
        index.sync_data().unwrap();
        assert!(!index.is_poisoned());
    }

    pub(super) fn truncate_drops_entries_at_or_past_the_cut<B: Backend>() {
        let batches = batches(&[(1, 100, 1); 10]);
        let b = B::new();
        let mut index = build(&b, "a.index", 100, &batches);
        index.flush().unwrap();
        assert_eq!(index.len(), 9);
        // Cut the log at 450: batches at 500.. go, entries at 500.. go.
        assert_eq!(index.truncate_to_position(450).unwrap(), 5);
        assert_eq!(index.last_entry(), Some(IndexEntry::new(4, 400, 1)));
        assert_eq!(b.len("a.index"), (HEADER_LEN + 4 * 16) as u64);
        assert_eq!(index.resume_position(), 401);
        // Cutting past every batch changes nothing.
        let mut whole = build(&b, "b.index", 100, &batches);
        assert_eq!(whole.truncate_to_position(1000).unwrap(), 0);
        assert_eq!(whole.resume_position(), 1000);
    }

    pub(super) fn seal_writes_a_file_every_loader_accepts<B: Backend>() {
        let specs: Vec<_> = (0..200)
            .map(|i| (3, 700 + i, 5_000 + i64::from(i / 7)))
            .collect();
        let batches = batches(&specs);
        let covered = log_end(&batches);
        let b = B::new();
        let index = build(&b, "a.index", 4096, &batches);
        let entries = index.entries().to_vec();
        let sealed = index.seal(covered).unwrap();
        assert_eq!(sealed.entries(), entries.as_slice());
        assert_eq!(sealed.covered_log_len(), covered);
        assert_eq!(b.read("a.index").unwrap(), sealed.to_sealed_bytes());
        let loaded = b.load_sealed("a.index", 500, covered).unwrap();
        assert_eq!(loaded, sealed);
        if B::REAL_FILES {
            let path = b.path("a.index");
            let loaded = MemIndex::load(&path, 500, covered).unwrap();
            assert_eq!(loaded, sealed);
            let mapped = MmapIndex::open(&path, 500, covered).unwrap();
            assert_eq!(mapped.len(), entries.len());
            assert_eq!(mapped.path(), path.as_path());
            assert_eq!(mapped.covered_log_len(), covered);
        }
        // A sealed file reopens as sealed.
        match b.open_unsealed("a.index", 500, 4096, covered).unwrap() {
            Reopened::Sealed(reopened) => assert_eq!(reopened, sealed),
            Reopened::Active { .. } => panic!("a sealed file reopened as active"),
        }
    }

    pub(super) fn seal_of_an_empty_index_is_valid<B: Backend>() {
        let b = B::new();
        let index = b.create("a.index", 3, 4096).unwrap();
        index.seal(0).unwrap();
        assert!(b.load_sealed("a.index", 3, 0).unwrap().is_empty());
        if B::REAL_FILES {
            let path = b.path("a.index");
            assert!(MemIndex::load(&path, 3, 0).unwrap().is_empty());
            assert!(MmapIndex::open(&path, 3, 0).unwrap().is_empty());
        }
    }

    pub(super) fn seal_rejects_a_covered_length_before_the_last_batch_end<B: Backend>() {
        let batches = batches(&[(1, 100, 1); 3]);
        let b = B::new();
        let index = build(&b, "a.index", 100, &batches);
        let err = index.seal(299).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidArgument {
                    argument: "covered log length",
                    expected_at_least: 300,
                    found: 299,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    pub(super) fn entries_follow_the_policy<B: Backend>(
        specs: &[(u32, u32, i64)],
        interval: u32,
    ) -> Result<(), TestCaseError> {
        let batches = batches(specs);
        let b = B::new();
        let index = build(&b, "a.index", interval, &batches);
        let expected = policy_oracle(&batches, interval);
        prop_assert_eq!(index.entries(), expected.as_slice());
        Ok(())
    }

    pub(super) fn scan_to_any_batch_is_shorter_than_one_interval<B: Backend>(
        specs: &[(u32, u32, i64)],
        interval: u32,
    ) -> Result<(), TestCaseError> {
        let batches = batches(specs);
        let b = B::new();
        let index = build(&b, "a.index", interval, &batches);
        for batch in &batches {
            let start = index.lookup_offset(batch.relative_offset);
            prop_assert!(start.position <= batch.position);
            prop_assert!(batch.position - start.position < interval);
        }
        Ok(())
    }

    pub(super) fn time_scan_start_never_skips_a_batch<B: Backend>(
        specs: &[(u32, u32, i64)],
        time: i64,
    ) -> Result<(), TestCaseError> {
        let batches = batches(specs);
        let b = B::new();
        let index = build(&b, "a.index", 1000, &batches);
        let start = index.time_scan_start(time);
        let first = batches.iter().find(|b| b.append_time >= time);
        if let Some(first) = first {
            prop_assert!(start.position <= first.position);
            if let Some((_, entry)) = index.first_entry_at_or_after_time(time) {
                prop_assert!(first.position <= entry.position);
            }
        }
        if start != IndexEntry::SEGMENT_START {
            for batch in batches.iter().filter(|b| b.position <= start.position) {
                prop_assert!(batch.append_time < time);
            }
        }
        Ok(())
    }

    pub(super) fn replay_after_a_crash_rebuilds_the_same_index<B: Backend>(
        specs: &[(u32, u32, i64)],
        interval: u32,
        crash_at: prop::sample::Index,
        flushed_at: prop::sample::Index,
    ) -> Result<(), TestCaseError> {
        let batches = batches(specs);
        let b = B::new();
        let reference = build(&b, "reference.index", interval, &batches);

        // Crash after `crash` batches were in the log, `flushed` of them
        // reported before the last flush; unflushed entries are lost.
        let crash = crash_at.index(batches.len() + 1);
        let flushed = flushed_at.index(crash + 1);
        let mut index = build(&b, "crashed.index", interval, &batches[..flushed]);
        index.flush().unwrap();
        feed(&mut index, &batches[flushed..crash]);
        drop(index);

        let log_len = log_end(&batches[..crash]);
        let mut index = reopen(&b, "crashed.index", interval, log_len);
        let resume = index.resume_position();
        let replay: Vec<Batch> = batches[..crash]
            .iter()
            .filter(|b| u64::from(b.position) >= resume)
            .copied()
            .collect();
        feed(&mut index, &replay);
        feed(&mut index, &batches[crash..]);
        prop_assert_eq!(index.entries(), reference.entries());
        prop_assert_eq!(index.max_append_time(), reference.max_append_time());

        let covered = log_end(&batches);
        reference.seal(covered).unwrap();
        index.seal(covered).unwrap();
        prop_assert_eq!(b.read("crashed.index"), b.read("reference.index"));
        Ok(())
    }

    pub(super) fn truncate_then_replay_equals_a_fresh_build<B: Backend>(
        specs: &[(u32, u32, i64)],
        more: &[(u32, u32, i64)],
        interval: u32,
        cut_at: prop::sample::Index,
        flushed_at: prop::sample::Index,
    ) -> Result<(), TestCaseError> {
        let batches = batches(specs);
        let b = B::new();
        let flushed = flushed_at.index(batches.len() + 1);
        let mut index = build(&b, "cut.index", interval, &batches[..flushed]);
        index.flush().unwrap();
        feed(&mut index, &batches[flushed..]);

        // The storage layer cuts the log before batch `cut`.
        let cut = cut_at.index(batches.len() + 1);
        let cut_position = batches
            .get(cut)
            .map_or(log_end(&batches), |b| u64::from(b.position));
        index.truncate_to_position(cut_position).unwrap();
        let resume = index.resume_position();
        let replay: Vec<Batch> = batches[..cut]
            .iter()
            .filter(|b| u64::from(b.position) >= resume)
            .copied()
            .collect();
        feed(&mut index, &replay);

        // New batches appended after the cut.
        let mut kept = batches[..cut].to_vec();
        let (mut offset, mut position) = kept
            .last()
            .map_or((0, 0), |b| (b.relative_offset + 1, b.position + b.len));
        for &(records, len, append_time) in more {
            kept.push(Batch {
                relative_offset: offset,
                position,
                len,
                append_time,
            });
            offset += records;
            position += len;
        }
        feed(&mut index, &kept[cut..]);

        let fresh = build(&b, "fresh.index", interval, &kept);
        prop_assert_eq!(index.entries(), fresh.entries());
        prop_assert_eq!(index.max_append_time(), fresh.max_append_time());
        // And the file agrees with memory.
        index.flush().unwrap();
        let reopened = reopen(&b, "cut.index", interval, log_end(&kept));
        prop_assert_eq!(reopened.entries(), fresh.entries());
        Ok(())
    }
}

macro_rules! active_suite {
    ($module:ident, $backend:ty) => {
        mod $module {
            use super::*;

            #[test]
            fn adds_an_entry_once_interval_bytes_of_log_have_passed() {
                cases::adds_an_entry_once_interval_bytes_of_log_have_passed::<$backend>();
            }

            #[test]
            fn on_batch_returns_the_entry_it_adds() {
                cases::on_batch_returns_the_entry_it_adds::<$backend>();
            }

            #[test]
            fn entry_times_never_decrease_even_if_append_times_do() {
                cases::entry_times_never_decrease_even_if_append_times_do::<$backend>();
            }

            #[test]
            fn rejects_out_of_order_batches_without_change() {
                cases::rejects_out_of_order_batches_without_change::<$backend>();
            }

            #[test]
            fn create_rejects_zero_interval_and_an_existing_file() {
                cases::create_rejects_zero_interval_and_an_existing_file::<$backend>();
            }

            #[test]
            fn writes_entries_on_flush_and_when_four_kib_are_waiting() {
                cases::writes_entries_on_flush_and_when_four_kib_are_waiting::<$backend>();
            }

            #[test]
            fn truncate_drops_entries_at_or_past_the_cut() {
                cases::truncate_drops_entries_at_or_past_the_cut::<$backend>();
            }

            #[test]
            fn seal_writes_a_file_every_loader_accepts() {
                cases::seal_writes_a_file_every_loader_accepts::<$backend>();
            }

            #[test]
            fn seal_of_an_empty_index_is_valid() {
                cases::seal_of_an_empty_index_is_valid::<$backend>();
            }

            #[test]
            fn seal_rejects_a_covered_length_before_the_last_batch_end() {
                cases::seal_rejects_a_covered_length_before_the_last_batch_end::<$backend>();
            }

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(64))]

                #[test]
                fn entries_follow_the_policy(
                    specs in batch_specs(),
                    interval in prop_oneof![Just(1u32), 1u32..500, Just(4096)],
                ) {
                    cases::entries_follow_the_policy::<$backend>(&specs, interval)?;
                }

                #[test]
                fn scan_to_any_batch_is_shorter_than_one_interval(
                    specs in batch_specs(),
                    interval in 1u32..5000,
                ) {
                    cases::scan_to_any_batch_is_shorter_than_one_interval::<$backend>(&specs, interval)?;
                }

                #[test]
                fn time_scan_start_never_skips_a_batch(specs in batch_specs(), time in 990i64..1110) {
                    cases::time_scan_start_never_skips_a_batch::<$backend>(&specs, time)?;
                }

                #[test]
                fn replay_after_a_crash_rebuilds_the_same_index(
                    specs in batch_specs(),
                    interval in prop_oneof![Just(1u32), 1u32..3000],
                    crash_at in any::<prop::sample::Index>(),
                    flushed_at in any::<prop::sample::Index>(),
                ) {
                    cases::replay_after_a_crash_rebuilds_the_same_index::<$backend>(
                        &specs, interval, crash_at, flushed_at,
                    )?;
                }

                #[test]
                fn truncate_then_replay_equals_a_fresh_build(
                    specs in batch_specs(),
                    more in batch_specs(),
                    interval in prop_oneof![Just(1u32), 1u32..3000],
                    cut_at in any::<prop::sample::Index>(),
                    flushed_at in any::<prop::sample::Index>(),
                ) {
                    cases::truncate_then_replay_equals_a_fresh_build::<$backend>(
                        &specs, &more, interval, cut_at, flushed_at,
                    )?;
                }
            }
        }
    };
}

/// The path constructor checks its arguments before it creates the file.
#[test]
fn create_with_a_zero_interval_creates_no_file() {
    let b = PathFiles::new();
    let path = b.path("a.index");
    let err = ActiveIndex::create(&path, 0, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert!(!path.exists());
}

active_suite!(path_file, PathFiles);
active_suite!(open_file, OpenFiles);
active_suite!(memory_file, MemFiles);
