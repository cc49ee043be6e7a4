//! Kafka RecordBatch v2 cross-check, our side: `gen DIR` writes the fixed
//! case set with our builder, `check DIR` reads every case of `DIR` (written
//! by kafka-python, kafka-clients, or us) with our decoder and compares it
//! field by field with its JSON.
//!
//! ```sh
//! cargo run -q -p log-format --example kafka_interop -- gen DIR
//! cargo run -q -p log-format --example kafka_interop -- check DIR
//! ```
//!
//! One line per case, then `ok N cases`; exit status 1 on any mismatch.
//! `.ci/interop` runs it against the other two implementations; the case
//! format and set are in `tests/common/cases.rs`.
#![allow(clippy::print_stdout)]

#[path = "../tests/common/cases.rs"]
mod cases;

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, dir) = match args.as_slice() {
        [cmd, dir] if cmd == "gen" || cmd == "check" => (cmd.as_str(), Path::new(dir)),
        _ => {
            eprintln!("usage: kafka_interop gen DIR | check DIR");
            return ExitCode::from(2);
        }
    };
    let report = if cmd == "gen" {
        cases::gen_dir(dir)
    } else {
        cases::check_dir(dir)
    };
    match report {
        Ok(report) => {
            for line in &report.lines {
                println!("{line}");
            }
            println!("{}", report.summary());
            if report.failed == 0 && report.cases > 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            println!("FAIL {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}
