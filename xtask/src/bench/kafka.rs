//! The `kafka` peer step of `cargo xtask bench` (`--peer kafka`): Apache
//! Kafka itself against our Kafka listener, on this machine, driven by the
//! same Java client in the same run.
//!
//! It downloads Kafka from Maven Central alone (`xtask/kafka/pom.xml`:
//! `kafka_2.13`, `kafka-tools` and a log4j binding, copied with
//! `mvn -q dependency:copy-dependencies -DoutputDirectory=target/kafka-peer/lib
//! -DincludeScope=runtime`), then for each record size (100 B and 1 KiB)
//! and round (A B A B, Kafka first) starts a fresh server of each system on
//! free loopback ports: Kafka as one KRaft broker + controller
//! (`kafka.tools.StorageTool format --standalone`, then `kafka.Kafka` with
//! `kafka-server-start.sh`'s JVM settings, 1 GiB heap), ours as
//! `log-server --kafka-listen 127.0.0.1:PORT`. Against each it creates a
//! one-partition topic (`TopicCommand --create`), runs
//! `ProducerPerformance` (one producer, `acks=all`, `batch.size=1048576`,
//! `linger.ms=5`, `--throughput -1`), reads the server's RSS
//! (`/proc/PID/status` VmRSS; Kafka's is the JVM's) and CPU time, reads
//! the records back with `xtask/kafka/Consume.java` (`assign` +
//! `seekToBeginning`, ConsumerPerformance's settings, no group) and with
//! `ConsumerPerformance` itself, then stops the server (SIGTERM, then kill)
//! and removes its data. It prints and returns `RESULT` lines
//! (`scenario=kafka-producer-perf`, `kafka-consume`, `kafka-consumer-perf`;
//! `system=kafka` or `system=log-server`; `round=R`), an `EXTRA` line per
//! system with its largest RSS, and `NOTE` lines saying why something did
//! not run.
//!
//! Durability differs and every line says so: Kafka's `acks=all` on one
//! broker answers once the batch is in its page cache (`flush.messages` is
//! left at its default, no fsync: `durability=page-cache`); ours answers
//! after fdatasync (`durability=fdatasync`).
//!
//! What it does not do: run by default (it needs Java and Maven and takes
//! minutes), install Java or Maven (without either, or when the download
//! fails, the step is skipped and the reason printed and recorded), tune
//! Kafka beyond what one local broker needs, replicate, or judge the
//! figures (the report does). A failure on Kafka's side is recorded and the
//! step goes on with ours; a failure of ours is an error, except
//! `ConsumerPerformance` (it joins a consumer group), whose failure is
//! recorded as the reason of its missing line.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::redis::on_path;
use super::server::Server;
use super::{cpu_pairs, cpu_ticks};

mod broker;
mod parse;

use broker::Broker;
use parse::{parse_consumed, parse_consumer_perf, parse_producer, rss_kb};

/// Rounds of each system per record size (A B A B).
const ROUNDS: u32 = 2;
/// The producer settings both systems are driven with.
const PRODUCER_PROPS: [&str; 3] = ["acks=all", "batch.size=1048576", "linger.ms=5"];
/// The client tools' heap, as `kafka-producer-perf-test.sh` sets it.
const TOOL_HEAP: &str = "-Xmx512M";
/// The topic of every run (each run has a fresh server).
const TOPIC: &str = "bench";

/// One record size and how many records each run sends.
pub(super) struct Workload {
    pub(super) size: usize,
    pub(super) n: u64,
}

/// 100 B and 1 KiB records, full or quick; `n` and `size` (`--n`,
/// `--size`) override the count and keep only that size.
pub(super) fn workloads(quick: bool, n: Option<u64>, size: Option<usize>) -> Vec<Workload> {
    // Full: 10-30 s a produce run for either system on the 2-core machine
    // the bench is written for.
    [(100, 16_000_000, 20_000), (1024, 3_000_000, 5_000)]
        .into_iter()
        .filter(|(s, _, _)| size.is_none_or(|want| want == *s))
        .map(|(s, full, small)| Workload {
            size: s,
            n: n.unwrap_or(if quick { small } else { full }),
        })
        .collect()
}

/// The downloaded jars and what runs them.
pub(super) struct Kit {
    java: PathBuf,
    lib: PathBuf,
    consume: PathBuf,
    version: String,
}

/// Finds `java` and `mvn` and downloads Kafka's jars into
/// `target/kafka-peer/lib` (anew, so that no other version stays on the
/// class path). `Err` holds the reason to skip the step.
pub(super) fn prepare(root: &Path) -> Result<Kit, String> {
    let java = on_path("java").ok_or("java is not installed")?;
    let mvn = on_path("mvn").ok_or("mvn (Maven) is not installed")?;
    let pom = root.join("xtask").join("kafka").join("pom.xml");
    let consume = root.join("xtask").join("kafka").join("Consume.java");
    let dir = root.join("target").join("kafka-peer");
    let lib = dir.join("lib");
    let _ = std::fs::remove_dir_all(&lib);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    eprintln!("== kafka: downloading Apache Kafka's jars (mvn dependency:copy-dependencies)");
    let mut out_dir = OsString::from("-DoutputDirectory=");
    out_dir.push(&lib);
    let mut mvn = Command::new(mvn);
    mvn.args(["-q", "-B", "-f"])
        .arg(&pom)
        .arg("dependency:copy-dependencies")
        .arg(out_dir)
        .arg("-DincludeScope=runtime");
    let ran = run_bounded(&mut mvn, "mvn", Duration::from_secs(600), &dir)?;
    if !ran.status.success() {
        let last = ran
            .stdout
            .lines()
            .chain(ran.stderr.lines())
            .find(|l| l.contains("ERROR"))
            .unwrap_or("no error printed")
            .to_owned();
        return Err(format!(
            "downloading Kafka failed (mvn dependency:copy-dependencies exited with {}): {last}",
            ran.status
        ));
    }
    let version = std::fs::read_dir(&lib)
        .map_err(|e| format!("cannot read {}: {e}", lib.display()))?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            Some(
                name.strip_prefix("kafka_2.13-")?
                    .strip_suffix(".jar")?
                    .to_owned(),
            )
        })
        .ok_or("mvn copied no kafka_2.13 jar")?;
    Ok(Kit {
        java,
        lib,
        consume,
        version,
    })
}

impl Kit {
    /// `java -cp 'LIB/*' [jvm...] CLASS`: the JVM expands the wildcard.
    fn java(&self, jvm: &[&str], class: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut class_path = self.lib.clone().into_os_string();
        class_path.push("/*");
        let mut command = Command::new(&self.java);
        command.args(jvm).arg("-cp").arg(class_path).arg(class);
        command
    }

    /// A client tool of `kafka-tools`.
    fn tool(&self, class: &str) -> Command {
        self.java(&[TOOL_HEAP], class)
    }
}

/// What a bounded run printed.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `command` with its output in files `dir/NAME.out` and `.err` (no
/// pipe to fill), killed after `limit`.
fn run_bounded(
    command: &mut Command,
    name: &str,
    limit: Duration,
    dir: &Path,
) -> Result<Ran, String> {
    let (out, err) = (
        dir.join(format!("{name}.out")),
        dir.join(format!("{name}.err")),
    );
    let create =
        |p: &Path| File::create(p).map_err(|e| format!("cannot create {}: {e}", p.display()));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(create(&out)?)
        .stderr(create(&err)?)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{name} did not finish within {} s",
                    limit.as_secs()
                ));
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Ok(Ran {
        status,
        stdout: read(&out),
        stderr: read(&err),
    })
}

/// The last line of `text` that says what went wrong, for a reason.
fn last_error(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines
        .iter()
        .rev()
        .find(|l| l.contains("Exception") || l.contains("ERROR") || l.contains("rror"))
        .or(lines.last())
        .map_or("nothing printed".to_owned(), |l| {
            l.chars().take(300).collect()
        })
}

/// `reason` as a NOTE value: one word.
fn note_value(reason: &str) -> String {
    reason
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .replace('=', ":")
}

/// One system of the comparison.
struct System {
    name: &'static str,
    durability: &'static str,
    /// `version=…` for Kafka, empty for ours.
    version: String,
    rss_max_kb: u64,
    /// `ConsumerPerformance` failed against it (the reason is recorded
    /// once; it is not tried again).
    consumer_perf_failed: bool,
}

/// What every run of the step uses.
struct Step<'a> {
    kit: &'a Kit,
    /// `log-server` and `log-loadgen`.
    server: &'a Path,
    loadgen: &'a Path,
    /// Where each system's fresh data directory goes.
    root: PathBuf,
    /// The tools' output files (`NAME.out`, `NAME.err`), kept for a look
    /// after the run.
    tools: PathBuf,
}

/// Against a running server of `system` (`bootstrap`, process `pid`): the
/// topic, the produce run, RSS, both reads. Returns its lines.
fn measure(
    step: &Step<'_>,
    system: &mut System,
    bootstrap: &str,
    pid: u32,
    w: &Workload,
    round: u32,
) -> Result<Vec<String>, String> {
    let (kit, tools) = (step.kit, step.tools.as_path());
    let tag = format!("{}-{}-r{round}", system.name, w.size);
    let limit = Duration::from_secs(600);
    let mut create = kit.tool("org.apache.kafka.tools.TopicCommand");
    create
        .args([
            "--bootstrap-server",
            bootstrap,
            "--create",
            "--topic",
            TOPIC,
        ])
        .args(["--partitions", "1", "--replication-factor", "1"]);
    let ran = run_bounded(
        &mut create,
        &format!("create-{tag}"),
        Duration::from_secs(120),
        tools,
    )?;
    if !ran.status.success() {
        return Err(format!(
            "TopicCommand --create failed: {}",
            last_error(&(ran.stdout + &ran.stderr))
        ));
    }
    eprintln!(
        "== kafka round {round}: {}: ProducerPerformance --num-records {} --record-size {} {}",
        system.name,
        w.n,
        w.size,
        PRODUCER_PROPS.join(" ")
    );
    let mut produce = kit.tool("org.apache.kafka.tools.ProducerPerformance");
    produce
        .args(["--topic", TOPIC, "--num-records", &w.n.to_string()])
        .args(["--record-size", &w.size.to_string(), "--throughput", "-1"])
        .args([
            "--producer-props",
            &format!("bootstrap.servers={bootstrap}"),
        ])
        .args(PRODUCER_PROPS);
    let before = cpu_ticks(pid);
    let ran = run_bounded(&mut produce, &format!("produce-{tag}"), limit, tools)?;
    let after = cpu_ticks(pid);
    let rss = rss_kb(pid);
    let summary = parse_producer(&ran.stdout)
        .filter(|_| ran.status.success())
        .ok_or_else(|| {
            format!(
                "ProducerPerformance failed ({}): {}",
                ran.status,
                last_error(&(ran.stdout.clone() + &ran.stderr))
            )
        })?;
    if summary.records != w.n {
        return Err(format!(
            "ProducerPerformance sent {} of {} records",
            summary.records, w.n
        ));
    }
    let us = |ms: f64| format!("{:.0}", ms * 1000.0);
    let mut line = format!(
        "RESULT system={} scenario=kafka-producer-perf {}size={} batch=1MiB linger_ms=5 ack=all durability={} n={} \
         append_rps={:.0} append_mbps={:.1} lat_avg_us={} lat_max_us={} lat_p50_us={} lat_p95_us={} lat_p99_us={} \
         lat_p999_us={} read_rps=0 read_mbps=0",
        system.name,
        system.version,
        w.size,
        system.durability,
        summary.records,
        summary.rps,
        summary.rps * w.size as f64 / 1e6,
        us(summary.avg_ms),
        us(summary.max_ms),
        us(summary.p50_ms),
        us(summary.p95_ms),
        us(summary.p99_ms),
        us(summary.p999_ms),
    );
    if let Some(rss) = rss {
        line.push_str(&format!(" rss_kb={rss}"));
        system.rss_max_kb = system.rss_max_kb.max(rss);
    }
    if let (Some(before), Some(after)) = (before, after) {
        line.push_str(&cpu_pairs(after.saturating_sub(before), w.n));
    }
    line.push_str(&format!(" round={round}"));
    println!("{line}");
    let mut lines = vec![line];

    let mut consume = kit.java(&[TOOL_HEAP], &kit.consume);
    consume.args([bootstrap, TOPIC, &w.n.to_string()]);
    let before = cpu_ticks(pid);
    let ran = run_bounded(&mut consume, &format!("consume-{tag}"), limit, tools)?;
    let after = cpu_ticks(pid);
    let consumed = parse_consumed(&ran.stdout)
        .filter(|_| ran.status.success())
        .ok_or_else(|| {
            format!(
                "Consume.java failed ({}): {}",
                ran.status,
                last_error(&ran.stderr)
            )
        })?;
    let mut line = format!(
        "RESULT system={} scenario=kafka-consume client=assign {}size={} batch=- ack=all durability={} n={} \
         append_rps=0 append_mbps=0 lat_p50_us=- lat_p99_us=- read_rps={:.0} read_mbps={:.1}",
        system.name,
        system.version,
        w.size,
        system.durability,
        consumed.records,
        consumed.rps,
        consumed.mbps,
    );
    if let Some((ms, cores)) = consumed.cpu {
        line.push_str(&format!(" client_cpu_ms={ms:.0} client_cores={cores:.2}"));
    }
    if let Some((ms, cores)) = consumed.poll_cpu {
        line.push_str(&format!(
            " client_poll_cpu_ms={ms:.0} client_poll_cores={cores:.2}"
        ));
    }
    if let (Some(before), Some(after)) = (before, after) {
        line.push_str(&cpu_pairs(after.saturating_sub(before), consumed.records));
    }
    line.push_str(&format!(" round={round}"));
    println!("{line}");
    lines.push(line);

    if !system.consumer_perf_failed {
        let mut perf = kit.tool("org.apache.kafka.tools.ConsumerPerformance");
        perf.args([
            "--bootstrap-server",
            bootstrap,
            "--topic",
            TOPIC,
            "--messages",
            &w.n.to_string(),
        ]);
        let ran = run_bounded(&mut perf, &format!("consumer-perf-{tag}"), limit, tools)?;
        match parse_consumer_perf(&ran.stdout).filter(|c| ran.status.success() && c.records >= w.n)
        {
            Some(c) => {
                let line = format!(
                    "RESULT system={} scenario=kafka-consumer-perf client=group {}size={} batch=- ack=all durability={} \
                     n={} append_rps=0 append_mbps=0 lat_p50_us=- lat_p99_us=- read_rps={:.0} read_mbps={:.1} \
                     with_join_rps={:.0} join_ms={:.0} round={round}",
                    system.name,
                    system.version,
                    w.size,
                    system.durability,
                    c.records,
                    c.fetch_rps,
                    c.fetch_mibps * 1.048_576,
                    c.total_rps,
                    c.rebalance_ms,
                );
                println!("{line}");
                lines.push(line);
            }
            None => {
                let text = ran.stdout + &ran.stderr;
                let reason = if text.contains("JoinGroup failed due to unsupported version") {
                    "needs consumer-group membership: JoinGroup answered error 35, unsupported version"
                        .to_owned()
                } else {
                    format!("failed ({}): {}", ran.status, last_error(&text))
                };
                eprintln!(
                    "== kafka: ConsumerPerformance against {}: {reason}",
                    system.name
                );
                lines.push(format!(
                    "NOTE kafka_consumer_perf_{}={}",
                    system.name.replace('-', "_"),
                    note_value(&reason)
                ));
                system.consumer_perf_failed = true;
            }
        }
    }
    Ok(lines)
}

/// One round against Kafka: a fresh broker, [`measure`], stop.
fn kafka_round(
    step: &Step<'_>,
    system: &mut System,
    w: &Workload,
    round: u32,
) -> Result<Vec<String>, String> {
    let broker = Broker::start(step.kit, &step.root.join("kafka"), &step.tools)?;
    let lines = measure(
        step,
        system,
        &broker.bootstrap(),
        broker.child.id(),
        w,
        round,
    )?;
    broker.stop()?;
    Ok(lines)
}

/// One round against ours: a fresh `log-server` with its Kafka listener
/// on, [`measure`], stop.
fn ours_round(
    step: &Step<'_>,
    system: &mut System,
    w: &Workload,
    round: u32,
) -> Result<Vec<String>, String> {
    let data = step.root.join("log-server");
    let _ = std::fs::remove_dir_all(&data);
    let mut srv = Server::start_with_kafka(step.server, &data)?;
    srv.wait_ready(step.loadgen)?;
    let port = srv
        .kafka_port
        .ok_or("the server was started without its Kafka listener")?;
    let lines = measure(
        step,
        system,
        &format!("127.0.0.1:{port}"),
        srv.child.id(),
        w,
        round,
    )?;
    srv.stop()?;
    let _ = std::fs::remove_dir_all(&data);
    Ok(lines)
}

/// The whole step: for each workload, `ROUNDS` rounds of Kafka then ours.
/// A failure on Kafka's side is recorded (`NOTE kafka_skipped=…`) and ends
/// Kafka's part; one of ours is returned.
pub(super) fn run(
    kit: &Kit,
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    workloads: &[Workload],
) -> Result<Vec<String>, String> {
    let root = data_root.join("kafka-peer");
    let tools = root.join("tools");
    std::fs::create_dir_all(&tools)
        .map_err(|e| format!("cannot create {}: {e}", tools.display()))?;
    let step = Step {
        kit,
        server,
        loadgen,
        root: root.clone(),
        tools,
    };
    let mut kafka = System {
        name: "kafka",
        durability: "page-cache",
        version: format!("version={} ", kit.version),
        rss_max_kb: 0,
        consumer_perf_failed: false,
    };
    let mut ours = System {
        name: "log-server",
        durability: "fdatasync",
        version: String::new(),
        rss_max_kb: 0,
        consumer_perf_failed: false,
    };
    let mut lines = vec![format!(
        "NOTE kafka_version={} kafka_client=kafka-tools-{}",
        kit.version, kit.version
    )];
    let mut kafka_failed = false;
    for w in workloads {
        for round in 1..=ROUNDS {
            if !kafka_failed {
                match kafka_round(&step, &mut kafka, w, round) {
                    Ok(more) => lines.extend(more),
                    Err(reason) => {
                        eprintln!("== kafka: {} B round {round} failed: {reason}", w.size);
                        lines.push(format!(
                            "NOTE kafka_skipped=Kafka_{}_B_round_{round}_failed:_{}",
                            w.size,
                            note_value(&reason)
                        ));
                        kafka_failed = true;
                    }
                }
            }
            lines.extend(ours_round(&step, &mut ours, w, round)?);
        }
    }
    for system in [&kafka, &ours] {
        if system.rss_max_kb > 0 {
            let line = format!(
                "EXTRA system={} scenario=kafka-peer {}durability={} rss_kb_max={}{}",
                system.name,
                system.version,
                system.durability,
                system.rss_max_kb,
                if system.name == "kafka" {
                    " jvm_heap=1g"
                } else {
                    ""
                }
            );
            println!("{line}");
            lines.push(line);
        }
    }
    let _ = std::fs::remove_dir_all(root.join("kafka"));
    let _ = std::fs::remove_dir_all(root.join("log-server"));
    Ok(lines)
}

/// The NOTE line of a step skipped for `reason`.
pub(super) fn skipped(reason: &str) -> String {
    format!("NOTE kafka_skipped={}", note_value(reason))
}

#[cfg(test)]
mod tests {
    use super::{Workload, workloads};

    #[test]
    fn workloads_full_quick_and_overridden() {
        let sizes = |w: Vec<Workload>| w.iter().map(|w| (w.size, w.n)).collect::<Vec<_>>();
        assert_eq!(
            sizes(workloads(true, None, None)),
            [(100, 20_000), (1024, 5_000)]
        );
        assert_eq!(
            sizes(workloads(false, None, None)),
            [(100, 16_000_000), (1024, 3_000_000)]
        );
        assert_eq!(sizes(workloads(false, Some(7), Some(1024))), [(1024, 7)]);
    }
}
