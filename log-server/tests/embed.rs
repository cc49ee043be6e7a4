//! Embedding the server: [`Server::run`] on a listener the caller bound
//! (no port guessed) until the caller's shutdown future completes; and the
//! request-size limit, enforced from each message's length prefix before
//! it is decoded, on every call of both services.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use log_client::proto;
use log_client::proto::admin_service_client::AdminServiceClient;
use log_client::proto::log_service_client::LogServiceClient;
use log_server::{Config, Server, reason};
use tempfile::TempDir;
use tonic::Code;
use tonic_types::StatusExt;

fn config(dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.kafka_listen = "off".to_owned();
    config.data_dir = dir.path().join("data");
    config.shutdown_grace_ms = 200;
    config
}

async fn channel(addr: std::net::SocketAddr) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

fn code_and_reason(status: &tonic::Status) -> (Code, Option<String>) {
    (
        status.code(),
        status.get_details_error_info().map(|info| info.reason),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_the_callers_listener_until_its_shutdown_future_completes() {
    let dir = TempDir::new().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(Server::run(listener, config(&dir), async {
        let _ = stopped.await;
    }));

    let client = common::connect(addr).await;
    common::wait_serving(&client).await;
    let mut admin = AdminServiceClient::new(channel(addr).await);
    admin
        .create_topic(proto::CreateTopicRequest {
            name: "t".into(),
            partition_count: 2,
            ..Default::default()
        })
        .await
        .unwrap();

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .expect("run returns once its shutdown future completed")
        .unwrap()
        .unwrap();
    // Stopped for good: the port is closed, the store closed (its lock
    // released, so another server opens it and finds the topic).
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let again = Server::start_on(listener, config(&dir)).await.unwrap();
    let client = common::connect(again.addr()).await;
    common::wait_serving(&client).await;
    let mut admin = AdminServiceClient::new(channel(again.addr()).await);
    let topic = admin
        .get_topic(proto::GetTopicRequest { name: "t".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(topic.topic.unwrap().partition_count, 2);
    again.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_returns_the_start_error_of_an_unusable_data_directory() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let mut config = config(&dir);
    config.data_dir = file;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        Server::run(listener, config, std::future::pending()),
    )
    .await
    .expect("a start that fails returns at once");
    assert!(
        matches!(result, Err(log_server::Error::Storage(_))),
        "{result:?}"
    );
}

/// The limit is on the message, by its length prefix: a CreateTopic of
/// exactly `max_request_bytes` is decoded (and refused for its name), one
/// byte more is REQUEST_TOO_LARGE without being decoded; the same on the
/// log service's unary calls. Never tonic's OUT_OF_RANGE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_one_byte_over_the_limit_is_request_too_large_on_every_call() {
    const LIMIT: u32 = 128 * 1024;
    let mut server = common::TestServer::start_with(|c| {
        c.max_batch_bytes = 64 * 1024;
        c.max_request_bytes = LIMIT;
    })
    .await;
    let addr = server.server.as_ref().unwrap().addr();
    let mut admin = AdminServiceClient::new(channel(addr).await);
    let mut log = LogServiceClient::new(channel(addr).await);
    let too_large = (
        Code::ResourceExhausted,
        Some(reason::REQUEST_TOO_LARGE.to_owned()),
    );

    // Field 1 (tag byte), a 3-byte varint length, the name.
    let name_len = LIMIT as usize - 4;
    let create = |len: usize| proto::CreateTopicRequest {
        name: "a".repeat(len),
        ..Default::default()
    };
    use prost::Message;
    assert_eq!(create(name_len).encoded_len(), LIMIT as usize);
    let at_limit = admin.create_topic(create(name_len)).await.unwrap_err();
    assert_eq!(
        code_and_reason(&at_limit),
        (
            Code::InvalidArgument,
            Some(reason::INVALID_TOPIC_NAME.to_owned())
        )
    );
    let over = admin.create_topic(create(name_len + 1)).await.unwrap_err();
    assert_eq!(code_and_reason(&over), too_large);
    assert_eq!(
        over.get_details_error_info().unwrap().metadata.get("limit"),
        Some(&LIMIT.to_string())
    );

    let big = "a".repeat(LIMIT as usize);
    let fetch = log
        .fetch(proto::FetchRequest {
            topic: big.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code_and_reason(&fetch), too_large);
    let subscribe = log
        .subscribe(proto::SubscribeRequest {
            topic: big.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code_and_reason(&subscribe), too_large);
    let get = admin
        .get_topic(proto::GetTopicRequest { name: big })
        .await
        .unwrap_err();
    assert_eq!(code_and_reason(&get), too_large);

    // The connection and the server go on serving.
    admin
        .create_topic(proto::CreateTopicRequest {
            name: "t".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    server.stop().await;
}
