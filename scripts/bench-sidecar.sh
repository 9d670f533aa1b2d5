#!/usr/bin/env bash
# Sidecar benchmark, release builds, loopback only:
#  (a) throughput: transactions/s through heidi-sidecar (batches of 8, several batches in
#      flight) against direct Upstream.ApplyBatch calls (one transaction each), when every
#      upstream call costs COST_MS (2 ms) on LANES service lanes of the reference upstream;
#  (b) added latency at low load: one caller, BATCH_SIZE=1, p50/p99 through the sidecar
#      against direct calls, on an upstream with no cost (so the difference is the sidecar).
#
# Every phase gets a fresh reference upstream whose dedupe table (CAPACITY keys, default
# 100000 per second of DURATION) a run cannot fill: a full table would refuse new keys and
# measure the refusals instead. Any error in any phase fails the script (exit 1) after the
# figures are printed.
#
#   scripts/bench-sidecar.sh                  # about 40 s
#   DURATION=10 LANES=4 CALLERS=64 IN_FLIGHT=16 scripts/bench-sidecar.sh
#   PIN="taskset -c 0" scripts/bench-sidecar.sh   # everything on one CPU
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
CALLERS=${CALLERS:-64}
COST_MS=${COST_MS:-2}
LANES=${LANES:-1}
IN_FLIGHT=${IN_FLIGHT:-8}
PIN=${PIN:-}
CAPACITY=${CAPACITY:-$((DURATION * 100000))}
TARGET=${CARGO_TARGET_DIR:-target}/release
cargo build --release -p heidi-linux --bins -q
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    exit 1
}
upstream() { # port cost_ms lanes
    $PIN "$TARGET/heidi" upstream --listen "127.0.0.1:$1" --cost-ms "$2" --concurrency "$3" \
        --capacity "$CAPACITY" >/dev/null &
    pids+=($!)
    wait_port "$1"
}
sidecar() { # port upstream_port batch_size
    LISTEN_ADDR="127.0.0.1:$1" WARM_ORCHESTRATOR_ENDPOINT="http://127.0.0.1:$2" BATCH_SIZE="$3" \
        BATCH_TIMEOUT_MS=100 $PIN "$TARGET/heidi-sidecar" --max-in-flight "$IN_FLIGHT" \
        --queue-capacity 4096 --log warn >/dev/null &
    pids+=($!)
    wait_port "$1"
}
bench() { # label endpoint target callers
    local out
    out=$($PIN "$TARGET/heidi-bench" grpc --endpoint "$2" --target "$3" -c "$4" \
        --duration-s "$DURATION" --json)
    if python3 - "$1" "$out" <<'PY'
import json, sys
label, v = sys.argv[1], json.loads(sys.argv[2])
print(f"{label:<34} {v['per_sec']:>9.0f} tx/s  p50 {v['p50_ns']/1e3:8.0f} µs  p99 {v['p99_ns']/1e3:8.0f} µs"
      f"  ({v['requests']} tx, {v['errors']} errors)")
if v['errors']:
    print(f"ERROR: {label}: {v['errors']} errors, first: {v.get('first_error')}", file=sys.stderr)
    sys.exit(3)
PY
    then :; else failed+=("$1"); fi
    echo "$out" >"$TMPDIR_BENCH/$1.json"
}
failed=()
TMPDIR_BENCH=$(mktemp -d)

echo "# (a) throughput: upstream cost ${COST_MS} ms per call, ${LANES} lane(s), ${CALLERS} callers, ${DURATION} s"
UP=$(free_port); upstream "$UP" "$COST_MS" "$LANES"
bench direct "http://127.0.0.1:$UP" upstream "$CALLERS"
UP=$(free_port); upstream "$UP" "$COST_MS" "$LANES"
SC=$(free_port); sidecar "$SC" "$UP" 8
bench "sidecar (batch 8, ${IN_FLIGHT} in flight)" "http://127.0.0.1:$SC" sidecar "$CALLERS"
python3 - "$TMPDIR_BENCH" <<'PY'
import json, sys, glob, os
d = sys.argv[1]
direct = json.load(open(os.path.join(d, "direct.json")))["per_sec"]
side = [json.load(open(f))["per_sec"] for f in glob.glob(os.path.join(d, "sidecar*.json"))][0]
print(f"sidecar / direct: {side / direct:.1f}x")
PY

echo "# (b) added latency at low load: 1 caller, BATCH_SIZE=1, upstream cost 0, ${DURATION} s"
UP0=$(free_port); upstream "$UP0" 0 1
bench "direct, 1 caller" "http://127.0.0.1:$UP0" upstream 1
UP0=$(free_port); upstream "$UP0" 0 1
SC1=$(free_port); sidecar "$SC1" "$UP0" 1
bench "sidecar batch 1, 1 caller" "http://127.0.0.1:$SC1" sidecar 1
rm -rf "$TMPDIR_BENCH"
if ((${#failed[@]})); then
    echo "FAILED: errors in ${failed[*]}; the figures above do not measure the sidecar" >&2
    exit 1
fi
