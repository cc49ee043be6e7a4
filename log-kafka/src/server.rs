//! The accept loop: a bounded number of connections, each served by its
//! own task, and a graceful shutdown that lets every connection finish the
//! requests it already started. It does not parse requests (`conn.rs`).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use log_storage::Store;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::changes::Changes;
use crate::config::KafkaConfig;
use crate::{Ctx, conn, produce};

/// How long a shutdown waits for connections to finish what they started.
const DRAIN: Duration = Duration::from_secs(10);

/// Serves the Kafka protocol on `listener` over `store` until `shutdown`
/// completes, then stops accepting, lets each connection answer the
/// requests it already read (for at most 10 s) and returns.
///
/// `changes` gives the per-partition change signals that long-polling
/// Fetches wait on ([`OwnChanges`](crate::OwnChanges) when nothing else
/// in the process has them). Fails only if the listener's own address
/// cannot be read.
pub async fn run(
    listener: TcpListener,
    store: Arc<Store>,
    changes: Arc<dyn Changes>,
    groups: Arc<log_groups::Coordinator>,
    config: KafkaConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let ctx = Arc::new(Ctx {
        host: config
            .advertised_host
            .clone()
            .unwrap_or_else(|| local.ip().to_string()),
        port: i32::from(config.advertised_port.unwrap_or(local.port())),
        producer_ids: Arc::new(produce::ProducerIds::new()),
        store,
        changes,
        groups,
        config,
    });
    tracing::info!(%local, advertised = %format!("{}:{}", ctx.host, ctx.port), "kafka listener serving");
    let slots = Arc::new(Semaphore::new(ctx.config.max_connections.max(1)));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of file descriptors, say: back off briefly
                        // rather than spin.
                        tracing::warn!(error = %err, "kafka accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    tracing::warn!(%peer, limit = ctx.config.max_connections, "kafka connection refused: too many connections");
                    continue;
                };
                if let Err(err) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, error = %err, "cannot set TCP_NODELAY");
                }
                let ctx = Arc::clone(&ctx);
                let stopped = stopped.clone();
                connections.spawn(async move {
                    conn::serve(stream, peer, ctx, stopped).await;
                    drop(slot);
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "kafka connections did not finish in time; closing them"
        );
        connections.shutdown().await;
    }
    tracing::info!(%local, "kafka listener stopped");
    Ok(())
}
