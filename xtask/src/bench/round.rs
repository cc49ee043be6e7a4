//! One round of a scenario against a fresh `log-server`: the server
//! started (with extra `LOG_SERVER_*` settings for a lever tried), the load
//! generator run, and each `RESULT` line given the server's CPU time and
//! its round; the levers of the produce path the bench measures against
//! the default ([`TRIED`]); and the one extra `small-writers` round with
//! `perf` attached ([`profiled`]: system calls and CPU profile), kept apart
//! because perf slows the server it watches.
//!
//! It judges nothing (the report does) and runs one process pair at a time.

use std::path::Path;
use std::process::Command;

use super::server::Server;
use super::{loadgen_run, profile, syscalls};

/// Levers of the produce path measured against the shipped default in the
/// same run, interleaved with its rounds (issue 11's "what was tried"):
/// the name the report shows and the server setting that differs from the
/// default (`NAME_off`: a lever of the default turned off; `NAME_on`: one
/// the default leaves off, turned on). One runtime worker (instead of one
/// per core) wakes fewer threads per ack, but, as allocated today, maps
/// fresh pages for every large request buffer (1 KiB batches lose 10–15
/// %): it stays a setting, measured here, not the default.
pub(super) const TRIED: [(&str, &str, &str); 3] = [
    ("zeroed_runway_off", "LOG_SERVER_PREALLOCATE_BYTES", "0"),
    ("gathered_writes_off", "LOG_SERVER_GATHER_WRITES", "false"),
    ("one_runtime_worker_on", "LOG_SERVER_WORKER_THREADS", "1"),
];

/// One `small-writers` round with one lever of [`TRIED`] set: its lines
/// as `scenario=small-writers-tried tried=NAME`, so the report compares
/// them with the default's rounds and nothing else counts them.
pub(super) fn tried(
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    args: &[String],
    round: u32,
    (name, key, value): (&str, &str, &str),
) -> Result<Vec<String>, String> {
    eprintln!("== small-writers round {round} with {key}={value} ({name})");
    let lines = scenario(
        server,
        loadgen,
        data_root,
        "small-writers",
        args,
        Some(round),
        &[(key, value)],
    )?;
    Ok(retagged(lines, "small-writers-tried")
        .map(|l| l + &format!(" tried={name}"))
        .collect())
}

/// The `RESULT` lines of a `small-writers` round, as scenario `tag`.
fn retagged(lines: Vec<String>, tag: &str) -> impl Iterator<Item = String> {
    let tag = format!("scenario={tag} ");
    lines
        .into_iter()
        .filter(|l| l.starts_with("RESULT "))
        .map(move |l| l.replacen("scenario=small-writers ", &tag, 1))
}

/// One scenario against a fresh server (with the `LOG_SERVER_*` settings
/// in `env` on top of the defaults): its `RESULT` and `EXTRA` lines, each
/// `RESULT` line with the server's CPU time over the run appended (and
/// `round=R` when given). Never instrumented: `perf` attached to the server
/// costs it about a quarter of its acks/s here, so the figures the report
/// judges come from rounds without it ([`profiled`] is the extra round that
/// has it).
pub(super) fn scenario(
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    name: &str,
    args: &[String],
    round: Option<u32>,
    env: &[(&str, &str)],
) -> Result<Vec<String>, String> {
    run(server, loadgen, data_root, name, args, round, env, false)
}

/// One extra `small-writers` round with `perf` attached to the server: its
/// system calls (`sys_*`) and CPU profile (`prof_*`) on its `RESULT` lines,
/// which are tagged `scenario=small-writers-profiled` so that nothing but
/// the report's rows about system calls and the CPU's parts reads them.
pub(super) fn profiled(
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    args: &[String],
) -> Result<Vec<String>, String> {
    eprintln!("== small-writers again, with perf attached (system calls, CPU profile)");
    let lines = run(
        server,
        loadgen,
        data_root,
        "small-writers",
        args,
        None,
        &[],
        true,
    )?;
    Ok(retagged(lines, "small-writers-profiled").collect())
}

/// `started`'s value, or `None` with the reason printed: each instrument
/// is optional, and without perf the round goes on.
fn optional<T>(name: &str, what: &str, started: Result<T, String>) -> Option<T> {
    started
        .map_err(|reason| eprintln!("== {name}: no {what}: {reason}"))
        .ok()
}

#[allow(clippy::too_many_arguments)]
fn run(
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    name: &str,
    args: &[String],
    round: Option<u32>,
    env: &[(&str, &str)],
    instrument: bool,
) -> Result<Vec<String>, String> {
    eprintln!("== scenario {name} {}", args.join(" "));
    let data = data_root.join(name);
    let _ = std::fs::remove_dir_all(&data);
    let mut srv = Server::start_with_env(server, &data, env)?;
    srv.wait_ready(loadgen)?;
    let pid = srv.child.id();
    let mut all = vec![
        "--addr".to_owned(),
        srv.url(),
        "--scenario".to_owned(),
        name.to_owned(),
        "--server-pid".to_owned(),
        pid.to_string(),
    ];
    all.extend(args.iter().cloned());
    // The small writers' system calls per ack (issue 11's CPU question).
    let counter = instrument
        .then(|| {
            let out = data_root.join(format!("{name}.perf"));
            optional(name, "syscall counts", syscalls::Counter::start(pid, &out))
        })
        .flatten();
    // Where its CPU goes, by component (the ≤ 12 µs per ack question).
    let profiler = instrument
        .then(|| {
            let out = data_root.join(format!("{name}.perf.data"));
            optional(name, "CPU profile", profile::Profiler::start(pid, &out))
        })
        .flatten();
    let before = cpu_split(pid);
    let output = loadgen_run(loadgen, &all)?;
    let after = cpu_split(pid);
    let calls = counter.map(syscalls::Counter::finish).unwrap_or_default();
    let profiled = profiler.map(profile::Profiler::finish).unwrap_or_default();
    srv.stop()?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(output
        .into_iter()
        .map(|mut line| {
            if line.starts_with("RESULT ") {
                if let (Some(before), Some(after)) = (before, after) {
                    let n = line
                        .split_whitespace()
                        .find_map(|kv| kv.strip_prefix("n="))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let (user, system) = (
                        after.0.saturating_sub(before.0),
                        after.1.saturating_sub(before.1),
                    );
                    line.push_str(&cpu_pairs(user + system, n));
                    line.push_str(&format!(" server_stime_ticks={system}"));
                }
                line.push_str(&calls);
                line.push_str(&profiled);
                if let Some(round) = round {
                    line.push_str(&format!(" round={round}"));
                }
            }
            line
        })
        .collect())
}

/// The CPU time (user + system, in clock ticks) process `pid` has used,
/// from fields 14 and 15 of `/proc/PID/stat`; it includes the threads
/// that already exited.
pub(super) fn cpu_ticks(pid: u32) -> Option<u64> {
    cpu_split(pid).map(|(user, system)| user + system)
}

/// The user and system CPU time (clock ticks) process `pid` has used.
pub(super) fn cpu_split(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces;
    // field 3 starts after the last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 when unknown).
pub(super) fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// The CPU pairs appended to a `RESULT` line: `ticks` of server CPU over a
/// run of `n` records.
pub(super) fn cpu_pairs(ticks: u64, n: u64) -> String {
    let hz = clk_tck();
    let per = if n > 0 {
        ticks as f64 * 1e6 / hz as f64 / n as f64
    } else {
        0.0
    };
    format!(" server_cpu_ticks={ticks} clk_tck={hz} server_cpu_us_per_record={per:.2}")
}
