//! Durable file-system steps built on the [`Fs`] seam, each in one place:
//! the atomic replace of a small file, removal with a directory sync, the
//! sync of a directory chain, bounded reads of small files, the removal of
//! a directory tree, and the one small-file codec (a `u64` and its CRC)
//! the partition's `epoch` and `log-start` files use.
//!
//! A file replaced here is written to `<file>.tmp` first and renamed over
//! the old one, so a crash leaves the old content or the new one (and maybe
//! the temp file, which the next open removes). This module knows no file
//! format beyond the `u64` codec and decides nothing about when to call it.

use std::io;
use std::path::Path;

use crate::error::{Error, io_error};
use crate::io::{Fs, OpenMode};
use crate::layout;
use crate::util::crc32;

/// Replaces a small file durably: writes `<path>.tmp`, `fdatasync`s it,
/// renames it over `path` and syncs the directory.
pub(crate) fn write_atomic(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace_via_temp(fs, path, bytes, true)?;
    sync_parent(fs, path)
}

/// Replaces a small file without waiting for the disk: temp file, write,
/// rename, no fsync. For files with a checksum whose loss or damage after
/// a power loss only costs the next open work.
pub(crate) fn write_replace(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    replace_via_temp(fs, path, bytes, false)
}

/// Writes `bytes` to a fresh temp file beside `path` (synced when `sync`)
/// and renames it over `path`. A stale temp file (a crash's leftover) is
/// removed first.
fn replace_via_temp(fs: &dyn Fs, path: &Path, bytes: &[u8], sync: bool) -> Result<(), Error> {
    let tmp = layout::tmp_path(path);
    if remove_if_present(fs, &tmp, "remove stale temp file")? {
        tracing::warn!(file = %tmp.display(), "removed a stale temp file");
    }
    let file = fs
        .create_new(&tmp)
        .map_err(io_error("create temp file", &tmp))?;
    file.write_all_at(bytes, 0)
        .map_err(io_error("write temp file", &tmp))?;
    if sync {
        file.sync_data().map_err(io_error("sync temp file", &tmp))?;
    }
    fs.rename(&tmp, path)
        .map_err(io_error("rename temp file", path))
}

/// Syncs the directory holding `path`.
pub(crate) fn sync_parent(fs: &dyn Fs, path: &Path) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs.sync_dir(dir).map_err(io_error("sync directory", dir))
}

/// Removes a file if it is there (`op` names the removal in an error):
/// whether it was.
pub(crate) fn remove_if_present(fs: &dyn Fs, path: &Path, op: &'static str) -> Result<bool, Error> {
    match fs.remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(io_error(op, path)(err)),
    }
}

/// Removes a file and syncs its directory.
pub(crate) fn remove_synced(fs: &dyn Fs, path: &Path) -> Result<(), Error> {
    fs.remove_file(path)
        .map_err(io_error("remove file", path))?;
    sync_parent(fs, path)
}

/// Syncs `dir` and every ancestor, so that each one's entry is durable.
pub(crate) fn sync_chain(fs: &dyn Fs, dir: &Path) -> Result<(), Error> {
    sync_ancestors(fs, dir, usize::MAX)
}

/// Syncs `dir` and its ancestors, `count` directories in all (`dir` first).
pub(crate) fn sync_ancestors(fs: &dyn Fs, dir: &Path, count: usize) -> Result<(), Error> {
    for ancestor in dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take(count)
    {
        fs.sync_dir(ancestor)
            .map_err(io_error("sync directory", ancestor))?;
    }
    Ok(())
}

/// Reads a whole small file: `None` if it does not exist; a file longer
/// than `max_len` is reported as corrupt without being read.
pub(crate) fn read_small(
    fs: &dyn Fs,
    path: &Path,
    max_len: usize,
    op: &'static str,
) -> Result<Option<Vec<u8>>, Error> {
    let file = match fs.open(path, OpenMode::Read) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(io_error(op, path)(err)),
    };
    let len = file.len().map_err(io_error(op, path))?;
    if len > max_len as u64 {
        return Err(Error::CorruptMetadata {
            path: path.to_path_buf(),
            position: max_len as u64,
            what: format!("file is {len} bytes, longer than any valid one ({max_len})"),
        });
    }
    let mut bytes = vec![0u8; len as usize];
    file.read_exact_at(&mut bytes, 0)
        .map_err(io_error(op, path))?;
    Ok(Some(bytes))
}

/// Length of a file in the `u64` codec: the value, then its CRC-32, both
/// little-endian.
pub(crate) const U64_FILE_LEN: usize = 12;

/// Writes `value` durably to `path` in the `u64` codec (atomic replace).
pub(crate) fn write_u64_file(fs: &dyn Fs, path: &Path, value: u64) -> Result<(), Error> {
    let mut bytes = [0u8; U64_FILE_LEN];
    bytes[..8].copy_from_slice(&value.to_le_bytes());
    let crc = crc32(&bytes[..8]);
    bytes[8..].copy_from_slice(&crc.to_le_bytes());
    write_atomic(fs, path, &bytes)
}

/// Reads a file written by [`write_u64_file`]: `None` when it does not
/// exist, [`Error::CorruptMetadata`] when its length or checksum is wrong.
pub(crate) fn read_u64_file(
    fs: &dyn Fs,
    path: &Path,
    op: &'static str,
) -> Result<Option<u64>, Error> {
    let Some(bytes) = read_small(fs, path, U64_FILE_LEN, op)? else {
        return Ok(None);
    };
    decode_u64(path, &bytes).map(Some)
}

/// Decodes the bytes of a file in the `u64` codec read from `path`
/// ([`Error::CorruptMetadata`] when its length or checksum is wrong).
pub(crate) fn decode_u64(path: &Path, bytes: &[u8]) -> Result<u64, Error> {
    let corrupt = |position: u64, what: String| Error::CorruptMetadata {
        path: path.to_path_buf(),
        position,
        what,
    };
    if bytes.len() != U64_FILE_LEN {
        return Err(corrupt(
            bytes.len() as u64,
            format!("{} bytes, expected {U64_FILE_LEN}", bytes.len()),
        ));
    }
    let (value, crc) = bytes.split_at(8);
    let found = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let expected = crc32(value);
    if found != expected {
        return Err(corrupt(
            8,
            format!("checksum {found:#010x}, expected {expected:#010x}"),
        ));
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(value);
    Ok(u64::from_le_bytes(b))
}

/// Removes a directory and everything under it, depth first, without
/// following symbolic links (they are removed as files). Does not sync:
/// callers make the removal durable by syncing the parent once the tree is
/// unreachable. Entries that vanish meanwhile are fine.
pub(crate) fn remove_tree(fs: &dyn Fs, root: &Path) -> Result<(), Error> {
    let gone = |err: &io::Error| err.kind() == io::ErrorKind::NotFound;
    // (directory, listed already): a directory is removed when popped the
    // second time, after everything under it.
    let mut stack = vec![(root.to_path_buf(), false)];
    while let Some((dir, listed)) = stack.pop() {
        if listed {
            match fs.remove_dir(&dir) {
                Err(err) if !gone(&err) => return Err(io_error("remove directory", &dir)(err)),
                _ => continue,
            }
        }
        let entries = match fs.read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if gone(&err) => continue,
            Err(err) => return Err(io_error("list directory", &dir)(err)),
        };
        stack.push((dir.clone(), true));
        for entry in entries {
            let path = dir.join(&entry.name);
            if entry.is_dir {
                stack.push((path, false));
            } else {
                match fs.remove_file(&path) {
                    Err(err) if !gone(&err) => {
                        return Err(io_error("remove file", &path)(err));
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}
