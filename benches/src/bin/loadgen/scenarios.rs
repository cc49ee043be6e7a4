//! The scenarios: each creates its own topic, measures, prints its
//! `RESULT` (and `EXTRA`) line, and deletes the topic.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use log_client::proto;
use log_client::{Client, ClientConfig, FetchOptions, Isolation, Position, RecordFormat};
use log_format::{BatchBuilder, BytesScanner, Limits, NewRecord, Scanned};
use tokio::sync::{Mutex, mpsc};

use crate::{AckArg, Args, RpcArg, Scenario};

pub(crate) type BoxError = Box<dyn std::error::Error>;

/// What a scenario measured.
#[derive(Debug, Default)]
struct Outcome {
    n: u64,
    append_secs: f64,
    latency: Option<Histogram<u64>>,
    read_records: u64,
    read_payload: u64,
    read_secs: f64,
    fsyncs: u64,
    extra: Vec<(&'static str, String)>,
}

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    match args.scenario {
        Scenario::Ready => return ready(&args).await,
        Scenario::ScaleFill => return crate::scale::fill(&args).await,
        Scenario::ScaleRead => return crate::scale::read(&args).await,
        _ => {}
    }
    if args.n == 0 || args.batch == 0 {
        return Err("--n and --batch must be positive".into());
    }
    let client = Client::connect_with(
        args.addr.clone(),
        ClientConfig::default().with_max_message_bytes(64 << 20),
    )
    .await?;
    let topic = format!(
        "bench-{}-{}-{}",
        args.scenario.name(),
        std::process::id(),
        SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis()
    );
    let partitions = match args.scenario {
        Scenario::Producers => args.producers.max(1),
        Scenario::Partitions => args.partitions.max(1),
        _ => 1,
    };
    // Server threads and memory before the topic exists (partitions).
    let before = args.server_pid.and_then(process_stats);
    client
        .create_topic(&topic, partitions, Default::default())
        .await?;
    let outcome = match args.scenario {
        Scenario::Peer => peer(&client, &topic, &args).await?,
        Scenario::Pipelined => pipelined(&client, &topic, &args).await?,
        Scenario::Producers => producers(&client, &topic, &args).await?,
        Scenario::SmallWriters => small_writers(&client, &topic, &args).await?,
        Scenario::Fanout => fanout(&client, &topic, &args).await?,
        Scenario::Partitions => many_partitions(&client, &topic, &args, before).await?,
        // Handled before any topic is created.
        Scenario::Ready | Scenario::ScaleFill | Scenario::ScaleRead => return Ok(()),
    };
    let fsyncs: u64 = client
        .get_topic(&topic)
        .await?
        .partitions
        .iter()
        .map(|p| p.fsyncs)
        .sum();
    print(&args, &Outcome { fsyncs, ..outcome });
    if !args.keep {
        client.delete_topic(&topic).await?;
    }
    Ok(())
}

fn ack(args: &Args) -> proto::Ack {
    match args.ack {
        AckArg::Durable => proto::Ack::Durable,
        AckArg::Written => proto::Ack::Written,
    }
}

fn ack_name(args: &Args) -> &'static str {
    match args.ack {
        AckArg::Durable => "durable",
        AckArg::Written => "written",
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs .. 100 s, 3 significant figures.
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("constant, valid bounds")
}

fn record_latency(h: &mut Histogram<u64>, d: Duration) {
    let _ = h.record((d.as_micros() as u64).max(1));
}

/// A progress bar on stderr, drawn only when stderr is a terminal.
fn progress(len: u64, what: &str) -> ProgressBar {
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
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    for _ in 0..count {
        builder.push(&NewRecord::value(now, value))?;
    }
    Ok(builder.finish()?)
}

pub(crate) fn builder() -> BatchBuilder {
    BatchBuilder::new(Limits {
        max_batch_bytes: u32::MAX,
        max_records: u32::MAX,
    })
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
fn encoder(n: u64, batch: u64, size: usize) -> mpsc::Receiver<Result<(u64, Bytes), String>> {
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
async fn next_batch(
    batches: &mut mpsc::Receiver<Result<(u64, Bytes), String>>,
) -> Result<(u64, Bytes), BoxError> {
    match batches.recv().await {
        Some(encoded) => Ok(encoded?),
        None => Err("the encoder thread stopped early".into()),
    }
}

/// Produces `n` records to one partition, one batch in flight; latency
/// from the send of each batch to its ack.
async fn produce_serial(
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

/// Reads a partition from its start to `end` (encoded batches, every
/// checksum verified here); returns records and payload bytes. One fetch at
/// a time, verified on this thread: verifying on a thread of its own while
/// the next page is fetched measured slower here (3.7-4.3 M against
/// 5.7-6.3 M records/s on 2 cores shared with the server).
async fn read_all(
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
async fn read_back(
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

async fn peer(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let bar = progress(args.n, "append");
    let started = Instant::now();
    let h = produce_serial(client, topic, 0, args.n, args, &bar).await?;
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome {
        n: args.n,
        append_secs,
        latency: Some(h),
        ..Outcome::default()
    };
    read_back(client, topic, 1, &[args.n], args, &mut outcome).await?;
    Ok(outcome)
}

async fn pipelined(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let bar = progress(args.n, "append");
    let started = Instant::now();
    let h = produce_pipelined(client, topic, args, &bar).await?;
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome {
        n: args.n,
        append_secs,
        latency: Some(h),
        extra: vec![("in_flight", args.in_flight.to_string())],
        ..Outcome::default()
    };
    read_back(client, topic, 1, &[args.n], args, &mut outcome).await?;
    Ok(outcome)
}

/// Produces `args.n` records to partition 0 over one `ProduceStream` with
/// `args.in_flight` batches in flight.
async fn produce_pipelined(
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

async fn producers(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let p = args.producers.max(1);
    let per: Vec<u64> = (0..p)
        .map(|i| args.n / u64::from(p) + u64::from(u64::from(i) < args.n % u64::from(p)))
        .collect();
    let bar = progress(args.n, "append");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, &n) in per.iter().enumerate() {
        let (client, topic, args, bar) =
            (client.clone(), topic.to_owned(), args.clone(), bar.clone());
        tasks.push(tokio::spawn(async move {
            produce_serial(&client, &topic, i as u32, n, &args, &bar)
                .await
                .map_err(|e| e.to_string())
        }));
    }
    let mut h = histogram();
    for task in tasks {
        let part = task.await.map_err(|e| e.to_string())??;
        h.add(part)?;
    }
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome {
        n: args.n,
        append_secs,
        latency: Some(h),
        extra: vec![("producers", p.to_string())],
        ..Outcome::default()
    };
    read_back(client, topic, p, &per, args, &mut outcome).await?;
    Ok(outcome)
}

async fn small_writers(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let writers = args.writers.max(1);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(histogram()));
    let bar = progress(args.n, "acks");
    let started = Instant::now();
    // Independent writers: by default each has its own connection.
    let connections = match args.connections {
        0 => writers,
        n => n.min(writers),
    };
    let mut clients = vec![client.clone()];
    for _ in 1..connections {
        clients.push(Client::connect(args.addr.clone()).await?);
    }
    let mut tasks = Vec::new();
    for w in 0..writers {
        let (client, topic, args, bar, next, latencies) = (
            clients[(w % connections) as usize].clone(),
            topic.to_owned(),
            args.clone(),
            bar.clone(),
            Arc::clone(&next),
            Arc::clone(&latencies),
        );
        tasks.push(tokio::spawn(async move {
            let value = vec![b'x'; args.size];
            let mut builder = builder();
            let mut local = histogram();
            let mut writer = SmallWriter::open(&client, args.rpc)
                .await
                .map_err(|e| e.to_string())?;
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < args.n {
                let t0 = Instant::now();
                let batch = encode(&mut builder, 1, &value).map_err(|e| e.to_string())?;
                writer
                    .produce(request(&topic, 0, batch, ack(&args)))
                    .await
                    .map_err(|e| e.to_string())?;
                record_latency(&mut local, t0.elapsed());
                bar.inc(1);
            }
            latencies
                .lock()
                .await
                .add(local)
                .map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let h = latencies.lock().await.clone();
    Ok(Outcome {
        n: args.n,
        append_secs,
        latency: Some(h),
        extra: vec![
            ("writers", writers.to_string()),
            ("connections", connections.to_string()),
            ("rpc", format!("{:?}", args.rpc).to_lowercase()),
        ],
        ..Outcome::default()
    })
}

/// One small writer's way to the server: a unary call per record, or one
/// `ProduceStream` with a single request in flight.
enum SmallWriter {
    Unary(proto::log_service_client::LogServiceClient<tonic::transport::Channel>),
    Stream {
        requests: mpsc::Sender<proto::ProduceStreamRequest>,
        responses: tonic::Streaming<proto::ProduceStreamResponse>,
    },
}

impl SmallWriter {
    async fn open(client: &Client, rpc: RpcArg) -> Result<Self, BoxError> {
        let mut log = client.log_service();
        Ok(match rpc {
            RpcArg::Unary => Self::Unary(log),
            RpcArg::Stream => {
                let (requests, rx) = mpsc::channel(1);
                let responses = log
                    .produce_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                    .await?
                    .into_inner();
                Self::Stream {
                    requests,
                    responses,
                }
            }
        })
    }

    /// Sends one request and waits for its answer; a refused append is an
    /// error.
    async fn produce(&mut self, request: proto::ProduceRequest) -> Result<(), BoxError> {
        match self {
            Self::Unary(log) => {
                log.produce(request).await?;
            }
            Self::Stream {
                requests,
                responses,
            } => {
                requests
                    .send(proto::ProduceStreamRequest {
                        request: Some(request),
                    })
                    .await?;
                // A refused append ends the stream with its status.
                if responses.message().await?.is_none() {
                    return Err("the server ended the produce stream".into());
                }
            }
        }
        Ok(())
    }
}

async fn fanout(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let subscribers = args.subscribers.max(1);
    let isolation = match args.ack {
        AckArg::Written => proto::Isolation::Written,
        AckArg::Durable => proto::Isolation::Durable,
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..subscribers {
        let (client, topic, n) = (client.clone(), topic.to_owned(), args.n);
        tasks.push(tokio::spawn(async move {
            let mut stream = client
                .subscribe(proto::SubscribeRequest {
                    topic,
                    partition: 0,
                    position: Some(Position::Earliest.into()),
                    isolation: isolation as i32,
                    format: proto::RecordFormat::EncodedBatches as i32,
                    max_batch_bytes: 4 << 20,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            let (mut seen, mut payload) = (0u64, 0u64);
            while seen < n {
                let Some(message) = stream.message().await.map_err(|e| e.to_string())? else {
                    return Err("subscription ended early".to_owned());
                };
                if let Some(proto::subscribe_response::Event::Batch(b)) = message.event {
                    for scanned in BytesScanner::new(b.encoded_batches, 0, Limits::unlimited()) {
                        let Scanned::Batch(batch) = scanned else {
                            return Err("damaged batch".to_owned());
                        };
                        for record in batch.records() {
                            if record.offset() >= b.start_offset {
                                seen += 1;
                                payload += record.value().map_or(0, |v| v.len() as u64);
                            }
                        }
                    }
                }
            }
            Ok::<(u64, u64), String>((seen, payload))
        }));
    }
    let bar = progress(args.n, "append");
    let h = produce_pipelined(client, topic, args, &bar).await?;
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome {
        n: args.n,
        append_secs,
        latency: Some(h),
        extra: vec![("subscribers", subscribers.to_string())],
        ..Outcome::default()
    };
    for task in tasks {
        let (seen, payload) = task.await.map_err(|e| e.to_string())??;
        outcome.read_records += seen;
        outcome.read_payload += payload;
    }
    outcome.read_secs = started.elapsed().as_secs_f64();
    Ok(outcome)
}

/// Threads and anonymous memory of a process, from /proc.
fn process_stats(pid: u32) -> Option<(u64, u64)> {
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

async fn many_partitions(
    client: &Client,
    topic: &str,
    args: &Args,
    before: Option<(u64, u64)>,
) -> Result<Outcome, BoxError> {
    let partitions = args.partitions.max(1);
    let per = (args.n / u64::from(partitions)).max(1);
    let bar = progress(u64::from(partitions), "partitions");
    let started = Instant::now();
    let mut h = histogram();
    let mut log = client.log_service();
    let value = vec![b'x'; args.size];
    let mut builder = builder();
    for p in 0..partitions {
        let t0 = Instant::now();
        let batch = encode(&mut builder, per, &value)?;
        log.produce(request(topic, p, batch, ack(args))).await?;
        record_latency(&mut h, t0.elapsed());
        bar.inc(1);
    }
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let after = args.server_pid.and_then(process_stats);
    let mut extra = vec![("partitions", partitions.to_string())];
    if let (Some((threads_before, mem_before)), Some((threads_after, mem_after))) = (before, after)
    {
        extra.push(("server_threads_before", threads_before.to_string()));
        extra.push(("server_threads_after", threads_after.to_string()));
        extra.push((
            "server_mem_per_partition_bytes",
            (mem_after.saturating_sub(mem_before) / u64::from(partitions)).to_string(),
        ));
    }
    let mut outcome = Outcome {
        n: per * u64::from(partitions),
        append_secs,
        latency: Some(h),
        extra,
        ..Outcome::default()
    };
    let per_partition = vec![per; partitions as usize];
    read_back(
        client,
        topic,
        partitions,
        &per_partition,
        args,
        &mut outcome,
    )
    .await?;
    Ok(outcome)
}

/// Waits until the server serves; prints how long it took.
async fn ready(args: &Args) -> Result<(), BoxError> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout_secs);
    loop {
        if let Ok(client) = Client::connect(args.addr.clone()).await {
            match client.list_topics().await {
                Ok(topics) => {
                    let ms = started.elapsed().as_millis();
                    println!(
                        "ready: the server serves {} topics after {ms} ms",
                        topics.len()
                    );
                    println!("EXTRA system=log-server scenario=ready ready_ms={ms}");
                    return Ok(());
                }
                Err(e) if !e.is_retryable() => return Err(e.into()),
                Err(_) => {}
            }
        }
        if Instant::now() >= deadline {
            return Err("the server did not become ready".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn print(args: &Args, o: &Outcome) {
    let bytes = (o.n * args.size as u64) as f64;
    let (append_rps, append_mbps) = if o.append_secs > 0.0 {
        (o.n as f64 / o.append_secs, bytes / o.append_secs / 1e6)
    } else {
        (0.0, 0.0)
    };
    let (read_rps, read_mbps) = if o.read_secs > 0.0 {
        (
            o.read_records as f64 / o.read_secs,
            o.read_payload as f64 / o.read_secs / 1e6,
        )
    } else {
        (0.0, 0.0)
    };
    let (p50, p99) = o.latency.as_ref().map_or((0, 0), |h| {
        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    });
    let scenario = args.scenario.name();
    let ack = ack_name(args);
    // Small writers send one record per request, whatever `--batch` says.
    let batch = if args.scenario == Scenario::SmallWriters {
        1
    } else {
        args.batch
    };
    println!(
        "{scenario}: {} records of {} B, batches of {}, ack {ack}: append {append_rps:.0} rec/s ({append_mbps:.1} MB/s), p50 {p50} us, p99 {p99} us; read {read_rps:.0} rec/s ({read_mbps:.1} MB/s); {} fsyncs",
        o.n, args.size, batch, o.fsyncs
    );
    println!(
        "RESULT system=log-server scenario={scenario} size={} batch={} ack={ack} n={} append_rps={append_rps:.0} append_mbps={append_mbps:.1} lat_p50_us={p50} lat_p99_us={p99} read_rps={read_rps:.0} read_mbps={read_mbps:.1} fsyncs={}",
        args.size, batch, o.n, o.fsyncs
    );
    if !o.extra.is_empty() {
        let extra: Vec<String> = o.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "EXTRA system=log-server scenario={scenario} {}",
            extra.join(" ")
        );
    }
}
