//! [`RealFs`]: the seam over `std::fs`. Positioned reads and writes,
//! `fdatasync` for files, `fsync` for directories, and sealed segments
//! mapped read-only (through `log-index`'s one mmap helper).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::{DirEntry, FileHandle, Fs, IndexFile, OpenMode};

/// The real file system, through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

#[derive(Debug)]
struct RealFile(File);

// The positioned-I/O primitives are `log-index`'s, for `std::fs::File`:
// one implementation of them in the workspace.
impl IndexFile for RealFile {
    fn len(&self) -> io::Result<u64> {
        IndexFile::len(&self.0)
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        IndexFile::read_at(&self.0, buf, pos)
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        IndexFile::write_all_at(&self.0, buf, pos)
    }

    fn sync_data(&self) -> io::Result<()> {
        IndexFile::sync_data(&self.0)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        IndexFile::set_len(&self.0, len)
    }
}

impl FileHandle for RealFile {
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
