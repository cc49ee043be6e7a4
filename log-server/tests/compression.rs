//! Compressed batches end to end: `log-client`'s producer compresses with
//! each codec, the server stores the batches as sent, consumers in both
//! modes get the records back, and the stored frames say their codec; null
//! header values survive the trip both ways.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::TestServer;
use log_client::{
    Codec, Consumer, ConsumerConfig, ConsumerMode, FetchOptions, NewRecord, Position, Producer,
    ProducerConfig, RecordFormat,
};
use log_format::{BytesScanner, Limits, Scanned};

fn event(i: u32) -> NewRecord {
    NewRecord::keyed(
        format!("customer-{}", i % 13),
        format!(
            r#"{{"event":"ORDER_PLACED","orderId":{i},"amount":{}.50}}"#,
            i % 300
        ),
    )
    .with_header("trace", format!("t-{i}"))
    .with_null_header("none")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_is_stored_as_sent_and_read_back() {
    let mut server = TestServer::start().await;
    let c = server.client.clone();
    for codec in [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ] {
        let topic = format!("orders-{}", codec.name());
        c.create_topic(&topic, 1, Default::default()).await.unwrap();
        let config = ProducerConfig::default().with_compression(codec);
        let producer = Producer::new(c.clone(), &topic, config).await.unwrap();
        let mut deliveries = Vec::new();
        for i in 0..500 {
            deliveries.push(producer.send(event(i)).await.unwrap());
        }
        producer.flush().await.unwrap();
        for d in deliveries {
            d.await.unwrap();
        }
        producer.close().await.unwrap();

        // The stored frames carry the producer's codec.
        let encoded = c
            .fetch(
                &topic,
                0,
                Position::Earliest,
                &FetchOptions::default()
                    .with_format(RecordFormat::EncodedBatches)
                    .with_max_bytes(4 << 20),
            )
            .await
            .unwrap()
            .encoded_batches;
        let mut stored = 0;
        for scanned in BytesScanner::new(encoded, 0, Limits::default()) {
            let Scanned::Batch(batch) = scanned else {
                panic!("{codec:?}: {scanned:?}");
            };
            assert_eq!(batch.header().codec, codec);
            stored += batch.records().count();
        }
        assert_eq!(stored, 500, "{codec:?}");

        for mode in [ConsumerMode::Fetch, ConsumerMode::Subscribe] {
            let config = ConsumerConfig::default()
                .with_mode(mode)
                .with_stop_at_end(true);
            let mut consumer = Consumer::new(c.clone(), &topic, 0, Position::Earliest, config);
            let mut i = 0u32;
            while let Some(record) = consumer.next().await {
                let record = record.unwrap();
                let want = event(i);
                assert_eq!(record.offset, u64::from(i));
                assert_eq!((record.key, record.value), (want.key, want.value));
                assert_eq!(
                    record.headers,
                    vec![
                        ("trace".to_owned(), Some(Bytes::from(format!("t-{i}")))),
                        ("none".to_owned(), None),
                    ],
                    "{codec:?} {mode:?}"
                );
                i += 1;
            }
            assert_eq!(i, 500, "{codec:?} {mode:?}");
        }

        // RECORDS: the server decompresses, null header values stay null.
        let records = c
            .fetch(
                &topic,
                0,
                Position::Earliest,
                &FetchOptions::default().with_max_records(10),
            )
            .await
            .unwrap()
            .records;
        assert_eq!(records.len(), 10, "{codec:?}");
        assert_eq!(records[3].key.as_deref(), Some(&b"customer-3"[..]));
        assert_eq!(records[3].headers[1].key, "none");
        assert_eq!(records[3].headers[1].value, None, "{codec:?}");
    }
    server.stop().await;
}
