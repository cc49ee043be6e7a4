//! One bit flipped at every byte of a sealed segment, on the real file
//! system: the damaged batch is reported with its file and byte position
//! and never served, and the rest of the log is still served.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::BytesMut;
use log_storage::{AppendOptions, Error, Isolation, Log, LogConfig, RealFs};
use tempfile::TempDir;

fn batch(n: u64) -> BytesMut {
    common::batch_of(0, (0..3).map(|i| format!("batch {n} record {i}")), None)
}

#[test]
fn a_flipped_bit_anywhere_in_a_sealed_segment_is_reported_and_never_served() {
    let tmp = TempDir::new().unwrap();
    let mut config = LogConfig::default();
    config.segment_max_bytes = 4096;
    config.limits.max_batch_bytes = 4096;
    config.index_interval_bytes = 128;
    let log = Log::open(Arc::new(RealFs), tmp.path(), config).unwrap();
    // (base offset, position, length) of every batch of the first segment.
    let mut first_segment = Vec::new();
    let mut position = 0u64;
    for n in 0..60 {
        let bytes = batch(n);
        let len = bytes.len() as u64;
        let ack = log.append(bytes, AppendOptions::default()).unwrap();
        if position + len <= 4096 && first_segment.len() as u64 == n {
            first_segment.push((ack.base_offset, position, len));
            position += len;
        }
    }
    let path = tmp.path().join("00000000000000000000.log");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let segment_len = file.metadata().unwrap().len();
    assert_eq!(
        segment_len, position,
        "the first segment holds exactly these batches"
    );
    let log_end = log.watermarks().log_end;
    let later = first_segment.last().unwrap().0 + 3; // first offset of the next segment

    for byte in 0..segment_len {
        let mut original = [0u8];
        file.read_exact_at(&mut original, byte).unwrap();
        file.write_all_at(&[original[0] ^ 0x10], byte).unwrap();

        let &(base, start, _) = first_segment
            .iter()
            .find(|(_, start, len)| (*start..start + len).contains(&byte))
            .unwrap();
        match log.read(base, 1 << 20, Isolation::Durable) {
            Err(Error::Corruption {
                path: p, position, ..
            }) => {
                assert_eq!(p, path);
                assert!(
                    position <= start,
                    "byte {byte}: reported at {position}, batch at {start}"
                );
            }
            other => panic!("byte {byte}: damaged batch at {start} served: {other:?}"),
        }
        // The rest of the log is still served.
        let read = log.read(later, 1 << 20, Isolation::Durable).unwrap();
        assert!(read.batch_count > 0 && read.next_offset <= log_end);

        file.write_all_at(&original, byte).unwrap();
    }
    // Undamaged again: everything reads.
    assert!(
        log.read(0, 1 << 20, Isolation::Durable)
            .unwrap()
            .batch_count
            > 0
    );
}
