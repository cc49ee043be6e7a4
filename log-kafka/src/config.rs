//! The settings of the Kafka front end, with the defaults a single Kafka
//! broker would have where one applies. It does not parse command lines or
//! files: the embedding server does.

use std::time::Duration;

/// Settings of [`run`](crate::run).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KafkaConfig {
    /// The host Metadata and FindCoordinator advertise (default: the
    /// listener's own address).
    pub advertised_host: Option<String>,
    /// The port they advertise (default: the listener's).
    pub advertised_port: Option<u16>,
    /// This broker's node id (default 0).
    pub node_id: i32,
    /// The cluster id Metadata answers (default `"commitlog"`).
    pub cluster_id: String,
    /// Connections served at once; one more is closed at accept with a log
    /// line (default 1024).
    pub max_connections: usize,
    /// Largest request frame, length prefix excluded; a larger one closes
    /// its connection before anything is allocated for it (default 100 MiB,
    /// Kafka's `socket.request.max.bytes`).
    pub max_request_bytes: usize,
    /// Requests of one connection decoded and not yet answered; the next
    /// waits (default 5, the Java producer's own in-flight limit). Answers
    /// always go out in request order. A connection whose client stops
    /// reading holds at most this many requests and answers:
    /// `max_in_flight × (max_request_bytes + max_fetch_bytes)`.
    pub max_in_flight: usize,
    /// Most bytes one Fetch answers, whatever the client asks (default 16
    /// MiB; a first batch larger than that is still answered whole).
    pub max_fetch_bytes: usize,
    /// Longest a Fetch waits for `min_bytes` (default 30 s).
    pub max_fetch_wait: Duration,
    /// Create a topic that Metadata or Produce names and that does not
    /// exist, as Kafka's `auto.create.topics.enable` (default true).
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (default 1,
    /// Kafka's `num.partitions`).
    pub default_partitions: u32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            advertised_host: None,
            advertised_port: None,
            node_id: 0,
            cluster_id: "commitlog".to_owned(),
            max_connections: 1024,
            max_request_bytes: 100 << 20,
            max_in_flight: 5,
            max_fetch_bytes: 16 << 20,
            max_fetch_wait: Duration::from_secs(30),
            auto_create_topics: true,
            default_partitions: 1,
        }
    }
}

impl KafkaConfig {
    /// Sets [`advertised_host`](Self::advertised_host).
    pub fn with_advertised_host(mut self, host: impl Into<String>) -> Self {
        self.advertised_host = Some(host.into());
        self
    }

    /// Sets [`advertised_port`](Self::advertised_port).
    pub fn with_advertised_port(mut self, port: u16) -> Self {
        self.advertised_port = Some(port);
        self
    }

    /// Sets [`max_connections`](Self::max_connections).
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets [`max_request_bytes`](Self::max_request_bytes).
    pub fn with_max_request_bytes(mut self, bytes: usize) -> Self {
        self.max_request_bytes = bytes;
        self
    }

    /// Sets [`max_in_flight`](Self::max_in_flight).
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// Sets [`auto_create_topics`](Self::auto_create_topics).
    pub fn with_auto_create_topics(mut self, enabled: bool) -> Self {
        self.auto_create_topics = enabled;
        self
    }
}
