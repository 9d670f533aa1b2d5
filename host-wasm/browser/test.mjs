// Browser test of the simulator page: serves host-wasm/web with the release module,
// drives Debian's chromium through playwright-core, and for every scenario checks that
//   - the run finishes and every chart has ink on its canvas;
//   - the summary table shows exactly the native trace's summary, and the page's trace has the
//     native trace's SHA-256 (same seed, same parameters);
//   - the downloaded trace is byte-identical to the native one.
// It also runs one scenario with edited parameters, and checks that bad input is reported.
// Screenshots go to $SCREENSHOT_DIR (default target/browser/).
//
// Environment: CHROMIUM (default /usr/bin/chromium), HEIDI_WASM (the .wasm; default the
// `wasm` profile build under $CARGO_TARGET_DIR), HEIDI_TRACE (the native `trace` example
// binary; default `cargo run -q --release -p heidi-wasm --example trace --`).

import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, defaultWasmPath } from '../web/serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '..', '..');
const SCENARIOS = ['limiter', 'breaker', 'batching', 'pipeline', 'service'];
const SEED = 7;
const TIMEOUT_MS = 60_000;
const shots = resolve(repo, process.env.SCREENSHOT_DIR ?? join(process.env.CARGO_TARGET_DIR ?? 'target', 'browser'));

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures += 1;
}

function nativeTrace(config) {
  const [cmd, ...pre] = process.env.HEIDI_TRACE
    ? [process.env.HEIDI_TRACE]
    : ['cargo', 'run', '-q', '--release', '-p', 'heidi-wasm', '--example', 'trace', '--'];
  return execFileSync(cmd, [...pre, '--config', JSON.stringify(config)], {
    cwd: repo, maxBuffer: 256 * 1024 * 1024,
  });
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

function flatten(value, prefix = '', rows = []) {
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, rows);
  } else {
    rows.push([prefix, value === null ? '—' : String(value)]);
  }
  return rows;
}

async function pageState(page) {
  return page.evaluate(() => ({
    sha256: document.getElementById('trace-meta').dataset.sha256,
    rows: [...document.querySelectorAll('#summary tbody tr')].map((tr) => [tr.dataset.key, tr.querySelector('td').textContent]),
    other: [...document.querySelectorAll('#summary tbody tr')].map((tr) => [tr.dataset.key, tr.querySelector('td.other')?.textContent]),
    canvases: [...document.querySelectorAll('#charts canvas')].map((c) => ({
      chart: c.dataset.chart, points: Number(c.dataset.points), ink: window.heidiSim.hasInk(c),
    })),
  }));
}

async function expectMatches(page, config, label) {
  const native = nativeTrace(config);
  const nativeJson = JSON.parse(native.toString('utf8'));
  const state = await pageState(page);
  check(state.sha256 === sha256(native), `${label}: page trace SHA-256 equals the native trace's (${sha256(native).slice(0, 16)}…)`);
  const expected = flatten(nativeJson.summary);
  const same = JSON.stringify(state.rows) === JSON.stringify(expected);
  check(same, `${label}: the ${expected.length} summary numbers shown match the native trace`);
  if (!same) console.log('  page:', JSON.stringify(state.rows), '\n  native:', JSON.stringify(expected));
  check(state.canvases.length >= 2, `${label}: ${state.canvases.length} charts drawn`);
  // Axes and labels alone would give ink: a chart counts only when it drew data points.
  const blank = state.canvases.filter((c) => !c.ink || !(c.points > 0)).map((c) => c.chart);
  check(blank.length === 0, `${label}: every chart drew data${blank.length ? ` (no data: ${blank.join(', ')})` : ''}`);
  if (config.scenario === 'breaker') {
    // The page also runs the same seed with the budget switched; its column must match too.
    const params = { ...nativeJson.params, budget: !nativeJson.params.budget };
    const otherJson = JSON.parse(nativeTrace({ ...config, params }).toString('utf8'));
    const same = JSON.stringify(state.other) === JSON.stringify(flatten(otherJson.summary));
    check(same, `${label}: the counterpart column (budget ${params.budget}) matches its native trace`);
    check(state.canvases.some((c) => /with and without a retry budget/.test(c.chart) && c.ink),
      `${label}: the budget comparison chart is drawn`);
    const [on, off] = nativeJson.params.budget ? [nativeJson, otherJson] : [otherJson, nativeJson];
    check(on.summary.upstream_calls_in_outage < off.summary.upstream_calls_in_outage,
      `${label}: upstream calls during the outage, with budget ${on.summary.upstream_calls_in_outage} < without ${off.summary.upstream_calls_in_outage}`);
  }
  return nativeJson;
}

async function waitDone(page, scenario, seed) {
  await page.waitForFunction(
    ([want]) => {
      const s = document.getElementById('status');
      return s.dataset.done === want || s.dataset.state === 'error';
    },
    [`${scenario}:${seed}`],
    { timeout: TIMEOUT_MS },
  );
  const error = await page.evaluate(() => document.getElementById('status').dataset.state === 'error'
    && document.getElementById('status').textContent);
  if (error) throw new Error(`the page reported: ${error}`);
}

const wasm = resolve(process.env.HEIDI_WASM ?? defaultWasmPath());
readFileSync(wasm); // fail early and clearly when the module is missing
const { server, url } = await serve({ port: 0, wasm });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
try {
  mkdirSync(shots, { recursive: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1600 }, acceptDownloads: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(url);
  await waitDone(page, 'limiter', 1); // the page runs the first scenario on load

  for (const scenario of SCENARIOS) {
    await page.fill('#seed', String(SEED));
    await page.selectOption('#scenario', scenario); // runs with the defaults
    await waitDone(page, scenario, SEED);
    await expectMatches(page, { scenario, seed: SEED, max_steps: 5_000_000 }, scenario);
    await page.screenshot({ path: join(shots, `${scenario}.png`), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const saved = readFileSync(await download.path());
    const native = nativeTrace({ scenario, seed: SEED, max_steps: 5_000_000 });
    check(Buffer.compare(saved, native) === 0, `${scenario}: the downloaded trace is byte-identical to the native one`);
  }

  // Edited parameters: scenario 2 without its retry budget, through the form.
  await page.selectOption('#scenario', 'breaker');
  await waitDone(page, 'breaker', SEED);
  const params = await page.evaluate(() => window.heidiSim.current().trace.params);
  await page.setChecked('#params [name=budget]', !params.budget);
  await page.fill('#seed', String(SEED + 1));
  await page.click('#run');
  await waitDone(page, 'breaker', SEED + 1);
  await expectMatches(page, { scenario: 'breaker', seed: SEED + 1, max_steps: 5_000_000,
    params: { ...params, budget: !params.budget } }, 'breaker with edited parameters');
  await page.screenshot({ path: join(shots, 'breaker-edited.png'), fullPage: true });

  // A long run can be stopped, and the page runs again afterwards.
  await page.fill('#max-steps', '100000000');
  await page.fill('#params [name=rate_per_sec]', '20000');
  await page.click('#run');
  await page.click('#stop');
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'error', null, { timeout: TIMEOUT_MS });
  check(/stopped/.test(await page.textContent('#status')), 'a run in progress stops on Stop');
  await page.fill('#max-steps', '5000000');
  await page.click('#defaults');
  await waitDone(page, 'breaker', SEED + 1);
  check(true, 'the page runs again after a stop');

  // Bad input is reported, not thrown.
  await page.fill('#params [name=duration_ms]', '-5');
  await page.click('#run');
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'error', null, { timeout: TIMEOUT_MS });
  const message = await page.textContent('#status');
  check(/duration_ms/.test(message), `a bad parameter is reported by name: "${message}"`);
  check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? `: ${consoleErrors.join(' | ')}` : ''}`);
  console.log(`screenshots: ${shots}`);
} finally {
  await browser.close();
  server.close();
}
if (failures) {
  console.error(`${failures} check(s) failed`);
  process.exit(1);
}
console.log('browser test passed');
