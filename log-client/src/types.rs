//! The Rust types of the client's signatures: read positions and what to do
//! when one falls outside the log, ack and isolation levels, record
//! formats, watermarks and resolved offsets.
//!
//! Each mirrors a `log.v1` message or enum and is converted to or from it
//! inside the crate, so callers of [`Client`](crate::Client),
//! [`Producer`](crate::Producer) and [`Consumer`](crate::Consumer) never
//! handle generated types or their `i32` enum fields. The generated types
//! stay available in [`proto`](crate::proto) for raw calls.

use std::time::Duration;

use crate::proto;
use log_format::Codec;

/// Where a read starts in a partition.
///
/// When the position falls outside the log (an offset below the log start
/// or past the log end), or names a group that never committed, the
/// [`ResetPolicy`] decides; [`Position::default_reset`] gives the one used
/// when none is set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Position {
    /// This offset.
    Offset(u64),
    /// The first record appended at or after this server append time, in
    /// milliseconds since the Unix epoch.
    Time(i64),
    /// The log start.
    Earliest,
    /// The log end: only records appended from now on.
    Latest,
    /// This many records before the log end (at most back to the log
    /// start).
    FromEnd(u64),
    /// The committed offset of this consumer group.
    Committed(String),
}

impl Position {
    /// The committed offset of `group` ([`Position::Committed`]).
    pub fn committed(group: impl Into<String>) -> Position {
        Position::Committed(group.into())
    }

    /// The reset policy used when none is set: [`ResetPolicy::Earliest`]
    /// for [`Position::Committed`] (a group that never committed reads from
    /// the log start), [`ResetPolicy::Error`] for every other position.
    pub fn default_reset(&self) -> ResetPolicy {
        match self {
            Position::Committed(_) => ResetPolicy::Earliest,
            _ => ResetPolicy::Error,
        }
    }

    /// The `log.v1` message, with `reset` (`None`: the
    /// [default](Self::default_reset)).
    pub(crate) fn to_proto(&self, reset: Option<ResetPolicy>) -> proto::Position {
        use proto::position::Position as Kind;
        let kind = match self {
            Position::Offset(offset) => Kind::Offset(*offset),
            Position::Time(ms) => Kind::Time(timestamp(*ms)),
            Position::Earliest => Kind::Boundary(proto::Boundary::Earliest as i32),
            Position::Latest => Kind::Boundary(proto::Boundary::Latest as i32),
            Position::FromEnd(count) => Kind::FromEnd(*count),
            Position::Committed(group) => Kind::CommittedGroup(group.clone()),
        };
        let reset = reset.unwrap_or_else(|| self.default_reset());
        proto::Position {
            position: Some(kind),
            reset_policy: proto::ResetPolicy::from(reset) as i32,
        }
    }
}

impl From<Position> for proto::Position {
    /// The message for `position` with its [default
    /// reset](Position::default_reset), for raw requests (e.g. a
    /// `SubscribeRequest` built by hand).
    fn from(position: Position) -> proto::Position {
        position.to_proto(None)
    }
}

/// What the server does when a [`Position`] falls outside the log, or names
/// a group with no committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetPolicy {
    /// Fail: OUT_OF_RANGE, reason `OFFSET_OUT_OF_RANGE` (with the
    /// `log_start_offset` and `log_end_offset` metadata), or NOT_FOUND,
    /// reason `NO_COMMITTED_OFFSET`, for a group that never committed.
    Error,
    /// Continue from the log start.
    Earliest,
    /// Continue from the log end.
    Latest,
}

impl From<ResetPolicy> for proto::ResetPolicy {
    fn from(reset: ResetPolicy) -> proto::ResetPolicy {
        match reset {
            ResetPolicy::Error => proto::ResetPolicy::Error,
            ResetPolicy::Earliest => proto::ResetPolicy::Earliest,
            ResetPolicy::Latest => proto::ResetPolicy::Latest,
        }
    }
}

/// When a produce is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Ack {
    /// The topic's default ack (itself [`Ack::Durable`] unless the topic
    /// was configured otherwise). The default.
    #[default]
    TopicDefault,
    /// After the write reached the operating system: survives a crash of
    /// the server, not of the machine.
    Written,
    /// After fdatasync: survives power loss.
    Durable,
}

impl From<Ack> for proto::Ack {
    fn from(ack: Ack) -> proto::Ack {
        match ack {
            Ack::TopicDefault => proto::Ack::Unspecified,
            Ack::Written => proto::Ack::Written,
            Ack::Durable => proto::Ack::Durable,
        }
    }
}

/// Which records a reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Isolation {
    /// Only what is fsynced (below the durable end offset): nothing a crash
    /// could take back. The default.
    #[default]
    Durable,
    /// Everything written (below the log end offset).
    Written,
}

impl From<Isolation> for proto::Isolation {
    fn from(isolation: Isolation) -> proto::Isolation {
        match isolation {
            Isolation::Durable => proto::Isolation::Durable,
            Isolation::Written => proto::Isolation::Written,
        }
    }
}

/// How a read returns records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecordFormat {
    /// Decoded records (`FetchResponse::records`). The default.
    #[default]
    Records,
    /// The stored batches in the `log-format` encoding, back to back, as
    /// read from disk (`FetchResponse::encoded_batches`). Whole batches:
    /// the first may begin before the requested offset.
    EncodedBatches,
}

impl From<RecordFormat> for proto::RecordFormat {
    fn from(format: RecordFormat) -> proto::RecordFormat {
        match format {
            RecordFormat::Records => proto::RecordFormat::Records,
            RecordFormat::EncodedBatches => proto::RecordFormat::EncodedBatches,
        }
    }
}

/// Where a partition's offsets stand. Every end is exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Watermarks {
    /// The first offset still stored.
    pub log_start_offset: u64,
    /// The offset the next appended record gets.
    pub log_end_offset: u64,
    /// Everything below is fsynced: a crash cannot take it back.
    pub durable_end_offset: u64,
    /// Incremented each time recovery cut a torn tail after a crash:
    /// records past `durable_end_offset` seen under an older epoch may be
    /// gone.
    pub epoch: u64,
}

impl From<proto::Watermarks> for Watermarks {
    fn from(marks: proto::Watermarks) -> Watermarks {
        Watermarks {
            log_start_offset: marks.log_start_offset,
            log_end_offset: marks.log_end_offset,
            durable_end_offset: marks.durable_end_offset,
            epoch: marks.epoch,
        }
    }
}

/// Watermarks from an optional message field (unset: all zero).
pub(crate) fn watermarks(marks: Option<proto::Watermarks>) -> Watermarks {
    marks.map(Watermarks::from).unwrap_or_default()
}

/// A [`Position`] resolved on one partition
/// ([`Client::list_offsets`](crate::Client::list_offsets)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PartitionOffset {
    /// The partition.
    pub partition: u32,
    /// The offset; `None` when nothing matches (a time after the newest
    /// record).
    pub offset: Option<u64>,
    /// The partition's watermarks.
    pub watermarks: Watermarks,
}

impl From<proto::PartitionOffset> for PartitionOffset {
    fn from(resolved: proto::PartitionOffset) -> PartitionOffset {
        PartitionOffset {
            partition: resolved.partition,
            offset: resolved.offset,
            watermarks: watermarks(resolved.watermarks),
        }
    }
}

/// A consumer group's committed progress on one partition, and its lag
/// ([`Client::committed_offsets`](crate::Client::committed_offsets)).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CommittedOffset {
    /// The partition.
    pub partition: u32,
    /// The committed offset (the next to read); `None`: never committed
    /// (the lag counts from the log start).
    pub offset: Option<u64>,
    /// The commit's metadata.
    pub metadata: String,
    /// The partition's watermarks.
    pub watermarks: Watermarks,
    /// Records between the committed offset and the log end.
    pub lag_records: u64,
    /// Stored bytes between the committed offset and the log end.
    pub lag_bytes: u64,
    /// Append time at the log end minus append time at the committed
    /// offset (zero when caught up).
    pub lag_time: Duration,
}

impl From<proto::CommittedOffset> for CommittedOffset {
    fn from(committed: proto::CommittedOffset) -> CommittedOffset {
        CommittedOffset {
            partition: committed.partition,
            offset: committed.offset,
            metadata: committed.metadata,
            watermarks: watermarks(committed.watermarks),
            lag_records: committed.lag_records,
            lag_bytes: committed.lag_bytes,
            lag_time: committed.lag_time.map_or(Duration::ZERO, from_duration),
        }
    }
}

/// A topic's settings. In [`Client::create_topic`](crate::Client::create_topic),
/// `None` fields take the server's defaults; in a [`Topic`] they show the
/// effective values.
///
/// Build one from [`TopicConfig::default`] with the `with_*` methods (the
/// struct is `#[non_exhaustive]`: no struct literal outside this crate):
///
/// ```
/// use std::time::Duration;
/// use log_client::{Ack, TopicConfig};
///
/// let config = TopicConfig::default()
///     .with_segment_bytes(64 << 20)
///     .with_retention(Duration::from_secs(3600))
///     .with_default_ack(Ack::Written);
/// assert_eq!(config.segment_bytes, Some(64 << 20));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct TopicConfig {
    /// Retention by age: sealed segments older than this are deleted.
    /// `None` or zero: kept whatever their age.
    pub retention: Option<Duration>,
    /// Retention by size per partition. `None` or zero: no limit.
    pub retention_bytes: Option<u64>,
    /// Roll to a new segment at this size (server default 1 GiB).
    pub segment_bytes: Option<u64>,
    /// Roll to a new segment at this age (server default 7 days).
    pub segment_age: Option<Duration>,
    /// Largest encoded batch accepted, header included (server default
    /// 8 MiB, at most the server's limit).
    pub max_batch_bytes: Option<u32>,
    /// The ack producers get when they ask for [`Ack::TopicDefault`]
    /// ([`Ack::TopicDefault`] here: the server's default, durable).
    pub default_ack: Ack,
    /// What happens to old segments (Kafka's `cleanup.policy`); `None`:
    /// the server's default, delete.
    pub cleanup_policy: Option<CleanupPolicy>,
    /// Kafka's `min.cleanable.dirty.ratio` (server default 0.5).
    pub min_cleanable_dirty_ratio: Option<f64>,
    /// Kafka's `min.compaction.lag.ms` (server default zero).
    pub min_compaction_lag: Option<Duration>,
    /// Kafka's `max.compaction.lag.ms` (`None`: no limit).
    pub max_compaction_lag: Option<Duration>,
    /// Kafka's `delete.retention.ms`: how long a tombstone stays after its
    /// first cleaning (server default 1 day).
    pub delete_retention: Option<Duration>,
    /// `cold.compression.type`: the codec the server recompresses cold
    /// sealed segments with ([`Codec::Zstd`] or [`Codec::Lz4`];
    /// `None` or [`Codec::None`]: off, the default).
    pub cold_compression: Option<Codec>,
    /// `cold.compression.lag.ms`: how old a sealed segment's newest record
    /// must be before it is compressed (server default 1 hour).
    pub cold_compression_lag: Option<Duration>,
}

/// What happens to a topic's old sealed segments (Kafka's
/// `cleanup.policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CleanupPolicy {
    /// Retention deletes whole old segments by age and size.
    Delete,
    /// The cleaner keeps the latest record per key (offsets never change:
    /// a compacted partition has gaps).
    Compact,
    /// Both.
    CompactDelete,
}

impl From<CleanupPolicy> for proto::CleanupPolicy {
    fn from(policy: CleanupPolicy) -> proto::CleanupPolicy {
        match policy {
            CleanupPolicy::Delete => proto::CleanupPolicy::Delete,
            CleanupPolicy::Compact => proto::CleanupPolicy::Compact,
            CleanupPolicy::CompactDelete => proto::CleanupPolicy::CompactDelete,
        }
    }
}

impl TopicConfig {
    /// Sets [`retention`](Self::retention).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// Sets [`retention_bytes`](Self::retention_bytes).
    pub fn with_retention_bytes(mut self, bytes: u64) -> Self {
        self.retention_bytes = Some(bytes);
        self
    }

    /// Sets [`segment_bytes`](Self::segment_bytes).
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = Some(bytes);
        self
    }

    /// Sets [`segment_age`](Self::segment_age).
    pub fn with_segment_age(mut self, age: Duration) -> Self {
        self.segment_age = Some(age);
        self
    }

    /// Sets [`max_batch_bytes`](Self::max_batch_bytes).
    pub fn with_max_batch_bytes(mut self, bytes: u32) -> Self {
        self.max_batch_bytes = Some(bytes);
        self
    }

    /// Sets [`default_ack`](Self::default_ack).
    pub fn with_default_ack(mut self, ack: Ack) -> Self {
        self.default_ack = ack;
        self
    }

    /// Sets [`cleanup_policy`](Self::cleanup_policy).
    pub fn with_cleanup_policy(mut self, policy: CleanupPolicy) -> Self {
        self.cleanup_policy = Some(policy);
        self
    }

    /// Sets [`min_cleanable_dirty_ratio`](Self::min_cleanable_dirty_ratio).
    pub fn with_min_cleanable_dirty_ratio(mut self, ratio: f64) -> Self {
        self.min_cleanable_dirty_ratio = Some(ratio);
        self
    }

    /// Sets [`min_compaction_lag`](Self::min_compaction_lag).
    pub fn with_min_compaction_lag(mut self, lag: Duration) -> Self {
        self.min_compaction_lag = Some(lag);
        self
    }

    /// Sets [`max_compaction_lag`](Self::max_compaction_lag).
    pub fn with_max_compaction_lag(mut self, lag: Duration) -> Self {
        self.max_compaction_lag = Some(lag);
        self
    }

    /// Sets [`delete_retention`](Self::delete_retention).
    pub fn with_delete_retention(mut self, retention: Duration) -> Self {
        self.delete_retention = Some(retention);
        self
    }

    /// Sets [`cold_compression`](Self::cold_compression) and
    /// [`cold_compression_lag`](Self::cold_compression_lag).
    pub fn with_cold_compression(mut self, codec: Codec, lag: Duration) -> Self {
        self.cold_compression = Some(codec);
        self.cold_compression_lag = Some(lag);
        self
    }
}

impl From<TopicConfig> for proto::TopicConfig {
    fn from(config: TopicConfig) -> proto::TopicConfig {
        proto::TopicConfig {
            retention: config.retention.map(to_duration),
            retention_bytes: config.retention_bytes,
            segment_bytes: config.segment_bytes,
            segment_age: config.segment_age.map(to_duration),
            max_batch_bytes: config.max_batch_bytes,
            default_ack: proto::Ack::from(config.default_ack) as i32,
            cleanup_policy: config.cleanup_policy.map_or(
                proto::CleanupPolicy::Unspecified,
                proto::CleanupPolicy::from,
            ) as i32,
            min_cleanable_dirty_ratio: config.min_cleanable_dirty_ratio,
            min_compaction_lag: config.min_compaction_lag.map(to_duration),
            max_compaction_lag: config.max_compaction_lag.map(to_duration),
            delete_retention: config.delete_retention.map(to_duration),
            cold_compression: match config.cold_compression {
                None => proto::Compression::Unspecified,
                Some(Codec::Lz4) => proto::Compression::Lz4,
                Some(Codec::Zstd) => proto::Compression::Zstd,
                // The server refuses the others; NONE is off.
                Some(_) => proto::Compression::None,
            } as i32,
            cold_compression_lag: config.cold_compression_lag.map(to_duration),
        }
    }
}

impl From<proto::TopicConfig> for TopicConfig {
    fn from(config: proto::TopicConfig) -> TopicConfig {
        TopicConfig {
            retention: config.retention.map(from_duration),
            retention_bytes: config.retention_bytes,
            segment_bytes: config.segment_bytes,
            segment_age: config.segment_age.map(from_duration),
            max_batch_bytes: config.max_batch_bytes,
            default_ack: match proto::Ack::try_from(config.default_ack) {
                Ok(proto::Ack::Written) => Ack::Written,
                Ok(proto::Ack::Durable) => Ack::Durable,
                Ok(proto::Ack::Unspecified) | Err(_) => Ack::TopicDefault,
            },
            cleanup_policy: match proto::CleanupPolicy::try_from(config.cleanup_policy) {
                Ok(proto::CleanupPolicy::Delete) => Some(CleanupPolicy::Delete),
                Ok(proto::CleanupPolicy::Compact) => Some(CleanupPolicy::Compact),
                Ok(proto::CleanupPolicy::CompactDelete) => Some(CleanupPolicy::CompactDelete),
                Ok(proto::CleanupPolicy::Unspecified) | Err(_) => None,
            },
            min_cleanable_dirty_ratio: config.min_cleanable_dirty_ratio,
            min_compaction_lag: config.min_compaction_lag.map(from_duration),
            max_compaction_lag: config.max_compaction_lag.map(from_duration),
            delete_retention: config.delete_retention.map(from_duration),
            cold_compression: match proto::Compression::try_from(config.cold_compression) {
                Ok(proto::Compression::None) => Some(Codec::None),
                Ok(proto::Compression::Lz4) => Some(Codec::Lz4),
                Ok(proto::Compression::Zstd) => Some(Codec::Zstd),
                Ok(proto::Compression::Unspecified) | Err(_) => None,
            },
            cold_compression_lag: config.cold_compression_lag.map(from_duration),
        }
    }
}

/// A topic.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Topic {
    /// Its name.
    pub name: String,
    /// Its partitions, numbered from 0.
    pub partition_count: u32,
    /// Its effective settings.
    pub config: TopicConfig,
}

impl From<proto::Topic> for Topic {
    fn from(topic: proto::Topic) -> Topic {
        Topic {
            name: topic.name,
            partition_count: topic.partition_count,
            config: topic.config.map(TopicConfig::from).unwrap_or_default(),
        }
    }
}

/// One partition's state.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct PartitionInfo {
    /// The partition.
    pub partition: u32,
    /// Its watermarks.
    pub watermarks: Watermarks,
    /// Bytes stored (all segments).
    pub size_bytes: u64,
    /// Segment files.
    pub segment_count: u32,
    /// Append time of the newest record, ms since the Unix epoch (`None`:
    /// no record).
    pub last_append_time: Option<i64>,
    /// Group-commit fdatasyncs of this partition since the server opened
    /// it.
    pub fsyncs: u64,
    /// How long each fdatasync of its segments took, since the server
    /// opened it.
    pub fsync_latency: LatencySummary,
    /// How long each DURABLE append waited in the store between its write
    /// and its ack (group-commit queueing plus the sync it rode), since
    /// the server opened the partition: the store's share of a DURABLE
    /// ack's latency.
    pub durable_wait: LatencySummary,
    /// The log cleaner's view of it (all zero unless its topic compacts).
    pub cleaner: CleanerInfo,
}

/// What the log cleaner knows of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct CleanerInfo {
    /// Bytes written since its last cleaning over its cleanable bytes.
    pub dirty_ratio: f64,
    /// When its last cleaning since the server opened it finished, ms since
    /// the Unix epoch.
    pub last_clean_time: Option<i64>,
    /// Bytes its cleanings reclaimed since the server opened it.
    pub bytes_reclaimed: u64,
    /// Cleanings since the server opened it.
    pub passes: u64,
    /// When its last cleaning failed, if one did (it is retried later).
    pub last_failure: Option<i64>,
    /// The first offset the cleaner has not looked at.
    pub cleaner_point: u64,
    /// Every sealed segment below this offset is compressed (cold
    /// compression).
    pub compressed_below: u64,
    /// Cold segments compressed since the server opened the partition.
    pub cold_segments: u64,
    /// Bytes cold compression saved since the server opened the partition.
    pub cold_bytes_saved: u64,
}

impl From<Option<proto::CleanerInfo>> for CleanerInfo {
    fn from(info: Option<proto::CleanerInfo>) -> CleanerInfo {
        let info = info.unwrap_or_default();
        CleanerInfo {
            dirty_ratio: info.dirty_ratio,
            last_clean_time: info.last_clean_time.as_ref().map(millis),
            bytes_reclaimed: info.bytes_reclaimed,
            passes: info.passes,
            last_failure: info.last_failure.as_ref().map(millis),
            cleaner_point: info.cleaner_point,
            compressed_below: info.compressed_below,
            cold_segments: info.cold_segments,
            cold_bytes_saved: info.cold_bytes_saved,
        }
    }
}

/// A latency histogram kept by the server, summarised. Quantiles are
/// within 12.5 % of the true value; all zero when nothing was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// The median.
    pub p50: std::time::Duration,
    /// The 99th percentile.
    pub p99: std::time::Duration,
    /// The largest sample.
    pub max: std::time::Duration,
}

impl From<Option<proto::LatencySummary>> for LatencySummary {
    fn from(summary: Option<proto::LatencySummary>) -> LatencySummary {
        let s = summary.unwrap_or_default();
        LatencySummary {
            count: s.count,
            p50: std::time::Duration::from_micros(s.p50_us),
            p99: std::time::Duration::from_micros(s.p99_us),
            max: std::time::Duration::from_micros(s.max_us),
        }
    }
}

impl From<proto::PartitionInfo> for PartitionInfo {
    fn from(info: proto::PartitionInfo) -> PartitionInfo {
        PartitionInfo {
            partition: info.partition,
            watermarks: watermarks(info.watermarks),
            size_bytes: info.size_bytes,
            segment_count: info.segment_count,
            last_append_time: info.last_append_time.as_ref().map(millis),
            fsyncs: info.fsyncs,
            fsync_latency: info.fsync_latency.into(),
            durable_wait: info.durable_wait.into(),
            cleaner: info.cleaner.into(),
        }
    }
}

/// A topic and the state of each of its partitions
/// ([`Client::get_topic`](crate::Client::get_topic)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TopicInfo {
    /// The topic.
    pub topic: Topic,
    /// Every partition, in order.
    pub partitions: Vec<PartitionInfo>,
}

/// A protobuf duration for `d` (saturating).
pub(crate) fn to_duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        // Below 1_000_000_000: fits an i32.
        nanos: d.subsec_nanos() as i32,
    }
}

/// A protobuf timestamp for `ms` milliseconds since the Unix epoch.
pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        // In 0..1_000_000_000: fits an i32.
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Milliseconds since the Unix epoch of a protobuf timestamp (saturating).
pub(crate) fn millis(ts: &prost_types::Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(ts.nanos) / 1_000_000)
}

/// A protobuf duration as a [`Duration`] (negative: zero).
pub(crate) fn from_duration(d: prost_types::Duration) -> Duration {
    match (u64::try_from(d.seconds), u32::try_from(d.nanos)) {
        (Ok(seconds), Ok(nanos)) if nanos < 1_000_000_000 => Duration::new(seconds, nanos),
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_convert_with_their_default_reset() {
        let offset = proto::Position::from(Position::Offset(7));
        assert_eq!(offset.position, Some(proto::position::Position::Offset(7)));
        assert_eq!(offset.reset_policy, proto::ResetPolicy::Error as i32);
        let committed = proto::Position::from(Position::committed("g"));
        assert_eq!(
            committed.position,
            Some(proto::position::Position::CommittedGroup("g".into()))
        );
        assert_eq!(committed.reset_policy, proto::ResetPolicy::Earliest as i32);
        let latest = Position::Offset(7).to_proto(Some(ResetPolicy::Latest));
        assert_eq!(latest.reset_policy, proto::ResetPolicy::Latest as i32);
        assert_eq!(
            proto::Position::from(Position::Latest).position,
            Some(proto::position::Position::Boundary(
                proto::Boundary::Latest as i32
            ))
        );
    }

    #[test]
    fn times_convert_to_timestamps_and_back() {
        for ms in [0, 1, 999, 1_000, 1_234_567, -1, -1_001] {
            let ts = timestamp(ms);
            assert!((0..1_000_000_000).contains(&ts.nanos), "{ms}: {ts:?}");
            assert_eq!(millis(&ts), ms);
        }
    }

    #[test]
    fn enums_map_to_the_proto_values() {
        assert_eq!(proto::Ack::from(Ack::default()), proto::Ack::Unspecified);
        assert_eq!(proto::Ack::from(Ack::Written), proto::Ack::Written);
        assert_eq!(proto::Ack::from(Ack::Durable), proto::Ack::Durable);
        assert_eq!(
            proto::Isolation::from(Isolation::default()),
            proto::Isolation::Durable
        );
        assert_eq!(
            proto::Isolation::from(Isolation::Written),
            proto::Isolation::Written
        );
        assert_eq!(
            proto::RecordFormat::from(RecordFormat::EncodedBatches),
            proto::RecordFormat::EncodedBatches
        );
    }

    #[test]
    fn topic_configs_round_trip() {
        let config = TopicConfig::default()
            .with_retention(Duration::from_millis(1_500))
            .with_retention_bytes(1)
            .with_segment_bytes(2)
            .with_segment_age(Duration::from_secs(3))
            .with_max_batch_bytes(4)
            .with_default_ack(Ack::Written);
        let message = proto::TopicConfig::from(config.clone());
        assert_eq!(message.default_ack, proto::Ack::Written as i32);
        assert_eq!(TopicConfig::from(message), config);
        let default = proto::TopicConfig::from(TopicConfig::default());
        assert_eq!(default, proto::TopicConfig::default());
    }

    #[test]
    fn bad_durations_are_zero() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(from_duration(d(1, 5)), Duration::new(1, 5));
        assert_eq!(from_duration(d(-1, 0)), Duration::ZERO);
        assert_eq!(from_duration(d(0, -1)), Duration::ZERO);
        assert_eq!(from_duration(d(0, 1_000_000_000)), Duration::ZERO);
    }
}
