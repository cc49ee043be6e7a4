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

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::io::{DirEntry, FileHandle, Fs, IndexFile, OpenMode};

mod crash;
mod state;

pub use crash::SplitMix64;

use state::{Change, FileNode, Image, Node, State, error, fault_error};

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
        let (dir, name, ino) = state.entry_to_remove("remove_file", "no such file", path)?;
        if state.dir(ino).is_some() {
            return Err(error(io::ErrorKind::IsADirectory, "is a directory", path));
        }
        state.unlink(dir, name);
        Ok(())
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let (dir, name, ino) = state.entry_to_remove("remove_dir", "no such directory", path)?;
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
        state.unlink(dir, name);
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

impl IndexFile for SimFile {
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

impl FileHandle for SimFile {}

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
