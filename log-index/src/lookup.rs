//! The lookups every index implementation shares: one trait whose provided
//! methods hold the only search code of the crate.
//!
//! An implementation supplies three accessors (base offset, entry count,
//! entry by index); the floor-by-offset and by-time searches are written once
//! here, warm section first. This module does not scan the log: a lookup
//! returns where to *start* reading the segment, and the storage layer reads
//! batch headers forward from there.

use std::hint;

use crate::entry::{ENTRY_LEN, IndexEntry};

/// Size of the warm section: the tail of the index tried first, in bytes
/// (Kafka's `AbstractIndex` uses the same 8 KiB). Tail reads, the common
/// case, touch only these pages, so they stay in the page cache.
pub const WARM_SECTION_BYTES: usize = 8192;

/// Entries in the warm section: [`WARM_SECTION_BYTES`] / 16 = 512.
pub const WARM_ENTRIES: usize = WARM_SECTION_BYTES / ENTRY_LEN;

/// Read access to a sparse index, and the lookups built on it.
///
/// Implementations: [`MemIndex`](crate::MemIndex) (entries in a `Vec`),
/// [`MmapIndex`](crate::MmapIndex) (entries read from a read-only mapping)
/// and [`ActiveIndex`](crate::ActiveIndex) (the growing index of the active
/// segment). They implement the three required methods; the provided ones
/// must not be overridden, so every implementation answers the same.
///
/// Entries are sorted: relative offsets and positions strictly increase,
/// max append times never decrease (every loader validates this). The
/// implicit [`IndexEntry::SEGMENT_START`] (offset 0, position 0, time
/// `i64::MIN`) precedes them and is never stored.
///
/// Searches are binary, over the warm section (the last [`WARM_ENTRIES`]
/// entries) when the target falls in it, over the rest otherwise: O(log n)
/// entry reads, and about 10 of them for a tail read.
pub trait IndexLookup {
    /// Absolute offset of the segment's first record; entries are relative to it.
    fn base_offset(&self) -> u64;

    /// Number of stored entries (the implicit start entry not counted).
    fn len(&self) -> usize;

    /// Stored entry number `index`, `0 <= index < len()`.
    ///
    /// # Panics
    ///
    /// If `index >= len()`. The provided methods never do that.
    fn entry(&self, index: usize) -> IndexEntry;

    /// Whether no entry is stored (the segment holds less than one index
    /// interval of log, or nothing at all).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The last stored entry, if any.
    fn last_entry(&self) -> Option<IndexEntry> {
        self.len().checked_sub(1).map(|last| self.entry(last))
    }

    /// Where to start scanning the segment for `relative_offset`: the stored
    /// entry with the largest relative offset `<= relative_offset` (the
    /// floor), or [`IndexEntry::SEGMENT_START`] when every stored entry is
    /// past it (or none is stored).
    ///
    /// The batch holding the target starts at or after the returned position;
    /// with entries one index interval apart, it starts less than one
    /// interval plus one batch after it.
    fn lookup_offset(&self, relative_offset: u32) -> IndexEntry {
        let after = partition_point(self, |entry| entry.relative_offset <= relative_offset);
        match after.checked_sub(1) {
            Some(floor) => self.entry(floor),
            None => IndexEntry::SEGMENT_START,
        }
    }

    /// The first stored entry whose `max_append_time >= time`, with its
    /// index, or `None` when every stored entry is older (or none is stored).
    ///
    /// As an entry's time covers every batch up to and including the one it
    /// points at, the first batch whose append time is `>= time` starts at or
    /// before this entry's position (and after the previous entry's position).
    fn first_entry_at_or_after_time(&self, time: i64) -> Option<(usize, IndexEntry)> {
        let first = partition_point(self, |entry| entry.max_append_time < time);
        (first < self.len()).then(|| (first, self.entry(first)))
    }

    /// Where to start scanning the segment for the first batch whose append
    /// time is `>= time`: the last stored entry whose `max_append_time < time`,
    /// or [`IndexEntry::SEGMENT_START`] when there is none.
    ///
    /// Every batch up to and including the one at the returned position is
    /// older than `time` (that is what the entry's time says), so the batch
    /// sought starts at or after the returned position; the storage layer
    /// scans forward from it, reading batch headers only. When every entry is
    /// older than `time` this is the last entry and the batch, if any, is in
    /// the unindexed tail of the segment.
    fn time_scan_start(&self, time: i64) -> IndexEntry {
        let first_not_older = partition_point(self, |entry| entry.max_append_time < time);
        match first_not_older.checked_sub(1) {
            Some(last_older) => self.entry(last_older),
            None => IndexEntry::SEGMENT_START,
        }
    }
}

/// The number of leading entries for which `pred` holds (`pred` must hold
/// for a prefix of the entries and fail for the rest), searching the warm
/// section first.
#[inline]
fn partition_point<I, P>(index: &I, pred: P) -> usize
where
    I: IndexLookup + ?Sized,
    P: Fn(IndexEntry) -> bool,
{
    let len = index.len();
    if len > WARM_ENTRIES {
        let warm_start = len - WARM_ENTRIES;
        return if pred(index.entry(warm_start)) {
            search(index, warm_start + 1, len, &pred)
        } else {
            search(index, 0, warm_start, &pred)
        };
    }
    search(index, 0, len, &pred)
}

/// The first index in `lo..hi` whose entry fails `pred`, or `hi`; `pred`
/// holds for every entry before `lo`.
///
/// Branch-free binary search, as `slice::partition_point` in std: the loop
/// runs a fixed ⌈log2(hi - lo)⌉ times and each step is a conditional move
/// (`select_unpredictable` keeps LLVM from turning it back into a branch),
/// so random targets cost no branch mispredictions. (An 8-way search, whose
/// probes' memory reads overlap, was measured too: 10-15% faster on random
/// targets over 1M entries, slower on the warm section, which is the common
/// case; not worth the extra code.)
#[inline]
fn search<I, P>(index: &I, lo: usize, hi: usize, pred: &P) -> usize
where
    I: IndexLookup + ?Sized,
    P: Fn(IndexEntry) -> bool,
{
    // Invariant: `pred` holds for every entry before `base`, and the answer
    // is in `base..=base + size`.
    let mut base = lo;
    let mut size = hi - lo;
    if size == 0 {
        return base;
    }
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        base = hint::select_unpredictable(pred(index.entry(mid)), mid, base);
        size -= half;
    }
    base + usize::from(pred(index.entry(base)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slice(Vec<IndexEntry>);

    impl IndexLookup for Slice {
        fn base_offset(&self) -> u64 {
            0
        }
        fn len(&self) -> usize {
            self.0.len()
        }
        fn entry(&self, index: usize) -> IndexEntry {
            self.0[index]
        }
    }

    fn entries(n: u32) -> Slice {
        Slice(
            (1..=n)
                .map(|i| IndexEntry::new(i * 10, i * 100, i64::from(i / 3)))
                .collect(),
        )
    }

    #[test]
    fn search_agrees_with_std_partition_point_around_the_warm_boundary() {
        for n in [0, 1, 2, 511, 512, 513, 514, 1030] {
            let index = entries(n);
            let last = n * 10 + 20;
            for target in 0..last {
                let want = index.0.partition_point(|e| e.relative_offset <= target);
                let got = partition_point(&index, |e| e.relative_offset <= target);
                assert_eq!(got, want, "n {n} target {target}");
            }
            for time in -1..i64::from(n / 3 + 2) {
                let want = index.0.partition_point(|e| e.max_append_time < time);
                let got = partition_point(&index, |e| e.max_append_time < time);
                assert_eq!(got, want, "n {n} time {time}");
            }
        }
    }

    #[test]
    fn warm_section_is_eight_kib_of_entries() {
        assert_eq!(WARM_ENTRIES, 512);
    }
}
