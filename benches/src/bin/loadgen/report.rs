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
//!
//! The `system=kafka` and `system=log-server` lines of `scenario=kafka-…`
//! (the `kafka` peer step, `--peer kafka`) give the Kafka comparison
//! ([`kafka`]): produce rate, p99, consume rate and RSS, ours over Kafka's.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

mod bounds;
mod kafka;
mod targets;

use targets::{Cpu, Row, TARGETS, derived_rows, find};

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
        let scenario = self.get("scenario").unwrap_or("?");
        // Both systems of the Kafka step run the same scenarios.
        let scenario = match scenario.strip_prefix("kafka-") {
            Some(rest) => format!("{} {rest}", self.get("system").unwrap_or("?")),
            None => scenario.to_owned(),
        };
        let mut label = format!(
            "{} {}B {}",
            scenario,
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
    rows.extend(kafka::rows(&lines));
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
    md.push_str(&kafka::section(&lines));
    md.push_str(&bounds::section(&lines));
    md.push_str("\n## Scenarios\n\n| system | scenario | size | batch | ack | n | append rec/s | append MB/s | p50 µs | p99 µs | read rec/s | read MB/s | fsyncs | records/fsync | server CPU µs/record |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
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
    fn kafka_rows_compare_ours_with_kafka_round_by_round() {
        let lines = parse(
            "NOTE kafka_version=4.3.1 kafka_client=kafka-tools-4.3.1\n\
             RESULT system=kafka scenario=kafka-producer-perf version=4.3.1 size=100 ack=all durability=page-cache n=1000 append_rps=300000 lat_p99_us=300000 rss_kb=700000 round=1\n\
             RESULT system=kafka scenario=kafka-consume size=100 ack=all n=1000 read_rps=1000000 round=1\n\
             RESULT system=kafka scenario=kafka-consumer-perf size=100 ack=all n=1000 read_rps=540000 round=1\n\
             RESULT system=log-server scenario=kafka-producer-perf size=100 ack=all durability=fdatasync n=1000 append_rps=700000 lat_p99_us=30000 rss_kb=10000 round=1\n\
             RESULT system=log-server scenario=kafka-consume size=100 ack=all n=1000 read_rps=1100000 round=1\n\
             NOTE kafka_consumer_perf_log_server=needs_consumer-group_membership\n\
             RESULT system=kafka scenario=kafka-producer-perf version=4.3.1 size=100 ack=all n=1000 append_rps=340000 lat_p99_us=250000 round=2\n\
             RESULT system=kafka scenario=kafka-consume size=100 ack=all n=1000 read_rps=1000000 client_cores=0.85 client_poll_cores=0.70 round=2\n\
             RESULT system=log-server scenario=kafka-producer-perf size=100 ack=all n=1000 append_rps=660000 lat_p99_us=40000 round=2\n\
             RESULT system=log-server scenario=kafka-consume size=100 ack=all n=1000 read_rps=1300000 client_cores=0.95 client_poll_cores=0.90 round=2\n\
             RESULT system=kafka scenario=kafka-producer-perf size=1024 ack=all n=1000 append_rps=150000 lat_p99_us=20000 round=1\n\
             RESULT system=log-server scenario=kafka-producer-perf size=1024 ack=all n=1000 append_rps=120000 lat_p99_us=60000 round=1\n\
             EXTRA system=kafka scenario=kafka-peer rss_kb_max=800000\n\
             EXTRA system=log-server scenario=kafka-peer rss_kb_max=16000\n",
        );
        let rows = super::kafka::rows(&lines);
        // 680 K ÷ 320 K, means of the two rounds.
        let produce = row(&rows, "Kafka producer 100 B, acks=all (");
        assert_eq!(produce.met, "yes");
        assert!(
            produce.measured.starts_with(
                "2.12× (log-server 680.0 K, Kafka 320.0 K records/s; mean of 2 rounds each)"
            ),
            "{}",
            produce.measured
        );
        assert_eq!(produce.bound, "≥ 1.00×");
        // Worst rounds: 40 ms against 300 ms.
        let p99 = row(&rows, "Kafka producer 100 B, acks=all: log-server p99");
        assert_eq!(
            (p99.measured.as_str(), p99.bound.as_str(), p99.met),
            ("40000 vs Kafka's 300000", "≤ Kafka's (300000)", "yes")
        );
        // 1.2 M ÷ 1.0 M: just the bound.
        let consume = row(&rows, "Kafka consumer 100 B");
        assert_eq!(consume.met, "yes");
        assert!(
            consume.measured.starts_with("1.20×"),
            "{}",
            consume.measured
        );
        // The rounds that read the client's CPU.
        assert!(
            consume
                .measured
                .ends_with("; consumer JVM CPU 0.95 cores against log-server, 0.85 against Kafka (poll thread 0.90, 0.70)"),
            "{}",
            consume.measured
        );
        let produce = row(&rows, "Kafka producer 1 KiB, acks=all (");
        assert_eq!(produce.met, "no");
        assert!(
            produce
                .measured
                .starts_with("0.80× (log-server 120.0 K, Kafka 150.0 K records/s; 1 run each)"),
            "{}",
            produce.measured
        );
        let p99 = row(&rows, "Kafka producer 1 KiB, acks=all: log-server p99");
        assert_eq!(p99.met, "no");
        let consume = row(&rows, "Kafka consumer 1 KiB");
        assert_eq!((consume.measured.as_str(), consume.met), ("not run", "-"));
        let rss = row(&rows, "RSS after the produce runs");
        assert_eq!(
            (rss.measured.as_str(), rss.met),
            ("0.020× (log-server 15.6 MiB, Kafka 781.2 MiB)", "yes")
        );
        let group = row(&rows, "ConsumerPerformance");
        assert_eq!(
            group.measured,
            "Kafka: 100 B 540.0 K records/s; log-server: skipped: needs consumer-group membership"
        );
        assert!(super::kafka::section(&lines).contains("Apache Kafka 4.3.1"));
    }

    #[test]
    fn kafka_rows_say_why_the_peer_did_not_run() {
        // The whole step skipped: every row says why.
        let lines = parse("NOTE kafka_skipped=java_is_not_installed\n");
        let rows = super::kafka::rows(&lines);
        assert_eq!(rows.len(), 8);
        for r in &rows[..7] {
            assert_eq!(
                (r.measured.as_str(), r.met),
                ("skipped: java is not installed", "-"),
                "{}",
                r.what
            );
        }
        assert_eq!(super::kafka::section(&lines), "");
        // Kafka failed in a later round: ours is shown beside the reason.
        let lines = parse(
            "NOTE kafka_skipped=Kafka_1024_B_round_1_failed:_no_free_port\n\
             RESULT system=log-server scenario=kafka-producer-perf size=1024 ack=all n=1000 append_rps=120000 lat_p99_us=60000 round=1\n\
             EXTRA system=log-server scenario=kafka-peer rss_kb_max=16000\n",
        );
        let rows = super::kafka::rows(&lines);
        let produce = row(&rows, "Kafka producer 1 KiB, acks=all (");
        assert_eq!(produce.met, "-");
        assert_eq!(
            produce.measured,
            "skipped: Kafka 1024 B round 1 failed: no free port (log-server 120.0 K records/s, 1 run)"
        );
        let rss = row(&rows, "RSS after the produce runs");
        assert!(
            rss.measured.ends_with("(log-server 15.6 MiB)"),
            "{}",
            rss.measured
        );
        // Not asked for (the default run): one row says how.
        let rows = super::kafka::rows(&parse(
            "RESULT system=log-server scenario=peer size=100 ack=durable n=1\n",
        ));
        assert_eq!(rows.len(), 1);
        assert!(
            rows[0].measured.contains("--peer kafka"),
            "{}",
            rows[0].measured
        );
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

    #[test]
    fn the_group_row_shows_consumption_around_the_kill_and_the_rebalance() {
        let lines = parse(
            "RESULT system=log-server scenario=group-rebalance size=100 n=5 append_rps=400000 read_rps=250000\n\
             EXTRA system=log-server scenario=group-rebalance members=4 partitions=8 rebalance_ms=1037 read_rps_after=200000\n",
        );
        let rows = derived_rows(&lines);
        let group = row(&rows, "consumer group");
        assert_eq!(
            group.measured,
            "4 members: 250.0 K before, 200.0 K after; the killed member's partitions consumed again after 1037 ms; producer 400.0 K rec/s"
        );
        let none = derived_rows(&parse("MACHINE cpus=2\n"));
        assert_eq!(row(&none, "consumer group").measured, "not run");
        assert_eq!(row(&none, "compaction under load").measured, "not run");
        let clean = derived_rows(&parse(
            "EXTRA system=log-server scenario=clean-load writers=8 batch=10 before_rps=20000 before_p50_us=3000 before_p99_us=5000 during_rps=15000 during_p50_us=4000 during_p99_us=7500 clean_secs=2.00 dirty_bytes=200000000 reclaimed_bytes=190000000 clean_mbps=100.0\n",
        ));
        assert_eq!(
            row(&clean, "compaction under load").measured,
            "p99 5000 → 7500 µs (1.50×), 20.0 K → 15.0 K rec/s; 200.0 MB cleaned in 2.00 s (100 MB/s, 190.0 MB reclaimed)"
        );
    }

    #[test]
    fn a_lever_tried_in_the_same_run_is_compared_with_the_default_and_counted_nowhere_else() {
        let lines = parse(
            "RESULT system=log-server scenario=small-writers size=100 ack=durable n=100000 append_rps=50000 server_cpu_ticks=200 clk_tck=100 store_fsync_p50_us=200 round=1\n\
             RESULT system=log-server scenario=small-writers-tried size=100 ack=durable n=100000 append_rps=40000 server_cpu_ticks=250 clk_tck=100 store_fsync_p50_us=350 round=1 tried=zeroed_runway_off\n\
             RESULT system=log-server scenario=small-writers size=100 ack=durable n=100000 append_rps=30000 server_cpu_ticks=200 clk_tck=100 store_fsync_p50_us=220 round=2\n\
             RESULT system=log-server scenario=small-writers-tried size=100 ack=durable n=100000 append_rps=40000 server_cpu_ticks=250 clk_tck=100 store_fsync_p50_us=330 round=2 tried=zeroed_runway_off\n\
             RESULT system=log-server scenario=small-writers-tried size=100 ack=durable n=100000 append_rps=45000 server_cpu_ticks=180 clk_tck=100 store_fsync_p50_us=300 round=1 tried=gathered_writes_on\n",
        );
        let rows = derived_rows(&lines);
        let acks = row(&rows, "small-writers DURABLE acks/s (");
        assert!(
            acks.measured.starts_with("40.0 K (mean of 2 rounds)"),
            "the tried rounds are not the default's: {}",
            acks.measured
        );
        let bounds = super::bounds::bounds(&lines);
        let tried = bounds
            .iter()
            .find(|b| {
                b.what.starts_with("tried: small-writers DURABLE") && b.what.contains("`zeroed")
            })
            .expect("the tried row");
        assert!(
            tried.what.contains("`zeroed_runway_off` (2 rounds each"),
            "{}",
            tried.what
        );
        assert_eq!(
            tried.figure,
            "40.0 K default, 40.0 K with `zeroed_runway_off` (1.00×); store fdatasync p50 210 vs 340 µs; server CPU 20.0 vs 25.0 µs per ack"
        );
        assert!(tried.reading.contains("it pays here"), "{}", tried.reading);
        // A lever the default leaves off reads the other way round.
        let on = bounds
            .iter()
            .find(|b| b.what.contains("`gathered_writes_on`"))
            .expect("the second tried row");
        assert!(
            on.figure
                .starts_with("40.0 K default, 45.0 K with `gathered_writes_on` (0.89×)"),
            "{}",
            on.figure
        );
        assert!(
            on.reading
                .contains("leaves off, turned on in this run: it paid"),
            "{}",
            on.reading
        );
    }

    #[test]
    fn bounds_compare_the_written_twin_the_disk_and_the_cores() {
        let lines = parse(
            "MACHINE cpus=2\n\
             NOTE fdatasync_100b_p50_us=250\n\
             RESULT system=log-server scenario=small-writers size=100 ack=durable n=100000 append_rps=50000 fsyncs=4000 server_cpu_ticks=150 loadgen_cpu_ticks=50 clk_tck=100 round=1 lat_p99_us=4000 store_fsync_p50_us=400 store_fsync_p99_us=700 store_fsync_max_us=900 store_wait_p99_us=1000\n\
             RESULT system=log-server scenario=small-writers size=100 ack=written n=100000 append_rps=100000 fsyncs=0 server_cpu_ticks=100 clk_tck=100 lat_p99_us=3000\n\
             EXTRA system=log-server scenario=small-writers writers=64\n\
             RESULT system=log-server scenario=peer size=1024 ack=durable n=5000 append_mbps=250.0\n\
             RESULT system=log-server scenario=peer size=1024 ack=written n=5000 append_mbps=500.0\n\
             CRITERION id=append/durable/1024 mean_ns=1 rps=1 mbps=500.0\n\
             CRITERION id=append/written/1024 mean_ns=1 rps=1 mbps=1000.0\n\
             EXTRA system=in-process scenario=group_commit_callbacks writers=64 acks=400000 secs=4.0 syncs=8000 sync_p50_us=250\n",
        );
        // The WRITTEN twin is not a round of the Redis comparison.
        let rows = derived_rows(&lines);
        let acks = row(&rows, "small-writers DURABLE acks/s (");
        assert!(
            acks.measured.starts_with("50.0 K (1 run)"),
            "{}",
            acks.measured
        );
        let bounds = super::bounds::bounds(&lines);
        let find = |starts: &str| {
            bounds
                .iter()
                .find(|b| b.what.starts_with(starts))
                .expect("the bound is there")
        };
        let twin = find("small-writers WRITTEN");
        assert!(twin.reading.contains("50 %"), "{}", twin.reading);
        // 2 s over 4000 syncs: 500 µs a cycle, twice the probe.
        let cycle = find("small-writers DURABLE: acks per fdatasync");
        assert_eq!(cycle.figure, "25.0 acks, 500 µs");
        assert!(cycle.reading.contains("busy 50 %"), "{}", cycle.reading);
        assert!(
            cycle
                .reading
                .contains("the store's own fdatasync p50 was 400 µs, 80 % of the cycle"),
            "{}",
            cycle.reading
        );
        // 2 s of server and 0.5 s of loadgen CPU over 100,000 acks in 2 s.
        // 64 writers over 640 µs of request path (100 K acks/s WRITTEN) +
        // 1.5 × 500 µs: 46.0 K.
        let model = find("small-writers DURABLE: measured against");
        assert_eq!(model.figure, "50.0 K measured, 46.0 K predicted");
        // The WRITTEN twin's 640 µs round trip is all 100 K allows.
        assert!(
            model
                .reading
                .contains("out of reach of this request path even with no sync at all: 64 writers at 100 K allow 640 µs"),
            "{}",
            model.reading
        );
        let cpu = find("small-writers DURABLE: CPU");
        assert_eq!(cpu.figure, "15.0 + 5.0 = 20.0 µs; 1.00 of 2 cores");
        assert!(cpu.reading.contains("not saturated"), "{}", cpu.reading);
        // 15 µs DURABLE against 10 µs WRITTEN, 25 acks per fdatasync: the
        // 12 µs target leaves 2 µs per ack, 50 µs per cycle, for 125.
        let split = find("small-writers: server CPU µs per ack, DURABLE against");
        assert_eq!(
            split.figure,
            "15.0 µs DURABLE, 10.0 µs WRITTEN: durability adds 5.0 µs per ack (125 µs per sync cycle of 25.0 acks)"
        );
        assert!(
            split.reading.contains(
                "leaves 2.0 µs per ack for everything durability adds, 50 µs of CPU per sync cycle"
            ),
            "{}",
            split.reading
        );
        assert!(
            split.reading.contains("against 125 µs measured"),
            "{}",
            split.reading
        );
        // 100 K acks/s over 2000 syncs/s: 50 acks, a 500 µs cycle, half
        // of it the fdatasync.
        let cycle = find("in-process group_commit_callbacks");
        assert_eq!(
            cycle.figure,
            "100.0 K acks/s, 50.0 acks per sync, 500 µs cycle"
        );
        assert!(
            cycle.reading.contains("caps it at 128 K"),
            "{}",
            cycle.reading
        );
        assert!(
            cycle.reading.contains("50 % of the cycle"),
            "{}",
            cycle.reading
        );
        assert!(cycle.reading.contains("not the disk"), "{}", cycle.reading);
        let tail = find("small-writers DURABLE ack p99");
        assert_eq!(tail.figure, "4000 µs client, 1000 µs in the store");
        assert!(tail.reading.contains("25 %"), "{}", tail.reading);
        assert!(
            tail.reading
                .contains("WRITTEN twin's p99 (the request path, no sync) is 3000 µs"),
            "{}",
            tail.reading
        );
        assert!(tail.reading.contains("within 2 ms"), "{}", tail.reading);
        // Per MB: 2 ms of request path + (2 - 1) ms of sync = 333 MB/s.
        let model = find("gRPC peer DURABLE 1 KiB: measured");
        assert_eq!(model.figure, "250 MB/s measured, 333 MB/s predicted");
        // No syscall counts in this run: no row.
        assert!(bounds.iter().all(|b| !b.what.contains("system calls")));
    }

    #[test]
    fn syscall_counts_become_calls_per_ack_and_the_kernel_share() {
        let lines = parse(
            "RESULT system=log-server scenario=small-writers size=100 ack=durable n=200000 append_rps=30000 server_cpu_ticks=700 server_stime_ticks=420 clk_tck=100 round=1 sys_pwrite64=214000 sys_writev=150000 sys_write=9000 sys_fdatasync=9300 sys_futex=92000 sys_sched_yield=130000 sys_epoll_wait=22000\n\
             RESULT system=log-server scenario=small-writers size=100 ack=written n=200000 append_rps=60000 server_cpu_ticks=360 server_stime_ticks=160 clk_tck=100 sys_pwrite64=200000 sys_writev=50000 sys_sched_yield=0\n",
        );
        let bounds = super::bounds::bounds(&lines);
        let row = bounds
            .iter()
            .find(|b| b.what.contains("system calls per ack"))
            .expect("the row is there");
        assert_eq!(
            row.figure,
            "pwrite64 1.07, writev 0.80, fdatasync 0.05, sched_yield 0.65, futex 0.46, epoll_wait 0.11; kernel 60 % of the server's CPU"
        );
        assert!(
            row.reading.contains("about one pwrite per append"),
            "{}",
            row.reading
        );
        assert!(
            row.reading.contains("0.80 socket writes per ack"),
            "{}",
            row.reading
        );
        // 360 ticks over 200,000 WRITTEN acks: 18 µs, over 12 µs with no
        // fdatasync at all.
        let split = bounds
            .iter()
            .find(|b| b.what.contains("DURABLE against its WRITTEN twin"))
            .expect("the split row");
        assert!(
            split
                .reading
                .contains("takes 18.0 µs per ack, over the 12 µs target with no fdatasync at all"),
            "{}",
            split.reading
        );
    }

    #[test]
    fn a_cpu_profile_becomes_microseconds_per_ack_by_component() {
        // 700 ticks at 100 Hz over 200,000 acks: 35 µs per ack; 1,000
        // samples, so each sample is 0.035 µs per ack.
        let lines = parse(
            "RESULT system=log-server scenario=small-writers size=100 ack=durable n=200000 append_rps=30000 server_cpu_ticks=700 server_stime_ticks=420 clk_tck=100 prof_samples=1000 prof_k_fdatasync=200 prof_k_writev=200 prof_u_http2=400 prof_u_alloc=200\n",
        );
        let bounds = super::bounds::bounds(&lines);
        let row = bounds
            .iter()
            .find(|b| b.what.contains("by component"))
            .expect("the row is there");
        assert_eq!(
            row.figure,
            "35.0 µs = kernel 14.0 + user 21.0: http2 14.0, kernel fdatasync 7.0, kernel writev 7.0, alloc 7.0"
        );
        assert!(
            row.reading.contains("above the 12 µs target"),
            "{}",
            row.reading
        );
    }

    #[test]
    fn the_profiled_round_gives_the_parts_and_the_measured_rounds_the_figures() {
        // The measured round: 400 ticks over 200,000 acks, 20 µs per ack,
        // no perf. The profiled round ran slower (perf attached) and its
        // own tracepoint samples are perf's cost, not the server's.
        let lines = parse(
            "RESULT system=log-server scenario=small-writers size=100 ack=durable n=200000 append_rps=60000 server_cpu_ticks=400 server_stime_ticks=200 clk_tck=100\n\
             RESULT system=log-server scenario=small-writers-profiled size=100 ack=durable n=200000 append_rps=45000 server_cpu_ticks=700 server_stime_ticks=500 clk_tck=100 sys_pwrite64=20000 sys_writev=10000 sys_fdatasync=8000 prof_samples=1200 prof_k_syscall_trace=200 prof_k_futex=500 prof_u_http2=500\n",
        );
        let rows = derived_rows(&lines);
        let acks = row(&rows, "small-writers DURABLE acks/s (");
        assert!(
            acks.measured.starts_with("60.0 K"),
            "the profiled round is not a measured one: {}",
            acks.measured
        );
        let bounds = super::bounds::bounds(&lines);
        let parts = bounds
            .iter()
            .find(|b| b.what.contains("by component"))
            .expect("the profile row");
        assert_eq!(
            parts.figure,
            "20.0 µs = kernel 10.0 + user 10.0: kernel futex 10.0, http2 10.0"
        );
        let calls = bounds
            .iter()
            .find(|b| b.what.contains("system calls per ack"))
            .expect("the syscalls row");
        assert!(
            calls
                .figure
                .starts_with("pwrite64 0.10, writev 0.05, fdatasync 0.04")
                && calls.figure.ends_with("kernel 50 % of the server's CPU"),
            "{}",
            calls.figure
        );
    }
}
