//! Putting a cleaned segment in place of the run of sealed segments it
//! replaces, crash-safe at every step, and finishing a swap that a crash
//! interrupted.
//!
//! For the segments with base offsets in `base..end`, cleaned into one
//! segment at `base` (`rewrite.rs` wrote and synced
//! `{base}.log.cleaned` and `{base}.index.cleaned`):
//!
//! 1. **Commit**: rename the cleaned log to `{base}.{end}.swap` and sync
//!    the directory. Before this a crash leaves the old segments and
//!    `.cleaned` files that recovery removes; from here on the swap
//!    happens, and recovery finishes it.
//! 2. Pin the old segments' open files in the partition state, so readers
//!    (in the middle of one, or starting one) go on reading the old bytes
//!    whatever happens to their names. Then remove every old file but
//!    `{base}.log` — `{base}.index` too, so no old index can ever pair with
//!    the new log — and sync the directory.
//! 3. Under the partition lock: rename the swap file to `{base}.log` and
//!    put the new segment in place of the old ones. Readers from then on
//!    read the new one.
//! 4. Sync the directory, then rename the cleaned index to
//!    `{base}.index` (an index that never arrives is rebuilt from the log
//!    when first needed: indexes are derived data).
//!
//! Recovery ([`finish_swaps`]) does steps 2 to 4 for every
//! `{base}.{end}.swap` it finds, on the files alone, and never scans a
//! segment below the cleaner's guard ([`cleaned_end`]) as unsynced data.

use std::path::Path;

use super::rewrite::Cleaned;
use crate::error::{Error, io_error};
use crate::io::durable::{read_u64_file, remove_if_present};
use crate::io::{Fs, OpenMode};
use crate::layout;
use crate::partition::Log;
use crate::partition::prepare::find;
use crate::partition::segment::{Segment, SegmentIndex, next_segment_id};
use crate::util::lock;

impl Log {
    /// Puts `cleaned` in place of the segments whose ids are `replaced`
    /// ([`Log::swap_in`]), or leaves everything as it was: a swap that
    /// fails before its commit removes the cleaned files; one that fails
    /// after it stops the log's rewrites until the next open finishes it.
    pub(super) fn install(&self, cleaned: Cleaned, replaced: &[u64]) -> Result<(), Error> {
        let base = cleaned.base_offset;
        let cleaned_log = cleaned.log.clone();
        let Err(err) = self.swap_in(cleaned, replaced) else {
            return Ok(());
        };
        let committed = !self
            .fs
            .exists(&cleaned_log)
            .map_err(io_error("check cleaned segment", &cleaned_log))?;
        if committed {
            lock(&self.cleaner).swap_failed = true;
        } else {
            self.discard_cleaned(base);
        }
        Err(err)
    }

    /// Removes the cleaned files of a group from `base` that will not be
    /// put in place (a failure to is only logged: recovery removes them).
    pub(super) fn discard_cleaned(&self, base: u64) {
        for path in [
            layout::cleaned_log_path(&self.dir, base),
            layout::cleaned_index_path(&self.dir, base),
        ] {
            if let Err(err) = self.fs.remove_file(&path)
                && err.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %path.display(), error = %err, "cannot remove cleaned file");
            }
        }
    }

    /// Puts `cleaned` in place of the segments whose ids are `replaced`
    /// (steps 1 to 4 of the module docs). Once this has renamed the swap
    /// file, an error leaves the swap for recovery to finish.
    pub(super) fn swap_in(&self, cleaned: Cleaned, replaced: &[u64]) -> Result<(), Error> {
        let dir = &self.dir;
        let base = cleaned.base_offset;
        let swap = layout::swap_path(dir, base, cleaned.end_offset);
        self.fs
            .rename(&cleaned.log, &swap)
            .map_err(io_error("commit cleaned segment", &swap))?;
        sync_dir(&*self.fs, dir)?;
        // Step 2: pin, then remove the old files.
        let old: Vec<(u64, std::path::PathBuf, std::path::PathBuf)> = {
            let mut state = lock(&self.state);
            let range = group_range(&state.segments, base, replaced, dir)?;
            state.segments[range]
                .iter_mut()
                .map(|segment| {
                    if segment.mapped.is_none()
                        && let Some(Ok(file)) = segment.file.pinned()
                    {
                        segment.file = file;
                    }
                    (
                        segment.base_offset,
                        segment.log_path.clone(),
                        segment.index_path.clone(),
                    )
                })
                .collect()
        };
        for (segment_base, log, index) in &old {
            remove_if_there(&*self.fs, index)?;
            if *segment_base != base {
                remove_if_there(&*self.fs, log)?;
            }
        }
        sync_dir(&*self.fs, dir)?;
        // Step 3: the new segment in place, on disk and in the state.
        let log_path = layout::log_path(dir, base);
        {
            let mut state = lock(&self.state);
            let range = group_range(&state.segments, base, replaced, dir)?;
            self.fs
                .rename(&swap, &log_path)
                .map_err(io_error("install cleaned segment", &log_path))?;
            let file = self
                .fs
                .open(&log_path, OpenMode::Read)
                .map_err(io_error("open cleaned segment", &log_path))?;
            let segment = Segment {
                id: next_segment_id(),
                base_offset: base,
                index_path: layout::index_path(dir, base),
                log_path: log_path.clone(),
                file,
                len: cleaned.len,
                zeroed_end: 0,
                end_offset: cleaned.end_offset,
                first_append_time: cleaned.first_append_time,
                max_append_time: cleaned.max_append_time,
                index_interval_bytes: self.config().index_interval_bytes,
                mapped: None,
                map_failed: false,
                index: SegmentIndex::Sealed(cleaned.index),
            };
            state.segments.splice(range, [segment]);
        }
        // Step 4.
        sync_dir(&*self.fs, dir)?;
        let index_path = layout::index_path(dir, base);
        self.fs
            .rename(&cleaned.index_file, &index_path)
            .map_err(io_error("install cleaned index", &index_path))?;
        sync_dir(&*self.fs, dir)
    }
}

/// Where the segments `replaced` (by id) sit in `segments`, from the one
/// at `base`: they must all be there, in order (the cleaner holds the
/// log's maintenance lock, so nothing else removes sealed segments).
fn group_range(
    segments: &[Segment],
    base: u64,
    replaced: &[u64],
    dir: &Path,
) -> Result<std::ops::Range<usize>, Error> {
    let start = find(segments, base);
    let range = start.map(|start| start..start + replaced.len());
    match range {
        Some(range)
            if segments
                .get(range.clone())
                .is_some_and(|s| s.iter().map(|s| s.id).eq(replaced.iter().copied())) =>
        {
            Ok(range)
        }
        _ => Err(Error::CleanFailed {
            dir: dir.to_path_buf(),
            reason: format!("the segments cleaned from offset {base} changed during the swap"),
        }),
    }
}

fn remove_if_there(fs: &dyn Fs, path: &Path) -> Result<(), Error> {
    remove_if_present(fs, path, "remove replaced segment file").map(|_| ())
}

fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<(), Error> {
    fs.sync_dir(dir)
        .map_err(io_error("sync partition directory", dir))
}

/// Finishes the committed swaps recovery found (`(base, end)` pairs, see
/// [`layout::swap_path`]): removes every other file of the segments they
/// replace, renames each swap file to its segment's log and syncs the
/// directory. `logs` and `indexes` (the base offsets of the segment and
/// index files listed) are updated to what is left.
pub(crate) fn finish_swaps(
    fs: &dyn Fs,
    dir: &Path,
    swaps: &[(u64, u64)],
    logs: &mut Vec<u64>,
    indexes: &mut Vec<u64>,
) -> Result<(), Error> {
    if swaps.is_empty() {
        return Ok(());
    }
    for &(base, end) in swaps {
        tracing::warn!(dir = %dir.display(), base, end, "finishing a cleaned segment swap a crash interrupted");
        let replaced = |offset: &u64| (base..end).contains(offset);
        for &index in indexes.iter().filter(|b| replaced(b)) {
            remove_if_there(fs, &layout::index_path(dir, index))?;
        }
        for &log in logs.iter().filter(|b| replaced(b) && **b != base) {
            remove_if_there(fs, &layout::log_path(dir, log))?;
        }
        indexes.retain(|b| !replaced(b));
        logs.retain(|b| !replaced(b) || *b == base);
    }
    sync_dir(fs, dir)?;
    for &(base, end) in swaps {
        let swap = layout::swap_path(dir, base, end);
        let log = layout::log_path(dir, base);
        fs.rename(&swap, &log)
            .map_err(io_error("install cleaned segment", &log))?;
        if !logs.contains(&base) {
            logs.push(base);
        }
    }
    sync_dir(fs, dir)
}

/// The cleaner's guard (`cleaned-below`): every sealed segment ending at
/// or below it was whole on disk when the cleaner took it (0 without one,
/// logged when damaged).
pub(crate) fn cleaned_end(fs: &dyn Fs, dir: &Path) -> u64 {
    let path = dir.join(layout::CLEANED_BELOW);
    match read_u64_file(fs, &path, "read cleaned-below") {
        Ok(point) => point.unwrap_or(0),
        Err(err) => {
            tracing::warn!(error = %err, "ignoring the cleaner's guard");
            0
        }
    }
}
