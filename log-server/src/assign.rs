//! Server-side assignment for gRPC group members. A gRPC member joins the
//! coordinator as a Kafka consumer does (protocol type `consumer`, protocol
//! `range`, its subscription in Kafka's consumer-protocol encoding), so
//! Kafka clients and gRPC members share one group. When a gRPC member is
//! the leader, the server computes the assignment on its behalf here, with
//! Kafka's range assignor over every member's subscription, and encodes it
//! as Kafka clients decode it.
//!
//! This module knows the consumer-protocol encoding and the range rule
//! only; who asks and when is `group.rs`'s business.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::TopicName;
use kafka_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition,
};
use kafka_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The protocol gRPC members offer (Kafka's eager range assignor).
pub(crate) const PROTOCOL: &str = "range";
/// The protocol type of consumer groups.
pub(crate) const PROTOCOL_TYPE: &str = "consumer";
/// Newest consumer-protocol versions this code decodes.
const MAX_SUBSCRIPTION_VERSION: i16 = 3;
const MAX_ASSIGNMENT_VERSION: i16 = 3;

/// Partitions by topic.
pub(crate) type Assignment = BTreeMap<String, Vec<u32>>;

/// A subscription to `topics`, as Kafka's `ConsumerProtocol` encodes it
/// (version 0: the topics, no user data).
pub(crate) fn subscription(topics: &[String]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(
        topics
            .iter()
            .map(|t| StrBytes::from_string(t.clone()))
            .collect(),
    );
    versioned(0, |buf| sub.encode(buf, 0))
}

/// The topics of a member's subscription; `None` when it does not decode.
pub(crate) fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().min(MAX_SUBSCRIPTION_VERSION);
    let sub = ConsumerProtocolSubscription::decode(&mut buf, version.max(0)).ok()?;
    Some(sub.topics.iter().map(|t| t.as_str().to_owned()).collect())
}

/// An assignment as Kafka's `ConsumerProtocol` encodes it (version 0).
pub(crate) fn encode(assignment: &Assignment) -> Bytes {
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        assignment
            .iter()
            .map(|(topic, partitions)| {
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partitions(partitions.iter().map(|&p| p as i32).collect())
            })
            .collect(),
    );
    versioned(0, |buf| a.encode(buf, 0))
}

/// A member's assignment from the leader's bytes (empty bytes: nothing
/// assigned); `None` when it does not decode.
pub(crate) fn decode(bytes: &[u8]) -> Option<Assignment> {
    if bytes.is_empty() {
        return Some(Assignment::new());
    }
    let mut buf = Bytes::copy_from_slice(bytes);
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16().min(MAX_ASSIGNMENT_VERSION);
    let a = ConsumerProtocolAssignment::decode(&mut buf, version.max(0)).ok()?;
    let mut out = Assignment::new();
    for tp in a.assigned_partitions {
        let partitions = tp.partitions.iter().filter_map(|&p| u32::try_from(p).ok());
        out.entry(tp.topic.0.as_str().to_owned())
            .or_default()
            .extend(partitions);
    }
    Some(out)
}

fn versioned<E: std::fmt::Display>(
    version: i16,
    body: impl FnOnce(&mut BytesMut) -> Result<(), E>,
) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    // Encoding a struct built here cannot fail (no field is out of its
    // version's range); an empty assignment is the safe answer if it did.
    match body(&mut buf) {
        Ok(()) => buf.freeze(),
        Err(err) => {
            tracing::error!(error = %err, "consumer-protocol encoding failed");
            Bytes::new()
        }
    }
}

/// Kafka's range assignor: per topic, the members subscribed to it in
/// member-id order, each a contiguous range of its partitions, the first
/// `partitions % members` one more. `partitions` gives a topic's partition
/// count (`None`: no such topic, nothing assigned).
pub(crate) fn range(
    members: &[(String, Vec<String>)],
    partitions: impl Fn(&str) -> Option<u32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|(id, _)| (id.clone(), Assignment::new()))
        .collect();
    let mut by_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, topics) in members {
        for topic in topics {
            by_topic.entry(topic).or_default().push(id);
        }
    }
    for (topic, mut ids) in by_topic {
        let Some(count) = partitions(topic) else {
            continue;
        };
        ids.sort_unstable();
        ids.dedup();
        let n = ids.len() as u32;
        let (each, extra) = (count / n, count % n);
        for (i, id) in ids.iter().enumerate() {
            let i = i as u32;
            let start = i * each + i.min(extra);
            let len = each + u32::from(i < extra);
            if len > 0
                && let Some(a) = out.get_mut(*id)
            {
                a.insert(topic.to_owned(), (start..start + len).collect());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_spreads_partitions_as_kafka_s_assignor() {
        let members = vec![
            ("b".to_owned(), vec!["t".to_owned(), "u".to_owned()]),
            ("a".to_owned(), vec!["t".to_owned()]),
            ("c".to_owned(), vec!["t".to_owned()]),
        ];
        let got = range(&members, |t| match t {
            "t" => Some(8),
            "u" => Some(2),
            _ => None,
        });
        assert_eq!(got["a"]["t"], vec![0, 1, 2]);
        assert_eq!(got["b"]["t"], vec![3, 4, 5]);
        assert_eq!(got["c"]["t"], vec![6, 7]);
        assert_eq!(got["b"]["u"], vec![0, 1]);
        assert!(!got["a"].contains_key("u"));
    }

    #[test]
    fn subscriptions_and_assignments_round_trip_in_kafka_s_encoding() {
        let topics = vec!["orders".to_owned(), "clicks".to_owned()];
        assert_eq!(subscribed_topics(&subscription(&topics)), Some(topics));
        let mut a = Assignment::new();
        a.insert("orders".into(), vec![0, 2]);
        assert_eq!(decode(&encode(&a)), Some(a));
        assert_eq!(decode(&[]), Some(Assignment::new()));
        assert_eq!(decode(&[0]), None);
        assert_eq!(subscribed_topics(&[0, 0, 0xff]), None);
    }
}
