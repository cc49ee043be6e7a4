//! Reading the Java tools' output (`ProducerPerformance`'s summary line,
//! `ConsumerPerformance`'s CSV line, `Consume.java`'s `CONSUMED` line) and
//! a process's RSS. Each parser answers `None` for output it does not
//! recognise; none guesses.

/// `ProducerPerformance`'s summary line, in its units (ms, MiB/s).
#[derive(Debug, PartialEq)]
pub(super) struct ProducerSummary {
    pub(super) records: u64,
    pub(super) rps: f64,
    pub(super) avg_ms: f64,
    pub(super) max_ms: f64,
    pub(super) p50_ms: f64,
    pub(super) p95_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) p999_ms: f64,
}

/// The last summary line of `ProducerPerformance`'s output: `N records
/// sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P
/// ms 50th, P ms 95th, P ms 99th, P ms 99.9th.` (the progress lines lack
/// the percentiles).
pub(super) fn parse_producer(text: &str) -> Option<ProducerSummary> {
    let line = text
        .lines()
        .rfind(|l| l.contains("records sent") && l.contains("99.9th"))?;
    let mut found = std::collections::HashMap::new();
    for part in line.trim().trim_end_matches('.').split(", ") {
        let (number, unit) = part.split_once(' ')?;
        let unit = unit.split(" (").next()?;
        found.insert(unit, number.parse::<f64>().ok()?);
    }
    let get = |unit: &str| found.get(unit).copied();
    Some(ProducerSummary {
        records: get("records sent")? as u64,
        rps: get("records/sec")?,
        avg_ms: get("ms avg latency")?,
        max_ms: get("ms max latency")?,
        p50_ms: get("ms 50th")?,
        p95_ms: get("ms 95th")?,
        p99_ms: get("ms 99th")?,
        p999_ms: get("ms 99.9th")?,
    })
}

/// `ConsumerPerformance`'s figures: records, records/s and MiB/s of the
/// fetch phase (without the group join), records/s with it, and the join
/// (rebalance) time in ms.
#[derive(Debug, PartialEq)]
pub(super) struct ConsumerSummary {
    pub(super) records: u64,
    pub(super) fetch_rps: f64,
    pub(super) fetch_mibps: f64,
    pub(super) total_rps: f64,
    pub(super) rebalance_ms: f64,
}

/// The line under the `start.time, end.time, data.consumed.in.MB, MB.sec,
/// data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms,
/// fetch.MB.sec, fetch.nMsg.sec` header (the dates hold no comma).
pub(super) fn parse_consumer_perf(text: &str) -> Option<ConsumerSummary> {
    let mut lines = text.lines().skip_while(|l| !l.starts_with("start.time"));
    lines.next()?;
    let fields: Vec<&str> = lines
        .find(|l| l.split(',').count() == 10)?
        .split(',')
        .map(str::trim)
        .collect();
    let num = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some(ConsumerSummary {
        records: num(4)? as u64,
        total_rps: num(5)?,
        rebalance_ms: num(6)?,
        fetch_mibps: num(8)?,
        fetch_rps: num(9)?,
    })
}

/// `Consume.java`'s figures: records, records/s, MB/s, and the client's
/// CPU time (ms) and cores over the same window, for the whole JVM and for
/// its polling thread, when it could read them.
#[derive(Debug, PartialEq)]
pub(super) struct Consumed {
    pub(super) records: u64,
    pub(super) rps: f64,
    pub(super) mbps: f64,
    pub(super) cpu: Option<(f64, f64)>,
    pub(super) poll_cpu: Option<(f64, f64)>,
}

/// `Consume.java`'s `CONSUMED records=N bytes=B ms=T rps=R mbps=M
/// cpu_ms=C cores=K poll_cpu_ms=P poll_cores=Q` (each CPU figure -1 when
/// the JVM cannot say).
pub(super) fn parse_consumed(text: &str) -> Option<Consumed> {
    let line = text.lines().rfind(|l| l.starts_with("CONSUMED "))?;
    let get = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let pair = |ms: &str, cores: &str| match (get(ms), get(cores)) {
        (Some(ms), Some(cores)) if ms >= 0.0 && cores >= 0.0 => Some((ms, cores)),
        _ => None,
    };
    Some(Consumed {
        records: get("records")? as u64,
        rps: get("rps")?,
        mbps: get("mbps")?,
        cpu: pair("cpu_ms", "cores"),
        poll_cpu: pair("poll_cpu_ms", "poll_cores"),
    })
}

/// VmRSS of process `pid`, in kB.
pub(super) fn rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::{
        Consumed, ConsumerSummary, ProducerSummary, parse_consumed, parse_consumer_perf,
        parse_producer,
    };

    #[test]
    fn reads_producer_performance() {
        let text = "Option --producer-props has been deprecated\n\
                    1226818 records sent, 245167.5 records/sec (23.38 MB/sec), 104.3 ms avg latency, 950.0 ms max latency.\n\
                    2000000 records sent, 326157.860404 records/sec (31.10 MB/sec), 72.12 ms avg latency, 950.00 ms max latency, 44 ms 50th, 184 ms 95th, 327 ms 99th, 349 ms 99.9th.\n";
        assert_eq!(
            parse_producer(text),
            Some(ProducerSummary {
                records: 2_000_000,
                rps: 326_157.860_404,
                avg_ms: 72.12,
                max_ms: 950.0,
                p50_ms: 44.0,
                p95_ms: 184.0,
                p99_ms: 327.0,
                p999_ms: 349.0,
            })
        );
        // Progress lines alone are no summary.
        assert_eq!(
            parse_producer(text.lines().take(2).collect::<Vec<_>>().join("\n").as_str()),
            None
        );
        assert_eq!(parse_producer(""), None);
    }

    #[test]
    fn reads_consumer_performance() {
        let text = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n\
                    2026-12-02 02:17:41:164, 2026-12-02 02:17:46:934, 190.7349, 33.0563, 2000000, 346620.4506, 2080, 3690, 51.6897, 542005.4201\n";
        assert_eq!(
            parse_consumer_perf(text),
            Some(ConsumerSummary {
                records: 2_000_000,
                fetch_rps: 542_005.420_1,
                fetch_mibps: 51.6897,
                total_rps: 346_620.450_6,
                rebalance_ms: 2080.0,
            })
        );
        // The header alone (the run failed after printing it).
        assert_eq!(
            parse_consumer_perf(text.lines().next().unwrap_or_default()),
            None
        );
        assert_eq!(
            parse_consumed(
                "x\nCONSUMED records=2000000 bytes=200000000 ms=1745 rps=1146284 mbps=114.6 cpu_ms=1700 cores=0.97 poll_cpu_ms=1500 poll_cores=0.86\n"
            ),
            Some(Consumed {
                records: 2_000_000,
                rps: 1_146_284.0,
                mbps: 114.6,
                cpu: Some((1700.0, 0.97)),
                poll_cpu: Some((1500.0, 0.86)),
            })
        );
        // A JVM that cannot read its CPU time says -1: no figure.
        assert_eq!(
            parse_consumed("CONSUMED records=5 bytes=5 ms=1 rps=5 mbps=0.0 cpu_ms=-1 cores=-1")
                .map(|c| c.cpu),
            Some(None)
        );
        assert_eq!(parse_consumed("CONSUMED records=5"), None);
    }
}
