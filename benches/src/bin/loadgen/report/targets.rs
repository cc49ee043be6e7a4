//! The targets of the report: each bound of the issues, where its figure
//! comes from (a scenario's `RESULT` line or a criterion estimate), and the
//! rows derived from several lines (ratios to peers, CPU per ack, rounds).

use super::{Line, format_num};
use std::fmt::Write as _;

/// A target: which line, which figure, the bound, and whether more is
/// better.
pub(super) struct Target {
    pub(super) what: &'static str,
    /// The scenario, or the benchmark id of a `CRITERION` line.
    pub(super) scenario: &'static str,
    pub(super) size: Option<&'static str>,
    pub(super) ack: Option<&'static str>,
    pub(super) kind: &'static str,
    pub(super) key: &'static str,
    pub(super) bound: f64,
    pub(super) at_least: bool,
}

/// A floor on the figure `key` of the `CRITERION` line of benchmark `id`.
pub(super) const fn criterion(
    what: &'static str,
    id: &'static str,
    key: &'static str,
    bound: f64,
) -> Target {
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

pub(super) const TARGETS: &[Target] = &[
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

pub(super) fn find<'a>(lines: &'a [Line], t: &Target) -> Option<&'a Line> {
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
pub(super) struct Row {
    pub(super) what: String,
    pub(super) measured: String,
    pub(super) bound: String,
    pub(super) met: &'static str,
}

impl Row {
    /// A figure against its bound (`at_least`: more is better).
    pub(super) fn bounded(
        what: impl Into<String>,
        v: f64,
        bound: f64,
        at_least: bool,
        shown: String,
    ) -> Row {
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
    pub(super) fn missing(what: impl Into<String>, why: String, bound: String) -> Row {
        Row {
            what: what.into(),
            measured: why,
            bound,
            met: "-",
        }
    }
}

/// The result lines of `scenario`, in run order (one per round).
pub(super) fn rounds<'a>(lines: &'a [Line], scenario: &str) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| l.kind == "RESULT" && l.get("scenario") == Some(scenario))
        .collect()
}

pub(super) fn mean(lines: &[&Line], key: &str) -> f64 {
    lines.iter().map(|l| l.num(key)).sum::<f64>() / lines.len().max(1) as f64
}

pub(super) fn worst(lines: &[&Line], key: &str) -> f64 {
    lines.iter().map(|l| l.num(key)).fold(0.0, f64::max)
}

/// Issue 11's bound on the server's CPU per small-writers DURABLE ack, µs.
pub(super) const CPU_PER_ACK_TARGET_US: f64 = 12.0;

/// Server CPU over `lines` together: their ticks summed, over their
/// records summed.
pub(super) struct Cpu {
    pub(super) per_record_us: f64,
    pub(super) ticks: f64,
    pub(super) hz: f64,
    pub(super) records: f64,
}

impl Cpu {
    pub(super) fn of(lines: &[&Line]) -> Option<Cpu> {
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
    pub(super) fn coarse(&self) -> bool {
        self.ticks < 100.0
    }

    /// The figure, with the resolution spelled out when coarse.
    pub(super) fn long(&self) -> String {
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
    pub(super) fn short(&self) -> String {
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
pub(super) fn redis_missing(lines: &[Line]) -> String {
    lines
        .iter()
        .find_map(|l| l.get("redis_skipped"))
        .map_or("not run".to_owned(), |r| {
            format!("skipped: {}", r.replace('_', " "))
        })
}

/// The rows computed from several lines: the small-writers / Redis
/// comparison, the server CPU per ack, and gRPC against in-process.
pub(super) fn derived_rows(lines: &[Line]) -> Vec<Row> {
    let mut rows = Vec::new();
    // The WRITTEN twin of small-writers is a bound (see `bounds.rs`), not a
    // round of the comparison.
    let small: Vec<&Line> = rounds(lines, "small-writers")
        .into_iter()
        .filter(|l| l.get("ack") != Some("written"))
        .collect();
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
            let mut row = Row::bounded(
                what,
                cpu.per_record_us,
                CPU_PER_ACK_TARGET_US,
                false,
                cpu.long(),
            );
            if cpu.coarse() {
                row.met = "-";
            }
            row
        }
        None => Row::missing(
            what,
            "not run".into(),
            format!("≤ {CPU_PER_ACK_TARGET_US:.0}"),
        ),
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
    rows.push(group_row(lines));
    rows.push(clean_load_row(lines));
    rows
}

/// The consumer-group scenario: consumption before and after a member's
/// kill -9, and how long its partitions went unconsumed.
fn group_row(lines: &[Line]) -> Row {
    let what = "consumer group (gRPC GroupConsumer members over 8 partitions while a DURABLE producer writes): records/s consumed before and after a member's kill -9, and the rebalance";
    let result = lines
        .iter()
        .find(|l| l.kind == "RESULT" && l.get("scenario") == Some("group-rebalance"));
    let extra = lines
        .iter()
        .find(|l| l.kind == "EXTRA" && l.get("scenario") == Some("group-rebalance"));
    match (result, extra) {
        (Some(r), Some(e)) => Row {
            what: what.into(),
            measured: format!(
                "{} members: {} before, {} after; the killed member's partitions consumed again after {} ms; producer {} rec/s",
                e.get("members").unwrap_or("?"),
                format_num(r.num("read_rps")),
                format_num(e.num("read_rps_after")),
                e.get("rebalance_ms").unwrap_or("?"),
                format_num(r.num("append_rps")),
            ),
            bound: "-".into(),
            met: "-",
        },
        _ => Row::missing(what, "not run".into(), "-".into()),
    }
}

/// The `clean-load` scenario: the producers' p99 before and during a
/// cleaning pass, and the pass's rate on the live server.
fn clean_load_row(lines: &[Line]) -> Row {
    let what = "compaction under load (clean-load: DURABLE producers on one topic while the cleaner compacts another): producers' p99 before → during the pass, and the cleaner's MB/s of dirty log";
    let Some(e) = lines
        .iter()
        .find(|l| l.kind == "EXTRA" && l.get("scenario") == Some("clean-load"))
    else {
        return Row::missing(what, "not run".into(), "-".into());
    };
    let (before, during) = (e.num("before_p99_us"), e.num("during_p99_us"));
    Row {
        what: what.into(),
        measured: format!(
            "p99 {before:.0} → {during:.0} µs ({:.2}×), {} → {} rec/s; {:.1} MB cleaned in {:.2} s ({:.0} MB/s, {:.1} MB reclaimed)",
            during / before.max(1.0),
            format_num(e.num("before_rps")),
            format_num(e.num("during_rps")),
            e.num("dirty_bytes") / 1e6,
            e.num("clean_secs"),
            e.num("clean_mbps"),
            e.num("reclaimed_bytes") / 1e6,
        ),
        bound: "-".into(),
        met: "-",
    }
}
