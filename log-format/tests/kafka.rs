//! The Kafka side of a frame: a Kafka batch from a producer is checked and
//! framed by `frame_kafka`, stamping leaves Kafka's CRC-32C as the producer
//! wrote it, compressed batches decode through every codec the build has,
//! and decompression is bounded.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{OwnedRecord, push_all, sample_batch};
use log_format::{
    Batch, BatchBuilder, BuildError, Codec, DecodeError, Defect, FRAME_HEADER_LEN, HEADER_LEN,
    Limits, NewRecord, field, frame_kafka, stamp,
};

fn defect(result: Result<Bytes, DecodeError>) -> (Defect, u64) {
    match result {
        Err(DecodeError::Corrupt(c)) => (c.what, c.field_position),
        other => panic!("expected corruption, got {other:?}"),
    }
}

/// The Kafka part of a freshly built (unstamped) frame.
fn kafka_of(frame: &Bytes) -> Vec<u8> {
    frame[FRAME_HEADER_LEN..].to_vec()
}

fn reseal_kafka(kafka: &mut [u8]) {
    let k = |f: usize| f - field::KAFKA;
    let crc = crc32c::crc32c(&kafka[k(field::KAFKA_CRC_START)..]);
    kafka[k(field::KAFKA_CRC)..k(field::KAFKA_CRC) + 4].copy_from_slice(&crc.to_be_bytes());
}

fn records(n: usize) -> Vec<OwnedRecord> {
    (0..n)
        .map(|i| OwnedRecord {
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(format!("key-{}", i % 7).into_bytes()),
            value: Some(
                format!(
                    r#"{{"event":"ORDER_PLACED","orderId":{i},"amount":{}.{:02},"timestamp":{}}}"#,
                    i * 13 % 1000,
                    i % 100,
                    1_700_000_000_000 + i as i64
                )
                .into_bytes(),
            ),
            headers: vec![("trace".into(), Some(vec![i as u8; 4])), ("n".into(), None)],
        })
        .collect()
}

fn built(codec: Codec, records: &[OwnedRecord]) -> Bytes {
    let mut builder = BatchBuilder::new(Limits::default());
    builder.set_codec(codec);
    push_all(&mut builder, records);
    builder.finish().unwrap()
}

#[test]
fn a_producer_batch_is_framed_as_the_builder_frames_it() {
    let frame = built(Codec::None, &records(5));
    let framed = frame_kafka(&kafka_of(&frame), &Limits::default()).unwrap();
    assert_eq!(framed, frame);
    let batch = Batch::decode(framed, &Limits::default()).unwrap();
    assert_eq!(batch.kafka_batch(), &frame[FRAME_HEADER_LEN..]);
    assert_eq!(batch.header().append_time, log_format::NO_TIMESTAMP);
    assert_eq!(batch.header().leader_epoch, log_format::NO_LEADER_EPOCH);
}

#[test]
fn frame_kafka_refuses_what_a_kafka_broker_refuses() {
    let limits = Limits::default();
    let good = kafka_of(&built(Codec::None, &records(3)));
    // Offsets must be dense: a producer sends deltas 0, 1, 2. Three tiny
    // records of 8 bytes each (length, attributes, timestamp delta, offset
    // delta, null key, value length, value, header count).
    let mut builder = BatchBuilder::new(limits);
    for ts in 0..3 {
        builder.push(&NewRecord::value(ts, b"a")).unwrap();
    }
    let mut sparse = kafka_of(&builder.finish().unwrap());
    let second = HEADER_LEN - FRAME_HEADER_LEN + 8;
    assert_eq!(sparse[second], 14, "zig-zag 7: the second record's length");
    assert_eq!(sparse[second + 3], 2, "zig-zag 1: its offset delta");
    sparse[second + 3] = 4; // delta 2
    reseal_kafka(&mut sparse);
    assert_eq!(defect(frame_kafka(&sparse, &limits)).0, Defect::OffsetDelta);
    // …while a stored (compacted) batch may have gaps.
    let mut framed = vec![0u8; FRAME_HEADER_LEN];
    framed.extend_from_slice(&sparse);
    framed[FRAME_HEADER_LEN + second + 8 + 3] = 6; // the third's delta: 3
    let k = field::LAST_OFFSET_DELTA;
    framed[k..k + 4].copy_from_slice(&3u32.to_be_bytes());
    let length = framed.len() as u32;
    framed[4..8].copy_from_slice(&length.to_le_bytes());
    framed[8] = 2;
    framed[10..16].copy_from_slice(&[0xff; 6]);
    common::reseal(&mut framed);
    let gaps = Batch::decode(Bytes::from(framed), &limits).unwrap();
    let deltas: Vec<u32> = gaps.records().map(|r| r.offset_delta()).collect();
    assert_eq!(deltas, [0, 2, 3]);

    let mut damaged = good.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    assert_eq!(
        defect(frame_kafka(&damaged, &limits)).0,
        Defect::BodyChecksum
    );

    let mut transactional = good.clone();
    transactional[field::ATTRIBUTES + 1 - field::KAFKA] |= 0x10;
    reseal_kafka(&mut transactional);
    let err = frame_kafka(&transactional, &limits).unwrap_err();
    assert!(err.to_string().contains("attribute bit 4"), "{err}");

    let mut control = good.clone();
    control[field::ATTRIBUTES + 1 - field::KAFKA] |= 0x20;
    reseal_kafka(&mut control);
    let err = frame_kafka(&control, &limits).unwrap_err();
    assert!(err.to_string().contains("attribute bit 5"), "{err}");

    let mut old = good.clone();
    old[field::KAFKA_MAGIC - field::KAFKA] = 1;
    assert_eq!(defect(frame_kafka(&old, &limits)).0, Defect::KafkaMagic);

    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        defect(frame_kafka(&trailing, &limits)).0,
        Defect::TrailingBytes
    );
    assert_eq!(
        defect(frame_kafka(&good[..good.len() - 1], &limits)).0,
        Defect::BatchLength
    );
    assert!(matches!(
        frame_kafka(&good[..10], &limits),
        Err(DecodeError::Incomplete { .. })
    ));
    let small = Limits {
        max_batch_bytes: good.len() as u32,
        ..Limits::default()
    };
    assert_eq!(defect(frame_kafka(&good, &small)).0, Defect::BatchTooLarge);
    // Positions are in the caller's Kafka bytes.
    let (_, at) = defect(frame_kafka(&old, &limits));
    assert_eq!(at, (field::KAFKA_MAGIC - field::KAFKA) as u64);
}

#[test]
fn stamping_keeps_the_producers_kafka_crc() {
    let frame = sample_batch();
    let header = Batch::decode(frame.clone(), &Limits::default())
        .unwrap()
        .header()
        .kafka_crc;
    let mut again = frame.to_vec();
    stamp(&mut again, 99, 12, 5).unwrap();
    let batch = Batch::decode(Bytes::from(again), &Limits::default()).unwrap();
    assert_eq!(batch.header().kafka_crc, header);
    assert_eq!(
        crc32c::crc32c(&batch.kafka_batch()[21..]),
        batch.header().kafka_crc
    );
    assert_eq!(
        (batch.header().base_offset, batch.header().leader_epoch),
        (99, 12)
    );
}

/// The codecs this build encodes (every one whose cargo feature is on).
fn encodable() -> Vec<Codec> {
    [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ]
    .into_iter()
    .filter(|&codec| {
        let mut builder = BatchBuilder::new(Limits::default());
        builder.set_codec(codec);
        builder.push(&NewRecord::value(0, b"probe")).unwrap();
        builder.finish().is_ok()
    })
    .collect()
}

#[test]
fn none_lz4_and_zstd_encode_and_every_codec_round_trips() {
    let codecs = encodable();
    for codec in [Codec::None, Codec::Lz4, Codec::Zstd] {
        assert!(codecs.contains(&codec), "{codec:?} must encode");
    }
    let records = records(200);
    let plain = built(Codec::None, &records);
    for codec in codecs {
        let frame = built(codec, &records);
        let batch = Batch::decode(frame.clone(), &Limits::default()).unwrap();
        assert_eq!(batch.header().codec, codec);
        let decoded: Vec<OwnedRecord> = batch
            .records()
            .map(|r| OwnedRecord::from_record(&r))
            .collect();
        assert_eq!(decoded, records, "{codec:?}");
        if codec != Codec::None {
            assert!(frame.len() < plain.len() / 2, "{codec:?} compresses JSON");
        }
        // A compressed batch from a producer frames as well.
        let framed = frame_kafka(&frame[FRAME_HEADER_LEN..], &Limits::default()).unwrap();
        assert_eq!(framed, frame);
        // Keys and values can be shared out of the decompressed records.
        let first = batch.records().next().unwrap();
        let key = batch.share(first.key().unwrap()).unwrap();
        assert_eq!(&key[..], b"key-0");
    }
}

#[test]
fn switching_the_codec_mid_batch_keeps_the_records() {
    let records = records(10);
    for (from, to) in [(Codec::None, Codec::Zstd), (Codec::Lz4, Codec::None)] {
        let mut builder = BatchBuilder::new(Limits::default());
        builder.set_codec(from);
        push_all(&mut builder, &records[..5]);
        builder.set_codec(to);
        push_all(&mut builder, &records[5..]);
        let batch = Batch::decode(builder.finish().unwrap(), &Limits::default()).unwrap();
        assert_eq!(batch.header().codec, to);
        let decoded: Vec<OwnedRecord> = batch
            .records()
            .map(|r| OwnedRecord::from_record(&r))
            .collect();
        assert_eq!(decoded, records);
    }
}

#[test]
fn a_compression_bomb_is_corrupt_not_an_allocation() {
    // 4096 records of 4 KiB of zeros: 16 MiB of records that compress to
    // a few KiB.
    let zeros = vec![0u8; 4096];
    let bomb_limits = Limits {
        max_uncompressed_bytes: 1 << 20,
        ..Limits::default()
    };
    // A producer whose own limits let it build such a batch.
    let roomy = Limits {
        max_batch_bytes: 64 << 20,
        ..Limits::default()
    };
    for codec in encodable().into_iter().filter(|&c| c != Codec::None) {
        let mut builder = BatchBuilder::new(roomy);
        builder.set_codec(codec);
        for i in 0..4096 {
            builder.push(&NewRecord::value(i, &zeros)).unwrap();
        }
        let frame = builder.finish().unwrap();
        assert!(frame.len() < 1 << 20, "{codec:?}: {} bytes", frame.len());
        match Batch::decode(frame.clone(), &bomb_limits) {
            Err(DecodeError::Corrupt(c)) => {
                assert_eq!(c.what, Defect::UncompressedTooLarge, "{codec:?}");
                assert_eq!(c.expected, 1 << 20);
                assert_eq!(c.field_position, field::RECORDS as u64);
            }
            other => panic!("{codec:?}: {other:?}"),
        }
        // The same batch is fine under the default limit.
        assert_eq!(
            Batch::decode(frame, &Limits::default())
                .unwrap()
                .records()
                .count(),
            4096
        );
    }
    // The builder refuses to make a batch its own limit would refuse.
    let mut builder = BatchBuilder::new(bomb_limits);
    builder.set_codec(Codec::Zstd);
    let mut pushed = 0;
    let err = loop {
        match builder.push(&NewRecord::value(0, &zeros)) {
            Ok(()) => pushed += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(err, BuildError::BatchFull { .. }), "{err}");
    assert!(pushed < 256, "{pushed}");
}

#[test]
fn damaged_compressed_records_are_corrupt() {
    for codec in encodable().into_iter().filter(|&c| c != Codec::None) {
        let frame = built(codec, &records(50));
        let mut damaged = frame.to_vec();
        let middle = HEADER_LEN + (damaged.len() - HEADER_LEN) / 2;
        damaged[middle] ^= 0x55;
        common::reseal(&mut damaged);
        match Batch::decode(Bytes::from(damaged), &Limits::default()) {
            Err(DecodeError::Corrupt(c)) => assert!(
                matches!(
                    c.what,
                    Defect::Decompression
                        | Defect::RecordFraming
                        | Defect::RecordCount
                        | Defect::OffsetDelta
                        | Defect::ReservedBits
                        | Defect::HeaderKeyUtf8
                        | Defect::TimestampDelta
                ),
                "{codec:?}: {c}"
            ),
            // Damage inside a literal run can still decompress to records
            // of the right shape; then the values differ, which Kafka's CRC
            // (resealed here on purpose) would have caught.
            Ok(batch) => assert_eq!(batch.records().count(), 50),
            Err(other) => panic!("{codec:?}: {other:?}"),
        }
    }
}
