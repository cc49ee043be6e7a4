"""Consumer groups with real clients (run.sh runs it): members of every
client kind (confluent-kafka, kafka-python, the Java KafkaConsumer) share a
topic's partitions; one killed with SIGKILL has its partitions moved to the
others within the session timeout, and with commit-after-process every
record is processed at least once; with the cooperative-sticky assignor a
member joining takes partitions over without any record processed by two
members; a restarting static member gets its partitions back without a
rebalance; a server restart under a running group loses no committed
offset; Kafka's own kafka-consumer-groups tool describes the group.

Each member is a process of its own (group_member.py, java/GroupMember.java)
printing what it does. Environment, besides kafka_common's:
    JAVA_CLASSPATH      classpath of kafka-clients (and kafka-tools), when java
                        can run the Java members and tools
    LOG_SERVER_BIN      the server binary, for the restart test
    RUST_GROUP_MEMBER   log-client's `group` example (a GroupConsumer over
                        gRPC), when built
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_common as kc
from kafka_common import setUpModule, tearDownModule  # noqa: F401 - unittest hooks

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_CP = os.environ.get("JAVA_CLASSPATH", "")
SERVER_BIN = os.environ.get("LOG_SERVER_BIN", "")
RUST_MEMBER = os.environ.get("RUST_GROUP_MEMBER", "")
SESSION_S = 6.0  # group_member.py's session.timeout.ms
SLACK_S = 15.0  # a rejoin and a rebalance on top of the session timeout


class Member:
    """A member process and the lines it printed, with when."""

    def __init__(self, kind, bootstrap, group, topic, name, assignor="range", instance=None,
                 sleep_ms=5):
        self.kind, self.name = kind, name
        if kind == "java":
            cmd = ["java", "-cp", JAVA_CP, os.path.join(HERE, "java", "GroupMember.java"),
                   bootstrap, group, topic, name, assignor, str(sleep_ms)]
        elif kind == "rust":
            cmd = [RUST_MEMBER, group, topic, f"http://{kc.GRPC_ADDR}", name]
        else:
            cmd = [sys.executable, os.path.join(HERE, "group_member.py"), kind, bootstrap, group,
                   topic, name, "--assignor", assignor, "--sleep-ms", str(sleep_ms)]
            if instance:
                cmd += ["--instance", instance]
        self.err = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.lines = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append((time.time(), line.strip()))

    def events(self):
        with self.lock:
            return list(self.lines)

    def owned(self):
        owned = set()
        for _, line in self.events():
            kind, _, rest = line.partition(" ")
            if kind not in ("ADD", "REVOKE"):
                continue
            ps = {int(p) for p in rest.split(",") if p}
            if kind == "ADD":
                owned |= ps
            else:
                owned -= ps
        return owned

    def recs(self):
        out = []
        for _, line in self.events():
            if line.startswith("REC "):
                _, p, off, t = line.split()
                out.append((int(p), int(off), float(t)))
        return out

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=5)
        self.proc.stdout.close()

    def stderr_tail(self):
        self.err.seek(0)
        return "".join(self.err.readlines()[-20:])


def wait_for(what, cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def produce(bootstrap, topic, partitions, per_partition, start=0):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(start, start + per_partition):
        for part in range(partitions):
            p.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=part)
    assert p.flush(60) == 0, "records not delivered"


def create_topic(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(timeout=30)


def processed(members):
    return {(p, off) for m in members for p, off, _ in m.recs()}


def every(partitions, per_partition):
    return {(p, off) for p in range(partitions) for off in range(per_partition)}


class GroupTests(unittest.TestCase):
    def setUp(self):
        self.members = []

    def tearDown(self):
        failed = any(e for e in self._outcome.result.failures + self._outcome.result.errors
                     if e[0] is self)
        for m in self.members:
            m.stop()
            if failed:
                print(f"--- {m.name} ({m.kind}) stderr:\n{m.stderr_tail()}", file=sys.stderr)

    def member(self, *args, **kw):
        m = Member(*args, **kw)
        self.members.append(m)
        return m

    def test_members_of_every_client_share_partitions_and_killed_ones_move(self):
        topic, group = kc.unique("grp"), kc.unique("g")
        create_topic(kc.BOOTSTRAP, topic, 8)
        produce(kc.BOOTSTRAP, topic, 8, 100)
        kinds = ["confluent", "kafka-python"]
        kinds.append("java" if JAVA_CP else "confluent")
        kinds.append("rust" if RUST_MEMBER else "confluent")
        if not JAVA_CP or not RUST_MEMBER:
            print(f"\n  (java: {bool(JAVA_CP)}, rust member: {bool(RUST_MEMBER)}; "
                  "a confluent member instead of each missing one)", file=sys.stderr)
        members = [self.member(k, kc.BOOTSTRAP, group, topic, f"m{i}-{k}", sleep_ms=10)
                   for i, k in enumerate(kinds)]
        wait_for("the partitions spread over the four members",
                 lambda: all(m.owned() for m in members)
                 and set().union(*(m.owned() for m in members)) == set(range(8))
                 and sum(len(m.recs()) for m in members) >= 40, 90)
        alive = list(members)
        # kafka-python's member dies silently (its session expires); the
        # Rust member's gRPC stream dies with its process (it is out at once).
        for victim, batch in ((members[1], 1), (members[3], 2)):
            wait_for(f"{victim.name} owning partitions", lambda v=victim: v.owned(), 90)
            lost = victim.owned()
            killed_at = time.time()
            victim.kill()
            alive.remove(victim)
            produce(kc.BOOTSTRAP, topic, 8, 100, start=batch * 100)
            wait_for("every record processed at least once",
                     lambda b=batch: every(8, (b + 1) * 100) <= processed(members), 120)
            moved = [t for m in alive for p, _, t in m.recs() if p in lost and t > killed_at]
            took = min(moved) - killed_at
            print(f"\n  partitions {sorted(lost)} of the killed {victim.kind} member moved after "
                  f"{took:.1f} s", file=sys.stderr)
            self.assertLessEqual(took, SESSION_S + SLACK_S)

    def test_cooperative_rebalance_hands_partitions_over_without_double_processing(self):
        topic, group = kc.unique("coop"), kc.unique("g")
        create_topic(kc.BOOTSTRAP, topic, 6)
        produce(kc.BOOTSTRAP, topic, 6, 100)
        a = self.member("confluent", kc.BOOTSTRAP, group, topic, "a", assignor="cooperative-sticky")
        b = self.member("confluent", kc.BOOTSTRAP, group, topic, "b", assignor="cooperative-sticky")
        wait_for("two members consuming", lambda: a.owned() and b.owned()
                 and len(a.recs()) + len(b.recs()) >= 30, 90)
        third = "java" if JAVA_CP else "confluent"
        c = self.member(third, kc.BOOTSTRAP, group, topic, "c", assignor="cooperative-sticky")
        produce(kc.BOOTSTRAP, topic, 6, 100, start=100)
        wait_for("the third member owning partitions", lambda: c.owned(), 90)
        wait_for("every record processed", lambda: every(6, 200) <= processed([a, b, c]), 120)
        by = {}
        for m in (a, b, c):
            for p, off, _ in m.recs():
                by.setdefault((p, off), set()).add(m.name)
        twice = sorted(k for k, names in by.items() if len(names) > 1)
        self.assertEqual(twice, [], "records processed by two live members")
        self.assertEqual(a.owned() | b.owned() | c.owned(), set(range(6)))
        self.assertFalse(a.owned() & b.owned() or a.owned() & c.owned() or b.owned() & c.owned())

    def test_a_restarting_static_member_gets_its_partitions_back_without_a_rebalance(self):
        topic, group = kc.unique("static"), kc.unique("g")
        create_topic(kc.BOOTSTRAP, topic, 4)
        produce(kc.BOOTSTRAP, topic, 4, 50)
        leader = self.member("confluent", kc.BOOTSTRAP, group, topic, "s1", instance="one")
        wait_for("the first member owning every partition", lambda: len(leader.owned()) == 4, 60)
        follower = self.member("confluent", kc.BOOTSTRAP, group, topic, "s2", instance="two")
        wait_for("both members owning partitions",
                 lambda: follower.owned() and len(leader.owned()) == 2, 60)
        theirs = follower.owned()
        seen = len(leader.events())
        follower.kill()
        again = self.member("confluent", kc.BOOTSTRAP, group, topic, "s2b", instance="two")
        wait_for("the restarted member owning partitions", lambda: again.owned(), 30)
        self.assertEqual(again.owned(), theirs)
        time.sleep(1.0)
        moves = [line for _, line in leader.events()[seen:] if not line.startswith("REC ")]
        self.assertEqual(moves, [], "the other member saw a rebalance")

    @unittest.skipUnless(JAVA_CP, "no java: kafka-consumer-groups is a Java tool")
    def test_kafka_consumer_groups_describes_members_assignment_and_lag(self):
        topic, group = kc.unique("desc"), kc.unique("g")
        create_topic(kc.BOOTSTRAP, topic, 2)
        produce(kc.BOOTSTRAP, topic, 2, 20)
        m = self.member("confluent", kc.BOOTSTRAP, group, topic, "d1")
        wait_for("the member done with every record",
                 lambda: every(2, 20) <= processed([m]), 60)
        produce(kc.BOOTSTRAP, topic, 2, 5, start=20)
        time.sleep(1.0)
        tool = subprocess.run(
            ["java", "-cp", JAVA_CP, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
             "--bootstrap-server", kc.BOOTSTRAP, "--describe", "--group", group],
            capture_output=True, text=True, timeout=120)
        print(tool.stdout, file=sys.stderr)
        self.assertEqual(tool.returncode, 0, tool.stderr[-2000:])
        rows = [line.split() for line in tool.stdout.splitlines() if line.startswith(group)]
        self.assertEqual(sorted(int(r[2]) for r in rows), [0, 1], tool.stdout)
        for r in rows:
            # GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
            self.assertEqual(r[1], topic)
            current, end, lag = int(r[3]), int(r[4]), int(r[5])
            self.assertEqual(end, 25)
            self.assertEqual(lag, end - current)
            self.assertNotEqual(r[6], "-", "a member owns each partition")
            self.assertEqual(r[8], "d1")


def own_server(data_dir, grpc="127.0.0.1:0", kafka="127.0.0.1:0"):
    """A server of this test's own: (process, gRPC address, Kafka address)."""
    log = tempfile.NamedTemporaryFile(mode="w+", delete=False)
    proc = subprocess.Popen([SERVER_BIN, "--listen", grpc, "--kafka-listen", kafka,
                             "--data-dir", data_dir], stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(log.name) as f:
            text = f.read()
        g = re.search(r"log-server: listening on (\S+)", text)
        k = re.search(r"kafka listener serving local=(\S+)", text)
        if g and k and "recovery done" in text:
            return proc, g.group(1), k.group(1)
        time.sleep(0.05)
    proc.kill()
    with open(log.name) as f:
        raise AssertionError("the server did not start:\n" + f.read()[-2000:])


def committed(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=30)
        return [tp.offset for tp in got]
    finally:
        c.close()


@unittest.skipUnless(SERVER_BIN, "LOG_SERVER_BIN not set")
class RestartTests(unittest.TestCase):
    def test_a_server_restart_under_a_running_group_loses_no_commit(self):
        data = tempfile.mkdtemp(prefix="groups-restart-")
        proc, grpc, kafka = own_server(data)
        members = []
        try:
            topic, group = kc.unique("restart"), kc.unique("g")
            create_topic(kafka, topic, 4)
            produce(kafka, topic, 4, 50)
            members = [Member("confluent", kafka, group, topic, f"r{i}") for i in range(2)]
            wait_for("every record processed", lambda: every(4, 50) <= processed(members), 90)
            time.sleep(1.0)
            before = committed(kafka, group, topic, 4)
            self.assertEqual(before, [50] * 4)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=60), 0)
            proc, _, _ = own_server(data, grpc, kafka)
            self.assertEqual(committed(kafka, group, topic, 4), before, "a commit was lost")
            produce(kafka, topic, 4, 50, start=50)
            wait_for("the members back, every new record processed",
                     lambda: every(4, 100) <= processed(members), 120)
            wait_for("the new commits", lambda: committed(kafka, group, topic, 4) == [100] * 4, 60)
        finally:
            for m in members:
                m.stop()
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    kc.run("groups")
