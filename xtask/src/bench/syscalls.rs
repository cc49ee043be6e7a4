//! The system calls a server makes during a scenario, counted by `perf
//! stat` on the kernel's `syscalls:sys_enter_*` tracepoints, appended to
//! the scenario's `RESULT` line as `sys_NAME=COUNT` pairs (the report
//! divides them by the acks). What the produce path pays per ack in the
//! kernel — a write per append, a socket write per ack, the sync, the
//! wake-ups — is then measured, not guessed.
//!
//! Optional: without `perf` (Debian's `linux-perf`) or without access to
//! the tracepoints, [`Counter::start`] answers why and the run goes on
//! without the pairs. It never installs anything.

use std::path::Path;
use std::process::{Command, Stdio};

use super::perf::Attached;

/// The system calls counted.
const CALLS: [&str; 9] = [
    "pwrite64",
    "writev",
    "write",
    "fdatasync",
    "futex",
    "sched_yield",
    "epoll_wait",
    "recvfrom",
    "sendmsg",
];

/// A running `perf stat` attached to one process.
pub(super) struct Counter(Attached);

impl Counter {
    /// Starts counting the calls of process `pid`, writing to `out`; the
    /// reason when it cannot.
    pub(super) fn start(pid: u32, out: &Path) -> Result<Counter, String> {
        let events: Vec<String> = CALLS
            .iter()
            .map(|c| format!("syscalls:sys_enter_{c}"))
            .collect();
        // A probe first: perf missing, or tracepoints it may not read.
        let probe = Command::new("perf")
            .args(["stat", "-x", ",", "-e", &events[0], "--", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("perf not available ({e})"))?;
        let text = String::from_utf8_lossy(&probe.stderr);
        if !probe.status.success() || text.contains("not supported") {
            return Err(format!(
                "perf cannot count syscalls here: {}",
                text.lines().next().unwrap_or("")
            ));
        }
        let events = events.join(",");
        Attached::start(&["stat", "-x", ",", "-e", &events], pid, out).map(Counter)
    }

    /// Stops counting (SIGINT, as perf expects) and answers the
    /// `sys_NAME=COUNT` pairs, each with a leading space.
    pub(super) fn finish(self) -> String {
        let out = self.0.stop();
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        let _ = std::fs::remove_file(&out);
        pairs(&text)
    }
}

/// The pairs from `perf stat -x ,` output: `COUNT,UNIT,EVENT,...` lines.
fn pairs(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut fields = line.split(',');
        let (Some(count), Some(_unit), Some(event)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let (Some(name), Ok(count)) = (
            event.strip_prefix("syscalls:sys_enter_"),
            count.trim().parse::<u64>(),
        ) else {
            continue;
        };
        out.push_str(&format!(" sys_{name}={count}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn perf_stat_csv_becomes_pairs_and_uncounted_events_are_left_out() {
        let text = "# started on Wed Dec  2 17:10:00 2026\n\n\
                    214929,,syscalls:sys_enter_pwrite64,6812345678,100.00,,\n\
                    150476,,syscalls:sys_enter_writev,6812345678,100.00,,\n\
                    <not counted>,,syscalls:sys_enter_sendmsg,0,0.00,,\n";
        assert_eq!(pairs(text), " sys_pwrite64=214929 sys_writev=150476");
    }
}
