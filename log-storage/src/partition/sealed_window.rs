//! Recovery's check of the sealed segments a crash can have left
//! unsynced (from the recovery point's segment to the one before the
//! active segment): each is scanned, synced when whole, cut at its first
//! bad byte (every later segment then deleted), and a zeroed runway a
//! crash kept past a roll's cut is cut without losing a batch. Called by
//! `recovery.rs` only; it decides nothing about the active segment.

use std::path::Path;

use super::checkpoint::RecoveryPoint;
use super::prealloc::zero_tail;
use super::segment::{Segment, scan_file};
use crate::error::{Error, io_error};
use crate::io::durable::remove_if_present;
use crate::io::{Fs, OpenMode};

/// Verifies the sealed segments a crash can have left unsynced: those from
/// the recovery point's segment on (a roll's syncs run after it, by the
/// next sync leader; every segment before the point's was whole on disk
/// when the point was written). Each is scanned from the point (its start
/// for later ones) and synced when whole. The first bad byte (or, for a
/// partition poisoned in this boot, the point itself) cuts that segment
/// there and deletes every later one: nothing past it was ever
/// acknowledged durable, since a sync leader syncs an old segment whole
/// before anything in a newer one. Segments wholly below the cleaner's
/// guard are not scanned (they were whole when it took them).
/// Returns whether anything was cut.
pub(super) fn verify_sealed_window(
    fs: &dyn Fs,
    dir: &Path,
    segments: &mut Vec<Segment>,
    point: Option<RecoveryPoint>,
    poisoned: bool,
) -> Result<bool, Error> {
    let last = segments.len().saturating_sub(1);
    let (first, from) = match point {
        Some(p) => {
            let k = segments
                .partition_point(|s| s.base_offset <= p.segment_base)
                .saturating_sub(1);
            let from = match segments.get(k) {
                Some(s) if s.base_offset == p.segment_base => p.position.min(s.len),
                _ => 0,
            };
            (k, from)
        }
        // No point at all (its file, created with a synced point, was
        // destroyed): every segment is treated as unverified (logged).
        None => {
            if last > 0 {
                tracing::warn!(dir = %dir.display(), "no readable recovery point: verifying every segment");
            }
            (0, 0)
        }
    };
    // Segments the cleaner took (wholly below its persisted point) were
    // whole on disk before it did, and a cleaned segment's bytes need not
    // have a batch boundary where an old point says: never scan them as
    // unsynced data.
    let cleaned =
        segments[..last].partition_point(|s| s.end_offset <= super::clean::cleaned_end(fs, dir));
    let (first, from) = if cleaned > first {
        (cleaned, 0)
    } else {
        (first, from)
    };
    let mut cut = None;
    for k in first..last {
        let start = if k == first { from } else { 0 };
        let next_base = segments[k + 1].base_offset;
        let segment = &mut segments[k];
        let stop = if poisoned {
            (segment.len > start).then_some(start)
        } else {
            let end = scan_file(
                &*segment.file,
                &segment.log_path,
                start,
                segment.len,
                |_, _| Ok(()),
            )?;
            let end_offset = match end.end_offset {
                Some(offset) => offset,
                None => offset_at(segment, start)?,
            };
            // A segment that ends cleanly short of the next one's base lost
            // whole unsynced batches (its length did not reach the disk):
            // the later segments continue from offsets that are gone.
            let short = end_offset != next_base;
            if end.stop.is_some()
                && !short
                && zero_tail(
                    &*segment.file,
                    &segment.log_path,
                    end.valid_len,
                    segment.len,
                )?
            {
                // A runway a crash kept past a roll's cut (`prealloc.rs`):
                // every batch is there, only the zeros go.
                tracing::info!(
                    segment = %segment.log_path.display(),
                    position = end.valid_len,
                    "cutting the zeroed runway of a sealed segment"
                );
                cut_sealed(fs, segment, end.valid_len)?;
                None
            } else {
                end.stop
                    .map(|_| end.valid_len)
                    .or(short.then_some(end.valid_len))
            }
        };
        if let Some(at) = stop {
            cut = Some((k, at));
            break;
        }
        // Whole: durable now (a process crash keeps unsynced pages).
        segment
            .file
            .sync_data()
            .map_err(io_error("sync recovered segment", &segment.log_path))?;
    }
    let Some((k, at)) = cut else {
        if first < last {
            fs.sync_dir(dir)
                .map_err(io_error("sync partition directory", dir))?;
        }
        return Ok(false);
    };
    for later in segments.drain(k + 1..) {
        tracing::warn!(
            segment = %later.log_path.display(),
            bytes = later.len,
            "deleting a segment past a torn or unverified sealed segment"
        );
        for path in [&later.log_path, &later.index_path] {
            remove_if_present(fs, path, "delete unverified segment")?;
        }
    }
    let segment = &mut segments[k];
    tracing::warn!(
        segment = %segment.log_path.display(),
        position = at,
        bytes_cut = segment.len - at,
        "cutting a sealed segment a crash left unsynced"
    );
    cut_sealed(fs, segment, at)?;
    fs.sync_dir(dir)
        .map_err(io_error("sync partition directory", dir))?;
    Ok(true)
}

/// Cuts a sealed segment back to `at` bytes, durably.
fn cut_sealed(fs: &dyn Fs, segment: &mut Segment, at: u64) -> Result<(), Error> {
    let file = fs
        .open(&segment.log_path, OpenMode::ReadWrite)
        .map_err(io_error("open segment", &segment.log_path))?;
    file.set_len(at)
        .map_err(io_error("cut torn tail", &segment.log_path))?;
    file.sync_data()
        .map_err(io_error("sync after cut", &segment.log_path))?;
    segment.file = file;
    segment.len = at;
    Ok(())
}

/// The offset of the record after the batches that end at `position` of
/// `segment` (its base offset at 0), by hopping batch headers from its
/// start: bytes before a recovery point were synced, so damage there is
/// corruption.
fn offset_at(segment: &Segment, position: u64) -> Result<u64, Error> {
    let mut at = 0;
    let mut next = segment.base_offset;
    while at < position {
        let header = segment.header_at(at)?;
        next = header.last_offset() + 1;
        at += u64::from(header.length);
    }
    Ok(next)
}
