//! Memory bounds against the real binary (issue 10 item 14): stalled
//! subscribers cost the server a small, fixed amount each, whatever is
//! produced, and producers go on; one connection cannot take every
//! subscription or fetch slot.
//!
//! What is measured: `RssAnon` of `/proc/PID/status` (heap and other
//! anonymous memory). `VmRSS` also counts file pages the server maps
//! (sealed segments and indexes are mmap'd read-only; those pages are the
//! kernel's page cache, shared and reclaimable), so it is printed but not
//! bounded.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::ServerProcess;
use log_client::proto;
use log_client::{Client, ErrorKind, FetchOptions, Position, TopicConfig};
use tempfile::TempDir;
use tonic::Code;

const MIB: u64 = 1 << 20;

/// `(RssAnon, VmRSS)` of a process, in bytes.
fn rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    };
    (field("RssAnon:"), field("VmRSS:"))
}

const PARTITIONS: u32 = 4;
const SUBSCRIBERS: u32 = 64;
const PRODUCE_BYTES: u64 = 512 * MIB;
/// One produce request: 8 records of 16 KiB (a 128 KiB batch: about one
/// subscription message, the largest a subscription sends).
const RECORDS_PER_REQUEST: usize = 8;
const RECORD_BYTES: usize = 16 << 10;

/// Produces `bytes` into `partition` (WRITTEN acks); returns the slowest
/// produce call.
async fn produce(client: Client, partition: u32, bytes: u64) -> Duration {
    let value = Bytes::from(vec![0x5a; RECORD_BYTES]);
    let per_request = (RECORDS_PER_REQUEST * RECORD_BYTES) as u64;
    let mut slowest = Duration::ZERO;
    for _ in 0..bytes.div_ceil(per_request) {
        let request = proto::ProduceRequest {
            topic: "m".into(),
            partition: Some(partition),
            records: (0..RECORDS_PER_REQUEST)
                .map(|_| proto::Record {
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .collect(),
            ack: proto::Ack::Written as i32,
            ..Default::default()
        };
        let started = Instant::now();
        client.produce(request).await.unwrap();
        slowest = slowest.max(started.elapsed());
    }
    slowest
}

/// Produces `bytes` spread over the partitions, two calls in flight per
/// partition; returns the slowest produce call.
async fn produce_all(client: &Client, bytes: u64) -> Duration {
    let tasks: Vec<_> = (0..PARTITIONS * 2)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(produce(
                client,
                i % PARTITIONS,
                bytes / u64::from(PARTITIONS * 2),
            ))
        })
        .collect();
    let mut slowest = Duration::ZERO;
    for task in tasks {
        slowest = slowest.max(task.await.unwrap());
    }
    slowest
}

/// 64 subscribers that stop reading (open Subscribe streams never polled:
/// HTTP/2 flow control stalls them), each on its own connection and
/// asking for the largest messages, tail the active segments while
/// 512 MiB is produced: the server's anonymous memory grows by at most
/// 64 MiB, and the producers are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_stalled_subscribers_cost_the_server_at_most_64_mib_while_512_mib_is_produced() {
    let dir = TempDir::new().unwrap();
    let server = ServerProcess::spawn(&dir.path().join("data"), &[]);
    let pid = server.child.id();
    let client = server.client().await;
    client
        .create_topic("m", PARTITIONS, TopicConfig::default())
        .await
        .unwrap();
    // Warm up (allocator arenas, buffers of the produce path) and leave a
    // backlog of 16 MiB per partition, then the baseline.
    produce_all(&client, 64 * MIB).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (base_anon, base_rss) = rss(pid);
    // Half replay the backlog (full messages), half tail.
    let mut stalled = Vec::new();
    for i in 0..SUBSCRIBERS {
        let c = common::connect(server.addr).await;
        let stream = c
            .subscribe(proto::SubscribeRequest {
                topic: "m".into(),
                partition: i % PARTITIONS,
                position: Some(if i % 4 < 2 {
                    Position::Earliest.into()
                } else {
                    Position::Latest.into()
                }),
                max_batch_bytes: u32::MAX,
                isolation: proto::Isolation::Written as i32,
                format: if i % 2 == 0 {
                    proto::RecordFormat::Records
                } else {
                    proto::RecordFormat::EncodedBatches
                } as i32,
                ..Default::default()
            })
            .await
            .unwrap();
        stalled.push((c, stream));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (opened_anon, _) = rss(pid);

    let peak = Arc::new(AtomicU64::new(base_anon));
    let peak_rss = Arc::new(AtomicU64::new(base_rss));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, peak_rss, done) = (Arc::clone(&peak), Arc::clone(&peak_rss), Arc::clone(&done));
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                let (anon, vm) = rss(pid);
                peak.fetch_max(anon, Ordering::Relaxed);
                peak_rss.fetch_max(vm, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let started = Instant::now();
    let slowest = produce_all(&client, PRODUCE_BYTES).await;
    let elapsed = started.elapsed();
    // The stalled pipelines are full by now; one more look.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let (end_anon, end_rss) = rss(pid);
    let (peak, peak_rss) = (
        peak.load(Ordering::Relaxed).max(end_anon),
        peak_rss.load(Ordering::Relaxed).max(end_rss),
    );
    let growth = peak.saturating_sub(base_anon);
    eprintln!(
        "{SUBSCRIBERS} stalled subscribers, {} MiB produced in {elapsed:.1?} (slowest call {slowest:.1?}): \
         RssAnon {} -> {} with the subscribers open -> peak {} MiB (+{:.1} MiB, {:.2} MiB per subscriber), VmRSS {} -> peak {} MiB",
        PRODUCE_BYTES / MIB,
        base_anon / MIB,
        opened_anon / MIB,
        peak / MIB,
        growth as f64 / MIB as f64,
        growth as f64 / MIB as f64 / f64::from(SUBSCRIBERS),
        base_rss / MIB,
        peak_rss / MIB,
    );
    assert!(
        growth <= 64 * MIB,
        "the server's anonymous memory grew by {} MiB (> 64 MiB)",
        growth / MIB
    );
    assert!(
        slowest < Duration::from_secs(5),
        "a produce call took {slowest:?}: producers were held up"
    );
    // The stalled subscriptions are still open: a read resumes them.
    let (_, first) = &mut stalled[0];
    assert!(first.message().await.unwrap().is_some());
    drop(stalled);
    server.terminate();
}

/// An open Subscribe on `client`, or its error.
async fn subscribe(
    client: &Client,
) -> Result<tonic::Streaming<proto::SubscribeResponse>, log_client::Error> {
    client
        .subscribe(proto::SubscribeRequest {
            topic: "m".into(),
            partition: 0,
            position: Some(Position::Latest.into()),
            ..Default::default()
        })
        .await
}

/// A Fetch long-polling for 10 s at the log end of "m"/0.
fn long_poll(
    client: &Client,
) -> tokio::task::JoinHandle<Result<proto::FetchResponse, log_client::Error>> {
    let client = client.clone();
    tokio::spawn(async move {
        let options = FetchOptions::default().with_max_wait(Duration::from_secs(10));
        client.fetch("m", 0, Position::Latest, &options).await
    })
}

/// One connection cannot take every slot: past its cap of open
/// subscriptions or of in-flight fetches, a call on that connection is
/// RESOURCE_EXHAUSTED with a reason naming the limit, while another
/// connection is served; a closed subscription gives its slot back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_past_its_subscription_or_fetch_cap_is_resource_exhausted_and_others_are_served()
 {
    let dir = TempDir::new().unwrap();
    let server = ServerProcess::spawn(
        &dir.path().join("data"),
        &[
            "--max-subscriptions-per-connection",
            "4",
            "--max-fetches-per-connection",
            "3",
        ],
    );
    let client = server.client().await;
    client
        .create_topic("m", 1, TopicConfig::default())
        .await
        .unwrap();

    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(subscribe(&client).await.unwrap());
    }
    let err = subscribe(&client).await.unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (
            Code::ResourceExhausted,
            Some("TOO_MANY_SUBSCRIPTIONS_ON_CONNECTION")
        ),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
    let other = common::connect(server.addr).await;
    let _elsewhere = subscribe(&other).await.unwrap();
    // A subscription closed by its client gives its slot back.
    drop(open.pop());
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match subscribe(&client).await {
            Ok(stream) => {
                open.push(stream);
                break;
            }
            Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the freed subscription slot was not given back: {e}"),
        }
    }

    let polls: Vec<_> = (0..3).map(|_| long_poll(&client)).collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let err = client
        .fetch("m", 0, Position::Latest, &FetchOptions::default())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), err.reason()),
        (
            Code::ResourceExhausted,
            Some("TOO_MANY_FETCHES_ON_CONNECTION")
        ),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    other
        .fetch("m", 0, Position::Latest, &FetchOptions::default())
        .await
        .unwrap();
    // The long polls answer when a record arrives; then fetches are served
    // on the first connection again.
    client
        .produce(proto::ProduceRequest {
            topic: "m".into(),
            partition: Some(0),
            records: vec![proto::Record {
                value: Some(Bytes::from_static(b"wake")),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    for poll in polls {
        assert_eq!(poll.await.unwrap().unwrap().records.len(), 1);
    }
    client
        .fetch("m", 0, Position::Earliest, &FetchOptions::default())
        .await
        .unwrap();

    drop(open);
    server.terminate();
}
