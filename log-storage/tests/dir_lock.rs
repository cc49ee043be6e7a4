//! The data directory lock: an OS file lock (`flock` through fs4) on
//! `<data>/LOCK`, released by the kernel when its holder dies. The file's
//! content (pid, start time, boot id) only names the holder in the error a
//! second locker gets; it never decides who holds the lock.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use log_storage::{Error, Store, TopicConfig, lock_data_dir};
use tempfile::TempDir;

#[test]
fn a_second_lock_in_the_same_process_fails_naming_the_holder_until_the_first_is_dropped() {
    let tmp = TempDir::new().unwrap();
    let lock_file = tmp.path().join("LOCK");
    let first = lock_data_dir(tmp.path()).unwrap();
    assert_eq!(first.path(), lock_file);
    for second in [
        lock_data_dir(tmp.path()).map(drop),
        Store::open_locked(tmp.path()).map(drop),
    ] {
        match second {
            Err(Error::Locked { path, holder }) => {
                assert_eq!(path, lock_file);
                assert!(
                    holder.contains(&format!("process {}", std::process::id())),
                    "{holder}"
                );
                let message = Error::Locked { path, holder }.to_string();
                assert!(message.contains("locked"), "{message}");
            }
            other => panic!("expected Locked, got {other:?}"),
        }
    }
    drop(first);
    let store = Store::open_locked(tmp.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
    assert!(matches!(
        lock_data_dir(tmp.path()),
        Err(Error::Locked { .. })
    ));
    drop(store);
    lock_data_dir(tmp.path()).unwrap();
}

/// Whatever `LOCK` says — a live process (this one, with its real start
/// time and boot id), garbage, nothing — it is only information: without
/// an OS lock on it the directory is free.
#[test]
fn a_lock_file_no_process_holds_an_os_lock_on_is_free_whatever_it_says() {
    let tmp = TempDir::new().unwrap();
    let lock_file = tmp.path().join("LOCK");
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let start = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_owned();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let live = format!(
        "log-storage data directory lock v1\npid {}\nstart {start}\nboot {}\nnonce 0000000000000001\n",
        std::process::id(),
        boot.trim()
    );
    for text in [live.as_str(), "someone else's lock", ""] {
        std::fs::write(&lock_file, text).unwrap();
        let lock = lock_data_dir(tmp.path()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let now = std::fs::read_to_string(&lock_file).unwrap();
        assert!(
            now.contains(&format!("pid {}", std::process::id())),
            "{now}"
        );
        drop(lock);
    }
}

/// The child holds the lock until its stdin closes (libtest captures its
/// stdout, so the parent watches the lock file for the child's pid); the
/// parent is refused, then kills it with SIGKILL and gets the lock.
#[test]
fn a_lock_held_by_another_process_refuses_until_that_process_is_killed() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    const NAME: &str = "a_lock_held_by_another_process_refuses_until_that_process_is_killed";
    if let Some(dir) = std::env::var_os("STORE_LOCK_CHILD") {
        let _store = Store::open_locked(&dir).unwrap();
        // Until the parent kills this process, or dies itself.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        return;
    }
    let tmp = TempDir::new().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--test-threads=1"])
        .env("STORE_LOCK_CHILD", tmp.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The holder writes its pid into LOCK once it holds the lock.
    let lock_file = tmp.path().join("LOCK");
    let mine = format!("pid {}\n", child.id());
    let mut waited = Duration::ZERO;
    while !std::fs::read_to_string(&lock_file).is_ok_and(|t| t.contains(&mine)) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited before taking the lock: {status}");
        }
        assert!(
            waited < Duration::from_secs(120),
            "the child never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
        waited += Duration::from_millis(10);
    }
    let refused = Store::open_locked(tmp.path());
    child.kill().unwrap();
    child.wait().unwrap();
    match refused {
        Err(Error::Locked { holder, .. }) => {
            assert!(holder.contains(&child.id().to_string()), "{holder}")
        }
        other => panic!("expected Locked, got {other:?}"),
    }
    let store = Store::open_locked(tmp.path()).unwrap();
    store.create_topic("t", 1, TopicConfig::default()).unwrap();
}
