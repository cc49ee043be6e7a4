//! The real `log-server` a bench step runs against: started on a free
//! loopback port with its own data directory (the Kafka listener off, or on
//! a second free port for the Kafka peer step), waited for until it serves,
//! stopped (SIGTERM, then kill) when dropped.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `log-server` child process.
pub(super) struct Server {
    pub(super) child: Child,
    pub(super) port: u16,
    /// The Kafka listener's port, when it is on.
    pub(super) kafka_port: Option<u16>,
}

/// A free loopback port (bound, read, released).
pub(super) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl Server {
    pub(super) fn start(bin: &Path, data: &Path) -> Result<Server, String> {
        Self::start_on(bin, data, free_port()?)
    }

    /// With the `LOG_SERVER_*` settings in `env` on top of the defaults.
    pub(super) fn start_with_env(
        bin: &Path,
        data: &Path,
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        Self::spawn(bin, data, free_port()?, None, env)
    }

    pub(super) fn start_on(bin: &Path, data: &Path, port: u16) -> Result<Server, String> {
        Self::spawn(bin, data, port, None, &[])
    }

    /// With the Kafka listener on `127.0.0.1:` a free port as well.
    pub(super) fn start_with_kafka(bin: &Path, data: &Path) -> Result<Server, String> {
        let port = free_port()?;
        let mut kafka = free_port()?;
        while kafka == port {
            kafka = free_port()?;
        }
        Self::spawn(bin, data, port, Some(kafka), &[])
    }

    fn spawn(
        bin: &Path,
        data: &Path,
        port: u16,
        kafka_port: Option<u16>,
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let kafka = kafka_port.map_or("off".to_owned(), |p| format!("127.0.0.1:{p}"));
        let child = Command::new(bin)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--kafka-listen")
            .arg(kafka)
            .arg("--data-dir")
            .arg(data)
            .env("RUST_LOG", "warn")
            // The cleaner looks for work every 200 ms, so clean-load's pass
            // starts soon after its topic turns compacted (an idle look is
            // a scan of the topic list).
            .env("LOG_SERVER_CLEANER_BACKOFF_MS", "200")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Server {
            child,
            port,
            kafka_port,
        })
    }

    pub(super) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub(super) fn wait_ready(&mut self, loadgen: &Path) -> Result<(), String> {
        let status = Command::new(loadgen)
            .args(["--addr", &self.url(), "--scenario", "ready"])
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", loadgen.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err("the server did not become ready".into())
        }
    }

    /// SIGTERM, then wait (SIGKILL after 30 s).
    pub(super) fn stop(&mut self) -> Result<(), String> {
        let status = super::terminate(&mut self.child, "log-server")?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("log-server exited with {status}"))
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
