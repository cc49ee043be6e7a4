//! The Kafka peer rows of the report, from the `kafka` step of `cargo xtask
//! bench --peer kafka`: Apache Kafka and our Kafka listener driven by the
//! same Java client, A B A B (`round=R`). For 100 B and 1 KiB records:
//! our `acks=all` produce rate (acked after fdatasync) over Kafka's (acked
//! from its page cache, no fsync), our worst-round p99 against Kafka's, our
//! consumer rate over Kafka's (the same `assign` consumer against both);
//! then our largest RSS over Kafka's, and `ConsumerPerformance` (which
//! needs a consumer group) as a reference.
//!
//! A row whose figure is missing says why: the step's recorded skip reason
//! (`NOTE kafka_skipped=…`), or that it was not run. When the step left no
//! line at all, one row says how to run it.

use super::targets::{Row, mean, worst};
use super::{Line, format_num};

const PRODUCE: &str = "kafka-producer-perf";
const CONSUME: &str = "kafka-consume";
const GROUP: &str = "kafka-consumer-perf";
const SIZES: [(&str, &str); 2] = [("100", "100 B"), ("1024", "1 KiB")];

/// The `RESULT` lines of `system` in `scenario` at record size `size`.
fn results<'a>(lines: &'a [Line], system: &str, scenario: &str, size: &str) -> Vec<&'a Line> {
    lines
        .iter()
        .filter(|l| {
            l.kind == "RESULT"
                && l.get("system") == Some(system)
                && l.get("scenario") == Some(scenario)
                && l.get("size") == Some(size)
        })
        .collect()
}

/// `NOTE key=value`'s value, underscores as spaces.
fn note(lines: &[Line], key: &str) -> Option<String> {
    lines
        .iter()
        .filter(|l| l.kind == "NOTE")
        .find_map(|l| l.get(key))
        .map(|v| v.replace('_', " "))
}

/// Why a Kafka figure is missing.
fn missing(lines: &[Line]) -> String {
    note(lines, "kafka_skipped").map_or("not run".to_owned(), |r| format!("skipped: {r}"))
}

fn rounds(v: &[&Line]) -> String {
    match v.len() {
        1 => "1 run".to_owned(),
        n => format!("mean of {n} rounds"),
    }
}

/// `ours ÷ kafka` of the mean of `key`, against `bound` (at least).
fn ratio(
    lines: &[Line],
    what: String,
    ours: &[&Line],
    kafka: &[&Line],
    key: &str,
    bound: f64,
) -> Row {
    let bound_text = format!("≥ {bound:.2}×");
    if ours.is_empty() {
        let why = if kafka.is_empty() {
            missing(lines)
        } else {
            "not run".to_owned()
        };
        return Row::missing(what, why, bound_text);
    }
    if kafka.is_empty() {
        return Row::missing(
            what,
            format!(
                "{} (log-server {} records/s, {})",
                missing(lines),
                format_num(mean(ours, key)),
                rounds(ours)
            ),
            bound_text,
        );
    }
    let (a, b) = (mean(ours, key), mean(kafka, key));
    if b <= 0.0 {
        return Row::missing(what, "Kafka's figure is 0".into(), bound_text);
    }
    let r = a / b;
    let mut row = Row::bounded(
        what,
        r,
        bound,
        true,
        format!(
            "{r:.2}× (log-server {}, Kafka {} records/s; {} each)",
            format_num(a),
            format_num(b),
            rounds(ours)
        ),
    );
    row.bound = bound_text;
    row
}

/// The Kafka peer rows (see the module docs).
pub(super) fn rows(lines: &[Line]) -> Vec<Row> {
    let ran = lines.iter().any(|l| {
        l.get("scenario").is_some_and(|s| s.starts_with("kafka-"))
            || l.get("kafka_skipped").is_some()
    });
    if !ran {
        return vec![Row::missing(
            "Kafka peer: log-server's Kafka listener ÷ Apache Kafka (produce, p99, consume, RSS)",
            "not run (`cargo xtask bench --peer kafka`)".into(),
            "-".into(),
        )];
    }
    let mut out = Vec::new();
    for (size, label) in SIZES {
        let ours = results(lines, "log-server", PRODUCE, size);
        let kafka = results(lines, "kafka", PRODUCE, size);
        out.push(ratio(
            lines,
            format!(
                "Kafka producer {label}, acks=all (ProducerPerformance, batch.size 1 MiB, linger.ms 5): \
                 log-server records/s (fdatasync) ÷ Kafka records/s (page cache, no fsync)"
            ),
            &ours,
            &kafka,
            "append_rps",
            1.0,
        ));
        let what = format!(
            "Kafka producer {label}, acks=all: log-server p99 µs (fdatasync) vs Kafka's (no fsync), worst round of each"
        );
        out.push(match (ours.is_empty(), kafka.is_empty()) {
            (false, false) => {
                let (a, b) = (worst(&ours, "lat_p99_us"), worst(&kafka, "lat_p99_us"));
                let mut row = Row::bounded(what, a, b, false, format!("{a:.0} vs Kafka's {b:.0}"));
                row.bound = format!("≤ Kafka's ({b:.0})");
                row
            }
            (false, true) => Row::missing(
                what,
                format!(
                    "{} (log-server {:.0})",
                    missing(lines),
                    worst(&ours, "lat_p99_us")
                ),
                "≤ Kafka's".into(),
            ),
            (true, _) => Row::missing(what, missing(lines), "≤ Kafka's".into()),
        });
        let (ours, kafka) = (
            results(lines, "log-server", CONSUME, size),
            results(lines, "kafka", CONSUME, size),
        );
        let mut row = ratio(
            lines,
            format!(
                "Kafka consumer {label} (the same Java consumer against both: assign + seekToBeginning, \
                 ConsumerPerformance's settings): log-server records/s ÷ Kafka records/s"
            ),
            &ours,
            &kafka,
            "read_rps",
            1.2,
        );
        // The client's own CPU over the read: its polling thread (which
        // fetches and decodes) near one core says the client, not the
        // server, bounds the rate.
        let cores = |v: &[&Line], key: &str| {
            let with: Vec<&Line> = v.iter().copied().filter(|l| l.get(key).is_some()).collect();
            (!with.is_empty()).then(|| mean(&with, key))
        };
        if let (Some(a), Some(b)) = (cores(&ours, "client_cores"), cores(&kafka, "client_cores")) {
            let poll = match (
                cores(&ours, "client_poll_cores"),
                cores(&kafka, "client_poll_cores"),
            ) {
                (Some(pa), Some(pb)) => format!(" (poll thread {pa:.2}, {pb:.2})"),
                _ => String::new(),
            };
            row.measured.push_str(&format!(
                "; consumer JVM CPU {a:.2} cores against log-server, {b:.2} against Kafka{poll}"
            ));
        }
        out.push(row);
    }
    let rss = |system: &str| {
        lines
            .iter()
            .find(|l| {
                l.kind == "EXTRA"
                    && l.get("scenario") == Some("kafka-peer")
                    && l.get("system") == Some(system)
            })
            .map(|l| l.num("rss_kb_max"))
            .filter(|&kb| kb > 0.0)
    };
    let what = "RSS after the produce runs (/proc/PID/status VmRSS, largest of each; Kafka's is the JVM's, 1 GiB heap): log-server ÷ Kafka";
    let mib = |kb: f64| format!("{:.1} MiB", kb / 1024.0);
    out.push(match (rss("log-server"), rss("kafka")) {
        (Some(a), Some(b)) => {
            let r = a / b;
            let mut row = Row::bounded(
                what,
                r,
                0.25,
                false,
                format!("{r:.3}× (log-server {}, Kafka {})", mib(a), mib(b)),
            );
            row.bound = "≤ 0.25×".into();
            row
        }
        (Some(a), None) => Row::missing(
            what,
            format!("{} (log-server {})", missing(lines), mib(a)),
            "≤ 0.25×".into(),
        ),
        (None, _) => Row::missing(what, missing(lines), "≤ 0.25×".into()),
    });
    // ConsumerPerformance subscribes with a group: a reference, with why
    // ours has no figure.
    let side = |system: &str| {
        let figures: Vec<String> = SIZES
            .iter()
            .filter_map(|(size, label)| {
                let v = results(lines, system, GROUP, size);
                (!v.is_empty())
                    .then(|| format!("{label} {} records/s", format_num(mean(&v, "read_rps"))))
            })
            .collect();
        if figures.is_empty() {
            let key = format!("kafka_consumer_perf_{}", system.replace('-', "_"));
            note(lines, &key).map_or_else(|| missing(lines), |r| format!("skipped: {r}"))
        } else {
            figures.join(", ")
        }
    };
    out.push(Row {
        what: "ConsumerPerformance (consumer group, fetch phase without the join; reference)"
            .into(),
        measured: format!(
            "Kafka: {}; log-server: {}",
            side("kafka"),
            side("log-server")
        ),
        bound: "-".into(),
        met: "-",
    });
    out
}

/// The paragraph under the targets table saying how the Kafka rows were
/// measured, or nothing when the step did not run.
pub(super) fn section(lines: &[Line]) -> String {
    let any = lines
        .iter()
        .any(|l| l.get("scenario").is_some_and(|s| s.starts_with("kafka-")));
    if !any {
        return String::new();
    }
    let version = note(lines, "kafka_version").unwrap_or_else(|| "?".into());
    format!(
        "The Kafka rows come from the `kafka` step (`cargo xtask bench --peer kafka`): Apache Kafka \
         {version} from Maven Central jars, one KRaft broker + controller on loopback (1 GiB heap, \
         `kafka-server-start.sh`'s JVM settings), and `log-server --kafka-listen`, each fresh for every \
         run (a cold JVM for Kafka), one 1-partition topic, run alternately (A B A B, Kafka first, \
         `round` below) with the same client: `ProducerPerformance --throughput -1 --producer-props \
         acks=all batch.size=1048576 linger.ms=5` (latency per record, send to ack, in whole ms), then \
         the records read back by `xtask/kafka/Consume.java` and by `ConsumerPerformance`. Durability \
         differs: Kafka's `acks=all` on one broker answers once the batch is in its page cache \
         (`durability=page-cache`: no fsync, lost on power loss); ours answers after fdatasync \
         (`durability=fdatasync`). MB = 10^6 bytes of record values.\n\n"
    )
}
