//! The scenarios: each creates its own topic, measures, prints its
//! `RESULT` (and `EXTRA`) line, and deletes the topic.

use std::time::{Duration, Instant};

use log_client::{Client, ClientConfig};

use crate::common::{
    BoxError, Outcome, ack_name, histogram, own_cpu_ticks, process_stats, produce_pipelined,
    produce_serial, progress, read_back,
};
use crate::writers::{fanout, many_partitions, small_writers};
use crate::{Args, Scenario};

pub(crate) async fn run(args: Args) -> Result<(), BoxError> {
    match args.scenario {
        Scenario::Ready => return ready(&args).await,
        Scenario::ScaleFill => return crate::scale::fill(&args).await,
        Scenario::ScaleRead => return crate::scale::read(&args).await,
        Scenario::GroupRebalance => return crate::group::rebalance(&args).await,
        Scenario::GroupMember => return crate::group::member(&args).await,
        Scenario::CleanLoad => return crate::cleanload::run(&args).await,
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
        log_format::now_ms()
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
    let cpu_before = own_cpu_ticks();
    let outcome = match args.scenario {
        Scenario::Peer => peer(&client, &topic, &args).await?,
        Scenario::Pipelined => pipelined(&client, &topic, &args).await?,
        Scenario::Producers => producers(&client, &topic, &args).await?,
        Scenario::SmallWriters => small_writers(&client, &topic, &args).await?,
        Scenario::Fanout => fanout(&client, &topic, &args).await?,
        Scenario::Partitions => many_partitions(&client, &topic, &args, before).await?,
        // Handled before any topic is created.
        Scenario::Ready
        | Scenario::ScaleFill
        | Scenario::ScaleRead
        | Scenario::GroupRebalance
        | Scenario::GroupMember
        | Scenario::CleanLoad => return Ok(()),
    };
    let info = client.get_topic(&topic).await?;
    let fsyncs: u64 = info.partitions.iter().map(|p| p.fsyncs).sum();
    let store_latency = store_latency(&info.partitions);
    let loadgen_cpu_ticks = cpu_before
        .zip(own_cpu_ticks())
        .map(|(before, after)| after.saturating_sub(before));
    print(
        &args,
        &Outcome {
            fsyncs,
            loadgen_cpu_ticks,
            store_latency,
            ..outcome
        },
    );
    if !args.keep {
        client.delete_topic(&topic).await?;
    }
    Ok(())
}

async fn peer(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let bar = progress(args.n, "append");
    let started = Instant::now();
    let h = produce_serial(client, topic, 0, args.n, args, &bar).await?;
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome::appended(args.n, append_secs, h, Vec::new());
    read_back(client, topic, 1, &[args.n], args, &mut outcome).await?;
    Ok(outcome)
}

async fn pipelined(client: &Client, topic: &str, args: &Args) -> Result<Outcome, BoxError> {
    let bar = progress(args.n, "append");
    let started = Instant::now();
    let h = produce_pipelined(client, topic, args, &bar).await?;
    let append_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut outcome = Outcome::appended(
        args.n,
        append_secs,
        h,
        vec![("in_flight", args.in_flight.to_string())],
    );
    read_back(client, topic, 1, &[args.n], args, &mut outcome).await?;
    Ok(outcome)
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
    let mut outcome = Outcome::appended(args.n, append_secs, h, vec![("producers", p.to_string())]);
    read_back(client, topic, p, &per, args, &mut outcome).await?;
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
    let loadgen_cpu = o
        .loadgen_cpu_ticks
        .map_or(String::new(), |t| format!(" loadgen_cpu_ticks={t}"));
    println!(
        "RESULT system=log-server scenario={scenario} size={} batch={} ack={ack} n={} append_rps={append_rps:.0} append_mbps={append_mbps:.1} lat_p50_us={p50} lat_p99_us={p99} read_rps={read_rps:.0} read_mbps={read_mbps:.1} fsyncs={}{loadgen_cpu}{}",
        args.size, batch, o.n, o.fsyncs, o.store_latency
    );
    if !o.extra.is_empty() {
        let extra: Vec<String> = o.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "EXTRA system=log-server scenario={scenario} {}",
            extra.join(" ")
        );
    }
}

/// The server's own latency figures for the scenario's topic, as RESULT
/// fields: its fdatasyncs (`store_fsync_*`) and the time its DURABLE
/// appends waited between write and ack (`store_wait_*`), in µs. Over
/// several partitions each figure is the largest partition's (an upper
/// bound); empty when the server recorded nothing.
fn store_latency(partitions: &[log_client::PartitionInfo]) -> String {
    let us = |d: std::time::Duration| d.as_micros();
    let max = |f: &dyn Fn(&log_client::PartitionInfo) -> u128| {
        partitions.iter().map(f).max().unwrap_or(0)
    };
    if partitions.iter().all(|p| p.fsync_latency.count == 0) {
        return String::new();
    }
    format!(
        " store_fsync_p50_us={} store_fsync_p99_us={} store_fsync_max_us={} store_wait_p50_us={} store_wait_p99_us={} store_wait_max_us={}",
        max(&|p| us(p.fsync_latency.p50)),
        max(&|p| us(p.fsync_latency.p99)),
        max(&|p| us(p.fsync_latency.max)),
        max(&|p| us(p.durable_wait.p50)),
        max(&|p| us(p.durable_wait.p99)),
        max(&|p| us(p.durable_wait.max)),
    )
}
