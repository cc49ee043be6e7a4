//! Every file name and path of the data directory, and the validation of
//! the names users choose (topics, consumers), in one place.
//!
//! The data directory: `LOCK`, `topics/<topic>/topic.config`,
//! `topics/<topic>/<partition>/` (a partition directory: see below) and
//! `offsets/<consumer>/<topic>/<partition>.offset`. A partition directory
//! holds `{base_offset:020}.log` and `{base_offset:020}.index` for its
//! segments, `clean-shutdown` for the clean-shutdown marker, `epoch` for
//! the crash-truncation epoch, `recovery-point` for the durable position,
//! `log-start` for the first readable offset, `producer-state` for the
//! idempotent producers, `cleaner-point` for where the cleaner's next
//! pass starts, `cleaned-below` for the end of what it may have rewritten, and `.tmp` files being replaced atomically. The cleaner
//! writes `{base:020}.log.cleaned` and `{base:020}.index.cleaned` (thrown
//! away by recovery) and commits a cleaned group of segments by renaming
//! its log to `{base:020}.{end:020}.swap` (finished by recovery: see
//! `partition/clean/swap.rs`).
//!
//! A user's name becomes a path only after [`validate_topic_name`] or
//! [`validate_consumer_id`] accepted it, and every such path is built by
//! [`child`], which checks that the name is exactly one ordinary path
//! component, so the resolved path stays inside the data directory. The
//! store's own directory names (staging `*.tmp`, doomed `*-delete`) are
//! built and recognised here too; no valid name can collide with them,
//! because valid names may not end in a suffix the store uses.
//!
//! This module touches no file and knows no file format.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, NameKind};

/// Longest topic name or consumer id, in bytes (names are ASCII).
pub const MAX_NAME_BYTES: usize = 249;

/// Suffixes the store uses for its own files and directories: a name ending
/// in one of them is refused, so that a user's name never looks like a
/// staging, doomed, config, offsets, segment or index file.
pub const RESERVED_SUFFIXES: &[&str] = &[
    TMP_SUFFIX,
    DELETE_SUFFIX,
    LOG_SUFFIX,
    INDEX_SUFFIX,
    ".config",
    OFFSET_SUFFIX,
];

/// Suffix of directories and files being built, renamed into place when
/// complete. Leftovers are removed when the store opens.
pub(crate) const TMP_SUFFIX: &str = ".tmp";
/// Suffix of a deleted topic's directory, renamed away before its files are
/// removed. Leftovers are removed when the store opens.
pub(crate) const DELETE_SUFFIX: &str = "-delete";
/// Suffix of a committed-offset file.
pub(crate) const OFFSET_SUFFIX: &str = ".offset";

/// Directory of the topics, under the data directory.
pub(crate) const TOPICS_DIR: &str = "topics";
/// Directory of the committed offsets, under the data directory.
pub(crate) const OFFSETS_DIR: &str = "offsets";
/// The lock file, in the data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// A topic's persisted config, in its topic directory.
pub(crate) const TOPIC_CONFIG: &str = "topic.config";

// ---------------------------------------------------------------------------
// Files of a partition directory.
/// Suffix of segment log files.
pub(crate) const LOG_SUFFIX: &str = ".log";
/// Suffix of segment index files.
pub(crate) const INDEX_SUFFIX: &str = ".index";
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
/// Name of the cleaner's point: the first offset it has not mapped.
pub(crate) const CLEANER_POINT: &str = "cleaner-point";
/// Name of the cleaner's guard: sealed segments ending at or below it may
/// have been rewritten by the cleaner (recovery never scans them as
/// unsynced data).
pub(crate) const CLEANED_BELOW: &str = "cleaned-below";
/// Name of cold compression's point: every sealed segment below it is
/// compressed.
pub(crate) const COMPRESSED_BELOW: &str = "compressed-below";
/// Suffix of the files the cleaner writes before committing them.
pub(crate) const CLEANED_SUFFIX: &str = ".cleaned";
/// Suffix of a committed cleaned segment not yet in place.
pub(crate) const SWAP_SUFFIX: &str = ".swap";

/// Where the cleaner writes the log of the cleaned segment at `base`.
pub(crate) fn cleaned_log_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}{LOG_SUFFIX}{CLEANED_SUFFIX}"))
}

/// Where the cleaner writes the index of the cleaned segment at `base`.
pub(crate) fn cleaned_index_path(dir: &Path, base_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}{INDEX_SUFFIX}{CLEANED_SUFFIX}"))
}

/// The committed cleaned log that replaces the segments with base offsets
/// in `base_offset..end_offset`.
pub(crate) fn swap_path(dir: &Path, base_offset: u64, end_offset: u64) -> PathBuf {
    dir.join(format!("{base_offset:020}.{end_offset:020}{SWAP_SUFFIX}"))
}

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
    /// A file being replaced atomically, or written by the cleaner and
    /// not committed; left behind by a crash.
    Temp,
    /// A committed cleaned log replacing the segments with base offsets in
    /// `base..end` (see [`swap_path`]).
    Swap {
        /// Base offset of the cleaned segment.
        base: u64,
        /// Base offset of the first segment it does not replace.
        end: u64,
    },
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
    if [
        EPOCH,
        RECOVERY_POINT,
        LOG_START,
        PRODUCER_STATE,
        CLEANER_POINT,
        CLEANED_BELOW,
        COMPRESSED_BELOW,
    ]
    .contains(&name)
    {
        return FileKind::Epoch;
    }
    if name.ends_with(TMP_SUFFIX) || name.ends_with(CLEANED_SUFFIX) {
        return FileKind::Temp;
    }
    let parse = |stem: &str| -> Option<u64> {
        (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()))
            .then(|| stem.parse().ok())
            .flatten()
    };
    if let Some(stem) = name.strip_suffix(SWAP_SUFFIX)
        && let Some((base, end)) = stem.split_once('.')
        && let (Some(base), Some(end)) = (parse(base), parse(end))
        && base < end
    {
        return FileKind::Swap { base, end };
    }
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

// ---------------------------------------------------------------------------
// Names users choose, and the store's own directories.

/// Longest prefix of a topic name kept in a staging or doomed directory
/// name, so that the whole name stays under the 255-byte limit of a path
/// component.
const PREFIX_BYTES: usize = 200;

/// Checks a topic name: 1 to [`MAX_NAME_BYTES`] bytes of
/// `[A-Za-z0-9._-]`, not only dots, not ending in one of
/// [`RESERVED_SUFFIXES`]. Fails with [`Error::InvalidName`].
pub fn validate_topic_name(name: &str) -> Result<(), Error> {
    validate(NameKind::Topic, name)
}

/// Checks a consumer id, by the same rules as a topic name: 1 to
/// [`MAX_NAME_BYTES`] bytes of `[A-Za-z0-9._-]`, not only dots, not ending
/// in one of [`RESERVED_SUFFIXES`]. Fails with [`Error::InvalidName`].
pub fn validate_consumer_id(id: &str) -> Result<(), Error> {
    validate(NameKind::Consumer, id)
}

fn validate(kind: NameKind, name: &str) -> Result<(), Error> {
    let refuse = |reason: String| Err(invalid(kind, name, reason));
    if name.is_empty() {
        return refuse("is empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return refuse(format!(
            "is {} bytes long, more than {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if let Some(c) = name.chars().find(|&c| !is_name_char(c)) {
        return refuse(match c {
            '/' | '\\' => "contains a path separator".into(),
            '\0' => "contains a NUL byte".into(),
            '\n' | '\r' => "contains a line break".into(),
            other => format!("contains {other:?}, outside [A-Za-z0-9._-]"),
        });
    }
    if name.bytes().all(|b| b == b'.') {
        return refuse("consists only of dots".into());
    }
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(**s)) {
        return refuse(format!("ends with {suffix:?}, a suffix the store uses"));
    }
    Ok(())
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Builds [`Error::InvalidName`], keeping at most 256 characters of the
/// offending name (a name can be as long as a request).
fn invalid(kind: NameKind, name: &str, reason: String) -> Error {
    const KEEP: usize = 256;
    let name = match name.char_indices().nth(KEEP) {
        Some((cut, _)) => format!("{}...", &name[..cut]),
        None => name.to_owned(),
    };
    Error::InvalidName { kind, name, reason }
}

/// `parent/name`, after checking that `name` is exactly one ordinary path
/// component (no separator, not `.` or `..`, not absolute), so the result
/// stays inside `parent`. Names reaching here were validated already: this
/// is the second line of defence, not the first.
pub(crate) fn child(kind: NameKind, parent: &Path, name: &str) -> Result<PathBuf, Error> {
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(c)), None) if c == name => {}
        _ => {
            return Err(invalid(
                kind,
                name,
                "does not resolve to a path inside the data directory".into(),
            ));
        }
    }
    let path = parent.join(name);
    if path.parent() != Some(parent) {
        return Err(invalid(
            kind,
            name,
            "does not resolve to a path inside the data directory".into(),
        ));
    }
    Ok(path)
}

/// `<data>/topics`.
pub(crate) fn topics_dir(data: &Path) -> PathBuf {
    data.join(TOPICS_DIR)
}

/// `<data>/offsets`.
pub(crate) fn offsets_dir(data: &Path) -> PathBuf {
    data.join(OFFSETS_DIR)
}

/// `<data>/topics/<topic>`; the name is checked.
pub(crate) fn topic_dir(data: &Path, topic: &str) -> Result<PathBuf, Error> {
    validate_topic_name(topic)?;
    child(NameKind::Topic, &topics_dir(data), topic)
}

/// `<topic dir>/<partition>`: partitions are decimal numbers.
pub(crate) fn partition_dir(topic_dir: &Path, partition: u32) -> PathBuf {
    topic_dir.join(partition.to_string())
}

/// `<topic dir>/topic.config`.
pub(crate) fn topic_config_path(topic_dir: &Path) -> PathBuf {
    topic_dir.join(TOPIC_CONFIG)
}

/// `<data>/offsets/<consumer>`; the id is checked.
pub(crate) fn consumer_dir(offsets: &Path, consumer: &str) -> Result<PathBuf, Error> {
    validate_consumer_id(consumer)?;
    child(NameKind::Consumer, offsets, consumer)
}

/// `<data>/offsets/<consumer>/<topic>`; both names are checked.
pub(crate) fn consumer_topic_dir(
    offsets: &Path,
    consumer: &str,
    topic: &str,
) -> Result<PathBuf, Error> {
    validate_topic_name(topic)?;
    child(NameKind::Topic, &consumer_dir(offsets, consumer)?, topic)
}

/// `<consumer topic dir>/<partition>.offset`.
pub(crate) fn offset_file(consumer_topic_dir: &Path, partition: u32) -> PathBuf {
    consumer_topic_dir.join(format!("{partition}{OFFSET_SUFFIX}"))
}

/// `<file>.tmp`: the temp file a small file is written to before it is
/// renamed over `file`.
pub(crate) fn tmp_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

/// The name of the staging directory a topic is built in before it is
/// renamed into place: `<prefix>.<nonce>.tmp`.
pub(crate) fn staging_name(topic: &str, nonce: u64) -> String {
    format!("{}.{nonce:016x}{TMP_SUFFIX}", prefix(topic))
}

/// The name a deleted topic's directory is renamed to before its files are
/// removed: `<prefix>.<nonce>-delete`.
pub(crate) fn doomed_name(topic: &str, nonce: u64) -> String {
    format!("{}.{nonce:016x}{DELETE_SUFFIX}", prefix(topic))
}

fn prefix(topic: &str) -> &str {
    // Valid names are ASCII, so any byte index is a char boundary; stay safe
    // for any input anyway.
    let mut cut = topic.len().min(PREFIX_BYTES);
    while !topic.is_char_boundary(cut) {
        cut -= 1;
    }
    &topic[..cut]
}

/// What an entry of `<data>/topics` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TopicsEntry<'a> {
    /// A topic directory.
    Topic(&'a str),
    /// A staging or doomed directory left by a crash: remove it.
    Leftover,
    /// Something the store did not make: leave it alone.
    Unknown,
}

/// Classifies an entry of `<data>/topics` by its name.
pub(crate) fn classify_topics_entry(name: &std::ffi::OsStr) -> TopicsEntry<'_> {
    let Some(name) = name.to_str() else {
        return TopicsEntry::Unknown;
    };
    if name.ends_with(TMP_SUFFIX) || name.ends_with(DELETE_SUFFIX) {
        // Only dots-and-hex around our suffixes; a stray user file with a
        // reserved suffix is treated the same way, which is the point of
        // reserving them.
        return TopicsEntry::Leftover;
    }
    if validate_topic_name(name).is_ok() {
        TopicsEntry::Topic(name)
    } else {
        TopicsEntry::Unknown
    }
}

/// Parses the partition number of an offset file name (`<p>.offset`).
pub(crate) fn parse_offset_file(name: &std::ffi::OsStr) -> Option<u32> {
    let stem = name.to_str()?.strip_suffix(OFFSET_SUFFIX)?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["a", "orders", "a.b", "A-Z_09", "..a", "a..", "-x", "_"] {
            validate_topic_name(name).unwrap();
            validate_consumer_id(name).unwrap();
        }
        validate_topic_name(&"x".repeat(MAX_NAME_BYTES)).unwrap();
    }

    #[test]
    fn refuses_bad_names_with_a_reason() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        for name in [
            "", ".", "..", "...", "../x", "/abs", "a/b", "a\\b", "a\0b", "a\nb", "a\rb", "a b",
            "é", &long, "x.tmp", "x-delete", "x.log", "x.index", "x.config", "x.offset",
        ] {
            let err = validate_topic_name(name).unwrap_err();
            match err {
                Error::InvalidName { kind, .. } => assert_eq!(kind, NameKind::Topic, "{name:?}"),
                other => panic!("{name:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn long_names_are_cut_in_errors() {
        let Error::InvalidName { name, .. } = validate_topic_name(&"y".repeat(10_000)).unwrap_err()
        else {
            panic!("wrong error");
        };
        assert!(name.len() < 300, "{}", name.len());
    }

    #[test]
    fn child_refuses_anything_but_one_component() {
        let root = Path::new("/data/topics");
        assert_eq!(
            child(NameKind::Topic, root, "t").unwrap(),
            Path::new("/data/topics/t")
        );
        for name in ["", ".", "..", "../x", "/abs", "a/b", "a/", "./a"] {
            assert!(child(NameKind::Topic, root, name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn store_directories_never_look_like_topics() {
        let long = "z".repeat(MAX_NAME_BYTES);
        for topic in ["t", long.as_str()] {
            let staging = staging_name(topic, u64::MAX);
            let doomed = doomed_name(topic, 7);
            assert!(staging.len() <= 255 && doomed.len() <= 255);
            assert_eq!(
                classify_topics_entry(OsStr::new(&staging)),
                TopicsEntry::Leftover
            );
            assert_eq!(
                classify_topics_entry(OsStr::new(&doomed)),
                TopicsEntry::Leftover
            );
            assert!(validate_topic_name(&staging).is_err());
            assert!(validate_topic_name(&doomed).is_err());
        }
        assert_eq!(
            classify_topics_entry(OsStr::new("orders")),
            TopicsEntry::Topic("orders")
        );
        assert_eq!(
            classify_topics_entry(OsStr::new("a b")),
            TopicsEntry::Unknown
        );
    }

    #[test]
    fn offset_file_names_roundtrip() {
        let path = offset_file(Path::new("/o/c/t"), 42);
        assert_eq!(path, Path::new("/o/c/t/42.offset"));
        assert_eq!(parse_offset_file(path.file_name().unwrap()), Some(42));
        for name in ["x.offset", ".offset", "42.offset.tmp", "42"] {
            assert_eq!(parse_offset_file(OsStr::new(name)), None, "{name}");
        }
    }

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
