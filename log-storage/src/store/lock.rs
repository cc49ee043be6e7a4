//! The exclusive lock of a data directory: [`lock_data_dir`] and its
//! guard, [`DirLock`].
//!
//! The [`Fs`] seam has no lock call, so the lock is taken on the real file
//! system only, by [`lock_data_dir`], and handed to [`Store::open`]; tests
//! on the simulated file system pass none. It is an OS lock: an exclusive
//! `flock(2)` on `<data>/LOCK` through fs4's `FileExt::try_lock`
//! (`File::try_lock` is stable only since Rust 1.89 and the workspace
//! promises 1.88), held by the open file inside the [`DirLock`] and
//! released by the kernel when the guard is dropped or the process dies,
//! however it dies. A second lock, from this process or another, fails at
//! once with [`Error::Locked`] naming the holder: once it holds the lock, a
//! store writes its pid, process start time and boot id into `LOCK`, as
//! information only (nothing is decided by them; there is no stale lock to
//! take over). `LOCK` is never removed: removing it would let a process
//! that opened the old file and one that created a new one both hold "the"
//! lock. Limits: the lock is advisory (it keeps out other stores, not other
//! programs), and is meant for local file systems (on NFS, Linux turns
//! `flock` into a POSIX lock, which does not keep out a second store of the
//! same process).

use std::path::{Path, PathBuf};

use crate::error::{Error, io_error};
use crate::layout;

// ---------------------------------------------------------------------------
// The data directory lock. The one place of this crate that calls `std::fs`
// directly: the `Fs` seam has no lock call, and the lock only matters on the
// real file system.

/// The exclusive lock of a data directory, taken by [`lock_data_dir`]: an
/// OS lock on its `LOCK` file, released when this guard is dropped (or the
/// process dies). Keep it, inside the [`Store`](crate::Store), for as long as anything of
/// the store is in use: partition logs given out keep working after the
/// store is dropped, but the directory is no longer locked then.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    path: PathBuf,
    /// Holds the lock: closing it releases it.
    _file: std::fs::File,
}

impl DirLock {
    /// The locked data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the exclusive lock of the data directory `dir` (created if
/// missing): an OS lock on `dir/LOCK` (see the module docs). Fails at once
/// with [`Error::Locked`], naming the holder as far as `LOCK` says, if a
/// process holds it, this one included.
pub fn lock_data_dir(dir: impl AsRef<Path>) -> Result<DirLock, Error> {
    use std::io::Write;
    let dir = dir.as_ref().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io_error("create data directory", &dir))?;
    let path = dir.join(layout::LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io_error("open lock file", &path))?;
    // Through the trait: std's own `File::try_lock` needs Rust 1.89.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            return Err(Error::Locked {
                holder: LockRecord::describe(&text),
                path,
            });
        }
        Err(fs4::TryLockError::Error(err)) => {
            return Err(io_error("lock data directory", &path)(err));
        }
    }
    // Ours now: say who holds it (information for a second locker only).
    let record = LockRecord::current().encode();
    file.set_len(0)
        .and_then(|()| (&file).write_all(record.as_bytes()))
        .and_then(|()| file.sync_data())
        .map_err(io_error("write lock file", &path))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("sync data directory", &dir))?;
    tracing::info!(file = %path.display(), "data directory locked");
    Ok(DirLock {
        dir,
        path,
        _file: file,
    })
}

/// What `LOCK` says about its holder: information only.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockRecord {
    pid: u32,
    /// Process start time, clock ticks since boot (`/proc/<pid>/stat`
    /// field 22); 0 when unknown.
    start: u64,
    /// `/proc/sys/kernel/random/boot_id`; empty when unknown.
    boot: String,
}

const LOCK_HEADER: &str = "log-storage data directory lock v2";

impl LockRecord {
    fn current() -> LockRecord {
        LockRecord {
            pid: std::process::id(),
            start: process_start("self").unwrap_or(0),
            boot: boot_id().unwrap_or_default(),
        }
    }

    fn encode(&self) -> String {
        format!(
            "{LOCK_HEADER}\npid {}\nstart {}\nboot {}\n",
            self.pid, self.start, self.boot
        )
    }

    fn decode(text: &str) -> Option<LockRecord> {
        let mut lines = text.strip_suffix('\n')?.split('\n');
        if lines.next()? != LOCK_HEADER {
            return None;
        }
        let mut field = |name: &str| lines.next()?.strip_prefix(name)?.strip_prefix(' ');
        let pid = field("pid")?.parse().ok()?;
        let start = field("start")?.parse().ok()?;
        let boot = field("boot")?.to_owned();
        if lines.next().is_some() {
            return None;
        }
        Some(LockRecord { pid, start, boot })
    }

    /// The holder named in an [`Error::Locked`], from the text of `LOCK`.
    fn describe(text: &str) -> String {
        match LockRecord::decode(text) {
            Some(r) => format!(
                "held by process {} (started {} clock ticks after boot {})",
                r.pid,
                r.start,
                if r.boot.is_empty() { "?" } else { &r.boot }
            ),
            None => "held by another process, which has not written its pid yet".into(),
        }
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn process_start(pid: &str) -> Option<u64> {
    parse_start(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Field 22 of `/proc/<pid>/stat`; the command name (field 2) is in
/// parentheses and may hold spaces and parentheses, so count from the last
/// `)`.
fn parse_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_records_roundtrip_and_name_their_holder() {
        let record = LockRecord {
            pid: 42,
            start: 12345,
            boot: "9381555c-a5e3-4a96-84c2-b5bccc9ceadb".into(),
        };
        assert_eq!(LockRecord::decode(&record.encode()), Some(record.clone()));
        assert!(LockRecord::describe(&record.encode()).contains("process 42 "));
        let text = record.encode();
        for bad in [
            "",
            "garbage",
            &text[..text.len() - 1],
            &text.replace("pid 42", "pid x"),
            &format!("{text}extra\n"),
        ] {
            assert_eq!(LockRecord::decode(bad), None, "{bad:?}");
            assert!(LockRecord::describe(bad).contains("another process"));
        }
        let me = LockRecord::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0 && !me.boot.is_empty(), "{me:?}");
    }

    #[test]
    fn process_start_is_parsed_past_odd_command_names() {
        let stat = "123 (a) b (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 999 20";
        assert_eq!(parse_start(stat), Some(999));
        assert!(process_start("self").is_some_and(|s| s > 0));
    }
}
