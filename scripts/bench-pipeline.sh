#!/usr/bin/env bash
# Pipeline transition overhead through the daemon: heidid runs 100 rounds in full
# mode with simulated stages that take no time and no governor start gap, so the journal's
# pipeline_start → pipeline_complete span is all overhead: the core step, the durable journal
# append (group commit) and the state.json write, per transition. Peer, measured in the same
# run on the same filesystem: one write + fdatasync per event (what a transition would cost
# if each waited for its own sync).
#
#   scripts/bench-pipeline.sh            # REPS=3 (medians); about 20 s
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
ROUNDS=${ROUNDS:-100}
command -v jq >/dev/null || { sudo apt-get install -y jq >/dev/null 2>&1 || apt-get install -y jq >/dev/null; }
cargo build --release -p heidi-linux --bins -q
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT
head -c 32 /dev/urandom >"$TMP/key"
chmod 600 "$TMP/key"
cat >"$TMP/heidid.toml" <<TOML
[pipeline]
mock = true
mode = "full"
rounds = $ROUNDS
mock_stage_ms = 0
start_gap_ms = 0
max_cpu_pct = 100
max_mem_pct = 100
TOML
ms() { # ts "2026-11-23T17:15:26.705Z" → ms within the month (runs are short)
    local t=${1#*-*-}
    echo $(( ((10#${t:0:2} * 24 + 10#${t:3:2}) * 60 + 10#${t:6:2}) * 60000 + 10#${t:9:2} * 1000 + 10#${t:12:3} ))
}
results=()
for rep in $(seq "$REPS"); do
    out="$TMP/out$rep"
    target/release/heidid --socket "$TMP/k$rep.sock" --no-http --out-dir "$out" --seal-key "$TMP/key" \
        --log warn --config "$TMP/heidid.toml" &
    pid=$!
    for _ in $(seq 600); do
        grep -q '"event_type":"pipeline_complete"' "$out/events.jsonl" 2>/dev/null && break
        sleep 0.05
    done
    kill -TERM $pid
    wait $pid
    pipe=$(grep -E '"event_type":"(pipeline|stage)_' "$out/events.jsonl" | grep -v '"stage_output"')
    n=$(wc -l <<<"$pipe")
    t0=$(ms "$(head -1 <<<"$pipe" | jq -r .ts)")
    t1=$(ms "$(tail -1 <<<"$pipe" | jq -r .ts)")
    line_bytes=$(awk '{ b += length($0) + 1 } END { print int(b / NR) }' "$out/events.jsonl")
    fsync=$(target/release/heidi-bench fsync-baseline --dir "$out" --events 600 --line-bytes "$line_bytes" --json | jq .per_sec)
    per_us=$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.1f", (b - a) * 1000 / (n - 1) }')
    fsync_us=$(awk -v r="$fsync" 'BEGIN { printf "%.1f", 1e6 / r }')
    echo "rep $rep: $n transitions in $((t1 - t0)) ms = $per_us µs each; fsync per event $fsync_us µs"
    results+=("$per_us $fsync_us")
    target/release/heidi journal verify --key "$TMP/key" "$out/events.jsonl" >/dev/null
done
printf '%s\n' "${results[@]}" | sort -n | awk -v r="$REPS" '
    { per[NR] = $1; fs[NR] = $2 }
    END {
        m = int((r + 1) / 2)
        printf "median: %s µs per transition (target <= 100); fsync per event %s µs; ratio transition / fsync-per-event = %.3f\n", per[m], fs[m], per[m] / fs[m]
    }'
