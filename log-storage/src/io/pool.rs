//! A bounded pool of open files: [`PooledFs`] wraps any [`Fs`] so that the
//! handles it returns hold a real file descriptor only while they are in
//! use, with at most a budget of them open at once (least recently used
//! closed first). Open files then grow with neither sealed segments nor
//! idle partitions.
//!
//! - A handle opened read-only opens its file on first use, so opening a
//!   partition opens none of its sealed segments.
//! - A segment log (`*.log`) with writes not yet synced is closed only
//!   when the pool holds twice its budget: Linux reports a writeback error
//!   to the descriptors open when it happens, and to the next opener when
//!   nobody saw it (since 4.16), so the sync through a reopened descriptor
//!   still fails as it must; keeping dirty logs open is the stronger
//!   guarantee when the budget allows it. Once synced (the background flush
//!   does it within a second), a log is closed like any other file.
//!   Indexes and the recovery point are derived data: closed whenever the
//!   pool needs.
//! - A caller that holds a handle's file ([`FileHandle::pinned`]) keeps it
//!   open until it drops it, whatever the pool closes: a read that started
//!   on a segment retention then deletes finishes its read.
//!
//! The budget can be exceeded by pinned and dirty files; it is a target,
//! not a hard limit. This module holds no storage policy.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use super::{FileHandle, Fs, FsLayer, IndexFile, OpenMode};
use crate::util::lock;

/// Default number of files a pool keeps open.
pub const DEFAULT_OPEN_FILES_BUDGET: usize = 1024;

/// An [`Fs`] whose file handles share a budget of open files (see the
/// module docs).
#[derive(Debug, Clone)]
pub struct PooledFs {
    inner: Arc<dyn Fs>,
    pool: Arc<Pool>,
}

impl PooledFs {
    /// Wraps `inner`, keeping at most about `budget` files open (at least 8).
    pub fn new(inner: Arc<dyn Fs>, budget: usize) -> PooledFs {
        PooledFs {
            inner,
            pool: Arc::new(Pool {
                budget: AtomicUsize::new(budget.max(8)),
                state: Mutex::new(PoolState::default()),
                next_id: AtomicU64::new(0),
            }),
        }
    }

    /// Changes the budget (at least 8); the pool shrinks to it as files
    /// are next opened.
    pub fn set_budget(&self, budget: usize) {
        self.pool.budget.store(budget.max(8), Ordering::Relaxed);
    }

    /// Files the pool holds open now.
    pub fn open_files(&self) -> usize {
        lock(&self.pool.state).lru.len()
    }

    fn wrap(
        &self,
        path: &Path,
        mode: OpenMode,
        file: Option<Arc<dyn FileHandle>>,
    ) -> Arc<PooledFile> {
        let id = self.pool.next_id.fetch_add(1, Ordering::Relaxed);
        let opened = file.is_some();
        let handle = Arc::new_cyclic(|me| PooledFile {
            me: me.clone(),
            id,
            path: path.to_path_buf(),
            mode,
            fs: Arc::clone(&self.inner),
            pool: Arc::clone(&self.pool),
            slot: Mutex::new(file),
            writes: AtomicU64::new(0),
            synced: AtomicU64::new(0),
            pin_when_dirty: path.extension().is_some_and(|e| e == "log"),
        });
        if opened {
            self.pool.opened(&handle);
        }
        handle
    }
}

impl FsLayer for PooledFs {
    fn inner(&self) -> &dyn Fs {
        &*self.inner
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let file = self.inner.create_new(path)?;
        Ok(self.wrap(path, OpenMode::ReadWrite, Some(file)))
    }

    /// Opens a segment log (`*.log`) opened read-only on its first use (a
    /// missing one then fails its first operation with `NotFound`), and
    /// any other file now.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let lazy = mode == OpenMode::Read && path.extension().is_some_and(|e| e == "log");
        let file = if lazy {
            None
        } else {
            Some(self.inner.open(path, mode)?)
        };
        Ok(self.wrap(path, mode, file))
    }
}

#[derive(Debug)]
struct Pool {
    budget: AtomicUsize,
    state: Mutex<PoolState>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct PoolState {
    tick: u64,
    /// Open handles by last use.
    lru: BTreeMap<u64, Weak<PooledFile>>,
    /// Each open handle's tick in `lru`.
    ticks: HashMap<u64, u64>,
}

impl fmt::Debug for PoolState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolState")
            .field("open", &self.lru.len())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// Marks `file` used now.
    fn touch(&self, file: &PooledFile) {
        let mut state = lock(&self.state);
        if let Some(old) = state.ticks.get(&file.id).copied() {
            let weak = state.lru.remove(&old);
            state.tick += 1;
            let tick = state.tick;
            state.ticks.insert(file.id, tick);
            if let Some(weak) = weak {
                state.lru.insert(tick, weak);
            }
        }
    }

    /// Registers a newly opened `file`, then closes the least recently used
    /// files the budget has no room for.
    fn opened(&self, file: &Arc<PooledFile>) {
        let victims = {
            let mut state = lock(&self.state);
            state.tick += 1;
            let tick = state.tick;
            if let Some(old) = state.ticks.insert(file.id, tick) {
                state.lru.remove(&old);
            }
            state.lru.insert(tick, Arc::downgrade(file));
            let budget = self.budget.load(Ordering::Relaxed);
            let mut victims = Vec::new();
            // First the clean files; past twice the budget, dirty logs too
            // (a burst of unsynced writes over many partitions must not run
            // the process out of descriptors).
            for (limit, spare_dirty) in [(budget, true), (budget.saturating_mul(2), false)] {
                let mut excess = state.lru.len().saturating_sub(limit);
                if excess == 0 {
                    continue;
                }
                let candidates: Vec<(u64, Weak<PooledFile>)> = state
                    .lru
                    .iter()
                    .map(|(tick, weak)| (*tick, weak.clone()))
                    .collect();
                for (tick, weak) in candidates {
                    if excess == 0 {
                        break;
                    }
                    let Some(victim) = weak.upgrade() else {
                        // Dropped without being forgotten: just forget it.
                        state.lru.remove(&tick);
                        excess -= 1;
                        continue;
                    };
                    if victim.id == file.id || (spare_dirty && victim.is_pinned()) {
                        continue;
                    }
                    state.lru.remove(&tick);
                    state.ticks.remove(&victim.id);
                    victims.push(victim);
                    excess -= 1;
                }
            }
            victims
        };
        // Closed outside the pool lock (a slot lock is never taken under it).
        for victim in victims {
            lock(&victim.slot).take();
        }
    }

    fn forget(&self, id: u64) {
        let mut state = lock(&self.state);
        if let Some(tick) = state.ticks.remove(&id) {
            state.lru.remove(&tick);
        }
    }
}

/// A handle of a [`PooledFs`].
struct PooledFile {
    /// Itself, to register with the pool when it opens its file again.
    me: Weak<PooledFile>,
    id: u64,
    path: PathBuf,
    mode: OpenMode,
    fs: Arc<dyn Fs>,
    pool: Arc<Pool>,
    slot: Mutex<Option<Arc<dyn FileHandle>>>,
    /// Writes and `set_len`s issued, and how many of them the last
    /// successful sync covered.
    writes: AtomicU64,
    synced: AtomicU64,
    pin_when_dirty: bool,
}

impl fmt::Debug for PooledFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledFile")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl PooledFile {
    /// Whether the pool must keep it open: a log with unsynced writes.
    fn is_pinned(&self) -> bool {
        self.pin_when_dirty
            && self.writes.load(Ordering::SeqCst) != self.synced.load(Ordering::SeqCst)
    }

    /// The open file, opened (and registered with the pool) if closed.
    fn file(&self) -> io::Result<Arc<dyn FileHandle>> {
        if let Some(file) = lock(&self.slot).clone() {
            self.pool.touch(self);
            return Ok(file);
        }
        let opened = self.fs.open(&self.path, self.mode)?;
        let mut slot = lock(&self.slot);
        let (file, installed) = match &*slot {
            Some(file) => (file.clone(), false),
            None => {
                *slot = Some(opened.clone());
                (opened, true)
            }
        };
        drop(slot);
        if installed && let Some(me) = self.me.upgrade() {
            self.pool.opened(&me);
        }
        Ok(file)
    }
}

impl Drop for PooledFile {
    fn drop(&mut self) {
        self.pool.forget(self.id);
    }
}

/// Every call goes to the open file, opening it first if the pool closed
/// it.
impl IndexFile for PooledFile {
    fn len(&self) -> io::Result<u64> {
        self.file()?.len()
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.file()?.read_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.file()?.write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        let covered = self.writes.load(Ordering::SeqCst);
        self.file()?.sync_data()?;
        self.synced.fetch_max(covered, Ordering::SeqCst);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.file()?.set_len(len)
    }
}

impl FileHandle for PooledFile {
    fn map_sealed(&self, len: u64) -> io::Result<bytes::Bytes> {
        self.file()?.map_sealed(len)
    }

    fn pinned(&self) -> Option<io::Result<Arc<dyn FileHandle>>> {
        Some(self.file())
    }
}
