//! `SimFs`, the simulated file system the crash and fault tests run on: what
//! a crash keeps of data and of directory entries, determinism, dead handles
//! after a crash, injected faults, capacity and unlink semantics.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::sync::Arc;

use log_storage::{CrashReport, FaultKind, FileHandle, Fs, OpenMode, SimFs, TearKind};

const SEEDS: u64 = 1000;
const SECTOR: u64 = SimFs::SECTOR_BYTES;

/// Bytes that are never zero, so a zero-filled chunk stands out.
fn pattern(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + usize::from(salt)) % 251) as u8 + 1)
        .collect()
}

/// A file system with the durable directory `/d`.
fn fs_with_dir() -> SimFs {
    let fs = SimFs::new();
    fs.create_dir_all_durable(Path::new("/d")).unwrap();
    fs
}

/// Creates `path` with `data`, syncs its data and its directory.
fn durable_file(fs: &SimFs, path: &str, data: &[u8]) -> Arc<dyn FileHandle> {
    let path = Path::new(path);
    let file = fs.create_new(path).unwrap();
    file.write_all_at(data, 0).unwrap();
    file.sync_data().unwrap();
    fs.sync_dir(path.parent().unwrap()).unwrap();
    file
}

/// Runs `workload` on a fresh file system, then crashes it with `seed`.
fn crashed(seed: u64, workload: impl Fn(&SimFs)) -> (SimFs, CrashReport) {
    let fs = fs_with_dir();
    let ((), report) = common::crash_after(&fs, seed, workload);
    (fs, report)
}

fn exists(fs: &SimFs, path: &str) -> bool {
    fs.live_file(Path::new(path)).is_some()
}

#[test]
fn synced_data_survives_every_crash_byte_for_byte() {
    let a = pattern(5000, 1);
    let b = pattern(777, 2);
    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            let file = durable_file(fs, "/d/a", &a[..3000]);
            file.write_all_at(&a[3000..], 3000).unwrap();
            file.sync_data().unwrap();
            durable_file(fs, "/d/b", &b);
        });
        assert_eq!(fs.live_file(Path::new("/d/a")).unwrap(), a, "{report}");
        assert_eq!(fs.live_file(Path::new("/d/b")).unwrap(), b, "{report}");
        assert_eq!(fs.read(Path::new("/d/a")).unwrap(), a, "{report}");
        assert_eq!(fs.durable_snapshot(), fs.live_snapshot(), "{report}");
        assert_eq!(report.torn, None, "{report}");
    }
}

#[test]
fn unsynced_tail_after_synced_prefix_is_a_mix_of_whole_sector_chunks() {
    const PREFIX: usize = 1000;
    let data = pattern(PREFIX + 700 + 1300 + 90, 3);
    // The pending appends, split at sector boundaries.
    let mut chunks = Vec::new();
    let mut pos = PREFIX as u64;
    for len in [700u64, 1300, 90] {
        let end = pos + len;
        while pos < end {
            let chunk_end = ((pos / SECTOR + 1) * SECTOR).min(end);
            chunks.push(pos as usize..chunk_end as usize);
            pos = chunk_end;
        }
    }

    let (mut seen_all, mut seen_none, mut seen_hole) = (false, false, false);
    let mut tear_kinds = Vec::new();
    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            let file = durable_file(fs, "/d/log", &data[..PREFIX]);
            let mut at = PREFIX;
            for len in [700, 1300, 90] {
                file.write_all_at(&data[at..at + len], at as u64).unwrap();
                at += len;
            }
        });
        let got = fs.live_file(Path::new("/d/log")).unwrap();
        assert!(
            (PREFIX..=data.len()).contains(&got.len()),
            "length {}: {report}",
            got.len()
        );
        assert_eq!(got[..PREFIX], data[..PREFIX], "synced prefix: {report}");

        let torn = report
            .torn
            .clone()
            .expect("pending writes leave a sector to tear");
        assert_eq!(torn.path, Path::new("/d/log"), "{report}");
        if !torn.torn.is_empty() {
            assert!(
                torn.torn.start >= PREFIX as u64,
                "tore synced bytes: {report}"
            );
            assert!(torn.torn.end <= data.len() as u64, "{report}");
            assert!(torn.torn.end - torn.torn.start <= SECTOR, "{report}");
        }
        tear_kinds.push(torn.kind);

        // Per chunk: kept (Some(true)), lost (Some(false)) or torn (None).
        let mut kept = Vec::new();
        for chunk in &chunks {
            if chunk.start >= got.len() {
                kept.push(Some(false));
                continue;
            }
            let overlaps_tear =
                (chunk.start as u64) < torn.torn.end && torn.torn.start < chunk.end as u64;
            let end = chunk.end.min(got.len());
            let bytes = &got[chunk.start..end];
            if overlaps_tear {
                kept.push(None);
            } else if bytes == &data[chunk.start..end] {
                kept.push(Some(true));
            } else {
                assert!(
                    bytes.iter().all(|b| *b == 0),
                    "bytes {chunk:?} are neither written nor zeros: {report}"
                );
                kept.push(Some(false));
            }
        }
        seen_all |= got == data;
        seen_none |= got.len() == PREFIX;
        seen_hole |= kept
            .windows(2)
            .any(|w| w[0] == Some(false) && w[1] == Some(true));
    }
    assert!(seen_all, "no crash kept every pending write");
    assert!(seen_none, "no crash lost every pending write");
    assert!(
        seen_hole,
        "no crash kept a later chunk without an earlier one"
    );
    for kind in [
        TearKind::Old,
        TearKind::New,
        TearKind::Zeros,
        TearKind::Garbage,
    ] {
        assert!(tear_kinds.contains(&kind), "no {kind:?} tear");
    }
}

#[test]
fn unsynced_truncation_may_or_may_not_apply() {
    let data = pattern(2000, 4);
    let mut lengths = BTreeSet::new();
    for seed in 0..200 {
        let (fs, report) = crashed(seed, |fs| {
            durable_file(fs, "/d/f", &data).set_len(100).unwrap();
        });
        let got = fs.live_file(Path::new("/d/f")).unwrap();
        assert_eq!(got, data[..got.len()], "{report}");
        lengths.insert(got.len());
    }
    assert_eq!(lengths, BTreeSet::from([100, 2000]));
}

#[test]
fn created_file_may_vanish_until_its_directory_is_synced() {
    let data = pattern(600, 5);
    let (mut survived, mut vanished) = (0, 0);
    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            let file = fs.create_new(Path::new("/d/new")).unwrap();
            file.write_all_at(&data, 0).unwrap();
            file.sync_data().unwrap();
        });
        match fs.live_file(Path::new("/d/new")) {
            Some(got) => {
                assert_eq!(got, data, "{report}");
                survived += 1;
            }
            None => vanished += 1,
        }
    }
    assert!(
        survived > 0 && vanished > 0,
        "{survived} survived, {vanished} vanished"
    );

    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            durable_file(fs, "/d/new", &data);
        });
        assert_eq!(fs.live_file(Path::new("/d/new")).unwrap(), data, "{report}");
    }
}

#[test]
fn new_directory_may_vanish_until_its_parent_is_synced() {
    let (mut survived, mut vanished) = (0, 0);
    for seed in 0..200 {
        let (fs, report) = crashed(seed, |fs| {
            fs.create_dir_all(Path::new("/d/sub")).unwrap();
            durable_file(fs, "/d/sub/f", b"x");
        });
        if exists(&fs, "/d/sub/f") {
            survived += 1;
        } else {
            assert!(!fs.exists(Path::new("/d/sub")).unwrap(), "{report}");
            vanished += 1;
        }
    }
    assert!(
        survived > 0 && vanished > 0,
        "{survived} survived, {vanished} vanished"
    );

    for seed in 0..200 {
        let (fs, report) = crashed(seed, |fs| {
            fs.create_dir_all(Path::new("/d/sub")).unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
            durable_file(fs, "/d/sub/f", b"x");
        });
        assert!(exists(&fs, "/d/sub/f"), "{report}");
    }
}

#[test]
fn unsynced_namespace_operations_survive_in_order() {
    let mut outcomes = BTreeSet::new();
    for seed in 0..200 {
        let (fs, report) = crashed(seed, |fs| {
            for name in ["/d/1", "/d/2", "/d/3"] {
                fs.create_new(Path::new(name)).unwrap();
            }
        });
        let present: Vec<bool> = ["/d/1", "/d/2", "/d/3"]
            .iter()
            .map(|p| exists(&fs, p))
            .collect();
        assert!(
            present.windows(2).all(|w| w[0] || !w[1]),
            "not a prefix {present:?}: {report}"
        );
        assert_eq!(
            present.iter().filter(|p| **p).count(),
            report.namespace_ops_kept,
            "{report}"
        );
        outcomes.insert(present);
    }
    assert_eq!(outcomes.len(), 4, "{outcomes:?}");
}

#[test]
fn rename_is_durable_only_after_directory_sync() {
    let data = pattern(1500, 6);
    let mut outcomes = BTreeSet::new();
    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            durable_file(fs, "/d/tmp", &data);
            fs.rename(Path::new("/d/tmp"), Path::new("/d/final"))
                .unwrap();
        });
        let (tmp, fin) = (exists(&fs, "/d/tmp"), exists(&fs, "/d/final"));
        assert!(tmp != fin, "tmp {tmp}, final {fin}: {report}");
        let name = if fin { "/d/final" } else { "/d/tmp" };
        assert_eq!(fs.live_file(Path::new(name)).unwrap(), data, "{report}");
        outcomes.insert(fin);
    }
    assert_eq!(outcomes.len(), 2, "the rename always or never survived");

    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            durable_file(fs, "/d/tmp", &data);
            fs.rename(Path::new("/d/tmp"), Path::new("/d/final"))
                .unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
        });
        assert!(!exists(&fs, "/d/tmp"), "{report}");
        assert_eq!(
            fs.live_file(Path::new("/d/final")).unwrap(),
            data,
            "{report}"
        );
    }
}

#[test]
fn rename_across_directories_needs_both_synced() {
    let setup = |fs: &SimFs| {
        fs.create_dir_all_durable(Path::new("/a")).unwrap();
        fs.create_dir_all_durable(Path::new("/b")).unwrap();
        durable_file(fs, "/a/x", b"payload");
        fs.rename(Path::new("/a/x"), Path::new("/b/x")).unwrap();
    };
    let mut lost = 0;
    for seed in 0..200 {
        let (fs, report) = crashed(seed, |fs| {
            setup(fs);
            fs.sync_dir(Path::new("/a")).unwrap();
        });
        assert!(!exists(&fs, "/a/x"), "{report}");
        if !exists(&fs, "/b/x") {
            lost += 1;
        }
    }
    assert!(
        lost > 0,
        "syncing only the source directory never lost the file"
    );

    for seed in 0..200 {
        let (fs, report) = crashed(seed, |fs| {
            setup(fs);
            fs.sync_dir(Path::new("/a")).unwrap();
            fs.sync_dir(Path::new("/b")).unwrap();
        });
        assert!(!exists(&fs, "/a/x"), "{report}");
        assert_eq!(
            fs.live_file(Path::new("/b/x")).unwrap(),
            b"payload",
            "{report}"
        );
    }
}

#[test]
fn removed_file_comes_back_unless_its_directory_is_synced() {
    let data = pattern(800, 7);
    let (mut back, mut gone) = (0, 0);
    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            durable_file(fs, "/d/f", &data);
            fs.remove_file(Path::new("/d/f")).unwrap();
        });
        match fs.live_file(Path::new("/d/f")) {
            Some(got) => {
                assert_eq!(got, data, "{report}");
                back += 1;
            }
            None => gone += 1,
        }
    }
    assert!(
        back > 0 && gone > 0,
        "{back} came back, {gone} stayed removed"
    );

    for seed in 0..SEEDS {
        let (fs, report) = crashed(seed, |fs| {
            durable_file(fs, "/d/f", &data);
            fs.remove_file(Path::new("/d/f")).unwrap();
            fs.sync_dir(Path::new("/d")).unwrap();
        });
        assert!(!exists(&fs, "/d/f"), "{report}");
    }
}

#[test]
fn same_workload_and_seed_give_identical_images() {
    let workload = |fs: &SimFs| {
        let a = durable_file(fs, "/d/a", &pattern(3000, 8));
        a.write_all_at(&pattern(2500, 9), 2000).unwrap();
        a.set_len(4000).unwrap();
        let b = fs.create_new(Path::new("/d/b")).unwrap();
        b.write_all_at(&pattern(1000, 10), 0).unwrap();
        fs.rename(Path::new("/d/b"), Path::new("/d/c")).unwrap();
        fs.create_dir_all(Path::new("/d/e")).unwrap();
        fs.remove_file(Path::new("/d/a")).unwrap();
    };
    let mut distinct = BTreeSet::new();
    for seed in 0..100 {
        let (first, first_report) = crashed(seed, workload);
        let (second, second_report) = crashed(seed, workload);
        assert_eq!(first_report, second_report);
        assert_eq!(first.list_all(), second.list_all(), "{first_report}");
        assert_eq!(
            first.live_snapshot(),
            second.live_snapshot(),
            "{first_report}"
        );
        distinct.insert(first.live_snapshot());
    }
    assert!(
        distinct.len() > 10,
        "only {} distinct images",
        distinct.len()
    );
}

#[test]
fn handles_from_before_a_crash_fail() {
    let fs = fs_with_dir();
    let file = durable_file(&fs, "/d/f", b"before");
    let reader = fs.open(Path::new("/d/f"), OpenMode::Read).unwrap();
    fs.crash(1);
    let ops = fs.op_count();

    let mut buf = [0; 6];
    assert!(file.len().is_err());
    assert!(file.read_at(&mut buf, 0).is_err());
    assert!(reader.read_exact_at(&mut buf, 0).is_err());
    assert!(file.write_all_at(b"after", 0).is_err());
    assert!(file.sync_data().is_err());
    assert!(file.set_len(0).is_err());
    let err = file.len().unwrap_err();
    assert!(err.to_string().contains("before the crash"), "{err}");
    assert_eq!(
        fs.op_count(),
        ops,
        "calls on dead handles are not operations"
    );

    let fresh = fs.open(Path::new("/d/f"), OpenMode::ReadWrite).unwrap();
    fresh.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"before");
    fresh.write_all_at(b"after!", 0).unwrap();
    drop(file);
    drop(reader);
    assert_eq!(fs.live_file(Path::new("/d/f")).unwrap(), b"after!");
}

/// One operation per step, none depending on an earlier one, over a file
/// system prepared by `prepare`.
fn each_operation(fs: &SimFs, file: &Arc<dyn FileHandle>) -> Vec<io::Result<()>> {
    let d = Path::new("/d");
    let mut buf = [0; 4];
    vec![
        file.write_all_at(&[7; 100], 10),
        file.read_at(&mut buf, 0).map(drop),
        file.sync_data(),
        file.set_len(50),
        file.len().map(drop),
        fs.create_new(Path::new("/d/new")).map(drop),
        fs.open(Path::new("/d/f"), OpenMode::Read).map(drop),
        fs.read_dir(d).map(drop),
        fs.rename(Path::new("/d/old"), Path::new("/d/renamed")),
        fs.remove_file(Path::new("/d/doomed")),
        fs.sync_dir(d),
        fs.exists(Path::new("/d/f")).map(drop),
        fs.create_dir_all(Path::new("/d/sub")),
        fs.remove_dir(Path::new("/d/empty")),
    ]
}

fn prepare() -> (SimFs, Arc<dyn FileHandle>) {
    let fs = fs_with_dir();
    fs.create_dir_all_durable(Path::new("/d/empty")).unwrap();
    for name in ["/d/old", "/d/doomed"] {
        fs.create_new(Path::new(name)).unwrap();
    }
    let file = durable_file(&fs, "/d/f", &pattern(64, 11));
    (fs, file)
}

#[test]
fn fail_nth_fails_exactly_the_nth_operation() {
    let (fs, file) = prepare();
    let before = fs.op_count();
    let clean = each_operation(&fs, &file);
    assert!(clean.iter().all(Result::is_ok), "{clean:?}");
    let steps = clean.len();
    assert_eq!(
        fs.op_count() - before,
        steps as u64,
        "one operation per step"
    );

    for kind in [FaultKind::Eio, FaultKind::Enospc, FaultKind::ShortWrite] {
        for n in 0..steps {
            let (fs, file) = prepare();
            fs.fail_nth(n as u64, kind);
            assert!(fs.is_fault_armed());
            let results = each_operation(&fs, &file);
            assert!(!fs.is_fault_armed(), "{kind:?} at {n} never fired");
            for (step, result) in results.iter().enumerate() {
                if step != n {
                    assert!(result.is_ok(), "{kind:?} at {n}: step {step} {result:?}");
                    continue;
                }
                let err = result.as_ref().unwrap_err();
                let expected = match kind {
                    FaultKind::Enospc => io::ErrorKind::StorageFull,
                    FaultKind::Eio | FaultKind::ShortWrite => io::ErrorKind::Other,
                };
                assert_eq!(err.kind(), expected, "{kind:?} at {n}: {err}");
                assert!(err.to_string().contains("simulated"), "{err}");
            }
        }
    }
}

#[test]
fn failed_operations_have_no_effect() {
    let (fs, file) = prepare();
    fs.fail_nth(0, FaultKind::Eio);
    assert!(fs.create_new(Path::new("/d/x")).is_err());
    assert!(!fs.exists(Path::new("/d/x")).unwrap());
    fs.fail_nth(0, FaultKind::Enospc);
    assert!(file.write_all_at(b"zzzz", 0).is_err());
    assert_eq!(fs.live_file(Path::new("/d/f")).unwrap(), pattern(64, 11));
    fs.fail_nth(0, FaultKind::Eio);
    assert!(fs.rename(Path::new("/d/old"), Path::new("/d/x")).is_err());
    assert!(fs.exists(Path::new("/d/old")).unwrap());
}

#[test]
fn short_write_leaves_a_prefix_and_later_writes_succeed() {
    let fs = fs_with_dir();
    let file = fs.create_new(Path::new("/d/f")).unwrap();
    let data = pattern(1000, 12);
    fs.fail_nth(0, FaultKind::ShortWrite);
    let err = file.write_all_at(&data, 0).unwrap_err();
    assert!(err.to_string().contains("short write"), "{err}");
    assert_eq!(fs.live_file(Path::new("/d/f")).unwrap(), data[..500]);

    file.write_all_at(&data, 0).unwrap();
    file.sync_data().unwrap();
    assert_eq!(fs.live_file(Path::new("/d/f")).unwrap(), data);
}

#[test]
fn failed_sync_loses_the_pending_writes_for_good() {
    let fs = fs_with_dir();
    let file = durable_file(&fs, "/d/f", b"durable ");
    file.write_all_at(b"lost", 8).unwrap();
    fs.fail_syncs(true);
    let err = file.sync_data().unwrap_err();
    assert!(err.to_string().contains("simulated EIO"), "{err}");
    assert!(file.sync_data().is_err(), "every sync fails");
    // The page cache still shows the write...
    assert_eq!(fs.live_file(Path::new("/d/f")).unwrap(), b"durable lost");

    // ...but a later successful sync does not make it durable.
    fs.fail_syncs(false);
    file.write_all_at(b"!", 12).unwrap();
    file.sync_data().unwrap();
    let durable = fs.durable_snapshot();
    assert_eq!(
        durable[Path::new("/d/f")],
        b"durable \0\0\0\0!",
        "the lost write is a hole"
    );
    for seed in 0..50 {
        let (fs, report) = crashed(seed, |fs| {
            let file = durable_file(fs, "/d/f", b"durable ");
            file.write_all_at(b"lost", 8).unwrap();
            fs.fail_syncs(true);
            file.sync_data().unwrap_err();
        });
        assert_eq!(
            fs.live_file(Path::new("/d/f")).unwrap(),
            b"durable ",
            "{report}"
        );
    }
}

#[test]
fn capacity_fails_growth_with_enospc_and_space_returns() {
    let fs = fs_with_dir();
    fs.set_capacity(Some(4096));
    let a = fs.create_new(Path::new("/d/a")).unwrap();
    a.write_all_at(&pattern(3000, 13), 0).unwrap();

    let err = a.write_all_at(&pattern(2000, 14), 3000).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull, "{err}");
    assert_eq!(fs.used_bytes(), 4096, "the prefix that fits was written");
    assert_eq!(a.len().unwrap(), 4096);

    // Nothing grows past the capacity, but writes within a file succeed.
    let b = fs.create_new(Path::new("/d/b")).unwrap();
    assert_eq!(
        b.write_all_at(b"x", 0).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert_eq!(
        b.set_len(10).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert_eq!(b.len().unwrap(), 0);
    a.write_all_at(&[0xAA; 4096], 0).unwrap();
    assert_eq!(fs.used_bytes(), 4096);

    // Truncation frees space.
    a.set_len(1000).unwrap();
    b.write_all_at(&pattern(3000, 15), 0).unwrap();
    assert_eq!(fs.used_bytes(), 4000);

    // Removal frees space once no handle holds the file.
    fs.remove_file(Path::new("/d/a")).unwrap();
    assert_eq!(
        fs.used_bytes(),
        4000,
        "an open removed file still takes space"
    );
    drop(a);
    assert_eq!(fs.used_bytes(), 3000);
    b.write_all_at(&pattern(1000, 16), 3000).unwrap();
    assert_eq!(fs.used_bytes(), 4000);

    fs.set_capacity(None);
    b.write_all_at(&pattern(10_000, 17), 4000).unwrap();
}

#[test]
fn removed_file_stays_usable_through_an_open_handle() {
    let fs = fs_with_dir();
    let file = durable_file(&fs, "/d/f", b"still here");
    fs.remove_file(Path::new("/d/f")).unwrap();
    assert!(!fs.exists(Path::new("/d/f")).unwrap());
    assert_eq!(
        fs.open(Path::new("/d/f"), OpenMode::Read)
            .unwrap_err()
            .kind(),
        io::ErrorKind::NotFound
    );

    let mut buf = [0; 10];
    file.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"still here");
    file.write_all_at(b"!", 10).unwrap();
    file.sync_data().unwrap();
    assert_eq!(file.len().unwrap(), 11);

    // A new file of the same name is another file.
    let other = fs.create_new(Path::new("/d/f")).unwrap();
    assert_eq!(other.len().unwrap(), 0);
    assert_eq!(file.len().unwrap(), 11);
}

#[test]
fn path_errors_match_the_real_file_system() {
    let fs = fs_with_dir();
    let kind = |result: io::Result<()>| result.unwrap_err().kind();
    durable_file(&fs, "/d/f", b"x");
    fs.create_dir_all(Path::new("/d/sub")).unwrap();
    fs.create_new(Path::new("/d/sub/g")).unwrap();

    assert_eq!(
        kind(fs.create_new(Path::new("/missing/f")).map(drop)),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.create_new(Path::new("/d/f")).map(drop)),
        io::ErrorKind::AlreadyExists
    );
    assert_eq!(
        kind(fs.open(Path::new("/d/nope"), OpenMode::Read).map(drop)),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.rename(Path::new("/d/nope"), Path::new("/d/x"))),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.remove_file(Path::new("/d/nope"))),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        kind(fs.remove_dir(Path::new("/d/sub"))),
        io::ErrorKind::DirectoryNotEmpty
    );
    assert_eq!(
        kind(fs.create_new(Path::new("/d/../f")).map(drop)),
        io::ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(fs.create_new(Path::new("/d/f/g")).map(drop)),
        io::ErrorKind::NotADirectory
    );
    let readonly = fs.open(Path::new("/d/f"), OpenMode::Read).unwrap();
    assert_eq!(
        kind(readonly.write_all_at(b"y", 0)),
        io::ErrorKind::PermissionDenied
    );

    let mut names: Vec<_> = fs
        .read_dir(Path::new("/d"))
        .unwrap()
        .into_iter()
        .map(|entry| (entry.name.into_string().unwrap(), entry.is_dir))
        .collect();
    names.sort();
    assert_eq!(names, [("f".to_owned(), false), ("sub".to_owned(), true)]);
    assert_eq!(
        fs.list_all(),
        ["/d", "/d/f", "/d/sub", "/d/sub/g"].map(std::path::PathBuf::from)
    );
}

#[test]
fn clones_share_one_file_system_across_threads() {
    let fs = fs_with_dir();
    let shared: Arc<dyn Fs> = Arc::new(fs.clone());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                let path = format!("/d/{t}");
                let file = shared.create_new(Path::new(&path)).unwrap();
                for i in 0..100u64 {
                    file.write_all_at(&[t; 10], i * 10).unwrap();
                }
                file.sync_data().unwrap();
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    shared.sync_dir(Path::new("/d")).unwrap();
    fs.crash(0);
    for t in 0..4u8 {
        assert_eq!(
            fs.live_file(Path::new(&format!("/d/{t}"))).unwrap(),
            [t; 1000]
        );
    }
}
