#!/usr/bin/env python3
"""Codec fixtures written, and our compressed samples read back, by Python
implementations other than ours (for log-format's codec tests).

    gen_fixtures.py gen DIR     write python-*.bin and cli-*.bin into DIR
    gen_fixtures.py check DIR   decode DIR/ours-{gzip,snappy,lz4,zstd}.bin
                                (written by the ignored Rust test
                                `codec::tests::export_samples`) with
                                kafka-python's decoders

Every fixture is the same text, `orders_text()`: 1000 JSON order events,
one per line (the Rust tests build the same bytes). Needs, in a venv:
kafka-python==3.0.12 python-snappy==0.7.3 cramjam==2.14.0 lz4==4.4.5
zstandard==0.25.0, and the `lz4` and `zstd` command-line tools.
"""
import pathlib
import subprocess
import sys

import lz4.frame
import snappy
from kafka import codec as kafka_codec

LINES = 1000


def orders_text(lines=LINES):
    out = []
    for n in range(lines):
        cents = (n * 7919) % 100_000
        out.append(
            '{"event":"ORDER_PLACED","orderId":%d,"amount":%d.%02d,"timestamp":%d}\n'
            % (100_000 + n, cents // 100, cents % 100, 1_700_000_000_000 + n * 250)
        )
    return "".join(out).encode()


def cli(args, data):
    return subprocess.run(args, input=data, stdout=subprocess.PIPE, check=True).stdout


def gen(out_dir):
    text = orders_text()
    fixtures = {
        # What kafka-python producers write for each codec.
        "python-gzip.bin": kafka_codec.gzip_encode(text),
        "python-snappy.bin": kafka_codec.snappy_encode(text),  # xerial framing
        "python-lz4.bin": kafka_codec.lz4_encode(text),  # independent blocks, content size
        "python-zstd.bin": kafka_codec.zstd_encode(text),
        # Raw snappy, as older librdkafka wrote it.
        "python-snappy-raw.bin": snappy.compress(text),
        # liblz4's defaults (linked blocks, content size), as librdkafka writes.
        "python-lz4-linked.bin": lz4.frame.compress(text),
        # The reference command-line tools: 4 MiB blocks with block and
        # content checksums; zstd at level 19 with a content checksum.
        "cli-lz4.bin": cli(["lz4", "-q", "-c", "-BX", "--content-size"], text),
        "cli-zstd.bin": cli(["zstd", "-q", "-c", "-19", "--check"], text),
    }
    for name, data in fixtures.items():
        (out_dir / name).write_bytes(data)
        print(f"{name}: {len(data)} bytes")


def check(in_dir):
    text = orders_text()
    decoders = {
        "gzip": kafka_codec.gzip_decode,
        "snappy": kafka_codec.snappy_decode,
        "lz4": kafka_codec.lz4_decode,
        "zstd": kafka_codec.zstd_decode,
    }
    failed = False
    for name, decode in decoders.items():
        data = (in_dir / f"ours-{name}.bin").read_bytes()
        ok = decode(data) == text
        failed |= not ok
        print(f"kafka-python reads ours-{name}.bin: {'ok' if ok else 'MISMATCH'}")
    return 1 if failed else 0


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("gen", "check"):
        sys.exit(__doc__)
    path = pathlib.Path(sys.argv[2])
    if sys.argv[1] == "gen":
        gen(path)
        return 0
    return check(path)


if __name__ == "__main__":
    sys.exit(main())
