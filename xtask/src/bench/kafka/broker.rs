//! The Kafka broker of the `kafka` peer step: one KRaft broker +
//! controller on two free loopback ports, its log directory formatted anew
//! (`kafka.tools.StorageTool random-uuid`, `format --standalone`), started
//! with `kafka-server-start.sh`'s JVM settings and its log in
//! `server.log`, waited for until `TopicCommand --list` answers, stopped
//! with SIGTERM (then kill), its directory removed when dropped. It sets
//! what one local broker needs and nothing for speed or durability.

use std::ffi::OsString;
use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Kit, last_error, run_bounded};
use crate::bench::server::free_port;
use crate::bench::terminate;

/// The broker's JVM settings, as `kafka-server-start.sh` and
/// `kafka-run-class.sh` set them.
const BROKER_JVM: [&str; 7] = [
    "-Xms1g",
    "-Xmx1g",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-Djava.awt.headless=true",
];

/// A running Kafka broker (KRaft, broker + controller), killed and its
/// directory removed when dropped.
pub(super) struct Broker {
    pub(super) child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Broker {
    /// Formats a fresh log directory under `dir` and starts the broker on
    /// two free loopback ports; returns once it lists topics.
    pub(super) fn start(kit: &Kit, dir: &Path, tools: &Path) -> Result<Broker, String> {
        let _ = std::fs::remove_dir_all(dir);
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs)
            .map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
        let port = free_port()?;
        let mut controller = free_port()?;
        while controller == port {
            controller = free_port()?;
        }
        let properties = dir.join("server.properties");
        let config = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.bootstrap.servers=127.0.0.1:{controller}\n\
             listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
             advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n\
             log.dirs={}\n\
             offsets.topic.replication.factor=1\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             share.coordinator.state.topic.replication.factor=1\n\
             group.initial.rebalance.delay.ms=0\n",
            logs.display()
        );
        let log4j = dir.join("log4j2.properties");
        let log4j_config = format!(
            "status = warn\n\
             appender.file.type = File\n\
             appender.file.name = file\n\
             appender.file.fileName = {}\n\
             appender.file.layout.type = PatternLayout\n\
             appender.file.layout.pattern = [%d] %p %m (%c)%n\n\
             rootLogger.level = info\n\
             rootLogger.appenderRef.file.ref = file\n",
            dir.join("server.log").display()
        );
        for (path, text) in [(&properties, config), (&log4j, log4j_config)] {
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        let limit = Duration::from_secs(120);
        let mut uuid = kit.tool("kafka.tools.StorageTool");
        uuid.arg("random-uuid");
        let ran = run_bounded(&mut uuid, "storage-random-uuid", limit, tools)?;
        let id = ran
            .stdout
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned();
        if !ran.status.success() || id.is_empty() {
            return Err(format!(
                "StorageTool random-uuid failed: {}",
                last_error(&ran.stderr)
            ));
        }
        let mut format = kit.tool("kafka.tools.StorageTool");
        format
            .args(["format", "--standalone", "-t", &id, "-c"])
            .arg(&properties);
        let ran = run_bounded(&mut format, "storage-format", limit, tools)?;
        if !ran.status.success() {
            return Err(format!(
                "StorageTool format failed: {}",
                last_error(&ran.stderr)
            ));
        }
        let mut log4j_flag = OsString::from("-Dlog4j2.configurationFile=");
        log4j_flag.push(&log4j);
        let out = dir.join("kafka.out");
        let out_file =
            File::create(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        let err_file = out_file
            .try_clone()
            .map_err(|e| format!("{}: {e}", out.display()))?;
        let mut jvm: Vec<OsString> = BROKER_JVM.iter().map(OsString::from).collect();
        jvm.push(log4j_flag);
        let mut command = Command::new(&kit.java);
        let mut class_path = kit.lib.clone().into_os_string();
        class_path.push("/*");
        let child = command
            .args(jvm)
            .arg("-cp")
            .arg(class_path)
            .arg("kafka.Kafka")
            .arg(&properties)
            .stdin(Stdio::null())
            .stdout(out_file)
            .stderr(err_file)
            .spawn()
            .map_err(|e| format!("cannot start kafka.Kafka: {e}"))?;
        let mut broker = Broker {
            child,
            port,
            dir: dir.to_owned(),
        };
        broker.wait_ready(kit, tools)?;
        Ok(broker)
    }

    pub(super) fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Until the port accepts and `TopicCommand --list` answers, at most
    /// 120 s.
    fn wait_ready(&mut self, kit: &Kit, tools: &Path) -> Result<(), String> {
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let exited = |broker: &mut Broker| -> Option<String> {
            let status = broker.child.try_wait().ok()??;
            let log = std::fs::read_to_string(broker.dir.join("server.log")).unwrap_or_default()
                + &std::fs::read_to_string(broker.dir.join("kafka.out")).unwrap_or_default();
            Some(format!(
                "kafka.Kafka exited with {status} at start: {}",
                last_error(&log)
            ))
        };
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(reason) = exited(self) {
                return Err(reason);
            }
            if Instant::now() >= deadline {
                return Err("Kafka did not open its port within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut list = kit.tool("org.apache.kafka.tools.TopicCommand");
            list.args(["--bootstrap-server", &self.bootstrap(), "--list"]);
            let ran = run_bounded(
                &mut list,
                "topic-list",
                left.max(Duration::from_secs(1)),
                tools,
            )?;
            if ran.status.success() {
                eprintln!(
                    "== kafka: serving after {} ms",
                    started.elapsed().as_millis()
                );
                return Ok(());
            }
            if let Some(reason) = exited(self) {
                return Err(reason);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "Kafka did not list topics within 120 s: {}",
                    last_error(&ran.stderr)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// SIGTERM, then wait (SIGKILL after 30 s); the directory goes on drop.
    pub(super) fn stop(mut self) -> Result<(), String> {
        terminate(&mut self.child, "kafka.Kafka").map(drop)
    }
}
