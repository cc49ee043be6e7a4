//! `log-loadgen report DIR`: turns `DIR/results.txt` (`MACHINE`, `NOTE`,
//! `RESULT` and `EXTRA` lines of `key=value` pairs) into `report.md` (tables
//! with the durability mode and fsync count of every figure and the
//! targets beside them), `results.json` and two SVG plots (throughput and
//! latency per scenario).

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
        format!(
            "{} {}B {}",
            self.get("scenario").unwrap_or("?"),
            self.get("size").unwrap_or("?"),
            self.get("ack").unwrap_or("?")
        )
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
        what: "gRPC peer DURABLE 100 B, records/s",
        scenario: "peer",
        size: Some("100"),
        ack: Some("durable"),
        kind: "RESULT",
        key: "append_rps",
        bound: 2.5e6,
        at_least: true,
    },
    Target {
        what: "gRPC peer DURABLE 100 B, batch p99 µs",
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
        what: "gRPC peer WRITTEN 100 B, records/s",
        scenario: "peer",
        size: Some("100"),
        ack: Some("written"),
        kind: "RESULT",
        key: "append_rps",
        bound: 4.5e6,
        at_least: true,
    },
    Target {
        what: "gRPC peer read back 100 B, records/s",
        scenario: "peer",
        size: Some("100"),
        ack: Some("written"),
        kind: "RESULT",
        key: "read_rps",
        bound: 10.5e6,
        at_least: true,
    },
    Target {
        what: "small-writers DURABLE acks/s",
        scenario: "small-writers",
        size: None,
        ack: None,
        kind: "RESULT",
        key: "append_rps",
        bound: 100_000.0,
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
        100_000.0,
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
    for t in TARGETS {
        let measured = find(&lines, t).map(|l| l.num(t.key));
        let (shown, met) = match measured {
            Some(v) => (
                format_num(v),
                if (t.at_least && v >= t.bound) || (!t.at_least && v <= t.bound) {
                    "yes"
                } else {
                    "no"
                },
            ),
            None => ("not run".to_owned(), "-"),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} {} | {} |",
            t.what,
            shown,
            if t.at_least { "≥" } else { "≤" },
            format_num(t.bound),
            met
        );
    }
    // Group commit's latency bound: the p99 ack of small-writers within two
    // fdatasyncs of the probe.
    let probe_p50 = lines
        .iter()
        .find_map(|l| l.get("fdatasync_100b_p50_us"))
        .and_then(|v| v.parse::<f64>().ok());
    let small = lines
        .iter()
        .find(|l| l.kind == "RESULT" && l.get("scenario") == Some("small-writers"));
    if let (Some(p50), Some(small)) = (probe_p50, small) {
        let p99 = small.num("lat_p99_us");
        let _ = writeln!(
            md,
            "| small-writers DURABLE ack p99 µs, within 2 fdatasyncs (2 × probe p50) | {} | ≤ {} | {} |",
            format_num(p99),
            format_num(2.0 * p50),
            if p99 <= 2.0 * p50 { "yes" } else { "no" }
        );
    }
    md.push_str(
        "\nRows marked criterion come from the in-process suites in `benches/benches/` \
         (mean of the latest criterion run, `target/criterion/`); `--quick` runs each suite \
         once as a test and measures none of them.\n\n",
    );
    md.push_str("## Scenarios\n\n| scenario | size | batch | ack | n | append rec/s | append MB/s | p50 µs | p99 µs | read rec/s | read MB/s | fsyncs | records/fsync |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in &results {
        let fsyncs = r.num("fsyncs");
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.get("scenario").unwrap_or("?"),
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
            fsyncs,
            if fsyncs > 0.0 {
                format_num(r.num("n") / fsyncs)
            } else {
                "-".into()
            },
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
