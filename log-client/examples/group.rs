//! A member of a consumer group: reads whatever partitions the server
//! assigns it, processes each record (prints it), commits after each, and
//! reports assignments and revokes, until Ctrl-C or SIGTERM (then commits
//! and leaves). Run several: they share the partitions, Kafka consumers of
//! the same group included.
//!
//! `cargo run -p log-client --example group -- GROUP TOPIC [ADDR] [NAME]`
//!
//! Prints one line per event, as the group tests read them:
//! `ADD p,p` / `REVOKE p,p` (partitions of TOPIC assigned, revoked),
//! `REC partition offset unix-seconds` (a record processed).
#![allow(clippy::print_stdout)]

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use log_client::{Client, GroupConsumer, GroupConsumerConfig};

fn parts(set: &BTreeSet<u32>) -> String {
    set.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let group = args.next().unwrap_or_else(|| "example".into());
    let topic = args.next().unwrap_or_else(|| "example".into());
    let addr = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:50051".into());
    let name = args.next().unwrap_or_else(|| "rust".into());

    let client = Client::connect(addr).await?;
    let config = GroupConsumerConfig::new(group, [topic.as_str()])
        .with_client_id(name)
        .with_session_timeout(Duration::from_secs(6));
    let mut member = GroupConsumer::join(&client, config).await?;
    let mut owned = BTreeSet::new();
    let mut stop = Box::pin(shutdown());
    loop {
        let now: BTreeSet<u32> = member
            .assignment()
            .map(|a| a.partitions.iter().map(|(_, p)| *p).collect())
            .unwrap_or_default();
        if now != owned {
            let gone: BTreeSet<u32> = owned.difference(&now).copied().collect();
            let new: BTreeSet<u32> = now.difference(&owned).copied().collect();
            if !gone.is_empty() {
                println!("REVOKE {}", parts(&gone));
            }
            if !new.is_empty() {
                println!("ADD {}", parts(&new));
            }
            owned = now;
        }
        tokio::select! {
            () = &mut stop => break,
            next = tokio::time::timeout(Duration::from_millis(200), member.next()) => {
                let Ok(record) = next else { continue };
                let record = record?;
                let t = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
                println!("REC {} {} {t}", record.record.partition, record.record.offset);
                member.commit().await?;
            }
        }
    }
    member.close().await?;
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    #[cfg(unix)]
    {
        let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
