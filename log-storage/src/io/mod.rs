//! The I/O seam: every file operation of this crate goes through [`Fs`] and
//! [`FileHandle`].
//!
//! The positioned-I/O primitives of a file (`len`, `read_at`,
//! `write_all_at`, `sync_data`, `set_len`) are `log-index`'s
//! [`IndexFile`], the one trait both indexes and segments write through;
//! [`FileHandle`] adds what segments need beyond it (sealed mappings,
//! pinning).
//!
//! Implementations: [`RealFs`] over `std::fs` (`real.rs`: positioned reads
//! and writes, `fdatasync`, directory `fsync`), [`PooledFs`] (`pool.rs`: a
//! bounded pool of open files over any `Fs`), and, behind the `sim`
//! feature, `SimFs` (`sim/`), which keeps what is durable apart from what
//! is only written so that tests can play power loss and failing
//! operations. `durable.rs` holds the durable steps built on the seam
//! (atomic replace, directory sync chains, the small-file codec). Nothing
//! here decides when to sync, or in which order: the callers do.

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use log_index::IndexFile;

pub(crate) mod durable;
mod pool;
mod real;
#[cfg(feature = "sim")]
mod sim;

pub use pool::{DEFAULT_OPEN_FILES_BUDGET, PooledFs};
pub use real::RealFs;
#[cfg(feature = "sim")]
pub use sim::{CrashReport, FaultKind, SimFs, SplitMix64, TearKind, TornSector};

/// An open file: the positioned-I/O primitives of [`IndexFile`] (no
/// cursor, so a handle can be shared between threads; `write_all_at` may
/// leave any prefix written on error; `sync_data` makes data and length
/// durable), and what segments need beyond them.
pub trait FileHandle: IndexFile {
    /// The first `len` bytes of a sealed file (written whole, synced, never
    /// changed again) as shared bytes: a read-only memory map for real
    /// files, so reads of sealed segments copy nothing. The default reads
    /// a copy.
    fn map_sealed(&self, len: u64) -> io::Result<bytes::Bytes> {
        let len = usize::try_from(len)
            .map_err(|_too_big| io::Error::new(io::ErrorKind::OutOfMemory, "file too large"))?;
        let mut buf = vec![0; len];
        self.read_exact_at(&mut buf, 0)?;
        Ok(bytes::Bytes::from(buf))
    }

    /// The file behind this handle, for a caller that must keep it open
    /// while it works (a read of a segment retention may delete): `None`
    /// when this handle is that file already (the default), `Some` for a
    /// handle that may close its file when idle (see [`PooledFs`](crate::PooledFs)).
    fn pinned(&self) -> Option<io::Result<Arc<dyn FileHandle>>> {
        None
    }

    /// Reads exactly `buf.len()` bytes at `pos`, or fails with
    /// [`io::ErrorKind::UnexpectedEof`].
    fn read_exact_at(&self, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, pos) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ends before the requested range",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    pos += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }
}

/// How [`Fs::open`] opens a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only.
    Read,
    /// Read and write; the file must exist.
    ReadWrite,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// File name within the directory.
    pub name: OsString,
    /// Whether the entry is a directory.
    pub is_dir: bool,
}

/// A file system: the only way this crate touches the disk.
///
/// Durability contract, which the simulated file system enforces: data
/// written to a file is durable only after [`IndexFile::sync_data`] on it,
/// and a create, rename or removal is durable only after
/// [`sync_dir`](Fs::sync_dir) on the directory (both directories for a
/// rename across directories).
pub trait Fs: Send + Sync + fmt::Debug {
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;

    /// Creates a new, empty file opened for reading and writing; fails with
    /// [`io::ErrorKind::AlreadyExists`] if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>>;

    /// Opens an existing file.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>>;

    /// Lists a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;

    /// Renames a file, replacing `to` if it exists (atomic, as rename(2)).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes a file. Open handles keep working on its data.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;

    /// Makes the directory's entries durable (`fsync` of the directory).
    fn sync_dir(&self, path: &Path) -> io::Result<()>;

    /// Whether `path` exists.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Bytes available to this process on the file system holding `path`
    /// (`statvfs`'s available blocks).
    fn available_space(&self, path: &Path) -> io::Result<u64>;

    /// An identifier of the current boot of the machine, if it can be
    /// known: the same value means the kernel (and its page cache) has not
    /// restarted since, so a crash was a process crash, not a power loss.
    /// `None` when unknown, which callers treat as "maybe rebooted".
    fn boot_id(&self) -> Option<[u8; 16]> {
        None
    }

    /// The length of the file at `path`, without keeping it open.
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.open(path, OpenMode::Read)?.len()
    }

    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let file = self.open(path, OpenMode::Read)?;
        let len = usize::try_from(file.len()?)
            .map_err(|_too_big| io::Error::new(io::ErrorKind::OutOfMemory, "file too large"))?;
        let mut buf = vec![0; len];
        file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
}

/// A file system over another that changes only how files are created
/// and opened (a pool of open files, a test's fault gate, metrics): every
/// other operation goes to [`inner`](FsLayer::inner) as is. Implement
/// this, not [`Fs`]: every `FsLayer` is an `Fs`.
pub trait FsLayer: Send + Sync + fmt::Debug {
    /// The file system below.
    fn inner(&self) -> &dyn Fs;

    /// As [`Fs::create_new`]; the default passes it down.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        self.inner().create_new(path)
    }

    /// As [`Fs::open`]; the default passes it down.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        self.inner().open(path, mode)
    }

    /// As [`Fs::read`]; the default passes it down.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner().read(path)
    }
}

impl<L: FsLayer> Fs for L {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner().create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        FsLayer::create_new(self, path)
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        FsLayer::open(self, path, mode)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner().read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner().rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner().remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner().remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner().sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner().exists(path)
    }
    fn available_space(&self, path: &Path) -> io::Result<u64> {
        self.inner().available_space(path)
    }
    fn boot_id(&self) -> Option<[u8; 16]> {
        self.inner().boot_id()
    }
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.inner().file_len(path)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        FsLayer::read(self, path)
    }
}
