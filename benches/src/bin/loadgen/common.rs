//! What every scenario shares: the error type, the measured [`Outcome`],
//! latency histograms, progress bars, and the batches and requests the
//! load is made of (encoded ahead on a thread of their own, so encoding is
//! not measured), and the produce and read-back loops they are built of.

use crate::{AckArg, Args};
use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use log_client::proto;
use log_client::{Client, FetchOptions, Isolation, Position, RecordFormat};
use log_format::{BatchBuilder, BytesScanner, Limits, NewRecord, Scanned};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub(crate) type BoxError = Box<dyn std::error::Error>;

/// What a scenario measured.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) n: u64,
    pub(crate) append_secs: f64,
    pub(crate) latency: Option<Histogram<u64>>,
    pub(crate) read_records: u64,
    pub(crate) read_payload: u64,
    pub(crate) read_secs: f64,
    pub(crate) fsyncs: u64,
    /// This load generator's own CPU time over the scenario (user +
    /// system, clock ticks), when `/proc/self/stat` can be read.
    pub(crate) loadgen_cpu_ticks: Option<u64>,
    /// The server's own fdatasync and durable-wait figures for the topic,
    /// as RESULT fields (empty when it has none).
    pub(crate) store_latency: String,
    pub(crate) extra: Vec<(&'static str, String)>,
}

impl Outcome {
    /// What an append phase measured: `n` records in `append_secs`, with
    /// the latencies in `latency` and the scenario's `extra` fields.
    pub(crate) fn appended(
        n: u64,
        append_secs: f64,
        latency: Histogram<u64>,
        extra: Vec<(&'static str, String)>,
    ) -> Outcome {
        Outcome {
            n,
            append_secs,
            latency: Some(latency),
            extra,
            ..Outcome::default()
        }
    }
}

pub(crate) fn ack(args: &Args) -> proto::Ack {
    match args.ack {
        AckArg::Durable => proto::Ack::Durable,
        AckArg::Written => proto::Ack::Written,
    }
}

pub(crate) fn ack_name(args: &Args) -> &'static str {
    match args.ack {
        AckArg::Durable => "durable",
        AckArg::Written => "written",
    }
}

pub(crate) fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant figures.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant, valid bounds")
}

pub(crate) fn record_latency(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:12} {bar:40} {pos}/{len} {per_sec} {eta}")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_owned());
    bar
}

/// Encodes one batch of `count` records of `size` bytes.
pub(crate) fn encode(
    builder: &mut BatchBuilder,
    count: u64,
    value: &[u8],
) -> Result<Bytes, BoxError> {
    let now = log_format::now_ms();
    for _ in 0..count {
        builder.push(&NewRecord::value(now, value))?;
    }
    Ok(builder.finish()?)
}

pub(crate) fn builder() -> BatchBuilder {
    BatchBuilder::new(Limits::unlimited())
}

pub(crate) fn request(
    topic: &str,
    partition: u32,
    batch: Bytes,
    ack: proto::Ack,
) -> proto::ProduceRequest {
    proto::ProduceRequest {
        topic: topic.to_owned(),
        partition: Some(partition),
        encoded_batch: batch,
        ack: ack as i32,
        ..Default::default()
    }
}

/// Encodes the batches of `n` records (`batch` per batch, the last one
/// shorter) on a thread of its own, at most two ahead of the sender, as an
/// application fills its next batch while the previous one is in flight.
/// The batches arrive in order, each with its record count; an encoding
/// failure ends the stream with an error.
pub(crate) fn encoder(
    n: u64,
    batch: u64,
    size: usize,
) -> mpsc::Receiver<Result<(u64, Bytes), String>> {
    let (tx, rx) = mpsc::channel(2);
    std::thread::spawn(move || {
        let value = vec![b'x'; size];
        let mut builder = builder();
        let mut left = n;
        while left > 0 {
            let count = batch.max(1).min(left);
            let encoded = encode(&mut builder, count, &value)
                .map(|bytes| (count, bytes))
                .map_err(|e| e.to_string());
            let failed = encoded.is_err();
            if tx.blocking_send(encoded).is_err() || failed {
                return;
            }
            left -= count;
        }
    });
    rx
}

/// The next batch from an [`encoder`], with its record count.
pub(crate) async fn next_batch(
    batches: &mut mpsc::Receiver<Result<(u64, Bytes), String>>,
) -> Result<(u64, Bytes), BoxError> {
    match batches.recv().await {
        Some(encoded) => Ok(encoded?),
        None => Err("the encoder thread stopped early".into()),
    }
}

/// Produces `n` records to one partition, one batch in flight; latency
/// from the send of each batch to its ack.
pub(crate) async fn produce_serial(
    client: &Client,
    topic: &str,
    partition: u32,
    n: u64,
    args: &Args,
    bar: &ProgressBar,
) -> Result<Histogram<u64>, BoxError> {
    let mut log = client.log_service();
    let mut batches = encoder(n, args.batch, args.size);
    let mut h = histogram();
    let mut sent = 0;
    while sent < n {
        let (count, batch) = next_batch(&mut batches).await?;
        let started = Instant::now();
        log.produce(request(topic, partition, batch, ack(args)))
            .await?;
        record_latency(&mut h, started.elapsed());
        sent += count;
        bar.inc(count);
    }
    Ok(h)
}

/// Produces `args.n` records to partition 0 over one `ProduceStream` with
/// `args.in_flight` batches in flight.
pub(crate) async fn produce_pipelined(
    client: &Client,
    topic: &str,
    args: &Args,
    bar: &ProgressBar,
) -> Result<Histogram<u64>, BoxError> {
    let in_flight = args.in_flight.max(1);
    let (tx, rx) = mpsc::channel::<proto::ProduceStreamRequest>(in_flight);
    let mut responses = client
        .log_service()
        .produce_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut batches = encoder(args.n, args.batch, args.size);
    let mut h = histogram();
    let mut sent_at: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut sent = 0u64;
    let mut acked = 0u64;
    while acked < args.n {
        while sent < args.n && sent_at.len() < in_flight {
            let (count, batch) = next_batch(&mut batches).await?;
            let started = Instant::now();
            tx.send(proto::ProduceStreamRequest {
                request: Some(request(topic, 0, batch, ack(args))),
            })
            .await?;
            sent_at.push_back((started, count));
            sent += count;
        }
        let Some(_response) = responses.message().await? else {
            return Err("the server ended the produce stream".into());
        };
        let Some((started, count)) = sent_at.pop_front() else {
            return Err("an answer to nothing".into());
        };
        record_latency(&mut h, started.elapsed());
        acked += count;
        bar.inc(count);
    }
    Ok(h)
}

/// Reads a partition from its start to `end` (encoded batches, every
/// checksum verified here); returns records and payload bytes. One fetch at
/// a time, verified on this thread: verifying on a thread of its own while
/// the next page is fetched measured slower here (3.7-4.3 M against
/// 5.7-6.3 M records/s on 2 cores shared with the server).
pub(crate) async fn read_all(
    client: &Client,
    topic: &str,
    partition: u32,
    end: u64,
    args: &Args,
) -> Result<(u64, u64), BoxError> {
    let options = FetchOptions::default()
        .with_max_bytes(16 << 20)
        .with_max_records(u32::MAX)
        .with_isolation(match args.ack {
            AckArg::Written => Isolation::Written,
            AckArg::Durable => Isolation::Durable,
        })
        .with_format(RecordFormat::EncodedBatches);
    let (mut next, mut records, mut payload) = (0u64, 0u64, 0u64);
    while next < end {
        let page = client
            .fetch(topic, partition, Position::Offset(next), &options)
            .await?;
        for scanned in BytesScanner::new(page.encoded_batches, 0, Limits::unlimited()) {
            let Scanned::Batch(batch) = scanned else {
                return Err("damaged batch received".into());
            };
            for record in batch.records() {
                if record.offset() >= next {
                    records += 1;
                    payload += record.value().map_or(0, |v| v.len() as u64);
                }
            }
        }
        if page.next_offset == next {
            return Err(format!("no progress reading at offset {next}").into());
        }
        next = page.next_offset;
    }
    Ok((records, payload))
}

/// Reads every partition back and fills the read figures.
pub(crate) async fn read_back(
    client: &Client,
    topic: &str,
    partitions: u32,
    per_partition: &[u64],
    args: &Args,
    outcome: &mut Outcome,
) -> Result<(), BoxError> {
    let started = Instant::now();
    for p in 0..partitions {
        let (records, payload) =
            read_all(client, topic, p, per_partition[p as usize], args).await?;
        outcome.read_records += records;
        outcome.read_payload += payload;
    }
    outcome.read_secs = started.elapsed().as_secs_f64();
    let expected: u64 = per_partition.iter().sum();
    if outcome.read_records != expected {
        return Err(format!(
            "read {} records back, expected {expected}",
            outcome.read_records
        )
        .into());
    }
    Ok(())
}

/// Threads and anonymous memory of a process, from /proc.
pub(crate) fn process_stats(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("Threads:")?, field("RssAnon:")? * 1024))
}

/// This process's CPU time so far (user + system, in clock ticks), from
/// fields 14 and 15 of `/proc/self/stat`; `None` where there is no `/proc`.
pub(crate) fn own_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}
