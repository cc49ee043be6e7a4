//! File names of a partition directory, built and parsed in one place.
//!
//! `{base_offset:020}.log` and `{base_offset:020}.index` for segments,
//! `clean-shutdown` for the clean-shutdown marker, `epoch` for the
//! crash-truncation epoch, `recovery-point` for the synced length of the
//! active segment, `log-start` for the first readable offset, `producer-state` for
//! the idempotent producers, and `.tmp` for files being replaced atomically.
//! This module touches no file.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Suffix of segment log files.
pub(crate) const LOG_SUFFIX: &str = ".log";
/// Suffix of segment index files.
pub(crate) const INDEX_SUFFIX: &str = ".index";
/// Suffix of files written to be renamed over another.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Name of the clean-shutdown marker.
pub(crate) const CLEAN_SHUTDOWN: &str = "clean-shutdown";
/// Name of the crash-truncation epoch file.
pub(crate) const EPOCH: &str = "epoch";
/// Name of the recovery-point file.
pub(crate) const RECOVERY_POINT: &str = "recovery-point";
/// Name of the log-start-offset file.
pub(crate) const LOG_START: &str = "log-start";
/// Name of the idempotent-producer state snapshot.
pub(crate) const PRODUCER_STATE: &str = "producer-state";

/// The log file of the segment starting at `base_offset`.
pub(crate) fn log_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}{LOG_SUFFIX}"))
}

/// The index file of the segment starting at `base_offset`.
pub(crate) fn index_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}{INDEX_SUFFIX}"))
}

/// What a file name in a partition directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    /// A segment log file.
    Log(u64),
    /// A segment index file.
    Index(u64),
    /// A file being replaced atomically; left behind by a crash.
    Temp,
    /// The clean-shutdown marker.
    CleanShutdown,
    /// The epoch, recovery-point, log-start or producer-state file.
    Epoch,
    /// Anything else: left alone.
    Unknown,
}

/// Classifies a file name.
pub(crate) fn classify(name: &OsStr) -> FileKind {
    let Some(name) = name.to_str() else {
        return FileKind::Unknown;
    };
    if name == CLEAN_SHUTDOWN {
        return FileKind::CleanShutdown;
    }
    if [EPOCH, RECOVERY_POINT, LOG_START, PRODUCER_STATE].contains(&name) {
        return FileKind::Epoch;
    }
    if name.ends_with(TMP_SUFFIX) {
        return FileKind::Temp;
    }
    let parse = |stem: &str| -> Option<u64> {
        (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
            .then(|| stem.parse().ok())
            .flatten()
    };
    if let Some(stem) = name.strip_suffix(LOG_SUFFIX)
        && let Some(base) = parse(stem)
    {
        return FileKind::Log(base);
    }
    if let Some(stem) = name.strip_suffix(INDEX_SUFFIX)
        && let Some(base) = parse(stem)
    {
        return FileKind::Index(base);
    }
    FileKind::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_roundtrip_and_strangers_are_unknown() {
        let dir = Path::new("/d");
        let log = log_path(dir, 1000);
        assert_eq!(log, Path::new("/d/00000000000000001000.log"));
        assert_eq!(classify(log.file_name().unwrap()), FileKind::Log(1000));
        let index = index_path(dir, u64::MAX);
        assert_eq!(
            classify(index.file_name().unwrap()),
            FileKind::Index(u64::MAX)
        );
        for name in [
            "1000.log",
            "0000000000000000100a.log",
            "x.index",
            "notes.txt",
            "00000000000000001000.log.bak",
        ] {
            assert_eq!(classify(OsStr::new(name)), FileKind::Unknown, "{name}");
        }
        assert_eq!(classify(OsStr::new("epoch.tmp")), FileKind::Temp);
        assert_eq!(
            classify(OsStr::new(CLEAN_SHUTDOWN)),
            FileKind::CleanShutdown
        );
    }
}
