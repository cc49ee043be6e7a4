#!/usr/bin/env python3
"""Kafka RecordBatch v2 cross-check with kafka-python (kafka.record.default_records).

    kafka_python.py gen DIR       write the fixed case set, built by kafka-python
    kafka_python.py check DIR     read every case in DIR with kafka-python
    kafka_python.py compare A B   the case sets of A and B are the same: equal
                                  JSON, and equal bytes for `codec: none`

A case is `<case>.batch` (one RecordBatch v2, from baseOffset on, baseOffset 0)
and `<case>.json` (what it holds; keys, values and header values as lowercase
hex or null). `check` parses each batch, validates its CRC-32C and compares
every field of the JSON with what kafka-python decodes; it prints one line per
case, then `ok N cases`, and exits 1 on any mismatch, naming case and field.

The case set is the same in kafka_python.py, java/Check.java and the Rust
example log-format/examples/kafka_interop.rs (see
log-format/tests/data/v2/kafka-python/README.md); keep them in step.

Only the standard library and kafka-python (with its codec modules) are used;
see requirements.txt. `compare` needs only the standard library.
"""

import gzip
import io
import json
import os
import sys

BASE = 1_700_000_000_000
NO_PRODUCER = (-1, -1, -1)
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
CODEC_NAMES = {v: k for k, v in CODEC_IDS.items()}


# ---------------------------------------------------------------- the cases


def rec(timestamp, key, value, headers=()):
    return {"timestamp": timestamp, "key": key, "value": value, "headers": list(headers)}


def keyed_100():
    return [rec(BASE + i, b"key-%03d" % i, b"value-%03d:" % i + b"payload " * 8) for i in range(100)]


def multiblock():
    # 40 x 2 KiB: several snappy (xerial, 32 KiB) and lz4 (64 KiB) blocks.
    return [rec(BASE + i, b"key-%02d" % i, ((b"record-%02d " % i) * 205)[:2048]) for i in range(40)]


def cases():
    """(name, codec, (producer_id, producer_epoch, base_sequence), records)."""
    out = [
        ("uncompressed_single", "none", NO_PRODUCER, [rec(BASE, b"key", b"value")]),
        ("keyed_100", "none", NO_PRODUCER, keyed_100()),
        ("null_keys", "none", NO_PRODUCER, [rec(BASE + i, None, b"value-%d" % i) for i in range(10)]),
        ("tombstones", "none", NO_PRODUCER, [rec(BASE + i, b"key-%d" % i, None) for i in range(10)]),
        (
            "empty_key_value",
            "none",
            NO_PRODUCER,
            [rec(BASE, b"", b""), rec(BASE, b"", None), rec(BASE, None, b"")],
        ),
        (
            "headers",
            "none",
            NO_PRODUCER,
            [
                rec(BASE, b"k0", b"v0", [("h", b"\x01\x02"), ("n", None)]),
                rec(
                    BASE + 1,
                    b"k1",
                    b"v1",
                    [("ключ", "значение".encode()), ("日本語", b""), ("emoji-🎉", b"\x00\xff")],
                ),
                rec(BASE + 2, b"k2", b"v2"),
                rec(BASE + 3, b"k3", b"v3", [("dup", b"1"), ("dup", b"2"), ("", b"empty key")]),
            ],
        ),
        (
            "large_value_1mib",
            "none",
            NO_PRODUCER,
            [rec(BASE, b"big", bytes((j * 31 + 7) & 0xFF for j in range(1 << 20)))],
        ),
        (
            "timestamps_spread",
            "none",
            NO_PRODUCER,
            [
                rec(t, None, b"t%d" % i)
                for i, t in enumerate(
                    [BASE, BASE - 1, BASE + 1000, BASE - 86_400_000, BASE + (1 << 40), 0, BASE + 5]
                )
            ],
        ),
        (
            "idempotent",
            "none",
            (42, 3, 17),
            [rec(BASE + i, b"k%d" % i, b"v%d" % i) for i in range(5)],
        ),
    ]
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        out.append(("codec_" + codec, codec, NO_PRODUCER, keyed_100()))
    for codec in ("gzip", "snappy", "lz4", "zstd"):
        out.append(("codec_%s_multiblock" % codec, codec, NO_PRODUCER, multiblock()))
    return out


# ---------------------------------------------------------------- JSON


def hexor(b):
    return None if b is None else bytes(b).hex()


def case_json(codec, producer, records):
    return {
        "codec": codec,
        "producer_id": producer[0],
        "producer_epoch": producer[1],
        "base_sequence": producer[2],
        "base_timestamp": records[0]["timestamp"],
        "max_timestamp": max(r["timestamp"] for r in records),
        "records": [
            {
                "offset_delta": i,
                "timestamp": r["timestamp"],
                "key": hexor(r["key"]),
                "value": hexor(r["value"]),
                "headers": [{"key": k, "value": hexor(v)} for k, v in r["headers"]],
            }
            for i, r in enumerate(records)
        ],
    }



def dump_json(obj):
    """The layout all three implementations write: one record a line."""

    def d(v):
        return json.dumps(v, ensure_ascii=False, separators=(", ", ": "))

    head = ", ".join(
        "%s: %s" % (d(k), d(obj[k]))
        for k in ("codec", "producer_id", "producer_epoch", "base_sequence", "base_timestamp", "max_timestamp")
    )
    lines = ",\n".join("  " + d(r) for r in obj["records"])
    return '{%s,\n "records": [\n%s\n]}\n' % (head, lines)


# ---------------------------------------------------------------- gen


def _gzip_encode_mtime0(payload, compresslevel=None):
    # kafka.codec.gzip_encode, with the gzip header's MTIME pinned to 0
    # (kafka-python writes the wall clock there), so that gen is deterministic.
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="w", compresslevel=compresslevel or 9, mtime=0) as f:
        f.write(payload)
    return buf.getvalue()


def gen(out_dir):
    from kafka.record import default_records
    from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

    default_records.gzip_encode = _gzip_encode_mtime0
    os.makedirs(out_dir, exist_ok=True)
    n = 0
    for name, codec, producer, records in cases():
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=CODEC_IDS[codec],
            is_transactional=False,
            producer_id=producer[0],
            producer_epoch=producer[1],
            base_sequence=producer[2],
            batch_size=16 << 20,
        )
        for i, r in enumerate(records):
            meta = builder.append(i, timestamp=r["timestamp"], key=r["key"], value=r["value"], headers=r["headers"])
            if meta is None:
                sys.exit("gen %s: record %d did not fit the batch" % (name, i))
        data = bytes(builder.build())
        # kafka-python sends a batch uncompressed when compression did not
        # make it smaller; the JSON says what was written, not what was asked.
        written = CODEC_NAMES[DefaultRecordBatch(data).compression_type]
        if written != codec:
            print("note %s: asked for %s, kafka-python wrote %s" % (name, codec, written))
        with open(os.path.join(out_dir, name + ".batch"), "wb") as f:
            f.write(data)
        with open(os.path.join(out_dir, name + ".json"), "w", encoding="utf-8") as f:
            f.write(dump_json(case_json(written, producer, records)))
        print("gen  %-28s %4d records  %-6s %8d bytes" % (name, len(records), written, len(data)))
        n += 1
    print("ok %d cases" % n)


# ---------------------------------------------------------------- check


def short(v):
    s = repr(v)
    return s if len(s) <= 80 else "%s... (%d chars)" % (s[:72], len(s))


def list_cases(d):
    names = sorted(f[: -len(".json")] for f in os.listdir(d) if f.endswith(".json"))
    batches = sorted(f[: -len(".batch")] for f in os.listdir(d) if f.endswith(".batch"))
    problems = ["%s: .batch without .json" % b for b in batches if b not in names]
    problems += ["%s: .json without .batch" % n for n in names if n not in batches]
    return names, problems


def check_case(path_stem, want):
    from kafka.record.default_records import DefaultRecordBatch

    errs = []

    def cmp(field, expected, got):
        if expected != got:
            errs.append("%s: expected %s, got %s" % (field, short(expected), short(got)))

    with open(path_stem + ".batch", "rb") as f:
        data = f.read()
    if len(data) < 61:
        return ["batch: %d bytes, shorter than a RecordBatch v2 header (61)" % len(data)], None
    if data[16] != 2:
        return ["magic: expected 2, got %d" % data[16]], None
    batch = DefaultRecordBatch(data)
    cmp("size_in_bytes", len(data), batch.size_in_bytes)
    cmp("base_offset", 0, batch.base_offset)
    if not batch.validate_crc():
        errs.append("crc: CRC-32C does not validate (stored %08x)" % batch.crc)
    if batch.is_control_batch:
        errs.append("attributes: a control batch")
    cmp("codec", want.get("codec"), CODEC_NAMES.get(batch.compression_type, batch.compression_type))
    cmp("producer_id", want.get("producer_id"), batch.producer_id)
    cmp("producer_epoch", want.get("producer_epoch"), batch.producer_epoch)
    cmp("base_sequence", want.get("base_sequence"), batch.base_sequence)
    cmp("base_timestamp", want.get("base_timestamp"), batch.first_timestamp)
    cmp("max_timestamp", want.get("max_timestamp"), batch.max_timestamp)
    records = want.get("records") or []
    cmp("record_count", len(records), batch.records_count)
    if records:
        cmp("last_offset_delta", records[-1].get("offset_delta"), batch.last_offset_delta)
    try:
        got = list(batch)
    except Exception as e:  # CorruptRecordError, codec errors
        errs.append("records: kafka-python cannot read them: %s: %s" % (type(e).__name__, e))
        return errs, batch
    cmp("records (count)", len(records), len(got))
    for i, (w, g) in enumerate(zip(records, got)):
        p = "records[%d]." % i
        cmp(p + "offset_delta", w.get("offset_delta"), g.offset - batch.base_offset)
        cmp(p + "timestamp", w.get("timestamp"), g.timestamp)
        cmp(p + "key", w.get("key"), hexor(g.key))
        cmp(p + "value", w.get("value"), hexor(g.value))
        wh = [(h.get("key"), h.get("value")) for h in w.get("headers", [])]
        gh = [(k, hexor(v)) for k, v in g.headers]
        cmp(p + "headers", wh, gh)
    return errs, batch


def check(d):
    names, problems = list_cases(d)
    for p in problems:
        print("FAIL " + p)
    if not names:
        print("FAIL %s: no cases (*.json + *.batch)" % d)
        sys.exit(1)
    failed = len(problems)
    for name in names:
        with open(os.path.join(d, name + ".json"), encoding="utf-8") as f:
            want = json.load(f)
        try:
            errs, batch = check_case(os.path.join(d, name), want)
        except Exception as e:
            errs, batch = ["batch: kafka-python cannot parse it: %s: %s" % (type(e).__name__, e)], None
        if errs:
            failed += 1
            for e in errs:
                print("FAIL %s: %s" % (name, e))
        else:
            print(
                "ok   %-28s %4d records  %-6s %8d bytes"
                % (name, batch.records_count, CODEC_NAMES[batch.compression_type], batch.size_in_bytes)
            )
    if failed:
        print("FAIL %d of %d cases" % (failed, len(names) + len(problems)))
        sys.exit(1)
    print("ok %d cases" % len(names))


# ---------------------------------------------------------------- compare


def compare(fresh, committed):
    """Fresh output of a gen against committed fixtures: the same cases, the
    same JSON (decoded, not text), and the same bytes where uncompressed
    (compressed bytes may differ between library versions)."""
    a, pa = list_cases(fresh)
    b, pb = list_cases(committed)
    diffs = pa + pb
    diffs += ["%s: generated, not in %s" % (n, committed) for n in a if n not in b]
    diffs += ["%s: in %s, no longer generated" % (n, committed) for n in b if n not in a]
    same = 0
    for name in (n for n in a if n in b):
        docs = []
        for d in (fresh, committed):
            with open(os.path.join(d, name + ".json"), encoding="utf-8") as f:
                docs.append(json.load(f))
        if docs[0] != docs[1]:
            fields = sorted(k for k in set(docs[0]) | set(docs[1]) if docs[0].get(k) != docs[1].get(k))
            diffs.append("%s: JSON differs in %s" % (name, ", ".join(fields)))
            continue
        if docs[0].get("codec") == "none":
            blobs = []
            for d in (fresh, committed):
                with open(os.path.join(d, name + ".batch"), "rb") as f:
                    blobs.append(f.read())
            if blobs[0] != blobs[1]:
                diffs.append("%s: uncompressed batch bytes differ" % name)
                continue
        same += 1
    for d in diffs:
        print("DIFF " + d)
    if diffs:
        print("FAIL %s differs from %s in %d cases" % (committed, fresh, len(diffs)))
        sys.exit(1)
    print("ok %d cases the same" % same)


def main(argv):
    if len(argv) == 3 and argv[1] == "gen":
        gen(argv[2])
    elif len(argv) == 3 and argv[1] == "check":
        check(argv[2])
    elif len(argv) == 4 and argv[1] == "compare":
        compare(argv[2], argv[3])
    else:
        sys.exit("usage: kafka_python.py gen DIR | check DIR | compare FRESH COMMITTED")


if __name__ == "__main__":
    main(sys.argv)
