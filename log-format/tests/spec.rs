//! The byte table in the crate docs is the specification: this test parses
//! it from `src/lib.rs` and checks every row against the field constants
//! and against the bytes the builder writes.
#![allow(clippy::unwrap_used)]

mod common;

use log_format::{FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, KAFKA_HEADER_LEN, field};

/// `(name, offset, size)` of every field the code knows.
const FIELDS: &[(&str, usize, usize)] = &[
    ("frame_crc", field::FRAME_CRC, 4),
    ("length", field::LENGTH, 4),
    ("magic", field::MAGIC, 1),
    ("flags", field::FLAGS, 1),
    ("append_time", field::APPEND_TIME, 6),
    ("base_offset", field::BASE_OFFSET, 8),
    ("batch_length", field::BATCH_LENGTH, 4),
    ("leader_epoch", field::LEADER_EPOCH, 4),
    ("kafka_magic", field::KAFKA_MAGIC, 1),
    ("kafka_crc", field::KAFKA_CRC, 4),
    ("attributes", field::ATTRIBUTES, 2),
    ("last_offset_delta", field::LAST_OFFSET_DELTA, 4),
    ("base_timestamp", field::BASE_TIMESTAMP, 8),
    ("max_timestamp", field::MAX_TIMESTAMP, 8),
    ("producer_id", field::PRODUCER_ID, 8),
    ("producer_epoch", field::PRODUCER_EPOCH, 2),
    ("base_sequence", field::BASE_SEQUENCE, 4),
    ("record_count", field::RECORD_COUNT, 4),
];

/// The rows of the "Batch header" table in the crate docs.
fn documented_rows() -> Vec<(String, usize, Option<usize>)> {
    let source = include_str!("../src/lib.rs");
    let section = source
        .split("//! ## Batch header")
        .nth(1)
        .expect("the crate docs have a batch header section");
    let mut rows = Vec::new();
    for line in section
        .lines()
        .skip_while(|l| !l.contains("| offset |"))
        .skip(2)
    {
        let Some(row) = line.strip_prefix("//! |") else {
            break;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let offset = cells[0].parse().unwrap();
        let size = cells[1].parse().ok();
        let name = cells[2].trim_matches('`').to_owned();
        rows.push((name, offset, size));
    }
    rows
}

#[test]
fn the_documented_table_matches_the_field_constants() {
    let rows = documented_rows();
    assert_eq!(
        rows.len(),
        FIELDS.len() + 1,
        "one row per field plus the records row"
    );
    for ((name, offset, size), (doc_name, doc_offset, doc_size)) in FIELDS.iter().zip(&rows) {
        assert_eq!(name, doc_name);
        assert_eq!(offset, doc_offset, "offset of {name}");
        assert_eq!(Some(*size), *doc_size, "size of {name}");
    }
    // Fields are contiguous and end where the header ends.
    for pair in FIELDS.windows(2) {
        assert_eq!(
            pair[0].1 + pair[0].2,
            pair[1].1,
            "{} is followed by {}",
            pair[0].0,
            pair[1].0
        );
    }
    let (_, last_offset, last_size) = FIELDS[FIELDS.len() - 1];
    assert_eq!(last_offset + last_size, HEADER_LEN);
    let (records_name, records_offset, _) = &rows[rows.len() - 1];
    assert_eq!(records_name, "records");
    assert_eq!(*records_offset, HEADER_LEN);
    assert_eq!(HEADER_LEN, 77);
    assert_eq!(field::KAFKA, FRAME_HEADER_LEN);
    assert_eq!(HEADER_LEN - FRAME_HEADER_LEN, KAFKA_HEADER_LEN);
    assert_eq!(field::KAFKA_CRC_START, field::ATTRIBUTES);
}

#[test]
fn the_builder_writes_fields_where_the_table_says() {
    let batch = common::sample_batch();
    let le_u32 = |at: usize| u32::from_le_bytes(batch[at..at + 4].try_into().unwrap());
    let be_u32 = |at: usize| u32::from_be_bytes(batch[at..at + 4].try_into().unwrap());
    let be_i64 = |at: usize| i64::from_be_bytes(batch[at..at + 8].try_into().unwrap());
    let be_i16 = |at: usize| i16::from_be_bytes(batch[at..at + 2].try_into().unwrap());
    assert_eq!(le_u32(field::LENGTH) as usize, batch.len());
    assert_eq!(batch[field::MAGIC], FORMAT_VERSION);
    assert_eq!(FORMAT_VERSION, 2);
    assert_eq!(batch[field::FLAGS], 0);
    assert_eq!(
        le_u32(field::FRAME_CRC),
        crc32fast::hash(&batch[4..HEADER_LEN])
    );
    let mut time = [0u8; 8];
    time[..6].copy_from_slice(&batch[field::APPEND_TIME..field::APPEND_TIME + 6]);
    assert_eq!(i64::from_le_bytes(time), 1_700_000_000_123);
    // Kafka's part, big-endian, as DefaultRecordBatch lays it out.
    assert_eq!(be_i64(field::BASE_OFFSET), 1_000);
    assert_eq!(be_u32(field::BATCH_LENGTH) as usize, batch.len() - 28);
    assert_eq!(be_u32(field::LEADER_EPOCH), 7);
    assert_eq!(batch[field::KAFKA_MAGIC], 2);
    assert_eq!(
        be_u32(field::KAFKA_CRC),
        crc32c::crc32c(&batch[field::ATTRIBUTES..])
    );
    assert_eq!(be_i16(field::ATTRIBUTES), 0);
    assert_eq!(be_u32(field::LAST_OFFSET_DELTA), 2);
    assert_eq!(be_i64(field::BASE_TIMESTAMP), 1_700_000_000_000);
    assert_eq!(be_i64(field::MAX_TIMESTAMP), 1_700_000_000_005);
    assert_eq!(be_i64(field::PRODUCER_ID), 42);
    assert_eq!(be_i16(field::PRODUCER_EPOCH), 3);
    assert_eq!(be_u32(field::BASE_SEQUENCE), 100);
    assert_eq!(be_u32(field::RECORD_COUNT), 3);
}
