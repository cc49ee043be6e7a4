//! `retain`: a stored batch rewritten with some of its records keeps their
//! offsets, timestamps, keys, values and headers, the batch's producer
//! fields, codec and stamps, and is a valid batch (both checksums); a
//! delete horizon rebases the timestamps without changing them. `recompress`
//! compresses a plain batch and changes nothing else.
#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use log_format::{
    ATTR_DELETE_HORIZON, Batch, BatchBuilder, Codec, Limits, NewRecord, ProducerInfo, RecordHeader,
    RetainOptions, Retained, recompress, retain, stamp,
};

fn stored(codec: Codec) -> Batch {
    let mut builder = BatchBuilder::new(Limits::default());
    builder.set_codec(codec);
    let headers = [RecordHeader {
        key: "h",
        value: Some(b"hv"),
    }];
    for i in 0..10u8 {
        let key = [b'k', b'0' + i % 3];
        let value = [b'v', b'0' + i];
        builder
            .push(&NewRecord {
                timestamp: 1_700_000_000_000 + i64::from(i),
                key: Some(&key),
                value: (i != 7).then_some(&value[..]),
                headers: &headers,
            })
            .unwrap();
    }
    builder.set_producer(ProducerInfo {
        producer_id: 42,
        producer_epoch: 3,
        base_sequence: 100,
    });
    let mut frame = BytesMut::from(&builder.finish().unwrap()[..]);
    stamp(&mut frame, 5000, 7, 1_800_000_000_000).unwrap();
    Batch::decode(frame.freeze(), &Limits::default()).unwrap()
}

#[test]
fn kept_records_keep_their_offsets_timestamps_and_headers() {
    for codec in [Codec::None, Codec::Zstd, Codec::Lz4] {
        let batch = stored(codec);
        let (mut buf, mut plain) = (BytesMut::new(), BytesMut::new());
        let horizon = 1_900_000_000_000;
        let out = retain(
            &batch,
            RetainOptions {
                delete_horizon: Some(horizon),
            },
            &mut buf,
            &mut plain,
            |r| r.offset() % 2 == 1,
        )
        .unwrap();
        let Retained::Rewritten(frame) = out else {
            panic!("{codec:?}: {out:?}");
        };
        let cleaned = Batch::decode(frame, &Limits::default()).unwrap();
        let h = cleaned.header();
        assert_eq!((h.base_offset, h.leader_epoch), (5000, 7));
        assert_eq!(h.append_time, 1_800_000_000_000);
        assert_eq!(h.codec, codec);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (42, 3, 100)
        );
        assert_eq!(h.record_count, 5);
        assert_eq!(h.last_offset(), 5009, "the last kept record's offset");
        assert_ne!(h.attributes & ATTR_DELETE_HORIZON, 0);
        assert_eq!(h.delete_horizon(), Some(horizon));
        let want: Vec<_> = batch.records().filter(|r| r.offset() % 2 == 1).collect();
        let got: Vec<_> = cleaned.records().collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.offset(), w.offset());
            assert_eq!(
                g.timestamp(),
                w.timestamp(),
                "timestamps survive the rebase"
            );
            assert_eq!((g.key(), g.value()), (w.key(), w.value()));
            assert_eq!(
                g.headers().collect::<Vec<_>>(),
                w.headers().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn all_kept_is_unchanged_and_none_kept_is_dropped() {
    let batch = stored(Codec::None);
    let (mut buf, mut plain) = (BytesMut::new(), BytesMut::new());
    let all = retain(
        &batch,
        RetainOptions::default(),
        &mut buf,
        &mut plain,
        |_| true,
    )
    .unwrap();
    assert_eq!(all, Retained::Unchanged);
    let none = retain(
        &batch,
        RetainOptions::default(),
        &mut buf,
        &mut plain,
        |_| false,
    )
    .unwrap();
    assert_eq!(none, Retained::Dropped);
    // A horizon on a batch that keeps everything still rewrites it.
    let horizon = RetainOptions {
        delete_horizon: Some(1_900_000_000_000),
    };
    let out = retain(&batch, horizon, &mut buf, &mut plain, |_| true).unwrap();
    assert!(matches!(out, Retained::Rewritten(_)));
}

/// A plain stored batch of `n` JSON-like records, stamped.
fn plain_json(n: u32) -> Batch {
    let mut builder = BatchBuilder::new(Limits::default());
    for i in 0..n {
        let value = format!(
            r#"{{"order_id":{i},"customer":"c-{}","status":"created","amount_cents":{}}}"#,
            i % 17,
            i * 7
        );
        let key = format!("order-{i}");
        builder
            .push(&NewRecord::keyed(
                1_700_000_000_000 + i64::from(i),
                key.as_bytes(),
                value.as_bytes(),
            ))
            .unwrap();
    }
    builder.set_producer(ProducerInfo {
        producer_id: 9,
        producer_epoch: 1,
        base_sequence: 40,
    });
    let mut frame = BytesMut::from(&builder.finish().unwrap()[..]);
    stamp(&mut frame, 777, 4, 1_800_000_000_000).unwrap();
    Batch::decode(frame.freeze(), &Limits::default()).unwrap()
}

#[test]
fn recompress_keeps_every_record_and_field_and_shrinks_the_batch() {
    let batch = plain_json(200);
    for codec in [Codec::Zstd, Codec::Lz4, Codec::Gzip, Codec::Snappy] {
        let mut buf = BytesMut::new();
        let Retained::Rewritten(frame) = recompress(&batch, codec, &mut buf).unwrap() else {
            panic!("{codec:?}: not rewritten");
        };
        assert!(frame.len() < batch.bytes().len(), "{codec:?} shrinks it");
        let packed = Batch::decode(frame, &Limits::default()).unwrap();
        let (h, o) = (packed.header(), batch.header());
        assert_eq!(h.codec, codec);
        assert_eq!(h.attributes & !log_format::ATTR_CODEC_MASK, o.attributes);
        assert_eq!(
            (h.base_offset, h.leader_epoch, h.append_time),
            (o.base_offset, o.leader_epoch, o.append_time)
        );
        assert_eq!(
            (h.last_offset_delta, h.base_timestamp, h.max_timestamp),
            (o.last_offset_delta, o.base_timestamp, o.max_timestamp)
        );
        assert_eq!(
            (
                h.producer_id,
                h.producer_epoch,
                h.base_sequence,
                h.record_count
            ),
            (
                o.producer_id,
                o.producer_epoch,
                o.base_sequence,
                o.record_count
            )
        );
        let got: Vec<_> = packed
            .records()
            .map(|r| {
                (
                    r.offset(),
                    r.timestamp(),
                    r.key().map(<[u8]>::to_vec),
                    r.value().map(<[u8]>::to_vec),
                )
            })
            .collect();
        let want: Vec<_> = batch
            .records()
            .map(|r| {
                (
                    r.offset(),
                    r.timestamp(),
                    r.key().map(<[u8]>::to_vec),
                    r.value().map(<[u8]>::to_vec),
                )
            })
            .collect();
        assert_eq!(got, want, "{codec:?}");
    }
}

#[test]
fn recompress_leaves_compressed_and_incompressible_batches_as_they_are() {
    let mut buf = BytesMut::new();
    // Compressed by its producer.
    let zstd = stored(Codec::Zstd);
    assert_eq!(
        recompress(&zstd, Codec::Lz4, &mut buf).unwrap(),
        Retained::Unchanged
    );
    // No codec asked for.
    let plain = plain_json(10);
    assert_eq!(
        recompress(&plain, Codec::None, &mut buf).unwrap(),
        Retained::Unchanged
    );
    // Random bytes do not shrink: the batch stays plain.
    let mut builder = BatchBuilder::new(Limits::default());
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    builder.push(&NewRecord::value(1, &noise)).unwrap();
    let mut frame = BytesMut::from(&builder.finish().unwrap()[..]);
    stamp(&mut frame, 0, 0, 2).unwrap();
    let noisy = Batch::decode(frame.freeze(), &Limits::default()).unwrap();
    assert_eq!(
        recompress(&noisy, Codec::Zstd, &mut buf).unwrap(),
        Retained::Unchanged
    );
}
