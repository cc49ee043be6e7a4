//! The `clean-load` scenario (issue 15): what a cleaning pass costs the
//! producers running beside it, and how fast the cleaner goes on the
//! server.
//!
//! 1. Fills the topic `clean-dirty` (one partition, 1 MiB segments, delete
//!    policy for now) with `--n` keyed records of `--size` bytes over 1000
//!    keys (WRITTEN, 1000 a batch), so almost every record is superseded.
//! 2. Runs `--writers` producers on the topic `clean-load`, each sending
//!    `--batch`-record DURABLE batches one at a time, for `--seconds`:
//!    the **before** window.
//! 3. Turns `clean-dirty` into a compacted topic (AlterTopicConfig) and
//!    measures the same producers until the server reports the pass done
//!    (its `CleanerInfo.passes`): the **during** window, which also gives
//!    the cleaner's MB/s of dirty log on the live server.
//!
//! It prints one `EXTRA` line: both windows' acks/s, p50 and p99, the
//! pass's time, the bytes it took and those it reclaimed. The server's
//! cleaner threads look for work every `--cleaner-backoff-ms` (`xtask
//! bench` starts servers with 200 ms), which bounds how late the pass
//! starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use log_client::{CleanupPolicy, Client, TopicConfig, proto};
use log_format::{BatchBuilder, Limits, NewRecord};
use tokio::sync::Mutex;

use crate::Args;
use crate::common::{BoxError, builder, encode, histogram, record_latency, request};

const DIRTY: &str = "clean-dirty";
const LOAD: &str = "clean-load";
/// Keys of the dirty topic.
const KEYS: u64 = 1000;

pub(crate) async fn run(args: &Args) -> Result<(), BoxError> {
    let client = Client::connect(args.addr.clone()).await?;
    // 1 MiB segments: even a quick run's fill seals several (the active
    // segment is never cleaned).
    let segment = TopicConfig::default()
        .with_segment_bytes(1 << 20)
        .with_max_batch_bytes(1 << 20);
    client.create_topic(DIRTY, 1, segment.clone()).await?;
    client.create_topic(LOAD, 1, segment).await?;
    fill(&client, args).await?;
    let dirty_bytes = client.get_topic(DIRTY).await?.partitions[0].size_bytes;

    let stop = Arc::new(AtomicBool::new(false));
    let window = Arc::new(Mutex::new(histogram()));
    let writers = start_writers(&client, args, &stop, &window);
    // Before: the cleaner has nothing to do.
    tokio::time::sleep(Duration::from_secs(args.seconds.max(1))).await;
    let before = take(&window, args.seconds.max(1) as f64, args.batch).await?;
    // During: from the switch to compact until the pass is done.
    let started = Instant::now();
    client
        .alter_topic_config(
            DIRTY,
            TopicConfig::default().with_cleanup_policy(CleanupPolicy::Compact),
        )
        .await?;
    let deadline = started + Duration::from_secs(300);
    let cleaner = loop {
        let info = client.get_topic(DIRTY).await?.partitions[0];
        if info.cleaner.passes > 0 {
            break info.cleaner;
        }
        if Instant::now() > deadline {
            return Err("no cleaning pass within 300 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let clean_secs = started.elapsed().as_secs_f64();
    let during = take(&window, clean_secs, args.batch).await?;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await??;
    }
    let line = format!(
        "EXTRA system=log-server scenario=clean-load writers={} batch={} \
         before_rps={:.0} before_p50_us={} before_p99_us={} \
         during_rps={:.0} during_p50_us={} during_p99_us={} \
         clean_secs={clean_secs:.2} dirty_bytes={dirty_bytes} reclaimed_bytes={} clean_mbps={:.1}",
        args.writers.max(1),
        args.batch,
        before.0,
        before.1,
        before.2,
        during.0,
        during.1,
        during.2,
        cleaner.bytes_reclaimed,
        dirty_bytes as f64 / 1e6 / clean_secs.max(1e-9),
    );
    println!("{line}");
    if !args.keep {
        client.delete_topic(DIRTY).await?;
        client.delete_topic(LOAD).await?;
    }
    Ok(())
}

/// Fills the dirty topic: `--n` records over [`KEYS`] keys.
async fn fill(client: &Client, args: &Args) -> Result<(), BoxError> {
    let mut log = client.log_service();
    let mut builder = BatchBuilder::new(Limits::unlimited());
    let value = vec![b'd'; args.size];
    let now = log_format::now_ms();
    let mut n = 0u64;
    while n < args.n {
        for _ in 0..1000.min(args.n - n) {
            let key = format!("key-{}", n % KEYS);
            builder.push(&NewRecord::keyed(now, key.as_bytes(), &value))?;
            n += 1;
        }
        let batch = builder.finish()?;
        log.produce(request(DIRTY, 0, batch, proto::Ack::Written))
            .await?;
    }
    Ok(())
}

type Writer = tokio::task::JoinHandle<Result<(), String>>;

/// The producers on the load topic, recording each batch's latency into
/// `window` until `stop`.
fn start_writers(
    client: &Client,
    args: &Args,
    stop: &Arc<AtomicBool>,
    window: &Arc<Mutex<Histogram<u64>>>,
) -> Vec<Writer> {
    (0..args.writers.max(1))
        .map(|_| {
            let (client, stop, window) = (client.clone(), Arc::clone(stop), Arc::clone(window));
            let (batch, value) = (args.batch.max(1), vec![b'l'; args.size]);
            tokio::spawn(async move {
                let mut log = client.log_service();
                let mut builder = builder();
                while !stop.load(Ordering::Relaxed) {
                    let encoded = encode(&mut builder, batch, &value).map_err(|e| e.to_string())?;
                    let t0 = Instant::now();
                    log.produce(request(LOAD, 0, encoded, proto::Ack::Durable))
                        .await
                        .map_err(|e| e.to_string())?;
                    record_latency(&mut *window.lock().await, t0.elapsed());
                }
                Ok(())
            })
        })
        .collect()
}

/// The window so far, reset: records/s over `secs` (`batch` a call), and
/// the calls' p50 and p99 in µs.
async fn take(
    window: &Mutex<Histogram<u64>>,
    secs: f64,
    batch: u64,
) -> Result<(f64, u64, u64), BoxError> {
    let mut h = window.lock().await;
    let out = (
        (h.len() * batch.max(1)) as f64 / secs.max(1e-9),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
    );
    h.reset();
    Ok(out)
}
