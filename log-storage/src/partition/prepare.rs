//! Loading what reads of a sealed segment need, with no partition lock
//! held: its index (loaded from its file, or rebuilt from the log when the
//! file fails validation), its read-only mapping, and its newest append
//! time (hopped from its last index entry). The result is installed in the
//! segment afterwards, if the segment is still there; two callers racing
//! do the same work twice and install the same thing.
//!
//! Every path that needs one of these ([`Log::read`](crate::Log::read),
//! retention, `offset_for_time`, `lag`, `usage`) prepares the segment
//! first and then works from memory under the lock, so no file read runs
//! under the partition lock (header hops run on detached handles too).

use log_index::IndexLookup;

use super::Log;
use super::segment::{Segment, SegmentIndex};
use crate::error::Error;
use crate::util::lock;

impl Log {
    /// Makes sure the segment at `base` has its index in memory, its
    /// newest append time known and, when `map` and it is sealed, its
    /// mapping tried. A segment gone meanwhile is left alone.
    pub(crate) fn prepare_segment(&self, base: u64, map: bool) -> Result<(), Error> {
        let (detached, floor, sealed) = {
            let state = lock(&self.state);
            let Some(at) = find(&state.segments, base) else {
                return Ok(());
            };
            let sealed = at + 1 < state.segments.len();
            let segment = &state.segments[at];
            let needs_index = matches!(segment.index, SegmentIndex::Unloaded);
            let needs_time = segment.max_append_time == i64::MIN && segment.len > 0;
            let needs_map = map && sealed && segment.mapped.is_none() && !segment.map_failed;
            if !(needs_index || needs_time || needs_map) {
                return Ok(());
            }
            let floor = (!needs_index).then(|| segment.index_floor(u64::MAX));
            (segment.detached(), floor, sealed)
        };
        let index = match floor {
            Some(_) => None,
            None => Some(detached.load_sealed_index(&*self.fs)?),
        };
        let floor = match (&index, floor) {
            (Some(index), _) => index.lookup_offset(u32::MAX),
            (None, Some(floor)) => floor,
            (None, None) => log_index::IndexEntry::SEGMENT_START,
        };
        let newest = if detached.max_append_time == i64::MIN && detached.len > 0 {
            Some(newest_append_time(&detached, u64::from(floor.position))?)
        } else {
            None
        };
        let try_map = map && sealed && detached.mapped.is_none() && !detached.map_failed;
        let mapped = if try_map {
            // Sealed segments never change: map them once, read them with
            // no copy. On failure, reads fall back to pread.
            match detached.file.map_sealed(detached.len) {
                Ok(map) => Some(map),
                Err(err) => {
                    tracing::warn!(
                        segment = %detached.log_path.display(),
                        error = %err,
                        "cannot map sealed segment; reading it with pread"
                    );
                    None
                }
            }
        } else {
            None
        };
        let mut state = lock(&self.state);
        // The cleaner may have put another segment under the same base
        // meanwhile: what was read of the old one is not installed in it.
        if let Some(at) = find(&state.segments, base)
            && state.segments[at].id == detached.id
        {
            let segment = &mut state.segments[at];
            if let Some(index) = index
                && matches!(segment.index, SegmentIndex::Unloaded)
            {
                segment.index = SegmentIndex::Sealed(index);
            }
            if let Some(newest) = newest
                && segment.max_append_time == i64::MIN
            {
                segment.max_append_time = newest;
            }
            if segment.mapped.is_none() {
                segment.map_failed |= try_map && mapped.is_none();
                segment.mapped = mapped;
            }
        }
        Ok(())
    }

    /// The newest append time of the segment at `base` (`None` when it is
    /// empty or gone), prepared without the lock.
    pub(crate) fn segment_max_time(&self, base: u64) -> Result<Option<i64>, Error> {
        self.prepare_segment(base, false)?;
        let state = lock(&self.state);
        Ok(find(&state.segments, base)
            .map(|at| &state.segments[at])
            .filter(|segment| segment.len > 0)
            .map(|segment| segment.max_append_time))
    }
}

/// The position in `segments` of the segment whose base is `base`.
pub(crate) fn find(segments: &[Segment], base: u64) -> Option<usize> {
    segments
        .binary_search_by_key(&base, |segment| segment.base_offset)
        .ok()
}

/// The largest append time of a segment, by hopping its headers from
/// `position` (its last index entry): append times only grow, so the last
/// batch has the largest.
fn newest_append_time(segment: &Segment, mut position: u64) -> Result<i64, Error> {
    let reader = segment.reader();
    let mut newest = i64::MIN;
    while position < segment.len {
        let header = reader.header_at(position)?;
        newest = newest.max(header.append_time);
        position += u64::from(header.length);
    }
    Ok(newest)
}
