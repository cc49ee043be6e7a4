//! Encoding then decoding gives back every record and header field, for any
//! input; stamping and scanning keep it so.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::{Bytes, BytesMut};
use common::{OwnedRecord, build, producer_strategy, record_strategy};
use log_format::{
    Batch, BatchBuilder, BatchView, BuildError, BytesScanner, HEADER_LEN, Limits, NO_TIMESTAMP,
    NewRecord, ProducerInfo, Scanned, Scanner, UNSTAMPED_OFFSET, stamp,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn roundtrips_every_field(
        records in proptest::collection::vec(record_strategy(), 1..40),
        producer in producer_strategy(),
    ) {
        let bytes = build(&records, producer);
        let batch = Batch::decode(bytes.clone(), &Limits::default()).unwrap();
        let header = batch.header();
        prop_assert_eq!(header.length as usize, bytes.len());
        prop_assert_eq!(header.record_count as usize, records.len());
        prop_assert_eq!(header.last_offset_delta as usize, records.len() - 1);
        prop_assert_eq!(header.base_offset, UNSTAMPED_OFFSET);
        prop_assert_eq!(header.append_time, NO_TIMESTAMP);
        prop_assert_eq!(header.producer_id, producer.producer_id);
        prop_assert_eq!(header.producer_epoch, producer.producer_epoch);
        prop_assert_eq!(header.base_sequence, producer.base_sequence);
        prop_assert_eq!(header.base_timestamp, records[0].timestamp);
        prop_assert_eq!(header.max_timestamp, records.iter().map(|r| r.timestamp).max().unwrap());
        let decoded: Vec<OwnedRecord> = batch.records().map(|r| OwnedRecord::from_record(&r)).collect();
        prop_assert_eq!(&decoded, &records);
        for (i, record) in batch.records().enumerate() {
            prop_assert_eq!(record.offset_delta() as usize, i);
            prop_assert_eq!(record.is_tombstone(), records[i].value.is_none());
            prop_assert_eq!(record.header_count() as usize, records[i].headers.len());
        }
    }

    #[test]
    fn stamping_sets_offsets_and_time_without_touching_the_body(
        records in proptest::collection::vec(record_strategy(), 1..20),
        base_offset in any::<u64>(),
        leader_epoch in any::<i32>(),
        append_time in any::<i64>(),
    ) {
        let bytes = build(&records, ProducerInfo::NONE);
        let mut stamped = bytes.to_vec();
        stamp(&mut stamped, base_offset, leader_epoch, append_time).unwrap();
        use log_format::field;
        // Kafka's CRC and everything it covers are the producer's, untouched.
        prop_assert_eq!(&stamped[field::KAFKA_CRC..field::KAFKA_CRC + 4], &bytes[field::KAFKA_CRC..field::KAFKA_CRC + 4]);
        prop_assert_eq!(&stamped[field::KAFKA_CRC_START..], &bytes[field::KAFKA_CRC_START..]);
        let view = BatchView::decode(&stamped, 0, &Limits::default()).unwrap();
        prop_assert_eq!(view.base_offset(), base_offset);
        prop_assert_eq!(view.header().leader_epoch, leader_epoch);
        prop_assert_eq!(view.append_time(), append_time.clamp(0, log_format::MAX_APPEND_TIME));
        prop_assert_eq!(view.header().kafka_crc, Batch::decode(bytes, &Limits::default()).unwrap().header().kafka_crc);
        for (i, record) in view.records().enumerate() {
            prop_assert_eq!(record.offset(), base_offset.wrapping_add(i as u64));
        }
    }

    #[test]
    fn scanner_yields_every_batch_of_a_concatenation(
        batches in proptest::collection::vec(proptest::collection::vec(record_strategy(), 1..8), 1..6),
        start in 0u64..1_000_000,
    ) {
        let mut buf = Vec::new();
        let mut expected = Vec::new();
        let mut next_offset = 0u64;
        for records in &batches {
            let mut bytes = build(records, ProducerInfo::NONE).to_vec();
            stamp(&mut bytes, next_offset, 0, 7).unwrap();
            expected.push((buf.len() as u64 + start, next_offset, records.clone()));
            next_offset += records.len() as u64;
            buf.extend_from_slice(&bytes);
        }
        let mut scanner = Scanner::new(&buf, start, Limits::default());
        let mut position = start;
        for (at, base_offset, records) in &expected {
            let Some(Scanned::Batch(view)) = scanner.next() else {
                panic!("expected a batch at {at}");
            };
            prop_assert_eq!(position, *at);
            prop_assert_eq!(view.base_offset(), *base_offset);
            let decoded: Vec<OwnedRecord> = view.records().map(|r| OwnedRecord::from_record(&r)).collect();
            prop_assert_eq!(&decoded, records);
            position += view.len() as u64;
            prop_assert_eq!(scanner.position(), position);
        }
        prop_assert!(scanner.next().is_none());
        prop_assert_eq!(scanner.position(), start + buf.len() as u64);

        // The owning scanner sees the same batches and shares the buffer.
        let shared = Bytes::from(buf);
        let owned: Vec<Batch> = BytesScanner::new(shared.clone(), start, Limits::default())
            .map(|scanned| match scanned {
                Scanned::Batch(batch) => batch,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        prop_assert_eq!(owned.len(), expected.len());
        let first_value = owned[0].records().next().and_then(|r| r.value());
        if let Some(value) = first_value {
            let share = owned[0].share(value).unwrap();
            prop_assert_eq!(&share[..], value);
        }
    }

    #[test]
    fn record_len_predicts_the_encoded_size(records in proptest::collection::vec(record_strategy(), 1..10)) {
        let mut builder = BatchBuilder::new(Limits::default());
        let mut expected = HEADER_LEN;
        for (i, owned) in records.iter().enumerate() {
            let headers: Vec<_> = owned.headers.iter().map(|(k, v)| log_format::RecordHeader { key: k, value: v.as_deref() }).collect();
            let record = NewRecord { timestamp: owned.timestamp, key: owned.key.as_deref(), value: owned.value.as_deref(), headers: &headers };
            expected += BatchBuilder::record_len(&record, records[0].timestamp, i as u32).unwrap();
            builder.push(&record).unwrap();
            prop_assert_eq!(builder.encoded_len(), expected);
        }
        prop_assert_eq!(builder.finish().unwrap().len(), expected);
    }
}

#[test]
fn builder_reuses_its_buffer_and_keeps_earlier_batches_intact() {
    let mut builder =
        BatchBuilder::with_buffer(BytesMut::with_capacity(64 * 1024), Limits::default());
    let mut finished = Vec::new();
    for batch in 0..50u32 {
        for i in 0..20u32 {
            let value = format!("batch {batch} record {i}");
            builder
                .push(&NewRecord::value(i64::from(i), value.as_bytes()))
                .unwrap();
        }
        finished.push(builder.finish().unwrap());
        assert!(builder.is_empty());
        assert_eq!(builder.encoded_len(), 0);
    }
    for (batch, bytes) in finished.into_iter().enumerate() {
        let decoded = Batch::decode(bytes, &Limits::default()).unwrap();
        let values: Vec<String> = decoded
            .records()
            .map(|r| String::from_utf8(r.value().unwrap().to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..20)
            .map(|i| format!("batch {batch} record {i}"))
            .collect();
        assert_eq!(values, expected);
    }
}

#[test]
fn refused_records_leave_the_builder_unchanged() {
    let limits = Limits {
        max_batch_bytes: 300,
        max_records: 3,
        ..Limits::default()
    };
    let mut builder = BatchBuilder::new(limits);
    builder.push(&NewRecord::value(10, &[1; 100])).unwrap();
    let before = builder.encoded_len();
    let err = builder.push(&NewRecord::value(10, &[2; 200])).unwrap_err();
    assert!(
        matches!(err, BuildError::BatchFull { limit: 300, .. }),
        "{err}"
    );
    assert_eq!(builder.encoded_len(), before);
    assert_eq!(builder.record_count(), 1);
    let err = builder.push(&NewRecord::value(i64::MIN, b"x")).unwrap_err();
    assert!(
        matches!(err, BuildError::TimestampOutOfRange { .. }),
        "{err}"
    );
    builder.push(&NewRecord::value(11, b"b")).unwrap();
    builder.push(&NewRecord::value(12, b"c")).unwrap();
    let err = builder.push(&NewRecord::value(13, b"d")).unwrap_err();
    assert_eq!(err, BuildError::TooManyRecords { limit: 3 });
    let batch = Batch::decode(builder.finish().unwrap(), &limits).unwrap();
    assert_eq!(batch.header().record_count, 3);
    assert_eq!(batch.header().max_timestamp, 12);
}

#[test]
fn a_record_too_large_for_an_empty_batch_is_refused() {
    let limits = Limits {
        max_batch_bytes: 100,
        max_records: 10,
        ..Limits::default()
    };
    let mut builder = BatchBuilder::new(limits);
    let err = builder.push(&NewRecord::value(0, &[0; 100])).unwrap_err();
    assert!(matches!(err, BuildError::BatchFull { .. }));
    assert!(builder.is_empty());
    assert_eq!(builder.finish().unwrap_err(), BuildError::Empty);
}

#[test]
fn producer_fields_apply_to_one_batch_only() {
    let mut builder = BatchBuilder::new(Limits::default());
    builder.set_producer(ProducerInfo {
        producer_id: 9,
        producer_epoch: 1,
        base_sequence: 5,
    });
    builder.push(&NewRecord::value(0, b"a")).unwrap();
    let first = Batch::decode(builder.finish().unwrap(), &Limits::default()).unwrap();
    builder.push(&NewRecord::value(0, b"b")).unwrap();
    let second = Batch::decode(builder.finish().unwrap(), &Limits::default()).unwrap();
    assert_eq!(first.header().producer_id, 9);
    assert_eq!(first.header().base_sequence, 5);
    assert_eq!(second.header().producer_id, ProducerInfo::NONE.producer_id);
    assert_eq!(
        second.header().base_sequence,
        ProducerInfo::NONE.base_sequence
    );
}
