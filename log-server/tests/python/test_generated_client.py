"""Cross-language conformance test of log-server with a generated Python client.

The client is generated from proto/log/v1/log.proto by grpc_tools.protoc (see
run.sh, which also starts the server). Run it through run.sh, or by hand:

    PYTHONPATH=<generated stubs> LOG_SERVER_ADDR=127.0.0.1:7070 \
        python test_generated_client.py [-k PATTERN]

Environment:
    LOG_SERVER_ADDR        host:port of a running log-server (required)
    LOG_SERVER_DATA_DIR    its --data-dir (optional: enables file-system checks)
    LOG_SERVER_PID         its pid (optional: stop waiting when it died)
    LOG_TEST_SUMMARY_FILE  where to write "passed failed skipped" (run.sh); when
                           unset, the last line printed is
                           "python: N passed, M failed".

Only the standard library, the pinned gRPC packages and kafka-python (for the
Kafka RecordBatch inside our stored frames) are used (requirements.txt).
"""

import os
import queue
import struct
import sys
import threading
import time
import unittest
import uuid
import zlib

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_status import rpc_status

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import calc_crc32c as crc32c

from log.v1 import log_pb2, log_pb2_grpc

pb = log_pb2
SC = grpc.StatusCode

DOMAIN = "log.v1"
TIMEOUT = 10.0  # deadline of every unary call
HEALTH_WAIT = 60.0  # how long to wait for the server to report SERVING
CHANNEL_OPTIONS = [
    ("grpc.max_receive_message_length", 16 << 20),
    ("grpc.max_send_message_length", 64 << 20),
]

ADDR = os.environ.get("LOG_SERVER_ADDR", "")
DATA_DIR = os.environ.get("LOG_SERVER_DATA_DIR", "")
SERVER_PID = os.environ.get("LOG_SERVER_PID", "")

channel = None
log_stub = None
admin_stub = None
health_stub = None


# ---------------------------------------------------------------- fixtures


def _server_alive():
    """False once the server process (when its pid is known) has exited."""
    if not SERVER_PID:
        return True
    try:
        with open(f"/proc/{SERVER_PID}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def setUpModule():
    global channel, log_stub, admin_stub, health_stub
    if not ADDR:
        raise RuntimeError("LOG_SERVER_ADDR is not set (host:port of a running log-server)")
    channel = grpc.insecure_channel(ADDR, options=CHANNEL_OPTIONS)
    log_stub = log_pb2_grpc.LogServiceStub(channel)
    admin_stub = log_pb2_grpc.AdminServiceStub(channel)
    health_stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + HEALTH_WAIT
    last = "no answer"
    while True:
        if not _server_alive():
            raise RuntimeError(f"log-server (pid {SERVER_PID}) exited before reporting SERVING")
        try:
            resp = health_stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0)
            if resp.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        except grpc.RpcError as e:
            last = f"{e.code().name}: {e.details()}"
        if time.monotonic() > deadline:
            raise RuntimeError(f"health of {ADDR} not SERVING after {HEALTH_WAIT:.0f}s (last: {last})")
        time.sleep(0.1)


def tearDownModule():
    if channel is not None:
        channel.close()


# ---------------------------------------------------------------- helpers


def unique(prefix):
    """A fresh name, valid as a topic or group name."""
    return f"py-{prefix}-{uuid.uuid4().hex[:12]}"


def ms(milliseconds):
    return duration_pb2.Duration(seconds=milliseconds // 1000, nanos=(milliseconds % 1000) * 1_000_000)


def ts_ms(millis):
    return timestamp_pb2.Timestamp(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


def now_ms():
    return time.time_ns() // 1_000_000


def error_info(err):
    """(ErrorInfo or None, note): the ErrorInfo detail of a failed call."""
    try:
        status = rpc_status.from_call(err)
    except Exception as e:  # noqa: BLE001 - a malformed status is a finding
        return None, f"grpc-status-details-bin undecodable: {e!r}"
    if status is None:
        return None, "no grpc-status-details-bin (no google.rpc.Status details)"
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info, ""
    return None, f"no ErrorInfo among details {[d.type_url for d in status.details]}"


def describe_error(err):
    info, note = error_info(err)
    if info is None:
        return f"{err.code().name} {err.details()!r} ({note})"
    return f"{err.code().name} {info.reason} {dict(info.metadata)} {err.details()!r}"


def value_records(n, prefix=b"v"):
    return [pb.Record(value=prefix + str(i).encode()) for i in range(n)]


def record_fields(r):
    """Comparable view of a Record or SequencedRecord: presence-aware."""
    return (
        r.key if r.HasField("key") else None,
        r.value if r.HasField("value") else None,
        [(h.key, h.value if h.HasField("value") else None) for h in r.headers],
    )


# ---- log-format v2 frames (log-format/src/lib.rs), for encoded_batch
#
# A frame is our 16-byte header (little-endian: u32 CRC-32 of frame bytes
# 4..77, u32 frame length, u8 version 2, u8 flags, u48 append time) around one
# Kafka RecordBatch v2, which kafka-python builds and decodes: nothing of the
# Kafka part is written by hand here.

FRAME_HEADER_LEN = 16
HEADER_LEN = 77  # our header + Kafka's 61-byte batch header
_UNSTAMPED = b"\xff" * 6


def frame(kafka):
    """Our unstamped v2 frame around a Kafka batch."""
    head = struct.pack("<IBB", FRAME_HEADER_LEN + len(kafka), 2, 0) + _UNSTAMPED
    return struct.pack("<I", zlib.crc32(head + kafka[:61])) + head + kafka


def encode_batch(records, producer_id=-1, producer_epoch=-1, base_sequence=-1, compression=0):
    """One unstamped frame. records: (key|None, value|None, [(hkey, hval|None)], ts_ms)."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression, is_transactional=False, producer_id=producer_id,
        producer_epoch=producer_epoch, base_sequence=base_sequence, batch_size=64 << 20)
    for delta, (key, value, headers, ts) in enumerate(records):
        assert builder.append(delta, timestamp=ts, key=key, value=value, headers=headers) is not None
    return frame(bytes(builder.build()))


def reseal_header(batch):
    """Recomputes the frame checksum (only) of a frame."""
    batch = bytearray(batch)
    struct.pack_into("<I", batch, 0, zlib.crc32(bytes(batch[4:HEADER_LEN])))
    return bytes(batch)


def decode_batches(buf):
    """Frames back to back -> [(header dict, [(offset, key, value, headers, ts_ms)])].

    Checks our frame checksum and, through kafka-python, Kafka's CRC-32C;
    raises AssertionError on any defect."""
    out = []
    pos = 0
    while pos < len(buf):
        assert len(buf) - pos >= HEADER_LEN, f"torn header at {pos}"
        fcrc, length, version, flags = struct.unpack_from("<IIBB", buf, pos)
        assert fcrc == zlib.crc32(buf[pos + 4 : pos + HEADER_LEN]), f"frame crc at {pos}"
        assert version == 2 and flags == 0, f"bad version/flags at {pos}"
        assert HEADER_LEN < length and pos + length <= len(buf), f"bad length {length} at {pos}"
        append_time = int.from_bytes(buf[pos + 10 : pos + 16], "little")
        batch = DefaultRecordBatch(bytes(buf[pos + FRAME_HEADER_LEN : pos + length]))
        assert batch.validate_crc(), f"kafka crc at {pos}"
        header = dict(base_offset=batch.base_offset, append_time=append_time,
                      leader_epoch=struct.unpack_from(">i", buf, pos + 28)[0],
                      record_count=batch.record_count if hasattr(batch, "record_count") else None,
                      producer_id=batch.producer_id, producer_epoch=batch.producer_epoch,
                      base_sequence=batch.base_sequence, compression=batch.compression_type)
        recs = [(r.offset, r.key, r.value, [(k, v) for k, v in r.headers], r.timestamp) for r in batch]
        out.append((header, recs))
        pos += length
    return out


# ---------------------------------------------------------------- base class


class LogTestCase(unittest.TestCase):
    maxDiff = 4000

    # -- calls

    def create_topic(self, name=None, partitions=1, prefix="t"):
        name = name or unique(prefix)
        admin_stub.CreateTopic(pb.CreateTopicRequest(name=name, partition_count=partitions), timeout=TIMEOUT)
        return name

    def produce(self, topic, records, partition=0, **kw):
        return log_stub.Produce(
            pb.ProduceRequest(topic=topic, partition=partition, records=records, **kw), timeout=TIMEOUT
        )

    def fetch(self, topic, offset, partition=0, timeout=TIMEOUT, **kw):
        return log_stub.Fetch(
            pb.FetchRequest(topic=topic, partition=partition, position=pb.Position(offset=offset), **kw),
            timeout=timeout,
        )

    def watermarks(self, topic, partition=0):
        resp = log_stub.ListOffsets(
            pb.ListOffsetsRequest(topic=topic, partitions=[partition],
                                  position=pb.Position(boundary=pb.BOUNDARY_LATEST)),
            timeout=TIMEOUT,
        )
        self.assertEqual(len(resp.partitions), 1)
        return resp.partitions[0].watermarks

    def log_end(self, topic, partition=0):
        return self.watermarks(topic, partition).log_end_offset

    def server_limits(self):
        return admin_stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=TIMEOUT).limits

    def topic_names(self):
        names, token = [], ""
        for _ in range(10_000):
            resp = admin_stub.ListTopics(pb.ListTopicsRequest(page_size=1000, page_token=token), timeout=TIMEOUT)
            names += [t.name for t in resp.topics]
            token = resp.next_page_token
            if not token:
                return names
        self.fail("ListTopics pagination does not end")

    # -- errors

    def assertRpcError(self, fn, code, reasons, metadata_keys=()):
        """Calls fn, requires a gRPC error with this code and an ErrorInfo
        (domain log.v1) whose reason is one of reasons. Returns the ErrorInfo."""
        if isinstance(reasons, str):
            reasons = (reasons,)
        want = f"{code.name} {'|'.join(reasons)}"
        try:
            resp = fn()
        except grpc.RpcError as e:
            got = describe_error(e)
            self.assertEqual(e.code(), code, f"expected {want}, got {got}")
            info, note = error_info(e)
            self.assertIsNotNone(info, f"expected {want}, got {got}")
            self.assertEqual(info.domain, DOMAIN, f"expected domain {DOMAIN}, got {got} domain {info.domain!r}")
            self.assertIn(info.reason, reasons, f"expected {want}, got {got}")
            for key in metadata_keys:
                self.assertIn(key, info.metadata, f"ErrorInfo metadata lacks {key!r}: {got}")
            return info
        self.fail(f"expected {want}, got success: {str(resp)[:300]!r}")


# ---------------------------------------------------------------- admin


class AdminTest(LogTestCase):
    def test_topic_lifecycle(self):
        t = unique("admin")
        created = admin_stub.CreateTopic(pb.CreateTopicRequest(name=t, partition_count=3), timeout=TIMEOUT)
        self.assertEqual(created.topic.name, t)
        self.assertEqual(created.topic.partition_count, 3)

        got = admin_stub.GetTopic(pb.GetTopicRequest(name=t), timeout=TIMEOUT)
        self.assertEqual(got.topic.name, t)
        self.assertEqual(got.topic.partition_count, 3)
        self.assertEqual(sorted(p.partition for p in got.partitions), [0, 1, 2])
        for p in got.partitions:
            w = p.watermarks
            self.assertEqual(
                (w.log_start_offset, w.log_end_offset, w.durable_end_offset), (0, 0, 0), f"partition {p.partition}"
            )

        self.assertIn(t, self.topic_names())
        listed = admin_stub.ListTopics(pb.ListTopicsRequest(name_prefix=t), timeout=TIMEOUT)
        self.assertEqual([x.name for x in listed.topics], [t])
        self.assertEqual(listed.topics[0].partition_count, 3)

        self.assertRpcError(
            lambda: admin_stub.CreateTopic(pb.CreateTopicRequest(name=t, partition_count=3), timeout=TIMEOUT),
            SC.ALREADY_EXISTS, "TOPIC_EXISTS",
        )

        grown = admin_stub.CreatePartitions(pb.CreatePartitionsRequest(topic=t, partition_count=5), timeout=TIMEOUT)
        self.assertEqual(grown.topic.partition_count, 5)
        got = admin_stub.GetTopic(pb.GetTopicRequest(name=t), timeout=TIMEOUT)
        self.assertEqual(got.topic.partition_count, 5)
        self.assertEqual(sorted(p.partition for p in got.partitions), [0, 1, 2, 3, 4])

        admin_stub.DeleteTopic(pb.DeleteTopicRequest(name=t), timeout=TIMEOUT)
        self.assertRpcError(
            lambda: admin_stub.GetTopic(pb.GetTopicRequest(name=t), timeout=TIMEOUT),
            SC.NOT_FOUND, "TOPIC_NOT_FOUND",
        )
        self.assertNotIn(t, self.topic_names())

    def test_server_info(self):
        info = admin_stub.GetServerInfo(pb.GetServerInfoRequest(), timeout=TIMEOUT)
        self.assertTrue(info.version, "GetServerInfo.version is empty")
        self.assertTrue(info.HasField("limits"), "GetServerInfo.limits unset")
        self.assertGreater(info.limits.max_request_bytes, 0)
        self.assertGreater(info.limits.max_fetch_bytes, 0)

    def test_stats(self):
        t = self.create_topic(prefix="stats")
        self.produce(t, value_records(3))
        stats = admin_stub.GetStats(pb.GetStatsRequest(), timeout=TIMEOUT)
        self.assertIsInstance(stats, pb.GetStatsResponse)
        self.assertGreaterEqual(stats.produce_requests_total, 1)
        self.assertGreaterEqual(stats.records_appended_total, 3)
        one = admin_stub.GetStats(pb.GetStatsRequest(topic=t), timeout=TIMEOUT)
        self.assertEqual([s.topic for s in one.topics], [t])


# ---------------------------------------------------------------- produce


STRUCTURED = [
    pb.Record(key=b"k0", value=b"v0", headers=[pb.Header(key="h", value=b"1"), pb.Header(key="h", value=b"2")]),
    pb.Record(value=b"no key"),  # key unset: a null key
    pb.Record(key=b"", value=b"", headers=[pb.Header(key="empty", value=b"")]),  # empty, not null
    pb.Record(key=b"k3", value=bytes(range(256)), headers=[pb.Header(key="h-\u00fc", value=b"\x00\xff")]),
    pb.Record(key=b"tombstone"),  # value unset: a tombstone
]


class ProduceTest(LogTestCase):
    def test_produce_structured_records(self):
        t = self.create_topic(prefix="produce")
        n = len(STRUCTURED)
        resp = self.produce(t, STRUCTURED)
        self.assertEqual(resp.partition, 0)
        self.assertEqual((resp.base_offset, resp.last_offset), (0, n - 1))
        self.assertEqual(resp.watermarks.log_end_offset, n)
        self.assertEqual(resp.ack, pb.ACK_DURABLE, f"ack {pb.Ack.Name(resp.ack)}")
        self.assertEqual(resp.watermarks.durable_end_offset, n)
        self.assertTrue(resp.HasField("append_time"))

    def test_produce_stream(self):
        t = self.create_topic(prefix="pstream")

        def requests():
            for i in range(5):
                yield pb.ProduceStreamRequest(
                    request=pb.ProduceRequest(topic=t, partition=0, records=value_records(i + 1, b"s%d-" % i))
                )

        responses = list(log_stub.ProduceStream(requests(), timeout=30))
        self.assertEqual(len(responses), 5)
        expected = 0
        for i, r in enumerate(responses):
            self.assertEqual(r.response.base_offset, expected, f"response {i}")
            self.assertEqual(r.response.last_offset, expected + i, f"response {i}")
            expected += i + 1
        self.assertEqual(self.log_end(t), expected)

    def test_conditional_append(self):
        t = self.create_topic(prefix="cond")
        self.produce(t, value_records(2))
        info = self.assertRpcError(
            lambda: self.produce(t, value_records(1), expected_log_end_offset=5),
            SC.FAILED_PRECONDITION, "CONDITION_FAILED", metadata_keys=("expected", "actual"),
        )
        self.assertEqual((info.metadata["expected"], info.metadata["actual"]), ("5", "2"))
        self.assertEqual(self.log_end(t), 2)
        ok = self.produce(t, value_records(1), expected_log_end_offset=2)
        self.assertEqual(ok.base_offset, 2)
        self.assertEqual(self.log_end(t), 3)

    def test_idempotent_retry(self):
        t = self.create_topic(prefix="idem")
        req = pb.ProduceRequest(topic=t, partition=0, records=value_records(2),
                                producer_id=12345, producer_epoch=0, base_sequence=0)
        first = log_stub.Produce(req, timeout=TIMEOUT)
        second = log_stub.Produce(req, timeout=TIMEOUT)
        self.assertEqual((first.base_offset, first.last_offset), (0, 1))
        self.assertEqual((second.base_offset, second.last_offset), (first.base_offset, first.last_offset))
        self.assertEqual(self.log_end(t), 2, "the retried batch was appended twice")

    def test_encoded_batch_produce(self):
        """A Kafka batch built by kafka-python, in our frame, is appended as is."""
        t = self.create_topic(prefix="encp")
        base = now_ms() - 1000
        recs = [(b"a", b"1", [("x", b"y"), ("null", None)], base), (None, b"2", [], base + 5),
                (b"c", None, [], base + 9)]
        resp = log_stub.Produce(pb.ProduceRequest(topic=t, partition=0, encoded_batch=encode_batch(recs)),
                                timeout=TIMEOUT)
        self.assertEqual((resp.base_offset, resp.last_offset), (0, 2))
        got = self.fetch(t, 0).records
        self.assertEqual([record_fields(r) for r in got], [(k, v, h) for k, v, h, _ in recs])
        self.assertEqual([r.timestamp.ToMilliseconds() for r in got], [r[3] for r in recs])

    def test_compressed_batches_are_stored_as_sent(self):
        """gzip (and lz4/zstd when kafka-python has their modules): the records
        come back decompressed, the stored batch exactly as sent."""
        codecs = {"gzip": DefaultRecordBatch.CODEC_GZIP}
        for name, attr in (("lz4", "CODEC_LZ4"), ("zstd", "CODEC_ZSTD"), ("snappy", "CODEC_SNAPPY")):
            codecs[name] = getattr(DefaultRecordBatch, attr)
        for name, codec in codecs.items():
            with self.subTest(name):
                t = self.create_topic(prefix="cmp" + name)
                base = now_ms()
                recs = [(b"k%d" % i, b'{"event":"ORDER_PLACED","orderId":%d}' % i, [], base + i) for i in range(50)]
                try:
                    sent = encode_batch(recs, compression=codec)
                except Exception as e:  # the codec's Python module is missing
                    self.skipTest(f"kafka-python cannot compress {name}: {e}")
                log_stub.Produce(pb.ProduceRequest(topic=t, partition=0, encoded_batch=sent), timeout=TIMEOUT)
                got = self.fetch(t, 0, max_records=1000).records
                self.assertEqual([(r.key, r.value) for r in got], [(k, v) for k, v, _, _ in recs])
                stored = self.fetch(t, 0, format=pb.RECORD_FORMAT_ENCODED_BATCHES).encoded_batches
                # The Kafka part of the stored frame is the producer's batch, but for
                # the fields the log stamps (baseOffset 0 here, leader epoch).
                self.assertEqual(stored[32:], sent[32:])
                (header, decoded), = decode_batches(stored)
                self.assertEqual(header["compression"], codec)
                self.assertEqual([(r[1], r[2]) for r in decoded], [(k, v) for k, v, _, _ in recs])


# ---------------------------------------------------------------- fetch


class FetchTest(LogTestCase):
    def test_fetch_records_roundtrip(self):
        t = self.create_topic(prefix="fetch")
        n = len(STRUCTURED)
        self.produce(t, STRUCTURED)
        resp = self.fetch(t, 0)
        self.assertEqual([r.offset for r in resp.records], list(range(n)))
        self.assertEqual([record_fields(r) for r in resp.records], [record_fields(r) for r in STRUCTURED])
        self.assertFalse(resp.records[1].HasField("key"), "unset key came back set")
        self.assertTrue(resp.records[2].HasField("key"), "empty key came back unset")
        self.assertFalse(resp.records[4].HasField("value"), "unset value came back set")
        self.assertEqual(resp.next_offset, n)
        self.assertEqual(resp.watermarks.log_end_offset, n)
        self.assertEqual(len(resp.encoded_batches), 0)

    def test_fetch_producer_timestamps(self):
        t = self.create_topic(prefix="fts")
        when = now_ms() - 60_000
        self.produce(t, [pb.Record(value=b"a", timestamp=ts_ms(when)), pb.Record(value=b"b")])
        recs = self.fetch(t, 0).records
        self.assertEqual(recs[0].timestamp.ToMilliseconds(), when)
        self.assertTrue(recs[0].HasField("append_time"))
        self.assertGreaterEqual(recs[1].timestamp.ToMilliseconds(), when)

    def test_fetch_encoded_batches(self):
        t = self.create_topic(prefix="fenc")
        n = len(STRUCTURED)
        self.produce(t, STRUCTURED)
        resp = self.fetch(t, 0, format=pb.RECORD_FORMAT_ENCODED_BATCHES)
        self.assertGreater(len(resp.encoded_batches), 0)
        self.assertEqual(len(resp.records), 0)
        self.assertEqual(resp.next_offset, n)
        batches = decode_batches(resp.encoded_batches)  # checks both CRCs, with kafka-python
        decoded = [r for _, recs in batches for r in recs]
        self.assertEqual([r[0] for r in decoded], list(range(n)))
        self.assertEqual([r[1:4] for r in decoded], [record_fields(r) for r in STRUCTURED])

    def test_fetch_at_end_waits_max_wait(self):
        t = self.create_topic(prefix="fwait")
        self.produce(t, value_records(2))
        start = time.monotonic()
        resp = self.fetch(t, 2, max_wait=ms(200))
        elapsed = time.monotonic() - start
        self.assertEqual(len(resp.records), 0)
        self.assertEqual(resp.next_offset, 2)
        self.assertGreaterEqual(elapsed, 0.15, f"returned after {elapsed:.3f}s, max_wait was 0.2s")
        self.assertLess(elapsed, 3.0, f"returned after {elapsed:.3f}s, max_wait was 0.2s")

    def test_fetch_long_poll_wakes_on_produce(self):
        t = self.create_topic(prefix="fpoll")
        self.produce(t, value_records(1))
        out = {}

        def poll():
            start = time.monotonic()
            try:
                out["resp"] = self.fetch(t, 1, max_wait=ms(10_000), timeout=30)
            except grpc.RpcError as e:
                out["err"] = describe_error(e)
            out["elapsed"] = time.monotonic() - start

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        time.sleep(0.3)
        self.produce(t, [pb.Record(value=b"wake")])
        th.join(20)
        self.assertFalse(th.is_alive(), "long-poll Fetch did not return")
        self.assertNotIn("err", out, out.get("err"))
        self.assertLess(out["elapsed"], 5.0, f"long poll woke after {out['elapsed']:.2f}s (max_wait 10s)")
        self.assertEqual([(r.offset, r.value) for r in out["resp"].records], [(1, b"wake")])
        self.assertEqual(out["resp"].next_offset, 2)


# ---------------------------------------------------------------- subscribe


class _Reader:
    """Drains a server stream on a thread so the test can wait with a timeout."""

    END = object()

    def __init__(self, call):
        self.call = call
        self.q = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for msg in self.call:
                self.q.put(msg)
            self.q.put(self.END)
        except grpc.RpcError as e:
            self.q.put(e)

    def next(self, timeout=10.0):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no subscription event within {timeout}s") from None


class SubscribeTest(LogTestCase):
    def _until(self, reader, want_offsets, events):
        """Reads events until the records cover want_offsets (or caught_up)."""
        offsets = []
        while True:
            ev = reader.next()
            if ev is _Reader.END:
                self.fail(f"stream ended early; offsets so far {offsets}")
            if isinstance(ev, grpc.RpcError):
                self.fail(f"stream failed: {describe_error(ev)}; offsets so far {offsets}")
            kind = ev.WhichOneof("event")
            events.append(kind)
            if kind == "batch":
                offsets += [r.offset for r in ev.batch.records]
                if want_offsets is not None and len(offsets) >= len(want_offsets):
                    return offsets, ev
            elif kind == "caught_up":
                return offsets, ev

    def test_subscribe_replay_then_tail(self):
        t = self.create_topic(prefix="sub")
        for b in range(4):
            self.produce(t, value_records(5, b"b%d-" % b))
        call = log_stub.Subscribe(
            pb.SubscribeRequest(topic=t, partition=0, position=pb.Position(boundary=pb.BOUNDARY_EARLIEST)),
            timeout=60,
        )
        reader = _Reader(call)
        try:
            events = []
            offsets, ev = self._until(reader, None, events)
            self.assertEqual(ev.WhichOneof("event"), "caught_up", f"events {events}")
            self.assertEqual(offsets, list(range(20)), "records before caught_up")
            self.assertEqual(ev.caught_up.next_offset, 20)
            self.assertEqual(events.count("caught_up"), 1)

            producer = threading.Thread(target=lambda: self.produce(t, value_records(5, b"tail-")), daemon=True)
            producer.start()
            producer.join(TIMEOUT + 2)
            tail_events = []
            more, _ = self._until(reader, list(range(20, 25)), tail_events)
            self.assertEqual(more, list(range(20, 25)), f"tail events {tail_events}")
            self.assertNotIn("caught_up", tail_events, "a second caught_up was sent")
        finally:
            call.cancel()
        reader.thread.join(10)
        self.assertFalse(reader.thread.is_alive(), "stream did not end after cancel()")
        leftover = []
        while not reader.q.empty():
            leftover.append(reader.q.get())
        for ev in leftover:
            if isinstance(ev, pb.SubscribeResponse):
                self.assertNotEqual(ev.WhichOneof("event"), "caught_up", "a second caught_up was sent")
        self.assertTrue(
            any(isinstance(e, grpc.RpcError) and e.code() == SC.CANCELLED for e in leftover),
            f"expected CANCELLED after cancel(), got {leftover!r}",
        )

    def test_subscribe_stop_at_end(self):
        t = self.create_topic(prefix="substop")
        self.produce(t, value_records(3))
        call = log_stub.Subscribe(
            pb.SubscribeRequest(topic=t, partition=0, position=pb.Position(boundary=pb.BOUNDARY_EARLIEST),
                                stop_at_end=True),
            timeout=30,
        )
        reader = _Reader(call)
        events, offsets = [], []
        while True:
            ev = reader.next()
            if ev is _Reader.END:
                break
            if isinstance(ev, grpc.RpcError):
                self.fail(f"stop_at_end stream failed: {describe_error(ev)}; events {events}")
            events.append(ev.WhichOneof("event"))
            if ev.HasField("batch"):
                offsets += [r.offset for r in ev.batch.records]
        self.assertEqual(offsets, [0, 1, 2])
        self.assertEqual([e for e in events if e != "heartbeat"][-1], "caught_up", f"events {events}")
        self.assertEqual(events.count("caught_up"), 1, f"events {events}")


# ---------------------------------------------------------------- offsets


class OffsetsTest(LogTestCase):
    def list_offset(self, t, position):
        resp = log_stub.ListOffsets(pb.ListOffsetsRequest(topic=t, partitions=[0], position=position),
                                    timeout=TIMEOUT)
        self.assertEqual([p.partition for p in resp.partitions], [0])
        return resp.partitions[0]

    def test_list_offsets(self):
        t = self.create_topic(prefix="lo")
        self.produce(t, value_records(7))
        earliest = self.list_offset(t, pb.Position(boundary=pb.BOUNDARY_EARLIEST))
        self.assertTrue(earliest.HasField("offset"))
        self.assertEqual(earliest.offset, 0)
        latest = self.list_offset(t, pb.Position(boundary=pb.BOUNDARY_LATEST))
        self.assertEqual(latest.offset, 7)
        self.assertEqual(latest.watermarks.log_end_offset, 7)
        future = self.list_offset(t, pb.Position(time=ts_ms(now_ms() + 3_600_000)))
        self.assertFalse(future.HasField("offset"), f"time in the future resolved to {future.offset}")
        past = self.list_offset(t, pb.Position(time=ts_ms(now_ms() - 3_600_000)))
        self.assertEqual(past.offset, 0, "a time before every record")
        from_end = self.list_offset(t, pb.Position(from_end=2))
        self.assertEqual(from_end.offset, 5)

    def test_commit_and_get_committed(self):
        t = self.create_topic(prefix="commit")
        self.produce(t, value_records(10))
        group = unique("g")

        def committed(g):
            resp = log_stub.GetCommittedOffsets(pb.GetCommittedOffsetsRequest(group=g, topic=t, partitions=[0]),
                                                timeout=TIMEOUT)
            self.assertEqual([o.partition for o in resp.offsets], [0])
            return resp.offsets[0]

        log_stub.CommitOffsets(
            pb.CommitOffsetsRequest(group=group, topic=t,
                                    commits=[pb.OffsetCommit(partition=0, offset=4, metadata="meta-4")]),
            timeout=TIMEOUT,
        )
        c = committed(group)
        self.assertTrue(c.HasField("offset"))
        self.assertEqual((c.offset, c.metadata), (4, "meta-4"))
        self.assertEqual(c.watermarks.log_end_offset, 10)
        self.assertEqual(c.lag_records, 10 - 4)
        self.assertGreater(c.lag_bytes, 0)

        log_stub.CommitOffsets(
            pb.CommitOffsetsRequest(group=group, topic=t, commits=[pb.OffsetCommit(partition=0, offset=10)]),
            timeout=TIMEOUT,
        )
        c = committed(group)
        self.assertEqual((c.offset, c.lag_records, c.lag_bytes), (10, 0, 0))

        never = committed(unique("never"))
        self.assertFalse(never.HasField("offset"), f"a group that never committed has offset {never.offset}")
        self.assertEqual(never.lag_records, 10, "lag of a never-committed group counts from the log start")


# ---------------------------------------------------------------- errors


BAD_TOPIC_NAMES = ["../x", "/abs", "a/b", ".", "..", "", "a" * 250, "nul\x00name", "new\nline"]


class ErrorTest(LogTestCase):
    def test_produce_unknown_topic(self):
        self.assertRpcError(lambda: self.produce(unique("missing"), value_records(1)),
                            SC.NOT_FOUND, "TOPIC_NOT_FOUND")

    def test_produce_unknown_partition(self):
        t = self.create_topic(prefix="nopart")
        self.assertRpcError(lambda: self.produce(t, value_records(1), partition=99),
                            SC.NOT_FOUND, "PARTITION_NOT_FOUND")
        self.assertEqual(self.log_end(t), 0)

    def test_fetch_past_end(self):
        t = self.create_topic(prefix="oor")
        self.produce(t, value_records(3))
        info = self.assertRpcError(lambda: self.fetch(t, 10), SC.OUT_OF_RANGE, "OFFSET_OUT_OF_RANGE",
                                   metadata_keys=("log_start_offset", "log_end_offset"))
        self.assertEqual(info.metadata["log_start_offset"], "0")
        self.assertEqual(info.metadata["log_end_offset"], "3")
        if "requested_offset" in info.metadata:
            self.assertEqual(info.metadata["requested_offset"], "10")

    def test_invalid_topic_names(self):
        before = sorted(self.topic_names())
        outside = os.path.join(DATA_DIR, "..", "x") if DATA_DIR else None
        outside_existed = outside is not None and os.path.exists(outside)
        abs_existed = os.path.exists("/abs")
        for name in BAD_TOPIC_NAMES:
            with self.subTest(name=name if len(name) < 20 else f"{name[:8]}...({len(name)} chars)"):
                self.assertRpcError(
                    lambda: admin_stub.CreateTopic(pb.CreateTopicRequest(name=name, partition_count=1),
                                                   timeout=TIMEOUT),
                    SC.INVALID_ARGUMENT, "INVALID_TOPIC_NAME",
                )
        self.assertEqual(sorted(self.topic_names()), before, "ListTopics changed after rejected names")
        if outside is not None and not outside_existed:
            self.assertFalse(os.path.exists(outside), f"{outside} was created")
        if not abs_existed:
            self.assertFalse(os.path.exists("/abs"), "/abs was created")

    def test_topic_name_longest_valid(self):
        name = unique("long")
        name += "x" * (249 - len(name))
        self.assertEqual(len(name), 249)
        self.create_topic(name)
        self.assertEqual(self.produce(name, value_records(1)).base_offset, 0)
        admin_stub.DeleteTopic(pb.DeleteTopicRequest(name=name), timeout=TIMEOUT)

    def test_corrupt_encoded_batch(self):
        t = self.create_topic(prefix="corrupt")
        self.produce(t, value_records(2))
        good = encode_batch([(b"k", b"v" * 50, [], now_ms())])
        bad_body = bytearray(good)
        bad_body[-1] ^= 0xFF  # Kafka's CRC-32C no longer matches; headers (and length) intact
        bad_header = bytearray(good)
        bad_header[0] ^= 0xFF  # frame checksum wrong, length right
        transactional = bytearray(good)
        transactional[16 + 22] |= 0x10  # attribute bit 4; both checksums resealed below
        kafka = bytes(transactional[16:])
        struct.pack_into(">I", transactional, 16 + 17, crc32c(kafka[21:]))
        v1 = bytearray(good)
        v1[8] = 1  # a frame of format version 1
        overlong = bytearray(good)
        struct.pack_into("<I", overlong, 4, len(good) + 100)  # length past the bytes sent, header resealed
        cases = {
            "100 bytes of garbage": bytes((i * 37 + 11) & 0xFF for i in range(100)),
            "bad body checksum": bytes(bad_body),
            "bad header checksum": bytes(bad_header),
            "transactional batch": reseal_header(transactional),
            "format version 1": reseal_header(v1),
            "length past the end": reseal_header(overlong),
            "truncated": good[: len(good) - 10],
        }
        for what, data in cases.items():
            with self.subTest(what):
                self.assertRpcError(
                    lambda: log_stub.Produce(pb.ProduceRequest(topic=t, partition=0, encoded_batch=data),
                                             timeout=TIMEOUT),
                    SC.INVALID_ARGUMENT, "INVALID_BATCH",
                )
                self.assertEqual(self.log_end(t), 2, "log end moved after a rejected batch")

    def test_request_too_large(self):
        limits = self.server_limits()
        size = limits.max_request_bytes + 1024
        if size > (60 << 20):
            self.skipTest(f"max_request_bytes {limits.max_request_bytes} is above this client's send limit")
        t = self.create_topic(prefix="toolarge")
        self.assertRpcError(lambda: self.produce(t, [pb.Record(value=b"\x00" * size)]),
                            SC.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE")
        self.assertEqual(self.log_end(t), 0)

    def test_record_too_large(self):
        # One record whose value alone is one byte over limits.max_batch_bytes.
        # Expected INVALID_ARGUMENT RECORD_TOO_LARGE. If the whole request is
        # also over limits.max_request_bytes, the server may reject it before
        # decoding it, with RESOURCE_EXHAUSTED REQUEST_TOO_LARGE: accepted then.
        limits = self.server_limits()
        t = self.create_topic(prefix="bigrec")
        req = pb.ProduceRequest(topic=t, partition=0, records=[pb.Record(value=b"\x00" * (limits.max_batch_bytes + 1))])
        if req.ByteSize() > (60 << 20):
            self.skipTest(f"max_batch_bytes {limits.max_batch_bytes} is above this client's send limit")
        if req.ByteSize() > limits.max_request_bytes:
            allowed = [(SC.INVALID_ARGUMENT, "RECORD_TOO_LARGE"), (SC.RESOURCE_EXHAUSTED, "REQUEST_TOO_LARGE")]
        else:
            allowed = [(SC.INVALID_ARGUMENT, "RECORD_TOO_LARGE")]
        try:
            resp = log_stub.Produce(req, timeout=TIMEOUT)
        except grpc.RpcError as e:
            info, _ = error_info(e)
            got = (e.code(), info.reason if info else None)
            self.assertIn(got, allowed, f"expected one of {[(c.name, r) for c, r in allowed]}, "
                                        f"got {describe_error(e)} (request {req.ByteSize()} bytes)")
            self.assertEqual(info.domain, DOMAIN)
        else:
            self.fail(f"expected RECORD_TOO_LARGE, got success at offset {resp.base_offset}")
        self.assertEqual(self.log_end(t), 0)


# ---------------------------------------------------------------- health, reflection


class HealthReflectionTest(LogTestCase):
    def test_health(self):
        for service in ("", "log.v1.LogService", "log.v1.AdminService"):
            with self.subTest(service=service):
                resp = health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT)
                self.assertEqual(resp.status, health_pb2.HealthCheckResponse.SERVING)

    def test_reflection_v1alpha(self):
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        for want in ("log.v1.LogService", "log.v1.AdminService", "grpc.health.v1.Health"):
            self.assertIn(want, services)
        fdp = db.FindFileContainingSymbol("log.v1.LogService")
        self.assertEqual(fdp.package, "log.v1")
        self.assertIn("LogService", [s.name for s in fdp.service])

    def test_reflection_v1alpha_describes_methods(self):
        # As grpcurl describe does: resolve the service with its dependencies.
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        for name in ("LogService", "AdminService"):
            remote = pool.FindServiceByName(f"log.v1.{name}")
            local = pb.DESCRIPTOR.services_by_name[name]
            self.assertEqual(
                sorted((m.name, m.client_streaming, m.server_streaming) for m in remote.methods),
                sorted((m.name, m.client_streaming, m.server_streaming) for m in local.methods),
            )

    def test_reflection_v1(self):
        # grpc.reflection.v1 has the same messages as v1alpha; only the service name differs.
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        reqs = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="log.v1.LogService"),
        ]
        resps = list(call(iter(reqs), timeout=TIMEOUT))
        self.assertEqual(len(resps), 2)
        names = {s.name for s in resps[0].list_services_response.service}
        self.assertTrue({"log.v1.LogService", "log.v1.AdminService", "grpc.health.v1.Health"} <= names, names)
        protos = resps[1].file_descriptor_response.file_descriptor_proto
        self.assertTrue(protos, f"no descriptor: {resps[1]}")
        files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in protos]
        self.assertIn("log.v1", [f.package for f in files])

    def test_reflection_v1alpha_raw(self):
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        req = reflection_pb2.ServerReflectionRequest(file_containing_symbol="log.v1.AdminService")
        resps = list(stub.ServerReflectionInfo(iter([req]), timeout=TIMEOUT))
        self.assertEqual(len(resps), 1)
        self.assertTrue(resps[0].file_descriptor_response.file_descriptor_proto, f"no descriptor: {resps[0]}")


# ---------------------------------------------------------------- main


def main():
    prog = unittest.main(module=__name__, exit=False, verbosity=2)
    result = prog.result
    # Count tests, not failure entries: a test with failing subtests fails once;
    # a module fixture error (not a test) counts as one failure.
    failed_ids, fixture_errors = set(), 0
    for test, _ in result.failures + result.errors:
        if isinstance(test, unittest.suite._ErrorHolder):
            fixture_errors += 1
        else:
            failed_ids.add(getattr(test, "test_case", test).id())
    failed_ids |= {t.id() for t in result.unexpectedSuccesses}
    skipped = len(result.skipped)
    passed = max(0, result.testsRun - len(failed_ids) - skipped)
    failed = len(failed_ids) + fixture_errors
    summary_file = os.environ.get("LOG_TEST_SUMMARY_FILE")
    if summary_file:
        with open(summary_file, "w") as f:
            f.write(f"{passed} {failed} {skipped}\n")
    else:
        line = f"python: {passed} passed, {failed} failed"
        if skipped:
            line += f", {skipped} skipped"
        print(line, flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
