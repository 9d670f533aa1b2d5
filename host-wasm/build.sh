#!/usr/bin/env bash
# Builds the simulator's .wasm as the page serves it: cargo's `wasm` profile, then binaryen's
# wasm-opt -Oz (about a fifth smaller than rustc's output alone), written to
# $CARGO_TARGET_DIR/heidi-sim/heidi_wasm.wasm (cargo's own output stays where cargo put it).
# wasm-opt comes from npm (host-wasm/tools, pinned in its package-lock.json) and is installed
# on first use; without it (offline) cargo's module is copied with a warning, unless
# --require-opt (CI) is given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target_dir=${CARGO_TARGET_DIR:-target}
cargo_wasm="$target_dir/wasm32-unknown-unknown/wasm/heidi_wasm.wasm"
site="$target_dir/heidi-sim"
wasm_opt=host-wasm/tools/node_modules/.bin/wasm-opt

cargo build -p heidi-wasm --target wasm32-unknown-unknown --profile wasm
mkdir -p "$site"
if [ ! -x "$wasm_opt" ] && ! (cd host-wasm/tools && npm ci --no-audit --no-fund >/dev/null); then
  if [ "${1:-}" = --require-opt ]; then
    echo "cannot install wasm-opt (npm ci in host-wasm/tools)" >&2
    exit 1
  fi
  echo "warning: no wasm-opt (npm ci in host-wasm/tools failed): serving cargo's module" >&2
  cp "$cargo_wasm" "$site/heidi_wasm.wasm"
  exit 0
fi
# The features rustc's wasm32 target enables by default; wasm-opt keeps to them.
# --flatten --rereloop before -Oz -Oz rebuilds the control flow that rustc's -Oz inlining
# leaves tangled in the one large export: 1.7 KB smaller than -Oz alone, same semantics.
"$wasm_opt" --flatten --rereloop -Oz -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-multivalue --enable-reference-types \
  "$cargo_wasm" -o "$site/heidi_wasm.wasm"
echo "heidi_wasm.wasm: $(stat -c %s "$cargo_wasm") bytes from cargo, $(stat -c %s "$site/heidi_wasm.wasm") after wasm-opt"
