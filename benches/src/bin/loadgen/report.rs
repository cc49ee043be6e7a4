//! `log-loadgen report DIR`: turns `DIR/results.txt` (`MACHINE`, `NOTE`,
//! `RESULT`, `EXTRA` and `CRITERION` lines of `key=value` pairs) into
//! `report.md` (tables with the durability mode, fsync count and server CPU
//! of every figure and the targets beside them, each with its bound and
//! whether it is met), `results.json` and two SVG plots (throughput and
//! latency per scenario).
//!
//! `RESULT system=redis scenario=redis-always` lines (the `redis` peer step
//! of `cargo xtask bench`) and the `round=R` of the `small-writers` lines
//! run A B A B with them give the Redis comparison: the rounds' mean
//! acks/s of each, their ratio, the worst round's p99, and the server CPU
//! per ack (`server_cpu_ticks` summed over the rounds, over the acks).

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

type BoxError = Box<dyn std::error::Error>;

/// One line: its kind and its pairs, in order.
struct Line {
    kind: String,
    pairs: Vec<(String, String)>,
}

impl Line {
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, key: &str) -> f64 {
        self.get(key).and_then(|v| v.parse().ok()).unwrap_or(0.0)
    }

    fn label(&self) -> String {
        let mut label = format!(
            "{} {}B {}",
            self.get("scenario").unwrap_or("?"),
            self.get("size").unwrap_or("?"),
            self.get("ack").unwrap_or("?")
        );
        if let Some(round) = self.get("round") {
            let _ = write!(label, " r{round}");
        }
        label
    }
}

fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let kind = words.next()?.to_owned();
            let pairs = words
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            Some(Line { kind, pairs })
        })
        .collect()
}

/// A target: which line, which figure, the bound, and whether more is
/// better.
struct Target {
    what: &'static str,
    /// The scenario, or the benchmark id of a `CRITERION` line.
    scenario: &'static str,
    size: Option<&'static str>,
    ack: Option<&'static str>,
    kind: &'static str,
    key: &'static str,
    bound: f64,
    at_least: bool,
}

/// A floor on the figure `key` of the `CRITERION` line of benchmark `id`.
const fn criterion(what: &'static str, id: &'static str, key: &'static str, bound: f64) -> Target {
    Target {
        what,
        scenario: id,
        size: None,
        ack: None,
        kind: "CRITERION",
        key,
        bound,
        at_least: true,
    }
}

const TARGETS: &[Target] = &[
    Target {
        what: "gRPC peer DURABLE 100 B, records/s (no regression)",
        scenario: "peer",
        size: Some("100"),
        ack: Some("durable"),
        kind: "RESULT",
        key: "append_rps",
        bound: 2.5e6,
        at_least: true,
    },
    Target {
        what: "gRPC peer DURABLE 100 B, batch p99 µs (no regression)",
        scenario: "peer",
        size: Some("100"),
        ack: Some("durable"),
        kind: "RESULT",
        key: "lat_p99_us",
        bound: 1000.0,
        at_least: false,
    },
    Target {
        what: "gRPC peer DURABLE 1 KiB, MB/s",
        scenario: "peer",
        size: Some("1024"),
        ack: Some("durable"),
        kind: "RESULT",
        key: "append_mbps",
        bound: 1000.0,
        at_least: true,
    },
    Target {
        what: "gRPC peer WRITTEN 100 B, records/s (no regression)",
        scenario: "peer",
        size: Some("100"),
        ack: Some("written"),
        kind: "RESULT",
        key: "append_rps",
        bound: 4.5e6,
        at_least: true,
    },
    Target {
        what: "gRPC peer read back 100 B, records/s (no regression)",
        scenario: "peer",
        size: Some("100"),
        ack: Some("written"),
        kind: "RESULT",
        key: "read_rps",
        bound: 10.5e6,
        at_least: true,
    },
    criterion(
        "storage DURABLE 100 B, records/s (criterion append/durable/100)",
        "append/durable/100",
        "rps",
        3.0e6,
    ),
    criterion(
        "storage DURABLE 1 KiB, MB/s (criterion append/durable/1024)",
        "append/durable/1024",
        "mbps",
        1300.0,
    ),
    criterion(
        "storage WRITTEN 100 B, records/s (criterion append/written/100)",
        "append/written/100",
        "rps",
        18.0e6,
    ),
    criterion(
        "storage read 100 B, sealed segments, records/s (criterion read_pieces/log_read_sealed_mmap/100)",
        "read_pieces/log_read_sealed_mmap/100",
        "rps",
        50.0e6,
    ),
    criterion(
        "storage read 100 B, active segment, records/s (criterion read_pieces/log_read_only/100)",
        "read_pieces/log_read_only/100",
        "rps",
        50.0e6,
    ),
    criterion(
        "storage group commit, 64 writers, DURABLE acks/s (criterion group_commit_callbacks/64_writers)",
        "group_commit_callbacks/64_writers",
        "rps",
        200_000.0,
    ),
    Target {
        what: "scale (10,000 partitions x 20 sealed segments; --quick 500 x 5): open files after reading every partition",
        scenario: "scale",
        size: None,
        ack: None,
        kind: "EXTRA",
        key: "open_files_after_reads",
        bound: 4096.0,
        at_least: false,
    },
    Target {
        what: "scale (10,000 partitions x 20 sealed segments; --quick 500 x 5): clean restart, ms until serving",
        scenario: "scale",
        size: None,
        ack: None,
        kind: "EXTRA",
        key: "restart_to_ready_ms",
        bound: 2000.0,
        at_least: false,
    },
    Target {
        what: "recovery after kill -9, ms until serving",
        scenario: "recovery",
        size: None,
        ack: None,
        kind: "EXTRA",
        key: "ready_ms",
        bound: 1000.0,
        at_least: false,
    },
];

fn find<'a>(lines: &'a [Line], t: &Target) -> Option<&'a Line> {
    lines.iter().find(|l| {
        let name = if l.kind == "CRITERION" {
            "id"
        } else {
            "scenario"
        };
        l.kind == t.kind
            && l.get(name) == Some(t.scenario)
            && t.size.is_none_or(|s| l.get("size") == Some(s))
            && t.ack.is_none_or(|a| l.get("ack") == Some(a))
    })
}

/// One row of the targets table.
struct Row {
    what: String,
    measured: String,
    bound: String,
    met: &'static str,
}

impl Row {
    /// A figure against its bound (`at_least`: more is better).
    fn bounded(what: impl Into<String>, v: f64, bound: f64, at_least: bool, shown: String) -> Row {
        let met = if (at_least && v >= bound) || (!at_least && v <= bound) {
            "yes"
        } else {
            "no"
        };
        Row {
            what: what.into(),
            measured: shown,
            bound: format!("{} {}", if at_least { "≥" } else { "≤" }, format_num(bound)),
            met,
        }
    }

    /// A bounded row whose figure was not measured in this run.
    fn missing(what: impl Into<String>, why: String, bound: String) -> Row {
        Row {
            what: what.into(),
            measured: why,
            bound,
            met: "-",
        }
    }
}

/// The result lines of `scenario`, in run order (one per round).
fn rounds<'a>(lines: &'a [Line], scenario: &str) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| l.kind == "RESULT" && l.get("scenario") == Some(scenario))
        .collect()
}

fn mean(lines: &[&Line], key: &str) -> f64 {
    lines.iter().map(|l| l.num(key)).sum::<f64>() / lines.len().max(1) as f64
}

fn worst(lines: &[&Line], key: &str) -> f64 {
    lines.iter().map(|l| l.num(key)).fold(0.0, f64::max)
}

/// Server CPU over `lines` together: their ticks summed, over their
/// records summed.
struct Cpu {
    per_record_us: f64,
    ticks: f64,
    hz: f64,
    records: f64,
}

impl Cpu {
    fn of(lines: &[&Line]) -> Option<Cpu> {
        let with: Vec<&&Line> = lines
            .iter()
            .filter(|l| l.get("server_cpu_ticks").is_some())
            .collect();
        let first = with.first()?;
        let ticks: f64 = with.iter().map(|l| l.num("server_cpu_ticks")).sum();
        let records: f64 = with.iter().map(|l| l.num("n")).sum();
        let hz = first.num("clk_tck").max(1.0);
        let per_record_us = if records > 0.0 {
            ticks * 1e6 / hz / records
        } else {
            0.0
        };
        Some(Cpu {
            per_record_us,
            ticks,
            hz,
            records,
        })
    }

    /// Under 100 ticks (1 s at 100 Hz), ±1 tick is over 1 %.
    fn coarse(&self) -> bool {
        self.ticks < 100.0
    }

    /// The figure, with the resolution spelled out when coarse.
    fn long(&self) -> String {
        let mut shown = format!("{:.2}", self.per_record_us);
        if self.coarse() {
            let _ = write!(
                shown,
                " (too coarse to judge: {:.0} ticks of {:.0} ms over {:.0} records; the full run resolves it)",
                self.ticks,
                1000.0 / self.hz,
                self.records
            );
        }
        shown
    }

    /// The figure, with a short mark when coarse.
    fn short(&self) -> String {
        if self.coarse() {
            format!(
                "{:.2} (coarse: {:.0} ticks)",
                self.per_record_us, self.ticks
            )
        } else {
            format!("{:.2}", self.per_record_us)
        }
    }
}

/// Why the Redis rows have no figure: the step's recorded skip reason, or
/// that it was not run.
fn redis_missing(lines: &[Line]) -> String {
    lines
        .iter()
        .find_map(|l| l.get("redis_skipped"))
        .map_or("not run".to_owned(), |r| {
            format!("skipped: {}", r.replace('_', " "))
        })
}

/// The rows computed from several lines: the small-writers / Redis
/// comparison, the server CPU per ack, and gRPC against in-process.
fn derived_rows(lines: &[Line]) -> Vec<Row> {
    let mut rows = Vec::new();
    let small = rounds(lines, "small-writers");
    let redis = rounds(lines, "redis-always");
    let n_rounds = |v: &[&Line]| {
        if v.len() == 1 {
            "1 run".to_owned()
        } else {
            format!("mean of {} rounds", v.len())
        }
    };
    let small_rps = (!small.is_empty()).then(|| mean(&small, "append_rps"));
    let redis_rps = (!redis.is_empty()).then(|| mean(&redis, "append_rps"));
    let what = "small-writers DURABLE acks/s (64 writers, 100 B, one record in flight each)";
    rows.push(match small_rps {
        Some(v) => Row::bounded(
            what,
            v,
            100_000.0,
            true,
            format!("{} ({})", format_num(v), n_rounds(&small)),
        ),
        None => Row::missing(what, "not run".into(), "≥ 100.0 K".into()),
    });
    let what = "small-writers DURABLE ack p99 µs";
    rows.push(if small.is_empty() {
        Row::missing(what, "not run".into(), "≤ 2000".into())
    } else {
        let v = worst(&small, "lat_p99_us");
        Row::bounded(what, v, 2000.0, false, format!("{v:.0} (worst round)"))
    });
    // Group commit's latency bound: the p99 ack of small-writers within two
    // fdatasyncs of the probe.
    let probe_p50 = lines
        .iter()
        .find_map(|l| l.get("fdatasync_100b_p50_us"))
        .and_then(|v| v.parse::<f64>().ok());
    if let (Some(p50), false) = (probe_p50, small.is_empty()) {
        let v = worst(&small, "lat_p99_us");
        rows.push(Row::bounded(
            "small-writers DURABLE ack p99 µs, within 2 fdatasyncs (2 × probe p50)",
            v,
            2.0 * p50,
            false,
            format!("{v:.0} (worst round)"),
        ));
    }
    let version = redis.first().and_then(|l| l.get("version")).unwrap_or("7");
    let what = format!(
        "Redis {version}, appendonly yes, appendfsync always: XADD acks/s (redis-benchmark -c 64 -P 1, 100 B; reference)"
    );
    rows.push(match redis_rps {
        Some(v) => Row {
            what,
            measured: format!("{} ({})", format_num(v), n_rounds(&redis)),
            bound: "-".into(),
            met: "-",
        },
        None => Row::missing(what, redis_missing(lines), "-".into()),
    });
    let what = "small-writers DURABLE acks/s ÷ Redis appendfsync always acks/s (same run, A B A B)";
    rows.push(match (small_rps, redis_rps) {
        (Some(a), Some(b)) if b > 0.0 => {
            let ratio = a / b;
            let mut row = Row::bounded(what, ratio, 1.3, true, format!("{ratio:.2}×"));
            row.bound = "≥ 1.30×".into();
            row
        }
        (_, None) => Row::missing(what, redis_missing(lines), "≥ 1.30×".into()),
        _ => Row::missing(what, "not run".into(), "≥ 1.30×".into()),
    });
    let what =
        "log-server CPU µs per DURABLE ack, small-writers (/proc utime + stime over the run)";
    rows.push(match Cpu::of(&small) {
        Some(cpu) => {
            let mut row = Row::bounded(what, cpu.per_record_us, 12.0, false, cpu.long());
            if cpu.coarse() {
                row.met = "-";
            }
            row
        }
        None => Row::missing(what, "not run".into(), "≤ 12".into()),
    });
    if let Some(cpu) = Cpu::of(&redis) {
        rows.push(Row {
            what: "redis-server CPU µs per ack (reference)".into(),
            measured: cpu.long(),
            bound: "-".into(),
            met: "-",
        });
    }
    let what = "gRPC peer DURABLE 1 KiB MB/s ÷ in-process Log DURABLE 1 KiB MB/s (criterion append/durable/1024), same run";
    let peer = lines.iter().find(|l| {
        l.kind == "RESULT"
            && l.get("scenario") == Some("peer")
            && l.get("size") == Some("1024")
            && l.get("ack") == Some("durable")
    });
    let in_process = lines
        .iter()
        .find(|l| l.kind == "CRITERION" && l.get("id") == Some("append/durable/1024"));
    rows.push(match (peer, in_process) {
        (Some(p), Some(c)) if c.num("mbps") > 0.0 => {
            let ratio = p.num("append_mbps") / c.num("mbps");
            let mut row = Row::bounded(
                what,
                ratio,
                0.85,
                true,
                format!(
                    "{ratio:.2}× (gRPC {} MB/s, in-process {} MB/s)",
                    p.get("append_mbps").unwrap_or("?"),
                    c.get("mbps").unwrap_or("?")
                ),
            );
            row.bound = "≥ 0.85×".into();
            row
        }
        (p, _) => Row::missing(
            what,
            match p {
                Some(p) => format!(
                    "not run (criterion measures in full mode only; gRPC {} MB/s)",
                    p.get("append_mbps").unwrap_or("?")
                ),
                None => "not run".into(),
            },
            "≥ 0.85×".into(),
        ),
    });
    rows
}

pub(crate) fn write(dir: &Path) -> Result<(), BoxError> {
    let text = std::fs::read_to_string(dir.join("results.txt"))?;
    let lines = parse(&text);
    let results: Vec<&Line> = lines.iter().filter(|l| l.kind == "RESULT").collect();
    let extras: Vec<&Line> = lines.iter().filter(|l| l.kind == "EXTRA").collect();

    // results.json
    let mut json = String::from("{\n");
    let kinds = ["MACHINE", "NOTE", "RESULT", "EXTRA", "CRITERION"];
    for kind in kinds {
        let items: Vec<String> = lines
            .iter()
            .filter(|l| l.kind == kind)
            .map(|l| {
                let fields: Vec<String> = l
                    .pairs
                    .iter()
                    .map(|(k, v)| match v.parse::<f64>() {
                        Ok(n) if n.is_finite() => format!("\"{}\": {v}", escape(k)),
                        _ => format!("\"{}\": \"{}\"", escape(k), escape(v)),
                    })
                    .collect();
                format!("    {{{}}}", fields.join(", "))
            })
            .collect();
        let _ = writeln!(
            json,
            "  \"{}\": [\n{}\n  ]{}",
            kind.to_lowercase(),
            items.join(",\n"),
            if kind == kinds[kinds.len() - 1] {
                ""
            } else {
                ","
            }
        );
    }
    json.push_str("}\n");
    std::fs::write(dir.join("results.json"), json)?;

    // report.md
    let mut md = String::from("# log-server benchmark report\n\n");
    if let Some(m) = lines.iter().find(|l| l.kind == "MACHINE") {
        let _ = writeln!(
            md,
            "Machine: {} CPUs ({}), {} MiB RAM, kernel {}; 1-minute load average {} before the release build, {} after it; {}; mode {}.\n",
            m.get("cpus").unwrap_or("?"),
            m.get("cpu").unwrap_or("?").replace('_', " "),
            m.num("mem_kb") as u64 / 1024,
            m.get("kernel").unwrap_or("?"),
            m.get("load1_before_build").unwrap_or("?"),
            m.get("load1").unwrap_or("?"),
            m.get("date").unwrap_or("?"),
            m.get("mode").unwrap_or("?"),
        );
    }
    // The fsync probes `cargo xtask bench` runs before the first scenario
    // and after the last: a large change means the machine was not idle for
    // the whole run.
    for (prefix, when) in [("fdatasync", "start"), ("fdatasync_end", "end")] {
        let (p50, p99) = (
            format!("{prefix}_100b_p50_us"),
            format!("{prefix}_100b_p99_us"),
        );
        if let Some(probe) = lines.iter().find(|l| l.get(&p50).is_some()) {
            let _ = writeln!(
                md,
                "Disk at the {when} of the run: 100-byte append + fdatasync p50 {} µs, p99 {} µs.\n",
                probe.get(&p50).unwrap_or("?"),
                probe.get(&p99).unwrap_or("?"),
            );
        }
    }
    md.push_str(
        "Fsync latency on this kind of machine rises from about 0.1 ms to about 4 ms while \
         another build runs: figures are only meaningful from an idle machine, and a large \
         change between the two probes above means it was not idle for the whole run. Every figure \
         names its durability mode: `durable` = acknowledged after fdatasync, `written` = after \
         write(2) (survives a process crash, not power loss). `fsyncs` = group-commit \
         fdatasyncs the server ran for the scenario's topic. MB = 10^6 bytes of payload; rates \
         over the wall time of each phase; latency per batch, first send to ack.\n\n",
    );
    md.push_str("## Targets\n\n| target | measured | bound | met |\n|---|---|---|---|\n");
    let mut rows: Vec<Row> = TARGETS
        .iter()
        .map(|t| match find(&lines, t) {
            Some(l) => {
                let v = l.num(t.key);
                Row::bounded(t.what, v, t.bound, t.at_least, format_num(v))
            }
            None => Row::missing(
                t.what,
                "not run".into(),
                format!(
                    "{} {}",
                    if t.at_least { "≥" } else { "≤" },
                    format_num(t.bound)
                ),
            ),
        })
        .collect();
    rows.extend(derived_rows(&lines));
    for row in &rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            row.what, row.measured, row.bound, row.met
        );
    }
    md.push_str(
        "\nRows marked criterion come from the in-process suites in `benches/benches/` \
         (mean of the latest criterion run, `target/criterion/`); `--quick` runs each suite \
         once as a test and measures none of them. The Redis rows come from the `redis` \
         step: a fresh `redis-server` (`appendonly yes`, `appendfsync always`: each reply \
         after the AOF is fsynced, as our DURABLE ack) on a loopback port, driven by \
         `redis-benchmark -c 64 -P 1 XADD mystream * field <100 B>`, run alternately with \
         small-writers (A B A B, `round` below). Server CPU = the server process's utime + \
         stime (`/proc/PID/stat`, in clock ticks) from just before the load generator starts \
         to just after it ends, over the records of the run (it includes the read-back of the \
         scenarios that read).\n\n",
    );
    md.push_str("## Scenarios\n\n| system | scenario | size | batch | ack | n | append rec/s | append MB/s | p50 µs | p99 µs | read rec/s | read MB/s | fsyncs | records/fsync | server CPU µs/record |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &results {
        let fsyncs = r.num("fsyncs");
        let scenario = match r.get("round") {
            Some(round) => format!("{} (round {round})", r.get("scenario").unwrap_or("?")),
            None => r.get("scenario").unwrap_or("?").to_owned(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.get("system").unwrap_or("?"),
            scenario,
            r.get("size").unwrap_or("?"),
            r.get("batch").unwrap_or("?"),
            r.get("ack").unwrap_or("?"),
            r.get("n").unwrap_or("?"),
            format_num(r.num("append_rps")),
            r.get("append_mbps").unwrap_or("?"),
            r.get("lat_p50_us").unwrap_or("?"),
            r.get("lat_p99_us").unwrap_or("?"),
            format_num(r.num("read_rps")),
            r.get("read_mbps").unwrap_or("?"),
            r.get("fsyncs").unwrap_or("-"),
            if fsyncs > 0.0 {
                format_num(r.num("n") / fsyncs)
            } else {
                "-".into()
            },
            Cpu::of(&[r]).map_or("-".to_owned(), |cpu| cpu.short()),
        );
    }
    if !extras.is_empty() {
        md.push_str("\n## Scenario details\n\n");
        for e in &extras {
            let pairs: Vec<String> = e
                .pairs
                .iter()
                .filter(|(k, _)| k != "system")
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            let _ = writeln!(md, "- {}", pairs.join(", "));
        }
    }
    let criterion: Vec<&Line> = lines.iter().filter(|l| l.kind == "CRITERION").collect();
    if !criterion.is_empty() {
        md.push_str(
            "\n## Criterion suites (in process)\n\n| benchmark | mean time | records/s | MB/s |\n|---|---|---|---|\n",
        );
        for c in criterion {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                c.get("id").unwrap_or("?"),
                format_duration_ns(c.num("mean_ns")),
                c.get("rps")
                    .map_or("-".to_owned(), |_| format_num(c.num("rps"))),
                c.get("mbps").unwrap_or("-"),
            );
        }
    }
    md.push_str("\n## Plots\n\n![throughput](throughput.svg)\n\n![latency](latency.svg)\n\nRaw lines: `results.txt`; machine-readable: `results.json`.\n");
    std::fs::write(dir.join("report.md"), md)?;

    plot_bars(
        &dir.join("throughput.svg"),
        "Throughput per scenario (records/s, log scale)",
        &results,
        &[("append", "append_rps", BLUE), ("read", "read_rps", GREEN)],
    )?;
    plot_bars(
        &dir.join("latency.svg"),
        "Batch latency per scenario (µs, log scale)",
        &results,
        &[("p50", "lat_p50_us", BLUE), ("p99", "lat_p99_us", RED)],
    )?;
    println!("report written to {}", dir.join("report.md").display());
    Ok(())
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn format_duration_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn format_num(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1} K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Grouped bars, one group per result line, on a log scale.
fn plot_bars(
    path: &Path,
    title: &str,
    results: &[&Line],
    series: &[(&str, &str, RGBColor)],
) -> Result<(), BoxError> {
    let labels: Vec<String> = results.iter().map(|r| r.label()).collect();
    let max = results
        .iter()
        .flat_map(|r| series.iter().map(|(_, key, _)| r.num(key)))
        .fold(10.0f64, f64::max);
    let root = SVGBackend::new(path, (1100, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = results.len().max(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(90)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..groups, (1f64..max * 2.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(results.len().max(1) * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .draw()?;
    let width = 0.8 / series.len() as f64;
    for (s, (name, key, color)) in series.iter().enumerate() {
        let color = *color;
        chart
            .draw_series(results.iter().enumerate().filter_map(|(i, r)| {
                let v = r.num(key);
                (v > 0.0).then(|| {
                    let x0 = i as f64 + 0.1 + s as f64 * width;
                    Rectangle::new([(x0, 1.0), (x0 + width * 0.95, v)], color.filled())
                })
            }))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{derived_rows, parse};

    fn row<'a>(rows: &'a [super::Row], starts: &str) -> &'a super::Row {
        rows.iter()
            .find(|r| r.what.starts_with(starts))
            .expect("the row is there")
    }

    #[test]
    fn redis_ratio_cpu_and_in_process_rows() {
        let lines = parse(
            "RESULT system=log-server scenario=small-writers size=100 ack=durable n=200000 append_rps=120000 lat_p99_us=1500 server_cpu_ticks=200 clk_tck=100 round=1\n\
             RESULT system=redis scenario=redis-always version=7.0.15 size=100 ack=always n=200000 append_rps=50000 server_cpu_ticks=300 clk_tck=100 round=1\n\
             RESULT system=log-server scenario=small-writers size=100 ack=durable n=200000 append_rps=80000 lat_p99_us=2500 server_cpu_ticks=200 clk_tck=100 round=2\n\
             RESULT system=redis scenario=redis-always version=7.0.15 size=100 ack=always n=200000 append_rps=50000 server_cpu_ticks=300 clk_tck=100 round=2\n\
             RESULT system=log-server scenario=peer size=1024 ack=durable n=5000 append_mbps=900.0\n\
             CRITERION id=append/durable/1024 mean_ns=1 rps=1 mbps=1000.0\n",
        );
        let rows = derived_rows(&lines);
        let acks = row(&rows, "small-writers DURABLE acks/s (");
        assert_eq!(
            (acks.measured.as_str(), acks.met),
            ("100.0 K (mean of 2 rounds)", "yes")
        );
        let p99 = row(&rows, "small-writers DURABLE ack p99 µs");
        assert_eq!(
            (p99.measured.as_str(), p99.met),
            ("2500 (worst round)", "no")
        );
        let ratio = row(&rows, "small-writers DURABLE acks/s ÷ Redis");
        assert_eq!((ratio.measured.as_str(), ratio.met), ("2.00×", "yes"));
        let cpu = row(&rows, "log-server CPU µs per DURABLE ack");
        assert_eq!((cpu.measured.as_str(), cpu.met), ("10.00", "yes"));
        let grpc = row(&rows, "gRPC peer DURABLE 1 KiB MB/s ÷");
        assert_eq!(grpc.met, "yes");
        assert!(grpc.measured.starts_with("0.90×"), "{}", grpc.measured);
    }

    #[test]
    fn skipped_redis_and_coarse_cpu_say_so() {
        let lines = parse(
            "NOTE redis_skipped=no_apt-get\n\
             RESULT system=log-server scenario=small-writers size=100 ack=durable n=2000 append_rps=20000 lat_p99_us=5000 server_cpu_ticks=4 clk_tck=100\n",
        );
        let rows = derived_rows(&lines);
        let ratio = row(&rows, "small-writers DURABLE acks/s ÷ Redis");
        assert_eq!(
            (ratio.measured.as_str(), ratio.met),
            ("skipped: no apt-get", "-")
        );
        let cpu = row(&rows, "log-server CPU µs per DURABLE ack");
        assert_eq!(cpu.met, "-");
        assert!(cpu.measured.contains("too coarse"), "{}", cpu.measured);
        let grpc = row(&rows, "gRPC peer DURABLE 1 KiB MB/s ÷");
        assert_eq!(grpc.measured, "not run");
    }
}
