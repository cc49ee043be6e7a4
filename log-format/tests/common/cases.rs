//! The Kafka interop exchange format, on our side: the fixed case set (the
//! same as `tests/interop/kafka_python.py` and `tests/interop/java/Check.java`),
//! writing a case directory with our builder (`gen`), and reading one back
//! with our decoder, field by field against its JSON (`check`).
//!
//! A case is `<case>.batch`, exactly one Kafka RecordBatch v2 (from
//! baseOffset on, baseOffset 0), and `<case>.json`:
//!
//! ```json
//! {"codec": "none", "producer_id": -1, "producer_epoch": -1, "base_sequence": -1,
//!  "base_timestamp": 1700000000000, "max_timestamp": 1700000000005,
//!  "records": [{"offset_delta": 0, "timestamp": 1700000000000, "key": "6b6579", "value": null,
//!               "headers": [{"key": "h", "value": "0102"}, {"key": "n", "value": null}]}]}
//! ```
//!
//! Keys, values and header values are lowercase hex or null; header keys
//! are UTF-8 strings. Included with `#[path]` by `tests/kafka_fixtures.rs`
//! and by `examples/kafka_interop.rs`.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use bytes::Bytes;
use log_format::{
    Batch, BatchBuilder, Codec, Limits, NewRecord, ProducerInfo, RecordHeader, frame_kafka,
};
use serde_json::{Value, json};

/// The first timestamp of most cases.
pub(crate) const BASE: i64 = 1_700_000_000_000;

/// One record of a case, owned.
#[derive(Debug, Clone)]
pub(crate) struct CaseRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
}

/// One case to generate.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) codec: Codec,
    pub(crate) producer: ProducerInfo,
    pub(crate) records: Vec<CaseRecord>,
}

fn rec(timestamp: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> CaseRecord {
    CaseRecord {
        timestamp,
        key: key.map(<[u8]>::to_vec),
        value: value.map(<[u8]>::to_vec),
        headers: Vec::new(),
    }
}

fn with_headers(mut r: CaseRecord, headers: &[(&str, Option<&[u8]>)]) -> CaseRecord {
    r.headers = headers
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.map(<[u8]>::to_vec)))
        .collect();
    r
}

fn keyed_100() -> Vec<CaseRecord> {
    (0..100)
        .map(|i| {
            let value = format!("value-{i:03}:{}", "payload ".repeat(8));
            rec(
                BASE + i,
                Some(format!("key-{i:03}").as_bytes()),
                Some(value.as_bytes()),
            )
        })
        .collect()
}

/// 40 records of 2 KiB: several snappy (xerial, 32 KiB) and lz4 (64 KiB)
/// blocks.
fn multiblock() -> Vec<CaseRecord> {
    (0..40)
        .map(|i| {
            let value = format!("record-{i:02} ").repeat(205);
            rec(
                BASE + i,
                Some(format!("key-{i:02}").as_bytes()),
                Some(&value.as_bytes()[..2048]),
            )
        })
        .collect()
}

/// The fixed case set, in the order the other implementations write it.
pub(crate) fn cases() -> Vec<Case> {
    let none = ProducerInfo::NONE;
    let case = |name: &str, codec, producer, records| Case {
        name: name.to_owned(),
        codec,
        producer,
        records,
    };
    let big: Vec<u8> = (0..1u32 << 20)
        .map(|j| (j.wrapping_mul(31).wrapping_add(7) & 0xff) as u8)
        .collect();
    let spread = [
        BASE,
        BASE - 1,
        BASE + 1000,
        BASE - 86_400_000,
        BASE + (1 << 40),
        0,
        BASE + 5,
    ];
    let mut out = vec![
        case(
            "uncompressed_single",
            Codec::None,
            none,
            vec![rec(BASE, Some(b"key"), Some(b"value"))],
        ),
        case("keyed_100", Codec::None, none, keyed_100()),
        case(
            "null_keys",
            Codec::None,
            none,
            (0..10)
                .map(|i| rec(BASE + i, None, Some(format!("value-{i}").as_bytes())))
                .collect(),
        ),
        case(
            "tombstones",
            Codec::None,
            none,
            (0..10)
                .map(|i| rec(BASE + i, Some(format!("key-{i}").as_bytes()), None))
                .collect(),
        ),
        case(
            "empty_key_value",
            Codec::None,
            none,
            vec![
                rec(BASE, Some(b""), Some(b"")),
                rec(BASE, Some(b""), None),
                rec(BASE, None, Some(b"")),
            ],
        ),
        case(
            "headers",
            Codec::None,
            none,
            vec![
                with_headers(
                    rec(BASE, Some(b"k0"), Some(b"v0")),
                    &[("h", Some(&[1, 2])), ("n", None)],
                ),
                with_headers(
                    rec(BASE + 1, Some(b"k1"), Some(b"v1")),
                    &[
                        ("ключ", Some("значение".as_bytes())),
                        ("日本語", Some(b"")),
                        ("emoji-🎉", Some(&[0x00, 0xff])),
                    ],
                ),
                rec(BASE + 2, Some(b"k2"), Some(b"v2")),
                with_headers(
                    rec(BASE + 3, Some(b"k3"), Some(b"v3")),
                    &[
                        ("dup", Some(b"1")),
                        ("dup", Some(b"2")),
                        ("", Some(b"empty key")),
                    ],
                ),
            ],
        ),
        case(
            "large_value_1mib",
            Codec::None,
            none,
            vec![rec(BASE, Some(b"big"), Some(&big))],
        ),
        case(
            "timestamps_spread",
            Codec::None,
            none,
            spread
                .iter()
                .enumerate()
                .map(|(i, &t)| rec(t, None, Some(format!("t{i}").as_bytes())))
                .collect(),
        ),
        case(
            "idempotent",
            Codec::None,
            ProducerInfo {
                producer_id: 42,
                producer_epoch: 3,
                base_sequence: 17,
            },
            (0..5)
                .map(|i| {
                    rec(
                        BASE + i,
                        Some(format!("k{i}").as_bytes()),
                        Some(format!("v{i}").as_bytes()),
                    )
                })
                .collect(),
        ),
    ];
    let codecs = [Codec::Gzip, Codec::Snappy, Codec::Lz4, Codec::Zstd];
    for codec in codecs {
        out.push(case(
            &format!("codec_{}", codec.name()),
            codec,
            none,
            keyed_100(),
        ));
    }
    for codec in codecs {
        out.push(case(
            &format!("codec_{}_multiblock", codec.name()),
            codec,
            none,
            multiblock(),
        ));
    }
    out
}

// ------------------------------------------------------------------ JSON

fn hex(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => Value::String(b.iter().fold(String::new(), |mut s, x| {
            let _ = write!(s, "{x:02x}");
            s
        })),
    }
}

fn record_json(
    offset_delta: u32,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: Vec<(&str, Option<&[u8]>)>,
) -> Value {
    json!({
        "offset_delta": offset_delta,
        "timestamp": timestamp,
        "key": hex(key),
        "value": hex(value),
        "headers": headers
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": hex(v)}))
            .collect::<Vec<_>>(),
    })
}

/// The fields of the header in the JSON, in the order they are written.
const HEADER_FIELDS: [&str; 6] = [
    "codec",
    "producer_id",
    "producer_epoch",
    "base_sequence",
    "base_timestamp",
    "max_timestamp",
];

/// The fields of a record in the JSON, in the order they are written.
const RECORD_FIELDS: [&str; 5] = ["offset_delta", "timestamp", "key", "value", "headers"];

/// What a decoded batch holds, in the exchange format.
pub(crate) fn batch_json(batch: &Batch) -> Value {
    let h = batch.header();
    let records: Vec<Value> = batch
        .records()
        .map(|r| {
            record_json(
                r.offset_delta(),
                r.timestamp(),
                r.key(),
                r.value(),
                r.headers().collect(),
            )
        })
        .collect();
    json!({
        "codec": h.codec.name(),
        "producer_id": h.producer_id,
        "producer_epoch": h.producer_epoch,
        "base_sequence": h.base_sequence,
        "base_timestamp": h.base_timestamp,
        "max_timestamp": h.max_timestamp,
        "records": records,
    })
}

/// What a case holds, in the exchange format, as written under `codec`.
pub(crate) fn case_json(case: &Case, codec: Codec) -> Value {
    let records: Vec<Value> = case
        .records
        .iter()
        .zip(0u32..)
        .map(|(r, i)| {
            record_json(
                i,
                r.timestamp,
                r.key.as_deref(),
                r.value.as_deref(),
                r.headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_deref()))
                    .collect(),
            )
        })
        .collect();
    json!({
        "codec": codec.name(),
        "producer_id": case.producer.producer_id,
        "producer_epoch": case.producer.producer_epoch,
        "base_sequence": case.producer.base_sequence,
        "base_timestamp": case.records[0].timestamp,
        "max_timestamp": case.records.iter().map(|r| r.timestamp).max(),
        "records": records,
    })
}

/// The layout all three implementations write: the header fields on one
/// line, then one record a line.
pub(crate) fn dump_json(doc: &Value) -> String {
    let d = |v: &Value| {
        // serde_json's compact form, with Python's separators.
        let mut out = String::new();
        write_spaced(v, &mut out);
        out
    };
    let head: Vec<String> = HEADER_FIELDS
        .iter()
        .map(|k| format!("\"{k}\": {}", d(&doc[*k])))
        .collect();
    let records: Vec<String> = doc["records"]
        .as_array()
        .map(|a| a.iter().map(|r| format!("  {}", d(r))).collect())
        .unwrap_or_default();
    format!(
        "{{{},\n \"records\": [\n{}\n]}}\n",
        head.join(", "),
        records.join(",\n")
    )
}

/// `v` as JSON with `", "` and `": "` between items, keys in the order of
/// [`RECORD_FIELDS`] for records.
fn write_spaced(v: &Value, out: &mut String) {
    match v {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_spaced(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let order: Vec<&str> = if map.contains_key("offset_delta") {
                RECORD_FIELDS.to_vec()
            } else {
                vec!["key", "value"]
            };
            out.push('{');
            for (i, k) in order.iter().filter(|k| map.contains_key(**k)).enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&Value::String((*k).to_owned()).to_string());
                out.push_str(": ");
                write_spaced(&map[*k], out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 80 {
        s
    } else {
        let head: String = s.chars().take(72).collect();
        format!("{head}... ({} chars)", s.chars().count())
    }
}

/// Every field of `want` (a case's JSON) that `got` (what was decoded)
/// does not match, as `field: expected X, got Y`.
pub(crate) fn mismatches(want: &Value, got: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let mut cmp = |field: String, w: &Value, g: &Value| {
        if w != g {
            errs.push(format!("{field}: expected {}, got {}", short(w), short(g)));
        }
    };
    for k in HEADER_FIELDS {
        cmp(k.to_owned(), &want[k], &got[k]);
    }
    let empty = Vec::new();
    let w = want["records"].as_array().unwrap_or(&empty);
    let g = got["records"].as_array().unwrap_or(&empty);
    cmp(
        "records (count)".to_owned(),
        &json!(w.len()),
        &json!(g.len()),
    );
    for (i, (wr, gr)) in w.iter().zip(g).enumerate() {
        for k in RECORD_FIELDS {
            cmp(format!("records[{i}].{k}"), &wr[k], &gr[k]);
        }
    }
    errs
}

// ------------------------------------------------------------------ check

/// The outcome of `check` or `gen` on a directory.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// One line per case (`ok   NAME ...`, `FAIL NAME: field: ...`, `skip ...`).
    pub(crate) lines: Vec<String>,
    /// Cases read or written.
    pub(crate) cases: usize,
    /// Cases that failed.
    pub(crate) failed: usize,
}

impl Report {
    /// The closing line: `ok N cases`, `FAIL M of N cases` or `FAIL no cases`.
    pub(crate) fn summary(&self) -> String {
        if self.cases == 0 {
            "FAIL no cases".to_owned()
        } else if self.failed == 0 {
            format!("ok {} cases", self.cases)
        } else {
            format!("FAIL {} of {} cases", self.failed, self.cases)
        }
    }
}

/// Reads one case with our library: `frame_kafka` (structure, CRC-32C,
/// dense offset deltas, limits), then `Batch::decode` of the frame, then
/// every field against the JSON. Ok: a summary of the batch.
pub(crate) fn check_case(kafka: &[u8], json_text: &str) -> Result<String, Vec<String>> {
    let want: Value =
        serde_json::from_str(json_text).map_err(|e| vec![format!("json: unreadable: {e}")])?;
    let limits = Limits::default();
    let frame = frame_kafka(kafka, &limits).map_err(|e| vec![format!("frame_kafka: {e}")])?;
    let batch = Batch::decode(frame, &limits).map_err(|e| vec![format!("Batch::decode: {e}")])?;
    let mut errs = Vec::new();
    if batch.kafka_batch() != kafka {
        errs.push("kafka_batch: the framed Kafka bytes differ from the file".to_owned());
    }
    let h = *batch.header();
    if h.base_offset != 0 {
        errs.push(format!("base_offset: expected 0, got {}", h.base_offset));
    }
    let got = batch_json(&batch);
    errs.extend(mismatches(&want, &got));
    let n = want["records"].as_array().map_or(0, Vec::len);
    if h.record_count as usize != n {
        errs.push(format!(
            "record_count: expected {n}, got {}",
            h.record_count
        ));
    }
    let last = want["records"]
        .as_array()
        .and_then(|r| r.last())
        .map(|r| r["offset_delta"].clone());
    match last {
        Some(last) if last != json!(h.last_offset_delta) => errs.push(format!(
            "last_offset_delta: expected {last}, got {}",
            h.last_offset_delta
        )),
        _ => {}
    }
    if errs.is_empty() {
        Ok(format!(
            "{} records  {:<6} {:>8} bytes",
            h.record_count,
            h.codec.name(),
            kafka.len()
        ))
    } else {
        Err(errs)
    }
}

/// The case names of `dir` (files `NAME.json` with `NAME.batch`), and the
/// lone files as problems.
pub(crate) fn list_cases(dir: &Path) -> std::io::Result<(Vec<String>, Vec<String>)> {
    let mut jsons = BTreeSet::new();
    let mut batches = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".json") {
            jsons.insert(stem.to_owned());
        } else if let Some(stem) = name.strip_suffix(".batch") {
            batches.insert(stem.to_owned());
        }
    }
    let mut problems: Vec<String> = batches
        .difference(&jsons)
        .map(|b| format!("{b}: .batch without .json"))
        .collect();
    problems.extend(
        jsons
            .difference(&batches)
            .map(|j| format!("{j}: .json without .batch")),
    );
    Ok((jsons.intersection(&batches).cloned().collect(), problems))
}

/// `check DIR`: every case of `dir` read with our library.
pub(crate) fn check_dir(dir: &Path) -> std::io::Result<Report> {
    let (names, problems) = list_cases(dir)?;
    let mut report = Report {
        failed: problems.len(),
        lines: problems.iter().map(|p| format!("FAIL {p}")).collect(),
        cases: names.len() + problems.len(),
    };
    if names.is_empty() {
        report.lines.push(format!(
            "FAIL {}: no cases (*.json + *.batch)",
            dir.display()
        ));
    }
    for name in &names {
        let kafka = std::fs::read(dir.join(format!("{name}.batch")))?;
        let text = std::fs::read_to_string(dir.join(format!("{name}.json")))?;
        match check_case(&kafka, &text) {
            Ok(summary) => report.lines.push(format!("ok   {name:<28} {summary}")),
            Err(errs) => {
                report.failed += 1;
                report
                    .lines
                    .extend(errs.into_iter().map(|e| format!("FAIL {name}: {e}")));
            }
        }
    }
    Ok(report)
}

// ------------------------------------------------------------------ gen

/// Builds one case with our builder: the Kafka bytes of the frame, or why
/// our library cannot build it.
pub(crate) fn build_case(case: &Case) -> Result<(Bytes, Batch), String> {
    let limits = Limits::default();
    let mut b = BatchBuilder::new(limits);
    b.set_codec(case.codec);
    b.set_producer(case.producer);
    for (i, r) in case.records.iter().enumerate() {
        let headers: Vec<RecordHeader<'_>> = r
            .headers
            .iter()
            .map(|(k, v)| RecordHeader {
                key: k,
                value: v.as_deref(),
            })
            .collect();
        b.push(&NewRecord {
            timestamp: r.timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
        })
        .map_err(|e| format!("push of record {i}: {e}"))?;
    }
    let frame = b.finish().map_err(|e| format!("finish: {e}"))?;
    let batch = Batch::decode(frame, &limits).map_err(|e| format!("Batch::decode: {e}"))?;
    let kafka = Bytes::copy_from_slice(batch.kafka_batch());
    Ok((kafka, batch))
}

/// `gen DIR`: the case set written with our builder. A codec the builder
/// refuses is skipped (a `skip` line), not a failure.
pub(crate) fn gen_dir(dir: &Path) -> std::io::Result<Report> {
    std::fs::create_dir_all(dir)?;
    let mut report = Report::default();
    for case in cases() {
        let (kafka, batch) = match build_case(&case) {
            Ok(built) => built,
            Err(e) if case.codec != Codec::None => {
                report.lines.push(format!(
                    "skip {}: our builder cannot write {}: {e}",
                    case.name,
                    case.codec.name()
                ));
                continue;
            }
            Err(e) => {
                report.failed += 1;
                report.lines.push(format!("FAIL {}: {e}", case.name));
                continue;
            }
        };
        let written = batch.header().codec;
        let doc = case_json(&case, written);
        // What we wrote must read back as what we meant to write.
        let errs = mismatches(&doc, &batch_json(&batch));
        if written != case.codec || !errs.is_empty() {
            report.failed += 1;
            report.lines.push(format!(
                "FAIL {}: wrote {} (asked for {}); {}",
                case.name,
                written.name(),
                case.codec.name(),
                errs.join("; ")
            ));
            continue;
        }
        std::fs::write(dir.join(format!("{}.batch", case.name)), &kafka)?;
        std::fs::write(dir.join(format!("{}.json", case.name)), dump_json(&doc))?;
        report.cases += 1;
        report.lines.push(format!(
            "gen  {:<28} {:>4} records  {:<6} {:>8} bytes",
            case.name,
            case.records.len(),
            written.name(),
            kafka.len()
        ));
    }
    Ok(report)
}
