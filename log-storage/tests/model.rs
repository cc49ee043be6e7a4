//! Model-based test: random sequences of appends (both ack levels), reads,
//! rolls, retention, delete-records, power losses and reopens, run against
//! the log on the simulated file system and against a plain in-memory
//! model, which must agree after every step.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use log_format::{BytesScanner, Limits, Scanned};
use log_storage::{Ack, AppendOptions, Isolation, Log, LogConfig, SimFs};
use proptest::prelude::*;

use common::Keep;

#[derive(Debug, Clone)]
enum Op {
    Append {
        records: u8,
        len: u16,
        durable: bool,
    },
    Read {
        at: u16,
    },
    Roll,
    Retention,
    DeleteRecords {
        fraction: u8,
    },
    Crash {
        seed: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (1u8..6, 1u16..400, any::<bool>()).prop_map(|(records, len, durable)| Op::Append { records, len, durable }),
        3 => any::<u16>().prop_map(|at| Op::Read { at }),
        1 => Just(Op::Roll),
        1 => Just(Op::Retention),
        1 => any::<u8>().prop_map(|fraction| Op::DeleteRecords { fraction }),
        1 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
        1 => Just(Op::Reopen),
    ]
}

fn config() -> LogConfig {
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.index_interval_bytes = 256;
    config.limits.max_batch_bytes = 4096;
    config.retention_max_bytes = Some(12 * 1024);
    config
}

/// The model: every record still stored, and what is known durable.
#[derive(Debug, Default)]
struct Model {
    records: BTreeMap<u64, Vec<u8>>,
    start: u64,
    end: u64,
    durable_end: u64,
}

fn value(n: u64, len: u16) -> Vec<u8> {
    let mut v = format!("v{n}:").into_bytes();
    v.resize(usize::from(len).max(v.len()), b'0' + (n % 10) as u8);
    v
}

/// The log start and every record from it to the log end.
fn read_all(log: &Log) -> (u64, BTreeMap<u64, Vec<u8>>) {
    let mut found = BTreeMap::new();
    let marks = common::read_written(log, Keep::FromLogStart, "reading the whole log", |o, v| {
        found.insert(o, v.unwrap().to_vec());
    });
    (marks.log_start, found)
}

fn run(ops: &[Op]) {
    let dir = Path::new("/m/p");
    let fs = SimFs::new();
    let mut log = Some(Log::open(Arc::new(fs.clone()), dir, config()).unwrap());
    let mut model = Model::default();
    let mut counter = 0u64;
    for op in ops {
        if log.is_none() {
            log = Some(Log::open(Arc::new(fs.clone()), dir, config()).unwrap());
        }
        let l = log.as_ref().unwrap();
        match *op {
            Op::Append {
                records,
                len,
                durable,
            } => {
                let mut values = Vec::new();
                for _ in 0..records {
                    counter += 1;
                    values.push(value(counter, len));
                }
                let ack = if durable { Ack::Durable } else { Ack::Written };
                let bytes = common::batch_of(0, &values, None);
                let appended = l
                    .append(
                        bytes,
                        AppendOptions {
                            ack,
                            ..AppendOptions::default()
                        },
                    )
                    .unwrap();
                assert_eq!(appended.base_offset, model.end);
                for v in values {
                    model.records.insert(model.end, v);
                    model.end += 1;
                }
                if durable {
                    model.durable_end = model.durable_end.max(appended.durable_end);
                    assert!(model.durable_end >= model.end);
                }
            }
            Op::Read { at } => {
                let span = model.end - model.start;
                let offset = model.start + if span == 0 { 0 } else { u64::from(at) % span };
                let result = l.read(offset, 2048, Isolation::Written).unwrap();
                for scanned in BytesScanner::new(result.batches, 0, Limits::unlimited()) {
                    let Scanned::Batch(batch) = scanned else {
                        panic!("bad batch served")
                    };
                    for record in batch.records().filter(|r| r.offset() >= offset) {
                        assert_eq!(
                            model.records.get(&record.offset()),
                            record.value().map(<[u8]>::to_vec).as_ref()
                        );
                    }
                }
            }
            Op::Roll => l.roll_now().unwrap(),
            Op::Retention => {
                let report = l.enforce_retention(i64::MAX).unwrap();
                model.start = model.start.max(report.log_start);
            }
            Op::DeleteRecords { fraction } => {
                let target = model.start + (model.end - model.start) * u64::from(fraction) / 255;
                let start = l.delete_records(target).unwrap();
                assert_eq!(start, target.max(model.start));
                model.start = start;
                model.durable_end = model.durable_end.max(target);
            }
            Op::Crash { seed } => {
                // The process dies with the power: drop the log first.
                drop(log.take());
                fs.crash(seed);
                let reopened = Log::open(Arc::new(fs.clone()), dir, config()).unwrap();
                let marks = reopened.watermarks();
                // Durable records survive; unsynced ones may or may not.
                assert!(marks.log_end >= model.durable_end, "lost durable records");
                assert!(marks.log_end <= model.end, "records from nowhere");
                model.end = marks.log_end;
                model.durable_end = marks.log_end;
                model.records.retain(|o, _| *o < marks.log_end);
                log = Some(reopened);
            }
            Op::Reopen => {
                let l = log.take().unwrap();
                l.close().unwrap();
                model.durable_end = model.end;
            }
        }
        if let Some(l) = log.as_ref() {
            let (start, found) = read_all(l);
            // Retention may run ahead of the model only through whole segments.
            assert!(start >= model.start);
            model.start = start;
            model.records.retain(|o, _| *o >= start);
            assert_eq!(found, model.records);
            assert_eq!(l.watermarks().log_end, model.end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn the_log_agrees_with_its_model(ops in proptest::collection::vec(op(), 1..60)) {
        run(&ops);
    }
}
