//! `log-loadgen`: a load generator for a running `log-server`, speaking
//! gRPC through `log-client`. Each scenario creates its own topic, runs,
//! prints a human line and one machine-readable line:
//!
//! ```text
//! RESULT system=log-server scenario=peer size=100 batch=1000 ack=durable n=1000000 append_rps=… append_mbps=… lat_p50_us=… lat_p99_us=… read_rps=… read_mbps=… fsyncs=… loadgen_cpu_ticks=…
//! ```
//!
//! (rates over the wall time of the phase; MB = 10^6 bytes of record
//! payload; latency per batch from first send to ack, from an HDR
//! histogram; `fsyncs` = the server's group-commit fdatasyncs for the
//! scenario's topic; `loadgen_cpu_ticks` = this process's own CPU over the
//! scenario, user + system), plus an `EXTRA scenario=… key=value …` line for
//! figures of that scenario alone.
//!
//! Scenarios (`--scenario`): `peer` (one producer, one batch in flight,
//! then read everything back: the workload of `shared/PEERS.md`),
//! `pipelined` (`--in-flight` batches on one `ProduceStream`), `producers`
//! (`--producers` producers, one partition each), `small-writers`
//! (`--writers` writers of single records), `fanout` (one producer,
//! `--subscribers` subscribers tailing), `partitions` (`--partitions`
//! partitions, a few records each; with `--server-pid`, threads and memory
//! per idle partition), `ready` (waits until the server serves; prints the
//! time it took: the recovery figure when started right after the server),
//! `scale-fill` and `scale-read` (many partitions with many sealed
//! segments, for the open-files and restart figures; see `scale.rs`),
//! `group-rebalance` (`--members` group members over `--partitions`
//! partitions while a producer writes, one killed with SIGKILL: records/s
//! consumed and the rebalance time; see `group.rs`; its members are
//! processes of this binary, `group-member`), `clean-load` (producers'
//! latency before and during a cleaning pass of a compacted topic, and the
//! pass's MB/s; see `cleanload.rs`).
//!
//! `log-loadgen report DIR` turns `DIR/results.txt` (the lines above, as
//! collected by `cargo xtask bench`, which appends the server's CPU time
//! over the run to each `RESULT` line, `server_cpu_ticks=… clk_tck=…
//! server_cpu_us_per_record=…`, and `round=R` to the `small-writers` runs
//! it alternates with its `RESULT system=redis scenario=redis-always`
//! runs) into `report.md`, `results.json` and SVG plots.
//!
//! It starts no server: `cargo xtask bench` does, or point `--addr` at your
//! own deployment.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cleanload;
mod common;
mod criterion;
mod group;
mod report;
mod scale;
mod scenarios;
mod writers;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Drive a running log-server with a benchmark scenario.
#[derive(Debug, Parser)]
#[command(name = "log-loadgen", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write report.md, results.json and SVG plots from DIR/results.txt.
    Report {
        /// The report directory (holds results.txt).
        dir: PathBuf,
    },
    /// Print one CRITERION line per benchmark measured under DIR (criterion's
    /// target/criterion): mean time and throughput.
    Criterion {
        /// criterion's output directory.
        dir: PathBuf,
    },
}

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scenario {
    Peer,
    Pipelined,
    Producers,
    SmallWriters,
    Fanout,
    Partitions,
    Ready,
    ScaleFill,
    ScaleRead,
    GroupRebalance,
    GroupMember,
    CleanLoad,
}

impl Scenario {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scenario::Peer => "peer",
            Scenario::Pipelined => "pipelined",
            Scenario::Producers => "producers",
            Scenario::SmallWriters => "small-writers",
            Scenario::Fanout => "fanout",
            Scenario::Partitions => "partitions",
            Scenario::Ready => "ready",
            Scenario::ScaleFill => "scale-fill",
            Scenario::ScaleRead => "scale-read",
            Scenario::GroupRebalance => "group-rebalance",
            Scenario::GroupMember => "group-member",
            Scenario::CleanLoad => "clean-load",
        }
    }
}

/// Ack level of the produce requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AckArg {
    Durable,
    Written,
}

/// How small writers send their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RpcArg {
    /// Each writer keeps one `ProduceStream` open and sends its records on
    /// it one at a time, as a client with a long-lived session does.
    Stream,
    /// One unary `Produce` call per record.
    Unary,
}

/// Scenario settings.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Args {
    /// The server.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub(crate) addr: String,
    /// The scenario to run.
    #[arg(long, value_enum, default_value = "peer")]
    pub(crate) scenario: Scenario,
    /// Records to produce (in total).
    #[arg(long, default_value_t = 1_000_000)]
    pub(crate) n: u64,
    /// Bytes of payload per record.
    #[arg(long, default_value_t = 100)]
    pub(crate) size: usize,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    pub(crate) batch: u64,
    /// Ack level.
    #[arg(long, value_enum, default_value = "durable")]
    pub(crate) ack: AckArg,
    /// Batches in flight (pipelined, fanout).
    #[arg(long, default_value_t = 8)]
    pub(crate) in_flight: usize,
    /// Producers (producers).
    #[arg(long, default_value_t = 4)]
    pub(crate) producers: u32,
    /// Writers of single records (small-writers).
    #[arg(long, default_value_t = 64)]
    pub(crate) writers: u32,
    /// Connections the writers share (small-writers; 0: one per writer).
    /// Default 1: on 2 cores, more connections measured slower (1: 19.5 K
    /// acks/s, 8: 17.1 K, 64: 11.1 K).
    #[arg(long, default_value_t = 1)]
    pub(crate) connections: u32,
    /// How each small writer sends its records (small-writers).
    #[arg(long, value_enum, default_value = "stream")]
    pub(crate) rpc: RpcArg,
    /// Subscribers (fanout).
    #[arg(long, default_value_t = 4)]
    pub(crate) subscribers: u32,
    /// Partitions (partitions).
    #[arg(long, default_value_t = 1000)]
    pub(crate) partitions: u32,
    /// Sealed segments per partition (scale-fill).
    #[arg(long, default_value_t = 20)]
    pub(crate) segments: u64,
    /// The server's pid, to report its threads and memory (partitions).
    #[arg(long)]
    pub(crate) server_pid: Option<u32>,
    /// Keep the scenario's topic (to fill a log for a recovery run).
    #[arg(long)]
    pub(crate) keep: bool,
    /// Seconds to wait for the server (ready).
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout_secs: u64,
    /// Group members (group-rebalance).
    #[arg(long, default_value_t = 4)]
    pub(crate) members: u32,
    /// Seconds of each measuring window (group-rebalance).
    #[arg(long, default_value_t = 5)]
    pub(crate) seconds: u64,
    /// The group of a group member (group-member).
    #[arg(long)]
    pub(crate) group: Option<String>,
    /// The topic of a group member (group-member).
    #[arg(long)]
    pub(crate) topic: Option<String>,
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("log-loadgen: cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = match cli.command {
        Some(Command::Report { dir }) => report::write(&dir),
        Some(Command::Criterion { dir }) => criterion::print(&dir),
        None => runtime.block_on(scenarios::run(cli.args)),
    };
    if let Err(e) = result {
        eprintln!("log-loadgen: {e}");
        std::process::exit(1);
    }
}
