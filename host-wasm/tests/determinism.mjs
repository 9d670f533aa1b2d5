// Determinism across targets: every scenario's trace from the release .wasm (under node)
// must hash (SHA-256) exactly like the native trace of the same config. The native trace
// comes from `cargo run -p heidi-wasm --example trace -- --config <json>`; no hash is
// hard-coded. Also checks that the module has no imports and that a bad config comes back as
// an error object.
//
// Usage: node host-wasm/tests/determinism.mjs [path/to/heidi_wasm.wasm]
// (default: $CARGO_TARGET_DIR or ./target, then wasm32-unknown-unknown/wasm/heidi_wasm.wasm)

import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import assert from 'node:assert/strict';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const wasmPath = process.argv[2] || path.join(targetDir, 'wasm32-unknown-unknown/wasm/heidi_wasm.wasm');

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
for (const scenario of ['limiter', 'breaker', 'batching', 'pipeline']) {
  for (const seed of [1, 42, 9007199254740991]) {
    configs.push(JSON.stringify({ scenario, seed }));
  }
}
configs.push(JSON.stringify({ scenario: 'breaker', seed: 5, params: { budget: false } }));
configs.push(JSON.stringify({ scenario: 'batching', seed: 5, params: { batch_max: 3, linger_ms: 7 } }));
configs.push(JSON.stringify({ scenario: 'pipeline', seed: 5, params: { mode: 'collect', unit_tests: true, fail_permille: 200 } }));
configs.push(JSON.stringify({ scenario: 'limiter', seed: 5, max_steps: 100 }));

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

if (failures > 0) {
  console.error(`${failures} of ${configs.length} traces differ between wasm and native`);
  process.exit(1);
}
console.log(`determinism: ${configs.length} traces identical in wasm and natively`);
