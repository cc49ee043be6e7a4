//! A simulated file system for crash and fault tests: [`SimFs`], an
//! in-memory, deterministic implementation of [`Fs`] and [`FileHandle`].
//!
//! Power loss cannot be produced for real on our machines, so the storage
//! layer is tested against this model of what a disk and a journaling file
//! system may leave behind. It is test infrastructure, but it lives in `src/`
//! so integration tests and benches can use it. The model (durable and live
//! images, the journal of namespace operations, what a crash keeps and
//! tears, the faults) and what it deliberately leaves out are documented on
//! [`SimFs`], where users of the crate see them. It never touches a real
//! file and holds no storage policy.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::io::{DirEntry, FileHandle, Fs, OpenMode};

/// The largest length of a simulated file, in bytes.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Inode number.
type Ino = u64;

/// Root of relative paths.
const REL_ROOT: Ino = 0;
/// Root of absolute paths.
const ABS_ROOT: Ino = 1;

/// What an armed fault does to the operation it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// Fails with EIO: an error of kind [`io::ErrorKind::Other`] whose
    /// message starts with "simulated EIO". The operation has no effect,
    /// except a failed `sync_data`, which drops the file's pending writes
    /// (see [`SimFs`]).
    Eio,
    /// Fails with ENOSPC: an error of kind [`io::ErrorKind::StorageFull`].
    /// No effect, except on `sync_data` as for [`FaultKind::Eio`].
    Enospc,
    /// On a write: writes the first half of the buffer (rounded down), then
    /// fails with an error of kind [`io::ErrorKind::Other`]. On any other
    /// operation: the same as [`FaultKind::Eio`].
    ShortWrite,
}

/// What a torn sector holds after a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TearKind {
    /// The sector was not written: the durable bytes (zeros past the
    /// durable length), and the file does not grow to cover it.
    Old,
    /// The live bytes (zeros past the live length).
    New,
    /// Zeros.
    Zeros,
    /// Seeded pseudo-random bytes.
    Garbage,
}

/// The sector a crash tore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornSector {
    /// A path of the file after the crash.
    pub path: PathBuf,
    /// Byte position of the start of the sector.
    pub sector_start: u64,
    /// The bytes that were torn: from the first to the last byte of the
    /// sector that pending writes touched (within the file for an
    /// [`TearKind::Old`] tear; empty, at `sector_start`, if that left
    /// none). Bytes in this range that no pending write touched kept their
    /// content.
    pub torn: Range<u64>,
    /// What the torn bytes became.
    pub kind: TearKind,
}

/// What a [`SimFs::crash`] kept, lost and tore. `Display` gives a one-line
/// summary for failure messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashReport {
    /// The seed of the crash.
    pub seed: u64,
    /// Chance, in percent, that each pending chunk and `set_len` was kept.
    pub keep_percent: u8,
    /// Unsynced namespace operations replayed (a prefix of the journal).
    pub namespace_ops_kept: usize,
    /// Unsynced namespace operations before the crash.
    pub namespace_ops_pending: usize,
    /// Sector chunks of pending writes kept (surviving files only).
    pub chunks_kept: usize,
    /// Sector chunks of pending writes before the crash (surviving files
    /// only).
    pub chunks_pending: usize,
    /// Pending `set_len` calls applied (surviving files only).
    pub set_lens_kept: usize,
    /// Pending `set_len` calls before the crash (surviving files only).
    pub set_lens_pending: usize,
    /// The torn sector, if any pending write touched a surviving file.
    pub torn: Option<TornSector>,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash seed {}: kept {}/{} namespace ops, {}/{} sector chunks and {}/{} set_len \
             (keep {}%)",
            self.seed,
            self.namespace_ops_kept,
            self.namespace_ops_pending,
            self.chunks_kept,
            self.chunks_pending,
            self.set_lens_kept,
            self.set_lens_pending,
            self.keep_percent,
        )?;
        match &self.torn {
            Some(torn) => write!(
                f,
                "; tore {} bytes {}..{} ({:?})",
                torn.path.display(),
                torn.torn.start,
                torn.torn.end,
                torn.kind,
            ),
            None => f.write_str("; nothing to tear"),
        }
    }
}

/// A simulated file system in memory, for crash and fault tests.
///
/// # What it models
///
/// - **Data.** Every file keeps a *durable* image (its content as of its
///   last successful [`sync_data`](FileHandle::sync_data)), a *live* image
///   (what reads see) and the operations since that sync: writes and
///   `set_len`s.
/// - **Namespace.** Every directory keeps live entries and durable entries.
///   `create_new`, `create_dir_all`, `rename`, `remove_file` and
///   `remove_dir` change only the live entries, and are appended, in the
///   order they happened, to one journal for the whole file system.
///   [`sync_dir`](Fs::sync_dir) makes that directory's entries durable and
///   takes its changes out of the journal. Syncing a file never makes its
///   directory entry durable (stricter than ext4). A rename across
///   directories is durable once both are synced; after syncing only one of
///   them a crash can leave the file under both names or under neither. New
///   directories are journaled like files: one is durable once its parent is
///   synced ([`SimFs::create_dir_all_durable`] sets up durable directories
///   for a test).
/// - **Power loss**, by [`SimFs::crash`], in four steps:
///   1. Namespace: every directory goes back to its durable entries, then a
///      seeded prefix (none to all) of the journal is replayed: metadata is
///      journaled, so it survives in order. Whatever is no longer reachable
///      is gone.
///   2. Data: a keep probability is drawn for the crash (0, 25, 50, 75 or
///      100 %, so that "nothing survived" and "everything survived" are
///      frequent). Every pending write is split at 512-byte sector
///      boundaries ([`SimFs::SECTOR_BYTES`]) into chunks; each chunk and each
///      pending `set_len` is kept or lost on its own coin, and the kept ones
///      are replayed in their original order over the durable image. Later
///      writes can therefore survive without earlier ones; a kept chunk past
///      the end extends the file with zeros.
///   3. Tear: one sector touched by a pending write of a surviving file is
///      torn. The bytes of it that pending writes touched become the old
///      (durable) bytes, the new (live) bytes, zeros or garbage; for all but
///      "old" the file grows to cover them if needed. Bytes that were durable
///      and not overwritten since are never torn.
///   4. Every image becomes both durable and live, and every handle opened
///      before the crash fails from then on.
///
///   The same operations and the same seed give the same result, and
///   [`CrashReport`] says what was kept and torn (print it, with the seed,
///   when a test fails).
/// - **Failed fsync**, as Linux does it ("fsyncgate"): a `sync_data` that
///   fails drops the file's pending writes from the way to the disk. Reads
///   still see them, but a later successful sync does not make them durable,
///   and a crash loses them.
/// - **Faults**: [`SimFs::fail_nth`] fails one chosen operation with EIO,
///   ENOSPC or a short write; [`SimFs::fail_syncs`] fails every `sync_data`;
///   [`SimFs::set_capacity`] makes growing writes fail with ENOSPC once the
///   live files fill the capacity. Every call of an [`Fs`] or [`FileHandle`]
///   method counts as one operation ([`SimFs::op_count`]), including `len`,
///   `exists` and each `read_at` of a default `read`/`read_exact_at`; calls
///   on handles from before a crash do not.
/// - **Unlink**: a removed file stays readable and writable through the
///   handles open on it.
///
/// # What it does not model
///
/// Timestamps, permissions and ownership, hard links and symlinks (a file is
/// linked twice only after a half-synced rename), sparse files (a `set_len`
/// extension takes space like written bytes), the space of directories and
/// of files linked only in the durable namespace, file locks, `mmap`,
/// persistent read errors (a fault fires once), reordering of metadata
/// operations, and content smaller than a sector: a write is kept or lost in
/// whole chunks, and partial sector content appears only in the torn sector.
/// Paths are opaque keys: `..` is rejected, nothing is canonicalised beyond
/// what [`Path::components`] does, and relative and absolute paths are two
/// separate trees. A file can grow to at most 1 GiB (it is held in memory).
///
/// # Sharing
///
/// Clones share one file system: keep a clone to call [`SimFs::crash`] or
/// arm faults while the storage layer holds another as `Arc<dyn Fs>`. Every
/// operation takes one lock, so calls from many threads are serialised.
#[derive(Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for SimFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("SimFs");
        if let Ok(state) = self.state.try_lock() {
            out.field("op_count", &state.op_count)
                .field("crashes", &state.generation)
                .field("nodes", &state.nodes.len())
                .field("journal", &state.journal.len());
        }
        out.finish_non_exhaustive()
    }
}

impl SimFs {
    /// Granularity of what a crash keeps or loses, and size of the torn
    /// sector, in bytes.
    pub const SECTOR_BYTES: u64 = 512;

    /// An empty file system, with both roots (`/` and the relative root)
    /// present and durable.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Simulates a power loss and a reboot (see [`SimFs`]): keeps a
    /// seeded part of what was not durable, tears one sector, and kills
    /// every open handle. Not an operation: it is not counted and no fault
    /// fires; armed faults, `fail_syncs` and the capacity stay as they are.
    pub fn crash(&self, seed: u64) -> CrashReport {
        self.lock().crash(seed)
    }

    /// Arms one fault: after `n` more operations, the next one fails with
    /// `kind` (`fail_nth(0, ..)` fails the very next operation). Later
    /// operations succeed again. Replaces a fault that has not fired yet.
    pub fn fail_nth(&self, n: u64, kind: FaultKind) {
        let mut state = self.lock();
        let at = state.op_count.saturating_add(n);
        state.armed = Some((at, kind));
    }

    /// Removes the armed fault, if it has not fired.
    pub fn disarm(&self) {
        self.lock().armed = None;
    }

    /// Whether a fault is armed and has not fired yet.
    pub fn is_fault_armed(&self) -> bool {
        self.lock().armed.is_some()
    }

    /// Makes every `sync_data` fail with EIO (`true`) or behave again
    /// (`false`). A failed sync drops the file's pending writes, for good
    /// ("fsyncgate", see [`SimFs`]).
    pub fn fail_syncs(&self, fail: bool) {
        self.lock().fail_syncs = fail;
    }

    /// Sets the capacity in bytes (`None`: unlimited, the default). A write
    /// or `set_len` that would make the live files larger than the capacity
    /// fails with ENOSPC: a write first writes the prefix that fits (a short
    /// write), a `set_len` changes nothing. Writes within a file's length
    /// always succeed; truncating or removing files frees space.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Bytes used by files that are linked in the live namespace or open,
    /// as counted against the capacity.
    pub fn used_bytes(&self) -> u64 {
        self.lock().used_bytes()
    }

    /// Number of operations so far (every call of an [`Fs`] or
    /// [`FileHandle`] method, successful or not).
    pub fn op_count(&self) -> u64 {
        self.lock().op_count
    }

    /// Creates a directory and its missing parents, and makes every
    /// component of `path` durable, as if each parent had been synced. For
    /// test setup: not an operation, so not counted and never faulted.
    ///
    /// # Errors
    ///
    /// As [`Fs::create_dir_all`].
    pub fn create_dir_all_durable(&self, path: &Path) -> io::Result<()> {
        self.lock().create_dir_all(path, true)
    }

    /// The content of the file at `path` as reads see it now, if it exists
    /// (not an operation).
    pub fn live_file(&self, path: &Path) -> Option<Vec<u8>> {
        let state = self.lock();
        let ino = state.resolve(path).ok()?;
        state.file(ino).map(|file| file.live.clone())
    }

    /// Every file of the live namespace with its live content (not an
    /// operation).
    pub fn live_snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        self.lock().snapshot(Image::Live)
    }

    /// Every file of the durable namespace with its durable content: the
    /// image a crash would leave if none of the pending operations survived
    /// and no sector tore (not an operation).
    pub fn durable_snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        self.lock().snapshot(Image::Durable)
    }

    /// Every path of the live namespace, files and directories, sorted
    /// (not an operation).
    pub fn list_all(&self) -> Vec<PathBuf> {
        let state = self.lock();
        let mut paths = Vec::new();
        state.walk_tree(Image::Live, |path, _, _| paths.push(path.to_path_buf()));
        paths.sort();
        paths
    }
}

impl Fs for SimFs {
    /// The number of crashes so far: every [`SimFs::crash`] is a reboot.
    fn boot_id(&self) -> Option<[u8; 16]> {
        let mut id = *b"simfs-boot-\0\0\0\0\0";
        let generation = u32::try_from(self.lock().generation).unwrap_or(u32::MAX);
        id[12..].copy_from_slice(&generation.to_le_bytes());
        Some(id)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "create_dir_all", path));
        }
        state.create_dir_all(path, false)
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "create_new", path));
        }
        let (dir, name) = state.resolve_parent(path)?;
        if state.child(dir, &name).is_some() {
            return Err(error(io::ErrorKind::AlreadyExists, "file exists", path));
        }
        let ino = state.add_node(Node::File(FileNode {
            open: 1,
            ..FileNode::default()
        }));
        state.record(vec![Change {
            dir,
            name,
            target: Some(ino),
        }]);
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            path: path.to_path_buf(),
            generation: state.generation,
            writable: true,
        }))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "open", path));
        }
        let ino = state.resolve(path)?;
        let generation = state.generation;
        let Some(file) = state.file_mut(ino) else {
            return Err(error(io::ErrorKind::IsADirectory, "is a directory", path));
        };
        file.open += 1;
        Ok(Arc::new(SimFile {
            state: Arc::clone(&self.state),
            ino,
            path: path.to_path_buf(),
            generation,
            writable: mode == OpenMode::ReadWrite,
        }))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "read_dir", path));
        }
        let ino = state.resolve(path)?;
        let dir = state
            .dir(ino)
            .ok_or_else(|| error(io::ErrorKind::NotADirectory, "not a directory", path))?;
        Ok(dir
            .live
            .iter()
            .map(|(name, child)| DirEntry {
                name: name.clone(),
                is_dir: state.dir(*child).is_some(),
            })
            .collect())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "rename", from));
        }
        state.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "remove_file", path));
        }
        let (dir, name) = state.resolve_parent(path)?;
        let ino = state
            .child(dir, &name)
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file", path))?;
        if state.dir(ino).is_some() {
            return Err(error(io::ErrorKind::IsADirectory, "is a directory", path));
        }
        state.record(vec![Change {
            dir,
            name,
            target: None,
        }]);
        state.collect_garbage();
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "remove_dir", path));
        }
        let (dir, name) = state.resolve_parent(path)?;
        let ino = state
            .child(dir, &name)
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such directory", path))?;
        let node = state
            .dir(ino)
            .ok_or_else(|| error(io::ErrorKind::NotADirectory, "not a directory", path))?;
        if !node.live.is_empty() {
            return Err(error(
                io::ErrorKind::DirectoryNotEmpty,
                "directory not empty",
                path,
            ));
        }
        state.record(vec![Change {
            dir,
            name,
            target: None,
        }]);
        state.collect_garbage();
        Ok(())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "sync_dir", path));
        }
        let ino = state.resolve(path)?;
        let dir = state
            .dir_mut(ino)
            .ok_or_else(|| error(io::ErrorKind::NotADirectory, "not a directory", path))?;
        dir.durable = dir.live.clone();
        for op in &mut state.journal {
            op.retain(|change| change.dir != ino);
        }
        state.journal.retain(|op| !op.is_empty());
        state.collect_garbage();
        Ok(())
    }

    fn available_space(&self, path: &Path) -> io::Result<u64> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "available_space", path));
        }
        let used = state.used_bytes();
        Ok(state
            .capacity
            .map_or(u64::MAX, |capacity| capacity.saturating_sub(used)))
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        let mut state = self.lock();
        if let Some(kind) = state.tick() {
            return Err(fault_error(kind, "exists", path));
        }
        match state.resolve(path) {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(err),
        }
    }
}

/// A handle on a simulated file.
struct SimFile {
    state: Arc<Mutex<State>>,
    ino: Ino,
    /// The path it was opened by, for error messages.
    path: PathBuf,
    /// The crash count when opened: a handle from before a crash is dead.
    generation: u64,
    writable: bool,
}

impl fmt::Debug for SimFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimFile")
            .field("ino", &self.ino)
            .field("path", &self.path)
            .field("generation", &self.generation)
            .field("writable", &self.writable)
            .finish_non_exhaustive()
    }
}

impl SimFile {
    /// Locks the file system and counts one operation; fails for a handle
    /// from before a crash, and with the armed fault if it fires now.
    fn begin(&self, op: &str) -> io::Result<(MutexGuard<'_, State>, Option<FaultKind>)> {
        let mut state = lock(&self.state);
        if state.generation != self.generation {
            return Err(io::Error::other(format!(
                "{op} of {} on a handle from before the crash",
                self.path.display()
            )));
        }
        let fault = state.tick();
        Ok((state, fault))
    }

    fn file<'a>(&self, state: &'a State) -> &'a FileNode {
        state.file(self.ino).expect("an open handle keeps its file")
    }

    fn check_writable(&self, op: &str) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{op} of {}: opened read-only", self.path.display()),
            ))
        }
    }
}

impl FileHandle for SimFile {
    fn len(&self) -> io::Result<u64> {
        let (state, fault) = self.begin("len")?;
        if let Some(kind) = fault {
            return Err(fault_error(kind, "len", &self.path));
        }
        Ok(self.file(&state).live.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        let (state, fault) = self.begin("read_at")?;
        if let Some(kind) = fault {
            return Err(fault_error(kind, "read_at", &self.path));
        }
        let live = &self.file(&state).live;
        let Ok(start) = usize::try_from(pos) else {
            return Ok(0);
        };
        let Some(available) = live.get(start..) else {
            return Ok(0);
        };
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        let (mut state, fault) = self.begin("write_all_at")?;
        if let Some(kind @ (FaultKind::Eio | FaultKind::Enospc)) = fault {
            return Err(fault_error(kind, "write_all_at", &self.path));
        }
        self.check_writable("write_all_at")?;
        if fault == Some(FaultKind::ShortWrite) {
            let half = buf.len() / 2;
            state.write(self.ino, &buf[..half], pos)?;
            return Err(io::Error::other(format!(
                "simulated short write of {}: {half} of {} bytes written",
                self.path.display(),
                buf.len()
            )));
        }
        state.write(self.ino, buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        let (mut state, fault) = self.begin("sync_data")?;
        let fault = fault.or(state.fail_syncs.then_some(FaultKind::Eio));
        let file = state
            .file_mut(self.ino)
            .expect("an open handle keeps its file");
        if let Some(kind) = fault {
            // fsyncgate: the kernel marks the dirty pages clean, so the
            // data they held never reaches the disk.
            file.pending.clear();
            return Err(fault_error(kind, "sync_data", &self.path));
        }
        for op in file.pending.drain(..) {
            op.apply(&mut file.durable);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let (mut state, fault) = self.begin("set_len")?;
        if let Some(kind) = fault {
            return Err(fault_error(kind, "set_len", &self.path));
        }
        self.check_writable("set_len")?;
        state.set_len(self.ino, len)
    }
}

impl Drop for SimFile {
    fn drop(&mut self) {
        let mut state = lock(&self.state);
        if state.generation == self.generation
            && let Some(file) = state.file_mut(self.ino)
        {
            file.open = file.open.saturating_sub(1);
        }
    }
}

/// Locks the state, ignoring poisoning: a test that panicked while holding
/// the lock left the state consistent, since no operation panics midway.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An operation not yet made durable by `sync_data`.
#[derive(Debug, Clone)]
enum DataOp {
    Write { pos: u64, bytes: Vec<u8> },
    SetLen(u64),
}

impl DataOp {
    fn apply(&self, image: &mut Vec<u8>) {
        match self {
            DataOp::Write { pos, bytes } => write_into(image, *pos, bytes),
            DataOp::SetLen(len) => image.resize(to_usize(*len), 0),
        }
    }
}

#[derive(Debug, Default)]
struct FileNode {
    live: Vec<u8>,
    durable: Vec<u8>,
    /// Operations since the last sync, in order; replayed over `durable`
    /// they give `live`, unless a failed sync dropped some.
    pending: Vec<DataOp>,
    /// Handles open on this file (since the last crash).
    open: u32,
}

#[derive(Debug, Default)]
struct DirNode {
    live: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

/// One entry change of a namespace operation: `name` in `dir` now points
/// at `target`, or is removed.
#[derive(Debug, Clone)]
struct Change {
    dir: Ino,
    name: OsString,
    target: Option<Ino>,
}

/// Which image to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Image {
    Live,
    Durable,
}

#[derive(Debug)]
struct State {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    /// Namespace operations not yet durable, in the order they happened,
    /// each with the changes of directories not synced since.
    journal: Vec<Vec<Change>>,
    /// Number of crashes so far.
    generation: u64,
    op_count: u64,
    /// The armed fault: the index of the operation it fails, and how.
    armed: Option<(u64, FaultKind)>,
    fail_syncs: bool,
    capacity: Option<u64>,
}

impl Default for State {
    fn default() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(REL_ROOT, Node::Dir(DirNode::default()));
        nodes.insert(ABS_ROOT, Node::Dir(DirNode::default()));
        State {
            nodes,
            next_ino: ABS_ROOT + 1,
            journal: Vec::new(),
            generation: 0,
            op_count: 0,
            armed: None,
            fail_syncs: false,
            capacity: None,
        }
    }
}

impl State {
    /// Counts one operation; returns the armed fault if it fires now.
    fn tick(&mut self) -> Option<FaultKind> {
        let index = self.op_count;
        self.op_count += 1;
        match self.armed {
            Some((at, kind)) if at == index => {
                self.armed = None;
                Some(kind)
            }
            _ => None,
        }
    }

    fn add_node(&mut self, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }

    fn dir(&self, ino: Ino) -> Option<&DirNode> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(dir)) => Some(dir),
            _ => None,
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Option<&mut DirNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(dir)) => Some(dir),
            _ => None,
        }
    }

    fn file(&self, ino: Ino) -> Option<&FileNode> {
        match self.nodes.get(&ino) {
            Some(Node::File(file)) => Some(file),
            _ => None,
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Option<&mut FileNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(file)) => Some(file),
            _ => None,
        }
    }

    /// The live entry `name` of directory `dir`.
    fn child(&self, dir: Ino, name: &OsStr) -> Option<Ino> {
        self.dir(dir)?.live.get(name).copied()
    }

    /// Follows `names` from `root` through live entries.
    fn walk(&self, root: Ino, names: &[&OsStr], path: &Path) -> io::Result<Ino> {
        let mut at = root;
        for name in names {
            let dir = self
                .dir(at)
                .ok_or_else(|| error(io::ErrorKind::NotADirectory, "not a directory", path))?;
            at = *dir
                .live
                .get(*name)
                .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file or directory", path))?;
        }
        Ok(at)
    }

    /// The live node at `path`.
    fn resolve(&self, path: &Path) -> io::Result<Ino> {
        let (root, names) = split(path)?;
        self.walk(root, &names, path)
    }

    /// The live directory that holds (or would hold) `path`, and its name
    /// there.
    fn resolve_parent(&self, path: &Path) -> io::Result<(Ino, OsString)> {
        let (root, names) = split(path)?;
        let Some((name, parents)) = names.split_last() else {
            return Err(error(io::ErrorKind::InvalidInput, "is a root", path));
        };
        let dir = self.walk(root, parents, path)?;
        if self.dir(dir).is_none() {
            return Err(error(io::ErrorKind::NotADirectory, "not a directory", path));
        }
        Ok((dir, name.to_os_string()))
    }

    /// Applies a namespace operation to the live entries and journals it.
    fn record(&mut self, changes: Vec<Change>) {
        for change in &changes {
            let dir = self
                .dir_mut(change.dir)
                .expect("a namespace change names a directory");
            match change.target {
                Some(target) => dir.live.insert(change.name.clone(), target),
                None => dir.live.remove(&change.name),
            };
        }
        self.journal.push(changes);
    }

    fn create_dir_all(&mut self, path: &Path, durable: bool) -> io::Result<()> {
        let (root, names) = split(path)?;
        let mut at = root;
        for name in names {
            if self.dir(at).is_none() {
                return Err(error(io::ErrorKind::NotADirectory, "not a directory", path));
            }
            let child = match self.child(at, name) {
                Some(child) => child,
                None => {
                    let child = self.add_node(Node::Dir(DirNode::default()));
                    self.record(vec![Change {
                        dir: at,
                        name: name.to_os_string(),
                        target: Some(child),
                    }]);
                    child
                }
            };
            if durable {
                self.settle(at, name);
            }
            at = child;
        }
        if self.dir(at).is_none() {
            return Err(error(
                io::ErrorKind::AlreadyExists,
                "exists and is not a directory",
                path,
            ));
        }
        Ok(())
    }

    /// Makes the live entry `name` of `dir` durable, alone.
    fn settle(&mut self, dir: Ino, name: &OsStr) {
        let node = self.dir_mut(dir).expect("settle names a directory");
        match node.live.get(name).copied() {
            Some(target) => node.durable.insert(name.to_os_string(), target),
            None => node.durable.remove(name),
        };
        for op in &mut self.journal {
            op.retain(|change| change.dir != dir || change.name != name);
        }
        self.journal.retain(|op| !op.is_empty());
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let (from_dir, from_name) = self.resolve_parent(from)?;
        let ino = self
            .child(from_dir, &from_name)
            .ok_or_else(|| error(io::ErrorKind::NotFound, "no such file or directory", from))?;
        let (to_dir, to_name) = self.resolve_parent(to)?;
        if from_dir == to_dir && from_name == to_name {
            return Ok(());
        }
        let moving_dir = self.dir(ino).is_some();
        if let Some(existing) = self.child(to_dir, &to_name) {
            if existing == ino {
                // Two names of one file (after a half-synced rename): as
                // rename(2), do nothing.
                return Ok(());
            }
            match (moving_dir, self.dir(existing)) {
                (false, Some(_)) => {
                    return Err(error(io::ErrorKind::IsADirectory, "is a directory", to));
                }
                (true, None) => {
                    return Err(error(io::ErrorKind::NotADirectory, "not a directory", to));
                }
                (true, Some(target)) if !target.live.is_empty() => {
                    return Err(error(
                        io::ErrorKind::DirectoryNotEmpty,
                        "directory not empty",
                        to,
                    ));
                }
                _ => {}
            }
        }
        if moving_dir {
            // A directory cannot move into itself.
            let (root, names) = split(to)?;
            for depth in 0..names.len() {
                if self.walk(root, &names[..depth], to)? == ino {
                    return Err(error(
                        io::ErrorKind::InvalidInput,
                        "cannot move a directory into itself",
                        to,
                    ));
                }
            }
        }
        self.record(vec![
            Change {
                dir: from_dir,
                name: from_name,
                target: None,
            },
            Change {
                dir: to_dir,
                name: to_name,
                target: Some(ino),
            },
        ]);
        self.collect_garbage();
        Ok(())
    }

    fn write(&mut self, ino: Ino, buf: &[u8], pos: u64) -> io::Result<()> {
        let end = pos
            .checked_add(buf.len() as u64)
            .filter(|end| *end <= MAX_FILE_BYTES)
            .ok_or_else(too_large)?;
        let current = self.file(ino).expect("writes name a file").live.len() as u64;
        let mut take = buf.len();
        let mut full = false;
        if let Some(capacity) = self.capacity {
            let room = capacity.saturating_sub(self.used_bytes());
            if end > current && end - current > room {
                full = true;
                let limit = current + room;
                take = to_usize(limit.saturating_sub(pos)).min(buf.len());
            }
        }
        if take > 0 {
            let op = DataOp::Write {
                pos,
                bytes: buf[..take].to_vec(),
            };
            let file = self.file_mut(ino).expect("writes name a file");
            op.apply(&mut file.live);
            file.pending.push(op);
        }
        if full {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "simulated ENOSPC: capacity reached after {take} of {} bytes",
                    buf.len()
                ),
            ))
        } else {
            Ok(())
        }
    }

    fn set_len(&mut self, ino: Ino, len: u64) -> io::Result<()> {
        if len > MAX_FILE_BYTES {
            return Err(too_large());
        }
        let current = self.file(ino).expect("set_len names a file").live.len() as u64;
        if let Some(capacity) = self.capacity
            && len > current
            && len - current > capacity.saturating_sub(self.used_bytes())
        {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "simulated ENOSPC: capacity reached",
            ));
        }
        let op = DataOp::SetLen(len);
        let file = self.file_mut(ino).expect("set_len names a file");
        op.apply(&mut file.live);
        file.pending.push(op);
        Ok(())
    }

    /// Bytes of the files linked in the live namespace or open.
    fn used_bytes(&self) -> u64 {
        let mut counted = BTreeSet::new();
        self.walk_tree(Image::Live, |_, ino, _| {
            counted.insert(ino);
        });
        self.nodes
            .iter()
            .filter_map(|(ino, node)| match node {
                Node::File(file) if file.open > 0 || counted.contains(ino) => {
                    Some(file.live.len() as u64)
                }
                _ => None,
            })
            .sum()
    }

    /// Calls `visit` with the path, number and node of every entry reachable
    /// from the roots through `image` entries (a directory is entered once).
    fn walk_tree(&self, image: Image, mut visit: impl FnMut(&Path, Ino, &Node)) {
        let mut entered = BTreeSet::from([REL_ROOT, ABS_ROOT]);
        let mut stack = vec![(PathBuf::new(), REL_ROOT), (PathBuf::from("/"), ABS_ROOT)];
        while let Some((path, ino)) = stack.pop() {
            let Some(dir) = self.dir(ino) else { continue };
            let entries = match image {
                Image::Live => &dir.live,
                Image::Durable => &dir.durable,
            };
            for (name, child) in entries {
                let Some(node) = self.nodes.get(child) else {
                    continue;
                };
                let child_path = path.join(name);
                visit(&child_path, *child, node);
                if matches!(node, Node::Dir(_)) && entered.insert(*child) {
                    stack.push((child_path, *child));
                }
            }
        }
    }

    fn snapshot(&self, image: Image) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        self.walk_tree(image, |path, _, node| {
            if let Node::File(file) = node {
                let content = match image {
                    Image::Live => &file.live,
                    Image::Durable => &file.durable,
                };
                files.insert(path.to_path_buf(), content.clone());
            }
        });
        files
    }

    /// Drops every node that nothing can reach any more: not through live
    /// or durable entries, nor the journal, nor an open handle.
    fn collect_garbage(&mut self) {
        let mut work = vec![REL_ROOT, ABS_ROOT];
        for (ino, node) in &self.nodes {
            if let Node::File(file) = node
                && file.open > 0
            {
                work.push(*ino);
            }
        }
        for change in self.journal.iter().flatten() {
            work.push(change.dir);
            work.extend(change.target);
        }
        let mut marked = BTreeSet::new();
        while let Some(ino) = work.pop() {
            if !marked.insert(ino) {
                continue;
            }
            if let Some(dir) = self.dir(ino) {
                work.extend(dir.live.values());
                work.extend(dir.durable.values());
            }
        }
        self.nodes.retain(|ino, _| marked.contains(ino));
    }

    fn crash(&mut self, seed: u64) -> CrashReport {
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
fn tear(
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
struct Chunk {
    file_pos: u64,
    in_buf: Range<usize>,
}

/// Splits a write of `len` bytes at `pos` at sector boundaries.
fn sector_chunks(pos: u64, len: usize) -> Vec<Chunk> {
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

/// Writes `bytes` at `pos` of `image`, zero-filling any gap.
fn write_into(image: &mut Vec<u8>, pos: u64, bytes: &[u8]) {
    let start = to_usize(pos);
    let end = start + bytes.len();
    if image.len() < end {
        image.resize(end, 0);
    }
    image[start..end].copy_from_slice(bytes);
}

/// Converts a length or position already bounded by [`MAX_FILE_BYTES`].
fn to_usize(n: u64) -> usize {
    usize::try_from(n).expect("simulated files are bounded far below usize::MAX")
}

/// The root and the names of `path`.
fn split(path: &Path) -> io::Result<(Ino, Vec<&OsStr>)> {
    let mut root = REL_ROOT;
    let mut names = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir => root = ABS_ROOT,
            Component::CurDir => {}
            Component::Normal(name) => names.push(name),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(error(
                    io::ErrorKind::InvalidInput,
                    "`..` and path prefixes are not supported",
                    path,
                ));
            }
        }
    }
    Ok((root, names))
}

fn error(kind: io::ErrorKind, what: &str, path: &Path) -> io::Error {
    io::Error::new(kind, format!("{what}: {}", path.display()))
}

fn fault_error(kind: FaultKind, op: &str, path: &Path) -> io::Error {
    let at = if path.as_os_str().is_empty() {
        String::new()
    } else {
        format!(" of {}", path.display())
    };
    match kind {
        FaultKind::Eio | FaultKind::ShortWrite => {
            io::Error::other(format!("simulated EIO in {op}{at}"))
        }
        FaultKind::Enospc => io::Error::new(
            io::ErrorKind::StorageFull,
            format!("simulated ENOSPC in {op}{at}"),
        ),
    }
}

fn too_large() -> io::Error {
    io::Error::new(
        io::ErrorKind::FileTooLarge,
        "simulated files are limited to 1 GiB",
    )
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fast, and good enough to
/// make crashes reproducible from a seed.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
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
