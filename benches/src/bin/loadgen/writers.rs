//! The scenarios of many concurrent writers and readers: `small-writers`
//! (many producers, one record in flight each), `fanout` (one writer,
//! many subscribers) and `many-partitions`.

use crate::{AckArg, Args, RpcArg};
use log_client::proto;
use log_client::{Client, Position};
use log_format::{BytesScanner, Limits, Scanned};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, mpsc};

use crate::common::{
    BoxError, Outcome, ack, builder, encode, histogram, process_stats, produce_pipelined, progress,
    read_back, record_latency, request,
};

pub(crate) async fn small_writers(
    client: &Client,
    topic: &str,
    args: &Args,
) -> Result<Outcome, BoxError> {
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

pub(crate) async fn fanout(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
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
    let mut outcome = Outcome::appended(
        args.n,
        append_secs,
        h,
        vec![("subscribers", subscribers.to_string())],
    );
    for task in tasks {
        let (seen, payload) = task.await.map_err(|e| e.to_string())??;
        outcome.read_records += seen;
        outcome.read_payload += payload;
    }
    outcome.read_secs = started.elapsed().as_secs_f64();
    Ok(outcome)
}

pub(crate) async fn many_partitions(
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
