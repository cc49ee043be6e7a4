#!/usr/bin/env bash
# Real Kafka clients nobody here wrote against the real log-server binary's
# Kafka listener: kafka-python and confluent-kafka (librdkafka) from PyPI,
# Debian's kcat, and the Java client (org.apache.kafka:kafka-clients).
#
# Usage: run.sh [SERVER_BIN]     (default: $REPO/target/debug/log-server)
#
# Creates (or reuses) a venv at $REPO/target/kafka-venv (requirements.txt),
# generates the gRPC stubs from proto/log/v1/log.proto into a temp dir,
# starts the server with --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0
# and a fresh data dir (both ports read back from its stderr), then runs:
#   - test_kafka_python.py and test_confluent.py (each also reads over gRPC
#     what it produced over Kafka, and the other way round);
#   - kcat -L, -P, -C -o beginning -e (kcat installed with apt-get when
#     missing; skipped, saying why, when apt-get is not there or the
#     install fails);
#   - java/KafkaClients.java (skipped, saying why, only when java or mvn is
#     missing or the download of kafka-clients fails);
#   - Kafka's ProducerPerformance and ConsumerPerformance (kafka-tools), then
#     test_groups.py: consumer groups with members of every client kind
#     (group_member.py, java/GroupMember.java), a kill -9, a cooperative
#     rebalance, a static member's restart, a server restart (its own server)
#     and kafka-consumer-groups --describe (the Java parts skipped, saying
#     why, without java);
# then stops the server with SIGTERM and requires exit status 0 (one more
# test). The last line printed is "kafka-clients: N passed, M failed"
# (", K skipped" when some were).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
SERVER_BIN="${1:-$REPO/target/debug/log-server}"
VENV="$REPO/target/kafka-venv"
REQS="$HERE/requirements.txt"
JAVA_DIR="$HERE/java"
SHUTDOWN_TIMEOUT=30

PASSED=0
FAILED=0
SKIPPED=0
SUMMARY=()
SERVER_PID=""
WORK=""
SERVER_LOG=""

log() { printf 'run.sh: %s\n' "$*" >&2; }

count() { # count NAME PASSED FAILED SKIPPED
    PASSED=$((PASSED + $2))
    FAILED=$((FAILED + $3))
    SKIPPED=$((SKIPPED + $4))
    SUMMARY+=("$1: $2 passed, $3 failed, $4 skipped")
}

skip() { # skip REASON
    echo "SKIP $1"
    SKIPPED=$((SKIPPED + 1))
    SUMMARY+=("SKIP $1")
}

finish() {
    local rc=$?
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if ((rc != 0 && FAILED == 0)); then
        FAILED=1 # a setup step failed: count it
    fi
    if ((FAILED > 0)) && [[ -n "$SERVER_LOG" && -f "$SERVER_LOG" ]]; then
        echo "----- server log ($SERVER_LOG, last 200 lines) -----" >&2
        tail -n 200 "$SERVER_LOG" >&2
        echo "----- end of server log -----" >&2
    fi
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    echo "== kafka-clients summary"
    for line in "${SUMMARY[@]}"; do
        echo "  $line"
    done
    local line="kafka-clients: $PASSED passed, $FAILED failed"
    ((SKIPPED > 0)) && line+=", $SKIPPED skipped"
    echo "$line"
    ((FAILED > 0)) && exit 1
    exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -x "$SERVER_BIN" ]]; then
    log "server binary not found or not executable: $SERVER_BIN (build it with: cargo build -p log-server)"
    exit 1
fi

# ---- venv: (re)created only when requirements.txt changed ----
REQS_HASH="$(sha256sum "$REQS" | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$REQS_HASH" ]]; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS"
    echo "$REQS_HASH" >"$VENV/.requirements.sha256"
fi
PY="$VENV/bin/python"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/log-server-kafka.XXXXXX")"
GEN="$WORK/gen"
DATA_DIR="$WORK/data"
SERVER_LOG="$WORK/server.log"
mkdir -p "$GEN" "$DATA_DIR"

# ---- gRPC stubs: from log.v1 import log_pb2, log_pb2_grpc ----
"$PY" -m grpc_tools.protoc -I"$REPO/proto" --python_out="$GEN" --grpc_python_out="$GEN" log/v1/log.proto
touch "$GEN/log/__init__.py" "$GEN/log/v1/__init__.py"

# ---- kcat and the Java client, before the server starts ----
kcat_reason=""
if ! command -v kcat >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
        kcat_reason="kcat not found and apt-get is not available to install it"
    else
        SUDO=""
        if [[ "$(id -u)" -ne 0 ]]; then
            command -v sudo >/dev/null 2>&1 && SUDO="sudo -n"
        fi
        log "installing kcat (apt-get install -y kcat)"
        if ! { $SUDO apt-get install -y -qq kcat >"$WORK/apt.txt" 2>&1 ||
            { $SUDO apt-get update -qq >>"$WORK/apt.txt" 2>&1 &&
                $SUDO apt-get install -y -qq kcat >>"$WORK/apt.txt" 2>&1; }; }; then
            tail -n 5 "$WORK/apt.txt"
            kcat_reason="apt-get install -y kcat failed"
        elif ! command -v kcat >/dev/null 2>&1; then
            kcat_reason="kcat not on PATH after apt-get install"
        fi
    fi
fi

java_reason=""
if ! command -v java >/dev/null 2>&1; then
    java_reason="java not found"
elif ! command -v mvn >/dev/null 2>&1; then
    java_reason="mvn not found"
elif ! mvn -q -B -f "$JAVA_DIR/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$JAVA_DIR/lib" >"$WORK/mvn.txt" 2>&1; then
    tail -n 20 "$WORK/mvn.txt"
    java_reason="the download of kafka-clients failed (mvn dependency:copy-dependencies)"
fi

is_running() { # the child is running (not exited, not a zombie waiting to be reaped)
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# ---- server: both ports picked by the kernel, read back from its stderr ----
# The cleaner looks every 200 ms, so a compacted topic is cleaned within
# the test's patience.
log "starting $SERVER_BIN --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --data-dir $DATA_DIR --cleaner-backoff-ms 200"
"$SERVER_BIN" --listen 127.0.0.1:0 --kafka-listen 127.0.0.1:0 --data-dir "$DATA_DIR" --cleaner-backoff-ms 200 >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
GRPC_ADDR=""
KAFKA_ADDR=""
deadline=$((SECONDS + 30))
while [[ -z "$GRPC_ADDR" || -z "$KAFKA_ADDR" ]] && is_running "$SERVER_PID" && ((SECONDS < deadline)); do
    GRPC_ADDR="$(sed -n 's/^log-server: listening on //p' "$SERVER_LOG" | head -n 1)"
    KAFKA_ADDR="$(sed -n 's/.*kafka listener serving local=\([^ ]*\).*/\1/p' "$SERVER_LOG" | head -n 1)"
    [[ -n "$GRPC_ADDR" && -n "$KAFKA_ADDR" ]] || sleep 0.05
done
if [[ -z "$GRPC_ADDR" || -z "$KAFKA_ADDR" ]]; then
    log "the server did not say where it listens ('log-server: listening on ADDR' and" \
        "'kafka listener serving local=ADDR' on stderr)"
    exit 1
fi
log "server: gRPC on $GRPC_ADDR, Kafka on $KAFKA_ADDR"

# ---- the Python clients ----
python_suite() { # python_suite NAME FILE
    local name=$1 file=$2 summary="$WORK/summary-$1" rc=0 p=0 f=0 s=0
    echo "== $name ($file)"
    PYTHONPATH="$GEN${PYTHONPATH:+:$PYTHONPATH}" KAFKA_BOOTSTRAP="$KAFKA_ADDR" LOG_SERVER_ADDR="$GRPC_ADDR" \
        LOG_TEST_SUMMARY_FILE="$summary" timeout "${SUITE_TIMEOUT:-300}" "$PY" "$HERE/$file" || rc=$?
    if [[ -s "$summary" ]]; then
        read -r p f s <"$summary"
    fi
    if ((rc != 0 && f == 0)); then
        f=1 # the suite died before writing its summary
    fi
    count "$name" "$p" "$f" "$s"
}
"$PY" -c 'import importlib.metadata as m; print("kafka-python", m.version("kafka-python"), "| confluent-kafka", m.version("confluent-kafka"))'
python_suite kafka-python test_kafka_python.py
python_suite confluent-kafka test_confluent.py

# ---- kcat ----
echo "== kcat"
if [[ -n "$kcat_reason" ]]; then
    skip "kcat: $kcat_reason"
else
    kcat -V 2>&1 | head -n 1
    KP=0
    KF=0
    kcat_check() { # kcat_check NAME WANT_FILE GOT_FILE: equal files pass
        if cmp -s "$2" "$3"; then
            echo "ok kcat $1"
            KP=$((KP + 1))
        else
            echo "FAIL kcat $1: want"
            sed 's/^/    /' "$2"
            echo "  got"
            sed 's/^/    /' "$3"
            KF=$((KF + 1))
        fi
    }
    KT="kcat-$RANDOM$RANDOM"
    host="${KAFKA_ADDR%:*}"
    port="${KAFKA_ADDR##*:}"
    # -P: a few lines, to a topic created on first use (Metadata).
    printf 'one\ntwo\nthree \xc3\xa9\n' >"$WORK/kcat-lines"
    # (From stdin: one message a line. A file named as an argument would be
    # one message.)
    if timeout 60 kcat -b "$KAFKA_ADDR" -P -t "$KT" <"$WORK/kcat-lines" >"$WORK/kcat-out" 2>&1; then
        echo "ok kcat -P"
        KP=$((KP + 1))
    else
        echo "FAIL kcat -P:"
        cat "$WORK/kcat-out"
        KF=$((KF + 1))
    fi
    # -L: the one broker, and the topic with its one partition.
    timeout 60 kcat -b "$KAFKA_ADDR" -L -t "$KT" >"$WORK/kcat-L" 2>&1 || true
    grep -E '^ *(1 brokers:|broker 0 at |topic "|partition 0, leader 0)' "$WORK/kcat-L" |
        sed -e 's/^ *//' -e 's/ *(controller)$//' -e 's/, replicas.*//' >"$WORK/kcat-L-got" || true
    printf '1 brokers:\nbroker 0 at %s:%s\ntopic "%s" with 1 partitions:\npartition 0, leader 0\n' \
        "$host" "$port" "$KT" >"$WORK/kcat-L-want"
    kcat_check "-L" "$WORK/kcat-L-want" "$WORK/kcat-L-got"
    # -C -o beginning -e: the same lines back, then exit at the end.
    timeout 60 kcat -b "$KAFKA_ADDR" -C -t "$KT" -o beginning -e -q >"$WORK/kcat-C" 2>"$WORK/kcat-C-err" ||
        cat "$WORK/kcat-C-err"
    kcat_check "-C -o beginning -e" "$WORK/kcat-lines" "$WORK/kcat-C"
    # Keys, a codec and the offsets: -P -K: -z zstd, then -C with a format.
    printf 'k1:v1\nk2:v2\n' | timeout 60 kcat -b "$KAFKA_ADDR" -P -t "$KT" -K: -z zstd 2>&1 || true
    timeout 60 kcat -b "$KAFKA_ADDR" -C -t "$KT" -o 3 -e -q -f '%o %k %s\n' >"$WORK/kcat-K" 2>&1 || true
    printf '3 k1 v1\n4 k2 v2\n' >"$WORK/kcat-K-want"
    kcat_check "-P -K: -z zstd, -C -o 3 -f '%o %k %s'" "$WORK/kcat-K-want" "$WORK/kcat-K"
    count kcat "$KP" "$KF" 0
fi

# ---- the Java client ----
echo "== java (kafka-clients, $JAVA_DIR)"
if [[ -n "$java_reason" ]]; then
    skip "java: $java_reason"
else
    java -version 2>&1 | head -n 1
    rc=0
    timeout 300 java -cp "$JAVA_DIR/lib/*" "$JAVA_DIR/KafkaClients.java" "$KAFKA_ADDR" >"$WORK/java.txt" 2>&1 || rc=$?
    # SLF4J's "no binding" notice is noise here: kafka-clients logs nothing we need.
    grep -v '^SLF4J:' "$WORK/java.txt" || true
    jp="$(sed -n 's/^java: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' "$WORK/java.txt" | tail -n 1)"
    jf="$(sed -n 's/^java: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' "$WORK/java.txt" | tail -n 1)"
    jp=${jp:-0}
    jf=${jf:-0}
    if ((rc != 0 && jf == 0)); then
        jf=1 # died before its summary
    fi
    count java "$jp" "$jf" 0
fi

# ---- Kafka's own perf tools (kafka-tools) against our listener ----
echo "== kafka perf tools (org.apache.kafka.tools.ProducerPerformance, ConsumerPerformance)"
if [[ -n "$java_reason" ]]; then
    skip "kafka perf tools: $java_reason"
else
    PT="perf-$RANDOM$RANDOM"
    PP=0
    PF=0
    timeout 300 java -cp "$JAVA_DIR/lib/*" org.apache.kafka.tools.ProducerPerformance \
        --topic "$PT" --num-records 100000 --record-size 100 --throughput -1 \
        --producer-props "bootstrap.servers=$KAFKA_ADDR" acks=all linger.ms=5 >"$WORK/pperf.txt" 2>&1 || true
    if grep -q '^100000 records sent' "$WORK/pperf.txt"; then
        echo "ok ProducerPerformance: $(grep '^100000 records sent' "$WORK/pperf.txt")"
        PP=$((PP + 1))
    else
        echo "FAIL ProducerPerformance:"
        grep -v '^SLF4J' "$WORK/pperf.txt" | tail -n 20
        PF=$((PF + 1))
    fi
    # It reads with a consumer group of its own (subscribe, commits).
    timeout 300 java -cp "$JAVA_DIR/lib/*" org.apache.kafka.tools.ConsumerPerformance \
        --bootstrap-server "$KAFKA_ADDR" --topic "$PT" --messages 100000 --timeout 60000 >"$WORK/cperf.txt" 2>&1 || true
    # The line after the header: start, end, MB, MB/s, messages, ...
    got="$(grep -A1 '^start.time' "$WORK/cperf.txt" | tail -n 1 | awk -F', *' '{print $5}')"
    if [[ "$got" == "100000" ]]; then
        echo "ok ConsumerPerformance: $(grep -A1 '^start.time' "$WORK/cperf.txt" | tail -n 1)"
        PP=$((PP + 1))
    else
        echo "FAIL ConsumerPerformance (read ${got:-nothing} of 100000):"
        grep -v '^SLF4J' "$WORK/cperf.txt" | tail -n 20
        PF=$((PF + 1))
    fi
    count "kafka perf tools" "$PP" "$PF" 0
fi

# ---- consumer groups: every client kind, kill -9, cooperative, static, restart ----
group_cp=""
if [[ -z "$java_reason" ]]; then
    group_cp="$JAVA_DIR/lib/*"
fi
# The Rust member: log-client's `group` example (a GroupConsumer over gRPC).
rust_member="$REPO/target/debug/examples/group"
if command -v cargo >/dev/null 2>&1; then
    (cd "$REPO" && cargo build -q -p log-client --example group) || log "building the Rust group member failed"
fi
[[ -x "$rust_member" ]] || rust_member=""
JAVA_CLASSPATH="$group_cp" LOG_SERVER_BIN="$SERVER_BIN" RUST_GROUP_MEMBER="$rust_member" SUITE_TIMEOUT=600 \
    python_suite groups test_groups.py

# ---- clean shutdown on SIGTERM: exit 0 within SHUTDOWN_TIMEOUT seconds ----
echo "== shutdown"
shutdown_ok=0
if ! is_running "$SERVER_PID"; then
    server_rc=0
    wait "$SERVER_PID" || server_rc=$?
    log "FAIL shutdown: the server had already exited (status $server_rc) before SIGTERM"
else
    kill -TERM "$SERVER_PID"
    deadline=$((SECONDS + SHUTDOWN_TIMEOUT))
    while is_running "$SERVER_PID" && ((SECONDS < deadline)); do
        sleep 0.1
    done
    if is_running "$SERVER_PID"; then
        log "FAIL shutdown: the server did not exit within ${SHUTDOWN_TIMEOUT}s of SIGTERM"
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    else
        server_rc=0
        wait "$SERVER_PID" || server_rc=$?
        if ((server_rc == 0)); then
            shutdown_ok=1
            echo "ok shutdown: the server exited 0 after SIGTERM"
        else
            log "FAIL shutdown: the server exited with status $server_rc after SIGTERM"
        fi
    fi
fi
SERVER_PID=""
if ((shutdown_ok)); then
    count shutdown 1 0 0
else
    count shutdown 0 1 0
fi
