"""One member of a consumer group, as an application runs it: subscribe,
process each record, commit after processing (synchronously, once per
poll), until SIGTERM (then close, which leaves the group). test_groups.py
starts several, kills some with SIGKILL, and reads what they print.

Usage: group_member.py CLIENT BOOTSTRAP GROUP TOPIC NAME [--assignor A]
                       [--instance ID] [--sleep-ms N]
    CLIENT   confluent (librdkafka) or kafka-python

Prints one line per event, flushed at once:
    ADD p,p,...      partitions assigned (for an eager assignor: all of them)
    REVOKE p,p,...   partitions revoked (or lost)
    REC p offset t   a record processed (t: time.time())
    COMMITFAIL why   a commit refused (a rebalance ran meanwhile)
"""

import argparse
import signal
import sys
import time

SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def parts(partitions):
    return ",".join(str(p) for p in sorted(partitions))


def main():
    ap = argparse.ArgumentParser()
    for name in ["client", "bootstrap", "group", "topic", "name"]:
        ap.add_argument(name)
    ap.add_argument("--assignor", default="range")
    ap.add_argument("--instance", default=None)
    ap.add_argument("--sleep-ms", type=int, default=0)
    args = ap.parse_args()
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    pause = args.sleep_ms / 1000.0
    if args.client == "confluent":
        run_confluent(args, running, pause)
    else:
        run_kafka_python(args, running, pause)


def run_confluent(args, running, pause):
    from confluent_kafka import Consumer, KafkaException

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.name,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": HEARTBEAT_MS,
        "partition.assignment.strategy": args.assignor,
    }
    if args.instance:
        conf["group.instance.id"] = args.instance
    c = Consumer(conf)
    c.subscribe(
        [args.topic],
        on_assign=lambda _c, ps: out("ADD " + parts(p.partition for p in ps)),
        on_revoke=lambda _c, ps: out("REVOKE " + parts(p.partition for p in ps)),
        on_lost=lambda _c, ps: out("REVOKE " + parts(p.partition for p in ps)),
    )
    while running[0]:
        msgs = c.consume(num_messages=20, timeout=0.2)
        done = False
        for m in msgs:
            if m.error():
                continue
            time.sleep(pause)
            out(f"REC {m.partition()} {m.offset()} {time.time()}")
            done = True
        if done:
            try:
                c.commit(asynchronous=False)
            except KafkaException as e:
                out(f"COMMITFAIL {e}")
    c.close()


def run_kafka_python(args, running, pause):
    from kafka import KafkaConsumer
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import CommitFailedError, KafkaError

    class Listener(ConsumerRebalanceListener):
        def on_partitions_revoked(self, revoked):
            out("REVOKE " + parts(tp.partition for tp in revoked))

        def on_partitions_assigned(self, assigned):
            out("ADD " + parts(tp.partition for tp in assigned))

    c = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=SESSION_TIMEOUT_MS,
        heartbeat_interval_ms=HEARTBEAT_MS,
    )
    c.subscribe([args.topic], listener=Listener())
    while running[0]:
        batch = c.poll(timeout_ms=200, max_records=20)
        done = False
        for tp, msgs in batch.items():
            for m in msgs:
                time.sleep(pause)
                out(f"REC {tp.partition} {m.offset} {time.time()}")
                done = True
        if done:
            try:
                c.commit()
            except (CommitFailedError, KafkaError) as e:
                out(f"COMMITFAIL {e}")
    c.close()


if __name__ == "__main__":
    main()
