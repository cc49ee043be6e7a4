//! `IndexFile`: the file operations an [`ActiveIndex`](crate::ActiveIndex)
//! needs, as a trait, so the storage layer can route every index file
//! operation through its own I/O layer (a simulated file system that plays
//! power loss and I/O errors in tests, for example).
//!
//! The trait has positioned I/O only: every call names its byte position,
//! takes `&self` and there is no cursor, so a handle can be shared (behind an
//! `Arc`) without any call depending on another's position. It is
//! implemented for [`std::fs::File`] (through
//! [`std::os::unix::fs::FileExt`]) and forwarded through [`Arc`] and [`Box`],
//! so `Arc<dyn IndexFile>` and `Box<dyn IndexFile>` work too, and a newtype
//! around another handle type needs five short methods.
//!
//! This module does not open, create, rename or delete files, and does not
//! sync directories: that stays with the caller, who hands an open handle to
//! [`ActiveIndex::create_in`](crate::ActiveIndex::create_in) or
//! [`ActiveIndex::open_unsealed_in`](crate::ActiveIndex::open_unsealed_in).
//! [`MmapIndex`](crate::MmapIndex) maps a real file and stays
//! `std::fs`-only; [`MemIndex::from_sealed_bytes`](crate::MemIndex::from_sealed_bytes)
//! validates a sealed file read through any handle.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, io_error};

/// An open index file, read and written with positioned I/O only.
///
/// The contract every implementation keeps (the one of `pread`, `pwrite`,
/// `fdatasync` and `ftruncate`):
///
/// - [`len`](Self::len) is the current length, every write and `set_len`
///   included, synced or not.
/// - [`read_at`](Self::read_at) returns fewer bytes than asked only at the end
///   of the file (0 at or past it); it retries interrupted reads itself.
/// - [`write_all_at`](Self::write_all_at) writes all of `buf` at `pos`,
///   extending the file if needed; on error any prefix of `buf` may have been
///   written.
/// - [`sync_data`](Self::sync_data) makes the data and the length durable.
///   Once it has failed, the index does not trust the file any more (see
///   [`Error::Poisoned`]).
/// - [`set_len`](Self::set_len) truncates or extends (with zeros) the file.
///
/// [`ActiveIndex`](crate::ActiveIndex) never relies on a handle's cursor, and
/// never calls two methods at once on the same handle.
#[allow(
    clippy::len_without_is_empty,
    reason = "the length of a file, which can fail: an `is_empty` would only add a second fallible call"
)]
pub trait IndexFile: fmt::Debug + Send + Sync {
    /// The current length of the file, in bytes.
    ///
    /// # Errors
    ///
    /// When the length cannot be read (`fstat` failed).
    fn len(&self) -> io::Result<u64>;

    /// Reads up to `buf.len()` bytes at byte `pos`; returns how many were
    /// read: fewer than `buf.len()` only at the end of the file, 0 at or past
    /// it.
    ///
    /// # Errors
    ///
    /// Any I/O error but [`io::ErrorKind::Interrupted`], which is retried.
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize>;

    /// Writes all of `buf` at byte `pos`, extending the file if needed.
    ///
    /// # Errors
    ///
    /// Any I/O error but [`io::ErrorKind::Interrupted`], which is retried.
    /// Any prefix of `buf` may have been written.
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;

    /// Makes the file's data and length durable (`fdatasync`).
    ///
    /// # Errors
    ///
    /// When the sync fails; the written data may then be lost.
    fn sync_data(&self) -> io::Result<()>;

    /// Cuts the file to `len` bytes, or extends it with zeros.
    ///
    /// # Errors
    ///
    /// When the length cannot be changed.
    fn set_len(&self, len: u64) -> io::Result<()>;
}

impl IndexFile for File {
    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, mut buf: &mut [u8], mut pos: u64) -> io::Result<usize> {
        let mut read = 0;
        while !buf.is_empty() {
            match FileExt::read_at(self, buf, pos) {
                Ok(0) => break,
                Ok(n) => {
                    read += n;
                    buf = &mut buf[n..];
                    pos += n as u64;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        Ok(read)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        // Loops over short writes and retries `Interrupted`.
        FileExt::write_all_at(self, buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        // `std` retries `EINTR`.
        File::sync_data(self)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        // `std` retries `EINTR`.
        File::set_len(self, len)
    }
}

impl<T: IndexFile + ?Sized> IndexFile for Arc<T> {
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        (**self).read_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        (**self).write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        (**self).sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        (**self).set_len(len)
    }
}

impl<T: IndexFile + ?Sized> IndexFile for Box<T> {
    fn len(&self) -> io::Result<u64> {
        (**self).len()
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        (**self).read_at(buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        (**self).write_all_at(buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        (**self).sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        (**self).set_len(len)
    }
}

/// Reads the whole file: [`IndexFile::len`] bytes from position 0 (fewer if
/// the file ends sooner).
pub(crate) fn read_all<F: IndexFile + ?Sized>(file: &F, path: &Path) -> Result<Vec<u8>, Error> {
    let len = file.len().map_err(io_error("inspect", path))?;
    let len = usize::try_from(len).map_err(|_| {
        io_error("read", path)(io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("{len} bytes do not fit in memory"),
        ))
    })?;
    let mut bytes = vec![0; len];
    let mut filled = 0;
    while filled < len {
        // usize -> u64 never truncates on the platforms we build for.
        match file.read_at(&mut bytes[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(io_error("read", path)(err)),
        }
    }
    bytes.truncate(filled);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> (tempfile::TempDir, File) {
        let dir = tempfile::TempDir::new().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("f.index"))
            .unwrap();
        (dir, file)
    }

    #[test]
    fn file_reads_and_writes_at_positions_without_a_cursor() {
        let (_dir, file) = temp_file();
        assert_eq!(IndexFile::len(&file).unwrap(), 0);
        IndexFile::write_all_at(&file, b"world", 6).unwrap();
        IndexFile::write_all_at(&file, b"hello", 0).unwrap();
        assert_eq!(IndexFile::len(&file).unwrap(), 11);
        let mut buf = [0xff; 11];
        assert_eq!(IndexFile::read_at(&file, &mut buf, 0).unwrap(), 11);
        assert_eq!(&buf, b"hello\0world");
        // Short only at the end of the file, 0 past it.
        let mut buf = [0; 8];
        assert_eq!(IndexFile::read_at(&file, &mut buf, 8).unwrap(), 3);
        assert_eq!(&buf[..3], b"rld");
        assert_eq!(IndexFile::read_at(&file, &mut buf, 11).unwrap(), 0);
        assert_eq!(IndexFile::read_at(&file, &mut buf, 100).unwrap(), 0);
        IndexFile::set_len(&file, 4).unwrap();
        IndexFile::sync_data(&file).unwrap();
        assert_eq!(IndexFile::len(&file).unwrap(), 4);
        assert_eq!(read_all(&file, Path::new("f")).unwrap(), b"hell");
    }

    #[test]
    fn arc_and_box_forward_to_the_handle() {
        let (_dir, file) = temp_file();
        let shared: Arc<dyn IndexFile> = Arc::new(file);
        let boxed: Box<dyn IndexFile> = Box::new(Arc::clone(&shared));
        boxed.write_all_at(b"abc", 2).unwrap();
        assert_eq!(shared.len().unwrap(), 5);
        boxed.set_len(3).unwrap();
        boxed.sync_data().unwrap();
        let mut buf = [0xff; 4];
        assert_eq!(shared.read_at(&mut buf, 0).unwrap(), 3);
        assert_eq!(&buf[..3], b"\0\0a");
        assert_eq!(read_all(&boxed, Path::new("f")).unwrap(), b"\0\0a");
    }
}
