//! Fuzz target: one frame whose lengths and checksums are made valid before
//! decoding.
//!
//! Random bytes almost never carry right CRCs, so the `scanner` target
//! rarely gets past the checksums. This one fixes the frame version, both
//! length fields, Kafka's magic, Kafka's CRC-32C and the frame checksum of
//! the input, so every other byte reaches the header rules, the
//! decompressors (the attribute bits are the input's) and the record
//! parser. Decoding must not panic, and a batch it accepts must iterate
//! exactly as its header declares. It does not check that accepted batches
//! are "sensible" beyond that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use log_format::{BatchView, FORMAT_VERSION, HEADER_LEN, KAFKA_MAGIC, Limits, field};

fuzz_target!(|data: &[u8]| {
    if data.len() <= HEADER_LEN {
        return;
    }
    let mut batch = data.to_vec();
    let len = batch.len() as u32;
    batch[field::LENGTH..field::LENGTH + 4].copy_from_slice(&len.to_le_bytes());
    batch[field::MAGIC] = FORMAT_VERSION;
    batch[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&(len - 28).to_be_bytes());
    batch[field::KAFKA_MAGIC] = KAFKA_MAGIC;
    let kafka_crc = crc32c::crc32c(&batch[field::KAFKA_CRC_START..]);
    batch[field::KAFKA_CRC..field::KAFKA_CRC + 4].copy_from_slice(&kafka_crc.to_be_bytes());
    let frame_crc = crc32fast::hash(&batch[field::LENGTH..HEADER_LEN]);
    batch[field::FRAME_CRC..field::FRAME_CRC + 4].copy_from_slice(&frame_crc.to_le_bytes());

    let limits = Limits {
        max_batch_bytes: 1 << 20,
        max_records: 1 << 16,
        max_uncompressed_bytes: 4 << 20,
    };
    if let Ok(view) = BatchView::decode(&batch, 0, &limits) {
        let mut count = 0usize;
        let mut last = None;
        for record in view.records() {
            if let Some(last) = last {
                assert!(record.offset_delta() > last);
            }
            last = Some(record.offset_delta());
            assert_eq!(record.headers().count(), record.header_count() as usize);
            count += 1;
        }
        assert_eq!(count, view.record_count() as usize);
        assert_eq!(last, Some(view.header().last_offset_delta));
    }
});
