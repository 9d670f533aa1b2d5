#!/usr/bin/env bash
# Builds the simulator's wasm module and serves the page on http://127.0.0.1:8080/ (offline,
# loopback only). Usage: bash host-wasm/web/serve.sh [--port N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || true
bash host-wasm/build.sh
exec node host-wasm/web/serve.mjs "$@"
