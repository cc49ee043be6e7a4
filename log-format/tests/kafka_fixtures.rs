//! Kafka RecordBatch v2 written by implementations nobody here wrote must
//! read back, field for field, as the JSON beside each batch says:
//!
//! - `data/v2/kafka-python/`: written by kafka-python's `DefaultRecordBatchBuilder`;
//! - `data/v2/java/`: written by kafka-clients' `MemoryRecordsBuilder`.
//!
//! Each case goes through `frame_kafka` (as a batch from a producer would)
//! and `Batch::decode`. The fixtures are regenerated and re-compared by
//! `.ci/interop`, which also checks our own batches with both libraries;
//! this test needs neither Python nor Java.
#![allow(clippy::unwrap_used)]

#[path = "common/cases.rs"]
mod cases;

use std::path::PathBuf;

use log_format::Codec;

fn fixtures(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/v2")
        .join(name)
}

fn check(name: &str) {
    let dir = fixtures(name);
    let report = cases::check_dir(&dir).unwrap();
    let failures: Vec<&String> = report
        .lines
        .iter()
        .filter(|l| l.starts_with("FAIL"))
        .collect();
    assert!(
        failures.is_empty(),
        "{}: {}\n{}",
        dir.display(),
        report.summary(),
        report.lines.join("\n")
    );
    // Every case of the set: a lost fixture must not pass unnoticed.
    let names: Vec<String> = cases::cases().into_iter().map(|c| c.name).collect();
    let (present, _) = cases::list_cases(&dir).unwrap();
    for n in &names {
        assert!(present.contains(n), "{}: case {n} missing", dir.display());
    }
}

#[test]
fn kafka_python_fixtures_read_back() {
    check("kafka-python");
}

#[test]
fn java_fixtures_read_back() {
    check("java");
}

/// Our own builder's batches read back through the same path, so a
/// mismatch in the fixtures points at the other library or at our reader.
#[test]
fn our_cases_read_back() {
    for case in cases::cases() {
        let (kafka, batch) = match cases::build_case(&case) {
            Ok(built) => built,
            Err(_) if case.codec != Codec::None => continue, // a codec our builder cannot write
            Err(e) => panic!("{}: {e}", case.name),
        };
        let json = cases::dump_json(&cases::case_json(&case, batch.header().codec));
        if let Err(errs) = cases::check_case(&kafka, &json) {
            panic!("{}: {}", case.name, errs.join("; "));
        }
    }
}
