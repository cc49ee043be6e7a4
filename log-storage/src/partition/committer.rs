//! [`Committer`]: a small, fixed pool of threads that completes the async
//! appends ([`Log::append_then`]) of any number of partitions, so no
//! thread is started per partition. It only schedules: the sync itself is
//! the partition's own group commit (`commit.rs`). Where the completions
//! of a sync run is the embedder's choice ([`Dispatch`]): on the committer
//! thread by default, or handed as one batch to, say, an async runtime, so
//! that one sync's acks reach the network together.

use std::sync::{Arc, Condvar, Mutex, PoisonError};

use super::Log;
use super::commit::Completions;
use crate::util::lock;

/// Where a [`Committer`] runs the completions of each sync: a function
/// handed every batch ([`Completions`]) on the committer thread that
/// synced. [`Dispatch::inline`] (the default) runs them there; a server can
/// instead hand the batch to its runtime in one wake-up, so that the acks
/// of one `fdatasync` are sent together rather than one network write
/// each. The function must not block on the committer; whatever it does
/// not run, dropping the batch runs.
#[derive(Clone)]
pub struct Dispatch(Arc<dyn Fn(Completions) + Send + Sync>);

impl Dispatch {
    /// A dispatcher calling `f` with each sync's completions.
    pub fn new(f: impl Fn(Completions) + Send + Sync + 'static) -> Dispatch {
        Dispatch(Arc::new(f))
    }

    /// Runs the completions on the committer thread, in order.
    pub fn inline() -> Dispatch {
        Dispatch::new(Completions::run)
    }

    fn call(&self, completions: Completions) {
        (self.0)(completions)
    }
}

impl Default for Dispatch {
    fn default() -> Self {
        Dispatch::inline()
    }
}

impl std::fmt::Debug for Dispatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dispatch(..)")
    }
}

/// Two dispatchers are equal when they are the same function (the same
/// `Arc`), so settings holding one compare as settings do.
impl PartialEq for Dispatch {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Dispatch {}

/// A small, fixed pool of threads that runs the syncs of async appends
/// ([`Log::append_then`]) for any number of partitions: the thread count
/// does not grow with partitions. Each request names a partition with
/// waiting appends; a thread syncs it until none is left.
#[derive(Debug)]
pub struct Committer {
    queue: Arc<(Mutex<CommitQueue>, Condvar)>,
    threads: Vec<std::thread::JoinHandle<()>>,
    dispatch: Dispatch,
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
    /// Starts `threads` committer threads (at least one), running
    /// completions on themselves ([`Dispatch::inline`]).
    pub fn start(threads: usize) -> Committer {
        Committer::start_with(threads, Dispatch::inline())
    }

    /// Starts `threads` committer threads (at least one) that hand each
    /// sync's completions to `dispatch`.
    pub fn start_with(threads: usize, dispatch: Dispatch) -> Committer {
        let queue = Arc::new((Mutex::new(CommitQueue::default()), Condvar::new()));
        let threads = (0..threads.max(1))
            .map(|i| {
                let queue = Arc::clone(&queue);
                let dispatch = dispatch.clone();
                std::thread::Builder::new()
                    .name(format!("log-commit-{i}"))
                    .spawn(move || committer_loop(&queue, &dispatch))
            })
            .filter_map(|spawned| match spawned {
                Ok(handle) => Some(handle),
                Err(err) => {
                    tracing::error!(error = %err, "cannot start a committer thread");
                    None
                }
            })
            .collect();
        Committer {
            queue,
            threads,
            dispatch,
        }
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
                log.drive_waiters(&|batch| self.dispatch.call(batch));
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

fn committer_loop(queue: &(Mutex<CommitQueue>, Condvar), dispatch: &Dispatch) {
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
        log.drive_waiters(&|batch| dispatch.call(batch));
    }
}
