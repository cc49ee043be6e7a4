//! The small files of a partition directory besides its segments, the
//! recovery point (`checkpoint.rs`) and the epoch history (`epochs.rs`):
//! the clean-shutdown marker and the persisted log start. Each has a
//! checksum. A damaged `log-start` is [`Error::CorruptMetadata`], never a
//! default. A damaged or unreadable clean-shutdown marker reads as no
//! marker ([`CleanMarker::decode`] gives `None`): the open is then not a
//! clean one, and recovery verifies the log as after a crash.
//!
//! This module decides nothing about when they are written: `mod.rs`
//! (close) and `retention.rs` (log start) do.

use std::path::Path;

use crate::error::Error;
use crate::io::Fs;
use crate::io::durable::{read_u64_file, write_u64_file};
use crate::layout;
use crate::util::crc32;

/// Reads the persisted log start offset (0 when none was persisted).
pub(super) fn read_log_start(fs: &dyn Fs, dir: &Path) -> Result<u64, Error> {
    Ok(read_u64_file(fs, &dir.join(layout::LOG_START), "read log start")?.unwrap_or(0))
}

/// Persists the log start offset (atomic replace, synced).
pub(super) fn write_log_start(fs: &dyn Fs, dir: &Path, log_start: u64) -> Result<(), Error> {
    write_u64_file(fs, &dir.join(layout::LOG_START), log_start)
}

/// The clean-shutdown marker: where the log ended, with a checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CleanMarker {
    pub(crate) next_offset: u64,
    pub(crate) active_base: u64,
    pub(crate) active_len: u64,
    pub(crate) last_append_time: i64,
}

const MARKER_MAGIC: &[u8; 4] = b"LCLN";

const MARKER_LEN: usize = 4 + 8 * 4 + 4;

impl CleanMarker {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MARKER_LEN);
        out.extend_from_slice(MARKER_MAGIC);
        out.extend_from_slice(&self.next_offset.to_le_bytes());
        out.extend_from_slice(&self.active_base.to_le_bytes());
        out.extend_from_slice(&self.active_len.to_le_bytes());
        out.extend_from_slice(&self.last_append_time.to_le_bytes());
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<CleanMarker> {
        if bytes.len() != MARKER_LEN || &bytes[..4] != MARKER_MAGIC {
            return None;
        }
        let (body, crc) = bytes.split_at(MARKER_LEN - 4);
        if crc32(body).to_le_bytes() != crc {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(b)
        };
        Some(CleanMarker {
            next_offset: u64_at(4),
            active_base: u64_at(12),
            active_len: u64_at(20),
            last_append_time: u64_at(28) as i64,
        })
    }
}
