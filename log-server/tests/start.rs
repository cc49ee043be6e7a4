//! Starting the real `log-server` binary: a start that fails exits
//! non-zero with the cause on stderr, whether it fails before serving (the
//! data directory cannot be used) or during recovery (a partition cannot
//! be opened); the data directory lock outlives no server, not even one
//! killed with SIGKILL.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::ServerProcess;
use log_storage::{Store, TopicConfig};
use tempfile::TempDir;

/// Runs the binary on `data_dir` until it exits (at most 60 s).
fn run(data_dir: &Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_log-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--kafka-listen",
            "off",
            "--shutdown-grace-ms",
            "100",
        ])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("log-server still runs on a data directory it cannot use");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_failed_with(output: &Output, cause: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "exit status {}; stderr:\n{stderr}",
        output.status
    );
    assert!(
        stderr.contains(cause),
        "stderr does not name {cause:?}:\n{stderr}"
    );
}

#[test]
fn a_data_dir_that_is_a_regular_file_fails_the_start_with_a_non_zero_exit_and_the_cause_on_stderr()
{
    let tmp = TempDir::new().unwrap();
    let file = tmp.path().join("data");
    std::fs::write(&file, "not a directory").unwrap();
    let output = run(&file);
    assert_failed_with(&output, &file.display().to_string());
}

#[test]
fn a_partition_that_cannot_be_recovered_fails_the_start_with_a_non_zero_exit_and_the_cause_on_stderr()
 {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    {
        let store = Store::open_locked(&data).unwrap();
        store.create_topic("t", 2, TopicConfig::default()).unwrap();
        store.partition("t", 1).unwrap();
        store.close().unwrap();
    }
    // Partition 1's directory becomes a regular file: recovery cannot open it.
    let partition = data.join("topics/t/1");
    std::fs::remove_dir_all(&partition).unwrap();
    std::fs::write(&partition, "not a directory").unwrap();
    let output = run(&data);
    assert_failed_with(&output, "recovery");
    assert_failed_with(&output, &partition.display().to_string());
}

/// Item 16: the lock is an OS lock, so a server killed with SIGKILL leaves
/// no lock behind; while it ran, a second server on its directory failed
/// to start, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_locked_by_a_server_killed_with_sigkill_is_free_for_the_next_one() {
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("data");
    let first = ServerProcess::spawn(&data, &[]);
    let client = first.client().await;
    client
        .create_topic("t", 1, Default::default())
        .await
        .unwrap();
    let pid = first.child.id();
    let data_dir = data.clone();
    let second = tokio::task::spawn_blocking(move || run(&data_dir))
        .await
        .unwrap();
    assert_failed_with(&second, "locked");
    assert_failed_with(&second, &format!("process {pid}"));
    first.kill9();
    let next = ServerProcess::spawn(&data, &[]);
    let client = next.client().await;
    assert_eq!(client.get_topic("t").await.unwrap().partitions.len(), 1);
    assert!(next.terminate().success());
}

/// Issue 10, item 11: CreateTopic is atomic. Under an open-file limit too
/// low for all its partitions it answers RESOURCE_EXHAUSTED and leaves no
/// topic behind (neither in the store nor on disk), and the server goes on
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_topic_that_runs_out_of_file_descriptors_leaves_nothing_and_is_resource_exhausted()
{
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::spawn_with_fd_limit(&data, 256);
    let client = server.client().await;
    let err = client
        .create_topic("many", 400, Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    let missing = client.get_topic("many").await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound, "{missing:?}");
    let topics = std::fs::read_dir(data.join("topics")).unwrap().count();
    assert_eq!(topics, 0, "no topic directory left behind");
    client
        .create_topic("few", 4, Default::default())
        .await
        .unwrap();
    assert!(server.terminate().success());
}
