//! `ActiveIndex` on an in-memory `IndexFile` that fails on demand and loses
//! what was not synced on a power loss: poisoning after a failed sync,
//! retried flushes, failed creates, cuts, reopens and seals, and what
//! survives a power loss. Also: `create_in` refuses a file that is not
//! empty, and `Arc<dyn IndexFile>` / `Box<dyn IndexFile>` handles work.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use log_index::{
    ActiveIndex, Error, HEADER_LEN, IndexEntry, IndexFile, IndexLookup, MemIndex, Reopened,
};
use tempfile::TempDir;

const BASE: u64 = 500;

/// An index on a fresh in-memory file, its header synced, then `count`
/// batches of 100 bytes with an interval of 100: `count - 1` entries (the
/// batch at position 0 gets none), none flushed.
fn index_with_batches(count: u32) -> (Arc<MemFile>, ActiveIndex<Arc<MemFile>>) {
    let file = MemFile::new();
    let mut index = ActiveIndex::create_in(Arc::clone(&file), "mem.index", BASE, 100).unwrap();
    index.sync_data().unwrap();
    for i in 0..count {
        index
            .on_batch(i * 2, i * 100, 100, 1_000 + i64::from(i))
            .unwrap();
    }
    (file, index)
}

/// The file image of an unsealed index holding `entries`.
fn unsealed_image(entries: &[IndexEntry]) -> Vec<u8> {
    let file = MemFile::new();
    let index = ActiveIndex::create_in(Arc::clone(&file), "x", BASE, 1).unwrap();
    let mut index = fill(index, entries);
    index.flush().unwrap();
    file.bytes()
}

fn reopen_memory(file: &Arc<MemFile>, log_len: u64) -> Result<Reopened<Arc<MemFile>>, Error> {
    ActiveIndex::open_unsealed_in(Arc::clone(file), "mem.index", BASE, 100, log_len)
}

fn io_op(err: &Error) -> &'static str {
    match err {
        Error::Io { op, .. } => op,
        other => panic!("expected an I/O error, got {other:?}"),
    }
}

#[test]
fn a_failed_sync_poisons_every_mutating_call_but_not_lookups() {
    let (file, mut index) = index_with_batches(10);
    let entries = index.entries().to_vec();
    assert_eq!(entries.len(), 9);

    file.fail(Op::Sync, true);
    let err = index.sync_data().unwrap_err();
    assert_eq!(io_op(&err), "sync");
    assert!(!err.is_damaged());
    assert_eq!(err.path(), Path::new("mem.index"));
    assert!(index.is_poisoned());
    // The entries were written before the sync failed.
    assert_eq!(index.unflushed_entries(), 0);

    // The file works again, but the index no longer trusts it.
    file.fail(Op::Sync, false);
    let calls_before = [Op::Write, Op::Sync, Op::SetLen].map(|op| file.calls(op));
    let poisoned = |result: Result<(), Error>| match result {
        Err(Error::Poisoned { path }) => assert_eq!(path, Path::new("mem.index")),
        other => panic!("expected Poisoned, got {other:?}"),
    };
    poisoned(index.on_batch(20, 1_000, 100, 5_000).map(|_| ()));
    poisoned(index.flush());
    poisoned(index.sync_data());
    poisoned(index.truncate_to_position(0).map(|_| ()));
    // Nothing reached the file.
    assert_eq!(
        [Op::Write, Op::Sync, Op::SetLen].map(|op| file.calls(op)),
        calls_before
    );

    // Lookups keep working on every entry.
    assert_eq!(index.entries(), entries.as_slice());
    assert_eq!(index.len(), 9);
    assert_eq!(index.lookup_offset(7), entries[2]);
    assert_eq!(index.lookup_offset(1_000), entries[8]);
    assert_eq!(index.time_scan_start(1_004), entries[2]);
    assert_eq!(index.max_append_time(), 1_009);
    assert_eq!(index.resume_position(), 1_000);

    poisoned(index.seal(1_000).map(|_| ()));
    assert_eq!(file.calls(Op::Sync), calls_before[1]);
}

#[test]
fn a_failed_flush_write_keeps_the_entries_waiting_and_a_later_flush_writes_them_in_place() {
    let (file, mut index) = index_with_batches(4);
    index.flush().unwrap();
    let flushed = file.bytes();
    assert_eq!(flushed.len(), HEADER_LEN + 3 * 16);
    for i in 4..10u32 {
        index
            .on_batch(i * 2, i * 100, 100, 1_000 + i64::from(i))
            .unwrap();
    }
    assert_eq!(index.unflushed_entries(), 6);

    file.fail(Op::Write, true);
    let err = index.flush().unwrap_err();
    assert_eq!(io_op(&err), "write entries to");
    assert!(!index.is_poisoned());
    assert_eq!(index.unflushed_entries(), 6);
    assert_eq!(index.len(), 9);
    // The failed write left half of the new entries behind it.
    assert_eq!(file.bytes().len(), HEADER_LEN + 3 * 16 + 3 * 16);
    assert_eq!(file.bytes()[..flushed.len()], flushed[..]);
    // sync_data flushes first, so it fails the same way, without syncing.
    let syncs = file.calls(Op::Sync);
    assert_eq!(io_op(&index.sync_data().unwrap_err()), "write entries to");
    assert_eq!(file.calls(Op::Sync), syncs);
    assert!(!index.is_poisoned());

    file.fail(Op::Write, false);
    index.flush().unwrap();
    assert_eq!(index.unflushed_entries(), 0);
    assert_eq!(file.bytes(), unsealed_image(index.entries()));
    index.sync_data().unwrap();
    assert_eq!(file.durable(), unsealed_image(index.entries()));
}

#[test]
fn a_failed_write_of_waiting_entries_in_on_batch_changes_nothing() {
    // With an interval of one byte, every batch adds an entry; the 257th
    // finds 4 KiB waiting and writes them first.
    let file = MemFile::new();
    let mut index = ActiveIndex::create_in(Arc::clone(&file), "mem.index", BASE, 1).unwrap();
    for i in 0..256u32 {
        index.on_batch(i, i + 1, 1, 7).unwrap();
    }
    file.fail(Op::Write, true);
    let err = index.on_batch(256, 257, 1, 9).unwrap_err();
    assert_eq!(io_op(&err), "write entries to");
    assert_eq!(index.len(), 256);
    assert_eq!(index.unflushed_entries(), 256);
    assert_eq!(index.max_append_time(), 7);
    assert_eq!(index.resume_position(), 257);

    file.fail(Op::Write, false);
    assert_eq!(
        index.on_batch(256, 257, 1, 9).unwrap(),
        Some(IndexEntry::new(256, 257, 9))
    );
    assert_eq!(index.unflushed_entries(), 1);
    index.flush().unwrap();
    assert_eq!(file.bytes(), unsealed_image(index.entries()));
}

#[test]
fn what_a_power_loss_keeps_is_what_was_synced() {
    let (file, mut index) = index_with_batches(10);
    let entries = index.entries().to_vec();

    // Flushed, not synced: lost.
    index.flush().unwrap();
    file.power_loss();
    let Reopened::Active { index, report } = reopen_memory(&file, 1_000).unwrap() else {
        panic!("reopened as sealed");
    };
    assert!(index.is_empty());
    assert!(report.is_clean());
    drop(index);

    // Synced: kept.
    let (file, mut index) = index_with_batches(10);
    index.sync_data().unwrap();
    file.power_loss();
    let Reopened::Active { index, report } = reopen_memory(&file, 1_000).unwrap() else {
        panic!("reopened as sealed");
    };
    assert_eq!(index.entries(), entries.as_slice());
    assert!(report.is_clean());

    // Sealed: seal syncs.
    let syncs = file.calls(Op::Sync);
    let sealed = index.seal(1_000).unwrap();
    assert_eq!(file.calls(Op::Sync), syncs + 1);
    file.power_loss();
    assert_eq!(file.durable(), sealed.to_sealed_bytes());
    let loaded =
        MemIndex::from_sealed_bytes(file.bytes(), Path::new("mem.index"), BASE, 1_000).unwrap();
    assert_eq!(loaded, sealed);
    match reopen_memory(&file, 1_000).unwrap() {
        Reopened::Sealed(reopened) => assert_eq!(reopened, sealed),
        Reopened::Active { .. } => panic!("a sealed file reopened as active"),
    }
}

#[test]
fn a_failed_header_write_leaves_a_file_reopen_rejects_as_too_short() {
    let file = MemFile::new();
    file.fail(Op::Write, true);
    let err = ActiveIndex::create_in(Arc::clone(&file), "mem.index", BASE, 100).unwrap_err();
    assert_eq!(io_op(&err), "write header of");
    assert_eq!(file.bytes().len(), HEADER_LEN / 2);
    file.fail(Op::Write, false);
    let err = reopen_memory(&file, 0).unwrap_err();
    assert!(matches!(err, Error::TooShort { .. }), "{err:?}");
    assert!(err.is_damaged());
}

#[test]
fn create_in_checks_its_arguments_and_refuses_a_file_that_is_not_empty() {
    // A zero interval: nothing is read or written.
    let file = MemFile::new();
    let err = ActiveIndex::create_in(Arc::clone(&file), "mem.index", BASE, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert_eq!(file.calls(Op::Len) + file.calls(Op::Write), 0);

    // A file with bytes in it: stale entries after a new header could pass
    // for entries on a reopen.
    let stale = unsealed_image(&[IndexEntry::new(1, 100, 5)]);
    let file = MemFile::with_bytes(&stale);
    match ActiveIndex::create_in(Arc::clone(&file), "mem.index", BASE, 100).unwrap_err() {
        Error::Io { op, source, .. } => {
            assert_eq!(op, "create");
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(file.bytes(), stale);
    assert_eq!(file.calls(Op::Write), 0);

    // The length cannot be read.
    let file = MemFile::new();
    file.fail(Op::Len, true);
    let err = ActiveIndex::create_in(Arc::clone(&file), "mem.index", BASE, 100).unwrap_err();
    assert_eq!(io_op(&err), "inspect");

    // The same with a real file opened without `create_new`.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a.index");
    std::fs::write(&path, &stale).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    match ActiveIndex::create_in(file, &path, BASE, 100).unwrap_err() {
        Error::Io {
            source, path: at, ..
        } => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
            assert_eq!(at, path);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), stale);
}

#[test]
fn a_failed_cut_changes_nothing_in_memory() {
    let (file, mut index) = index_with_batches(10);
    index.flush().unwrap();
    let entries = index.entries().to_vec();
    let bytes = file.bytes();

    file.fail(Op::SetLen, true);
    let err = index.truncate_to_position(450).unwrap_err();
    assert_eq!(io_op(&err), "truncate");
    assert!(!index.is_poisoned());
    assert_eq!(index.entries(), entries.as_slice());
    assert_eq!(index.resume_position(), 1_000);
    assert_eq!(file.bytes(), bytes);

    file.fail(Op::SetLen, false);
    assert_eq!(index.truncate_to_position(450).unwrap(), 5);
    assert_eq!(index.resume_position(), 401);
    assert_eq!(file.bytes(), unsealed_image(&entries[..4]));
}

#[test]
fn a_cut_after_a_failed_flush_removes_the_half_written_entries() {
    let (file, mut index) = index_with_batches(10);
    file.fail(Op::Write, true);
    index.flush().unwrap_err();
    assert!(file.bytes().len() > HEADER_LEN);
    file.fail(Op::Write, false);
    // Cut before every entry: the file goes back to its header.
    assert_eq!(index.truncate_to_position(50).unwrap(), 9);
    assert_eq!(file.bytes(), unsealed_image(&[]));
    assert_eq!(index.unflushed_entries(), 0);
}

#[test]
fn reopen_reports_io_failures_as_io() {
    let good = unsealed_image(&[IndexEntry::new(2, 100, 5), IndexEntry::new(4, 200, 6)]);
    for (op, expected) in [(Op::Len, "inspect"), (Op::Read, "read")] {
        let file = MemFile::with_bytes(&good);
        file.fail(op, true);
        let err = reopen_memory(&file, 1_000).unwrap_err();
        assert_eq!(io_op(&err), expected);
        assert!(!err.is_damaged());
        assert_eq!(file.bytes(), good);
    }

    // Cutting a garbage tail fails.
    let mut with_tail = good.clone();
    with_tail.extend_from_slice(&[0; 20]);
    let file = MemFile::with_bytes(&with_tail);
    file.fail(Op::SetLen, true);
    let err = reopen_memory(&file, 1_000).unwrap_err();
    assert_eq!(io_op(&err), "cut the invalid tail of");
    file.fail(Op::SetLen, false);
    let Reopened::Active { index, report } = reopen_memory(&file, 1_000).unwrap() else {
        panic!("reopened as sealed");
    };
    assert_eq!(index.len(), 2);
    assert_eq!(report.bytes_dropped(), 20);
    assert_eq!(file.bytes(), good);

    // A zero interval: nothing is read.
    let file = MemFile::with_bytes(&good);
    let err =
        ActiveIndex::open_unsealed_in(Arc::clone(&file), "mem.index", BASE, 0, 1_000).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    assert_eq!(file.calls(Op::Len) + file.calls(Op::Read), 0);
}

#[test]
fn a_failed_seal_leaves_a_file_that_reopens_as_active() {
    for op in [Op::Write, Op::SetLen, Op::Sync] {
        let (file, mut index) = index_with_batches(10);
        index.flush().unwrap();
        let entries = index.entries().to_vec();
        file.fail(op, true);
        let err = index.seal(1_000).unwrap_err();
        assert!(!err.is_damaged(), "{op:?}: {err:?}");
        assert!(matches!(err, Error::Io { .. }), "{op:?}: {err:?}");
        file.fail(op, false);
        // A sealed loader never accepts what a failed seal left...
        if op == Op::Write {
            let err =
                MemIndex::from_sealed_bytes(file.bytes(), Path::new("mem.index"), BASE, 1_000)
                    .unwrap_err();
            assert!(err.is_damaged(), "{err:?}");
        }
        // ... and a reopen finds the entries again (or, if only the sync
        // failed, the sealed file).
        match reopen_memory(&file, 1_000).unwrap() {
            Reopened::Active { index, .. } => assert_eq!(index.entries(), entries.as_slice()),
            Reopened::Sealed(sealed) => {
                assert_ne!(op, Op::Write);
                assert_eq!(sealed.entries(), entries.as_slice());
            }
        }
    }
}

#[test]
fn shared_and_boxed_trait_object_handles_work() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a.index");
    let file: Arc<dyn IndexFile> = Arc::new(create_new(&path));
    let index = ActiveIndex::create_in(Arc::clone(&file), &path, BASE, 1).unwrap();
    let sealed = fill(index, &small_entries()).seal(SMALL_COVERED).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), sealed.to_sealed_bytes());
    assert_eq!(file.len().unwrap(), sealed.to_sealed_bytes().len() as u64);
    drop(file);

    let memory = MemFile::new();
    let boxed: Box<dyn IndexFile> = Box::new(Arc::clone(&memory));
    let mut index = ActiveIndex::create_in(boxed, "boxed.index", BASE, 1).unwrap();
    index.on_batch(3, 100, 10, 1).unwrap();
    index.sync_data().unwrap();
    assert_eq!(
        memory.durable(),
        unsealed_image(&[IndexEntry::new(3, 100, 1)])
    );
    let boxed: Box<dyn IndexFile> = Box::new(memory);
    let Reopened::Active { index, .. } =
        ActiveIndex::open_unsealed_in(boxed, "boxed.index", BASE, 1, 200).unwrap()
    else {
        panic!("reopened as sealed");
    };
    assert_eq!(index.entries(), [IndexEntry::new(3, 100, 1)]);
}
