"""What the Kafka client suites share (run.sh runs them): the addresses of
the server under test, the gRPC side (stubs generated from
proto/log/v1/log.proto into PYTHONPATH by run.sh), the stored batches read
back over gRPC, expected failures, and the runner that writes the counts.

Environment (run.sh sets it):
    KAFKA_BOOTSTRAP        host:port of log-server's Kafka listener
    LOG_SERVER_ADDR        host:port of its gRPC listener
    LOG_TEST_SUMMARY_FILE  where to write "passed failed skipped"; when unset
                           the last line printed is "NAME: N passed, M failed"
"""

import functools
import os
import struct
import sys
import time
import unittest
import uuid
import zlib

import grpc
from google.protobuf import timestamp_pb2
from kafka.record.default_records import DefaultRecordBatch

from log.v1 import log_pb2 as pb
from log.v1 import log_pb2_grpc

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP", "")
GRPC_ADDR = os.environ.get("LOG_SERVER_ADDR", "")
TIMEOUT = 20.0  # seconds: any one wait of a test
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# Kafka's attribute bits 0-2 of a RecordBatch v2.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
FRAME_HEADER_LEN = 16
HEADER_LEN = 77  # our frame header + Kafka's 61-byte batch header

_channel = None
log_stub = None
admin_stub = None


def setUpModule():  # noqa: N802 - unittest's name
    global _channel, log_stub, admin_stub
    if not BOOTSTRAP or not GRPC_ADDR:
        raise RuntimeError("KAFKA_BOOTSTRAP and LOG_SERVER_ADDR must be set (run.sh sets them)")
    _channel = grpc.insecure_channel(GRPC_ADDR, options=[("grpc.max_receive_message_length", 64 << 20)])
    grpc.channel_ready_future(_channel).result(timeout=TIMEOUT)
    log_stub = log_pb2_grpc.LogServiceStub(_channel)
    admin_stub = log_pb2_grpc.AdminServiceStub(_channel)


def tearDownModule():  # noqa: N802
    if _channel is not None:
        _channel.close()


def unique(prefix):
    """A fresh topic or group name."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms():
    return time.time_ns() // 1_000_000


def ts_ms(millis):
    return timestamp_pb2.Timestamp(seconds=millis // 1000, nanos=(millis % 1000) * 1_000_000)


def ms_of(ts):
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def payload(i, tag):
    """The value of record i of a test: text with a non-ASCII letter, and
    long enough to compress (librdkafka sends a batch that compression
    would not make smaller uncompressed)."""
    return f"value {i} {tag} \u00e9 ".encode() + b"abcdefgh" * 64


# ---------------------------------------------------------------- gRPC side


def grpc_records(topic, partition=0, offset=0, until=None):
    """Every durable record of a partition from offset, over gRPC Fetch
    (RECORD_FORMAT_RECORDS): [(offset, key, value, [(hkey, hval)], timestamp_ms)]."""
    out = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        resp = log_stub.Fetch(
            pb.FetchRequest(topic=topic, partition=partition, position=pb.Position(offset=offset),
                            format=pb.RECORD_FORMAT_RECORDS),
            timeout=TIMEOUT)
        for r in resp.records:
            out.append((
                r.offset,
                r.key if r.HasField("key") else None,
                r.value if r.HasField("value") else None,
                [(h.key, h.value if h.HasField("value") else None) for h in r.headers],
                ms_of(r.timestamp),
            ))
        offset = resp.next_offset
        end = resp.watermarks.durable_end_offset if until is None else until
        if offset >= end or time.monotonic() > deadline:
            return out


def grpc_batches(topic, partition=0):
    """Every stored batch of a partition, over gRPC Fetch
    (RECORD_FORMAT_ENCODED_BATCHES), decoded by kafka-python:
    [dict(base_offset, count, compression, producer_id, producer_epoch, base_sequence)]."""
    out = []
    offset = 0
    while True:
        resp = log_stub.Fetch(
            pb.FetchRequest(topic=topic, partition=partition, position=pb.Position(offset=offset),
                            format=pb.RECORD_FORMAT_ENCODED_BATCHES),
            timeout=TIMEOUT)
        buf = resp.encoded_batches
        pos = 0
        while pos < len(buf):
            fcrc, length = struct.unpack_from("<II", buf, pos)
            assert fcrc == zlib.crc32(buf[pos + 4 : pos + HEADER_LEN]), f"frame crc at {pos}"
            batch = DefaultRecordBatch(bytes(buf[pos + FRAME_HEADER_LEN : pos + length]))
            assert batch.validate_crc(), f"kafka crc at {pos}"
            records = list(batch)
            if not out or batch.base_offset > out[-1]["base_offset"]:
                out.append(dict(base_offset=batch.base_offset, count=len(records),
                                compression=batch.compression_type, producer_id=batch.producer_id,
                                producer_epoch=batch.producer_epoch, base_sequence=batch.base_sequence))
            pos += length
        if resp.next_offset <= offset or resp.next_offset >= resp.watermarks.durable_end_offset:
            return out
        offset = resp.next_offset


def grpc_produce(topic, records, partition=0):
    """records: [(key|None, value|None, [(hkey, hval|None)], timestamp_ms)]; the base offset."""
    msgs = []
    for key, value, headers, ts in records:
        r = pb.Record(headers=[pb.Header(key=k, value=v) if v is not None else pb.Header(key=k)
                               for k, v in headers],
                      timestamp=ts_ms(ts))
        if key is not None:
            r.key = key
        if value is not None:
            r.value = value
        msgs.append(r)
    resp = log_stub.Produce(pb.ProduceRequest(topic=topic, partition=partition, records=msgs,
                                              ack=pb.ACK_DURABLE), timeout=TIMEOUT)
    return resp.base_offset


def grpc_create_topic(name, partitions=1):
    admin_stub.CreateTopic(pb.CreateTopicRequest(name=name, partition_count=partitions), timeout=TIMEOUT)
    return name


def grpc_committed(group, topic, partition=0):
    """(offset, metadata) committed by group over gRPC, or None."""
    resp = log_stub.GetCommittedOffsets(
        pb.GetCommittedOffsetsRequest(group=group, topic=topic, partitions=[partition]), timeout=TIMEOUT)
    for c in resp.offsets:
        if c.partition == partition and c.HasField("offset"):
            return c.offset, c.metadata
    return None


def grpc_topic_names():
    return [t.name for t in admin_stub.ListTopics(pb.ListTopicsRequest(page_size=1000), timeout=TIMEOUT).topics]


# ---------------------------------------------------------------- the runner


def expected_failure(reason):
    """A test that fails because of a known server bug (reason): it is
    reported as expected, and as a failure once it passes (fixed: remove the
    mark)."""
    def mark(fn):
        @functools.wraps(fn)
        def wrapper(self, *args, **kwargs):
            print(f"\n  EXPECTED FAILURE {self.id()}: {reason}", file=sys.stderr, flush=True)
            return fn(self, *args, **kwargs)
        return unittest.expectedFailure(wrapper)
    return mark


def run(name):
    """Runs the calling module's tests; writes "passed failed skipped"
    (expected failures count as skipped)."""
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    result = prog.result
    failed_ids, fixture_errors = set(), 0
    for test, _ in result.failures + result.errors:
        if isinstance(test, unittest.suite._ErrorHolder):
            fixture_errors += 1
        else:
            failed_ids.add(getattr(test, "test_case", test).id())
    failed_ids |= {t.id() for t in result.unexpectedSuccesses}
    skipped = len(result.skipped) + len(result.expectedFailures)
    passed = max(0, result.testsRun - len(failed_ids) - skipped)
    failed = len(failed_ids) + fixture_errors
    for test, reason in result.skipped:
        print(f"SKIP {test.id()}: {reason}", flush=True)
    for test, _ in result.expectedFailures:
        print(f"EXPECTED FAILURE {test.id()}", flush=True)
    summary_file = os.environ.get("LOG_TEST_SUMMARY_FILE")
    if summary_file:
        with open(summary_file, "w") as f:
            f.write(f"{passed} {failed} {skipped}\n")
    line = f"{name}: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line, flush=True)
    return 0 if failed == 0 and result.testsRun > 0 else 1
