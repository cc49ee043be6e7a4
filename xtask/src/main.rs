//! Project automation, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! It drives `cargo` and other tools as subprocesses and links no crate of
//! the workspace, so it builds in seconds and never goes stale against them.
//! It does not install toolchains or system packages: that is `.ci/run`'s job
//! (one exception: `cargo xtask bench` installs Debian's `redis-server` for
//! its Redis peer step when missing; `--peer kafka` downloads Kafka's jars
//! with Maven, which it does not install).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout)]

mod bench;

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// The environment variable that lets golden-file tests rewrite their files.
const FIXTURES_ENV: &str = "LOG_UPDATE_FIXTURES";

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci          cargo fmt --check, cargo clippy (all targets, -D warnings), cargo test
              (all targets, benches once in test mode, doctests), cargo doc
  fixtures    regenerate the golden files under */tests/data/ and the sample data
              directory log-storage/tests/data/v2/sample-store (sets LOG_UPDATE_FIXTURES=1)
  bench       release build, criterion suites, end-to-end scenarios against a real
              log-server (peer, pipelined, producers, small-writers, fanout,
              partitions), Redis appendfsync always beside small-writers,
              recovery after kill -9; report in target/bench-report/
              [--quick] [--scenario NAME]... [--no-criterion] [--no-redis]
              [--n N] [--size B] [--batch N] [--ack durable|written] ...
              --peer kafka: only Apache Kafka (jars from Maven Central; needs
              java and mvn, else skipped) against our Kafka listener, same
              Java client, A B A B (100 B and 1 KiB; --n N, --size B;
              --quick: small N); never part of the default run
  help        print this text
";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("fixtures") => fixtures(),
        Some("bench") => bench::bench(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Formatting, lints and the whole test suite, in the order that fails fastest.
fn ci() -> Result<(), String> {
    cargo(&["fmt", "--all", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // `--all-targets` also runs every criterion bench once, in test mode,
    // so the benches cannot rot; it skips doctests, which run next.
    cargo(&["test", "--workspace", "--all-targets", "--locked"], &[])?;
    cargo(&["test", "--workspace", "--doc", "--locked"], &[])?;
    // Doc links and examples are part of the spec in `log-format`.
    cargo(
        &["doc", "--workspace", "--no-deps", "--locked"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    Ok(())
}

/// Rewrites every golden file by running the golden tests in write mode.
fn fixtures() -> Result<(), String> {
    cargo(
        &[
            "test",
            "--locked",
            "-p",
            "log-format",
            "-p",
            "log-index",
            "-p",
            "log-storage",
            "--test",
            "golden",
        ],
        &[(FIXTURES_ENV, "1")],
    )?;
    println!("fixtures rewritten; review them with `git diff --stat`");
    Ok(())
}

/// Runs `cargo ARGS` at the workspace root with extra environment variables.
pub(crate) fn cargo(args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(&root)
        .status()
        .map_err(|err| format!("cannot run cargo in {}: {err}", root.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed with {status}", args.join(" ")))
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}
