//! What bounds the produce-path figures, from measurements of the same run:
//! for `small-writers`, its WRITTEN twin (the request path without the
//! fdatasync), the sync cycle against the disk's fdatasync, the CPU of
//! both processes against the machine's cores, and the server's CPU per ack
//! by component (from a `perf record` profile of the same rounds) and
//! against the WRITTEN twin's; for the gRPC 1 KiB ratio,
//! the gRPC WRITTEN twin and the in-process figures, with what one batch in
//! flight predicts when the transfer and the sync run in series.
//!
//! It judges nothing: the targets table does. It shows the figures that say
//! why a target is or is not met, so a reader can tell the disk, the CPU and
//! the request path apart without rerunning anything.

use super::Line;
use super::targets::{CPU_PER_ACK_TARGET_US, Cpu, mean, rounds};
use std::fmt::Write as _;

/// One measurement and how to read it.
pub(super) struct Bound {
    pub(super) what: String,
    pub(super) figure: String,
    pub(super) reading: String,
}

/// The `small-writers` rounds acked with `ack`.
fn small_writers<'a>(lines: &'a [Line], ack: &str) -> Vec<&'a Line> {
    rounds(lines, "small-writers")
        .into_iter()
        .filter(|l| l.get("ack") == Some(ack))
        .collect()
}

fn peer<'a>(lines: &'a [Line], size: &str, ack: &str) -> Option<&'a Line> {
    lines.iter().find(|l| {
        l.kind == "RESULT"
            && l.get("scenario") == Some("peer")
            && l.get("size") == Some(size)
            && l.get("ack") == Some(ack)
    })
}

fn criterion<'a>(lines: &'a [Line], id: &str) -> Option<&'a Line> {
    lines
        .iter()
        .find(|l| l.kind == "CRITERION" && l.get("id") == Some(id))
}

/// The bounds this run can show; a figure that was not measured leaves its
/// rows out.
pub(super) fn bounds(lines: &[Line]) -> Vec<Bound> {
    let mut out = Vec::new();
    let durable = small_writers(lines, "durable");
    let written = small_writers(lines, "written");
    let d = (!durable.is_empty()).then(|| mean(&durable, "append_rps"));
    let w = (!written.is_empty()).then(|| mean(&written, "append_rps"));
    if let (Some(d), Some(w)) = (d, w)
        && w > 0.0
    {
        out.push(Bound {
            what: "small-writers WRITTEN acks/s (the same 64 writers, acked after write(2), no fdatasync wait)".into(),
            figure: format!("{:.1} K", w / 1e3),
            reading: format!(
                "DURABLE reaches {:.0} % of it: the request path alone caps small-writers at this rate, whatever the disk does",
                100.0 * d / w
            ),
        });
    }
    let probe = lines
        .iter()
        .find_map(|l| l.get("fdatasync_100b_p50_us"))
        .and_then(|v| v.parse::<f64>().ok());
    let fsyncs: f64 = durable.iter().map(|l| l.num("fsyncs")).sum();
    let acks: f64 = durable.iter().map(|l| l.num("n")).sum();
    let wall: f64 = durable
        .iter()
        .filter(|l| l.num("append_rps") > 0.0)
        .map(|l| l.num("n") / l.num("append_rps"))
        .sum();
    if fsyncs > 0.0 && wall > 0.0 {
        let cycle_us = wall * 1e6 / fsyncs;
        let mut reading = format!(
            "{:.1} acks share each fdatasync; one sync cycle every {cycle_us:.0} µs",
            acks / fsyncs
        );
        if let Some(p50) = probe.filter(|p| *p > 0.0) {
            let _ = write!(
                reading,
                ", {:.1}× the disk's fdatasync p50 ({p50:.0} µs): the disk is busy {:.0} % of the time",
                cycle_us / p50,
                (100.0 * p50 / cycle_us).min(100.0)
            );
        }
        // The disk under this load, as the store timed its own syncs: the
        // idle probe above understates it.
        let store_p50: Vec<f64> = durable
            .iter()
            .filter_map(|l| l.get("store_fsync_p50_us"))
            .filter_map(|v| v.parse::<f64>().ok())
            .collect();
        if !store_p50.is_empty() {
            let p50 = store_p50.iter().sum::<f64>() / store_p50.len() as f64;
            let _ = write!(
                reading,
                "; under this load the store's own fdatasync p50 was {p50:.0} µs, {:.0} % of the cycle",
                (100.0 * p50 / cycle_us).min(100.0)
            );
        }
        out.push(Bound {
            what: "small-writers DURABLE: acks per fdatasync, and the sync cycle against the disk"
                .into(),
            figure: format!("{:.1} acks, {cycle_us:.0} µs", acks / fsyncs),
            reading,
        });
    }
    // The closed loop: each writer has one record in flight, so acks/s =
    // writers / mean latency (Little's law), and a DURABLE ack waits its
    // request path (the WRITTEN twin's latency) plus, on average, the rest
    // of the running sync and then its own: 1.5 sync cycles.
    let writers = lines
        .iter()
        .find(|l| l.kind == "EXTRA" && l.get("scenario") == Some("small-writers"))
        .map_or(64.0, |l| l.num("writers").max(1.0));
    if let (Some(d), Some(w)) = (d, w)
        && fsyncs > 0.0
        && wall > 0.0
        && w > 0.0
    {
        let cycle_us = wall * 1e6 / fsyncs;
        let path_us = writers * 1e6 / w;
        let predicted = writers * 1e6 / (path_us + 1.5 * cycle_us);
        let needed_cycle = (writers * 1e6 / 100_000.0 - path_us) / 1.5;
        let mut reading = format!(
            "{writers:.0} writers, one record in flight each: acks/s = writers ÷ (request path {path_us:.0} µs + 1.5 sync cycles); "
        );
        if needed_cycle > 0.0 {
            let _ = write!(
                reading,
                "100 K would need a sync cycle of {needed_cycle:.0} µs"
            );
        } else {
            let _ = write!(
                reading,
                "100 K is out of reach of this request path even with no sync at all: {writers:.0} writers at 100 K allow {:.0} µs per round trip",
                writers * 1e6 / 100_000.0
            );
        }
        if let Some(p50) = probe {
            let _ = write!(
                reading,
                ", against the disk's quiet fdatasync p50 of {p50:.0} µs"
            );
        }
        out.push(Bound {
            what: "small-writers DURABLE: measured against the closed-loop model".into(),
            figure: format!(
                "{:.1} K measured, {:.1} K predicted",
                d / 1e3,
                predicted / 1e3
            ),
            reading,
        });
    }
    if let Some(row) = p99_split(&durable, &written) {
        out.push(row);
    }
    if let Some(row) = callbacks_cycle(lines) {
        out.push(row);
    }
    // System calls and CPU parts come from the extra round with perf
    // attached (results of older runs carry them on the measured rounds).
    let (counted, counted_twin) = (
        instrumented(lines, "durable", &durable),
        instrumented(lines, "written", &written),
    );
    if let Some(row) = syscalls_per_ack(&counted, &counted_twin, &durable) {
        out.push(row);
    }
    if let Some(row) = cpu_profile(&counted, &durable) {
        out.push(row);
    }
    if let Some(row) = cpu_split(&durable, &written) {
        out.push(row);
    }
    out.extend(tried(lines, &durable));
    let cpus = lines
        .iter()
        .find(|l| l.kind == "MACHINE")
        .map_or(0.0, |m| m.num("cpus"));
    let loadgen_ticks: f64 = durable.iter().map(|l| l.num("loadgen_cpu_ticks")).sum();
    if let (Some(server), true) = (Cpu::of(&durable), loadgen_ticks > 0.0 && wall > 0.0) {
        let loadgen_us = loadgen_ticks * 1e6 / server.hz / acks;
        let both_us = server.per_record_us + loadgen_us;
        let busy = both_us * acks / 1e6 / wall;
        out.push(Bound {
            what: "small-writers DURABLE: CPU µs per ack, server + load generator, and cores busy"
                .into(),
            figure: format!(
                "{:.1} + {loadgen_us:.1} = {both_us:.1} µs; {busy:.2} of {cpus:.0} cores",
                server.per_record_us
            ),
            reading: if cpus > 0.0 && busy < 0.9 * cpus {
                format!(
                    "the CPU is not saturated ({:.0} % of the machine): the bound is the latency of each writer's round trip, not CPU work",
                    100.0 * busy / cpus
                )
            } else {
                "both processes together use the machine's cores: CPU work is the bound".into()
            },
        });
    }
    if let (Some(gw), Some(gd), Some(id), Some(iw)) = (
        peer(lines, "1024", "written"),
        peer(lines, "1024", "durable"),
        criterion(lines, "append/durable/1024"),
        criterion(lines, "append/written/1024"),
    ) {
        let (gw, gd, id, iw) = (
            gw.num("append_mbps"),
            gd.num("append_mbps"),
            id.num("mbps"),
            iw.num("mbps"),
        );
        if gw > 0.0 && gd > 0.0 && id > 0.0 && iw > 0.0 {
            // One batch in flight: per MB, the request path's time plus the
            // time the fdatasync adds in process.
            let sync_part = (1.0 / id - 1.0 / iw).max(0.0);
            let predicted = 1.0 / (1.0 / gw + sync_part);
            out.push(Bound {
                what: "gRPC peer 1 KiB: WRITTEN MB/s (no fdatasync) ÷ in-process DURABLE MB/s"
                    .into(),
                figure: format!("{:.2}× ({gw:.0} ÷ {id:.0} MB/s)", gw / id),
                reading: "the request path alone (HTTP/2 transfer of 1 MB, decode, write) against the whole in-process append with its fdatasync".into(),
            });
            out.push(Bound {
                what: "gRPC peer DURABLE 1 KiB: measured against the series model (request path + the fdatasync time in process)".into(),
                figure: format!("{gd:.0} MB/s measured, {predicted:.0} MB/s predicted"),
                reading: format!(
                    "one batch in flight runs transfer and sync one after the other, so the gRPC DURABLE rate stays near this series bound: measured {:.2}× of it (above 1: the server's write overlaps the tail of the transfer)",
                    gd / predicted
                ),
            });
        }
    }
    if let (Some(inproc), Some(raw)) = (
        criterion(lines, "append/durable/1024"),
        criterion(lines, "append/raw_pwrite_fdatasync/1024"),
    ) && raw.num("mbps") > 0.0
    {
        out.push(Bound {
            what: "in-process Log DURABLE 1 KiB ÷ raw pwrite + fdatasync of the same batches (the disk's floor)".into(),
            figure: format!(
                "{:.2}× ({:.0} ÷ {:.0} MB/s)",
                inproc.num("mbps") / raw.num("mbps"),
                inproc.num("mbps"),
                raw.num("mbps")
            ),
            reading: "how much of the disk's own rate the storage keeps".into(),
        });
    }
    out
}

/// The section of `report.md`, or nothing when no bound was measured.
pub(super) fn section(lines: &[Line]) -> String {
    let bounds = bounds(lines);
    if bounds.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\n## What bounds the produce path\n\nMeasured in this run, to tell the disk, the CPU and the request path apart.\n\n| measurement | figure | reading |\n|---|---|---|\n",
    );
    for b in bounds {
        let _ = writeln!(md, "| {} | {} | {} |", b.what, b.figure, b.reading);
    }
    md
}

/// The DURABLE ack p99 taken apart, worst round: what the client saw,
/// what the store's own histogram says its appends waited between write
/// and ack (group-commit queue plus the sync), and the fdatasync p99; the
/// WRITTEN twin's p99 is the request path without any sync.
fn p99_split(durable: &[&Line], written: &[&Line]) -> Option<Bound> {
    let worst = durable
        .iter()
        .filter(|l| l.get("store_wait_p99_us").is_some())
        .max_by(|a, b| a.num("lat_p99_us").total_cmp(&b.num("lat_p99_us")))?;
    let client = worst.num("lat_p99_us");
    let store = worst.num("store_wait_p99_us");
    let fsync = worst.num("store_fsync_p99_us");
    let path = written
        .iter()
        .map(|l| l.num("lat_p99_us"))
        .fold(0.0, f64::max);
    let mut reading = format!(
        "of the client's p99, the store accounts for {:.0} % (its appends' wait for a covering fdatasync, p99 {store:.0} µs, fdatasync p99 {fsync:.0} µs, max {:.0} µs)",
        100.0 * store / client.max(1.0),
        worst.num("store_fsync_max_us"),
    );
    if path > 0.0 {
        let _ = write!(
            reading,
            "; the WRITTEN twin's p99 (the request path, no sync) is {path:.0} µs"
        );
    }
    if store <= 2000.0 && client > 2000.0 {
        reading.push_str(
            ": the store's DURABLE wait stays within 2 ms; the rest of the tail is added between the socket and the store (gRPC, the runtime, and the load generator sharing the same cores)",
        );
    } else if store > 2000.0 {
        reading.push_str(
            ": the store's own wait is past 2 ms, so the disk and the group commit bound the tail",
        );
    }
    Some(Bound {
        what: "small-writers DURABLE ack p99 (worst round): client ÷ store".into(),
        figure: format!("{client:.0} µs client, {store:.0} µs in the store"),
        reading,
    })
}

/// The in-process `group_commit_callbacks/64_writers` rate taken apart
/// (from the storage suite's `EXTRA` line): acks per fdatasync, the sync
/// cycle, and how much of it the store's own fdatasync took.
fn callbacks_cycle(lines: &[Line]) -> Option<Bound> {
    let extra = lines
        .iter()
        .find(|l| l.kind == "EXTRA" && l.get("scenario") == Some("group_commit_callbacks"))?;
    let (acks, secs, syncs) = (extra.num("acks"), extra.num("secs"), extra.num("syncs"));
    if acks <= 0.0 || secs <= 0.0 || syncs <= 0.0 {
        return None;
    }
    let writers = extra.num("writers").max(1.0);
    let rate = acks / secs;
    let cycle_us = secs * 1e6 / syncs;
    let per_sync = acks / syncs;
    let sync_p50 = extra.num("sync_p50_us");
    let ceiling = writers * 1e6 / cycle_us;
    let needed_cycle = writers * 1e6 / 200_000.0;
    let mut reading = format!(
        "{per_sync:.1} of {writers:.0} writers ride each fdatasync, one every {cycle_us:.0} µs; with all {writers:.0} in every cycle this cycle caps it at {:.0} K acks/s (200 K needs a cycle of {needed_cycle:.0} µs)",
        ceiling / 1e3
    );
    if sync_p50 > 0.0 {
        let share = 100.0 * sync_p50 / cycle_us;
        let _ = write!(
            reading,
            "; the fdatasync itself (p50 {sync_p50:.0} µs, the store's histogram) is {share:.0} % of the cycle"
        );
        reading.push_str(if share >= 60.0 {
            ": the disk bounds it"
        } else {
            ": the rest of the cycle is waking writers and committers on the cores, not the disk"
        });
    }
    Some(Bound {
        what: "in-process group_commit_callbacks/64_writers: acks per fdatasync and the sync cycle"
            .into(),
        figure: format!(
            "{:.1} K acks/s, {per_sync:.1} acks per sync, {cycle_us:.0} µs cycle",
            rate / 1e3
        ),
        reading,
    })
}

/// The extra `small-writers` round with perf attached, acked with `ack`;
/// `measured` when there is none (results of runs before that round).
fn instrumented<'a>(lines: &'a [Line], ack: &str, measured: &[&'a Line]) -> Vec<&'a Line> {
    let profiled: Vec<&Line> = rounds(lines, "small-writers-profiled")
        .into_iter()
        .filter(|l| l.get("ack") == Some(ack))
        .collect();
    if profiled.is_empty() {
        measured.to_vec()
    } else {
        profiled
    }
}

/// The server's system calls per DURABLE ack (`sys_NAME` pairs, counted by
/// `perf stat` on the profiled round) and the kernel's share of its CPU
/// (`server_stime_ticks` of the `measured` rounds, which ran without perf),
/// against the WRITTEN twin's.
fn syscalls_per_ack(durable: &[&Line], written: &[&Line], measured: &[&Line]) -> Option<Bound> {
    let counted: Vec<&&Line> = durable
        .iter()
        .filter(|l| l.get("sys_pwrite64").is_some())
        .collect();
    let acks: f64 = counted.iter().map(|l| l.num("n")).sum();
    if acks <= 0.0 {
        return None;
    }
    let per = |call: &str| counted.iter().map(|l| l.num(call)).sum::<f64>() / acks;
    let twin: Vec<&&Line> = written
        .iter()
        .filter(|l| l.get("sys_pwrite64").is_some())
        .collect();
    let twin_acks: f64 = twin.iter().map(|l| l.num("n")).sum();
    let twin_per = |call: &str| twin.iter().map(|l| l.num(call)).sum::<f64>() / twin_acks;
    let calls = [
        ("pwrite64", per("sys_pwrite64")),
        (
            "writev",
            per("sys_writev") + per("sys_sendmsg") + per("sys_write"),
        ),
        ("fdatasync", per("sys_fdatasync")),
        ("sched_yield", per("sys_sched_yield")),
        ("futex", per("sys_futex")),
        ("epoll_wait", per("sys_epoll_wait")),
    ];
    let mut figure = calls
        .iter()
        .map(|(name, n)| format!("{name} {n:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ticks: f64 = measured.iter().map(|l| l.num("server_cpu_ticks")).sum();
    let system: f64 = measured.iter().map(|l| l.num("server_stime_ticks")).sum();
    if ticks > 0.0 {
        let _ = write!(
            figure,
            "; kernel {:.0} % of the server's CPU",
            100.0 * system / ticks
        );
    }
    let (pwrites, socket) = (calls[0].1, calls[1].1);
    let mut reading = String::new();
    if pwrites >= 0.9 {
        reading.push_str("about one pwrite per append: the appends of a sync cycle are not gathered into one write");
    } else {
        let _ = write!(
            reading,
            "{:.1} appends per segment write",
            1.0 / pwrites.max(1e-9)
        );
    }
    if socket >= 0.5 {
        let _ = write!(
            reading,
            "; {socket:.2} socket writes per ack: the acks of one sync reach the socket one by one, not in one flush"
        );
    }
    if twin_acks > 0.0 {
        let twin_socket = twin_per("sys_writev") + twin_per("sys_sendmsg") + twin_per("sys_write");
        let _ = write!(
            reading,
            "; the WRITTEN twin makes {twin_socket:.2} socket writes and {:.2} sched_yields per ack",
            twin_per("sys_sched_yield")
        );
    }
    reading.push_str(" (write counts include the loopback delivery to the client, which the kernel charges to the sender)");
    Some(Bound {
        what: "small-writers DURABLE: server system calls per ack (perf stat) and the kernel's share of its CPU".into(),
        figure,
        reading,
    })
}

/// The server's CPU per DURABLE ack by component: the `prof_*` sample
/// counts (`perf record -g` over the profiled round) as shares of the
/// `measured` rounds' CPU per ack (which ran without perf; the profiled
/// round's own when there are none), less the samples of perf's own
/// tracepoints (`k_syscall_trace`); kernel parts by system call, user parts
/// by the crate of the leaf function. Against the 12 µs target, the
/// kernel's part is what no user-space change removes without removing
/// system calls.
fn cpu_profile(durable: &[&Line], measured: &[&Line]) -> Option<Bound> {
    let sampled: Vec<&Line> = durable
        .iter()
        .copied()
        .filter(|l| l.num("prof_samples") > 0.0)
        .collect();
    let own: f64 = sampled.iter().map(|l| l.num("prof_k_syscall_trace")).sum();
    let samples: f64 = sampled.iter().map(|l| l.num("prof_samples")).sum::<f64>() - own;
    let cpu = Cpu::of(measured).or_else(|| Cpu::of(&sampled))?;
    if samples <= 0.0 {
        return None;
    }
    let mut parts: Vec<(String, f64)> = Vec::new();
    for line in &sampled {
        for (key, value) in &line.pairs {
            let Some(name) = key
                .strip_prefix("prof_")
                .filter(|n| *n != "samples" && *n != "k_syscall_trace")
            else {
                continue;
            };
            let n: f64 = value.parse().unwrap_or(0.0);
            match parts.iter_mut().find(|(k, _)| k == name) {
                Some((_, sum)) => *sum += n,
                None => parts.push((name.to_owned(), n)),
            }
        }
    }
    let us = |n: f64| cpu.per_record_us * n / samples;
    let kernel: f64 = parts
        .iter()
        .filter(|(k, _)| k.starts_with("k_"))
        .map(|(_, n)| us(*n))
        .sum();
    let user = cpu.per_record_us - kernel;
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let label = |k: &str| match (k.strip_prefix("k_"), k.strip_prefix("u_")) {
        (Some(call), _) => format!("kernel {call}"),
        (_, Some(part)) => part.to_owned(),
        _ => k.to_owned(),
    };
    let shown: Vec<String> = parts
        .iter()
        .take(10)
        .map(|(k, n)| format!("{} {:.1}", label(k), us(*n)))
        .collect();
    let rest: f64 = parts.iter().skip(10).map(|(_, n)| us(*n)).sum();
    let mut figure = format!(
        "{:.1} µs = kernel {kernel:.1} + user {user:.1}: {}",
        cpu.per_record_us,
        shown.join(", ")
    );
    if rest > 0.0 {
        let _ = write!(figure, ", rest {rest:.1}");
    }
    let reading = if kernel >= CPU_PER_ACK_TARGET_US {
        format!(
            "the kernel alone takes {kernel:.1} µs per ack, above the {CPU_PER_ACK_TARGET_US:.0} µs target: on this kernel only fewer or cheaper system calls can reach it, no user-space work can"
        )
    } else {
        format!(
            "the kernel takes {kernel:.1} µs per ack; the rest of the way to {CPU_PER_ACK_TARGET_US:.0} µs is in user space ({user:.1} µs)"
        )
    };
    Some(Bound {
        what: format!(
            "small-writers DURABLE: server CPU µs per ack by component (perf record in an extra round, {samples:.0} samples, as shares of the measured rounds' CPU per ack; kernel by system call, user by the leaf function's crate, no user stacks)"
        ),
        figure,
        reading,
    })
}

/// The server's CPU per DURABLE ack against its WRITTEN twin's: the twin
/// runs the same request path (HTTP/2, decode, runtime, checks, write(2),
/// answer) without waiting for an fdatasync, so what it costs per ack is
/// taken from the 12 µs target before durability adds anything. The rest
/// of the target is what one sync cycle may cost (the fdatasync, the
/// committer's wake-up, the gather, waking each waiting stream), per ack
/// and per cycle at the measured acks per fdatasync.
fn cpu_split(durable: &[&Line], written: &[&Line]) -> Option<Bound> {
    let (d, w) = (Cpu::of(durable)?, Cpu::of(written)?);
    if d.records <= 0.0 || w.records <= 0.0 {
        return None;
    }
    let added = d.per_record_us - w.per_record_us;
    let fsyncs: f64 = durable.iter().map(|l| l.num("fsyncs")).sum();
    let per_sync = (fsyncs > 0.0).then(|| d.records / fsyncs);
    let mut figure = format!(
        "{:.1} µs DURABLE, {:.1} µs WRITTEN: durability adds {added:.1} µs per ack",
        d.per_record_us, w.per_record_us
    );
    if let Some(acks) = per_sync {
        let _ = write!(
            figure,
            " ({:.0} µs per sync cycle of {acks:.1} acks)",
            added * acks
        );
    }
    let room = CPU_PER_ACK_TARGET_US - w.per_record_us;
    let reading = if room <= 0.0 {
        format!(
            "the request path alone takes {:.1} µs per ack, over the {CPU_PER_ACK_TARGET_US:.0} µs target with no fdatasync at all: no change to the group commit can reach it, only a cheaper request path (HTTP/2, the runtime, the answer)",
            w.per_record_us
        )
    } else {
        let mut reading = format!(
            "the request path alone takes {:.1} of the {CPU_PER_ACK_TARGET_US:.0} µs; the target leaves {room:.1} µs per ack for everything durability adds",
            w.per_record_us
        );
        if let Some(acks) = per_sync {
            let _ = write!(
                reading,
                ", {:.0} µs of CPU per sync cycle at {acks:.1} acks per fdatasync (one fdatasync, a committer wake-up and a wake-up of each waiting stream), against {:.0} µs measured",
                room * acks,
                added * acks
            );
        }
        reading
    };
    Some(Bound {
        what: "small-writers: server CPU µs per ack, DURABLE against its WRITTEN twin (the same request path without the fdatasync wait)".into(),
        figure,
        reading,
    })
}

/// How a tried lever reads: `default_wins` when the default's rounds
/// acked at least as fast.
fn tried_reading(name: &str, default_wins: bool) -> &'static str {
    match (name.ends_with("_on"), default_wins) {
        (false, true) => {
            "a lever in the default, against the same server with it off in this run: it pays here"
        }
        (false, false) => {
            "a lever in the default, against the same server with it off in this run: it did not pay in this run (a single run's noise can be ±25 %)"
        }
        (true, true) => {
            "a lever the default leaves off, turned on in this run: it does not pay here, so the default stays without it"
        }
        (true, false) => {
            "a lever the default leaves off, turned on in this run: it paid in this run (a single run's noise can be ±25 %: the default changes only on repeated runs)"
        }
    }
}

/// What was tried, measured in this run: each lever's `small-writers`
/// rounds with its setting changed (`scenario=small-writers-tried
/// tried=NAME`, run between the default's rounds; `NAME_off` turns off a
/// lever of the default, `NAME_on` turns on one the default leaves off)
/// against the default's DURABLE rounds: acks/s, the store's fdatasync
/// p50 and server CPU per ack.
fn tried(lines: &[Line], durable: &[&Line]) -> Vec<Bound> {
    let mut names: Vec<&str> = lines
        .iter()
        .filter(|l| l.kind == "RESULT" && l.get("scenario") == Some("small-writers-tried"))
        .filter_map(|l| l.get("tried"))
        .collect();
    names.sort_unstable();
    names.dedup();
    if durable.is_empty() {
        return Vec::new();
    }
    let fsync_p50 = |ls: &[&Line]| {
        let with: Vec<&&Line> = ls
            .iter()
            .filter(|l| l.get("store_fsync_p50_us").is_some())
            .collect();
        (!with.is_empty()).then(|| {
            with.iter()
                .map(|l| l.num("store_fsync_p50_us"))
                .sum::<f64>()
                / with.len() as f64
        })
    };
    let cpu = |ls: &[&Line]| Cpu::of(ls).map(|c| c.per_record_us);
    let on_rate = mean(durable, "append_rps");
    names
        .into_iter()
        .filter_map(|name| {
            let off: Vec<&Line> = lines
                .iter()
                .filter(|l| {
                    l.kind == "RESULT"
                        && l.get("scenario") == Some("small-writers-tried")
                        && l.get("tried") == Some(name)
                })
                .collect();
            let off_rate = mean(&off, "append_rps");
            if off.is_empty() || off_rate <= 0.0 {
                return None;
            }
            let mut figure = format!(
                "{:.1} K default, {:.1} K with `{name}` ({:.2}×)",
                on_rate / 1e3,
                off_rate / 1e3,
                on_rate / off_rate
            );
            if let (Some(a), Some(b)) = (fsync_p50(durable), fsync_p50(&off)) {
                let _ = write!(figure, "; store fdatasync p50 {a:.0} vs {b:.0} µs");
            }
            if let (Some(a), Some(b)) = (cpu(durable), cpu(&off)) {
                let _ = write!(figure, "; server CPU {a:.1} vs {b:.1} µs per ack");
            }
            Some(Bound {
                what: format!(
                    "tried: small-writers DURABLE with the default against `{name}` ({} rounds each, interleaved)",
                    off.len()
                ),
                figure,
                reading: tried_reading(name, on_rate >= off_rate).into(),
            })
        })
        .collect()
}
