//! A power loss on the simulated file system: what survives of each file
//! and directory (`State::crash`), torn sectors, and the seeded RNG that
//! makes every crash reproducible.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::PathBuf;

use super::state::{DataOp, FileNode, Image, Node, State, to_usize, write_into};
use super::{CrashReport, SimFs, TearKind, TornSector};

impl State {
    pub(super) fn crash(&mut self, seed: u64) -> CrashReport {
        let mut rng = SplitMix64::new(seed);

        // 1. Namespace: durable entries, then a prefix of the journal.
        let journal = std::mem::take(&mut self.journal);
        let namespace_ops_kept = to_usize(rng.below(journal.len() as u64 + 1));
        for node in self.nodes.values_mut() {
            match node {
                Node::Dir(dir) => dir.live = dir.durable.clone(),
                Node::File(file) => file.open = 0,
            }
        }
        for change in journal.iter().take(namespace_ops_kept).flatten() {
            if let Some(dir) = self.dir_mut(change.dir) {
                match change.target {
                    Some(target) => dir.live.insert(change.name.clone(), target),
                    None => dir.live.remove(&change.name),
                };
            }
        }
        for node in self.nodes.values_mut() {
            if let Node::Dir(dir) = node {
                dir.durable = dir.live.clone();
            }
        }
        self.generation += 1;
        self.collect_garbage();

        // 2. Data: a seeded subset of the pending chunks, in order.
        let keep_quarters = rng.below(5);
        let mut report = CrashReport {
            seed,
            keep_percent: u8::try_from(keep_quarters * 25).unwrap_or(100),
            namespace_ops_kept,
            namespace_ops_pending: journal.len(),
            chunks_kept: 0,
            chunks_pending: 0,
            set_lens_kept: 0,
            set_lens_pending: 0,
            torn: None,
        };
        let mut images = BTreeMap::new();
        let mut tearable = Vec::new();
        for (ino, node) in &self.nodes {
            let Node::File(file) = node else { continue };
            let mut image = file.durable.clone();
            let mut sectors = BTreeSet::new();
            for op in &file.pending {
                match op {
                    DataOp::Write { pos, bytes } => {
                        for chunk in sector_chunks(*pos, bytes.len()) {
                            sectors.insert(chunk.file_pos / SimFs::SECTOR_BYTES);
                            report.chunks_pending += 1;
                            if rng.below(4) < keep_quarters {
                                report.chunks_kept += 1;
                                write_into(&mut image, chunk.file_pos, &bytes[chunk.in_buf]);
                            }
                        }
                    }
                    DataOp::SetLen(_) => {
                        report.set_lens_pending += 1;
                        if rng.below(4) < keep_quarters {
                            report.set_lens_kept += 1;
                            op.apply(&mut image);
                        }
                    }
                }
            }
            tearable.extend(sectors.into_iter().map(|sector| (*ino, sector)));
            images.insert(*ino, image);
        }

        // 3. Tear one sector that pending writes touched.
        if !tearable.is_empty() {
            let (ino, sector) = tearable[to_usize(rng.below(tearable.len() as u64))];
            let kind = match rng.below(4) {
                0 => TearKind::Old,
                1 => TearKind::New,
                2 => TearKind::Zeros,
                _ => TearKind::Garbage,
            };
            let file = self.file(ino).expect("tearable sectors belong to files");
            let image = images.get_mut(&ino).expect("every file has an image");
            let torn = tear(file, image, sector, kind, &mut rng);
            let mut path = PathBuf::new();
            self.walk_tree(Image::Live, |at, node_ino, _| {
                if node_ino == ino && path.as_os_str().is_empty() {
                    path = at.to_path_buf();
                }
            });
            report.torn = Some(TornSector {
                path,
                sector_start: sector * SimFs::SECTOR_BYTES,
                torn,
                kind,
            });
        }

        // 4. What survived is durable.
        for (ino, image) in images {
            let file = self.file_mut(ino).expect("every image belongs to a file");
            file.durable.clone_from(&image);
            file.live = image;
            file.pending.clear();
        }
        report
    }
}

/// Tears `sector` of `image`: the bytes of it that `file`'s pending writes
/// touched become `kind`, growing the image to cover them, except for
/// [`TearKind::Old`], which changes only bytes within the image. Returns the
/// range from the first to the last torn byte (empty, at the sector start,
/// if none was).
pub(super) fn tear(
    file: &FileNode,
    image: &mut Vec<u8>,
    sector: u64,
    kind: TearKind,
    rng: &mut SplitMix64,
) -> Range<u64> {
    let start = sector * SimFs::SECTOR_BYTES;
    let end = start + SimFs::SECTOR_BYTES;
    let mut touched = BTreeSet::new();
    for op in &file.pending {
        if let DataOp::Write { pos, bytes } = op {
            let write_end = pos + bytes.len() as u64;
            touched.extend(start.max(*pos)..end.min(write_end));
        }
    }
    if kind == TearKind::Old {
        // The sector was never written: the file does not grow for it.
        touched.retain(|at| *at < image.len() as u64);
    }
    let (Some(&first), Some(&last)) = (touched.first(), touched.last()) else {
        return start..start;
    };
    if (image.len() as u64) <= last {
        image.resize(to_usize(last + 1), 0);
    }
    for at in touched {
        let i = to_usize(at);
        image[i] = match kind {
            TearKind::Old => file.durable.get(i).copied().unwrap_or(0),
            TearKind::New => file.live.get(i).copied().unwrap_or(0),
            TearKind::Zeros => 0,
            TearKind::Garbage => rng.next_u64().to_le_bytes()[0],
        };
    }
    first..last + 1
}

/// The part of a write that falls in one sector.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Chunk {
    file_pos: u64,
    in_buf: Range<usize>,
}

/// Splits a write of `len` bytes at `pos` at sector boundaries.
pub(super) fn sector_chunks(pos: u64, len: usize) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut done = 0;
    while done < len {
        let file_pos = pos + done as u64;
        let sector_left = SimFs::SECTOR_BYTES - file_pos % SimFs::SECTOR_BYTES;
        let n = to_usize(sector_left).min(len - done);
        chunks.push(Chunk {
            file_pos,
            in_buf: done..done + n,
        });
        done += n;
    }
    chunks
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough to
/// make crashes reproducible from a seed. [`SimFs`](super::SimFs) draws
/// its crashes from it; seeded tests draw their choices from it too, so a
/// seed names one whole run.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next number of the stream.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0), by multiply-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sector_chunks_split_at_sector_boundaries() {
        assert_eq!(sector_chunks(0, 0), vec![]);
        assert_eq!(
            sector_chunks(100, 1000),
            vec![
                Chunk {
                    file_pos: 100,
                    in_buf: 0..412
                },
                Chunk {
                    file_pos: 512,
                    in_buf: 412..924
                },
                Chunk {
                    file_pos: 1024,
                    in_buf: 924..1000
                },
            ]
        );
        assert_eq!(
            sector_chunks(512, 512),
            vec![Chunk {
                file_pos: 512,
                in_buf: 0..512
            }]
        );
    }

    #[test]
    fn splitmix_is_deterministic_and_bounded() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        for _ in 0..100 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
        }
        assert_eq!(SplitMix64::new(1).below(0), 0);
        assert_ne!(SplitMix64::new(1).next_u64(), SplitMix64::new(2).next_u64());
    }

    #[test]
    fn tear_touches_only_bytes_of_pending_writes() {
        let file = FileNode {
            live: vec![9; 1100],
            durable: vec![1; 1000],
            pending: vec![DataOp::Write {
                pos: 1000,
                bytes: vec![9; 100],
            }],
            open: 0,
        };
        let mut image = vec![1; 1000];
        let torn = tear(
            &file,
            &mut image,
            1,
            TearKind::Zeros,
            &mut SplitMix64::new(0),
        );
        assert_eq!(torn, 1000..1024);
        assert_eq!(image.len(), 1024);
        assert!(image[..1000].iter().all(|b| *b == 1));
        assert!(image[1000..].iter().all(|b| *b == 0));
    }
}
