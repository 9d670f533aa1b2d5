#!/usr/bin/env bash
# host-wasm's CI step: build the release .wasm as the page serves it (host-wasm/build.sh:
# cargo, then wasm-opt), check its size and imports, and compare its traces with the native
# ones under node (host-wasm/tests/determinism.mjs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

max_bytes=$((200 * 1024))
target_dir=${CARGO_TARGET_DIR:-target}
wasm="$target_dir/heidi-sim/heidi_wasm.wasm"

if ! command -v node >/dev/null; then
  echo "host-wasm/ci.sh needs node (20 or later)" >&2
  exit 1
fi
rustup target add wasm32-unknown-unknown
# The exports exist only on wasm32: lint and document that build too.
cargo clippy -p heidi-wasm --target wasm32-unknown-unknown -- -D warnings
RUSTDOCFLAGS=-Dwarnings cargo doc -p heidi-wasm --no-deps
host-wasm/build.sh --require-opt
cargo build -p heidi-wasm --example trace

size=$(stat -c %s "$wasm")
echo "heidi_wasm.wasm: $size bytes (limit $max_bytes)"
if [ "$size" -gt "$max_bytes" ]; then
  echo "the release .wasm exceeds 200 KiB" >&2
  exit 1
fi

# No import may come from `env` (nor from anywhere: the module is self-contained). Node's own
# WebAssembly parser lists the import section.
node --input-type=module -e '
  import { readFileSync } from "node:fs";
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(process.argv[1])));
  const env = imports.filter((i) => i.module === "env");
  console.log(`imports: ${imports.length} (${env.length} from env)`);
  if (env.length > 0) { console.error(JSON.stringify(env)); process.exit(1); }
' "$wasm"

node host-wasm/tests/determinism.mjs "$wasm"
