"""kafka-python (PyPI, pure Python) against log-server's Kafka listener.

Run through run.sh (which starts the server, generates the gRPC stubs and
sets KAFKA_BOOTSTRAP and LOG_SERVER_ADDR). Consumers assign partitions by
hand: the server has no group membership yet.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka import errors as kerr  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402

import kafka_common as common  # noqa: E402
from kafka_common import (  # noqa: E402,F401 - setUpModule/tearDownModule are unittest's hooks
    CODEC_IDS, CODECS, TIMEOUT, grpc_batches, grpc_committed, grpc_create_topic, grpc_produce,
    grpc_records, grpc_topic_names, now_ms, payload, setUpModule, tearDownModule, unique,
)

PER_CODEC = 10


def producer(**kw):
    kw.setdefault("acks", "all")
    kw.setdefault("linger_ms", 5)
    kw.setdefault("request_timeout_ms", 15000)
    return KafkaProducer(bootstrap_servers=common.BOOTSTRAP, **kw)


def consumer(**kw):
    kw.setdefault("enable_auto_commit", False)
    kw.setdefault("request_timeout_ms", 15000)
    return KafkaConsumer(bootstrap_servers=common.BOOTSTRAP, **kw)


def admin():
    return KafkaAdminClient(bootstrap_servers=common.BOOTSTRAP, request_timeout_ms=15000)


def poll(c, want, timeout=TIMEOUT):
    """At least `want` records (all that came), within timeout."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for records in c.poll(timeout_ms=500).values():
            got.extend(records)
    assert len(got) >= want, f"{len(got)} records within {timeout}s, want {want}"
    return got


def fields(m):
    return (m.offset, m.key, m.value, [(k, v) for k, v in m.headers], m.timestamp)


class KafkaPythonTest(unittest.TestCase):
    maxDiff = 4000

    def create(self, prefix, partitions=1, configs=None):
        name = unique(prefix)
        with_configs = {"num_partitions": partitions, "replication_factor": 1}
        if configs:
            with_configs["configs"] = configs
        with admin() as a:
            a.create_topics({name: with_configs})
        return name

    def test_produce_every_codec_and_read_back(self):
        topic = self.create("kp-codecs")
        tp = TopicPartition(topic, 0)
        sent = []
        for codec in CODECS:
            p = producer(compression_type=None if codec == "none" else codec)
            futures = []
            for i in range(PER_CODEC):
                key = f"key-{i}".encode()
                # kafka-python refuses a null header value (None): the
                # Java and confluent suites send one.
                headers = [("codec", codec.encode()), ("empty", b"")]
                futures.append(p.send(topic, key=key, value=payload(i, codec), headers=headers, partition=0))
                sent.append((key, payload(i, codec), headers))
            p.flush(TIMEOUT)
            offsets = [f.get(TIMEOUT).offset for f in futures]
            p.close(TIMEOUT)
            base = CODECS.index(codec) * PER_CODEC
            self.assertEqual(offsets, list(range(base, base + PER_CODEC)), codec)
        # Read back with kafka-python, from the beginning.
        c = consumer()
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = poll(c, len(sent))
        c.close()
        self.assertEqual([(m.offset, m.key, m.value, [(k, v) for k, v in m.headers]) for m in got],
                         [(n, k, v, h) for n, (k, v, h) in enumerate(sent)])
        # Stored as sent: each producer's batches carry its codec.
        batches = grpc_batches(topic)
        self.assertEqual(sum(b["count"] for b in batches), len(sent))
        for b in batches:
            codec = CODECS[b["base_offset"] // PER_CODEC]
            self.assertEqual(b["compression"], CODEC_IDS[codec], f"batch at {b['base_offset']}: {b}")

    def test_idempotent_producer(self):
        topic = self.create("kp-idem")
        p = producer(enable_idempotence=True, max_in_flight_requests_per_connection=5, linger_ms=0,
                     batch_size=200)
        futures = [p.send(topic, value=payload(i, "idem"), partition=0) for i in range(100)]
        p.flush(TIMEOUT)
        offsets = [f.get(TIMEOUT).offset for f in futures]
        p.close(TIMEOUT)
        self.assertEqual(offsets, list(range(100)))
        batches = grpc_batches(topic)
        self.assertGreater(len(batches), 1, "the test wants several batches")
        seq = 0
        for b in batches:
            self.assertGreaterEqual(b["producer_id"], 0, b)
            self.assertGreaterEqual(b["producer_epoch"], 0, b)
            self.assertEqual(b["producer_id"], batches[0]["producer_id"], b)
            self.assertEqual(b["base_sequence"], seq, b)
            seq += b["count"]
        self.assertEqual([r[2] for r in grpc_records(topic)], [payload(i, "idem") for i in range(100)])

    def test_consume_from_earliest_latest_and_a_time(self):
        topic = self.create("kp-positions")
        tp = TopicPartition(topic, 0)
        p = producer()
        for i in range(5):
            p.send(topic, value=payload(i, "before"), partition=0)
        p.flush(TIMEOUT)
        time.sleep(0.2)
        between = now_ms()
        time.sleep(0.2)
        for i in range(5):
            p.send(topic, value=payload(i, "after"), partition=0)
        p.flush(TIMEOUT)

        # earliest: auto_offset_reset with no committed offset (no group)
        c = consumer(auto_offset_reset="earliest")
        c.assign([tp])
        self.assertEqual([m.offset for m in poll(c, 10)], list(range(10)))
        self.assertEqual(c.beginning_offsets([tp]), {tp: 0})
        self.assertEqual(c.end_offsets([tp]), {tp: 10})
        # a time: the first record appended at or after it
        found = c.offsets_for_times({tp: between})[tp]
        self.assertIsNotNone(found)
        self.assertEqual(found.offset, 5)
        self.assertGreaterEqual(found.timestamp, between)
        self.assertIsNone(c.offsets_for_times({tp: now_ms() + 3_600_000})[tp])
        self.assertEqual(c.offsets_for_times({tp: 0})[tp].offset, 0)
        c.seek(tp, found.offset)
        self.assertEqual(poll(c, 1)[0].value, payload(0, "after"))
        c.close()

        # latest: only what comes after the consumer started
        c = consumer(auto_offset_reset="latest")
        c.assign([tp])
        self.assertEqual(c.position(tp), 10)
        p.send(topic, value=b"late", partition=0)
        p.flush(TIMEOUT)
        got = poll(c, 1)
        self.assertEqual([(m.offset, m.value) for m in got], [(10, b"late")])
        c.close()
        p.close(TIMEOUT)

    def test_group_commit_and_read_back(self):
        topic = self.create("kp-group")
        group = unique("kp-group")
        tp = TopicPartition(topic, 0)
        p = producer()
        for i in range(10):
            p.send(topic, value=payload(i, "g"), partition=0)
        p.flush(TIMEOUT)
        p.close(TIMEOUT)
        c = consumer(group_id=group, auto_offset_reset="earliest")
        c.assign([tp])
        self.assertIsNone(c.committed(tp))
        got = poll(c, 4)
        c.commit({tp: OffsetAndMetadata(4, "kp-meta", -1)})
        committed = c.committed(tp, metadata=True)
        self.assertEqual((committed.offset, committed.metadata), (4, "kp-meta"))
        self.assertEqual(got[0].offset, 0)
        c.close(autocommit=False)
        # The same offset over gRPC.
        self.assertEqual(grpc_committed(group, topic), (4, "kp-meta"))
        # A new consumer of the group starts at the commit.
        c = consumer(group_id=group, auto_offset_reset="none")
        c.assign([tp])
        self.assertEqual(c.position(tp), 4)
        self.assertEqual(poll(c, 1)[0].value, payload(4, "g"))
        c.close(autocommit=False)
        # The admin client lists the group's offsets (OffsetFetch, all topics).
        with admin() as a:
            offsets = a.list_group_offsets(group)[group]
        self.assertEqual({t: o.offset for t, o in offsets.items()}, {tp: 4})

    def test_admin_create_describe_delete(self):
        name = unique("kp-admin")
        with admin() as a:
            a.create_topics({name: {"num_partitions": 3, "replication_factor": 1,
                                    "configs": {"retention.ms": "3600000", "cleanup.policy": "delete"}}})
            self.assertIn(name, a.list_topics())
            self.assertIn(name, grpc_topic_names())
            [described] = a.describe_topics([name])
            self.assertEqual(described["error_code"], 0)
            self.assertEqual(described["name"], name)
            self.assertEqual(sorted(p["partition_index"] for p in described["partitions"]), [0, 1, 2])
            for part in described["partitions"]:
                self.assertEqual((part["leader_id"], part["replica_nodes"], part["isr_nodes"]), (0, [0], [0]))
            with self.assertRaises(kerr.TopicAlreadyExistsError):
                a.create_topics({name: {"num_partitions": 3, "replication_factor": 1}})
            with self.assertRaises(kerr.InvalidConfigurationError):
                a.create_topics({unique("kp-bad"): {"num_partitions": 1, "replication_factor": 1,
                                                    "configs": {"no.such.config": "1"}}})
            with self.assertRaises(kerr.InvalidReplicationFactorError):
                a.create_topics({unique("kp-bad"): {"num_partitions": 1, "replication_factor": 3}})
            a.delete_topics([name])
            self.assertNotIn(name, a.list_topics())
            self.assertNotIn(name, grpc_topic_names())
            with self.assertRaises(kerr.UnknownTopicOrPartitionError):
                a.delete_topics([name])

    def test_a_compacted_topic_read_from_the_beginning_has_the_latest_value_per_key(self):
        topic = self.create("kp-compact", configs={
            "cleanup.policy": "compact", "segment.bytes": "16384", "max.message.bytes": "16384",
            "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "0"})
        tp = TopicPartition(topic, 0)
        with admin() as a:
            from kafka.admin import ConfigResource, ConfigResourceType
            described = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                           config_filter="all")
            # {resource type: {name: {config: {data}}}}
            [by_name] = described.values()
            entries = by_name[topic]
            self.assertEqual(entries["cleanup.policy"]["value"], "compact")
            self.assertEqual(entries["delete.retention.ms"]["value"], "0")
        # A record without a key is refused, as Kafka refuses it
        # (INVALID_RECORD, 87).
        p = producer(linger_ms=0, retries=0)
        with self.assertRaises(kerr.KafkaError) as refused:
            p.send(topic, value=b"no key", partition=0).get(TIMEOUT)
        self.assertEqual(refused.exception.errno, 87, refused.exception)
        p.close(TIMEOUT)
        p = producer(linger_ms=0, batch_size=2048)
        latest = {}
        for n in range(1200):
            key = f"key-{n % 12}".encode()
            value = None if n == 1190 else f"{key.decode()} v{n} {'x' * 40}".encode()
            p.send(topic, key=key, value=value, partition=0)
            latest[key] = value
        p.flush(TIMEOUT)
        p.close(TIMEOUT)

        def read_all():
            c = consumer()
            c.assign([tp])
            c.seek_to_beginning(tp)
            end = c.end_offsets([tp])[tp]
            got = []
            deadline = time.monotonic() + TIMEOUT
            while (not got or got[-1].offset < end - 1) and time.monotonic() < deadline:
                for records in c.poll(timeout_ms=500).values():
                    got.extend(records)
            c.close()
            return got

        # The server's cleaner looks every 200 ms (run.sh): wait for it to
        # compact the sealed segments (the active one, about 200 records,
        # is never cleaned).
        deadline = time.monotonic() + 60
        while True:
            got = read_all()
            if len(got) < 600 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        self.assertLess(len(got), 600, "the cleaner compacted the topic")
        offsets = [m.offset for m in got]
        self.assertEqual(offsets, sorted(set(offsets)), "offsets increase, with gaps")
        seen = {}
        for m in got:
            seen[m.key] = m.value
        # The latest value of every key; the deleted key's tombstone (its
        # retention is 0) may be gone, and then nothing of it is left.
        for key, value in latest.items():
            if value is None:
                self.assertIn(seen.get(key), (None,), key)
            else:
                self.assertEqual(seen.get(key), value, key)
        # The same records over gRPC (the server decodes the cleaned batches).
        self.assertEqual([(r[0], r[1], r[2]) for r in grpc_records(topic)],
                         [(m.offset, m.key, m.value) for m in got])

    def test_a_topic_with_cold_compression_is_read_back_whole_after_its_segments_are_compressed(self):
        topic = self.create("kp-cold", configs={
            "cold.compression.type": "zstd", "cold.compression.lag.ms": "0",
            "segment.bytes": "16384", "max.message.bytes": "16384"})
        tp = TopicPartition(topic, 0)
        with admin() as a:
            from kafka.admin import ConfigResource, ConfigResourceType
            described = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                           config_filter="all")
            [by_name] = described.values()
            entries = by_name[topic]
            self.assertEqual(entries["cold.compression.type"]["value"], "zstd")
            self.assertEqual(entries["cold.compression.lag.ms"]["value"], "0")
        p = producer(linger_ms=5, batch_size=4096)
        sent = []
        for n in range(1500):
            value = ('{"order_id":%d,"customer":"c-%d","status":"created","amount_cents":%d}'
                     % (n, n % 37, n * 13)).encode()
            p.send(topic, key=f"order-{n}".encode(), value=value, partition=0)
            sent.append((n, f"order-{n}".encode(), value))
        p.flush(TIMEOUT)
        p.close(TIMEOUT)
        # The server's cleaner threads look every 200 ms (run.sh): wait for
        # them to compress the sealed segments.
        deadline = time.monotonic() + 60
        while True:
            [info] = common.admin_stub.GetTopic(common.pb.GetTopicRequest(name=topic),
                                                timeout=TIMEOUT).partitions
            if info.cleaner.cold_segments >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertGreaterEqual(info.cleaner.cold_segments, 3, info)
        self.assertGreater(info.cleaner.cold_bytes_saved, 0, info)
        c = consumer()
        c.assign([tp])
        c.seek_to_beginning(tp)
        got = poll(c, len(sent))
        c.close()
        self.assertEqual([(m.offset, m.key, m.value) for m in got], sent)
        self.assertEqual([(r[0], r[1], r[2]) for r in grpc_records(topic)], sent)

    def test_batch_over_max_message_bytes_is_refused(self):
        topic = self.create("kp-big", configs={"max.message.bytes": "1048576"})
        p = producer(max_request_size=8 << 20, retries=0)
        big = os.urandom(5 << 20)
        with self.assertRaises(kerr.MessageSizeTooLargeError) as caught:
            p.send(topic, value=big, partition=0).get(TIMEOUT)
        # The broker's answer (error 10), not the client's own size check.
        self.assertEqual(caught.exception.errno, 10, caught.exception)
        self.assertEqual(p.send(topic, value=b"small", partition=0).get(TIMEOUT).offset, 0)
        p.close(TIMEOUT)

    def test_acks_0_and_1(self):
        topic = self.create("kp-acks")
        tp = TopicPartition(topic, 0)
        for acks in (0, 1):
            p = producer(acks=acks)
            futures = [p.send(topic, value=payload(i, f"acks={acks}"), partition=0) for i in range(5)]
            p.flush(TIMEOUT)
            offsets = [f.get(TIMEOUT).offset for f in futures]
            p.close(TIMEOUT)
            # acks=0 gets no answer: kafka-python 3 makes one up (base
            # offset 0, its schema default), so only acks=1's are real.
            if acks == 1:
                self.assertEqual(offsets, list(range(5, 10)))
        # Both are readable soon (the high watermark is the durable end; a
        # sync is scheduled at once).
        c = consumer(auto_offset_reset="earliest")
        c.assign([tp])
        got = poll(c, 10)
        c.close()
        self.assertEqual([m.value for m in got],
                         [payload(i, f"acks={a}") for a in (0, 1) for i in range(5)])

    def test_keys_spread_over_partitions(self):
        topic = self.create("kp-keys", partitions=3)
        p = producer()
        futures = [(f"user-{i % 6}".encode(), p.send(topic, key=f"user-{i % 6}".encode(), value=b"%d" % i))
                   for i in range(30)]
        p.flush(TIMEOUT)
        where = {}
        for key, f in futures:
            where.setdefault(key, set()).add(f.get(TIMEOUT).partition)
        p.close(TIMEOUT)
        self.assertTrue(all(len(parts) == 1 for parts in where.values()), where)  # one key, one partition
        self.assertGreater(len(set().union(*where.values())), 1, where)
        c = consumer(auto_offset_reset="earliest")
        c.assign([TopicPartition(topic, n) for n in range(3)])
        got = poll(c, 30)
        c.close()
        self.assertEqual(sorted(int(m.value) for m in got), list(range(30)))
        for m in got:
            self.assertEqual(where[m.key], {m.partition})

    def test_record_larger_than_the_fetch_sizes_is_read(self):
        # Kafka answers the first batch whole even over max_partition_fetch_bytes
        # and fetch_max_bytes (KIP-74): a consumer never stalls on it.
        topic = self.create("kp-large")
        big = os.urandom(3 << 20)
        p = producer(max_request_size=8 << 20)
        p.send(topic, value=big, partition=0).get(TIMEOUT)
        p.send(topic, value=b"after", partition=0).get(TIMEOUT)
        p.close(TIMEOUT)
        c = consumer(auto_offset_reset="earliest", max_partition_fetch_bytes=1 << 20, fetch_max_bytes=1 << 20)
        c.assign([TopicPartition(topic, 0)])
        got = poll(c, 2)
        c.close()
        self.assertEqual([(m.offset, m.value) for m in got], [(0, big), (1, b"after")])

    def test_offset_out_of_range_resets(self):
        topic = self.create("kp-range")
        tp = TopicPartition(topic, 0)
        p = producer()
        for i in range(3):
            p.send(topic, value=b"%d" % i, partition=0)
        p.flush(TIMEOUT)
        p.close(TIMEOUT)
        c = consumer(auto_offset_reset="earliest")
        c.assign([tp])
        c.seek(tp, 1000)  # past the end: OFFSET_OUT_OF_RANGE, reset to earliest
        self.assertEqual([m.offset for m in poll(c, 3)], [0, 1, 2])
        c.close()
        c = consumer(auto_offset_reset="none")
        c.assign([tp])
        c.seek(tp, 1000)
        with self.assertRaises(kerr.OffsetOutOfRangeError):
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                c.poll(timeout_ms=500)
        c.close()

    def test_kafka_produce_read_over_grpc(self):
        topic = self.create("kp-to-grpc")
        p = producer()
        ts = now_ms() - 60_000
        sent = [
            (b"k0", b"v0", [("h", b"x"), ("h", b"y")], ts),
            (None, b"no key", [], ts + 1),
            (b"tombstone", None, [("h", b"\xff\x00")], ts + 2),
            (b"", b"", [("empty", b"")], ts + 3),
        ]
        for key, value, headers, t in sent:
            p.send(topic, key=key, value=value, headers=headers, partition=0, timestamp_ms=t)
        p.flush(TIMEOUT)
        p.close(TIMEOUT)
        self.assertEqual(grpc_records(topic), [(n, *r) for n, r in enumerate(sent)])

    def test_grpc_produce_read_over_kafka(self):
        topic = grpc_create_topic(unique("kp-from-grpc"))
        ts = now_ms() - 60_000
        sent = [
            (b"k0", b"v0", [("h", b"x"), ("h", b"y")], ts),
            (None, b"no key", [], ts + 1),
            (b"tombstone", None, [("null", None)], ts + 2),
            (b"", b"", [("empty", b"")], ts + 3),
        ]
        self.assertEqual(grpc_produce(topic, sent), 0)
        c = consumer(auto_offset_reset="earliest")
        c.assign([TopicPartition(topic, 0)])
        got = poll(c, len(sent))
        c.close()
        self.assertEqual([fields(m) for m in got], [(n, *r) for n, r in enumerate(sent)])


if __name__ == "__main__":
    sys.exit(common.run("kafka-python"))
