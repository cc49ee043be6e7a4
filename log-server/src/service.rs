//! The `log.v1.LogService` and `log.v1.AdminService` implementations: thin
//! adapters from messages to [`crate::produce`], [`crate::read`] and the
//! store. Every storage call that may block (file I/O other than the
//! append's page-cache write) runs in `spawn_blocking`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use log_client::proto;
use log_client::proto::admin_service_server::AdminService;
use log_client::proto::log_service_server::LogService;
use log_storage::TopicInfo;
use tonic::{Code, Request, Response, Status, Streaming};

use crate::read::{self, UntilShutdown, blocking};
use crate::state::{ConnInfo, Shared, SlotKind, timestamp, watermarks};
use crate::status;
use crate::topics::{apply_topic_config, ms_duration, topic_config, topic_message};
use crate::{group, produce};

/// Default and largest page of `ListTopics`.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// Both services over one [`Shared`] state.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    pub(crate) shared: Arc<Shared>,
}

/// The deadline a client set on a call (`grpc-timeout`), if any.
fn deadline<T>(request: &Request<T>) -> Option<Duration> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The partitions a request names (all when empty), checked.
fn partitions(topic: &TopicInfo, asked: &[u32]) -> Result<Vec<u32>, Status> {
    if asked.is_empty() {
        return Ok((0..topic.partitions).collect());
    }
    for &p in asked {
        if p >= topic.partitions {
            return Err(status::storage(&log_storage::Error::PartitionNotFound {
                topic: topic.name.clone(),
                partition: p,
                partitions: topic.partitions,
            }));
        }
    }
    Ok(asked.to_vec())
}

#[tonic::async_trait]
impl LogService for Services {
    async fn produce(
        &self,
        request: Request<proto::ProduceRequest>,
    ) -> Result<Response<proto::ProduceResponse>, Status> {
        let pending = produce::submit(&self.shared, request.into_inner())?;
        Ok(Response::new(produce::finish(&self.shared, pending).await?))
    }

    type ProduceStreamStream = produce::ResponseStream;

    async fn produce_stream(
        &self,
        request: Request<Streaming<proto::ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        self.shared.check_running()?;
        Ok(Response::new(produce::open_stream(
            Arc::clone(&self.shared),
            request.into_inner(),
        )))
    }

    async fn fetch(
        &self,
        request: Request<proto::FetchRequest>,
    ) -> Result<Response<proto::FetchResponse>, Status> {
        let deadline = deadline(&request);
        // Held until the response was sent (see `server::hold_slot`).
        let slot = self
            .shared
            .take_slot(request.extensions().get::<ConnInfo>(), SlotKind::Fetch)?;
        let response =
            read::fetch(Arc::clone(&self.shared), request.into_inner(), deadline).await?;
        let mut response = Response::new(response);
        response.extensions_mut().insert(slot);
        Ok(response)
    }

    type SubscribeStream = UntilShutdown<proto::SubscribeResponse>;

    async fn subscribe(
        &self,
        request: Request<proto::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let slot = self.shared.take_slot(
            request.extensions().get::<ConnInfo>(),
            SlotKind::Subscription,
        )?;
        let stream = read::subscribe(Arc::clone(&self.shared), request.into_inner(), slot).await?;
        Ok(Response::new(stream))
    }

    async fn list_offsets(
        &self,
        request: Request<proto::ListOffsetsRequest>,
    ) -> Result<Response<proto::ListOffsetsResponse>, Status> {
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        let partitions = blocking(move || {
            let topic = shared.topic(&request.topic)?;
            let mut out = Vec::new();
            for p in partitions(&topic, &request.partitions)? {
                let part = shared.partition(&topic.name, p)?;
                let offset = read::resolve(
                    &shared,
                    &topic.name,
                    p,
                    &part.log,
                    request.position.as_ref(),
                )?;
                out.push(proto::PartitionOffset {
                    partition: p,
                    offset,
                    watermarks: Some(watermarks(&part.log.watermarks())),
                });
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(proto::ListOffsetsResponse { partitions }))
    }

    async fn commit_offsets(
        &self,
        request: Request<proto::CommitOffsetsRequest>,
    ) -> Result<Response<proto::CommitOffsetsResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        fence(&shared, &request)?;
        let partitions = blocking(move || {
            let topic = shared.topic(&request.topic)?;
            let asked: Vec<u32> = request.commits.iter().map(|c| c.partition).collect();
            if asked.is_empty() {
                return Err(status::invalid("commits", "no commit given"));
            }
            partitions(&topic, &asked)?;
            let mut out = Vec::new();
            for commit in &request.commits {
                shared
                    .store
                    .commit_offset(
                        &request.group,
                        &topic.name,
                        commit.partition,
                        commit.offset,
                        commit.metadata.as_bytes(),
                    )
                    .map_err(|e| status::storage(&e))?;
                let part = shared.partition(&topic.name, commit.partition)?;
                out.push(proto::PartitionOffset {
                    partition: commit.partition,
                    offset: Some(commit.offset),
                    watermarks: Some(watermarks(&part.log.watermarks())),
                });
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(proto::CommitOffsetsResponse { partitions }))
    }

    type ConsumeGroupStream = group::GroupStream;

    async fn consume_group(
        &self,
        request: Request<Streaming<proto::GroupClientMessage>>,
    ) -> Result<Response<Self::ConsumeGroupStream>, Status> {
        self.shared.check_running()?;
        let peer = request
            .remote_addr()
            .map_or_else(String::new, |a| format!("/{}", a.ip()));
        Ok(Response::new(group::open(
            Arc::clone(&self.shared),
            request.into_inner(),
            peer,
        )))
    }

    async fn get_committed_offsets(
        &self,
        request: Request<proto::GetCommittedOffsetsRequest>,
    ) -> Result<Response<proto::GetCommittedOffsetsResponse>, Status> {
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        let offsets = blocking(move || {
            let topic = shared.topic(&request.topic)?;
            let mut out = Vec::new();
            for p in partitions(&topic, &request.partitions)? {
                let committed = shared
                    .store
                    .committed_offset(&request.group, &topic.name, p)
                    .map_err(|e| status::storage(&e))?;
                let part = shared.partition(&topic.name, p)?;
                let marks = part.log.watermarks();
                let (offset, metadata) = match committed {
                    Some((offset, metadata)) => (
                        Some(offset),
                        String::from_utf8_lossy(&metadata).into_owned(),
                    ),
                    None => (None, String::new()),
                };
                let lag = part
                    .log
                    .lag(offset.unwrap_or(marks.log_start))
                    .map_err(|e| status::storage(&e))?;
                out.push(proto::CommittedOffset {
                    partition: p,
                    offset,
                    metadata,
                    watermarks: Some(watermarks(&marks)),
                    lag_records: lag.records,
                    lag_bytes: lag.bytes,
                    lag_time: Some(prost_types::Duration {
                        seconds: (lag.time_ms / 1000) as i64,
                        nanos: ((lag.time_ms % 1000) * 1_000_000) as i32,
                    }),
                });
            }
            Ok(out)
        })
        .await?;
        Ok(Response::new(proto::GetCommittedOffsetsResponse {
            offsets,
        }))
    }
}

/// Opens a topic's partitions from `from` on (here, off the runtime), so
/// that the first produce does not create files on a runtime thread.
fn open_partitions(shared: &Shared, topic: &TopicInfo, from: u32) -> Result<(), Status> {
    for p in from..topic.partitions {
        shared.partition(&topic.name, p)?;
    }
    Ok(())
}

/// A commit is fenced as Kafka's (see `log_groups::Coordinator::
/// check_commit`): a member commits in its generation; without a member,
/// only for a group with no members.
fn fence(shared: &Shared, request: &proto::CommitOffsetsRequest) -> Result<(), Status> {
    let member = request.member.as_ref();
    let checked = shared.groups.check_commit(&log_groups::MemberRef {
        group_id: request.group.clone(),
        generation: member.map_or(-1, |m| m.generation),
        member_id: member.map_or_else(String::new, |m| m.member_id.clone()),
        group_instance_id: None,
    });
    match checked {
        Ok(()) => Ok(()),
        // An id the coordinator refuses is the store's to judge (it names
        // the reason), and an unfenced commit to a group with members a
        // conflict of its own.
        Err(log_groups::GroupError::InvalidGroupId) => Ok(()),
        Err(log_groups::GroupError::UnknownMemberId) if member.is_none() => {
            Err(status::group_has_members(&request.group))
        }
        Err(err) => Err(status::group(&err, &request.group)),
    }
}

/// One partition's state.
fn partition_info(shared: &Shared, topic: &str, p: u32) -> Result<proto::PartitionInfo, Status> {
    let part = shared.partition(topic, p)?;
    let usage = part.log.usage().map_err(|e| status::storage(&e))?;
    Ok(proto::PartitionInfo {
        partition: p,
        watermarks: Some(watermarks(&part.log.watermarks())),
        size_bytes: usage.size_bytes,
        segment_count: usage.segment_count as u32,
        last_append_time: usage.last_append_time.map(timestamp),
        fsyncs: usage.syncs,
        fsync_latency: Some(latency(&usage.sync_latency)),
        durable_wait: Some(latency(&usage.durable_wait)),
        cleaner: Some(cleaner_info(&part.log)?),
    })
}

/// The cleaner's view of a partition on the wire.
fn cleaner_info(log: &log_storage::Log) -> Result<proto::CleanerInfo, Status> {
    let stats = log
        .cleaner_stats(log_format::now_ms())
        .map_err(|e| status::storage(&e))?;
    Ok(proto::CleanerInfo {
        dirty_ratio: stats.dirty_ratio,
        last_clean_time: stats.last_clean_time.map(timestamp),
        bytes_reclaimed: stats.bytes_reclaimed,
        passes: stats.passes,
        last_failure: stats.last_failure.map(timestamp),
        cleaner_point: stats.cleaner_point,
        compressed_below: stats.compressed_below,
        cold_segments: stats.cold_segments,
        cold_bytes_saved: stats.cold_bytes_saved,
    })
}

/// A storage latency summary on the wire.
fn latency(summary: &log_storage::LatencySummary) -> proto::LatencySummary {
    let us = |d: std::time::Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    proto::LatencySummary {
        count: summary.count,
        p50_us: us(summary.p50),
        p99_us: us(summary.p99),
        max_us: us(summary.max),
    }
}

#[tonic::async_trait]
impl AdminService for Services {
    async fn create_topic(
        &self,
        request: Request<proto::CreateTopicRequest>,
    ) -> Result<Response<proto::CreateTopicResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        let topic = blocking(move || {
            log_storage::validate_topic_name(&request.name).map_err(|e| status::storage(&e))?;
            let config = topic_config(&shared, request.config.as_ref())?;
            let partitions = request.partition_count.max(1);
            if request.validate_only {
                if shared.store.topic(&request.name).is_ok() {
                    return Err(status::storage(&log_storage::Error::TopicExists {
                        topic: request.name,
                    }));
                }
                if partitions > log_storage::MAX_PARTITIONS {
                    return Err(status::invalid("partition_count", "too many partitions"));
                }
                return Ok(proto::Topic {
                    name: request.name,
                    partition_count: partitions,
                    config: None,
                });
            }
            let info = shared
                .store
                .create_topic(&request.name, partitions, config)
                .map_err(|e| status::storage(&e))?;
            if let Err(status) = open_partitions(&shared, &info, 0) {
                // Atomic: a topic whose partitions cannot all be opened (out
                // of file descriptors or disk) is not left behind.
                if let Err(err) = shared.store.delete_topic(&info.name) {
                    tracing::error!(topic = %info.name, error = %err, "cannot remove a topic whose creation failed");
                }
                return Err(status);
            }
            Ok(topic_message(&info))
        })
        .await?;
        Ok(Response::new(proto::CreateTopicResponse {
            topic: Some(topic),
        }))
    }

    async fn get_topic(
        &self,
        request: Request<proto::GetTopicRequest>,
    ) -> Result<Response<proto::GetTopicResponse>, Status> {
        let name = request.into_inner().name;
        let shared = Arc::clone(&self.shared);
        let response = blocking(move || {
            let topic = shared.topic(&name)?;
            let partitions = (0..topic.partitions)
                .map(|p| partition_info(&shared, &topic.name, p))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(proto::GetTopicResponse {
                topic: Some(topic_message(&topic)),
                partitions,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn list_topics(
        &self,
        request: Request<proto::ListTopicsRequest>,
    ) -> Result<Response<proto::ListTopicsResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let size = match request.page_size {
            n if n < 0 => return Err(status::invalid("page_size", "must not be negative")),
            0 => DEFAULT_PAGE,
            n => (n as usize).min(MAX_PAGE),
        };
        let shared = Arc::clone(&self.shared);
        let response = blocking(move || {
            let topics = shared
                .store
                .list_topics()
                .map_err(|e| status::storage(&e))?;
            let mut page: Vec<proto::Topic> = topics
                .iter()
                .filter(|t| t.name.starts_with(&request.name_prefix))
                .filter(|t| request.page_token.is_empty() || t.name > request.page_token)
                .take(size + 1)
                .map(topic_message)
                .collect();
            let next_page_token = if page.len() > size {
                page.truncate(size);
                page.last().map(|t| t.name.clone()).unwrap_or_default()
            } else {
                String::new()
            };
            Ok(proto::ListTopicsResponse {
                topics: page,
                next_page_token,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn delete_topic(
        &self,
        request: Request<proto::DeleteTopicRequest>,
    ) -> Result<Response<proto::DeleteTopicResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            match shared.store.delete_topic(&request.name) {
                Ok(()) => {}
                Err(log_storage::Error::TopicNotFound { .. }) if request.allow_missing => {}
                Err(e) => return Err(status::storage(&e)),
            }
            // The store closed the topic's logs: their signals ended the
            // topic's subscriptions and long polls (NOT_FOUND), which
            // releases their hold on its files.
            Ok(())
        })
        .await?;
        Ok(Response::new(proto::DeleteTopicResponse {}))
    }

    async fn alter_topic_config(
        &self,
        request: Request<proto::AlterTopicConfigRequest>,
    ) -> Result<Response<proto::AlterTopicConfigResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        let topic = blocking(move || {
            let current = shared.topic(&request.name)?;
            let Some(change) = &request.config else {
                return Ok(topic_message(&current));
            };
            let config = apply_topic_config(&shared, current.config.clone(), change)?;
            if request.validate_only {
                let mut would = current;
                would.config = config;
                return Ok(topic_message(&would));
            }
            let info = shared
                .store
                .alter_topic_config(&request.name, config)
                .map_err(|e| status::storage(&e))?;
            Ok(topic_message(&info))
        })
        .await?;
        Ok(Response::new(proto::AlterTopicConfigResponse {
            topic: Some(topic),
        }))
    }

    async fn create_partitions(
        &self,
        request: Request<proto::CreatePartitionsRequest>,
    ) -> Result<Response<proto::CreatePartitionsResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        let topic = blocking(move || {
            let current = shared.topic(&request.topic)?;
            if request.partition_count < current.partitions {
                return Err(status::status(
                    Code::FailedPrecondition,
                    status::reason::CANNOT_SHRINK,
                    format!(
                        "topic {:?} has {} partitions; partitions are never removed",
                        current.name, current.partitions
                    ),
                    &[("partition_count", current.partitions.to_string())],
                ));
            }
            let info = shared
                .store
                .create_partitions(&request.topic, request.partition_count)
                .map_err(|e| status::storage(&e))?;
            open_partitions(&shared, &info, current.partitions)?;
            Ok(topic_message(&info))
        })
        .await?;
        Ok(Response::new(proto::CreatePartitionsResponse {
            topic: Some(topic),
        }))
    }

    async fn delete_records(
        &self,
        request: Request<proto::DeleteRecordsRequest>,
    ) -> Result<Response<proto::DeleteRecordsResponse>, Status> {
        self.shared.check_running()?;
        let request = request.into_inner();
        let shared = Arc::clone(&self.shared);
        let marks = blocking(move || {
            let part = shared.partition(&request.topic, request.partition)?;
            part.log
                .delete_records(request.before_offset)
                .map_err(|e| status::storage(&e))?;
            Ok(part.log.watermarks())
        })
        .await?;
        Ok(Response::new(proto::DeleteRecordsResponse {
            watermarks: Some(watermarks(&marks)),
        }))
    }

    async fn get_server_info(
        &self,
        _request: Request<proto::GetServerInfoRequest>,
    ) -> Result<Response<proto::GetServerInfoResponse>, Status> {
        let c = &self.shared.config;
        let start_ms = self
            .shared
            .start_time
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Ok(Response::new(proto::GetServerInfoResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            start_time: Some(timestamp(start_ms)),
            storage_format_version: u32::from(log_format::FORMAT_VERSION),
            limits: Some(proto::Limits {
                max_request_bytes: c.max_request_bytes,
                max_response_bytes: c.max_response_bytes(),
                max_batch_bytes: c.max_batch_bytes,
                max_batch_records: log_format::Limits::default().max_records,
                max_fetch_bytes: c.max_fetch_bytes,
                max_fetch_records: c.max_fetch_records,
                max_wait: Some(ms_duration(c.max_wait())),
                max_subscriptions: c.max_subscriptions,
            }),
        }))
    }

    async fn get_stats(
        &self,
        request: Request<proto::GetStatsRequest>,
    ) -> Result<Response<proto::GetStatsResponse>, Status> {
        self.shared.check_running()?;
        let only = request.into_inner().topic;
        let shared = Arc::clone(&self.shared);
        let topics = blocking(move || {
            let topics = if only.is_empty() {
                shared
                    .store
                    .list_topics()
                    .map_err(|e| status::storage(&e))?
            } else {
                vec![shared.topic(&only)?]
            };
            topics
                .iter()
                .map(|t| {
                    Ok(proto::TopicStats {
                        topic: t.name.clone(),
                        partitions: (0..t.partitions)
                            .map(|p| partition_info(&shared, &t.name, p))
                            .collect::<Result<Vec<_>, Status>>()?,
                    })
                })
                .collect::<Result<Vec<_>, Status>>()
        })
        .await?;
        let counters = &self.shared.counters;
        let open = self.shared.config.max_subscriptions as usize
            - self.shared.subscriptions.available_permits();
        Ok(Response::new(proto::GetStatsResponse {
            topics,
            open_subscriptions: open as u32,
            produce_requests_total: counters.produce_requests.load(Ordering::Relaxed),
            fetch_requests_total: counters.fetch_requests.load(Ordering::Relaxed),
            records_appended_total: counters.records_appended.load(Ordering::Relaxed),
            bytes_appended_total: counters.bytes_appended.load(Ordering::Relaxed),
        }))
    }
}
