//! The `redis` peer step of `cargo xtask bench`: Redis with
//! `appendonly yes` and `appendfsync always` (each reply sent after the
//! AOF write is fsynced, the peer of our DURABLE ack), on a loopback port
//! with its data directory under the bench's data root, driven by
//! `redis-benchmark` with single-record `XADD`s from as many clients as the
//! `small-writers` scenario has writers, one request in flight each.
//!
//! `cargo xtask bench` runs it A B A B with `small-writers` so both see the
//! same machine. When `redis-server` or `redis-benchmark` is missing it
//! installs Debian's `redis-server` package (which brings `redis-tools`)
//! with `apt-get`; when that is not possible the step is skipped and the
//! reason printed and recorded.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{cpu_pairs, cpu_ticks};

/// The two Redis binaries the step needs.
pub(super) struct Redis {
    server: PathBuf,
    benchmark: PathBuf,
    version: String,
}

/// What one Redis run is asked for.
pub(super) struct Workload {
    /// Requests (records), in total.
    pub(super) n: u64,
    /// Bytes of the field value of each `XADD`.
    pub(super) size: usize,
    /// Concurrent clients, one request in flight each.
    pub(super) clients: u32,
}

/// `name` on `PATH`, if there.
pub(super) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn found() -> Option<(PathBuf, PathBuf)> {
    Some((on_path("redis-server")?, on_path("redis-benchmark")?))
}

/// Whether this process runs as root (`id -u`).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `apt-get ARGS` (through `sudo -n` when not root), quietly.
fn apt_get(args: &[&str]) -> Result<(), String> {
    let mut command = if is_root() {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "apt-get"]);
        c
    };
    let status = command
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("apt-get {} failed with {status}", args.join(" ")))
    }
}

/// Finds `redis-server` and `redis-benchmark`, installing Debian's
/// `redis-server` when either is missing. `Err` holds the reason to skip.
pub(super) fn find() -> Result<Redis, String> {
    let (server, benchmark) = match found() {
        Some(both) => both,
        None => {
            if on_path("apt-get").is_none() {
                return Err("redis-server or redis-benchmark is not installed and there is no apt-get to install them".into());
            }
            eprintln!("== redis: installing Debian's redis-server (apt-get)");
            let install = ["install", "-y", "-qq", "redis-server"];
            if apt_get(&install).is_err() {
                // A fresh machine may have no package lists yet.
                apt_get(&["update", "-qq"])
                    .and_then(|()| apt_get(&install))
                    .map_err(|e| format!("cannot install redis-server: {e}"))?;
            }
            found().ok_or(
                "redis-server installed, but redis-server or redis-benchmark is still not on PATH",
            )?
        }
    };
    let output = Command::new(&server)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", server.display()))?;
    // "Redis server v=7.0.15 sha=… malloc=…"
    let version = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .unwrap_or("unknown")
        .to_owned();
    Ok(Redis {
        server,
        benchmark,
        version,
    })
}

/// A `redis-server` child process, killed if still running when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// Sends one command (RESP array of bulk strings) and returns its reply
    /// flattened: a simple string, integer or bulk string as one item, an
    /// array of those as its items; an error reply is an `Err`.
    fn command(&self, args: &[&str]) -> Result<Vec<String>, String> {
        let what = args.join(" ");
        let io = |e: std::io::Error| format!("redis {what}: {e}");
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).map_err(io)?;
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(io)?;
        let mut request = format!("*{}\r\n", args.len());
        for a in args {
            request.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(request.as_bytes()).map_err(io)?;
        read_reply(&mut BufReader::new(stream)).map_err(|e| format!("redis {what}: {e}"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("redis-server exited with {status} at start"));
            }
            if self.command(&["PING"]).is_ok_and(|r| r == ["PONG"]) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err("redis-server did not answer PING within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM (Redis fsyncs the AOF and exits), then wait (SIGKILL after
    /// 30 s).
    fn stop(&mut self) -> Result<(), String> {
        super::terminate(&mut self.child, "redis-server").map(drop)
    }
}

/// One reply, flattened (see [`Server::command`]).
fn read_reply(reader: &mut impl BufRead) -> Result<Vec<String>, String> {
    let first = read_line(reader).map_err(|e| e.to_string())?;
    match first.strip_prefix('*') {
        Some(count) => {
            let count: usize = count.parse().map_err(|_| format!("bad array `{first}`"))?;
            (0..count)
                .map(|_| {
                    let header = read_line(reader).map_err(|e| e.to_string())?;
                    read_value(reader, header)
                })
                .collect()
        }
        None => Ok(vec![read_value(reader, first)?]),
    }
}

/// One reply line, without its CRLF.
fn read_line(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(line.trim_end().to_owned())
}

/// One value whose first line is `header`: `+text`, `:integer`, `$len`
/// then the bytes on the next line, or `-error`.
fn read_value(reader: &mut impl BufRead, header: String) -> Result<String, String> {
    match header.split_at_checked(1) {
        Some(("+" | ":", rest)) => Ok(rest.to_owned()),
        Some(("$", _)) => read_line(reader).map_err(|e| e.to_string()),
        Some(("-", e)) => Err(e.to_owned()),
        _ => Err(format!("unexpected reply `{header}`")),
    }
}

/// The figures of `redis-benchmark --csv`: requests/s, p50 and p99 in ms.
/// The CSV has a header line, then `"test","rps","avg_latency_ms",
/// "min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms",
/// "max_latency_ms"`; the test name (the command) comes first and is
/// read from the end so that a comma in it does no harm.
fn parse_csv(text: &str) -> Option<(f64, f64, f64)> {
    let line = text
        .lines()
        .rfind(|l| l.starts_with('"') && !l.starts_with("\"test\""))?;
    let fields: Vec<f64> = line
        .rsplit(',')
        .take(7)
        .map(|f| f.trim().trim_matches('"').parse::<f64>())
        .collect::<Result<_, _>>()
        .ok()?;
    // Reversed: max, p99, p95, p50, min, avg, rps.
    match fields.as_slice() {
        [_, p99, _, p50, _, _, rps] => Some((*rps, *p50, *p99)),
        _ => None,
    }
}

/// One Redis run: a fresh `redis-server` on a free loopback port with its
/// data in `data`, `redis-benchmark` sending `workload.n` `XADD`s, the
/// server's CPU time around them, a check that the stream holds them all.
/// Returns the `RESULT system=redis scenario=redis-always …` line.
pub(super) fn run(
    redis: &Redis,
    data: &Path,
    workload: &Workload,
    round: u32,
) -> Result<String, String> {
    let _ = std::fs::remove_dir_all(data);
    std::fs::create_dir_all(data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let child = Command::new(&redis.server)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(data)
        .arg("--logfile")
        .arg(data.join("redis.log"))
        .args([
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", redis.server.display()))?;
    let mut srv = Server { child, port };
    srv.wait_ready()?;
    // The flags took: a reply is sent only once the AOF is fsynced.
    let mode = srv.command(&["CONFIG", "GET", "appendfsync"])?;
    if mode.get(1).map(String::as_str) != Some("always") {
        return Err(format!(
            "redis answered appendfsync = {mode:?}, not `always`"
        ));
    }
    let value = "x".repeat(workload.size);
    let before = cpu_ticks(srv.child.id());
    let output = Command::new(&redis.benchmark)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(["-c", &workload.clients.to_string(), "-P", "1"])
        .args(["-n", &workload.n.to_string(), "--csv"])
        .args(["XADD", "mystream", "*", "field", &value])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", redis.benchmark.display()))?;
    let after = cpu_ticks(srv.child.id());
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "redis-benchmark failed with {}: {stdout}",
            output.status
        ));
    }
    let (rps, p50_ms, p99_ms) = parse_csv(&stdout)
        .ok_or_else(|| format!("cannot read redis-benchmark's CSV output: {stdout}"))?;
    let stored = srv.command(&["XLEN", "mystream"])?;
    srv.stop()?;
    let _ = std::fs::remove_dir_all(data);
    if stored != [workload.n.to_string()] {
        return Err(format!(
            "redis holds {stored:?} stream entries after {} XADDs",
            workload.n
        ));
    }
    let n = workload.n;
    let mut line = format!(
        "RESULT system=redis scenario=redis-always version={} size={} batch=1 ack=always n={n} clients={} \
         append_rps={rps:.0} append_mbps={:.1} lat_p50_us={:.0} lat_p99_us={:.0} read_rps=0 read_mbps=0",
        redis.version,
        workload.size,
        workload.clients,
        rps * workload.size as f64 / 1e6,
        p50_ms * 1000.0,
        p99_ms * 1000.0,
    );
    if let (Some(before), Some(after)) = (before, after) {
        line.push_str(&cpu_pairs(after.saturating_sub(before), n));
    }
    line.push_str(&format!(" round={round}"));
    println!("{line}");
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::{parse_csv, read_reply};

    #[test]
    fn reads_redis_replies() {
        let mut array: &[u8] = b"*2\r\n$11\r\nappendfsync\r\n$6\r\nalways\r\n";
        assert_eq!(
            read_reply(&mut array),
            Ok(vec!["appendfsync".to_owned(), "always".to_owned()])
        );
        let mut int: &[u8] = b":2000\r\n";
        assert_eq!(read_reply(&mut int), Ok(vec!["2000".to_owned()]));
        let mut pong: &[u8] = b"+PONG\r\n";
        assert_eq!(read_reply(&mut pong), Ok(vec!["PONG".to_owned()]));
        let mut err: &[u8] = b"-ERR unknown command\r\n";
        assert!(read_reply(&mut err).is_err());
    }

    #[test]
    fn reads_redis_benchmark_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"XADD mystream * field x,y\",\"8964.59\",\"7.034\",\"0.912\",\"5.943\",\"16.087\",\"20.015\",\"49.183\"\n";
        assert_eq!(parse_csv(text), Some((8964.59, 5.943, 20.015)));
        assert_eq!(parse_csv("\"test\",\"rps\"\n"), None);
        assert_eq!(parse_csv(""), None);
    }
}
