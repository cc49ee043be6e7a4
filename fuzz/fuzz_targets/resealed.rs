//! Fuzz target: one batch whose checksums are made valid before decoding.
//!
//! Random bytes almost never carry a right CRC, so the `scanner` target
//! rarely gets past the checksums. This one fixes the magic byte, the
//! length and both checksums of the input, so every other byte reaches the
//! header rules and the record parser. Decoding must not panic, and a batch
//! it accepts must iterate exactly as its header declares. It does not
//! check that accepted batches are "sensible" beyond that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use log_format::{BatchView, FORMAT_VERSION, HEADER_LEN, Limits, field};

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER_LEN {
        return;
    }
    let mut batch = data.to_vec();
    let len = batch.len() as u32;
    batch[field::LENGTH..field::LENGTH + 4].copy_from_slice(&len.to_le_bytes());
    batch[field::MAGIC] = FORMAT_VERSION;
    let body_crc = crc32fast::hash(&batch[field::BODY_START..]);
    batch[field::BODY_CRC..field::BODY_CRC + 4].copy_from_slice(&body_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&batch[field::LENGTH..HEADER_LEN]);
    batch[field::HEADER_CRC..field::HEADER_CRC + 4].copy_from_slice(&header_crc.to_le_bytes());

    let limits = Limits {
        max_batch_bytes: 1 << 20,
        max_records: 1 << 16,
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
