//! Fuzz target: one frame whose lengths and checksums are made valid before
//! decoding.
//!
//! Random bytes almost never carry right CRCs, so the `scanner` target
//! rarely gets past the checksums. This one fixes the frame version, both
//! length fields, Kafka's magic, Kafka's CRC-32C and the frame checksum of
//! the input, so every other byte reaches the header rules, the
//! decompressors (the attribute bits are the input's) and the record
//! parser. Decoding must not panic, and a batch it accepts must iterate
//! exactly as its header declares. An accepted batch is then rewritten by
//! `retain` (the log cleaner's rewrite) with a keep pattern and maybe a
//! delete horizon taken from the input: the result must decode, and hold
//! exactly the kept records, each unchanged. It does not check that
//! accepted batches are "sensible" beyond that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use bytes::{Bytes, BytesMut};
use log_format::{
    Batch, BatchView, FORMAT_VERSION, HEADER_LEN, KAFKA_MAGIC, Limits, RetainOptions, Retained,
    field, retain,
};

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
    if let Ok(decoded) = Batch::decode(Bytes::copy_from_slice(&batch), &limits) {
        rewrite(&decoded, data[0]);
    }
});

/// `retain` over `batch`, keeping the records whose offset delta has the
/// bit of `pattern` it selects set.
fn rewrite(batch: &Batch, pattern: u8) {
    let keep = |delta: u32| pattern & (1 << (delta % 7)) != 0;
    let options = RetainOptions {
        delete_horizon: (pattern & 0x80 != 0)
            .then(|| batch.header().base_timestamp.wrapping_add(1000)),
    };
    let (mut buf, mut plain) = (BytesMut::new(), BytesMut::new());
    let Ok(out) = retain(batch, options, &mut buf, &mut plain, |r| keep(r.offset_delta())) else {
        // A horizon the timestamps cannot be rebased on, or a codec this
        // build cannot compress: refused, nothing written.
        return;
    };
    let want: Vec<_> = batch
        .records()
        .filter(|r| keep(r.offset_delta()))
        .map(|r| (r.offset(), r.timestamp(), r.key(), r.value(), r.headers().count()))
        .collect();
    match out {
        Retained::Dropped => assert!(want.is_empty()),
        Retained::Unchanged => {
            assert_eq!(want.len(), batch.header().record_count as usize);
        }
        Retained::Rewritten(frame) => {
            let cleaned = Batch::decode(frame, &Limits::unlimited()).expect("a rewritten batch decodes");
            let got: Vec<_> = cleaned
                .records()
                .map(|r| (r.offset(), r.timestamp(), r.key(), r.value(), r.headers().count()))
                .collect();
            assert_eq!(got, want);
            assert_eq!(cleaned.header().base_offset, batch.header().base_offset);
        }
    }
}
