//! The I/O seam: every file operation of this crate goes through [`Fs`] and
//! [`FileHandle`].
//!
//! Two implementations: [`RealFs`] over `std::fs` (positioned reads and
//! writes, `fdatasync`, directory `fsync`), and the simulated file system in
//! `sim.rs`, which keeps what is durable apart from what is only written so
//! that tests can play power loss and failing operations. This module holds
//! no policy: when to sync, and in which order, is decided by the callers.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

/// An open file. Positioned reads and writes only: there is no cursor, so a
/// handle can be shared between threads.
#[allow(clippy::len_without_is_empty)] // `len` is an I/O call, not a collection size
pub trait FileHandle: Send + Sync + fmt::Debug {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;

    /// Reads up to `buf.len()` bytes at `pos`; returns how many were read
    /// (fewer only at the end of the file; 0 at or past it).
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `pos`, extending the file if needed. On error
    /// any prefix of `buf` may have been written (a short write).
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;

    /// Makes the file's data and length durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;

    /// Truncates or extends the file to `len` bytes (extension reads as zeros).
    fn set_len(&self, len: u64) -> io::Result<()>;

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
/// written to a file is durable only after [`FileHandle::sync_data`] on it,
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

/// The real file system, through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

impl FileHandle for RealFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        loop {
            match self.0.read_at(buf, pos) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        self.0.write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn map_sealed(&self, len: u64) -> io::Result<bytes::Bytes> {
        // The one mmap helper of the workspace, next to the index's.
        log_index::map_sealed_file(&self.0, len)
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        let file = OpenOptions::new()
            .read(true)
            .write(mode == OpenMode::ReadWrite)
            .open(path)?;
        Ok(Arc::new(RealFile(file)))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            entries.push(DirEntry {
                name: entry.file_name(),
                is_dir: entry.file_type()?.is_dir(),
            });
        }
        Ok(entries)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn exists(&self, path: &Path) -> io::Result<bool> {
        path.try_exists()
    }

    fn available_space(&self, path: &Path) -> io::Result<u64> {
        fs4::available_space(path)
    }

    fn file_len(&self, path: &Path) -> io::Result<u64> {
        Ok(fs::metadata(path)?.len())
    }

    fn boot_id(&self) -> Option<[u8; 16]> {
        static BOOT_ID: std::sync::OnceLock<Option<[u8; 16]>> = std::sync::OnceLock::new();
        *BOOT_ID.get_or_init(|| {
            let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            parse_boot_id(&text)
        })
    }
}

/// Parses the kernel's boot id (a UUID in hex with dashes) into 16 bytes.
fn parse_boot_id(text: &str) -> Option<[u8; 16]> {
    let hex: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digits = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(digits, 16).ok()?;
    }
    Some(out)
}
