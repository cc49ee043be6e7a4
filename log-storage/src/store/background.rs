//! The store's passes over every open partition, and the one thread that
//! runs them: [`Store::flush_written`] (sync what WRITTEN appends left in
//! the page cache), [`Store::enforce_retention`] (each partition's
//! retention by age and size) and [`Background`], which calls both on their
//! intervals. Closing side by side lives here too ([`side_by_side`]): the
//! flush and the store's close share it.
//!
//! This module decides nothing about what a partition deletes or syncs:
//! each [`Log`] applies its own topic's settings.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::{Store, Topic};
use std::path::Path;

use crate::error::{Error, io_error};
use crate::partition::{Log, RetentionReport};
use crate::util::{lock, read};

/// Threads that close or flush partitions side by side.
const SIDE_BY_SIDE_THREADS: usize = 8;

/// Runs `work` on every log, `SIDE_BY_SIDE_THREADS` at a time; returns how
/// many answered `Ok(true)` and the first error.
pub(super) fn side_by_side(
    logs: &[Arc<Log>],
    work: impl Fn(&Log) -> Result<bool, Error> + Sync,
) -> (usize, Option<Error>) {
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let first_error = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..SIDE_BY_SIDE_THREADS.min(logs.len()) {
            scope.spawn(|| {
                while let Some(log) = logs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    match work(log) {
                        Ok(true) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(err) => {
                            lock(&first_error).get_or_insert(err);
                        }
                    }
                }
            });
        }
    });
    let first_error = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    (done.into_inner(), first_error)
}

/// What one [`Store::enforce_retention`] pass deleted, per partition.
pub type RetentionPass = Vec<(String, u32, RetentionReport)>;

impl Store {
    /// One retention pass, judged at `now_ms` (ms since the Unix epoch),
    /// over every partition of every topic that has a retention setting,
    /// opening partitions not yet open. Returns the partitions where
    /// something was deleted. A partition that fails is logged and skipped,
    /// so one bad partition does not stop retention elsewhere; the first
    /// error is returned after the pass.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<RetentionPass, Error> {
        self.check_open()?;
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        let mut deleted = Vec::new();
        let mut first_error = None;
        for topic in topics {
            let (partitions, config) = {
                let meta = read(&topic.meta);
                (meta.partitions, meta.config.clone())
            };
            if config.retention_max_age.is_none() && config.retention_max_bytes.is_none() {
                continue;
            }
            for partition in 0..partitions {
                let result = self
                    .open_partition(&topic, partition)
                    .and_then(|log| log.enforce_retention(now_ms));
                match result {
                    Ok(report) if !report.deleted_segments.is_empty() => {
                        deleted.push((topic.name.clone(), partition, report));
                    }
                    Ok(_) | Err(Error::TopicNotFound { .. }) => {}
                    Err(err) => {
                        tracing::warn!(topic = %topic.name, partition, error = %err, "retention failed");
                        first_error.get_or_insert(err);
                    }
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(deleted),
        }
    }

    /// The open partitions of every topic, each taken from its slot by
    /// `take` (cloned, or taken out at close).
    pub(super) fn open_logs(
        &self,
        take: impl Fn(&mut Option<Arc<Log>>) -> Option<Arc<Log>>,
    ) -> Vec<Arc<Log>> {
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        topics
            .iter()
            .flat_map(|topic| {
                read(&topic.slots)
                    .iter()
                    .filter_map(|slot| take(&mut lock(slot)))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Syncs every open partition holding WRITTEN (not yet durable) data,
    /// so it becomes durable within one flush interval. Returns how many
    /// partitions were synced.
    pub fn flush_written(&self) -> Result<usize, Error> {
        self.check_open()?;
        let logs = self.open_logs(|slot| slot.clone());
        // Side by side, as at close: many partitions' syncs overlap.
        let (synced, first_error) = side_by_side(&logs, |log| {
            let marks = log.watermarks();
            if marks.durable_end >= marks.log_end {
                return Ok(false);
            }
            log.sync().map(|_| true).inspect_err(|err| {
                tracing::warn!(dir = %log.dir().display(), error = %err, "background flush failed");
            })
        });
        match first_error {
            Some(err) => Err(err),
            None => Ok(synced),
        }
    }
}

/// The store's background work on one thread (not one per partition):
/// [`Store::flush_written`] every `flush_interval` and
/// [`Store::enforce_retention`] every `retention_interval`. Stops (and
/// joins its thread) when dropped.
#[derive(Debug)]
pub struct Background {
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Starts the background thread for `store`.
    ///
    /// The thread holds the store weakly: it ends by itself once the store
    /// is dropped, or closed. [`Store::start`] starts one inside the store.
    pub fn start(
        store: Arc<Store>,
        flush_interval: Duration,
        retention_interval: Duration,
    ) -> Result<Background, Error> {
        Background::start_weak(Arc::downgrade(&store), flush_interval, retention_interval)
    }

    pub(super) fn start_weak(
        store: Weak<Store>,
        flush_interval: Duration,
        retention_interval: Duration,
    ) -> Result<Background, Error> {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("log-store-background".into())
            .spawn(move || {
                background_loop(&store, &thread_stop, flush_interval, retention_interval)
            })
            .map_err(io_error("start the background thread", Path::new("")))?;
        Ok(Background {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *lock(stopped) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            // Dropped by its own thread (which held the last handle on the
            // store): that thread ends by itself; joining would deadlock.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn background_loop(
    store: &Weak<Store>,
    stop: &(Mutex<bool>, std::sync::Condvar),
    flush_interval: Duration,
    retention_interval: Duration,
) {
    let (stopped, wake) = stop;
    let flush_interval = flush_interval.max(Duration::from_millis(1));
    let retention_interval = retention_interval.max(Duration::from_millis(1));
    let mut next_flush = std::time::Instant::now() + flush_interval;
    let mut next_retention = std::time::Instant::now() + retention_interval;
    loop {
        {
            let mut guard = lock(stopped);
            loop {
                if *guard {
                    return;
                }
                let now = std::time::Instant::now();
                let next = next_flush.min(next_retention);
                if now >= next {
                    break;
                }
                guard = wake
                    .wait_timeout(guard, next - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        let Some(store) = store.upgrade() else {
            return;
        };
        let now = std::time::Instant::now();
        if now >= next_flush {
            if let Err(err) = store.flush_written() {
                if matches!(err, Error::StoreClosed { .. }) {
                    return;
                }
                tracing::warn!(error = %err, "background flush pass failed");
            }
            next_flush = now + flush_interval;
        }
        if now >= next_retention {
            let now_ms = crate::util::now_ms();
            match store.enforce_retention(now_ms) {
                Ok(deleted) => {
                    for (topic, partition, report) in deleted {
                        tracing::info!(
                            %topic,
                            partition,
                            segments = report.deleted_segments.len(),
                            bytes = report.deleted_bytes,
                            "retention deleted segments"
                        );
                    }
                }
                Err(Error::StoreClosed { .. }) => return,
                Err(err) => tracing::warn!(error = %err, "retention pass failed"),
            }
            next_retention = now + retention_interval;
        }
    }
}
