//! How a long-polling Fetch learns that a partition moved: a
//! `tokio::sync::watch` receiver per partition, ticked after every append,
//! sync, delete and close.
//!
//! The server that embeds this front end usually has such a signal
//! already (one attachment per partition log is allowed), so it passes its
//! own through [`Changes`]; [`OwnChanges`] is the one to use when the Kafka
//! front end runs alone. This module does not read the log.

use std::sync::Arc;

use log_storage::{Log, TopicInfo};
use tokio::sync::watch;

/// A source of change signals, one per open partition.
pub trait Changes: Send + Sync + 'static {
    /// A receiver that ticks whenever `log`'s watermarks may have moved or
    /// it was closed (its topic deleted); `None` if none can be had (the
    /// partition carries an attachment of another kind).
    fn watch(&self, topic: &TopicInfo, log: &Arc<Log>) -> Option<watch::Receiver<u64>>;
}

/// Change signals attached by this crate to each partition's log
/// ([`Log::attachment`]), for a Kafka front end that runs alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct OwnChanges;

/// What [`OwnChanges`] attaches to a log.
#[derive(Debug)]
struct Tick(watch::Sender<u64>);

impl Changes for OwnChanges {
    fn watch(&self, _topic: &TopicInfo, log: &Arc<Log>) -> Option<watch::Receiver<u64>> {
        let tick = log.attachment(|| {
            let (tx, _) = watch::channel(0u64);
            let tick = Arc::new(Tick(tx));
            let listener = Arc::clone(&tick);
            log.on_change(Arc::new(move || {
                if listener.0.receiver_count() > 0 {
                    listener.0.send_modify(|t| *t = t.wrapping_add(1));
                }
            }));
            tick
        })?;
        Some(tick.0.subscribe())
    }
}
