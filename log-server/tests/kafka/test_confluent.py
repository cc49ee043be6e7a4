"""confluent-kafka (PyPI, the librdkafka wheel) against log-server's Kafka
listener.

Run through run.sh (which starts the server, generates the gRPC stubs and
sets KAFKA_BOOTSTRAP and LOG_SERVER_ADDR). Consumers assign partitions by
hand: the server has no group membership yet.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import confluent_kafka  # noqa: E402
from confluent_kafka import (  # noqa: E402
    OFFSET_BEGINNING, OFFSET_END, Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException,
    Producer, TopicCollection, TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

import kafka_common as common  # noqa: E402
from kafka_common import (  # noqa: E402,F401 - setUpModule/tearDownModule are unittest's hooks
    CODEC_IDS, CODECS, TIMEOUT, grpc_batches, grpc_committed, grpc_create_topic, grpc_produce,
    grpc_records, grpc_topic_names, now_ms, payload, setUpModule, tearDownModule, unique,
)

PER_CODEC = 10


def producer(**conf):
    base = {"bootstrap.servers": common.BOOTSTRAP, "acks": "all", "linger.ms": 5,
            "message.timeout.ms": int(TIMEOUT * 1000)}
    base.update(conf)
    return Producer(base)


def consumer(**conf):
    base = {"bootstrap.servers": common.BOOTSTRAP, "enable.auto.commit": False,
            # librdkafka wants a group id for a consumer even when it only
            # assigns; nothing joins (no subscribe).
            "group.id": unique("ck-unused"), "enable.partition.eof": False}
    base.update(conf)
    return Consumer(base)


def admin():
    return AdminClient({"bootstrap.servers": common.BOOTSTRAP})


class Deliveries:
    """The delivery reports of a producer: [(error|None, offset)] in order."""

    def __init__(self):
        self.reports = []

    def __call__(self, err, msg):
        self.reports.append((err, msg.offset() if err is None else None))

    def offsets(self):
        errors = [e for e, _ in self.reports if e is not None]
        assert not errors, errors
        return [o for _, o in self.reports]


def produce_all(p, topic, records, **kw):
    """records: [(key, value, headers, timestamp|None)]; the delivered offsets."""
    d = Deliveries()
    for key, value, headers, ts in records:
        extra = dict(kw)
        if ts is not None:
            extra["timestamp"] = ts
        p.produce(topic, key=key, value=value, headers=headers, partition=0, on_delivery=d, **extra)
        p.poll(0)
    left = p.flush(TIMEOUT)
    assert left == 0, f"{left} messages not delivered within {TIMEOUT}s"
    return d.offsets()


def poll(c, want, timeout=TIMEOUT):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        for m in c.consume(num_messages=1000, timeout=0.5):
            if m.error():
                raise KafkaException(m.error())
            got.append(m)
    assert len(got) >= want, f"{len(got)} messages within {timeout}s, want {want}"
    return got


def fields(m):
    return (m.offset(), m.key(), m.value(), list(m.headers() or []), m.timestamp()[1])


def wait(futures):
    """The results of a dict of admin futures, by key."""
    return {k: f.result(timeout=TIMEOUT) for k, f in futures.items()}


class ConfluentTest(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        print(f"confluent-kafka {confluent_kafka.__version__}, librdkafka {confluent_kafka.libversion()[0]}",
              file=sys.stderr, flush=True)

    def create(self, prefix, partitions=1, config=None):
        name = unique(prefix)
        a = admin()  # held: a handle destroyed fails its futures (_DESTROY)
        wait(a.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=TIMEOUT))
        return name

    def test_produce_every_codec_and_read_back(self):
        topic = self.create("ck-codecs")
        sent = []
        for codec in CODECS:
            records = [(f"key-{i}".encode(), payload(i, codec), [("codec", codec.encode()), ("null", None)], None)
                       for i in range(PER_CODEC)]
            p = producer(**{"compression.type": codec})
            offsets = produce_all(p, topic, records)
            base = CODECS.index(codec) * PER_CODEC
            self.assertEqual(offsets, list(range(base, base + PER_CODEC)), codec)
            sent += records
        c = consumer()
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = poll(c, len(sent))
        c.close()
        self.assertEqual([(m.offset(), m.key(), m.value(), m.headers()) for m in got],
                         [(n, k, v, h) for n, (k, v, h, _) in enumerate(sent)])
        batches = grpc_batches(topic)
        self.assertEqual(sum(b["count"] for b in batches), len(sent))
        for b in batches:
            codec = CODECS[b["base_offset"] // PER_CODEC]
            self.assertEqual(b["compression"], CODEC_IDS[codec], f"batch at {b['base_offset']}: {b}")

    def test_idempotent_producer(self):
        topic = self.create("ck-idem")
        p = producer(**{"enable.idempotence": True, "linger.ms": 0, "batch.num.messages": 7})
        offsets = produce_all(p, topic, [(None, payload(i, "idem"), None, None) for i in range(100)])
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
        topic = self.create("ck-positions")
        p = producer()
        produce_all(p, topic, [(None, payload(i, "before"), None, None) for i in range(5)])
        time.sleep(0.2)
        between = now_ms()
        time.sleep(0.2)
        produce_all(p, topic, [(None, payload(i, "after"), None, None) for i in range(5)])

        c = consumer(**{"auto.offset.reset": "earliest"})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        self.assertEqual([m.offset() for m in poll(c, 10)], list(range(10)))
        self.assertEqual(c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT), (0, 10))
        [found] = c.offsets_for_times([TopicPartition(topic, 0, between)], timeout=TIMEOUT)
        self.assertIsNone(found.error)
        self.assertEqual(found.offset, 5)
        [future] = c.offsets_for_times([TopicPartition(topic, 0, now_ms() + 3_600_000)], timeout=TIMEOUT)
        self.assertEqual(future.offset, OFFSET_END)  # -1: nothing at or after it
        c.close()
        # Assigned at the time's offset.
        c = consumer()
        c.assign([TopicPartition(topic, 0, found.offset)])
        self.assertEqual(poll(c, 1)[0].value(), payload(0, "after"))
        c.close()

        # latest: only what comes after the consumer started
        # (librdkafka's position() stays unset until a message is consumed:
        # the end is resolved by ListOffsets while the consumer polls.)
        c = consumer()
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        self.assertEqual(c.consume(num_messages=10, timeout=1.0), [])
        produce_all(p, topic, [(None, b"late", None, None)])
        self.assertEqual([(m.offset(), m.value()) for m in poll(c, 1)], [(10, b"late")])
        c.close()

    def test_group_commit_and_read_back(self):
        topic = self.create("ck-group")
        group = unique("ck-group")
        tp = TopicPartition(topic, 0)
        produce_all(producer(), topic, [(None, payload(i, "g"), None, None) for i in range(10)])
        c = consumer(**{"group.id": group})
        [before] = c.committed([tp], timeout=TIMEOUT)
        self.assertLess(before.offset, 0, before)  # OFFSET_INVALID: none
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        poll(c, 4)
        c.commit(offsets=[TopicPartition(topic, 0, 4, metadata="ck-meta")], asynchronous=False)
        [committed] = c.committed([tp], timeout=TIMEOUT)
        self.assertEqual((committed.offset, committed.metadata), (4, "ck-meta"))
        c.close()
        # The binding sends the metadata string with its C terminator
        # (metadata_size = strlen + 1), which a broker stores as sent.
        offset, metadata = grpc_committed(group, topic)
        self.assertEqual((offset, metadata.rstrip("\x00")), (4, "ck-meta"))
        # A new consumer of the group, assigned without an offset, starts
        # at the commit.
        c = consumer(**{"group.id": group, "auto.offset.reset": "error"})
        c.assign([tp])
        self.assertEqual(poll(c, 1)[0].offset(), 4)
        c.close()
        # The admin client lists the group's offsets (OffsetFetch).
        a = admin()
        [(key, future)] = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).items()
        listed = future.result(timeout=TIMEOUT)
        self.assertEqual([(t.topic, t.partition, t.offset) for t in listed.topic_partitions], [(topic, 0, 4)])

    def test_admin_create_describe_delete(self):
        a = admin()
        name = unique("ck-admin")
        wait(a.create_topics([NewTopic(name, 3, 1, config={"retention.ms": "3600000",
                                                          "max.message.bytes": "1048576"})],
                             operation_timeout=TIMEOUT))
        self.assertIn(name, a.list_topics(timeout=TIMEOUT).topics)
        self.assertIn(name, grpc_topic_names())
        described = wait(a.describe_topics(TopicCollection([name])))[name]
        self.assertEqual(described.name, name)
        self.assertEqual([p.id for p in described.partitions], [0, 1, 2])
        for p in described.partitions:
            self.assertEqual((p.leader.id, [r.id for r in p.replicas], [r.id for r in p.isr]), (0, [0], [0]))
        with self.assertRaises(KafkaException) as again:
            wait(a.create_topics([NewTopic(name, 3, 1)], operation_timeout=TIMEOUT))
        self.assertEqual(again.exception.args[0].code(), KafkaError.TOPIC_ALREADY_EXISTS)
        with self.assertRaises(KafkaException) as bad:
            wait(a.create_topics([NewTopic(unique("ck-bad"), 1, 1, config={"no.such.config": "1"})],
                                 operation_timeout=TIMEOUT))
        self.assertEqual(bad.exception.args[0].code(), KafkaError.INVALID_CONFIG)
        wait(a.delete_topics([name], operation_timeout=TIMEOUT))
        self.assertNotIn(name, a.list_topics(timeout=TIMEOUT).topics)
        self.assertNotIn(name, grpc_topic_names())
        with self.assertRaises(KafkaException) as gone:
            wait(a.delete_topics([name], operation_timeout=TIMEOUT))
        self.assertEqual(gone.exception.args[0].code(), KafkaError.UNKNOWN_TOPIC_OR_PART)

    def test_batch_over_max_message_bytes_is_refused(self):
        topic = self.create("ck-big", config={"max.message.bytes": "1048576"})
        p = producer(**{"message.max.bytes": 8 << 20, "retries": 0})
        d = Deliveries()
        p.produce(topic, value=os.urandom(5 << 20), partition=0, on_delivery=d)
        self.assertEqual(p.flush(TIMEOUT), 0)
        [(err, _)] = d.reports
        self.assertIsNotNone(err)
        # The broker's MESSAGE_TOO_LARGE (10), not the local one (-186).
        self.assertEqual(err.code(), KafkaError.MSG_SIZE_TOO_LARGE, err)
        self.assertEqual(produce_all(p, topic, [(None, b"small", None, None)]), [0])

    def test_acks_0_and_1(self):
        topic = self.create("ck-acks")
        for acks in (0, 1):
            offsets = produce_all(producer(acks=acks), topic,
                                  [(None, payload(i, f"acks={acks}"), None, None) for i in range(5)])
            # acks=0 gets no answer: no offset in the delivery report.
            self.assertEqual(offsets, [None] * 5 if acks == 0 else list(range(5, 10)), f"acks={acks}")
        c = consumer()
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = poll(c, 10)
        c.close()
        self.assertEqual([m.value() for m in got], [payload(i, f"acks={a}") for a in (0, 1) for i in range(5)])

    def test_keys_spread_over_partitions(self):
        topic = self.create("ck-keys", partitions=3)
        p = producer()
        where = {}

        def report(err, msg):
            self.assertIsNone(err)
            where.setdefault(msg.key(), set()).add(msg.partition())

        for i in range(30):
            p.produce(topic, key=f"user-{i % 6}".encode(), value=b"%d" % i, on_delivery=report)
        self.assertEqual(p.flush(TIMEOUT), 0)
        self.assertTrue(all(len(parts) == 1 for parts in where.values()), where)
        self.assertGreater(len(set().union(*where.values())), 1, where)
        c = consumer()
        c.assign([TopicPartition(topic, n, OFFSET_BEGINNING) for n in range(3)])
        got = poll(c, 30)
        c.close()
        self.assertEqual(sorted(int(m.value()) for m in got), list(range(30)))
        for m in got:
            self.assertEqual(where[m.key()], {m.partition()})

    def test_record_larger_than_the_fetch_sizes_is_read(self):
        topic = self.create("ck-large")
        big = os.urandom(3 << 20)
        p = producer(**{"message.max.bytes": 8 << 20})
        self.assertEqual(produce_all(p, topic, [(None, big, None, None), (None, b"after", None, None)]), [0, 1])
        c = consumer(**{"max.partition.fetch.bytes": 1 << 20, "fetch.max.bytes": 1 << 20,
                        "receive.message.max.bytes": 16 << 20})
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = poll(c, 2)
        c.close()
        self.assertEqual([(m.offset(), m.value()) for m in got], [(0, big), (1, b"after")])

    def test_offset_out_of_range_resets(self):
        topic = self.create("ck-range")
        produce_all(producer(), topic, [(None, b"%d" % i, None, None) for i in range(3)])
        c = consumer(**{"auto.offset.reset": "earliest"})
        c.assign([TopicPartition(topic, 0, 1000)])  # past the end: reset to earliest
        self.assertEqual([m.offset() for m in poll(c, 3)], [0, 1, 2])
        c.close()
        c = consumer(**{"auto.offset.reset": "error"})
        c.assign([TopicPartition(topic, 0, 1000)])
        with self.assertRaises(KafkaException) as caught:
            poll(c, 1)
        self.assertIn(caught.exception.args[0].code(), (KafkaError.OFFSET_OUT_OF_RANGE, KafkaError._AUTO_OFFSET_RESET))
        c.close()

    def test_kafka_produce_read_over_grpc(self):
        topic = self.create("ck-to-grpc")
        ts = now_ms() - 60_000
        sent = [
            (b"k0", b"v0", [("h", b"x"), ("h", b"y")], ts),
            (None, b"no key", [], ts + 1),
            (b"tombstone", None, [("null", None)], ts + 2),
            (b"", b"", [("empty", b"")], ts + 3),
        ]
        produce_all(producer(), topic, sent)
        self.assertEqual(grpc_records(topic), [(n, *r) for n, r in enumerate(sent)])

    def test_grpc_produce_read_over_kafka(self):
        topic = grpc_create_topic(unique("ck-from-grpc"))
        ts = now_ms() - 60_000
        sent = [
            (b"k0", b"v0", [("h", b"x"), ("h", b"y")], ts),
            (None, b"no key", [], ts + 1),
            (b"tombstone", None, [("null", None)], ts + 2),
            (b"", b"", [("empty", b"")], ts + 3),
        ]
        self.assertEqual(grpc_produce(topic, sent), 0)
        c = consumer()
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got = poll(c, len(sent))
        c.close()
        self.assertEqual([fields(m) for m in got], [(n, *r) for n, r in enumerate(sent)])


if __name__ == "__main__":
    sys.exit(common.run("confluent-kafka"))
