//! The scale and recovery steps: many partitions filled and read (open
//! files counted from `/proc`), and how long a restart takes until the
//! server serves again.

use super::loadgen_run;
use super::server::Server;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The partitions target: many partitions with many sealed segments each
/// (10,000 × 20; `--quick` 500 × 5), open and serving. Counts the server's
/// open files after the fill (once the background flush made everything
/// durable), times a clean restart until it serves, and counts the open
/// files again after the restart and after reading every partition.
pub(super) fn scale(
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    quick: bool,
) -> Result<Vec<String>, String> {
    let (partitions, segments) = if quick { ("500", "5") } else { ("10000", "20") };
    eprintln!("== scale: {partitions} partitions x {segments} sealed segments");
    let data = data_root.join("scale");
    let _ = std::fs::remove_dir_all(&data);
    let mut srv = Server::start(server, &data)?;
    srv.wait_ready(loadgen)?;
    let run = |srv: &Server, scenario: &str| {
        loadgen_run(
            loadgen,
            &[
                "--addr".into(),
                srv.url(),
                "--scenario".into(),
                scenario.into(),
                "--partitions".into(),
                partitions.into(),
                "--segments".into(),
                segments.into(),
            ],
        )
    };
    let mut lines = run(&srv, "scale-fill")?;
    // The background flush syncs WRITTEN data within a second; then no
    // segment holds unsynced writes and the pool keeps to its budget.
    std::thread::sleep(Duration::from_secs(3));
    let after_fill = open_files(srv.child.id());
    let stopping = Instant::now();
    srv.stop()?;
    let shutdown_ms = stopping.elapsed().as_millis();
    let started = Instant::now();
    let mut again = Server::start_on(server, &data, srv.port)?;
    again.wait_ready(loadgen)?;
    let restart_ms = started.elapsed().as_millis();
    let after_restart = open_files(again.child.id());
    lines.extend(run(&again, "scale-read")?);
    let after_reads = open_files(again.child.id());
    again.stop()?;
    let _ = std::fs::remove_dir_all(&data);
    let line = format!(
        "EXTRA system=log-server scenario=scale partitions={partitions} sealed_segments={segments} \
         open_files_after_fill={after_fill} shutdown_ms={shutdown_ms} restart_to_ready_ms={restart_ms} \
         open_files_after_restart={after_restart} open_files_after_reads={after_reads}"
    );
    println!("{line}");
    lines.push(line);
    Ok(lines)
}

/// The open file descriptors of process `pid` (0 when unknown).
pub(super) fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Fills a log, kills the server (SIGKILL), restarts it on the same data
/// and times until it serves.
pub(super) fn recovery(
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    quick: bool,
) -> Result<Vec<String>, String> {
    eprintln!("== recovery after kill -9");
    let data = data_root.join("recovery");
    let _ = std::fs::remove_dir_all(&data);
    let mut srv = Server::start(server, &data)?;
    srv.wait_ready(loadgen)?;
    let n = if quick { "100000" } else { "10000000" };
    // Written acks: the fill is not the figure; the restart is.
    let fill = Command::new(loadgen)
        .args([
            "--addr",
            &srv.url(),
            "--scenario",
            "pipelined",
            "--ack",
            "written",
        ])
        .args(["--n", n, "--size", "100", "--in-flight", "8", "--keep"])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", loadgen.display()))?;
    if !fill.success() {
        return Err("filling the log for the recovery run failed".into());
    }
    srv.child.kill().map_err(|e| format!("kill -9: {e}"))?;
    let _ = srv.child.wait();
    let log_bytes = dir_size(&data);
    let started = Instant::now();
    let mut again = Server::start_on(server, &data, srv.port)?;
    let output = loadgen_run(
        loadgen,
        &[
            "--addr".into(),
            again.url(),
            "--scenario".into(),
            "ready".into(),
        ],
    )?;
    let wall_ms = started.elapsed().as_millis();
    let ready_ms = output
        .iter()
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|kv| kv.strip_prefix("ready_ms="))
        })
        .unwrap_or("0")
        .to_owned();
    again.stop()?;
    let _ = std::fs::remove_dir_all(&data);
    let line = format!(
        "EXTRA system=log-server scenario=recovery records={n} log_bytes={log_bytes} ready_ms={ready_ms} restart_to_ready_ms={wall_ms}"
    );
    println!("{line}");
    Ok(vec![line])
}

pub(super) fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
