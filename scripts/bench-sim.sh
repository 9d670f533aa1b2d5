#!/usr/bin/env bash
# Simulated events per second of heidi-wasm's simulator, natively (release build) and as the
# release .wasm under node, on the same configs (scenario, seed, parameters); median of RUNS
# runs each (default 7). Also prints the .wasm size. A run's time includes writing its JSON
# trace; "events" are the simulator's steps (arrivals, completions, timers, tick boundaries).
#
#   scripts/bench-sim.sh            # RUNS=7
#   RUNS=11 scripts/bench-sim.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=${RUNS:-7}
target_dir=${CARGO_TARGET_DIR:-target}
wasm="$target_dir/heidi-sim/heidi_wasm.wasm"

cargo build --quiet --release -p heidi-wasm --example bench
host-wasm/build.sh >/dev/null

configs=(
  '{"scenario":"limiter","seed":1,"params":{"duration_ms":60000,"tick_ms":1000,"limit_capacity":1000,"clients":[{"rate_per_sec":20000},{"rate_per_sec":5000},{"rate_per_sec":1000}]}}'
  '{"scenario":"breaker","seed":1,"params":{"rate_per_sec":20000,"budget":false}}'
)

echo "wasm size: $(stat -c %s "$wasm") bytes ($wasm)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), node $(node --version), runs per figure: $runs"
for config in "${configs[@]}"; do
  echo
  echo "config: $config"
  "$target_dir/release/examples/bench" "$config" "$runs" | tail -n 1
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    const [wasmPath, config, runs] = process.argv.slice(1);
    const { instance: { exports } } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
    const input = new TextEncoder().encode(config);
    const rates = [];
    for (let i = 0; i < Number(runs); i++) {
      const start = process.hrtime.bigint();
      const ptr = exports.sim_input_ptr(input.length);
      new Uint8Array(exports.memory.buffer, ptr, input.length).set(input);
      const n = exports.sim_run(input.length);
      const ns = Number(process.hrtime.bigint() - start);
      if (n <= 0) throw new Error("sim_run failed");
      const text = new TextDecoder().decode(new Uint8Array(exports.memory.buffer, exports.sim_output_ptr(), n));
      const steps = Number(/"steps":(\d+)/.exec(text)[1]);
      rates.push(Math.round(steps * 1e9 / ns));
    }
    rates.sort((a, b) => a - b);
    console.log(`wasm (node) median events/s: ${rates[Math.floor(rates.length / 2)]}`);
  ' "$wasm" "$config" "$runs"
done
