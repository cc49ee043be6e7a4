//! A really full disk: a 4 MiB tmpfs mounted for the test (needs root, as
//! CI runs; skipped with a printed reason otherwise). Appends that do not
//! fit fail with a typed error and leave no partial batch; acknowledged
//! records stay readable; appends resume as soon as space returns, without
//! a restart.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::BytesMut;
use log_storage::{AppendOptions, Error, Isolation, Log, LogConfig, RealFs};

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path) -> Result<Mount, String> {
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(dir)
        .status()
        .map_err(|err| format!("cannot run mount: {err}"))?;
    if status.success() {
        Ok(Mount(dir.to_path_buf()))
    } else {
        Err(format!("mount -t tmpfs failed ({status}); not root?"))
    }
}

fn batch(records: usize) -> BytesMut {
    common::batch_of(0, std::iter::repeat_n([0x42; 1000], records), None)
}

#[test]
fn a_full_disk_refuses_appends_cleanly_and_they_resume_when_space_returns() {
    let tmp = tempfile::TempDir::new().unwrap();
    let mount = match mount_tmpfs(tmp.path()) {
        Ok(mount) => mount,
        Err(reason) => {
            println!("skipped: a real full disk needs a tmpfs mount: {reason}");
            return;
        }
    };
    let filler = mount.0.join("filler");
    std::fs::write(&filler, vec![0u8; 1 << 20]).unwrap();
    let dir = mount.0.join("partition");
    let mut config = LogConfig::default();
    config.segment_max_bytes = 1 << 20;
    config.limits.max_batch_bytes = 64 * 1024;
    let log = Log::open(Arc::new(RealFs), &dir, config.clone()).unwrap();
    let mut acked_end = 0;
    let err = loop {
        match log.append(batch(20), AppendOptions::default()) {
            Ok(ack) => acked_end = ack.last_offset + 1,
            Err(err) => break err,
        }
    };
    assert!(acked_end > 0, "some appends fit");
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull),
        "a full disk is a typed I/O error: {err:?}"
    );
    assert_eq!(
        log.watermarks().log_end,
        acked_end,
        "nothing partial is visible"
    );
    let mut offset = 0;
    while offset < acked_end {
        offset = log
            .read(offset, 1 << 20, Isolation::Durable)
            .unwrap()
            .next_offset;
    }
    // Space returns: appends resume without a restart.
    std::fs::remove_file(&filler).unwrap();
    let ack = log.append(batch(20), AppendOptions::default()).unwrap();
    assert_eq!(ack.base_offset, acked_end);
    drop(log);
    let log = Log::open(Arc::new(RealFs), &dir, config).unwrap();
    assert_eq!(log.watermarks().log_end, acked_end + 20);
}
