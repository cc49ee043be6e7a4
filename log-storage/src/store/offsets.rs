//! Committed consumer offsets: one small file per consumer, topic and
//! partition, replaced atomically on every commit.
//!
//! # Layout and bounds
//!
//! `<data>/offsets/<consumer>/<topic>/<partition>.offset`. A commit writes
//! `<partition>.offset.tmp`, `fdatasync`s it, renames it over the old file
//! and `fsync`s the directory, so a commit is durable when it returns and a
//! crash leaves the old or the new value, never a mix. Disk use is bounded
//! by one file of at most [`OFFSET_FILE_MAX_BYTES`] per committed partition
//! (plus one temp file per partition while a commit is in flight): nothing
//! accumulates, so nothing needs compacting. One file per partition rather
//! than per topic keeps a commit's cost independent of the topic's
//! partition count (a per-topic file would rewrite every partition's
//! metadata, up to 10,000 × 4 KiB, on every commit).
//!
//! # File format (version 1), little-endian
//!
//! | bytes            | field                                           |
//! |------------------|-------------------------------------------------|
//! | 0..4             | magic `LOFF`                                    |
//! | 4..6             | version, 1                                      |
//! | 6..8             | reserved, zero                                  |
//! | 8..16            | topic id (see [`TopicInfo::id`](crate::TopicInfo::id)) |
//! | 16..24           | committed offset                                |
//! | 24..32           | commit time, ms since the Unix epoch            |
//! | 32..36           | metadata length `n`, at most 4096               |
//! | 36..36+n         | metadata                                        |
//! | 36+n..40+n       | CRC-32 (IEEE) of bytes `0..36+n`                |
//!
//! A file that fails any check is reported as
//! [`Error::CorruptMetadata`] naming the file and the byte position; it is
//! never read as "no offset" (that would silently rewind the consumer). A
//! file whose topic id is not the topic's current id was committed to an
//! earlier topic of the same name (deleted since) and reads as no offset.
//!
//! This module does not check offsets against the partition (the store
//! does) and does not resolve names (see `layout.rs`).

use std::collections::HashSet;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::NameKind;
use crate::error::{Error, io_error};
use crate::io::Fs;
use crate::io::durable::{read_small, remove_tree, write_atomic};
use crate::layout;
use crate::util::{lock, now_ms};

/// Largest metadata stored with a committed offset, in bytes.
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;

/// Largest valid offset file, in bytes.
pub const OFFSET_FILE_MAX_BYTES: usize = HEADER_LEN + MAX_OFFSET_METADATA_BYTES + CRC_LEN;

const MAGIC: &[u8; 4] = b"LOFF";
const VERSION: u16 = 1;
const HEADER_LEN: usize = 36;
const CRC_LEN: usize = 4;

/// Commits to the same file are serialised by one of this many locks
/// (picked by hash), so commits to different partitions sync in parallel.
const STRIPES: usize = 64;

/// A decoded offset file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Committed {
    topic_id: u64,
    offset: u64,
    commit_time_ms: u64,
    metadata: Vec<u8>,
}

fn encode(committed: &Committed) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + committed.metadata.len() + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&committed.topic_id.to_le_bytes());
    out.extend_from_slice(&committed.offset.to_le_bytes());
    out.extend_from_slice(&committed.commit_time_ms.to_le_bytes());
    // The length was checked against MAX_OFFSET_METADATA_BYTES.
    out.extend_from_slice(&(committed.metadata.len() as u32).to_le_bytes());
    out.extend_from_slice(&committed.metadata);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Committed, Error> {
    let corrupt = |position: usize, reason: String| Error::CorruptMetadata {
        path: path.to_path_buf(),
        position: position as u64,
        what: reason,
    };
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(corrupt(
            bytes.len(),
            format!(
                "file is {} bytes, shorter than the smallest valid one ({})",
                bytes.len(),
                HEADER_LEN + CRC_LEN
            ),
        ));
    }
    if &bytes[..4] != MAGIC {
        return Err(corrupt(0, "not an offset file (bad magic)".into()));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != VERSION {
        return Err(corrupt(
            4,
            format!("unsupported version {version} (this build reads {VERSION})"),
        ));
    }
    let len = u32_at(bytes, 32) as usize;
    if len > MAX_OFFSET_METADATA_BYTES {
        return Err(corrupt(
            32,
            format!("metadata length {len} is over {MAX_OFFSET_METADATA_BYTES}"),
        ));
    }
    let crc_at = HEADER_LEN + len;
    if bytes.len() != crc_at + CRC_LEN {
        return Err(corrupt(
            bytes.len().min(crc_at),
            format!(
                "file is {} bytes, its header says {}",
                bytes.len(),
                crc_at + CRC_LEN
            ),
        ));
    }
    let expected = u32_at(bytes, crc_at);
    let found = crc32fast::hash(&bytes[..crc_at]);
    if expected != found {
        return Err(corrupt(
            crc_at,
            format!("checksum mismatch: stored {expected:#010x}, computed {found:#010x}"),
        ));
    }
    if bytes[6..8] != [0, 0] {
        return Err(corrupt(6, "reserved bytes are not zero".into()));
    }
    Ok(Committed {
        topic_id: u64_at(bytes, 8),
        offset: u64_at(bytes, 16),
        commit_time_ms: u64_at(bytes, 24),
        metadata: bytes[HEADER_LEN..crc_at].to_vec(),
    })
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The committed offsets of one data directory. The store checks names
/// against its topics and offsets against the partitions; this type only
/// reads and writes the files.
#[derive(Debug)]
pub(crate) struct Offsets {
    fs: Arc<dyn Fs>,
    /// `<data>/offsets`.
    dir: PathBuf,
    stripes: Box<[Mutex<()>]>,
    /// Consumer-topic directories whose entries (and their parents')
    /// were synced by this process: a directory found on disk may have been
    /// created by a process that crashed before syncing it.
    synced: Mutex<HashSet<PathBuf>>,
}

impl Offsets {
    /// The offsets under `dir` (`<data>/offsets`, which must exist).
    pub(crate) fn new(fs: Arc<dyn Fs>, dir: PathBuf) -> Offsets {
        Offsets {
            fs,
            dir,
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            synced: Mutex::new(HashSet::new()),
        }
    }

    /// Writes the committed offset durably (see the module docs). The
    /// caller checked the names, the partition, the offset and the
    /// metadata length.
    pub(crate) fn commit(
        &self,
        consumer: &str,
        topic: &str,
        topic_id: u64,
        partition: u32,
        offset: u64,
        metadata: &[u8],
    ) -> Result<(), Error> {
        if metadata.len() > MAX_OFFSET_METADATA_BYTES {
            return Err(Error::MetadataTooLarge {
                len: metadata.len(),
                max: MAX_OFFSET_METADATA_BYTES,
            });
        }
        let dir = layout::consumer_topic_dir(&self.dir, consumer, topic)?;
        let path = layout::offset_file(&dir, partition);
        let bytes = encode(&Committed {
            topic_id,
            offset,
            commit_time_ms: u64::try_from(now_ms()).unwrap_or(0),
            metadata: metadata.to_vec(),
        });
        let _serial = lock(&self.stripes[stripe(&path)]);
        self.ensure_dir(&dir)?;
        write_atomic(&*self.fs, &path, &bytes)
    }

    /// Creates `<offsets>/<consumer>/<topic>` if needed and makes its entry
    /// and its parent's entry durable, once per process.
    fn ensure_dir(&self, dir: &Path) -> Result<(), Error> {
        if lock(&self.synced).contains(dir) {
            return Ok(());
        }
        self.fs
            .create_dir_all(dir)
            .map_err(io_error("create offsets directory", dir))?;
        let consumer_dir = dir.parent().unwrap_or(&self.dir);
        for parent in [consumer_dir, &self.dir] {
            self.fs
                .sync_dir(parent)
                .map_err(io_error("sync offsets directory", parent))?;
        }
        lock(&self.synced).insert(dir.to_path_buf());
        Ok(())
    }

    /// The committed offset and metadata, if any was committed to this
    /// topic (by its current id).
    pub(crate) fn read(
        &self,
        consumer: &str,
        topic: &str,
        topic_id: u64,
        partition: u32,
    ) -> Result<Option<(u64, Vec<u8>)>, Error> {
        let dir = layout::consumer_topic_dir(&self.dir, consumer, topic)?;
        let path = layout::offset_file(&dir, partition);
        let Some(bytes) = read_small(&*self.fs, &path, OFFSET_FILE_MAX_BYTES, "read offset file")?
        else {
            return Ok(None);
        };
        let committed = decode(&path, &bytes)?;
        if committed.topic_id != topic_id {
            tracing::info!(
                file = %path.display(),
                "ignoring an offset committed to an earlier topic of the same name"
            );
            return Ok(None);
        }
        Ok(Some((committed.offset, committed.metadata)))
    }

    /// Removes every consumer's offsets of `topic` (after the topic was
    /// deleted). A crash half-way leaves files that the next open removes
    /// (see [`Offsets::sweep`]).
    pub(crate) fn remove_topic(&self, topic: &str) -> Result<(), Error> {
        for consumer in self.consumers()? {
            let consumer_dir = layout::child(NameKind::Consumer, &self.dir, &consumer)?;
            let dir = layout::child(NameKind::Topic, &consumer_dir, topic)?;
            if !self
                .fs
                .exists(&dir)
                .map_err(io_error("check offsets directory", &dir))?
            {
                continue;
            }
            lock(&self.synced).remove(&dir);
            remove_tree(&*self.fs, &dir)?;
            self.fs
                .sync_dir(&consumer_dir)
                .map_err(io_error("sync offsets directory", &consumer_dir))?;
        }
        Ok(())
    }

    /// At open: removes the offsets of topics that no longer exist (a crash
    /// during a topic's deletion) and temp files left by crashed commits.
    /// Unknown entries are left alone and logged.
    pub(crate) fn sweep(&self, topic_exists: impl Fn(&str) -> bool) -> Result<(), Error> {
        for consumer in self.consumers()? {
            let consumer_dir = layout::child(NameKind::Consumer, &self.dir, &consumer)?;
            let mut removed = false;
            for entry in self
                .fs
                .read_dir(&consumer_dir)
                .map_err(io_error("list offsets directory", &consumer_dir))?
            {
                let path = consumer_dir.join(&entry.name);
                let topic = entry
                    .name
                    .to_str()
                    .filter(|name| entry.is_dir && layout::validate_topic_name(name).is_ok());
                match topic {
                    Some(topic) if !topic_exists(topic) => {
                        tracing::warn!(dir = %path.display(), "removing offsets of a deleted topic");
                        remove_tree(&*self.fs, &path)?;
                        removed = true;
                    }
                    Some(_) => self.sweep_temp_files(&path)?,
                    None => {
                        tracing::warn!(path = %path.display(), "leaving unknown entry alone");
                    }
                }
            }
            if removed {
                self.fs
                    .sync_dir(&consumer_dir)
                    .map_err(io_error("sync offsets directory", &consumer_dir))?;
            }
        }
        Ok(())
    }

    fn sweep_temp_files(&self, dir: &Path) -> Result<(), Error> {
        let mut removed = false;
        for entry in self
            .fs
            .read_dir(dir)
            .map_err(io_error("list offsets directory", dir))?
        {
            let path = dir.join(&entry.name);
            let is_temp = entry
                .name
                .to_str()
                .is_some_and(|name| name.ends_with(layout::TMP_SUFFIX));
            if entry.is_dir || !is_temp {
                if entry.is_dir || layout::parse_offset_file(&entry.name).is_none() {
                    tracing::warn!(path = %path.display(), "leaving unknown entry alone");
                }
                continue;
            }
            tracing::warn!(file = %path.display(), "removing temp file left by a crash");
            self.fs
                .remove_file(&path)
                .map_err(io_error("remove temp file", &path))?;
            removed = true;
        }
        if removed {
            self.fs
                .sync_dir(dir)
                .map_err(io_error("sync offsets directory", dir))?;
        }
        Ok(())
    }

    /// Removes every committed offset of `consumer`: `false` when it had
    /// none. Durable on return (the offsets directory is synced).
    pub(crate) fn remove_consumer(&self, consumer: &str) -> Result<bool, Error> {
        let dir = layout::child(NameKind::Consumer, &self.dir, consumer)?;
        if !self
            .fs
            .exists(&dir)
            .map_err(io_error("check offsets directory", &dir))?
        {
            return Ok(false);
        }
        lock(&self.synced).retain(|p| !p.starts_with(&dir));
        remove_tree(&*self.fs, &dir)?;
        self.fs
            .sync_dir(&self.dir)
            .map_err(io_error("sync offsets directory", &self.dir))?;
        Ok(true)
    }

    /// The consumer ids with a directory under `<data>/offsets`; other
    /// entries are logged and skipped.
    pub(crate) fn consumers(&self) -> Result<Vec<String>, Error> {
        let mut consumers = Vec::new();
        for entry in self
            .fs
            .read_dir(&self.dir)
            .map_err(io_error("list offsets directory", &self.dir))?
        {
            match entry.name.to_str() {
                Some(name) if entry.is_dir && layout::validate_consumer_id(name).is_ok() => {
                    consumers.push(name.to_owned());
                }
                _ => tracing::warn!(
                    path = %self.dir.join(&entry.name).display(),
                    "leaving unknown entry alone"
                ),
            }
        }
        Ok(consumers)
    }
}

fn stripe(path: &Path) -> usize {
    let mut hasher = DefaultHasher::new();
    path.hash(&mut hasher);
    (hasher.finish() % STRIPES as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metadata: &[u8]) -> Committed {
        Committed {
            topic_id: 0x0123_4567_89ab_cdef,
            offset: 42,
            commit_time_ms: 1_700_000_000_000,
            metadata: metadata.to_vec(),
        }
    }

    #[test]
    fn offset_files_roundtrip() {
        let path = Path::new("/o/c/t/0.offset");
        for metadata in [&b""[..], b"hello", &[7u8; MAX_OFFSET_METADATA_BYTES]] {
            let committed = sample(metadata);
            let bytes = encode(&committed);
            assert!(bytes.len() <= OFFSET_FILE_MAX_BYTES);
            assert_eq!(decode(path, &bytes).unwrap(), committed);
        }
    }

    #[test]
    fn every_flipped_bit_and_every_cut_is_reported() {
        let path = Path::new("/o/c/t/0.offset");
        let bytes = encode(&sample(b"meta"));
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(decode(path, &damaged), Err(Error::CorruptMetadata { .. })),
                "bit {bit}"
            );
        }
        for len in 0..bytes.len() {
            assert!(decode(path, &bytes[..len]).is_err(), "cut at {len}");
        }
        assert!(decode(path, &vec![0u8; bytes.len()]).is_err());
    }
}
