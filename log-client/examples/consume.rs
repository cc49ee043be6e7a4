//! Reads partition 0 of a topic from the group's committed offset (or the
//! start) to its end, prints the records, and commits the position for
//! group `example`.
//!
//! `cargo run -p log-client --example consume -- TOPIC [ADDR]`
#![allow(clippy::print_stdout)]

use log_client::{Client, Consumer, ConsumerConfig, Position};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "example".into());
    let addr = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());

    let client = Client::connect(addr).await?;
    let config = ConsumerConfig::default()
        .with_stop_at_end(true)
        .with_group("example");
    let mut consumer = Consumer::new(client, &topic, 0, Position::committed("example"), config);
    let mut count = 0u64;
    while let Some(record) = consumer.next().await {
        let record = record?;
        let value = record.value.as_deref().unwrap_or_default();
        println!("{}: {}", record.offset, String::from_utf8_lossy(value));
        count += 1;
    }
    consumer.commit().await?;
    println!(
        "read {count} records; group example now at offset {:?}",
        consumer.position()
    );
    Ok(())
}
