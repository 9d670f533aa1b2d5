#!/usr/bin/env bash
# The torture run: kill -9 cycles under concurrent acknowledged appends and policy changes,
# torn tails and corruption inside the sealed journal, malformed frames, slow clients and
# connection floods, and the stage torture (sleepers, setsid escapers, a memory hog, a
# SIGTERM-ignorer, 100 MB of output, kill -9 during a stage). Bounded in time by its flags;
# prints a summary table and exits 1 on any failure. See docs/RELIABILITY.md.
#
#   scripts/torture.sh                 # the long run (500 kill cycles, up to 30 min for them)
#   scripts/torture.sh --quick         # about 2 minutes (CI)
#   scripts/torture.sh --debug ...     # use the debug build instead of a release build
#   other flags go to scripts/torture/run.py (--cycles, --crash-seconds, --abuse-rounds,
#   --flood, --seed, --phases crash,torn,abuse,stages, --json FILE, --work DIR)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
args=()
for arg in "$@"; do
  case "$arg" in
    --quick) args+=(--cycles 40 --crash-seconds 45 --abuse-rounds 2 --flood 1000) ;;
    --debug) profile=debug ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) args+=("$arg") ;;
  esac
done

if [ "$profile" = release ]; then
  cargo build --release -p heidi-linux --bin heidid --bin heidi
else
  cargo build -p heidi-linux --bin heidid --bin heidi
fi
# Room for the floods' sockets in the driver.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec timeout --signal=KILL 7200 python3 scripts/torture/run.py --bin-dir "target/$profile" "${args[@]}"
