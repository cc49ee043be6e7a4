//! The `log-server` binary: parses the settings, sets up logging
//! (`RUST_LOG`, default `info`, to stderr), binds `--listen` and says so
//! on stderr (`log-server: listening on ADDR`, with the real port when
//! `--listen` asked for port 0, whatever `RUST_LOG` says), serves until
//! SIGINT or SIGTERM, then shuts down gracefully and exits 0. Exit code 1
//! on a runtime error, 2 on bad settings.

use std::process::ExitCode;

use clap::Parser;
use log_server::{Cli, Error, Server};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.resolve() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("log-server: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.print_config {
        #[allow(clippy::print_stdout)]
        {
            print!("{}", config.to_toml());
        }
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Every open partition holds a few files (segment, index, recovery
    // point): raise the soft open-file limit to the hard one, as Kafka's
    // operators are told to.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // Acks that one fdatasync made durable wake their streams' tasks
    // together (`server.rs`, `runtime_dispatch`); with the LIFO slot, each
    // stream's task would wake the connection's task straight into it, and
    // the connection would write each ack to the socket alone. Without
    // the slot the connection runs after the streams and flushes them in
    // one write. Needs `--cfg tokio_unstable` (`.cargo/config.toml`).
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    if config.worker_threads > 0 {
        builder.worker_threads(config.worker_threads as usize);
    }
    let runtime = match builder.enable_all().thread_name("log-server").build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("log-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        config.validate().map_err(Error::Config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        if let Ok(addr) = listener.local_addr() {
            // Whatever RUST_LOG says: scripts and tests started with
            // `--listen 127.0.0.1:0` read the port from this line.
            eprintln!("log-server: listening on {addr}");
        }
        Server::run(listener, config, wait_for_signal()).await
    });
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = %e, "log-server failed");
            eprintln!("log-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
