//! Fuzz target: a Kafka RecordBatch v2 as a producer would send it,
//! checked and framed by `frame_kafka`.
//!
//! The input's batchLength, magic and CRC-32C are fixed first, so every
//! other byte reaches the attribute rules, the decompressors and the
//! record parser with its dense-offset rule. Framing must not panic; a
//! batch it accepts must decode again from the frame it returns, with
//! offset deltas exactly 0, 1, 2, …, and the frame must carry the input's
//! bytes unchanged.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use log_format::{Batch, FRAME_HEADER_LEN, KAFKA_HEADER_LEN, KAFKA_MAGIC, Limits, field};

fuzz_target!(|data: &[u8]| {
    if data.len() <= KAFKA_HEADER_LEN {
        return;
    }
    let k = |frame_field: usize| frame_field - field::KAFKA;
    let mut kafka = data.to_vec();
    let len = kafka.len() as u32;
    kafka[k(field::BATCH_LENGTH)..k(field::BATCH_LENGTH) + 4].copy_from_slice(&(len - 12).to_be_bytes());
    kafka[k(field::KAFKA_MAGIC)] = KAFKA_MAGIC;
    let crc = crc32c::crc32c(&kafka[k(field::KAFKA_CRC_START)..]);
    kafka[k(field::KAFKA_CRC)..k(field::KAFKA_CRC) + 4].copy_from_slice(&crc.to_be_bytes());

    let limits = Limits {
        max_batch_bytes: 1 << 20,
        max_records: 1 << 16,
        max_uncompressed_bytes: 4 << 20,
    };
    if let Ok(frame) = log_format::frame_kafka(&kafka, &limits) {
        assert_eq!(&frame[FRAME_HEADER_LEN..], &kafka[..]);
        let batch = Batch::decode(Bytes::clone(&frame), &limits).expect("a framed batch decodes");
        for (i, record) in batch.records().enumerate() {
            assert_eq!(record.offset_delta() as usize, i);
        }
        assert_eq!(batch.records().count(), batch.header().record_count as usize);
    }
});
