//! Helpers shared by the integration tests: owned records, proptest
//! strategies, and batch construction.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use bytes::Bytes;
use log_format::{BatchBuilder, Limits, NewRecord, ProducerInfo, Record, RecordHeader};
use proptest::prelude::*;

/// A record with owned fields, to generate and to compare against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedRecord {
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl OwnedRecord {
    pub fn from_record(record: &Record<'_>) -> Self {
        OwnedRecord {
            timestamp: record.timestamp(),
            key: record.key().map(<[u8]>::to_vec),
            value: record.value().map(<[u8]>::to_vec),
            headers: record
                .headers()
                .map(|(k, v)| (k.to_owned(), v.map(<[u8]>::to_vec)))
                .collect(),
        }
    }
}

/// Encodes `records` as one batch.
pub fn build(records: &[OwnedRecord], producer: ProducerInfo) -> Bytes {
    let mut builder = BatchBuilder::new(Limits::default());
    push_all(&mut builder, records);
    builder.set_producer(producer);
    builder.finish().unwrap()
}

/// Pushes every record into `builder`.
pub fn push_all(builder: &mut BatchBuilder, records: &[OwnedRecord]) {
    for record in records {
        let headers: Vec<RecordHeader<'_>> = record
            .headers
            .iter()
            .map(|(key, value)| RecordHeader {
                key,
                value: value.as_deref(),
            })
            .collect();
        builder
            .push(&NewRecord {
                timestamp: record.timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &headers,
            })
            .unwrap();
    }
}

/// A small batch with every kind of field, for damage tests.
pub fn sample_batch() -> Bytes {
    let records = vec![
        OwnedRecord {
            timestamp: 1_700_000_000_000,
            key: Some(b"user-1".to_vec()),
            value: Some(b"hello".to_vec()),
            headers: vec![("trace".into(), Some(b"abc".to_vec()))],
        },
        OwnedRecord {
            timestamp: 1_700_000_000_005,
            key: None,
            value: Some(vec![0xAB; 40]),
            headers: vec![],
        },
        OwnedRecord {
            timestamp: 1_699_999_999_990,
            key: Some(b"user-1".to_vec()),
            value: None,
            headers: vec![
                ("a".into(), Some(vec![])),
                ("b".into(), Some(b"2".to_vec())),
                ("n".into(), None),
            ],
        },
    ];
    let producer = ProducerInfo {
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 100,
    };
    let mut bytes = build(&records, producer).to_vec();
    log_format::stamp(&mut bytes, 1_000, 7, 1_700_000_000_123).unwrap();
    Bytes::from(bytes)
}

pub fn record_strategy() -> impl Strategy<Value = OwnedRecord> {
    (
        // Timestamps around "now" with deltas in both directions, plus the
        // extremes that still leave the deltas representable.
        prop_oneof![
            8 => -(1i64 << 40)..(1i64 << 40),
            1 => Just(0i64),
            1 => Just(1i64 << 50),
        ],
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..48)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::collection::vec(
            (
                "[a-z\u{e9}\u{4e2d}]{0,12}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..24)),
            ),
            0..4,
        ),
    )
        .prop_map(|(timestamp, key, value, headers)| OwnedRecord {
            timestamp,
            key,
            value,
            headers,
        })
}

pub fn producer_strategy() -> impl Strategy<Value = ProducerInfo> {
    prop_oneof![
        Just(ProducerInfo::NONE),
        (any::<i64>(), any::<i16>(), any::<i32>()).prop_map(|(id, epoch, seq)| ProducerInfo {
            producer_id: id,
            producer_epoch: epoch,
            base_sequence: seq,
        }),
    ]
}

/// Recomputes both checksums of the (possibly edited) frame in `buf`:
/// Kafka's CRC-32C, then the frame checksum over the headers, so a test can
/// reach the structural checks behind them.
pub fn reseal(buf: &mut [u8]) {
    use log_format::{HEADER_LEN, field};
    let kafka = crc32c::crc32c(&buf[field::KAFKA_CRC_START..]);
    buf[field::KAFKA_CRC..field::KAFKA_CRC + 4].copy_from_slice(&kafka.to_be_bytes());
    let frame = crc32fast::hash(&buf[field::LENGTH..HEADER_LEN]);
    buf[field::FRAME_CRC..field::FRAME_CRC + 4].copy_from_slice(&frame.to_le_bytes());
}
