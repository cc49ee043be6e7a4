//! `log-loadgen`: drives a running `log-server` over gRPC (through
//! `log-client`) with the workload the peers in `shared/PEERS.md` were
//! measured with, and prints one machine-readable `RESULT` line.
//!
//! Scenario `peer`: one producer, `--n` records of `--size` bytes in
//! batches of `--batch` records, one batch in flight (each batch is encoded
//! by the client with `log-format` and sent as an `encoded_batch`, then
//! acknowledged at `--ack`), then everything is read back from offset 0
//! (`Fetch`, encoded batches, every checksum verified by the client).
//!
//! ```text
//! log-loadgen --addr http://127.0.0.1:50051 --n 1000000 --size 100 --batch 1000 --ack durable
//! ```
//!
//! It does not start a server (see `cargo xtask bench`, which does).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use log_client::proto::{self, Position};
use log_client::{Client, ClientConfig, FetchOptions};
use log_format::{BatchBuilder, BytesScanner, Limits, NewRecord, Scanned};

struct Args {
    addr: String,
    n: u64,
    size: usize,
    batch: u64,
    ack: proto::Ack,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        addr: "http://127.0.0.1:50051".into(),
        n: 1_000_000,
        size: 100,
        batch: 1000,
        ack: proto::Ack::Durable,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--addr" => args.addr = value()?,
            "--n" => args.n = value()?.parse().map_err(|e| format!("--n: {e}"))?,
            "--size" => args.size = value()?.parse().map_err(|e| format!("--size: {e}"))?,
            "--batch" => args.batch = value()?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--ack" => {
                args.ack = match value()?.as_str() {
                    "durable" => proto::Ack::Durable,
                    "written" => proto::Ack::Written,
                    other => return Err(format!("--ack durable|written, not {other}")),
                }
            }
            "--help" | "-h" => {
                return Err(
                    "usage: log-loadgen [--addr URL] [--n N] [--size BYTES] [--batch N] [--ack durable|written]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.batch == 0 || args.n == 0 {
        return Err("--n and --batch must be positive".into());
    }
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("log-loadgen: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::connect_with(
        args.addr.clone(),
        ClientConfig {
            max_message_bytes: 64 << 20,
            ..ClientConfig::default()
        },
    )
    .await?;
    let topic = format!(
        "peer-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    );
    client.create_topic(&topic, 1, Default::default()).await?;
    let mut log = client.log_service();
    let value = vec![b'x'; args.size];
    let limits = Limits {
        max_batch_bytes: u32::MAX,
        max_records: u32::MAX,
    };
    let mut builder = BatchBuilder::new(limits);
    let mut latencies = Vec::with_capacity((args.n / args.batch + 1) as usize);
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < args.n {
        let count = args.batch.min(args.n - sent);
        let t0 = Instant::now();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        for _ in 0..count {
            builder.push(&NewRecord::value(now_ms, &value))?;
        }
        let batch = builder.finish()?;
        let response = log
            .produce(proto::ProduceRequest {
                topic: topic.clone(),
                partition: Some(0),
                encoded_batch: batch,
                ack: args.ack as i32,
                ..Default::default()
            })
            .await?
            .into_inner();
        latencies.push(t0.elapsed());
        if response.last_offset + 1 != sent + count {
            return Err(format!("unexpected offsets {response:?}").into());
        }
        sent += count;
    }
    let append_elapsed = started.elapsed();

    // Read everything back (durable isolation when acks were durable).
    let isolation = match args.ack {
        proto::Ack::Written => proto::Isolation::Written,
        _ => proto::Isolation::Durable,
    };
    let options = FetchOptions {
        max_bytes: 16 << 20,
        max_records: u32::MAX,
        isolation,
        format: proto::RecordFormat::EncodedBatches,
        ..FetchOptions::default()
    };
    let started = Instant::now();
    let mut next = 0u64;
    let mut read = 0u64;
    let mut payload = 0u64;
    while next < args.n {
        let page = client
            .fetch(&topic, 0, Position::at_offset(next), &options)
            .await?;
        let bytes: Bytes = page.encoded_batches;
        for scanned in BytesScanner::new(bytes, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                return Err("damaged batch received".into());
            };
            for record in batch.records() {
                if record.offset() >= next {
                    read += 1;
                    payload += record.value().map_or(0, |v| v.len() as u64);
                }
            }
        }
        if page.next_offset == next {
            return Err(format!("no progress at offset {next}").into());
        }
        next = page.next_offset;
    }
    let read_elapsed = started.elapsed();
    if read != args.n {
        return Err(format!("read {read} records, expected {}", args.n).into());
    }
    latencies.sort();
    let secs = append_elapsed.as_secs_f64();
    let rsecs = read_elapsed.as_secs_f64();
    let bytes = (args.n * args.size as u64) as f64;
    let (append_rps, append_mbps) = (args.n as f64 / secs, bytes / secs / 1e6);
    let (read_rps, read_mbps) = (read as f64 / rsecs, payload as f64 / rsecs / 1e6);
    let (p50, p99) = (
        percentile(&latencies, 50.0).as_micros(),
        percentile(&latencies, 99.0).as_micros(),
    );
    let ack = ack_name(args.ack);
    println!(
        "peer: {} records of {} B, batches of {}, ack {ack}: append {append_rps:.0} rec/s ({append_mbps:.1} MB/s), batch p50 {p50} us p99 {p99} us; read back {read_rps:.0} rec/s ({read_mbps:.1} MB/s)",
        args.n, args.size, args.batch,
    );
    println!(
        "RESULT system=log-server scenario=peer size={} batch={} ack={ack} n={} append_rps={append_rps:.0} append_mbps={append_mbps:.1} lat_p50_us={p50} lat_p99_us={p99} read_rps={read_rps:.0} read_mbps={read_mbps:.1}",
        args.size, args.batch, args.n,
    );
    client.delete_topic(&topic).await?;
    Ok(())
}

fn ack_name(ack: proto::Ack) -> &'static str {
    match ack {
        proto::Ack::Written => "written",
        _ => "durable",
    }
}
