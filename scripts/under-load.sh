#!/usr/bin/env bash
# Runs a command while every CPU is kept busy (one spinning process per CPU, like
# `stress --cpu N`), so tests that would depend on the machine's load fail here first.
# The load stops with the command, and after --max-seconds in any case.
#
#   scripts/under-load.sh cargo test -p heidi-linux
#   scripts/under-load.sh --max-seconds 600 cargo test -p heidi-linux --test e2e_pipeline
set -euo pipefail
max=1800
if [ "${1:-}" = "--max-seconds" ]; then max=$2; shift 2; fi
[ $# -gt 0 ] || { sed -n '2,8p' "$0"; exit 2; }
spinners=()
for _ in $(seq "$(nproc)"); do
  timeout "$max" sh -c 'while :; do :; done' &
  spinners+=($!)
done
trap 'kill "${spinners[@]}" 2>/dev/null || true' EXIT
timeout "$max" "$@"
