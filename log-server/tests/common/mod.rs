//! Helpers shared by the server's integration tests: an in-process server
//! on a listener bound to 127.0.0.1:0 over a temporary directory, and the
//! real binary as a child process on `--listen 127.0.0.1:0` (its port
//! read from its stderr).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use log_client::Client;
use log_server::{Config, Server};
use tempfile::TempDir;

/// An in-process server and its data directory.
pub struct TestServer {
    pub server: Option<Server>,
    pub dir: TempDir,
    pub client: Client,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = TempDir::new().unwrap();
        // Bound here, the port read back: nothing to guess.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = Config::default();
        // Tests run side by side: no fixed Kafka port (a test that wants
        // the Kafka listener sets `127.0.0.1:0`).
        config.kafka_listen = "off".to_owned();
        config.listen = listener.local_addr().unwrap();
        config.data_dir = dir.path().join("data");
        config.shutdown_grace_ms = 300;
        tweak(&mut config);
        let server = Server::start_on(listener, config).await.unwrap();
        let client = connect(server.addr()).await;
        wait_serving(&client).await;
        TestServer {
            server: Some(server),
            dir,
            client,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }
}

pub async fn connect(addr: SocketAddr) -> Client {
    Client::connect(format!("http://{addr}")).await.unwrap()
}

/// Waits until calls are served (recovery done).
pub async fn wait_serving(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.list_topics().await {
            Ok(_) => return,
            Err(e) if Instant::now() < deadline && e.is_retryable() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("server not serving: {e}"),
        }
    }
}

/// Every file under `dir` (relative paths, sorted), for "nothing changed"
/// checks.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if path.is_dir() {
                stack.push(path.clone());
            }
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

/// The real `log-server` binary, as a child process (killed if the test
/// panics with it running).
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ServerProcess {
    /// Starts the binary on `--listen 127.0.0.1:0` and reads the port it
    /// bound from its stderr (`log-server: listening on ADDR`).
    pub fn spawn(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let child = Command::new(env!("CARGO_BIN_EXE_log-server"))
            .args(["--listen", "127.0.0.1:0", "--kafka-listen", "off"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        ServerProcess::listening(child)
    }

    /// Like [`spawn`](Self::spawn), under an open-file limit (soft and
    /// hard) of `limit`.
    pub fn spawn_with_fd_limit(data_dir: &Path, limit: u32) -> ServerProcess {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n {limit} && exec \"$0\" --listen 127.0.0.1:0 --kafka-listen off --data-dir \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_log-server"))
            .arg(data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        ServerProcess::listening(child)
    }

    /// Waits (at most 30 s) for the `listening on ADDR` line on the
    /// child's stderr; every stderr line is passed on to the test's.
    fn listening(mut child: Child) -> ServerProcess {
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("log-server: listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(addr.trim().to_owned());
                }
                eprintln!("{line}");
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr.parse().unwrap(),
            Err(_) => {
                let status = child.try_wait().unwrap();
                let _ = child.kill();
                let _ = child.wait();
                panic!("log-server did not say where it listens (exit status {status:?})");
            }
        };
        ServerProcess { child, addr }
    }

    pub async fn client(&self) -> Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(client) = Client::connect(format!("http://{}", self.addr)).await {
                wait_serving(&client).await;
                return client;
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM; returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

/// One Kafka request on `stream`, and its answer (the client half of
/// `kafka-protocol`; correlation id 1).
pub async fn kafka_call<Req, Resp>(
    stream: &mut tokio::net::TcpStream,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
    request: &Req,
) -> Resp
where
    Req: kafka_protocol::protocol::Encodable + kafka_protocol::protocol::HeaderVersion,
    Resp: kafka_protocol::protocol::Decodable + kafka_protocol::protocol::HeaderVersion,
{
    use kafka_protocol::messages::{RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = bytes::BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .encode(&mut buf, Req::header_version(version))
        .unwrap();
    request.encode(&mut buf, version).unwrap();
    stream
        .write_all(&(buf.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&buf).await.unwrap();
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await.unwrap();
    let mut answer = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut answer).await.unwrap();
    let mut answer = bytes::Bytes::from(answer);
    ResponseHeader::decode(&mut answer, Resp::header_version(version)).unwrap();
    Resp::decode(&mut answer, version).unwrap()
}
