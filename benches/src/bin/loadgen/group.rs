//! The consumer-group scenario: `--members` group members (processes of
//! this binary, `--scenario group-member`, each a `GroupConsumer`) consume
//! a topic of `--partitions` partitions while a producer writes to it; one
//! member is killed with SIGKILL. It measures the records/s the group
//! consumes before and after, and the rebalance time: from the kill until
//! every partition of the killed member is consumed again by another.
//!
//! ```text
//! RESULT system=log-server scenario=group-rebalance size=100 batch=- ack=durable n=… append_rps=… … read_rps=… …
//! EXTRA system=log-server scenario=group-rebalance members=4 partitions=8 rebalance_ms=… read_rps_after=…
//! ```
//!
//! A member prints `ADD p,p`, `REVOKE p,p`, `FIRST p t` (its first record
//! of a partition since it was assigned) and `COUNT n t` (records consumed
//! so far, every 250 ms); `t` is Unix seconds.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log_client::{Client, GroupConsumer, GroupConsumerConfig, NewRecord, Producer, ProducerConfig};

use crate::Args;
use crate::common::BoxError;

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One member: consume, report (see the module docs), until killed.
pub(crate) async fn member(args: &Args) -> Result<(), BoxError> {
    let (Some(group), Some(topic)) = (&args.group, &args.topic) else {
        return Err("group-member needs --group and --topic".into());
    };
    let client = Client::connect(args.addr.clone()).await?;
    let config = GroupConsumerConfig::new(group.clone(), [topic.clone()])
        .with_client_id("bench")
        .with_session_timeout(Duration::from_secs(6))
        .with_max_wait(Duration::from_millis(100));
    let mut member = GroupConsumer::join(&client, config).await?;
    let mut owned: BTreeSet<u32> = BTreeSet::new();
    let mut fresh: BTreeSet<u32> = BTreeSet::new();
    let mut count = 0u64;
    let mut last_report = Instant::now();
    loop {
        let now: BTreeSet<u32> = member
            .assignment()
            .map(|a| a.partitions.iter().map(|(_, p)| *p).collect())
            .unwrap_or_default();
        if now != owned {
            let join =
                |s: &BTreeSet<u32>| s.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
            let gone: BTreeSet<u32> = owned.difference(&now).copied().collect();
            let new: BTreeSet<u32> = now.difference(&owned).copied().collect();
            if !gone.is_empty() {
                println!("REVOKE {}", join(&gone));
            }
            if !new.is_empty() {
                println!("ADD {}", join(&new));
            }
            fresh.extend(new);
            owned = now;
        }
        if let Ok(next) = tokio::time::timeout(Duration::from_millis(100), member.next()).await {
            let r = next?;
            count += 1;
            if fresh.remove(&r.record.partition) {
                println!("FIRST {} {}", r.record.partition, unix_now());
            }
            if count.is_multiple_of(500) {
                member.commit().await?;
            }
        }
        if last_report.elapsed() >= Duration::from_millis(250) {
            println!("COUNT {count} {}", unix_now());
            last_report = Instant::now();
        }
    }
}

/// A member process and what it printed, with when it was read.
struct Proc {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Proc {
    fn spawn(args: &Args, group: &str, topic: &str) -> Result<Proc, BoxError> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--addr", &args.addr, "--scenario", "group-member"])
            .args(["--group", group, "--topic", topic])
            .stdout(Stdio::piped())
            .spawn()?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().ok_or("no member stdout")?;
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(mut l) = sink.lock() {
                    l.push(line);
                }
            }
        });
        Ok(Proc { child, lines })
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn owned(&self) -> BTreeSet<u32> {
        let mut owned = BTreeSet::new();
        for line in self.lines() {
            let (kind, rest) = line.split_once(' ').unwrap_or((&line, ""));
            let parts = rest.split(',').filter_map(|p| p.parse::<u32>().ok());
            match kind {
                "ADD" => owned.extend(parts),
                "REVOKE" => parts.for_each(|p| {
                    owned.remove(&p);
                }),
                _ => {}
            }
        }
        owned
    }

    /// The last `COUNT`.
    fn count(&self) -> u64 {
        self.lines()
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("COUNT "))
            .and_then(|rest| rest.split(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    /// `FIRST` times by partition, after `since`.
    fn firsts(&self, since: f64) -> BTreeMap<u32, f64> {
        let mut out = BTreeMap::new();
        for line in self.lines() {
            let mut it = line.split(' ');
            if it.next() != Some("FIRST") {
                continue;
            }
            let (Some(p), Some(t)) = (
                it.next().and_then(|p| p.parse().ok()),
                it.next().and_then(|t| t.parse::<f64>().ok()),
            ) else {
                continue;
            };
            if t > since {
                out.entry(p).or_insert(t);
            }
        }
        out
    }
}

async fn wait_for(what: &str, timeout: Duration, cond: impl Fn() -> bool) -> Result<(), BoxError> {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            return Err(format!("group-rebalance: timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Records/s the members consume over `window`.
async fn consumed_rate(members: &[&Proc], window: Duration) -> f64 {
    let before: u64 = members.iter().map(|m| m.count()).sum();
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after: u64 = members.iter().map(|m| m.count()).sum();
    after.saturating_sub(before) as f64 / started.elapsed().as_secs_f64()
}

/// The scenario (see the module docs).
pub(crate) async fn rebalance(args: &Args) -> Result<(), BoxError> {
    let client = Client::connect(args.addr.clone()).await?;
    let stamp = format!("{}-{}", std::process::id(), log_format::now_ms());
    let topic = format!("bench-group-{stamp}");
    let group = format!("bench-group-{stamp}");
    let partitions = args.partitions.max(1);
    client
        .create_topic(&topic, partitions, Default::default())
        .await?;
    // The producer: DURABLE batches, as fast as they go, until stopped.
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(AtomicU64::new(0));
    let producing = {
        let (client, topic, stop, produced) = (
            client.clone(),
            topic.clone(),
            Arc::clone(&stop),
            Arc::clone(&produced),
        );
        let value = vec![b'x'; args.size];
        tokio::spawn(async move {
            let producer = Producer::new(client, &topic, ProducerConfig::default()).await?;
            while !stop.load(Ordering::Relaxed) {
                let delivery = producer.send(NewRecord::value(value.clone())).await?;
                drop(delivery);
                produced.fetch_add(1, Ordering::Relaxed);
            }
            producer.flush().await?;
            Ok::<(), log_client::Error>(())
        })
    };
    let mut members = (0..args.members.max(2))
        .map(|_| Proc::spawn(args, &group, &topic))
        .collect::<Result<Vec<_>, _>>()?;
    let all: BTreeSet<u32> = (0..partitions).collect();
    let result = async {
        wait_for("the partitions to spread", Duration::from_secs(90), || {
            members.iter().all(|m| !m.owned().is_empty())
                && members
                    .iter()
                    .flat_map(|m| m.owned())
                    .collect::<BTreeSet<_>>()
                    == all
        })
        .await?;
        let window = Duration::from_secs(args.seconds.max(1));
        let produce_started = (Instant::now(), produced.load(Ordering::Relaxed));
        let before = consumed_rate(&members.iter().collect::<Vec<_>>(), window).await;
        let (victim, survivors) = members.split_first_mut().ok_or("no member")?;
        let lost = victim.owned();
        let killed_at = unix_now();
        // `Child::kill` is SIGKILL on Unix: no goodbye to the group.
        victim.child.kill()?;
        wait_for(
            "the killed member's partitions to be consumed again",
            Duration::from_secs(90),
            || {
                let taken: BTreeSet<u32> = survivors
                    .iter()
                    .flat_map(|m| m.firsts(killed_at).into_keys())
                    .collect();
                lost.is_subset(&taken)
            },
        )
        .await?;
        let rebalanced = survivors
            .iter()
            .flat_map(|m| m.firsts(killed_at))
            .filter(|(p, _)| lost.contains(p))
            .map(|(_, t)| t)
            .fold(killed_at, f64::max);
        let after = consumed_rate(&survivors.iter().collect::<Vec<_>>(), window).await;
        let produce_rps = (produced.load(Ordering::Relaxed) - produce_started.1) as f64
            / produce_started.0.elapsed().as_secs_f64();
        let rebalance_ms = (rebalanced - killed_at) * 1000.0;
        let count = survivors.len() + 1;
        let consumed: u64 = survivors.iter().map(|m| m.count()).sum();
        println!(
            "group-rebalance: {count} members over {partitions} partitions while producing {produce_rps:.0} rec/s: consumed {before:.0} rec/s, one killed (-9), its partitions {lost:?} consumed again after {rebalance_ms:.0} ms, then {after:.0} rec/s"
        );
        println!(
            "RESULT system=log-server scenario=group-rebalance size={} batch=- ack=durable n={consumed} append_rps={produce_rps:.0} append_mbps={:.1} lat_p50_us=- lat_p99_us=- read_rps={before:.0} read_mbps={:.1} fsyncs=-",
            args.size,
            produce_rps * args.size as f64 / 1e6,
            before * args.size as f64 / 1e6,
        );
        println!(
            "EXTRA system=log-server scenario=group-rebalance members={count} partitions={partitions} rebalance_ms={rebalance_ms:.0} read_rps_after={after:.0}"
        );
        Ok::<(), BoxError>(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    for mut m in members {
        let _ = m.child.kill();
        let _ = m.child.wait();
    }
    let _ = producing.await;
    let _ = client.delete_topic(&topic).await;
    result
}
