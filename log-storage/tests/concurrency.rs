//! Readers and writers do not wait for each other's I/O: a read completes
//! while an append is stuck inside its write(2), and sees only what was
//! published before it.
#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use bytes::BytesMut;
use log_storage::{Ack, AppendOptions, FileHandle, IndexFile, Isolation, Log, LogConfig, SimFs};

use common::{Gate, GatedFs};

/// A gate whose next data write parks until the test lets it go.
#[derive(Debug)]
struct WriteGate {
    armed: Arc<AtomicBool>,
    gate: Arc<Barrier>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn FileHandle>,
    armed: Arc<AtomicBool>,
    gate: Arc<Barrier>,
}

impl IndexFile for GatedFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<usize> {
        self.inner.read_at(buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if buf.len() > 100 && self.armed.swap(false, Ordering::SeqCst) {
            self.gate.wait(); // the write has started
            self.gate.wait(); // the test let it finish
        }
        self.inner.write_all_at(buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
}

impl FileHandle for GatedFile {}

impl Gate for WriteGate {
    fn file(&self, file: Arc<dyn FileHandle>) -> Arc<dyn FileHandle> {
        Arc::new(GatedFile {
            inner: file,
            armed: self.armed.clone(),
            gate: self.gate.clone(),
        })
    }
}

fn batch() -> BytesMut {
    common::batch_of(0, [[5u8; 200]], None)
}

#[test]
fn a_read_completes_while_an_append_is_inside_its_write() {
    let armed = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Barrier::new(2));
    let fs = GatedFs {
        inner: SimFs::new(),
        gate: WriteGate {
            armed: armed.clone(),
            gate: gate.clone(),
        },
    };
    let log = Arc::new(Log::open(Arc::new(fs), "/c/p", LogConfig::default()).unwrap());
    log.append(batch(), AppendOptions::default()).unwrap();
    armed.store(true, Ordering::SeqCst);
    let writer = {
        let log = log.clone();
        let options = AppendOptions {
            ack: Ack::Written,
            ..AppendOptions::default()
        };
        std::thread::spawn(move || log.append(batch(), options).unwrap())
    };
    gate.wait(); // the writer is now inside write(2)
    // Reads and watermarks do not wait for it, and see the published end.
    // (On another thread, so that a regression fails instead of hanging.)
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let read = log.read(0, 1 << 20, Isolation::Written).unwrap();
            tx.send((read.batch_count, read.next_offset, log.watermarks().log_end))
                .unwrap();
        })
    };
    let seen = rx.recv_timeout(std::time::Duration::from_secs(20));
    gate.wait(); // let the write finish
    reader.join().unwrap();
    assert_eq!(seen, Ok((1, 1, 1)), "the read waited for the write");
    let ack = writer.join().unwrap();
    assert_eq!(ack.base_offset, 1);
    assert_eq!(
        log.read(0, 1 << 20, Isolation::Written)
            .unwrap()
            .next_offset,
        2
    );
}
