//! The recovery point (`recovery-point`): how far the active segment is
//! known to be durable, on which boot of the machine that was written, and
//! whether the partition was poisoned since.
//!
//! Written (not synced) after every successful `fdatasync` of the log, at
//! every roll, at open and when the partition is poisoned. Because it is not
//! synced, after a power loss it is exact, older or unreadable; each of
//! those only widens what recovery treats as unverified. After a process
//! crash (same boot) the page cache still holds the last write, so the
//! poisoned flag and the boot id are exact then, which is all they are used
//! for.
//!
//! Layout: two 52-byte slots, at byte 0 and at byte 512 (different
//! sectors, so a torn write damages at most one). Each slot: magic `LRC2`,
//! sequence u64, segment base u64, durable position u64, boot id (16 bytes,
//! zeros when unknown), flags u32 (bit 0: poisoned), CRC-32 of the slot's
//! first 48 bytes; little-endian. Writes alternate slots; the valid slot
//! with the larger sequence wins. The 24-byte first version (`LRCP`) is
//! still read. This module decides nothing about recovery: `recovery.rs`
//! does, with the point `mod.rs` reads at open.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, io_error};
use crate::io::{FileHandle, Fs, OpenMode};
use crate::layout;

const MAGIC: &[u8; 4] = b"LRC2";
const SLOT_LEN: usize = 52;
const SLOT_STRIDE: u64 = 512;
const POISONED: u32 = 1;

const V1_MAGIC: &[u8; 4] = b"LRCP";
const V1_LEN: usize = 24;

/// What the recovery point says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecoveryPoint {
    /// Sequence of the write (the later slot wins).
    pub(crate) seq: u64,
    /// Base offset of the segment the position is in.
    pub(crate) segment_base: u64,
    /// Bytes of that segment known durable.
    pub(crate) position: u64,
    /// The boot the point was written in (`None`: unknown).
    pub(crate) boot_id: Option<[u8; 16]>,
    /// A sync failed after `position` was durable: nothing past it can be
    /// trusted, whatever the page cache says.
    pub(crate) poisoned: bool,
}

impl RecoveryPoint {
    fn encode(&self) -> [u8; SLOT_LEN] {
        let mut out = [0u8; SLOT_LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4..12].copy_from_slice(&self.seq.to_le_bytes());
        out[12..20].copy_from_slice(&self.segment_base.to_le_bytes());
        out[20..28].copy_from_slice(&self.position.to_le_bytes());
        out[28..44].copy_from_slice(&self.boot_id.unwrap_or([0; 16]));
        let flags = if self.poisoned { POISONED } else { 0 };
        out[44..48].copy_from_slice(&flags.to_le_bytes());
        let crc = crc32fast::hash(&out[..48]);
        out[48..].copy_from_slice(&crc.to_le_bytes());
        out
    }

    fn decode(slot: &[u8]) -> Option<RecoveryPoint> {
        let slot = slot.get(..SLOT_LEN)?;
        if &slot[..4] != MAGIC || crc32fast::hash(&slot[..48]).to_le_bytes() != slot[48..] {
            return None;
        }
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&slot[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let mut boot = [0u8; 16];
        boot.copy_from_slice(&slot[28..44]);
        let mut flags = [0u8; 4];
        flags.copy_from_slice(&slot[44..48]);
        Some(RecoveryPoint {
            seq: u64_at(4),
            segment_base: u64_at(12),
            position: u64_at(20),
            boot_id: (boot != [0; 16]).then_some(boot),
            poisoned: u32::from_le_bytes(flags) & POISONED != 0,
        })
    }

    fn decode_v1(bytes: &[u8]) -> Option<RecoveryPoint> {
        let bytes = bytes.get(..V1_LEN)?;
        if &bytes[..4] != V1_MAGIC || crc32fast::hash(&bytes[..20]).to_le_bytes() != bytes[20..] {
            return None;
        }
        let mut base = [0u8; 8];
        base.copy_from_slice(&bytes[4..12]);
        let mut position = [0u8; 8];
        position.copy_from_slice(&bytes[12..20]);
        Some(RecoveryPoint {
            seq: 0,
            segment_base: u64::from_le_bytes(base),
            position: u64::from_le_bytes(position),
            boot_id: None,
            poisoned: false,
        })
    }

    /// Whether this point was written during the current boot (`now`).
    pub(crate) fn same_boot(&self, now: Option<[u8; 16]>) -> bool {
        self.boot_id.is_some() && self.boot_id == now
    }
}

/// Reads the recovery point of `dir`: the newest valid slot, `None` when
/// the file is missing or no slot is valid.
pub(crate) fn read_recovery_point(fs: &dyn Fs, dir: &Path) -> Option<RecoveryPoint> {
    let bytes = fs.read(&dir.join(layout::RECOVERY_POINT)).ok()?;
    let second = usize::try_from(SLOT_STRIDE).ok()?;
    let slots = [
        RecoveryPoint::decode(&bytes),
        bytes.get(second..).and_then(RecoveryPoint::decode),
    ];
    slots
        .into_iter()
        .flatten()
        .max_by_key(|point| point.seq)
        .or_else(|| RecoveryPoint::decode_v1(&bytes))
}

/// The open recovery-point file and the last point written to it.
#[derive(Debug)]
pub(crate) struct Checkpoint {
    file: Arc<dyn FileHandle>,
    last: RecoveryPoint,
}

impl Checkpoint {
    /// The segment the last point written names: every segment before it
    /// was whole on disk when it was written.
    pub(crate) fn segment_base(&self) -> u64 {
        self.last.segment_base
    }

    /// Opens the recovery-point file of `dir`, the next write following
    /// `previous`, and writes `first` to it. A missing file is created with
    /// `first` synced in it (and the directory synced): from then on a
    /// valid point is always on disk, however stale.
    pub(crate) fn open(
        fs: &dyn Fs,
        dir: &Path,
        previous: Option<RecoveryPoint>,
        first: (u64, u64, Option<[u8; 16]>),
    ) -> Result<Checkpoint, Error> {
        let path = dir.join(layout::RECOVERY_POINT);
        let (file, created) = match fs.open(&path, OpenMode::ReadWrite) {
            Ok(file) => (file, false),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let file = fs
                    .create_new(&path)
                    .map_err(io_error("create recovery point", &path))?;
                (file, true)
            }
            Err(err) => return Err(io_error("open recovery point", &path)(err)),
        };
        // Recovery has dealt with a poisoned run: this one starts clean.
        let previous = previous.map(|point| RecoveryPoint {
            poisoned: false,
            ..point
        });
        let last = previous.unwrap_or(RecoveryPoint {
            seq: 0,
            segment_base: 0,
            position: 0,
            boot_id: None,
            poisoned: false,
        });
        let mut checkpoint = Checkpoint { file, last };
        let (segment_base, position, boot_id) = first;
        checkpoint.write(dir, segment_base, position, boot_id);
        if created {
            checkpoint
                .file
                .sync_data()
                .map_err(io_error("sync recovery point", &path))?;
            fs.sync_dir(dir).map_err(io_error("sync directory", dir))?;
        }
        Ok(checkpoint)
    }

    /// Records that `position` bytes of the segment at `segment_base` are
    /// durable, during boot `boot_id`. A failure only costs precision at
    /// the next recovery (logged). Once poisoned, the point stays poisoned
    /// (a sync that succeeded just before the failure may record its
    /// position after it).
    pub(crate) fn write(
        &mut self,
        dir: &Path,
        segment_base: u64,
        position: u64,
        boot_id: Option<[u8; 16]>,
    ) {
        let point = RecoveryPoint {
            seq: self.last.seq + 1,
            segment_base,
            position,
            boot_id,
            poisoned: self.last.poisoned,
        };
        self.put(dir, point);
    }

    /// Marks the partition poisoned: the last durable position stays, and
    /// a reopen in this boot cuts whatever lies past it.
    pub(crate) fn write_poisoned(&mut self, dir: &Path, boot_id: Option<[u8; 16]>) {
        let point = RecoveryPoint {
            seq: self.last.seq + 1,
            boot_id,
            poisoned: true,
            ..self.last
        };
        self.put(dir, point);
    }

    /// The file, for a sync run without the lock that guards this
    /// checkpoint (at rolls: the point then never goes back before the
    /// segments a roll made whole; a failed sync only widens what
    /// recovery verifies).
    pub(crate) fn handle(&self) -> Arc<dyn FileHandle> {
        Arc::clone(&self.file)
    }

    fn put(&mut self, dir: &Path, point: RecoveryPoint) {
        let at = (point.seq % 2) * SLOT_STRIDE;
        if let Err(err) = self.file.write_all_at(&point.encode(), at) {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot write the recovery point");
        }
        self.last = point;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_slot_falls_back_to_the_other() {
        let a = RecoveryPoint {
            seq: 7,
            segment_base: 100,
            position: 4096,
            boot_id: Some([3; 16]),
            poisoned: false,
        };
        let b = RecoveryPoint {
            seq: 8,
            position: 8192,
            poisoned: true,
            ..a
        };
        let mut file = vec![0u8; 512 + SLOT_LEN];
        file[512..].copy_from_slice(&a.encode());
        file[..SLOT_LEN].copy_from_slice(&b.encode());
        let pick = |bytes: &[u8]| {
            [
                RecoveryPoint::decode(bytes),
                RecoveryPoint::decode(&bytes[512..]),
            ]
            .into_iter()
            .flatten()
            .max_by_key(|p| p.seq)
        };
        assert_eq!(pick(&file), Some(b));
        file[20] ^= 1;
        assert_eq!(pick(&file), Some(a));
        assert!(a.same_boot(Some([3; 16])));
        assert!(!a.same_boot(Some([4; 16])));
        assert!(!RecoveryPoint { boot_id: None, ..a }.same_boot(None));
    }
}
