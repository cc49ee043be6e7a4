//! [`Committer`]: a small, fixed pool of threads that completes the async
//! appends ([`Log::append_then`]) of any number of partitions, so no
//! thread is started per partition. It only schedules: the sync itself is
//! the partition's own group commit (`commit.rs`).

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::Log;
use crate::util::lock;

/// A small, fixed pool of threads that runs the syncs of async appends
/// ([`Log::append_then`]) for any number of partitions: the thread count
/// does not grow with partitions. Each request names a partition with
/// waiting appends; a thread syncs it until none is left.
#[derive(Debug)]
pub struct Committer {
    queue: Arc<(Mutex<CommitQueue>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct CommitQueue {
    logs: std::collections::VecDeque<Arc<Log>>,
    stopping: bool,
    /// Threads asleep waiting for work: a request wakes one only if there
    /// is one (a notify is a `futex` call even with nobody asleep).
    sleeping: usize,
}

impl Committer {
    /// Starts `threads` committer threads (at least one).
    pub fn start(threads: usize) -> Committer {
        let queue = Arc::new((Mutex::new(CommitQueue::default()), Condvar::new()));
        let threads = (0..threads.max(1))
            .map(|i| {
                let queue = Arc::clone(&queue);
                std::thread::Builder::new()
                    .name(format!("log-commit-{i}"))
                    .spawn(move || committer_loop(&queue))
            })
            .filter_map(|spawned| match spawned {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::error!(error = %err, "cannot start a committer thread");
                    None
                }
            })
            .collect();
        Committer { queue, threads }
    }

    pub(super) fn request(&self, log: Arc<Log>) {
        let (queue, wake) = &*self.queue;
        let mut queue = lock(queue);
        if queue.logs.iter().any(|queued| Arc::ptr_eq(queued, &log)) {
            // Already queued: a thread will sync it and serve this waiter
            // too; waking another would cost a context switch for nothing.
            return;
        }
        queue.logs.push_back(log);
        if self.threads.is_empty() {
            // No thread could be started: do the work here rather than never.
            let log = queue.logs.pop_back();
            drop(queue);
            if let Some(log) = log {
                log.drive_waiters();
            }
            return;
        }
        let wake_one = queue.sleeping > 0;
        // Woken after the lock is released, so the thread does not wake
        // only to wait for it.
        drop(queue);
        if wake_one {
            wake.notify_one();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        {
            let (queue, wake) = &*self.queue;
            lock(queue).stopping = true;
            wake.notify_all();
        }
        let me = std::thread::current().id();
        for thread in self.threads.drain(..) {
            // Dropped from one of its own callbacks: that thread exits by
            // itself once its work is done; joining it here would deadlock.
            if thread.thread().id() != me {
                let _ = thread.join();
            }
        }
    }
}

fn committer_loop(queue: &(Mutex<CommitQueue>, Condvar)) {
    let (queue, wake) = queue;
    loop {
        let log = {
            let mut guard = lock(queue);
            loop {
                if let Some(log) = guard.logs.pop_front() {
                    break log;
                }
                if guard.stopping {
                    return;
                }
                guard.sleeping += 1;
                guard = wake.wait(guard).unwrap_or_else(PoisonError::into_inner);
                guard.sleeping -= 1;
            }
        };
        log.drive_waiters();
    }
}
