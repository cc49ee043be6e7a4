//! Consumer groups over gRPC (`ConsumeGroup`, the Rust `GroupConsumer`):
//! members share a topic's partitions, a joining member takes some over
//! after the others committed and let go (no record handed out twice), a
//! stale generation's commit is refused, and a Kafka member (spoken with
//! `kafka-protocol`) joins the same group and gets its part of the
//! server-side range assignment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{TestServer, kafka_call};
use log_client::{Client, GroupConsumer, GroupConsumerConfig, NewRecord, Producer, ProducerConfig};

async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.group_initial_rebalance_delay_ms = 100;
        c.kafka_listen = "127.0.0.1:0".to_owned();
    })
    .await
}

async fn produce(client: &Client, topic: &str, partitions: u32, per: u64, start: u64) {
    let producer = Producer::new(client.clone(), topic, ProducerConfig::default())
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in start..start + per {
        for p in 0..partitions {
            let value = format!("{p}-{i}");
            acks.push(
                producer
                    .send(NewRecord::value(value).to_partition(p))
                    .await
                    .unwrap(),
            );
        }
    }
    producer.flush().await.unwrap();
    for ack in acks {
        ack.await.unwrap();
    }
}

fn config(name: &str) -> GroupConsumerConfig {
    GroupConsumerConfig::new("g", ["t"])
        .with_client_id(name)
        .with_session_timeout(Duration::from_secs(6))
        .with_max_wait(Duration::from_millis(100))
}

/// Reads from `member` until `want` records were handed out (committing
/// after each), recording who handed out what.
async fn read(
    member: &mut GroupConsumer,
    name: &str,
    want: usize,
    seen: &mut BTreeMap<(u32, u64), Vec<String>>,
) {
    for _ in 0..want {
        let r = tokio::time::timeout(Duration::from_secs(30), member.next())
            .await
            .expect("a record within 30 s")
            .unwrap();
        seen.entry((r.record.partition, r.record.offset))
            .or_default()
            .push(name.to_owned());
        member.commit().await.unwrap();
    }
}

/// One short turn of a member: a record if one comes within 200 ms
/// (committed), and whatever assignment or revoke arrives meanwhile.
async fn step(
    member: &mut GroupConsumer,
    name: &str,
    seen: &mut BTreeMap<(u32, u64), Vec<String>>,
) {
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), member.next()).await {
        let r = r.unwrap();
        seen.entry((r.record.partition, r.record.offset))
            .or_default()
            .push(name.to_owned());
        member.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_partitions_and_a_joining_one_takes_over_without_duplicates() {
    let server = server().await;
    let client = &server.client;
    client
        .create_topic("t", 4, Default::default())
        .await
        .unwrap();
    produce(client, "t", 4, 25, 0).await;

    let mut a = GroupConsumer::join(client, config("a")).await.unwrap();
    let first = a.assignment().unwrap().clone();
    assert_eq!(first.partitions.len(), 4, "alone, it gets every partition");
    let mut seen = BTreeMap::new();
    read(&mut a, "a", 20, &mut seen).await;

    // A second member: `a` is revoked (it commits what it handed out)
    // inside `next`, then both get two partitions.
    let joining = {
        let client = client.clone();
        tokio::spawn(async move { GroupConsumer::join(&client, config("b")).await })
    };
    while !joining.is_finished() || a.assignment().is_none_or(|x| x.partitions.len() != 2) {
        step(&mut a, "a", &mut seen).await;
    }
    let mut b = joining.await.unwrap().unwrap();
    let (pa, pb) = (
        a.assignment().unwrap().partitions.clone(),
        b.assignment().unwrap().partitions.clone(),
    );
    assert_eq!((pa.len(), pb.len()), (2, 2), "{pa:?} {pb:?}");
    assert!(pa.iter().all(|p| !pb.contains(p)));
    assert!(a.assignment().unwrap().generation > first.generation);
    produce(client, "t", 4, 25, 25).await;

    // The old generation's commit is refused.
    let stale = client
        .commit_offsets(
            "g",
            "t",
            &[(0, 1)],
            "",
            Some((&first.member_id, first.generation)),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.reason(), Some("GROUP_MEMBER_FENCED"), "{stale}");
    // So is a commit that names no member, while the group has some.
    let unfenced = client.commit_offset("g", "t", 0, 1, "").await.unwrap_err();
    assert_eq!(unfenced.reason(), Some("GROUP_CONFLICT"), "{unfenced}");

    // Everything is read, each record by one member only.
    let total = 200;
    while seen.len() < total {
        let left = total - seen.len();
        tokio::select! {
            r = a.next() => {
                let r = r.unwrap();
                seen.entry((r.record.partition, r.record.offset)).or_default().push("a".into());
                a.commit().await.unwrap();
            }
            r = b.next() => {
                let r = r.unwrap();
                seen.entry((r.record.partition, r.record.offset)).or_default().push("b".into());
                b.commit().await.unwrap();
            }
            () = tokio::time::sleep(Duration::from_secs(30)) => panic!("{left} records never came"),
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, who)| who.len() > 1).collect();
    assert!(twice.is_empty(), "handed out twice: {twice:?}");
    let committed = client.committed_offsets("g", "t", &[]).await.unwrap();
    assert!(
        committed.iter().all(|c| c.offset == Some(50)),
        "{committed:?}"
    );
    b.close().await.unwrap();
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_member_and_a_grpc_member_share_one_group() {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

    let mut server = server().await;
    let client = server.client.clone();
    client
        .create_topic("t", 4, Default::default())
        .await
        .unwrap();
    let kafka = server.server.as_ref().unwrap().kafka_addr().unwrap();
    let mut grpc = GroupConsumer::join(&client, config("rust")).await.unwrap();
    assert_eq!(grpc.assignment().unwrap().partitions.len(), 4);
    // The gRPC member rejoins (revoke, then join) inside `next`: drive it
    // in the background until it holds two partitions.
    let driver = tokio::spawn(async move {
        let mut seen = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while grpc.assignment().is_none_or(|a| a.partitions.len() != 2) {
            assert!(tokio::time::Instant::now() < deadline, "no rebalance");
            step(&mut grpc, "rust", &mut seen).await;
        }
        grpc
    });

    // A Kafka consumer joins with the range protocol: the gRPC member
    // leads, so the server assigns for both.
    let mut stream = tokio::net::TcpStream::connect(kafka).await.unwrap();
    let mut subscription = bytes::BytesMut::new();
    bytes::BufMut::put_i16(&mut subscription, 0);
    consumer_protocol_subscription::ConsumerProtocolSubscription::default()
        .with_topics(vec![StrBytes::from_static_str("t")])
        .encode(&mut subscription, 0)
        .unwrap();
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_session_timeout_ms(6000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default()
                .with_name(StrBytes::from_static_str("range"))
                .with_metadata(subscription.freeze()),
        ]);
    // Version 3: no member id round trip.
    let joined: JoinGroupResponse = kafka_call(&mut stream, ApiKey::JoinGroup, 3, &join).await;
    assert_eq!(joined.error_code, 0);
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("g")))
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone());
    let synced: SyncGroupResponse = kafka_call(&mut stream, ApiKey::SyncGroup, 3, &sync).await;
    assert_eq!(synced.error_code, 0);
    let mut bytes = synced.assignment.clone();
    let version = bytes::Buf::get_i16(&mut bytes);
    let assignment =
        consumer_protocol_assignment::ConsumerProtocolAssignment::decode(&mut bytes, version)
            .unwrap();
    let kafka_parts: BTreeSet<i32> = assignment
        .assigned_partitions
        .iter()
        .flat_map(|tp| tp.partitions.clone())
        .collect();
    let grpc = driver.await.unwrap();
    let grpc_parts: BTreeSet<i32> = grpc
        .assignment()
        .unwrap()
        .partitions
        .iter()
        .map(|(_, p)| *p as i32)
        .collect();
    assert_eq!(kafka_parts.len(), 2, "{kafka_parts:?}");
    assert_eq!(grpc_parts.len(), 2, "{grpc_parts:?}");
    assert!(kafka_parts.is_disjoint(&grpc_parts));
    grpc.close().await.unwrap();
    server.stop().await;
}
