//! The coordinator's bounds and timings.

use std::time::Duration;

/// How the coordinator bounds groups and times rebalances. Build from
/// [`Default`] and the `with_*` methods:
/// `GroupConfig::default().with_max_groups(100)`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupConfig {
    /// Smallest session timeout a member may ask for (Kafka's
    /// `group.min.session.timeout.ms`, 6 s).
    pub min_session_timeout: Duration,
    /// Largest session timeout a member may ask for (Kafka's
    /// `group.max.session.timeout.ms`, 30 min).
    pub max_session_timeout: Duration,
    /// How long the first rebalance of an empty group waits for more
    /// members before completing (Kafka's
    /// `group.initial.rebalance.delay.ms`, 3 s), so that members started
    /// together join one generation.
    pub initial_rebalance_delay: Duration,
    /// Members per group (Kafka's `group.max.size`).
    pub max_members: usize,
    /// Groups the coordinator keeps at once.
    pub max_groups: usize,
    /// Longest group id, bytes.
    pub max_group_id_bytes: usize,
    /// Bytes of protocol metadata one member may send with a join, and of
    /// assignment the leader may give one member.
    pub max_member_bytes: usize,
    /// How often sessions and rebalance deadlines are checked.
    pub tick: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            initial_rebalance_delay: Duration::from_secs(3),
            max_members: 1000,
            max_groups: 10_000,
            max_group_id_bytes: 255,
            max_member_bytes: 1 << 20,
            tick: Duration::from_millis(100),
        }
    }
}

impl GroupConfig {
    /// Sets [`GroupConfig::min_session_timeout`].
    pub fn with_min_session_timeout(mut self, value: Duration) -> Self {
        self.min_session_timeout = value;
        self
    }

    /// Sets [`GroupConfig::max_session_timeout`].
    pub fn with_max_session_timeout(mut self, value: Duration) -> Self {
        self.max_session_timeout = value;
        self
    }

    /// Sets [`GroupConfig::initial_rebalance_delay`].
    pub fn with_initial_rebalance_delay(mut self, value: Duration) -> Self {
        self.initial_rebalance_delay = value;
        self
    }

    /// Sets [`GroupConfig::max_members`].
    pub fn with_max_members(mut self, value: usize) -> Self {
        self.max_members = value;
        self
    }

    /// Sets [`GroupConfig::max_groups`].
    pub fn with_max_groups(mut self, value: usize) -> Self {
        self.max_groups = value;
        self
    }

    /// Sets [`GroupConfig::max_group_id_bytes`].
    pub fn with_max_group_id_bytes(mut self, value: usize) -> Self {
        self.max_group_id_bytes = value;
        self
    }

    /// Sets [`GroupConfig::max_member_bytes`].
    pub fn with_max_member_bytes(mut self, value: usize) -> Self {
        self.max_member_bytes = value;
        self
    }

    /// Sets [`GroupConfig::tick`].
    pub fn with_tick(mut self, value: Duration) -> Self {
        self.tick = value;
        self
    }
}
