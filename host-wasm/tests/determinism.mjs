// Determinism across targets: every scenario's trace from the release .wasm (under node)
// must hash (SHA-256) exactly like the native trace of the same config. The native trace
// comes from `cargo run -p heidi-wasm --example trace -- --config <json>`; no hash is
// hard-coded. Also checks that the module has no imports and that a bad config comes back as
// an error object.
//
// Usage: node host-wasm/tests/determinism.mjs [path/to/heidi_wasm.wasm]
// (default: $CARGO_TARGET_DIR or ./target, then heidi-sim/heidi_wasm.wasm, which
// host-wasm/build.sh writes)

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import assert from 'node:assert/strict';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const wasmPath = process.argv[2] || path.join(targetDir, 'heidi-sim/heidi_wasm.wasm');

const module = new WebAssembly.Module(readFileSync(wasmPath));
const imports = WebAssembly.Module.imports(module);
assert.deepEqual(imports, [], `the module must import nothing, found ${JSON.stringify(imports)}`);
const { exports } = new WebAssembly.Instance(module, {});
assert.equal(exports.sim_abi_version(), 1);

const encoder = new TextEncoder();

/** Runs one config in the wasm module; returns { ok, bytes }. */
function runWasm(config) {
  const input = encoder.encode(config);
  const ptr = exports.sim_input_ptr(input.length);
  assert.notEqual(ptr, 0, 'input buffer refused');
  new Uint8Array(exports.memory.buffer, ptr, input.length).set(input);
  const n = exports.sim_run(input.length);
  const len = Math.abs(n);
  assert.equal(len, exports.sim_output_len());
  // Copy: the next call may move the buffer or grow memory.
  const bytes = new Uint8Array(exports.memory.buffer, exports.sim_output_ptr(), len).slice();
  return { ok: n > 0, bytes };
}

function runNative(config) {
  return execFileSync(
    'cargo',
    ['run', '--quiet', '-p', 'heidi-wasm', '--example', 'trace', '--', '--config', config],
    { cwd: root, maxBuffer: 256 * 1024 * 1024 },
  );
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

const configs = [];
for (const scenario of ['limiter', 'breaker', 'batching', 'pipeline', 'service']) {
  for (const seed of [1, 42, 9007199254740991]) {
    configs.push(JSON.stringify({ scenario, seed }));
  }
}
configs.push(JSON.stringify({ scenario: 'breaker', seed: 5, params: { budget: false } }));
configs.push(JSON.stringify({ scenario: 'batching', seed: 5, params: { batch_max: 3, linger_ms: 7 } }));
configs.push(JSON.stringify({ scenario: 'pipeline', seed: 5, params: { mode: 'collect', unit_tests: true, fail_permille: 200 } }));
configs.push(JSON.stringify({ scenario: 'limiter', seed: 5, max_steps: 100 }));
// The varied configs of tests/tests/sim.rs: many clients, outages shorter than a tick,
// pipeline timeouts, small batches under falling load.
const rates = [900, 700, 500, 300, 100, 50, 20, 10, 5, 1, 2000, 3, 4, 6, 7, 8];
const varied = [
  { scenario: 'limiter', params: { clients: rates.map((rate_per_sec) => ({ rate_per_sec })), duration_ms: 3000 } },
  { scenario: 'breaker', params: { outages: [
    { start_ms: 5100, end_ms: 5200, fail_permille: 1000 },
    { start_ms: 7010, end_ms: 7020, fail_permille: 1000 },
    { start_ms: 20000, end_ms: 25000, fail_permille: 1000 }] } },
  { scenario: 'breaker', params: { budget: false, rate_per_sec: 5000, duration_ms: 5000,
    outages: [{ start_ms: 1000, end_ms: 3000, fail_permille: 700 }] } },
  { scenario: 'pipeline', params: { train_ms: 290000, jitter_permille: 500, stage_timeout_ms: 300000, restarts: 5, rounds: 5 } },
  { scenario: 'batching', params: { batch_max: 2, linger_ms: 3, rate_start_per_sec: 5000, rate_end_per_sec: 100 } },
  { scenario: 'service', params: { clients: [{ rate_per_sec: 2000, keys: 1000 }, { rate_per_sec: 50 }],
    table_slots: 8, limit_capacity: 2, limit_window_ms: 60000, check_permille: 300, bad_permille: 50,
    latency_ms: 20 } },
];
for (const { scenario, params } of varied) {
  for (const seed of [1, 42]) configs.push(JSON.stringify({ scenario, seed, params }));
}
// The in-flight caps reached: 16 clients at 100 000/s with a 60 s (+ 60 s) upstream.
const flood = { clients: Array(16).fill({ rate_per_sec: 100000 }), duration_ms: 2000,
  limit_capacity: 1000000, limit_window_ms: 1, latency_ms: 60000, latency_jitter_ms: 60000 };
configs.push(JSON.stringify({ scenario: 'limiter', seed: 3, params: flood }));

let failures = 0;
for (const config of configs) {
  const wasm = runWasm(config);
  assert.ok(wasm.ok, `wasm refused ${config}: ${new TextDecoder().decode(wasm.bytes)}`);
  const [w, n] = [sha256(wasm.bytes), sha256(runNative(config))];
  const same = w === n;
  failures += same ? 0 : 1;
  console.log(`${same ? 'ok  ' : 'FAIL'} ${w} ${config}${same ? '' : ` (native ${n})`}`);
}

// A bad config: a negative length and an error object naming the field.
const bad = runWasm(JSON.stringify({ scenario: 'breaker', params: { max_attempts: 0 } }));
assert.equal(bad.ok, false);
const error = JSON.parse(new TextDecoder().decode(bad.bytes)).error;
assert.equal(error.code, 'bad_params');
assert.match(error.message, /^max_attempts/);
assert.equal(runWasm('{"scenario":').ok, false);
assert.equal(exports.sim_input_ptr(64 * 1024 + 1), 0, 'an input over 64 KiB is refused');

// Memory stays bounded: the flood config at the default step cap (5 M steps) must leave the
// module's memory (which never shrinks, so it is the peak) well under 256 MiB.
const heavy = runWasm(JSON.stringify({ scenario: 'limiter', seed: 1, params: { ...flood, duration_ms: 86400000, tick_ms: 8640 } }));
assert.ok(heavy.ok, new TextDecoder().decode(heavy.bytes));
const memory = exports.memory.buffer.byteLength;
console.log(`peak memory after a capped 5M-step flood: ${(memory / 1048576).toFixed(1)} MiB`);
assert.ok(memory < 64 * 1048576, `memory grew to ${memory} bytes`);

if (failures > 0) {
  console.error(`${failures} of ${configs.length} traces differ between wasm and native`);
  process.exit(1);
}
console.log(`determinism: ${configs.length} traces identical in wasm and natively`);
