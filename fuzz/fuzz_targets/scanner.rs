//! Fuzz target: the batch scanner over arbitrary bytes.
//!
//! Whatever the input, scanning must not panic, must not report a position
//! outside the buffer, and every batch it yields must iterate exactly the
//! records its header declares, with strictly increasing offset deltas.
//! The same bytes are scanned with the borrowing and the owning scanner,
//! which must agree. It checks no particular batch contents.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use log_format::{BytesScanner, Limits, Scanned, Scanner};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_batch_bytes: 1 << 20,
        max_records: 1 << 16,
        max_uncompressed_bytes: 4 << 20,
    };
    let mut borrowed = Vec::new();
    let mut scanner = Scanner::new(data, 0, limits);
    for scanned in scanner.by_ref() {
        match scanned {
            Scanned::Batch(view) => {
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
                borrowed.push(view.len());
            }
            Scanned::Incomplete { position, needed } => {
                assert!(position <= data.len() as u64);
                assert!(needed > 0);
            }
            Scanned::Corrupt(corrupt) => {
                assert!(corrupt.position < data.len() as u64);
            }
        }
    }
    assert!(scanner.position() <= data.len() as u64);

    let owned: Vec<usize> = BytesScanner::new(Bytes::copy_from_slice(data), 0, limits)
        .filter_map(|s| match s {
            Scanned::Batch(batch) => Some(batch.bytes().len()),
            _ => None,
        })
        .collect();
    assert_eq!(owned, borrowed);
});
