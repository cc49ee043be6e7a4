//! The scale scenarios, for the partitions target of `cargo xtask bench`
//! (issue 10): `scale-fill` creates the topic `scale` with `--partitions`
//! partitions of 4 KiB segments and appends `--segments` + 1 one-record
//! batches of about 4 KB to each (WRITTEN), so each partition ends with
//! `--segments` sealed segments; `scale-read` reads the first batch of
//! every partition (a sealed segment). Both run 64 calls at once and print
//! an `EXTRA` line with their time. The open files of the server are
//! counted by `xtask`, which owns its process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use log_client::proto;
use log_client::{Client, FetchOptions, Isolation, Position, TopicConfig};

use crate::Args;
use crate::common::{BoxError, builder, encode, request};

/// The topic both scenarios use.
const TOPIC: &str = "scale";
/// Calls in flight.
const CONCURRENCY: usize = 64;

/// Creates the topic and fills every partition with `--segments` sealed
/// segments.
pub(crate) async fn fill(args: &Args) -> Result<(), BoxError> {
    let client = Client::connect(args.addr.clone()).await?;
    let config = TopicConfig::default()
        .with_segment_bytes(4096)
        .with_max_batch_bytes(4096);
    let partitions = args.partitions.max(1);
    client.create_topic(TOPIC, partitions, config).await?;
    let batch = encode(&mut builder(), 1, &vec![b's'; 3900])?;
    let started = Instant::now();
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, batch) = (client.clone(), Arc::clone(&next), batch.clone());
        let batches = args.segments + 1;
        tasks.push(tokio::spawn(async move {
            let mut log = client.log_service();
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= partitions {
                    return Ok::<(), String>(());
                }
                for _ in 0..batches {
                    log.produce(request(TOPIC, p, batch.clone(), proto::Ack::Written))
                        .await
                        .map_err(|e| format!("produce to {p}: {e}"))?;
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let line = format!(
        "EXTRA system=log-server scenario=scale-fill partitions={partitions} segments={} fill_secs={:.1}",
        args.segments,
        started.elapsed().as_secs_f64()
    );
    println!("{line}");
    Ok(())
}

/// Reads the first batch of every partition.
pub(crate) async fn read(args: &Args) -> Result<(), BoxError> {
    let client = Client::connect(args.addr.clone()).await?;
    let partitions = args.partitions.max(1);
    let started = Instant::now();
    let next = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next) = (client.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let options = FetchOptions::default().with_isolation(Isolation::Written);
            loop {
                let p = next.fetch_add(1, Ordering::Relaxed);
                if p >= partitions {
                    return Ok::<(), String>(());
                }
                let page = client
                    .fetch(TOPIC, p, Position::Offset(0), &options)
                    .await
                    .map_err(|e| format!("fetch from {p}: {e}"))?;
                if page.records.is_empty() {
                    return Err(format!("partition {p} is empty"));
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let line = format!(
        "EXTRA system=log-server scenario=scale-read partitions={partitions} read_secs={:.1}",
        started.elapsed().as_secs_f64()
    );
    println!("{line}");
    Ok(())
}
