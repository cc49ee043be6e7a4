//! Readers and writers do not wait for each other's I/O: a read completes
//! while an append is stuck inside its write(2), and sees only what was
//! published before it.
#![allow(clippy::unwrap_used)]

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};

use bytes::BytesMut;
use log_format::{BatchBuilder, Limits, NewRecord};
use log_storage::{
    Ack, AppendOptions, DirEntry, FileHandle, Fs, IndexFile, Isolation, Log, LogConfig, OpenMode,
    SimFs,
};

/// A file system whose next data write parks until the test lets it go.
#[derive(Debug)]
struct GatedFs {
    inner: SimFs,
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

impl GatedFs {
    fn wrap(&self, file: Arc<dyn FileHandle>) -> Arc<dyn FileHandle> {
        Arc::new(GatedFile {
            inner: file,
            armed: self.armed.clone(),
            gate: self.gate.clone(),
        })
    }
}

impl Fs for GatedFs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.wrap(self.inner.create_new(path)?))
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn FileHandle>> {
        Ok(self.wrap(self.inner.open(path, mode)?))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        self.inner.read_dir(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }
    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
    fn exists(&self, path: &Path) -> io::Result<bool> {
        self.inner.exists(path)
    }
    fn available_space(&self, path: &Path) -> io::Result<u64> {
        self.inner.available_space(path)
    }
}

fn batch() -> BytesMut {
    let mut builder = BatchBuilder::new(Limits::default());
    builder.push(&NewRecord::value(0, &[5u8; 200])).unwrap();
    BytesMut::from(&builder.finish().unwrap()[..])
}

#[test]
fn a_read_completes_while_an_append_is_inside_its_write() {
    let armed = Arc::new(AtomicBool::new(false));
    let gate = Arc::new(Barrier::new(2));
    let fs = GatedFs {
        inner: SimFs::new(),
        armed: armed.clone(),
        gate: gate.clone(),
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
