//! [`Client`]: one gRPC connection to a `log-server`, with every RPC of the
//! `log.v1` API as an async method. It does no batching, buffering or
//! retrying of its own: [`Producer`](crate::Producer) and
//! [`Consumer`](crate::Consumer) build on it for that.
//!
//! Positions, levels, topics, watermarks and offsets are the crate's Rust
//! types ([`Position`], [`Isolation`], [`TopicConfig`], [`Watermarks`]…).
//! The calls that carry records or counters one to one with an RPC
//! ([`Client::produce`], [`Client::fetch`], [`Client::subscribe`],
//! [`Client::server_info`], [`Client::stats`]) take or return the generated
//! [`proto`](crate::proto) messages; [`Client::log_service`] and
//! [`Client::admin_service`] give the raw generated clients.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::error::Error;
use crate::proto;
use crate::proto::admin_service_client::AdminServiceClient;
use crate::proto::log_service_client::LogServiceClient;
use crate::types::{
    CommittedOffset, Isolation, PartitionInfo, PartitionOffset, Position, RecordFormat,
    ResetPolicy, Topic, TopicConfig, TopicInfo, Watermarks, watermarks,
};

/// Connection settings.
///
/// `#[non_exhaustive]`: start from [`ClientConfig::default`] and set fields
/// with the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use log_client::ClientConfig;
///
/// let config = ClientConfig::default()
///     .with_request_timeout(Duration::from_secs(5))
///     .with_max_message_bytes(32 << 20);
/// assert_eq!(config.request_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientConfig {
    /// Largest message this client sends or receives, in bytes. Default
    /// 16 MiB: above the server's default request limit (8 MiB) and its
    /// largest response, so no server answer is refused here.
    pub max_message_bytes: usize,
    /// Timeout of the TCP connect. Default 5 s.
    pub connect_timeout: Duration,
    /// Deadline of unary calls (a long-poll fetch adds its `max_wait`).
    /// Default 30 s.
    pub request_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_message_bytes: 16 << 20,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl ClientConfig {
    /// Sets [`max_message_bytes`](Self::max_message_bytes).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`request_timeout`](Self::request_timeout).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// Options of one [`Client::fetch`].
///
/// `#[non_exhaustive]`: start from [`FetchOptions::default`] and set fields
/// with the `with_*` methods:
///
/// ```
/// use std::time::Duration;
/// use log_client::{FetchOptions, Isolation, RecordFormat};
///
/// let options = FetchOptions::default()
///     .with_max_wait(Duration::from_millis(100))
///     .with_isolation(Isolation::Written)
///     .with_format(RecordFormat::EncodedBatches);
/// assert_eq!(options.isolation, Isolation::Written);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct FetchOptions {
    /// Most bytes to return (0: the server's default, 1 MiB).
    pub max_bytes: u32,
    /// Most records (0: the server's default).
    pub max_records: u32,
    /// Reply once this many bytes are readable.
    pub min_bytes: u32,
    /// How long the server may wait for `min_bytes` (zero: answer at once).
    pub max_wait: Duration,
    /// Which records are visible (default [`Isolation::Durable`]).
    pub isolation: Isolation,
    /// Decoded records or the stored encoded batches (default
    /// [`RecordFormat::Records`]).
    pub format: RecordFormat,
    /// What to do when the position falls outside the log (`None`: the
    /// position's [default](Position::default_reset)).
    pub reset: Option<ResetPolicy>,
}

impl FetchOptions {
    /// Sets [`max_bytes`](Self::max_bytes).
    pub fn with_max_bytes(mut self, bytes: u32) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Sets [`max_records`](Self::max_records).
    pub fn with_max_records(mut self, records: u32) -> Self {
        self.max_records = records;
        self
    }

    /// Sets [`min_bytes`](Self::min_bytes).
    pub fn with_min_bytes(mut self, bytes: u32) -> Self {
        self.min_bytes = bytes;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    pub fn with_max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Sets [`isolation`](Self::isolation).
    pub fn with_isolation(mut self, isolation: Isolation) -> Self {
        self.isolation = isolation;
        self
    }

    /// Sets [`format`](Self::format).
    pub fn with_format(mut self, format: RecordFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets [`reset`](Self::reset).
    pub fn with_reset(mut self, reset: ResetPolicy) -> Self {
        self.reset = Some(reset);
        self
    }
}

/// A connection to a `log-server`. Cheap to clone: clones share the
/// connection (HTTP/2 multiplexes their calls).
#[derive(Debug, Clone)]
pub struct Client {
    log: LogServiceClient<Channel>,
    admin: AdminServiceClient<Channel>,
    config: ClientConfig,
}

impl Client {
    /// Connects to `url` (e.g. `http://127.0.0.1:50051`).
    pub async fn connect(url: impl Into<String>) -> Result<Client, Error> {
        Self::connect_with(url, ClientConfig::default()).await
    }

    /// Connects with explicit settings.
    pub async fn connect_with(
        url: impl Into<String>,
        config: ClientConfig,
    ) -> Result<Client, Error> {
        let url = url.into();
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::invalid(format!("bad server url {url:?}: {e}")))?
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            // Large flow-control windows: a fetch answer of several MiB
            // must not wait for window updates every 64 KiB.
            .initial_stream_window_size(config.max_message_bytes.min(u32::MAX as usize) as u32)
            .max_frame_size(1 << 20)
            .initial_connection_window_size(
                config
                    .max_message_bytes
                    .saturating_mul(4)
                    .min(u32::MAX as usize) as u32,
            );
        let channel = endpoint.connect().await?;
        let log = LogServiceClient::new(channel.clone())
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        let admin = AdminServiceClient::new(channel)
            .max_decoding_message_size(config.max_message_bytes)
            .max_encoding_message_size(config.max_message_bytes);
        Ok(Client { log, admin, config })
    }

    /// The generated `LogService` client on this connection (for calls
    /// this type does not wrap, such as `ProduceStream`).
    pub fn log_service(&self) -> LogServiceClient<Channel> {
        self.log.clone()
    }

    /// The generated `AdminService` client on this connection.
    pub fn admin_service(&self) -> AdminServiceClient<Channel> {
        self.admin.clone()
    }

    /// The settings of this client.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.config.request_timeout);
        request
    }

    /// Creates a topic with `partitions` partitions (`config`: `None` fields
    /// take the server defaults; [`TopicConfig::default`] for all of them).
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: u32,
        config: TopicConfig,
    ) -> Result<Topic, Error> {
        let response = self
            .admin
            .clone()
            .create_topic(self.request(proto::CreateTopicRequest {
                name: name.to_owned(),
                partition_count: partitions,
                config: Some(config.into()),
                validate_only: false,
            }))
            .await?;
        response
            .into_inner()
            .topic
            .map(Topic::from)
            .ok_or_else(|| Error::closed("server sent no topic"))
    }

    /// A topic and the state of each partition.
    pub async fn get_topic(&self, name: &str) -> Result<TopicInfo, Error> {
        let response = self
            .admin
            .clone()
            .get_topic(self.request(proto::GetTopicRequest {
                name: name.to_owned(),
            }))
            .await?
            .into_inner();
        let topic = response
            .topic
            .map(Topic::from)
            .ok_or_else(|| Error::closed("server sent no topic"))?;
        Ok(TopicInfo {
            topic,
            partitions: response
                .partitions
                .into_iter()
                .map(PartitionInfo::from)
                .collect(),
        })
    }

    /// Every topic, by name (follows the pages).
    pub async fn list_topics(&self) -> Result<Vec<Topic>, Error> {
        let mut topics = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = self
                .admin
                .clone()
                .list_topics(self.request(proto::ListTopicsRequest {
                    page_size: 1000,
                    page_token,
                    name_prefix: String::new(),
                }))
                .await?
                .into_inner();
            topics.extend(page.topics.into_iter().map(Topic::from));
            if page.next_page_token.is_empty() {
                return Ok(topics);
            }
            page_token = page.next_page_token;
        }
    }

    /// Deletes a topic with its data and committed offsets.
    pub async fn delete_topic(&self, name: &str) -> Result<(), Error> {
        self.admin
            .clone()
            .delete_topic(self.request(proto::DeleteTopicRequest {
                name: name.to_owned(),
                allow_missing: false,
            }))
            .await?;
        Ok(())
    }

    /// Grows a topic to `partitions` partitions.
    pub async fn create_partitions(&self, topic: &str, partitions: u32) -> Result<Topic, Error> {
        let response = self
            .admin
            .clone()
            .create_partitions(self.request(proto::CreatePartitionsRequest {
                topic: topic.to_owned(),
                partition_count: partitions,
            }))
            .await?;
        response
            .into_inner()
            .topic
            .map(Topic::from)
            .ok_or_else(|| Error::closed("server sent no topic"))
    }

    /// Changes a topic's config: the fields set in `change` replace the
    /// topic's, the others stay (Kafka's IncrementalAlterConfigs). Answers
    /// the topic with its new config.
    pub async fn alter_topic_config(
        &self,
        topic: &str,
        change: TopicConfig,
    ) -> Result<Topic, Error> {
        let response = self
            .admin
            .clone()
            .alter_topic_config(self.request(proto::AlterTopicConfigRequest {
                name: topic.to_owned(),
                config: Some(change.into()),
                validate_only: false,
            }))
            .await?;
        response
            .into_inner()
            .topic
            .map(Topic::from)
            .ok_or_else(|| Error::closed("server sent no topic"))
    }

    /// Moves a partition's log start to `before_offset`.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: u32,
        before_offset: u64,
    ) -> Result<Watermarks, Error> {
        let response = self
            .admin
            .clone()
            .delete_records(self.request(proto::DeleteRecordsRequest {
                topic: topic.to_owned(),
                partition,
                before_offset,
            }))
            .await?;
        Ok(watermarks(response.into_inner().watermarks))
    }

    /// The server's version and limits (the `GetServerInfo` answer as
    /// is).
    pub async fn server_info(&self) -> Result<proto::GetServerInfoResponse, Error> {
        Ok(self
            .admin
            .clone()
            .get_server_info(self.request(proto::GetServerInfoRequest {}))
            .await?
            .into_inner())
    }

    /// Counters and partition sizes (`topic`: one topic, or all; the
    /// `GetStats` answer as is).
    pub async fn stats(&self, topic: Option<&str>) -> Result<proto::GetStatsResponse, Error> {
        Ok(self
            .admin
            .clone()
            .get_stats(self.request(proto::GetStatsRequest {
                topic: topic.unwrap_or_default().to_owned(),
            }))
            .await?
            .into_inner())
    }

    /// Appends one batch (one `Produce` call, request and answer as they
    /// are; [`Producer`](crate::Producer) batches and retries for you).
    pub async fn produce(
        &self,
        request: proto::ProduceRequest,
    ) -> Result<proto::ProduceResponse, Error> {
        Ok(self
            .log
            .clone()
            .produce(self.request(request))
            .await?
            .into_inner())
    }

    /// Reads a partition from `position` (one `Fetch` call, long-polling
    /// up to `options.max_wait`; the answer as is, records or encoded
    /// batches by `options.format`).
    pub async fn fetch(
        &self,
        topic: &str,
        partition: u32,
        position: Position,
        options: &FetchOptions,
    ) -> Result<proto::FetchResponse, Error> {
        let mut request = tonic::Request::new(proto::FetchRequest {
            topic: topic.to_owned(),
            partition,
            position: Some(position.to_proto(options.reset)),
            max_records: options.max_records,
            max_bytes: options.max_bytes,
            min_bytes: options.min_bytes,
            max_wait: duration(options.max_wait),
            isolation: proto::Isolation::from(options.isolation) as i32,
            format: proto::RecordFormat::from(options.format) as i32,
        });
        request.set_timeout(self.config.request_timeout + options.max_wait);
        Ok(self.log.clone().fetch(request).await?.into_inner())
    }

    /// Opens a subscription (the raw stream of `SubscribeResponse`s; see
    /// [`Consumer`](crate::Consumer) for records).
    pub async fn subscribe(
        &self,
        request: proto::SubscribeRequest,
    ) -> Result<tonic::Streaming<proto::SubscribeResponse>, Error> {
        // No deadline: a subscription lives until cancelled.
        Ok(self.log.clone().subscribe(request).await?.into_inner())
    }

    /// Resolves `position` on every partition of `topic` (or those in
    /// `partitions`).
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[u32],
        position: Position,
    ) -> Result<Vec<PartitionOffset>, Error> {
        Ok(self
            .log
            .clone()
            .list_offsets(self.request(proto::ListOffsetsRequest {
                topic: topic.to_owned(),
                partitions: partitions.to_vec(),
                position: Some(position.into()),
            }))
            .await?
            .into_inner()
            .partitions
            .into_iter()
            .map(PartitionOffset::from)
            .collect())
    }

    /// Commits `offset` (the next offset to read) for `group` on one
    /// partition.
    pub async fn commit_offset(
        &self,
        group: &str,
        topic: &str,
        partition: u32,
        offset: u64,
        metadata: &str,
    ) -> Result<(), Error> {
        self.commit_offsets(group, topic, &[(partition, offset)], metadata, None)
            .await
    }

    /// Commits several partitions' offsets of one topic in one call, as
    /// `member` of its generation when given (a group member's commit is
    /// refused once its generation is over: [`GroupConsumer`](crate::GroupConsumer)
    /// commits this way).
    pub async fn commit_offsets(
        &self,
        group: &str,
        topic: &str,
        offsets: &[(u32, u64)],
        metadata: &str,
        member: Option<(&str, i32)>,
    ) -> Result<(), Error> {
        self.log
            .clone()
            .commit_offsets(
                self.request(proto::CommitOffsetsRequest {
                    group: group.to_owned(),
                    topic: topic.to_owned(),
                    commits: offsets
                        .iter()
                        .map(|&(partition, offset)| proto::OffsetCommit {
                            partition,
                            offset,
                            metadata: metadata.to_owned(),
                        })
                        .collect(),
                    member: member.map(|(member_id, generation)| proto::GroupGeneration {
                        member_id: member_id.to_owned(),
                        generation,
                    }),
                }),
            )
            .await?;
        Ok(())
    }

    /// Opens a `ConsumeGroup` stream: the raw membership stream
    /// [`GroupConsumer`](crate::GroupConsumer) runs on.
    pub(crate) async fn consume_group(
        &self,
        outbound: tokio_stream::wrappers::ReceiverStream<proto::GroupClientMessage>,
    ) -> Result<tonic::Streaming<proto::GroupServerMessage>, Error> {
        Ok(self.log.clone().consume_group(outbound).await?.into_inner())
    }

    /// The committed offsets of `group` on `topic` (every partition when
    /// `partitions` is empty), with their lag.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: &[u32],
    ) -> Result<Vec<CommittedOffset>, Error> {
        Ok(self
            .log
            .clone()
            .get_committed_offsets(self.request(proto::GetCommittedOffsetsRequest {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partitions: partitions.to_vec(),
            }))
            .await?
            .into_inner()
            .offsets
            .into_iter()
            .map(CommittedOffset::from)
            .collect())
    }
}

/// A protobuf duration (`None` for zero).
pub(crate) fn duration(d: Duration) -> Option<prost_types::Duration> {
    if d.is_zero() {
        return None;
    }
    Some(crate::types::to_duration(d))
}
