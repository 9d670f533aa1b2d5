// Serves the simulator page on loopback, offline, with no dependencies:
//   node host-wasm/web/serve.mjs [--port 8080] [--wasm PATH]
// The page's files come from this directory; heidi_wasm.wasm from --wasm, or else from
// $CARGO_TARGET_DIR (default ./target)/heidi-sim/heidi_wasm.wasm (host-wasm/build.sh).
// `bash host-wasm/web/serve.sh` builds the module first and then runs this.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const FILES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/index.html': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/plot.js': ['plot.js', 'text/javascript; charset=utf-8'],
  '/worker.js': ['worker.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

/** The default location of the release module. */
export function defaultWasmPath() {
  const target = process.env.CARGO_TARGET_DIR ?? join(repo, 'target');
  return resolve(repo, target, 'heidi-sim', 'heidi_wasm.wasm');
}

/** Starts the server; resolves to `{ server, url }` once it listens. */
export function serve({ port = 8080, wasm = defaultWasmPath() } = {}) {
  const server = createServer(async (req, res) => {
    const path = new URL(req.url, 'http://localhost').pathname;
    let file;
    let type;
    if (path === '/heidi_wasm.wasm') {
      [file, type] = [wasm, 'application/wasm'];
    } else if (FILES[path]) {
      [file, type] = [join(here, FILES[path][0]), FILES[path][1]];
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`cannot read ${file}: ${e.code}\n`);
    }
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      ok({ server, url: `http://127.0.0.1:${server.address().port}/` });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const opt = (name, fallback) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] ? args[i + 1] : fallback;
  };
  const port = Number(opt('--port', process.env.PORT ?? '8080'));
  const wasm = resolve(opt('--wasm', defaultWasmPath()));
  try {
    await readFile(wasm);
  } catch {
    console.error(`no module at ${wasm}: build it with\n  host-wasm/build.sh`);
    process.exit(1);
  }
  const { url } = await serve({ port, wasm });
  console.log(`heidi simulator: ${url} (Ctrl-C stops)`);
}
