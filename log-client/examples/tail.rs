//! Follows partition 0 of a topic from its end, printing records as they
//! are appended (a subscription: replay, then tail), until ctrl-c.
//!
//! `cargo run -p log-client --example tail -- TOPIC [ADDR]`
#![allow(clippy::print_stdout)]

use log_client::{Client, Consumer, ConsumerConfig, Position};
use tokio_stream::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let topic = args.next().unwrap_or_else(|| "example".into());
    let addr = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());

    let client = Client::connect(addr).await?;
    let consumer = Consumer::new(
        client,
        &topic,
        0,
        Position::Latest,
        ConsumerConfig::default(),
    );
    let mut records = Box::pin(consumer.into_stream());
    loop {
        tokio::select! {
            record = records.next() => match record {
                Some(record) => {
                    let record = record?;
                    let value = record.value.as_deref().unwrap_or_default();
                    println!("{}: {}", record.offset, String::from_utf8_lossy(value));
                }
                None => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
