//! The zeroed runway ahead of the active segment's end
//! ([`LogConfig::preallocate_bytes`](crate::LogConfig::preallocate_bytes)).
//!
//! An append that grows its file makes the next `fdatasync` write the
//! inode as well (the size changed, maybe new blocks): on ext4 that is a
//! second synchronous write per sync. With zeros written ahead, appends
//! overwrite blocks the file already has and the sync writes data only;
//! the runway's own size change is paid once per extension.
//!
//! The runway is never part of the log: [`Segment::len`] ends at the last
//! whole batch, reads and the recovery point stop there. A roll or a clean
//! close cuts it off, so sealed segments and cleanly closed ones end at
//! their batches; after a crash, recovery recognises an all-zero tail
//! ([`zero_tail`]) past the recovery point and cuts it without calling it
//! torn. This module decides no durability: extensions are written under
//! the append lock and synced by whichever sync comes next.
//!
//! [`Segment::len`]: super::segment::Segment

use std::path::Path;

use super::Log;
use crate::error::{Error, io_error};
use crate::io::FileHandle;
use crate::util::lock;

/// Zeros written per `pwrite` (and read per look by [`zero_tail`]).
const ZERO_CHUNK: usize = 64 << 10;
static ZEROS: [u8; ZERO_CHUNK] = [0; ZERO_CHUNK];

/// Writes zeros over `from..to` of `file`.
fn write_zeros(file: &dyn FileHandle, from: u64, to: u64) -> std::io::Result<()> {
    let mut at = from;
    while at < to {
        let n = usize::try_from(to - at).map_or(ZERO_CHUNK, |left| left.min(ZERO_CHUNK));
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Whether every byte of `file` from `from` to `end` is zero: a runway a
/// crash left behind, not a torn batch. Reads it in chunks.
pub(crate) fn zero_tail(
    file: &dyn FileHandle,
    path: &Path,
    from: u64,
    end: u64,
) -> Result<bool, Error> {
    let mut buf = vec![0u8; ZERO_CHUNK];
    let mut at = from;
    while at < end {
        let n = usize::try_from(end - at).map_or(ZERO_CHUNK, |left| left.min(ZERO_CHUNK));
        file.read_exact_at(&mut buf[..n], at)
            .map_err(io_error("read segment tail", path))?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

impl Log {
    /// Extends the active segment's runway when less than half of
    /// [`preallocate_bytes`](crate::LogConfig::preallocate_bytes) is left
    /// past its end (never past `segment_max_bytes`, never below the
    /// free-space floor), unless the batch just written (`batch_len`) was
    /// larger than a quarter of it: a large batch's sync is its data, the
    /// inode write is noise there, and zeros ahead would only be written
    /// twice. Called with the append lock held and the state lock released;
    /// the zeros are written without any lock. A failure is logged and
    /// costs nothing but the speed-up: the runway is not data.
    pub(super) fn extend_runway(&self, batch_len: u64) {
        let config = self.config();
        let want = config.preallocate_bytes;
        if want == 0 || batch_len > want / 4 {
            return;
        }
        let (file, path, id, from, to) = {
            let state = lock(&self.state);
            let Some(active) = state.segments.last() else {
                return;
            };
            // Gathered batches will land at `len`: zeros go past them.
            let end = active.len + state.gathered.len();
            if active.zeroed_end >= end.saturating_add(want / 2) {
                return;
            }
            let from = active.zeroed_end.max(end);
            let to = from.saturating_add(want).min(config.segment_max_bytes);
            if to <= from {
                return;
            }
            if let (Some(floor), Some(space)) = (config.min_free_bytes, state.free_space.as_ref())
                && space.available < floor.saturating_add(to - from)
            {
                return;
            }
            (
                std::sync::Arc::clone(&active.file),
                active.log_path.clone(),
                active.id,
                from,
                to,
            )
        };
        if let Err(err) = write_zeros(&*file, from, to) {
            tracing::warn!(segment = %path.display(), error = %err, "cannot extend the zeroed runway");
            return;
        }
        let mut state = lock(&self.state);
        if let Some(space) = &mut state.free_space {
            space.available = space.available.saturating_sub(to - from);
        }
        if let Some(active) = state.segments.last_mut()
            && active.id == id
        {
            active.zeroed_end = to;
        }
    }

    /// Cuts the active segment's runway off (before a roll seals it and
    /// before a clean close), so a file ends at its last batch. Called with
    /// the append lock held and without the state lock; the next sync of
    /// the file makes the cut durable.
    pub(super) fn trim_runway(&self) -> Result<(), Error> {
        let (file, path, len) = {
            let state = lock(&self.state);
            match state.segments.last() {
                Some(active) if active.zeroed_end > active.len => (
                    std::sync::Arc::clone(&active.file),
                    active.log_path.clone(),
                    active.len,
                ),
                _ => return Ok(()),
            }
        };
        file.set_len(len)
            .map_err(io_error("cut the zeroed runway", &path))?;
        if let Some(active) = lock(&self.state).segments.last_mut() {
            active.zeroed_end = 0;
        }
        Ok(())
    }
}
