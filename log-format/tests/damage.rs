//! Damaged, truncated and hostile bytes are caught: every single-bit flip is
//! reported as corruption, every truncation as incomplete, and arbitrary
//! input never panics.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{build, record_strategy, reseal, sample_batch};
use log_format::{
    Batch, BatchHeader, BatchView, BytesScanner, DecodeError, Defect, HEADER_LEN, Limits,
    ProducerInfo, Scanned, Scanner, field, stamp,
};
use proptest::prelude::*;

fn defect_of(result: Result<BatchView<'_>, DecodeError>) -> Defect {
    match result {
        Err(DecodeError::Corrupt(corrupt)) => corrupt.what,
        other => panic!("expected corruption, got {other:?}"),
    }
}

#[test]
fn every_single_bit_flip_is_detected() {
    let batch = sample_batch();
    let limits = Limits::default();
    for byte in 0..batch.len() {
        for bit in 0..8 {
            let mut damaged = batch.to_vec();
            damaged[byte] ^= 1 << bit;
            match BatchView::decode(&damaged, 0, &limits) {
                Err(DecodeError::Corrupt(corrupt)) => {
                    assert_eq!(corrupt.position, 0);
                    assert!(corrupt.field_position < batch.len() as u64);
                }
                other => panic!("flip of bit {bit} in byte {byte} not reported: {other:?}"),
            }
        }
    }
}

#[test]
fn a_flipped_batch_between_good_ones_is_reported_at_its_position() {
    let good = sample_batch();
    let mut damaged = good.to_vec();
    damaged[HEADER_LEN + 5] ^= 0x10;
    let mut buf = good.to_vec();
    buf.extend_from_slice(&damaged);
    buf.extend_from_slice(&good);
    let base = 4096;
    let mut scanner = Scanner::new(&buf, base, Limits::default());
    assert!(matches!(scanner.next(), Some(Scanned::Batch(_))));
    match scanner.next() {
        Some(Scanned::Corrupt(corrupt)) => {
            assert_eq!(corrupt.position, base + good.len() as u64);
            assert_eq!(corrupt.what, Defect::BodyChecksum);
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    assert_eq!(scanner.position(), base + good.len() as u64);
    assert!(scanner.next().is_none(), "the scanner stops at corruption");
}

#[test]
fn truncation_at_every_byte_is_incomplete() {
    let batch = sample_batch();
    for len in 0..batch.len() {
        match BatchView::decode(&batch[..len], 0, &Limits::default()) {
            Err(DecodeError::Incomplete { needed }) => {
                let expected = if len < HEADER_LEN {
                    HEADER_LEN - len
                } else {
                    batch.len() - len
                };
                assert_eq!(needed, expected, "truncated to {len}");
            }
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
}

#[test]
fn a_torn_tail_after_whole_batches_is_incomplete_at_its_start() {
    let batch = sample_batch();
    for cut in 1..batch.len() {
        let mut buf = batch.to_vec();
        buf.extend_from_slice(&batch[..cut]);
        let owned = Bytes::from(buf.clone());
        let mut scanner = Scanner::new(&buf, 0, Limits::default());
        assert!(matches!(scanner.next(), Some(Scanned::Batch(_))));
        assert!(
            matches!(scanner.next(), Some(Scanned::Incomplete { position, .. }) if position == batch.len() as u64),
            "cut at {cut}"
        );
        assert!(scanner.next().is_none());
        assert_eq!(scanner.position(), batch.len() as u64);
        let steps: Vec<_> = BytesScanner::new(owned, 0, Limits::default()).collect();
        assert_eq!(steps.len(), 2);
        assert!(matches!(steps[1], Scanned::Incomplete { .. }));
    }
}

#[test]
fn an_empty_buffer_scans_to_nothing() {
    assert!(Scanner::new(&[], 0, Limits::default()).next().is_none());
}

#[test]
fn zeros_are_not_a_batch() {
    let zeros = [0u8; 256];
    assert_eq!(
        defect_of(BatchView::decode(&zeros, 0, &Limits::default())),
        Defect::Version
    );
}

/// Edits a header field of the sample batch and reseals both checksums, so
/// that the check behind the checksums is what must catch it.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut bytes = sample_batch().to_vec();
    edit(&mut bytes);
    reseal(&mut bytes);
    bytes
}

fn put_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_le_bytes());
}

/// Kafka's fields are big-endian.
fn put_be_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[test]
fn each_header_rule_has_its_own_defect() {
    let limits = Limits::default();
    // The attributes are a big-endian i16: the codec and flag bits are in
    // its second byte.
    let attributes = field::ATTRIBUTES + 1;
    let cases: Vec<(&str, Vec<u8>, Defect)> = vec![
        (
            "unknown version",
            edited(|b| b[field::MAGIC] = 3),
            Defect::Version,
        ),
        (
            "version 1",
            edited(|b| b[field::MAGIC] = 1),
            Defect::Version,
        ),
        (
            "length below the headers",
            edited(|b| put_u32(b, field::LENGTH, 40)),
            Defect::BatchLength,
        ),
        (
            "kafka batch length disagrees with the frame length",
            edited(|b| {
                let len = u32::from_be_bytes(b[field::BATCH_LENGTH..][..4].try_into().unwrap());
                put_be_u32(b, field::BATCH_LENGTH, len + 1);
            }),
            Defect::BatchLength,
        ),
        (
            "flags",
            edited(|b| b[field::FLAGS] = 0x80),
            Defect::ReservedBits,
        ),
        (
            "kafka magic 1 (an older message format)",
            edited(|b| b[field::KAFKA_MAGIC] = 1),
            Defect::KafkaMagic,
        ),
        (
            "unknown codec",
            edited(|b| b[attributes] = 5),
            Defect::UnknownCodec,
        ),
        (
            "transactional bit",
            edited(|b| b[attributes] = 0x10),
            Defect::Transactional,
        ),
        (
            "control bit",
            edited(|b| b[attributes] = 0x20),
            Defect::ControlBatch,
        ),
        (
            // Bit 6 is the delete horizon (KIP-534); bit 7 is unknown.
            "unknown attribute bit",
            edited(|b| b[attributes] = 0x80),
            Defect::ReservedBits,
        ),
        (
            "unknown high attribute bit",
            edited(|b| b[field::ATTRIBUTES] = 0x01),
            Defect::ReservedBits,
        ),
        (
            "zero records",
            edited(|b| put_be_u32(b, field::RECORD_COUNT, 0)),
            Defect::EmptyBatch,
        ),
        (
            "negative record count",
            edited(|b| put_be_u32(b, field::RECORD_COUNT, u32::MAX)),
            Defect::EmptyBatch,
        ),
        (
            "more records declared than present",
            edited(|b| {
                put_be_u32(b, field::RECORD_COUNT, 4);
                put_be_u32(b, field::LAST_OFFSET_DELTA, 3);
            }),
            Defect::RecordCount,
        ),
        (
            "fewer records declared than present",
            edited(|b| {
                put_be_u32(b, field::RECORD_COUNT, 2);
                put_be_u32(b, field::LAST_OFFSET_DELTA, 1);
            }),
            Defect::RecordCount,
        ),
        (
            "last offset delta below the count",
            edited(|b| put_be_u32(b, field::LAST_OFFSET_DELTA, 0)),
            Defect::RecordCount,
        ),
        (
            "negative last offset delta",
            edited(|b| put_be_u32(b, field::LAST_OFFSET_DELTA, u32::MAX)),
            Defect::RecordCount,
        ),
        (
            "last offset delta past the last record",
            edited(|b| put_be_u32(b, field::LAST_OFFSET_DELTA, 7)),
            Defect::RecordCount,
        ),
        (
            "record attributes",
            // The first record's attribute byte follows its one-byte length.
            edited(|b| b[HEADER_LEN + 1] = 1),
            Defect::ReservedBits,
        ),
        (
            "negative record length",
            edited(|b| b[HEADER_LEN] = 0x01),
            Defect::RecordFraming,
        ),
        (
            "record length past its record",
            edited(|b| b[HEADER_LEN] = 0x7e),
            Defect::RecordFraming,
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(
            defect_of(BatchView::decode(&bytes, 0, &limits)),
            expected,
            "{name}"
        );
    }
}

#[test]
fn the_log_append_time_bit_is_read_as_the_timestamp_type() {
    let bytes = edited(|b| b[field::ATTRIBUTES + 1] = 0x08);
    let view = BatchView::decode(&bytes, 0, &Limits::default()).unwrap();
    assert_eq!(
        view.header().timestamp_type,
        log_format::TimestampType::LogAppendTime
    );
}

#[test]
fn limits_are_checked_from_the_header() {
    let batch = sample_batch();
    let small = Limits {
        max_batch_bytes: batch.len() as u32 - 1,
        max_records: 100,
        ..Limits::default()
    };
    let err = BatchView::decode(&batch[..HEADER_LEN], 0, &small).unwrap_err();
    match err {
        DecodeError::Corrupt(c) => {
            assert_eq!(c.what, Defect::BatchTooLarge);
            assert!(c.what.is_limit());
            assert_eq!(c.expected, u64::from(small.max_batch_bytes));
            assert_eq!(c.found, batch.len() as u64);
        }
        other => panic!("{other:?}"),
    }
    let few = Limits {
        max_batch_bytes: 1 << 20,
        max_records: 2,
        ..Limits::default()
    };
    assert_eq!(
        defect_of(BatchView::decode(&batch, 0, &few)),
        Defect::TooManyRecords
    );
}

#[test]
fn a_huge_declared_length_asks_for_bytes_instead_of_reserving_them() {
    let mut header = sample_batch()[..HEADER_LEN].to_vec();
    put_u32(&mut header, field::LENGTH, u32::MAX);
    put_be_u32(&mut header, field::BATCH_LENGTH, u32::MAX - 28);
    reseal_header_only(&mut header);
    let err = BatchView::decode(&header, 0, &Limits::unlimited()).unwrap_err();
    assert_eq!(
        err,
        DecodeError::Incomplete {
            needed: u32::MAX as usize - HEADER_LEN
        }
    );
    assert_eq!(
        defect_of(BatchView::decode(&header, 0, &Limits::default())),
        Defect::BatchTooLarge
    );
}

fn reseal_header_only(buf: &mut [u8]) {
    let crc = crc32fast::hash(&buf[field::LENGTH..HEADER_LEN]);
    buf[..4].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn trailing_bytes_are_refused_where_one_batch_is_expected() {
    let mut bytes = sample_batch().to_vec();
    bytes.push(0);
    let err = Batch::decode(Bytes::from(bytes), &Limits::default()).unwrap_err();
    assert!(matches!(err, DecodeError::Corrupt(c) if c.what == Defect::TrailingBytes));
}

#[test]
fn stamping_refuses_a_damaged_header_and_changes_nothing() {
    let mut bytes = sample_batch().to_vec();
    bytes[field::PRODUCER_ID] ^= 1;
    let before = bytes.clone();
    let err = stamp(&mut bytes, 5, 0, 5).unwrap_err();
    assert!(matches!(err, DecodeError::Corrupt(c) if c.what == Defect::HeaderChecksum));
    assert_eq!(bytes, before);
    let mut short = sample_batch()[..HEADER_LEN - 1].to_vec();
    assert!(matches!(
        stamp(&mut short, 5, 0, 5),
        Err(DecodeError::Incomplete { needed: 1 })
    ));
}

#[test]
fn header_parse_reads_headers_without_the_body() {
    let batch = sample_batch();
    let header = BatchHeader::parse(&batch[..HEADER_LEN], 0, &Limits::default()).unwrap();
    assert_eq!(header.length as usize, batch.len());
    assert_eq!(header.base_offset, 1_000);
    assert_eq!(header.last_offset(), 1_002);
    assert_eq!(header.producer_id, 42);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for scanned in Scanner::new(&bytes, 0, Limits::default()) {
            if let Scanned::Batch(view) = scanned {
                prop_assert_eq!(view.records().count(), view.record_count() as usize);
            }
        }
    }

    /// Garbage behind valid checksums reaches the structural checks: they
    /// must refuse it or yield exactly the records the header declares.
    #[test]
    fn resealed_garbage_is_refused_or_consistent(
        records in proptest::collection::vec(record_strategy(), 1..6),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut bytes = build(&records, ProducerInfo::NONE).to_vec();
        let body_len = bytes.len() - HEADER_LEN;
        for (index, value) in edits {
            let at = HEADER_LEN + index.index(body_len);
            bytes[at] = value;
        }
        reseal(&mut bytes);
        if let Ok(view) = BatchView::decode(&bytes, 0, &Limits::default()) {
            let decoded: Vec<_> = view.records().collect();
            prop_assert_eq!(decoded.len(), view.record_count() as usize);
            for pair in decoded.windows(2) {
                prop_assert!(pair[0].offset_delta() < pair[1].offset_delta());
            }
            for record in &decoded {
                prop_assert_eq!(record.headers().count(), record.header_count() as usize);
            }
        }
    }
}

#[test]
fn checksum_only_checks_catch_every_flip_and_truncation() {
    let batch = sample_batch();
    let mut two = batch.to_vec();
    two.extend_from_slice(&batch);
    assert_eq!(log_format::check_checksums(&two, 0), Ok(2));
    for byte in 0..two.len() {
        for bit in 0..8 {
            let mut damaged = two.clone();
            damaged[byte] ^= 1 << bit;
            match log_format::check_checksums(&damaged, 100) {
                Err(DecodeError::Corrupt(c)) => {
                    let expected = if byte < batch.len() {
                        100
                    } else {
                        100 + batch.len() as u64
                    };
                    assert_eq!(c.position, expected, "byte {byte}");
                }
                other => panic!("flip of bit {bit} in byte {byte}: {other:?}"),
            }
        }
    }
    for len in 1..two.len() {
        if len == batch.len() {
            continue;
        }
        assert!(
            matches!(
                log_format::check_checksums(&two[..len], 0),
                Err(DecodeError::Incomplete { .. })
            ),
            "cut to {len}"
        );
    }
}
