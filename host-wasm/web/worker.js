// Runs the simulator module off the page's main thread, so a long run never freezes the page
// (and the page can stop it by terminating this worker). Messages:
//   in:  { id, config }                      a config object (see host-wasm/README.md)
//   out: { id, ok: true, bytes }             the trace's exact bytes (transferred)
//        { id, ok: false, code, message }    the module's error object, or a trap
// A trap (for instance running out of memory) leaves a wasm instance unusable, so the worker
// instantiates the module afresh before the next run.

const WASM_URL = 'heidi_wasm.wasm';
const ABI_VERSION = 1;
let module = null;
let exports = null;

async function instance() {
  if (!module) {
    const response = await fetch(WASM_URL);
    if (!response.ok) throw new Error(`${WASM_URL}: HTTP ${response.status}`);
    module = await WebAssembly.compile(await response.arrayBuffer());
  }
  if (!exports) {
    exports = (await WebAssembly.instantiate(module, {})).exports;
    const abi = exports.sim_abi_version();
    if (abi !== ABI_VERSION) throw new Error(`the module speaks ABI ${abi}, the page ${ABI_VERSION}`);
  }
  return exports;
}

function run(w, config) {
  const input = new TextEncoder().encode(JSON.stringify(config));
  const ptr = w.sim_input_ptr(input.length);
  if (ptr === 0) {
    return { ok: false, code: 'too_large', message: `the config is larger than the module accepts (${input.length} bytes)` };
  }
  new Uint8Array(w.memory.buffer, ptr, input.length).set(input);
  const n = w.sim_run(input.length);
  // Pointers come back as i32; `>>> 0` reads them as the unsigned addresses they are.
  const bytes = new Uint8Array(w.memory.buffer, w.sim_output_ptr() >>> 0, Math.abs(n)).slice();
  if (n > 0) return { ok: true, bytes };
  const body = JSON.parse(new TextDecoder().decode(bytes));
  return { ok: false, code: body.error?.code, message: body.error?.message ?? 'the simulation failed' };
}

self.onmessage = async ({ data: { id, config } }) => {
  let reply;
  let w;
  try {
    w = await instance();
  } catch (e) {
    self.postMessage({ id, ok: false, code: 'load', message: `cannot load the simulator: ${e.message}` });
    return;
  }
  try {
    reply = run(w, config);
  } catch (e) {
    exports = null; // a trapped instance is not reused
    reply = { ok: false, code: 'trap', message: `the simulation stopped: ${e.message}` };
  }
  self.postMessage({ id, ...reply }, reply.bytes ? [reply.bytes.buffer] : []);
};
