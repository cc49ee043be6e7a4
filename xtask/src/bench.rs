//! `cargo xtask bench`: the benchmark suite.
//!
//! 1. builds `log-server` and `log-loadgen` in release;
//! 2. runs the criterion suites of `benches/` (in `--quick` mode once each,
//!    to prove they work; otherwise measured, and `log-loadgen criterion`
//!    turns their estimates into `CRITERION` lines);
//! 3. for each scenario starts a fresh `log-server` on 127.0.0.1 with a new
//!    data directory and drives it with `log-loadgen`, collecting its
//!    `RESULT` and `EXTRA` lines;
//!    the server's CPU time (`/proc/PID/stat` utime + stime) is read before
//!    and after each run and appended to its `RESULT` line
//!    (`server_cpu_ticks`, `clk_tck`, `server_cpu_us_per_record`, and
//!    `server_stime_ticks`, the kernel's part); each `small-writers` run
//!    is followed by one more with `perf` attached (`small-writers-profiled`:
//!    the server's system calls, `sys_NAME=COUNT` from [`syscalls`], and its
//!    CPU profile, `prof_*` from `profile`, when `perf` can), apart from
//!    the measured rounds because perf slows the server by about a quarter;
//! 4. the `redis` peer step ([`redis`]): Redis with `appendfsync always`
//!    driven by `redis-benchmark` like `small-writers`, run A B A B with
//!    it (`round=1`, `round=2` on both lines); skipped, with the reason
//!    printed and recorded, when Redis cannot be installed;
//! 5. recovery: fills a log, kills the server with SIGKILL, restarts it and
//!    times until it serves;
//! 6. only when asked (`--peer kafka`, which alone runs nothing else but
//!    the machine lines and fsync probes): the `kafka` peer step
//!    ([`kafka`]), Apache Kafka downloaded from Maven Central against our
//!    Kafka listener, `ProducerPerformance` and two consumers A B A B;
//!    skipped, with the reason printed and recorded, without Java, Maven
//!    or the download;
//! 7. writes `target/bench-report/` (`results.txt`, then `log-loadgen
//!    report` turns it into `report.md`, `results.json` and SVG plots).
//!
//! Loopback only; nothing is downloaded but Debian's `redis-server` package
//! when missing and, for `--peer kafka`, Kafka's jars. It asserts no timing: numbers are reported, never checked.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{cargo, workspace_root};

mod kafka;
mod perf;
mod profile;
mod redis;
mod round;
mod scale;
mod server;
mod syscalls;

use round::{TRIED, cpu_pairs, cpu_ticks, profiled, scenario, tried};
use scale::{recovery, scale};

/// Rounds of the `small-writers` / `redis` comparison (A B A B).
const REDIS_ROUNDS: u32 = 2;

/// One run of the load generator against a fresh server.
#[derive(Clone)]
struct Run {
    scenario: &'static str,
    args: Vec<String>,
}

struct Options {
    quick: bool,
    only: Vec<String>,
    criterion: bool,
    redis: bool,
    /// The scenarios, scale and recovery steps (off for `--peer` alone).
    suite: bool,
    /// The `kafka` peer step (`--peer kafka`).
    kafka: bool,
    overrides: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        quick: false,
        only: Vec::new(),
        criterion: true,
        redis: true,
        suite: true,
        kafka: false,
        overrides: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => options.quick = true,
            "--no-criterion" => options.criterion = false,
            "--no-redis" => options.redis = false,
            "--peer" => match it.next().map(String::as_str) {
                Some("kafka") => options.kafka = true,
                Some(other) => return Err(format!("unknown peer `{other}` (known: kafka)")),
                None => return Err("--peer needs a name (kafka)".into()),
            },
            "--scenario" => {
                let name = it.next().ok_or("--scenario needs a name")?;
                options.only.push(name.clone());
            }
            "--n" | "--size" | "--batch" | "--ack" | "--in-flight" | "--producers"
            | "--writers" | "--subscribers" | "--partitions" => {
                let value = it.next().ok_or(format!("{arg} needs a value"))?;
                options.overrides.push(arg.clone());
                options.overrides.push(value.clone());
            }
            other => return Err(format!("unknown bench argument `{other}`")),
        }
    }
    if options.kafka && options.only.is_empty() {
        // `--peer kafka` alone runs the peer step alone.
        options.criterion = false;
        options.redis = false;
        options.suite = false;
    }
    if !options.only.is_empty() {
        options.criterion = false;
        // `--scenario redis` runs the comparison: small-writers and Redis.
        options.redis = options.redis && options.only.iter().any(|s| s == "redis");
        if options.redis {
            options.only.push("small-writers".to_owned());
        }
    }
    Ok(options)
}

/// The scenario runs, full or quick.
fn runs(quick: bool) -> Vec<Run> {
    let n = |full: u64, small: u64| if quick { small } else { full }.to_string();
    let run = |scenario: &'static str, args: &[&str]| Run {
        scenario,
        args: args.iter().map(|s| (*s).to_owned()).collect(),
    };
    let mut out = Vec::new();
    for (size, ack, count) in [
        ("100", "durable", n(1_000_000, 20_000)),
        ("100", "written", n(1_000_000, 20_000)),
        ("1024", "durable", n(1_000_000, 5_000)),
        // The request path without the fdatasync: what bounds the row above.
        ("1024", "written", n(1_000_000, 5_000)),
    ] {
        let mut r = run("peer", &["--size", size, "--ack", ack, "--batch", "1000"]);
        r.args.extend(["--n".to_owned(), count]);
        out.push(r);
    }
    let mut r = run(
        "pipelined",
        &["--size", "100", "--ack", "durable", "--in-flight", "8"],
    );
    r.args.extend(["--n".to_owned(), n(2_000_000, 20_000)]);
    out.push(r);
    let mut r = run(
        "producers",
        &["--size", "100", "--ack", "durable", "--producers", "4"],
    );
    r.args.extend(["--n".to_owned(), n(2_000_000, 20_000)]);
    out.push(r);
    let mut r = run(
        "small-writers",
        &[
            "--size",
            "100",
            "--ack",
            "durable",
            "--writers",
            "64",
            "--batch",
            "1",
            "--rpc",
            "stream",
        ],
    );
    r.args.extend(["--n".to_owned(), n(200_000, 2_000)]);
    // The same writers acked after write(2): the request path's own
    // ceiling, which bounds the DURABLE figure above.
    let mut written = r.clone();
    let ack = written
        .args
        .iter()
        .position(|a| a == "durable")
        .expect("the run names its ack");
    written.args[ack] = "written".to_owned();
    out.push(r);
    out.push(written);
    let mut r = run(
        "fanout",
        &[
            "--size",
            "100",
            "--ack",
            "written",
            "--subscribers",
            "4",
            "--in-flight",
            "8",
        ],
    );
    r.args.extend(["--n".to_owned(), n(1_000_000, 20_000)]);
    out.push(r);
    let mut r = run("partitions", &["--size", "100", "--ack", "durable"]);
    r.args.extend([
        "--partitions".to_owned(),
        n(1000, 200),
        "--n".to_owned(),
        n(10_000, 2_000),
        "--batch".to_owned(),
        "10".to_owned(),
    ]);
    out.push(r);
    // Consumer groups: 4 members over 8 partitions while a producer
    // writes; one is killed with SIGKILL.
    // A cleaning pass beside DURABLE producers (issue 15).
    let mut r = run(
        "clean-load",
        &["--size", "100", "--writers", "8", "--batch", "10"],
    );
    r.args.extend([
        "--n".to_owned(),
        n(2_000_000, 50_000),
        "--seconds".to_owned(),
        if quick { "1" } else { "5" }.to_owned(),
    ]);
    out.push(r);
    out.push(run(
        "group-rebalance",
        &[
            "--size",
            "100",
            "--partitions",
            "8",
            "--members",
            "4",
            "--seconds",
            if quick { "1" } else { "5" },
        ],
    ));
    out
}

pub(crate) fn bench(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let started = Instant::now();
    let root = workspace_root();
    // Before the build, which raises it.
    let load_before_build = load_average();
    cargo(
        &[
            "build",
            "--release",
            "--locked",
            "-p",
            "log-server",
            "-p",
            "benches",
            "--bins",
        ],
        &[],
    )?;
    let report_dir = root.join("target").join("bench-report");
    std::fs::create_dir_all(&report_dir)
        .map_err(|e| format!("cannot create {}: {e}", report_dir.display()))?;
    let data_root = root.join("target").join("bench-data");
    let mut lines = machine_lines(options.quick, &load_before_build);
    lines.push(fsync_probe(&data_root, "fdatasync")?);

    if options.criterion {
        eprintln!(
            "== criterion suites{}",
            if options.quick {
                " (once each: --quick)"
            } else {
                ""
            }
        );
        let mut args = vec!["bench", "--locked", "-p", "benches"];
        if options.quick {
            args.extend(["--", "--test"]);
        }
        cargo(&args, &[])?;
        if !options.quick {
            lines.extend(criterion_lines(&root)?);
        }
        lines.push(format!(
            "NOTE criterion={}",
            if options.quick {
                "test-mode"
            } else {
                "target/criterion"
            }
        ));
    }

    let bin = root.join("target").join("release");
    let server = bin.join("log-server");
    let loadgen = bin.join("log-loadgen");
    let redis = if options.redis {
        match redis::find() {
            Ok(redis) => Some(redis),
            Err(reason) => {
                eprintln!("== redis: skipped: {reason}");
                lines.push(format!(
                    "NOTE redis_skipped={}",
                    reason.split_whitespace().collect::<Vec<_>>().join("_")
                ));
                None
            }
        }
    } else {
        None
    };
    let runs = if options.suite {
        runs(options.quick)
    } else {
        Vec::new()
    };
    for run in runs {
        if !options.only.is_empty() && !options.only.iter().any(|s| s == run.scenario) {
            continue;
        }
        let mut args = run.args.clone();
        args.extend(options.overrides.iter().cloned());
        let durable = !args.iter().any(|a| a == "written");
        match (&redis, run.scenario) {
            (Some(redis), "small-writers") if durable => {
                // A B A B: both systems see the same machine state.
                let workload = redis::Workload {
                    n: last_value(&args, "--n").unwrap_or(200_000),
                    size: last_value(&args, "--size").unwrap_or(100),
                    clients: last_value(&args, "--writers").unwrap_or(64),
                };
                let mut redis_failed = false;
                for round in 1..=REDIS_ROUNDS {
                    lines.extend(scenario(
                        &server,
                        &loadgen,
                        &data_root,
                        run.scenario,
                        &args,
                        Some(round),
                        &[],
                    )?);
                    for lever in TRIED {
                        lines.extend(tried(&server, &loadgen, &data_root, &args, round, lever)?);
                    }
                    if redis_failed {
                        continue;
                    }
                    eprintln!(
                        "== redis round {round}: redis-benchmark -c {} -P 1 -n {} XADD mystream * field <{} B>, appendfsync always",
                        workload.clients, workload.n, workload.size
                    );
                    // Redis is the yardstick, not the product: a failure of
                    // its step is reported, and the suite goes on.
                    match redis::run(redis, &data_root.join("redis"), &workload, round) {
                        Ok(line) => lines.push(line),
                        Err(reason) => {
                            eprintln!("== redis: round {round} failed: {reason}");
                            lines.push(format!(
                                "NOTE redis_skipped=round_{round}_failed:_{}",
                                reason.split_whitespace().collect::<Vec<_>>().join("_")
                            ));
                            redis_failed = true;
                        }
                    }
                }
                lines.extend(profiled(&server, &loadgen, &data_root, &args)?);
            }
            _ => {
                lines.extend(scenario(
                    &server,
                    &loadgen,
                    &data_root,
                    run.scenario,
                    &args,
                    None,
                    &[],
                )?);
                if run.scenario == "small-writers" {
                    lines.extend(profiled(&server, &loadgen, &data_root, &args)?);
                }
            }
        }
    }

    let step = |name: &str| {
        options.suite && (options.only.is_empty() || options.only.iter().any(|s| s == name))
    };
    if step("scale") {
        lines.extend(scale(&server, &loadgen, &data_root, options.quick)?);
    }
    if step("recovery") {
        lines.extend(recovery(&server, &loadgen, &data_root, options.quick)?);
    }

    if options.kafka {
        lines.extend(kafka_step(&root, &server, &loadgen, &data_root, &options)?);
    }

    lines.push(fsync_probe(&data_root, "fdatasync_end")?);

    let results = report_dir.join("results.txt");
    std::fs::write(&results, lines.join("\n") + "\n")
        .map_err(|e| format!("cannot write {}: {e}", results.display()))?;
    let status = Command::new(&loadgen)
        .arg("report")
        .arg(&report_dir)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", loadgen.display()))?;
    if !status.success() {
        return Err(format!("log-loadgen report failed with {status}"));
    }
    println!(
        "bench done in {} s; report: {}",
        started.elapsed().as_secs(),
        report_dir.join("report.md").display()
    );
    Ok(())
}

/// The `kafka` peer step, or the NOTE saying why it was skipped.
fn kafka_step(
    root: &Path,
    server: &Path,
    loadgen: &Path,
    data_root: &Path,
    options: &Options,
) -> Result<Vec<String>, String> {
    let workloads = kafka::workloads(
        options.quick,
        last_value(&options.overrides, "--n"),
        last_value(&options.overrides, "--size"),
    );
    match kafka::prepare(root) {
        Ok(kit) => kafka::run(&kit, server, loadgen, data_root, &workloads),
        Err(reason) => {
            eprintln!("== kafka: skipped: {reason}");
            Ok(vec![kafka::skipped(&reason)])
        }
    }
}

/// The last value of option `name` in `args`, parsed.
fn last_value<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.windows(2)
        .rev()
        .find(|w| w[0] == name)
        .and_then(|w| w[1].parse().ok())
}

/// The `CRITERION` and `EXTRA` lines (`log-loadgen criterion`) of the
/// suites just run.
fn criterion_lines(root: &Path) -> Result<Vec<String>, String> {
    let loadgen = root.join("target").join("release").join("log-loadgen");
    let output = Command::new(&loadgen)
        .arg("criterion")
        .arg(root.join("target").join("criterion"))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", loadgen.display()))?;
    if !output.status.success() {
        return Err(format!(
            "log-loadgen criterion failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(report_lines(&String::from_utf8_lossy(&output.stdout)))
}

/// The lines of `log-loadgen criterion`'s output the report reads: the
/// `CRITERION` figures and the `EXTRA` lines some suites leave beside them
/// (the group-commit bench's syncs and latencies).
fn report_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.starts_with("CRITERION ") || l.starts_with("EXTRA "))
        .map(str::to_owned)
        .collect()
}

/// The 1-minute load average (`/proc/loadavg`), or an empty string.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Lines describing the machine and the run.
fn machine_lines(quick: bool, load_before_build: &str) -> Vec<String> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().replace(' ', "_"))
        .unwrap_or_default();
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let load = load_average();
    let date = Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%dT%H:%M:%SZ")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    vec![format!(
        "MACHINE cpus={cpus} mem_kb={mem_kb} cpu={cpu} kernel={kernel} load1_before_build={load_before_build} load1={load} date={date} mode={}",
        if quick { "quick" } else { "full" }
    )]
}

/// The disk's current durable-write latency: 200 appends of 100 bytes, each
/// followed by `fdatasync`, on the file system the servers use. Printed with
/// every report, since every durable figure depends on it.
/// `prefix` starts its keys: `fdatasync` for the probe before the first
/// scenario, `fdatasync_end` for the one after the last, so the report can
/// say whether the disk changed during the run.
fn fsync_probe(dir: &Path, prefix: &str) -> Result<String, String> {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut micros = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        file.write_all(&[7u8; 100])
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("fsync probe: {e}"))?;
        micros.push(started.elapsed().as_micros());
    }
    let _ = std::fs::remove_file(&path);
    micros.sort_unstable();
    let line = format!(
        "MACHINE {prefix}_100b_p50_us={} {prefix}_100b_p99_us={}",
        micros[micros.len() / 2],
        micros[micros.len() * 99 / 100]
    );
    eprintln!("== {line}");
    Ok(line)
}

/// Runs the load generator; echoes and returns its RESULT/EXTRA lines.
fn loadgen_run(loadgen: &Path, args: &[String]) -> Result<Vec<String>, String> {
    let output = Command::new(loadgen)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", loadgen.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    if !output.status.success() {
        return Err(format!(
            "log-loadgen {} failed with {}",
            args.join(" "),
            output.status
        ));
    }
    Ok(stdout
        .lines()
        .filter(|l| l.starts_with("RESULT ") || l.starts_with("EXTRA "))
        .map(str::to_owned)
        .collect())
}

/// Stops `child` (named `what` in errors) with SIGTERM and waits for it;
/// SIGKILL if it has not exited 30 s later.
fn terminate(
    child: &mut std::process::Child,
    what: &str,
) -> Result<std::process::ExitStatus, String> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                return Err(format!("{what} did not stop within 30 s of SIGTERM"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::report_lines;

    #[test]
    fn the_extra_lines_of_the_criterion_suites_reach_the_report() {
        let out = "CRITERION id=a mean_ns=1\nEXTRA system=in-process scenario=group_commit_callbacks writers=64\nnoise\n";
        assert_eq!(
            report_lines(out),
            [
                "CRITERION id=a mean_ns=1",
                "EXTRA system=in-process scenario=group_commit_callbacks writers=64"
            ]
        );
    }
}
