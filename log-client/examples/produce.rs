//! Produces N records to a topic (created with 3 partitions if missing)
//! with a batching, idempotent `Producer`.
//!
//! `cargo run -p log-client --example produce -- TOPIC [N] [ADDR]`
#![allow(clippy::print_stdout)]

use std::time::Instant;

use log_client::{Client, ErrorKind, NewRecord, Producer, ProducerConfig, TopicConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "example".into());
    let count: u64 = args.next().map_or(Ok(1000), |n| n.parse())?;
    let addr = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());

    let client = Client::connect(addr).await?;
    match client.create_topic(&topic, 3, TopicConfig::default()).await {
        Ok(_) => println!("created topic {topic}"),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e.into()),
    }
    let producer = Producer::new(client, &topic, ProducerConfig::default()).await?;
    let started = Instant::now();
    let mut deliveries = Vec::new();
    for i in 0..count {
        let record = NewRecord::keyed(format!("key-{}", i % 100), format!("record {i}"));
        deliveries.push(producer.send(record).await?);
    }
    let mut last = None;
    for delivery in deliveries {
        last = Some(delivery.await?);
    }
    producer.close().await?;
    if let Some(ack) = last {
        println!(
            "produced {count} records in {:?}; the last is {topic}/{} at offset {}",
            started.elapsed(),
            ack.partition,
            ack.offset
        );
    }
    Ok(())
}
