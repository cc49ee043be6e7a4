//! What the Kafka front-end tests share: a broker on a store in a temp dir
//! (started again on the same directory when a test needs a restart), a
//! client speaking the client half of `kafka-protocol`, and request
//! builders.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use log_format::{BatchBuilder, FRAME_HEADER_LEN, Limits, NewRecord};
use log_storage::{Store, StoreConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub(crate) struct Broker {
    pub(crate) addr: SocketAddr,
    pub(crate) store: Arc<Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    dir: tempfile::TempDir,
}

impl Broker {
    pub(crate) async fn start() -> Broker {
        Broker::start_with(log_kafka::KafkaConfig::default()).await
    }

    pub(crate) async fn start_with(config: log_kafka::KafkaConfig) -> Broker {
        Broker::start_in(tempfile::TempDir::new().unwrap(), config).await
    }

    /// A broker on the store in `dir` (kept from an earlier broker by
    /// [`Broker::stop_keeping`], or new).
    pub(crate) async fn start_in(dir: tempfile::TempDir, config: log_kafka::KafkaConfig) -> Broker {
        let store = Store::start_locked(dir.path().join("data"), StoreConfig::default()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(log_kafka::run(
            listener,
            Arc::clone(&store),
            Arc::new(log_kafka::OwnChanges),
            // A short first-rebalance delay: tests join members one by one.
            log_groups::Coordinator::start(
                log_groups::GroupConfig::default()
                    .with_initial_rebalance_delay(Duration::from_millis(100)),
            ),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        Broker {
            addr,
            store,
            stop: Some(stop),
            task,
            dir,
        }
    }

    pub(crate) async fn client(&self) -> Client {
        Client {
            stream: TcpStream::connect(self.addr).await.unwrap(),
            next: 1,
        }
    }

    pub(crate) async fn stop(self) {
        drop(self.stop_keeping().await);
    }

    /// Stops the broker and closes its store, keeping its directory for
    /// [`Broker::start_in`].
    pub(crate) async fn stop_keeping(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        (&mut self.task).await.unwrap().unwrap();
        self.store.close().unwrap();
        self.dir
    }
}

pub(crate) struct Client {
    pub(crate) stream: TcpStream,
    next: i32,
}

impl Client {
    pub(crate) async fn send_frame(&mut self, frame: &[u8]) {
        self.stream
            .write_all(&(frame.len() as u32).to_be_bytes())
            .await
            .unwrap();
        self.stream.write_all(frame).await.unwrap();
    }

    /// The next answer frame, or `None` when the server closed.
    pub(crate) async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).await.ok()?;
        let mut frame = vec![0u8; u32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut frame).await.ok()?;
        Some(Bytes::from(frame))
    }

    pub(crate) fn request<Req: Encodable + HeaderVersion>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Req,
    ) -> (i32, Bytes) {
        let correlation_id = self.next;
        self.next += 1;
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test")))
            .encode(&mut buf, Req::header_version(version))
            .unwrap();
        request.encode(&mut buf, version).unwrap();
        (correlation_id, buf.freeze())
    }

    pub(crate) async fn call<Req, Resp>(&mut self, api: ApiKey, version: i16, request: &Req) -> Resp
    where
        Req: Encodable + HeaderVersion,
        Resp: Decodable + HeaderVersion,
    {
        let (id, frame) = self.request(api, version, request);
        self.send_frame(&frame).await;
        let Some(mut answer) = self.read_frame().await else {
            panic!("no answer to {api:?} v{version}: the server closed the connection");
        };
        let header = ResponseHeader::decode(&mut answer, Resp::header_version(version)).unwrap();
        assert_eq!(header.correlation_id, id);
        let response = Resp::decode(&mut answer, version).unwrap();
        assert!(
            !answer.has_remaining(),
            "{api:?} v{version}: trailing bytes"
        );
        response
    }

    pub(crate) async fn closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.read_frame()).await,
            Ok(None)
        )
    }
}

pub(crate) fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_owned()))
}

/// A Kafka batch of `n` records, as a producer sends it.
pub(crate) fn kafka_batch(n: usize, first: usize) -> Bytes {
    let mut builder = BatchBuilder::new(Limits::default());
    for i in first..first + n {
        builder
            .push(&NewRecord::keyed(
                1_700_000_000_000 + i as i64,
                format!("k{i}").as_bytes(),
                format!("v{i}").as_bytes(),
            ))
            .unwrap();
    }
    builder.finish().unwrap().slice(FRAME_HEADER_LEN..)
}

pub(crate) fn produce(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

pub(crate) fn fetch(topic: &str, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(min_bytes)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ])
}

pub(crate) fn create(topic: &str, partitions: i32) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_topics(vec![
        CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1),
    ])
}
