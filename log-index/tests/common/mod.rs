//! Helpers shared by the integration tests: linear-scan oracles, random
//! entry sets, and ways to put a given set of entries behind each index
//! implementation.
//!
//! Not every test file uses every helper.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use log_index::{ActiveIndex, Error, IndexEntry, IndexFile, MemIndex, MmapIndex, Reopened};
use proptest::prelude::*;
use tempfile::TempDir;

/// The floor entry of `target`, by linear scan.
pub fn oracle_lookup_offset(entries: &[IndexEntry], target: u32) -> IndexEntry {
    entries
        .iter()
        .rev()
        .find(|entry| entry.relative_offset <= target)
        .copied()
        .unwrap_or(IndexEntry::SEGMENT_START)
}

/// The first entry whose time is `>= time`, by linear scan.
pub fn oracle_first_at_or_after(entries: &[IndexEntry], time: i64) -> Option<(usize, IndexEntry)> {
    entries
        .iter()
        .position(|entry| entry.max_append_time >= time)
        .map(|index| (index, entries[index]))
}

/// The last entry whose time is `< time`, by linear scan.
pub fn oracle_time_scan_start(entries: &[IndexEntry], time: i64) -> IndexEntry {
    entries
        .iter()
        .rev()
        .find(|entry| entry.max_append_time < time)
        .copied()
        .unwrap_or(IndexEntry::SEGMENT_START)
}

/// A covered log length that fits `entries`: one past the last position, plus `extra`.
pub fn covered_len(entries: &[IndexEntry], extra: u64) -> u64 {
    entries
        .last()
        .map_or(0, |last| u64::from(last.position) + 1)
        + extra
}

/// Entries from deltas: `(offset delta >= 1, position delta >= 1, time delta >= 0)`.
pub fn entries_from_deltas(first_time: i64, deltas: &[(u32, u32, i64)]) -> Vec<IndexEntry> {
    let (mut offset, mut position, mut time) = (0u32, 0u32, first_time);
    let mut entries = Vec::with_capacity(deltas.len());
    for (index, &(offset_delta, position_delta, time_delta)) in deltas.iter().enumerate() {
        // The first entry may sit at relative offset 0 (a segment whose first
        // batch starts past position 0).
        offset = if index == 0 {
            offset_delta - 1
        } else {
            offset + offset_delta
        };
        position += position_delta;
        time += time_delta;
        entries.push(IndexEntry::new(offset, position, time));
    }
    entries
}

/// Random valid entry sets, often long enough to have a warm section, with
/// runs of equal times.
pub fn entry_sets() -> impl Strategy<Value = Vec<IndexEntry>> {
    let delta = (
        1u32..=6,
        1u32..=9000,
        prop_oneof![Just(0i64), 0i64..=4, 0i64..=100_000],
    );
    (
        prop_oneof![
            Just(0i64),
            -1_000_000i64..1_000_000,
            Just(1_700_000_000_000)
        ],
        prop_oneof![
            proptest::collection::vec(delta.clone(), 0..8),
            proptest::collection::vec(delta, 0..1400),
        ],
    )
        .prop_map(|(first_time, deltas)| entries_from_deltas(first_time, &deltas))
}

/// Offsets worth asking about: around every entry, below and beyond all.
pub fn offset_targets(entries: &[IndexEntry]) -> Vec<u32> {
    let mut targets = vec![0, 1, u32::MAX];
    for entry in entries {
        let offset = entry.relative_offset;
        targets.extend([offset.saturating_sub(1), offset, offset.saturating_add(1)]);
    }
    targets
}

/// Times worth asking about: around every entry, below and beyond all.
pub fn time_targets(entries: &[IndexEntry]) -> Vec<i64> {
    let mut targets = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX];
    for entry in entries {
        let time = entry.max_append_time;
        targets.extend([time.saturating_sub(1), time, time.saturating_add(1)]);
    }
    targets
}

/// An active index at `dir/name` holding exactly `entries`: with an interval
/// of one byte, every batch reported gets an entry.
pub fn active_with_entries(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> ActiveIndex {
    let path = dir.join("active.index");
    let index = ActiveIndex::create(&path, base_offset, 1).unwrap();
    fill(index, entries)
}

/// Reports one batch per entry of `entries` to `index` (created with an
/// interval of one byte, so every batch gets an entry).
pub fn fill<F: IndexFile>(mut index: ActiveIndex<F>, entries: &[IndexEntry]) -> ActiveIndex<F> {
    for (i, entry) in entries.iter().enumerate() {
        let batch_len = entries
            .get(i + 1)
            .map_or(1, |next| next.position - entry.position);
        let added = index
            .on_batch(
                entry.relative_offset,
                entry.position,
                batch_len,
                entry.max_append_time,
            )
            .unwrap();
        assert_eq!(added, Some(*entry));
    }
    index
}

/// Writes a sealed index holding `entries` (through `ActiveIndex::seal`) and
/// returns its path.
pub fn write_sealed(dir: &Path, base_offset: u64, entries: &[IndexEntry], covered: u64) -> PathBuf {
    let index = active_with_entries(dir, base_offset, entries);
    let path = index.path().to_path_buf();
    let sealed = index.seal(covered).unwrap();
    assert_eq!(sealed.entries(), entries);
    path
}

/// `entries` behind `MemIndex::load`.
pub fn mem_index(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> MemIndex {
    let covered = covered_len(entries, 100);
    let path = write_sealed(dir, base_offset, entries, covered);
    MemIndex::load(path, base_offset, covered).unwrap()
}

/// `entries` behind `MmapIndex::open`.
pub fn mmap_index(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> MmapIndex {
    let covered = covered_len(entries, 100);
    let path = write_sealed(dir, base_offset, entries, covered);
    MmapIndex::open(path, base_offset, covered).unwrap()
}

/// `entries` behind a live (unsealed) `ActiveIndex`.
pub fn active_index(dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> ActiveIndex {
    active_with_entries(dir, base_offset, entries)
}

/// `entries` behind a live `ActiveIndex` on a `File` the test opened itself
/// (`create_in`).
pub fn active_index_in_file(
    dir: &Path,
    base_offset: u64,
    entries: &[IndexEntry],
) -> ActiveIndex<File> {
    let path = dir.join("active.index");
    let file = create_new(&path);
    let index = ActiveIndex::create_in(file, &path, base_offset, 1).unwrap();
    let index = fill(index, entries);
    assert_eq!(index.path(), path.as_path());
    index
}

/// `entries` behind a live `ActiveIndex` on an in-memory file (`create_in`).
pub fn active_index_in_memory(
    _dir: &Path,
    base_offset: u64,
    entries: &[IndexEntry],
) -> ActiveIndex<Arc<MemFile>> {
    let index = ActiveIndex::create_in(MemFile::new(), "mem.index", base_offset, 1).unwrap();
    fill(index, entries)
}

/// `entries` sealed into an in-memory file, read back and validated by
/// `MemIndex::from_sealed_bytes`.
pub fn mem_index_from_bytes(_dir: &Path, base_offset: u64, entries: &[IndexEntry]) -> MemIndex {
    let covered = covered_len(entries, 100);
    let file = MemFile::new();
    let index = ActiveIndex::create_in(Arc::clone(&file), "mem.index", base_offset, 1).unwrap();
    let sealed = fill(index, entries).seal(covered).unwrap();
    let bytes = file.durable();
    assert_eq!(bytes, sealed.to_sealed_bytes());
    let loaded =
        MemIndex::from_sealed_bytes(bytes, Path::new("mem.index"), base_offset, covered).unwrap();
    assert_eq!(loaded, sealed);
    loaded
}

/// Opens `path` with `create_new`, read and write.
pub fn create_new(path: &Path) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .unwrap()
}

/// A file operation of [`MemFile`], to make it fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Len,
    Read,
    Write,
    Sync,
    SetLen,
}

/// An in-memory [`IndexFile`]: the bytes written (the page cache) apart from
/// the bytes synced (the disk), and operations that fail on demand.
///
/// A failing write writes the first half of its buffer first (a short
/// write). [`MemFile::power_loss`] throws away what was not synced.
#[derive(Debug, Default)]
pub struct MemFile {
    state: Mutex<MemState>,
}

#[derive(Debug, Default)]
struct MemState {
    data: Vec<u8>,
    durable: Vec<u8>,
    failing: Vec<Op>,
    calls: Vec<Op>,
}

impl MemFile {
    pub fn new() -> Arc<MemFile> {
        Arc::new(MemFile::default())
    }

    pub fn with_bytes(bytes: &[u8]) -> Arc<MemFile> {
        let file = MemFile::new();
        file.replace(bytes);
        file
    }

    /// Makes every later `op` fail (`on`), or succeed again.
    pub fn fail(&self, op: Op, on: bool) {
        let mut state = self.state.lock().unwrap();
        state.failing.retain(|&failing| failing != op);
        if on {
            state.failing.push(op);
        }
    }

    /// The bytes written, synced or not.
    pub fn bytes(&self) -> Vec<u8> {
        self.state.lock().unwrap().data.clone()
    }

    /// The bytes synced.
    pub fn durable(&self) -> Vec<u8> {
        self.state.lock().unwrap().durable.clone()
    }

    /// Replaces the content, written and synced.
    pub fn replace(&self, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap();
        state.data = bytes.to_vec();
        state.durable = bytes.to_vec();
    }

    /// Power loss: what was not synced is gone.
    pub fn power_loss(&self) {
        let mut state = self.state.lock().unwrap();
        state.data = state.durable.clone();
    }

    /// How many times `op` was called, failed or not.
    pub fn calls(&self, op: Op) -> usize {
        let state = self.state.lock().unwrap();
        state.calls.iter().filter(|&&call| call == op).count()
    }

    /// Records the call; the error to return if `op` fails.
    fn call(state: &mut MemState, op: Op) -> io::Result<()> {
        state.calls.push(op);
        if state.failing.contains(&op) {
            return Err(io::Error::other(format!("injected {op:?} failure")));
        }
        Ok(())
    }
}

fn write_at(data: &mut Vec<u8>, buf: &[u8], pos: u64) {
    let pos = usize::try_from(pos).unwrap();
    if data.len() < pos + buf.len() {
        data.resize(pos + buf.len(), 0);
    }
    data[pos..pos + buf.len()].copy_from_slice(buf);
}

impl IndexFile for MemFile {
    fn len(&self) -> io::Result<u64> {
        let mut state = self.state.lock().unwrap();
        MemFile::call(&mut state, Op::Len)?;
        Ok(state.data.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let mut state = self.state.lock().unwrap();
        MemFile::call(&mut state, Op::Read)?;
        let start = usize::try_from(pos).unwrap().min(state.data.len());
        let n = buf.len().min(state.data.len() - start);
        buf[..n].copy_from_slice(&state.data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        if let Err(err) = MemFile::call(&mut state, Op::Write) {
            write_at(&mut state.data, &buf[..buf.len() / 2], pos);
            return Err(err);
        }
        write_at(&mut state.data, buf, pos);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        MemFile::call(&mut state, Op::Sync)?;
        state.durable = state.data.clone();
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        MemFile::call(&mut state, Op::SetLen)?;
        state.data.resize(usize::try_from(len).unwrap(), 0);
        Ok(())
    }
}

/// Where index files live in a test, and how an `ActiveIndex` reaches them:
/// the same test runs with every backend.
pub trait Backend {
    /// The handle type of the index.
    type File: IndexFile;

    /// Whether the files are real files at [`Backend::path`] (so
    /// `MemIndex::load` and `MmapIndex::open` can read them).
    const REAL_FILES: bool;

    fn new() -> Self;

    /// The path of the file `name` (what `ActiveIndex::path` returns).
    fn path(&self, name: &str) -> PathBuf;

    /// Creates the index file `name`.
    fn create(
        &self,
        name: &str,
        base_offset: u64,
        interval_bytes: u32,
    ) -> Result<ActiveIndex<Self::File>, Error>;

    /// Reopens the index file `name`.
    fn open_unsealed(
        &self,
        name: &str,
        base_offset: u64,
        interval_bytes: u32,
        log_len: u64,
    ) -> Result<Reopened<Self::File>, Error>;

    /// The bytes of file `name` (written, synced or not); `None` when it
    /// does not exist.
    fn read(&self, name: &str) -> Option<Vec<u8>>;

    /// Replaces the bytes of file `name`, creating it if needed.
    fn write(&self, name: &str, bytes: &[u8]);

    /// Validates the sealed file `name` with a loader of this backend.
    fn load_sealed(&self, name: &str, base_offset: u64, covered: u64) -> Result<MemIndex, Error>;

    /// Length of file `name`.
    fn len(&self, name: &str) -> u64 {
        self.read(name).unwrap().len() as u64
    }
}

/// Real files, through the path constructors (`create`, `open_unsealed`).
#[derive(Debug)]
pub struct PathFiles(TempDir);

/// Real files the test opens itself, through the `_in` constructors.
#[derive(Debug)]
pub struct OpenFiles(TempDir);

/// In-memory files ([`MemFile`]), through the `_in` constructors.
#[derive(Debug, Default)]
pub struct MemFiles(Mutex<HashMap<String, Arc<MemFile>>>);

impl MemFiles {
    /// The in-memory file `name`, created empty if needed.
    pub fn file(&self, name: &str) -> Arc<MemFile> {
        let mut files = self.0.lock().unwrap();
        Arc::clone(files.entry(name.to_owned()).or_default())
    }
}

fn read_file(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => panic!("{err}"),
    }
}

impl Backend for PathFiles {
    type File = File;
    const REAL_FILES: bool = true;

    fn new() -> Self {
        PathFiles(TempDir::new().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn create(&self, name: &str, base_offset: u64, interval: u32) -> Result<ActiveIndex, Error> {
        ActiveIndex::create(self.path(name), base_offset, interval)
    }

    fn open_unsealed(
        &self,
        name: &str,
        base_offset: u64,
        interval: u32,
        log_len: u64,
    ) -> Result<Reopened, Error> {
        ActiveIndex::open_unsealed(self.path(name), base_offset, interval, log_len)
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        read_file(&self.path(name))
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    fn load_sealed(&self, name: &str, base_offset: u64, covered: u64) -> Result<MemIndex, Error> {
        MemIndex::load(self.path(name), base_offset, covered)
    }
}

impl Backend for OpenFiles {
    type File = File;
    const REAL_FILES: bool = true;

    fn new() -> Self {
        OpenFiles(TempDir::new().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    fn create(&self, name: &str, base_offset: u64, interval: u32) -> Result<ActiveIndex, Error> {
        let path = self.path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| Error::Io {
                op: "create",
                path: path.clone(),
                source,
            })?;
        ActiveIndex::create_in(file, &path, base_offset, interval)
    }

    fn open_unsealed(
        &self,
        name: &str,
        base_offset: u64,
        interval: u32,
        log_len: u64,
    ) -> Result<Reopened, Error> {
        let path = self.path(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        ActiveIndex::open_unsealed_in(file, &path, base_offset, interval, log_len)
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        read_file(&self.path(name))
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }

    fn load_sealed(&self, name: &str, base_offset: u64, covered: u64) -> Result<MemIndex, Error> {
        let path = self.path(name);
        let bytes = std::fs::read(&path).unwrap();
        MemIndex::from_sealed_bytes(bytes, &path, base_offset, covered)
    }
}

impl Backend for MemFiles {
    type File = Arc<MemFile>;
    const REAL_FILES: bool = false;

    fn new() -> Self {
        MemFiles::default()
    }

    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from(name)
    }

    fn create(
        &self,
        name: &str,
        base_offset: u64,
        interval: u32,
    ) -> Result<ActiveIndex<Arc<MemFile>>, Error> {
        ActiveIndex::create_in(self.file(name), name, base_offset, interval)
    }

    fn open_unsealed(
        &self,
        name: &str,
        base_offset: u64,
        interval: u32,
        log_len: u64,
    ) -> Result<Reopened<Arc<MemFile>>, Error> {
        let file = self.0.lock().unwrap().get(name).cloned().unwrap();
        ActiveIndex::open_unsealed_in(file, name, base_offset, interval, log_len)
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(name).map(|file| file.bytes())
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        self.file(name).replace(bytes);
    }

    fn load_sealed(&self, name: &str, base_offset: u64, covered: u64) -> Result<MemIndex, Error> {
        let bytes = self.read(name).unwrap();
        MemIndex::from_sealed_bytes(bytes, Path::new(name), base_offset, covered)
    }
}

/// A small fixed index: 5 entries, base offset 1000, covered length 600.
pub fn small_entries() -> Vec<IndexEntry> {
    vec![
        IndexEntry::new(3, 100, 1_000),
        IndexEntry::new(7, 210, 1_000),
        IndexEntry::new(12, 330, 1_005),
        IndexEntry::new(20, 450, 1_100),
        IndexEntry::new(21, 580, 1_100),
    ]
}

/// Base offset of [`small_entries`].
pub const SMALL_BASE: u64 = 1000;
/// Covered log length of [`small_entries`].
pub const SMALL_COVERED: u64 = 600;

/// Recomputes the CRC of a sealed file image in place (test-side, from the
/// spec: CRC32 of every byte before the last 4).
pub fn fix_crc(bytes: &mut [u8]) {
    let crc_at = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..crc_at]);
    bytes[crc_at..].copy_from_slice(&crc.to_le_bytes());
}
