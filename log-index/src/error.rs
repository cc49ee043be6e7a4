//! The one error type of this crate, and the helper that builds its I/O variant.
//!
//! Every variant names the index file it is about. Variants that describe the
//! content of a file (everything [`Error::is_damaged`] accepts) also carry the
//! byte position and what was expected versus found, so a log line is enough
//! to find the damage. This module does not decide what to do about an error:
//! the storage layer rebuilds the index from its segment on any damage.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// An error of the `log-index` crate.
///
/// Three families:
/// - [`Error::Io`] and [`Error::Poisoned`]: the file system failed us.
/// - Damage: the bytes of an index file are not a valid index for the
///   expected segment ([`Error::is_damaged`] is `true`). The index is derived
///   data: rebuild it from the segment.
/// - Misuse: a call broke the contract of [`ActiveIndex`](crate::ActiveIndex)
///   ([`Error::BatchOutOfOrder`], [`Error::InvalidArgument`]); nothing changed.
///
/// Errors built without a file (for example by
/// [`MemIndex::from_entries`](crate::MemIndex::from_entries)) carry an empty
/// path and say "in-memory index".
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on an index file failed.
    Io {
        /// The operation, in this crate's words ("open", "write entries", ...).
        op: &'static str,
        /// The index file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// An earlier `sync_data` of this active index failed, so the page cache
    /// can no longer be trusted to match the disk: every later write, sync or
    /// seal is refused. Drop the index and rebuild it from the segment.
    Poisoned {
        /// The index file.
        path: PathBuf,
    },
    /// The file is shorter than the smallest valid file of its kind.
    TooShort {
        /// The index file.
        path: PathBuf,
        /// The smallest valid length, in bytes.
        expected_at_least: u64,
        /// The file length, in bytes.
        found: u64,
    },
    /// A sealed file whose length minus header and footer is not a whole
    /// number of entries.
    MisalignedLength {
        /// The index file.
        path: PathBuf,
        /// The file length, in bytes.
        found: u64,
    },
    /// The header does not start with [`MAGIC`](crate::MAGIC): not an index file.
    BadMagic {
        /// The index file.
        path: PathBuf,
        /// Byte position of the magic.
        position: u64,
        /// [`MAGIC`](crate::MAGIC).
        expected: [u8; 4],
        /// The bytes found.
        found: [u8; 4],
    },
    /// The header names a format version this build does not read.
    UnsupportedVersion {
        /// The index file.
        path: PathBuf,
        /// Byte position of the version.
        position: u64,
        /// [`VERSION`](crate::VERSION).
        expected: u16,
        /// The version found.
        found: u16,
    },
    /// The reserved header flags are not zero.
    UnknownFlags {
        /// The index file.
        path: PathBuf,
        /// Byte position of the flags.
        position: u64,
        /// The flags found.
        found: u16,
    },
    /// The header names another segment's base offset.
    WrongBaseOffset {
        /// The index file.
        path: PathBuf,
        /// Byte position of the base offset.
        position: u64,
        /// The base offset of the segment the caller opened.
        expected: u64,
        /// The base offset in the file.
        found: u64,
    },
    /// The footer magic [`FOOTER_MAGIC`](crate::FOOTER_MAGIC) is not where the
    /// file length puts it: the file was never sealed, or bytes were appended
    /// to it or cut from it.
    MissingFooter {
        /// The index file.
        path: PathBuf,
        /// Byte position where the footer magic should be.
        position: u64,
        /// [`FOOTER_MAGIC`](crate::FOOTER_MAGIC).
        expected: [u8; 4],
        /// The bytes found.
        found: [u8; 4],
    },
    /// The CRC32 stored in the footer does not match the file's bytes.
    ChecksumMismatch {
        /// The index file.
        path: PathBuf,
        /// Byte position of the stored CRC.
        position: u64,
        /// The CRC stored in the footer (what the bytes should hash to).
        stored: u32,
        /// The CRC of the bytes found.
        computed: u32,
    },
    /// The reserved footer field is not zero.
    NonZeroReserved {
        /// The index file.
        path: PathBuf,
        /// Byte position of the reserved field.
        position: u64,
        /// The value found.
        found: u32,
    },
    /// The footer's entry count disagrees with the file length.
    EntryCountMismatch {
        /// The index file.
        path: PathBuf,
        /// Byte position of the entry count.
        position: u64,
        /// The entry count the file length implies.
        expected: u64,
        /// The entry count stored in the footer.
        found: u64,
    },
    /// The index describes a log of another length than the segment has: it
    /// is stale (or the segment is).
    CoveredLengthMismatch {
        /// The index file.
        path: PathBuf,
        /// Byte position of the covered length.
        position: u64,
        /// The segment's log length, as the caller gave it.
        expected: u64,
        /// The covered log length stored in the footer.
        found: u64,
    },
    /// An entry's relative offset is not greater than the previous entry's.
    OffsetNotIncreasing {
        /// The index file.
        path: PathBuf,
        /// Byte position of the entry's relative offset.
        position: u64,
        /// Index of the entry (0 = first stored entry).
        index: usize,
        /// The previous entry's relative offset.
        previous: u32,
        /// This entry's relative offset.
        found: u32,
    },
    /// An entry's position is not greater than the previous entry's (the
    /// first stored entry must be past position 0, which the implicit segment
    /// start entry covers). With [`Error::OffsetNotIncreasing`], this is what
    /// catches an all-zero entry: it never passes the order checks.
    PositionNotIncreasing {
        /// The index file.
        path: PathBuf,
        /// Byte position of the entry's position field.
        position: u64,
        /// Index of the entry.
        index: usize,
        /// The previous entry's position (0 for the first entry).
        previous: u32,
        /// This entry's position.
        found: u32,
    },
    /// An entry's max append time is smaller than the previous entry's.
    TimeDecreasing {
        /// The index file.
        path: PathBuf,
        /// Byte position of the entry's time.
        position: u64,
        /// Index of the entry.
        index: usize,
        /// The previous entry's max append time, in ms since the Unix epoch.
        previous: i64,
        /// This entry's max append time, in ms since the Unix epoch.
        found: i64,
    },
    /// An entry points at or past the end of the log the index covers.
    PositionPastCoveredLength {
        /// The index file.
        path: PathBuf,
        /// Byte position of the entry's position field.
        position: u64,
        /// Index of the entry.
        index: usize,
        /// The covered log length, in bytes.
        covered_log_len: u64,
        /// The entry's position.
        found: u32,
    },
    /// [`ActiveIndex::on_batch`](crate::ActiveIndex::on_batch) was called with
    /// a batch that does not follow the previous one. Nothing changed.
    BatchOutOfOrder {
        /// The index file.
        path: PathBuf,
        /// Which argument: "relative offset" or "position".
        field: &'static str,
        /// The smallest acceptable value.
        expected_at_least: u64,
        /// The value passed.
        found: u64,
    },
    /// An argument is out of its range. Nothing changed.
    InvalidArgument {
        /// The index file.
        path: PathBuf,
        /// The argument's name.
        argument: &'static str,
        /// The smallest acceptable value.
        expected_at_least: u64,
        /// The value passed.
        found: u64,
    },
}

impl Error {
    /// Whether the error says the bytes of an index file are not a valid
    /// index for the expected segment (too short, bad magic, bad CRC, stale,
    /// entries out of order, ...). The index is derived data: the caller
    /// rebuilds it from the segment. A missing file is an [`Error::Io`] with
    /// [`io::ErrorKind::NotFound`], not damage.
    pub fn is_damaged(&self) -> bool {
        match self {
            Error::Io { .. }
            | Error::Poisoned { .. }
            | Error::BatchOutOfOrder { .. }
            | Error::InvalidArgument { .. } => false,
            Error::TooShort { .. }
            | Error::MisalignedLength { .. }
            | Error::BadMagic { .. }
            | Error::UnsupportedVersion { .. }
            | Error::UnknownFlags { .. }
            | Error::WrongBaseOffset { .. }
            | Error::MissingFooter { .. }
            | Error::ChecksumMismatch { .. }
            | Error::NonZeroReserved { .. }
            | Error::EntryCountMismatch { .. }
            | Error::CoveredLengthMismatch { .. }
            | Error::OffsetNotIncreasing { .. }
            | Error::PositionNotIncreasing { .. }
            | Error::TimeDecreasing { .. }
            | Error::PositionPastCoveredLength { .. } => true,
        }
    }

    /// The index file the error is about (empty for an in-memory index).
    pub fn path(&self) -> &Path {
        match self {
            Error::Io { path, .. }
            | Error::Poisoned { path }
            | Error::TooShort { path, .. }
            | Error::MisalignedLength { path, .. }
            | Error::BadMagic { path, .. }
            | Error::UnsupportedVersion { path, .. }
            | Error::UnknownFlags { path, .. }
            | Error::WrongBaseOffset { path, .. }
            | Error::MissingFooter { path, .. }
            | Error::ChecksumMismatch { path, .. }
            | Error::NonZeroReserved { path, .. }
            | Error::EntryCountMismatch { path, .. }
            | Error::CoveredLengthMismatch { path, .. }
            | Error::OffsetNotIncreasing { path, .. }
            | Error::PositionNotIncreasing { path, .. }
            | Error::TimeDecreasing { path, .. }
            | Error::PositionPastCoveredLength { path, .. }
            | Error::BatchOutOfOrder { path, .. }
            | Error::InvalidArgument { path, .. } => path,
        }
    }
}

/// Builds the [`Error::Io`] for `op` on `path`: the one way this crate wraps
/// an `io::Error`, used as `.map_err(io_error("open", path))`.
pub(crate) fn io_error<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Displays "index file PATH", or "in-memory index" for an empty path.
struct Subject<'a>(&'a Path);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.as_os_str().is_empty() {
            f.write_str("in-memory index")
        } else {
            write!(f, "index file {}", self.0.display())
        }
    }
}

/// Displays 4 magic bytes as an escaped byte string: `b"LIDX"`.
struct Magic<'a>(&'a [u8; 4]);

impl fmt::Display for Magic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = Subject(self.path());
        match self {
            Error::Io { op, .. } => write!(f, "cannot {op} {subject}"),
            Error::Poisoned { .. } => {
                write!(f, "{subject} is poisoned by an earlier failed sync")
            }
            Error::TooShort {
                expected_at_least,
                found,
                ..
            } => write!(
                f,
                "{subject} is too short: expected at least {expected_at_least} bytes, found {found}"
            ),
            Error::MisalignedLength { found, .. } => write!(
                f,
                "{subject} has a length of {found} bytes, which is not header, whole entries and footer"
            ),
            Error::BadMagic {
                position,
                expected,
                found,
                ..
            } => write!(
                f,
                "{subject} has a bad magic at byte {position}: expected {}, found {}",
                Magic(expected),
                Magic(found)
            ),
            Error::UnsupportedVersion {
                position,
                expected,
                found,
                ..
            } => write!(
                f,
                "{subject} has an unsupported version at byte {position}: expected {expected}, found {found}"
            ),
            Error::UnknownFlags {
                position, found, ..
            } => write!(
                f,
                "{subject} has unknown flags at byte {position}: expected 0, found {found:#06x}"
            ),
            Error::WrongBaseOffset {
                position,
                expected,
                found,
                ..
            } => write!(
                f,
                "{subject} belongs to another segment: base offset at byte {position}: expected {expected}, found {found}"
            ),
            Error::MissingFooter {
                position,
                expected,
                found,
                ..
            } => write!(
                f,
                "{subject} is not sealed: footer magic at byte {position}: expected {}, found {}",
                Magic(expected),
                Magic(found)
            ),
            Error::ChecksumMismatch {
                position,
                stored,
                computed,
                ..
            } => write!(
                f,
                "{subject} fails its checksum: crc32 at byte {position}: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::NonZeroReserved {
                position, found, ..
            } => write!(
                f,
                "{subject} has a reserved field at byte {position} that is not zero: found {found:#010x}"
            ),
            Error::EntryCountMismatch {
                position,
                expected,
                found,
                ..
            } => write!(
                f,
                "{subject} has a wrong entry count at byte {position}: the length implies {expected}, the footer says {found}"
            ),
            Error::CoveredLengthMismatch {
                position,
                expected,
                found,
                ..
            } => write!(
                f,
                "{subject} is stale: covered log length at byte {position}: expected {expected}, found {found}"
            ),
            Error::OffsetNotIncreasing {
                position,
                index,
                previous,
                found,
                ..
            } => write!(
                f,
                "{subject} has entry {index} out of order at byte {position}: relative offset {found} after {previous}"
            ),
            Error::PositionNotIncreasing {
                position,
                index,
                previous,
                found,
                ..
            } => write!(
                f,
                "{subject} has entry {index} out of order at byte {position}: log position {found} after {previous}"
            ),
            Error::TimeDecreasing {
                position,
                index,
                previous,
                found,
                ..
            } => write!(
                f,
                "{subject} has entry {index} out of order at byte {position}: max append time {found} after {previous}"
            ),
            Error::PositionPastCoveredLength {
                position,
                index,
                covered_log_len,
                found,
                ..
            } => write!(
                f,
                "{subject} has entry {index} at byte {position} pointing past the log: position {found}, covered length {covered_log_len}"
            ),
            Error::BatchOutOfOrder {
                field,
                expected_at_least,
                found,
                ..
            } => write!(
                f,
                "batch out of order for {subject}: {field} expected at least {expected_at_least}, found {found}"
            ),
            Error::InvalidArgument {
                argument,
                expected_at_least,
                found,
                ..
            } => write!(
                f,
                "invalid {argument} for {subject}: expected at least {expected_at_least}, found {found}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_keeps_operation_path_and_source() {
        let err = io_error("open", Path::new("/d/0.index"))(io::Error::other("boom"));
        assert_eq!(err.to_string(), "cannot open index file /d/0.index");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("boom"));
        assert!(!err.is_damaged());
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let errors = [
            Error::BadMagic {
                path: PathBuf::from("x.index"),
                position: 0,
                expected: *b"LIDX",
                found: [0, 1, b'a', 0xff],
            },
            Error::OffsetNotIncreasing {
                path: PathBuf::new(),
                position: 32,
                index: 1,
                previous: 5,
                found: 5,
            },
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.ends_with('.'), "{text}");
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
            assert!(err.is_damaged());
        }
        let text = Error::OffsetNotIncreasing {
            path: PathBuf::new(),
            position: 32,
            index: 1,
            previous: 5,
            found: 5,
        }
        .to_string();
        assert!(text.starts_with("in-memory index"), "{text}");
    }
}
