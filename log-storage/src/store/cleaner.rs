//! The store's log cleaner: [`Store::clean_dirtiest`] (one pass on the
//! dirtiest compacted partition whose pass is due),
//! [`Store::compress_coldest`] (one cold segment of a topic with
//! `cold.compression.type` compressed) and [`Cleaners`], the bounded set of
//! threads that call them, cleaning first, each with a key map of its own
//! (`StoreConfig::cleaner_threads`, `cleaner_key_map_bytes`).
//!
//! A partition whose pass fails is logged, recorded in its
//! [`CleanerStats`](crate::CleanerStats) and left alone for a backoff; the
//! threads go on with the others and retry it later, so the cleaner never
//! stops silently (Kafka's "uncleanable partition"). What a pass does to a
//! partition is the partition's business (`partition/clean/`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::Duration;

use super::{Store, Topic};
use crate::error::{Error, io_error};
use crate::partition::{CleanReport, CompressReport, KeyMap};
use crate::util::{duration_ms, lock, read};

/// What [`Store::clean_dirtiest`] cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanedPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// What the pass did.
    pub report: CleanReport,
}

impl Store {
    /// Cleans the dirtiest partition of a compacted topic whose pass is due
    /// ([`CleanerStats::due`](crate::CleanerStats::due)), skipping those
    /// another thread is cleaning and those whose last pass failed less
    /// than `failure_backoff` ago. `None` when no pass is due.
    ///
    /// # Errors
    ///
    /// The chosen partition's pass failed ([`Log::clean`](crate::Log::clean));
    /// the next call picks another one.
    pub fn clean_dirtiest(
        &self,
        now_ms: i64,
        map: &mut KeyMap,
        failure_backoff: Duration,
    ) -> Result<Option<CleanedPartition>, Error> {
        self.check_open()?;
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        let mut dirtiest: Option<(f64, String, u32, Arc<crate::Log>)> = None;
        for topic in topics {
            let (partitions, config) = {
                let meta = read(&topic.meta);
                (meta.partitions, meta.config.clone())
            };
            if !config.cleanup.cleanup_policy.compacts() {
                continue;
            }
            for partition in 0..partitions {
                let Ok(log) = self.open_partition(&topic, partition) else {
                    continue;
                };
                if lock(&self.cleaning).contains(log.dir()) {
                    continue;
                }
                let stats = match log.cleaner_stats(now_ms) {
                    Ok(stats) => stats,
                    Err(err) => {
                        tracing::warn!(topic = %topic.name, partition, error = %err, "cannot judge a partition for cleaning");
                        continue;
                    }
                };
                let backing_off = stats.last_failure.is_some_and(|failed| {
                    now_ms.saturating_sub(failed) < duration_ms(failure_backoff)
                });
                if !stats.due || backing_off {
                    continue;
                }
                if dirtiest
                    .as_ref()
                    .is_none_or(|(ratio, ..)| stats.dirty_ratio > *ratio)
                {
                    dirtiest = Some((stats.dirty_ratio, topic.name.clone(), partition, log));
                }
            }
        }
        let Some((_, topic, partition, log)) = dirtiest else {
            return Ok(None);
        };
        let dir = log.dir().to_path_buf();
        if !lock(&self.cleaning).insert(dir.clone()) {
            return Ok(None);
        }
        let result = log.clean(now_ms, map);
        lock(&self.cleaning).remove(&dir);
        Ok(result?.map(|report| CleanedPartition {
            topic,
            partition,
            report,
        }))
    }
}

/// What [`Store::compress_coldest`] compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressedPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// What the pass did.
    pub report: CompressReport,
}

impl Store {
    /// Compresses one cold segment of a partition whose topic sets a cold
    /// codec ([`Log::compress_cold`](crate::Log::compress_cold)), skipping
    /// partitions another thread is rewriting and those whose last pass
    /// failed less than `failure_backoff` ago. `None` when no segment is
    /// cold.
    ///
    /// # Errors
    ///
    /// The chosen partition's pass failed; the next call picks another
    /// one.
    pub fn compress_coldest(
        &self,
        now_ms: i64,
        failure_backoff: Duration,
    ) -> Result<Option<CompressedPartition>, Error> {
        self.check_open()?;
        let topics: Vec<Arc<Topic>> = read(&self.topics).values().cloned().collect();
        for topic in topics {
            let (partitions, config) = {
                let meta = read(&topic.meta);
                (meta.partitions, meta.config.clone())
            };
            if config.cleanup.cold_codec == log_format::Codec::None {
                continue;
            }
            for partition in 0..partitions {
                let Ok(log) = self.open_partition(&topic, partition) else {
                    continue;
                };
                let dir = log.dir().to_path_buf();
                if lock(&self.cleaning).contains(&dir) {
                    continue;
                }
                let backing_off = log.last_rewrite_failure().is_some_and(|failed| {
                    now_ms.saturating_sub(failed) < duration_ms(failure_backoff)
                });
                if backing_off || !log.has_cold_segment(now_ms).unwrap_or(false) {
                    continue;
                }
                if !lock(&self.cleaning).insert(dir.clone()) {
                    continue;
                }
                let result = log.compress_cold(now_ms);
                lock(&self.cleaning).remove(&dir);
                if let Some(report) = result? {
                    return Ok(Some(CompressedPartition {
                        topic: topic.name.clone(),
                        partition,
                        report,
                    }));
                }
            }
        }
        Ok(None)
    }
}

/// The cleaner threads of a started store. Stops (and joins them, each
/// after the pass it is in) when dropped.
#[derive(Debug)]
pub(super) struct Cleaners {
    stop: Arc<(Mutex<bool>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// How a cleaner thread runs.
#[derive(Debug, Clone, Copy)]
pub(super) struct CleanerSettings {
    pub(super) threads: usize,
    pub(super) key_map_bytes: usize,
    /// Sleep between looks when no pass is due, and the wait before a
    /// failed partition is tried again.
    pub(super) backoff: Duration,
}

impl Cleaners {
    /// Starts `settings.threads` cleaner threads on `store` (held weakly).
    pub(super) fn start(store: &Arc<Store>, settings: CleanerSettings) -> Result<Cleaners, Error> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let mut threads = Vec::with_capacity(settings.threads);
        let per_thread = settings.key_map_bytes / settings.threads.max(1);
        for i in 0..settings.threads {
            let store = Arc::downgrade(store);
            let stop = Arc::clone(&stop);
            let thread = std::thread::Builder::new()
                .name(format!("log-cleaner-{i}"))
                .spawn(move || cleaner_loop(&store, &stop, per_thread, settings.backoff))
                .map_err(io_error("start a cleaner thread", Path::new("")))?;
            threads.push(thread);
        }
        Ok(Cleaners { stop, threads })
    }
}

impl Drop for Cleaners {
    fn drop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *lock(stopped) = true;
        wake.notify_all();
        for thread in self.threads.drain(..) {
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn cleaner_loop(
    store: &Weak<Store>,
    stop: &(Mutex<bool>, Condvar),
    key_map_bytes: usize,
    backoff: Duration,
) {
    let mut map = KeyMap::with_memory(key_map_bytes);
    let backoff = backoff.max(Duration::from_millis(1));
    loop {
        let cleaned = {
            let Some(store) = store.upgrade() else {
                return;
            };
            if *lock(&stop.0) {
                return;
            }
            match store.clean_dirtiest(crate::util::now_ms(), &mut map, backoff) {
                Ok(Some(cleaned)) => {
                    tracing::info!(
                        topic = %cleaned.topic,
                        partition = cleaned.partition,
                        bytes_before = cleaned.report.bytes_before,
                        bytes_after = cleaned.report.bytes_after,
                        "partition cleaned"
                    );
                    true
                }
                Ok(None) => match store.compress_coldest(crate::util::now_ms(), backoff) {
                    Ok(Some(_)) => true,
                    Ok(None) => false,
                    Err(Error::StoreClosed { .. }) => return,
                    Err(_) => true,
                },
                Err(Error::StoreClosed { .. }) => return,
                // Logged by the partition; another one goes next.
                Err(_) => true,
            }
        };
        if cleaned {
            continue;
        }
        let (stopped, wake) = stop;
        let guard = lock(stopped);
        if *guard {
            return;
        }
        let _ = wake
            .wait_timeout(guard, backoff)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// The partitions a cleaner is in the middle of, by directory.
pub(super) type Cleaning = Mutex<std::collections::HashSet<PathBuf>>;
