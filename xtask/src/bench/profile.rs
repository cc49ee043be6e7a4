//! Where a server's CPU goes during a scenario, sampled by `perf record
//! -g` and grouped by component, appended to the scenario's `RESULT` line
//! as `prof_samples=N` and `prof_COMPONENT=COUNT` pairs (the report turns
//! them into µs per ack with the round's CPU time).
//!
//! A kernel sample is charged to the system call on its kernel stack
//! (`k_fdatasync`, `k_pwrite64`, `k_writev`, ...), to the return path of
//! system calls (`k_syscall_exit`: rescheduling, rseq), to the tracepoints
//! of the syscall counter running beside it (`k_syscall_trace`, the
//! measurement's own cost), to page faults, to
//! interrupts (`k_irq`), or to `k_other`. A user sample is
//! charged by the crate of its leaf function ([`user_component`]): the
//! release build has no frame pointers, so user stacks are not unwound and
//! a helper (`memcpy`, `core::`) is charged as itself, not to its caller.
//!
//! Optional, as [`super::syscalls`]: without `perf` or its permission,
//! [`Profiler::start`] answers why and the run goes on without the pairs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use super::perf::Attached;

/// Samples per second per thread: enough for a few thousand samples in a
/// round, little enough not to slow the server measurably.
const HZ: &str = "999";

/// A running `perf record` attached to one process.
pub(super) struct Profiler(Attached);

impl Profiler {
    /// Starts sampling process `pid` into `out`; the reason when it cannot.
    pub(super) fn start(pid: u32, out: &Path) -> Result<Profiler, String> {
        Attached::start(&["record", "-q", "-F", HZ, "-g"], pid, out).map(Profiler)
    }

    /// Stops sampling (SIGINT, as perf expects) and answers the `prof_*`
    /// pairs, each with a leading space; nothing when perf recorded nothing.
    pub(super) fn finish(self) -> String {
        let out = self.0.stop();
        let script = Command::new("perf")
            .args(["script", "-F", "tid,ip,sym", "-i"])
            .arg(&out)
            .stderr(Stdio::null())
            .output();
        let _ = std::fs::remove_file(&out);
        match script {
            Ok(out) if out.status.success() => pairs(&String::from_utf8_lossy(&out.stdout)),
            _ => {
                eprintln!("== profile: perf script failed; no profile pairs");
                String::new()
            }
        }
    }
}

/// The `prof_*` pairs of `perf script -F tid,ip,sym` output: one block per
/// sample, a header line (the thread id, right-aligned) then one
/// tab-indented `ADDRESS SYMBOL` line per frame, leaf first.
fn pairs(text: &str) -> String {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    let mut frames: Vec<(bool, &str)> = Vec::new();
    let mut flush = |frames: &mut Vec<(bool, &str)>| {
        if let Some(component) = component(frames) {
            *counts.entry(component).or_default() += 1;
            total += 1;
        }
        frames.clear();
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut frames);
        } else if line.starts_with('\t') {
            let mut parts = line.trim().splitn(2, ' ');
            let addr = parts.next().unwrap_or("");
            let sym = parts.next().unwrap_or("[unknown]").trim();
            // Kernel text lives in the top half of the address space.
            let kernel = addr.len() == 16 && addr.starts_with("ffff");
            frames.push((kernel, sym));
        } else {
            flush(&mut frames);
        }
    }
    flush(&mut frames);
    if total == 0 {
        return String::new();
    }
    let mut out = format!(" prof_samples={total}");
    for (name, n) in counts {
        out.push_str(&format!(" prof_{name}={n}"));
    }
    out
}

/// The component one sample is charged to, from its frames (leaf first).
fn component(frames: &[(bool, &str)]) -> Option<String> {
    let &(kernel, leaf) = frames.first()?;
    if !kernel {
        return Some(format!("u_{}", user_component(leaf)));
    }
    let kernel_frames: Vec<&str> = frames
        .iter()
        .take_while(|(k, _)| *k)
        .map(|(_, sym)| *sym)
        .collect();
    Some(format!("k_{}", kernel_component(&kernel_frames)))
}

/// The kernel component of a sample's kernel frames (leaf first): the
/// system call `do_syscall_64` called (`__x64_sys_writev`, `do_writev`,
/// `ksys_write` all name `writev`/`write`), `syscall_exit` for the return
/// path (rescheduling, rseq), `syscall_trace` for the cost of the
/// concurrent syscall counter's tracepoints, `page_fault`, `irq`, or
/// `other`.
fn kernel_component(frames: &[&str]) -> String {
    if let Some(at) = frames.iter().position(|s| *s == "do_syscall_64") {
        let callee = frames[..at]
            .iter()
            .rev()
            .find(|s| !s.starts_with("x64_sys_call") && !s.starts_with("__x86_"));
        let Some(callee) = callee else {
            return "syscall_entry".to_owned();
        };
        if callee.contains("exit_to_user_mode") || callee.contains("syscall_exit") {
            return "syscall_exit".to_owned();
        }
        if callee.contains("syscall_trace") {
            // The tracepoints of the syscall counter running beside us.
            return "syscall_trace".to_owned();
        }
        let name = ["__x64_sys_", "__do_sys_", "__se_sys_", "ksys_", "do_"]
            .iter()
            .find_map(|p| callee.strip_prefix(p))
            .unwrap_or(callee);
        return name.split('.').next().unwrap_or(name).to_owned();
    }
    let named = |needle: &str| frames.iter().any(|s| s.contains(needle));
    if named("page_fault") {
        "page_fault".to_owned()
    } else if named("irq") || named("sysvec") || named("interrupt") {
        "irq".to_owned()
    } else {
        "other".to_owned()
    }
}

/// The user-space component of a leaf function, by the crates its
/// demangled name mentions (the first rule that matches wins).
fn user_component(sym: &str) -> &'static str {
    const RULES: [(&[&str], &str); 9] = [
        (&["h2::"], "http2"),
        (&["hyper::", "http::", "httparse"], "http"),
        (
            &["tonic::", "prost::", "tower", "log_client::proto"],
            "grpc",
        ),
        (
            &[
                "tokio::",
                "mio::",
                "parking_lot",
                "std::sync",
                "std::thread",
            ],
            "runtime",
        ),
        (
            &["log_storage::", "log_index::", "log_format::", "crc32"],
            "storage",
        ),
        (&["log_server::"], "server"),
        (&["malloc", "free", "realloc", "calloc", "_int_"], "alloc"),
        (&["memcpy", "memmove", "memset", "memcmp"], "mem"),
        (&["[unknown]"], "unknown"),
    ];
    RULES
        .iter()
        .find(|(needles, _)| needles.iter().any(|n| sym.contains(n)))
        .map_or("other", |(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::pairs;

    #[test]
    fn samples_are_charged_to_their_syscall_or_their_leafs_crate() {
        let text = " 4466 \n\
            \t          29b370 bytes::bytes::static_drop\n\
            \n\
             4467 \n\
            \tffffffff81649d2d ___slab_alloc\n\
            \tffffffff816d9b83 __x64_sys_pwrite64\n\
            \tffffffff8224d141 do_syscall_64\n\
            \t           f64c7 __libc_pwrite\n\
            \n\
             4467 \n\
            \tffffffff8159fd16 __rseq_handle_notify_resume\n\
            \tffffffff814239d4 exit_to_user_mode_loop\n\
            \tffffffff8224d320 do_syscall_64\n\
            \n\
             4467 \n\
            \tffffffff81649d2d vfs_writev\n\
            \tffffffff81649d2d do_writev\n\
            \tffffffff8224d320 do_syscall_64\n\
            \n\
             4467 \n\
            \tffffffff81649d2d handle_softirqs\n\
            \tffffffff81649d2d asm_common_interrupt\n\
            \n\
             4465 \n\
            \t          2e4460 <h2::proto::streams::Streams as x>::poll\n\
             4465 \n\
            \t          2e4460 <log_storage::partition::Log>::append\n";
        assert_eq!(
            pairs(text),
            " prof_samples=7 prof_k_irq=1 prof_k_pwrite64=1 prof_k_syscall_exit=1 prof_k_writev=1 prof_u_http2=1 prof_u_other=1 prof_u_storage=1"
        );
        assert_eq!(pairs(""), "");
    }
}
