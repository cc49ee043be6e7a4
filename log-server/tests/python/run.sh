#!/usr/bin/env bash
# Cross-language conformance test: a Python client generated from
# proto/log/v1/log.proto against the real log-server binary.
#
# Usage: run.sh [SERVER_BIN]     (default: $REPO/target/debug/log-server)
#
# Creates (or reuses) a venv at $REPO/target/python-venv, generates the stubs
# into a temp dir, starts the server on a free loopback port (--listen
# 127.0.0.1:0; the port read from its "listening on" line) with a fresh data
# dir, runs test_generated_client.py, then stops the server with SIGTERM and
# requires exit status 0 within 30 s. The last line printed is
# "python: N passed, M failed" (the clean shutdown counts as one test).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
SERVER_BIN="${1:-$REPO/target/debug/log-server}"
VENV="$REPO/target/python-venv"
REQS="$HERE/requirements.txt"
SHUTDOWN_TIMEOUT=30

PASSED=0
FAILED=0
SKIPPED=0
SERVER_PID=""
WORK=""
SERVER_LOG=""
SHOW_LOG=0

log() { printf 'run.sh: %s\n' "$*" >&2; }

print_server_log() {
    if [[ -n "$SERVER_LOG" && -f "$SERVER_LOG" ]]; then
        echo "----- server log ($SERVER_LOG) -----" >&2
        tail -n 200 "$SERVER_LOG" >&2 || true
        echo "----- end of server log -----" >&2
    fi
}

finish() {
    local rc=$?
    set +e
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    if (( rc != 0 && FAILED == 0 )); then
        FAILED=1 # a setup step failed: count it
    fi
    if (( FAILED > 0 || SHOW_LOG )); then
        print_server_log
    fi
    [[ -n "$WORK" ]] && rm -rf "$WORK"
    local line="python: $PASSED passed, $FAILED failed"
    (( SKIPPED > 0 )) && line+=", $SKIPPED skipped"
    echo "$line"
    if (( FAILED > 0 )); then
        exit 1
    fi
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

WORK="$(mktemp -d "${TMPDIR:-/tmp}/log-server-pytest.XXXXXX")"
GEN="$WORK/gen"
DATA_DIR="$WORK/data"
SERVER_LOG="$WORK/server.log"
mkdir -p "$GEN" "$DATA_DIR"

# ---- stubs: from log.v1 import log_pb2, log_pb2_grpc ----
"$PY" -m grpc_tools.protoc -I"$REPO/proto" --python_out="$GEN" --pyi_out="$GEN" \
    --grpc_python_out="$GEN" log/v1/log.proto
touch "$GEN/log/__init__.py" "$GEN/log/v1/__init__.py"

is_running() { # the child is running (not exited, not a zombie waiting to be reaped)
    local state
    state="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# ---- server: on a port the kernel picks, read back from its stderr ----
log "starting $SERVER_BIN --listen 127.0.0.1:0 --kafka-listen off --data-dir $DATA_DIR"
"$SERVER_BIN" --listen 127.0.0.1:0 --kafka-listen off --data-dir "$DATA_DIR" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
ADDR=""
deadline=$((SECONDS + 30))
while [[ -z "$ADDR" ]] && is_running "$SERVER_PID" && ((SECONDS < deadline)); do
    ADDR="$(sed -n 's/^log-server: listening on //p' "$SERVER_LOG" | head -n 1)"
    [[ -n "$ADDR" ]] || sleep 0.05
done
if [[ -z "$ADDR" ]]; then
    log "the server did not say where it listens ('log-server: listening on ADDR' on stderr)"
    exit 1
fi
log "server listening on $ADDR"

# ---- tests ----
SUMMARY_FILE="$WORK/summary"
test_rc=0
PYTHONPATH="$GEN${PYTHONPATH:+:$PYTHONPATH}" \
    LOG_SERVER_ADDR="$ADDR" LOG_SERVER_DATA_DIR="$DATA_DIR" LOG_SERVER_PID="$SERVER_PID" \
    LOG_TEST_SUMMARY_FILE="$SUMMARY_FILE" \
    "$PY" "$HERE/test_generated_client.py" || test_rc=$?
if [[ -s "$SUMMARY_FILE" ]]; then
    read -r PASSED FAILED SKIPPED <"$SUMMARY_FILE"
fi
if (( test_rc != 0 && FAILED == 0 )); then
    FAILED=1 # the test script died before writing its summary
fi

# ---- clean shutdown on SIGTERM: exit 0 within SHUTDOWN_TIMEOUT seconds ----
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
            log "ok shutdown: the server exited 0 after SIGTERM"
        else
            log "FAIL shutdown: the server exited with status $server_rc after SIGTERM"
        fi
    fi
fi
SERVER_PID=""
if ((shutdown_ok)); then
    PASSED=$((PASSED + 1))
else
    FAILED=$((FAILED + 1))
fi
if (( FAILED > 0 )); then
    exit 1
fi
