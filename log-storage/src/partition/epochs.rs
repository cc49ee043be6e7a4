//! The partition's epoch history: which crash-truncation epoch started at
//! which offset, kept in the `epoch` file. It answers "where does epoch E
//! end?" ([`Log::epoch_end`]), which is how a reader that saw offsets in
//! an older epoch tells whether recovery cut them since (Kafka's
//! OffsetForLeaderEpoch, KIP-320, asks exactly this).
//!
//! An entry is added when recovery moves the epoch, with the offset the new
//! epoch's first record gets. Entries that the new one supersedes (an
//! epoch whose records were all cut) go, as in Kafka's leader-epoch cache;
//! entries wholly below the log start go when the log start moves.
//!
//! File format (little-endian): `LEPH`, the entry count (u32), then per
//! entry the epoch (u64) and its start offset (u64), then a CRC-32 of all
//! that. The file of earlier versions (one u64 epoch and its CRC, 12
//! bytes) is read as a history of that one epoch from the log start. This
//! module decides nothing about when the history changes: `recovery.rs`
//! and `retention.rs` do.

use std::path::Path;

use crate::error::Error;
use crate::io::Fs;
use crate::io::durable::{U64_FILE_LEN, decode_u64, read_small, write_atomic};
use crate::layout;
use crate::util::crc32;

const MAGIC: &[u8; 4] = b"LEPH";
/// Entries kept at most: the oldest go first past it (an epoch moves once
/// per unclean open, so this is years of crashes).
pub(crate) const MAX_ENTRIES: usize = 4096;
const ENTRY_LEN: usize = 16;

/// Where one epoch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStart {
    /// The epoch.
    pub epoch: u64,
    /// The offset of its first record (or of the next record, when it has
    /// none yet).
    pub start_offset: u64,
}

/// Where an epoch ends, as [`Log::epoch_end`](super::Log::epoch_end)
/// answers: the largest known epoch not above the one asked about, and the
/// offset where the next epoch starts (the log end for the current epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEnd {
    /// The epoch the answer is about: the one asked for when it is known,
    /// else the largest known epoch below it.
    pub epoch: u64,
    /// The first offset past that epoch.
    pub end_offset: u64,
}

/// The history, oldest first; never empty once loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EpochHistory {
    entries: Vec<EpochStart>,
}

impl EpochHistory {
    /// Reads the history of the partition in `dir` whose log starts at
    /// `log_start`: epoch 0 from `log_start` when there is no file.
    pub(crate) fn read(fs: &dyn Fs, dir: &Path, log_start: u64) -> Result<EpochHistory, Error> {
        let path = dir.join(layout::EPOCH);
        let max_len = MAGIC.len() + 4 + MAX_ENTRIES * ENTRY_LEN + 4;
        let Some(bytes) = read_small(fs, &path, max_len, "read epoch history")? else {
            return Ok(EpochHistory::starting(0, log_start));
        };
        if bytes.len() == U64_FILE_LEN {
            let epoch = decode_u64(&path, &bytes)?;
            return Ok(EpochHistory::starting(epoch, log_start));
        }
        decode(&bytes).map_err(|(position, what)| Error::CorruptMetadata {
            path,
            position,
            what,
        })
    }

    fn starting(epoch: u64, start_offset: u64) -> EpochHistory {
        EpochHistory {
            entries: vec![EpochStart {
                epoch,
                start_offset,
            }],
        }
    }

    /// The current epoch.
    pub(crate) fn latest(&self) -> u64 {
        self.entries.last().map_or(0, |e| e.epoch)
    }

    /// Every entry, oldest first.
    pub(crate) fn entries(&self) -> &[EpochStart] {
        &self.entries
    }

    /// Starts `epoch` (larger than every epoch so far) at `start_offset`,
    /// dropping the entries it supersedes, and writes the history durably.
    pub(crate) fn start(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        epoch: u64,
        start_offset: u64,
    ) -> Result<(), Error> {
        let mut next = self.clone();
        next.entries
            .retain(|e| e.epoch < epoch && e.start_offset < start_offset);
        next.entries.push(EpochStart {
            epoch,
            start_offset,
        });
        let excess = next.entries.len().saturating_sub(MAX_ENTRIES);
        next.entries.drain(..excess);
        write_atomic(fs, &dir.join(layout::EPOCH), &next.encode())?;
        *self = next;
        Ok(())
    }

    /// Drops the entries wholly below `log_start` (the next one starts at
    /// or before it) and rewrites the file when any went. The entry that
    /// covers `log_start` stays as it is.
    pub(crate) fn trim_below(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        log_start: u64,
    ) -> Result<(), Error> {
        let gone = self
            .entries
            .windows(2)
            .take_while(|pair| pair[1].start_offset <= log_start)
            .count();
        if gone == 0 {
            return Ok(());
        }
        let mut next = self.clone();
        next.entries.drain(..gone);
        write_atomic(fs, &dir.join(layout::EPOCH), &next.encode())?;
        *self = next;
        Ok(())
    }

    /// Where `requested` ends, with the log ending at `log_end`; `None`
    /// when `requested` is past the current epoch. As Kafka's leader-epoch
    /// cache answers: the current epoch ends at the log end; an older one
    /// at the start of the first epoch above it, reported as the largest
    /// known epoch not above it (or as `requested` itself when it is older
    /// than every known epoch).
    pub(crate) fn end_of(&self, requested: u64, log_end: u64) -> Option<EpochEnd> {
        let latest = self.entries.last()?;
        if requested == latest.epoch {
            return Some(EpochEnd {
                epoch: requested,
                end_offset: log_end,
            });
        }
        let higher = self.entries.iter().find(|e| e.epoch > requested)?;
        let floor = self.entries.iter().rev().find(|e| e.epoch <= requested);
        Some(EpochEnd {
            epoch: floor.map_or(requested, |f| f.epoch),
            end_offset: higher.start_offset,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + self.entries.len() * ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.entries.len() as u32).to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.epoch.to_le_bytes());
            out.extend_from_slice(&e.start_offset.to_le_bytes());
        }
        let crc = crc32(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }
}

/// Decodes the file, or says at which byte and why it is wrong.
fn decode(bytes: &[u8]) -> Result<EpochHistory, (u64, String)> {
    let header = MAGIC.len() + 4;
    if bytes.len() < header + 4 || &bytes[..4] != MAGIC {
        return Err((0, format!("not an epoch history ({} bytes)", bytes.len())));
    }
    let count = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let expected_len = count
        .checked_mul(ENTRY_LEN)
        .and_then(|n| n.checked_add(header + 4));
    if count == 0 || count > MAX_ENTRIES || expected_len != Some(bytes.len()) {
        return Err((
            4,
            format!("{count} entries do not fit a file of {} bytes", bytes.len()),
        ));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    let found = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let expected = crc32(body);
    if found != expected {
        return Err((
            body.len() as u64,
            format!("checksum {found:#010x}, expected {expected:#010x}"),
        ));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let entries: Vec<EpochStart> = (0..count)
        .map(|i| EpochStart {
            epoch: u64_at(header + i * ENTRY_LEN),
            start_offset: u64_at(header + i * ENTRY_LEN + 8),
        })
        .collect();
    if let Some(i) = entries
        .windows(2)
        .position(|p| p[1].epoch <= p[0].epoch || p[1].start_offset < p[0].start_offset)
    {
        return Err((
            (header + (i + 1) * ENTRY_LEN) as u64,
            "entries out of order".into(),
        ));
    }
    Ok(EpochHistory { entries })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(pairs: &[(u64, u64)]) -> EpochHistory {
        EpochHistory {
            entries: pairs
                .iter()
                .map(|&(epoch, start_offset)| EpochStart {
                    epoch,
                    start_offset,
                })
                .collect(),
        }
    }

    fn end(epoch: u64, end_offset: u64) -> Option<EpochEnd> {
        Some(EpochEnd { epoch, end_offset })
    }

    #[test]
    fn ends_are_answered_as_kafka_s_leader_epoch_cache_answers() {
        let h = history(&[(2, 10), (4, 30), (5, 50)]);
        // The current epoch ends at the log end.
        assert_eq!(h.end_of(5, 70), end(5, 70));
        // Past the current epoch: unknown.
        assert_eq!(h.end_of(6, 70), None);
        // A known older epoch ends where the next starts.
        assert_eq!(h.end_of(4, 70), end(4, 50));
        // An unknown epoch between known ones: the one below it, ending
        // where the one above it starts.
        assert_eq!(h.end_of(3, 70), end(2, 30));
        // Older than every known epoch: itself, ending at the first start.
        assert_eq!(h.end_of(1, 70), end(1, 10));
    }

    #[test]
    fn the_file_round_trips_and_damage_is_named() {
        let h = history(&[(0, 0), (3, 7)]);
        let bytes = h.encode();
        assert_eq!(decode(&bytes), Ok(h));
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "a flip at {at} went unseen");
        }
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut disordered = history(&[(3, 7), (2, 9)]).encode();
        assert_eq!(decode(&disordered).map_err(|e| e.0), Err(24));
        disordered.truncate(8);
        assert!(decode(&disordered).is_err());
    }
}
