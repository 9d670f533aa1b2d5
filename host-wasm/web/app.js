// The simulator page: loads heidi_wasm.wasm, runs a scenario with the chosen parameters, and
// shows the trace as plots, a summary table and an event list. See host-wasm/README.md for
// the module's exports and the trace format.

import { lineChart, bandChart, seriesColour, stateColour, hasInk } from './plot.js';

const EVENTS_SHOWN = 300;

// Which tick fields share a chart, per scenario. Fields not named here still get plotted:
// latency fields together, other numbers each in their own chart, states as bands.
const GROUPS = {
  limiter: [
    { title: 'Requests per tick: admitted and denied', fields: ['arrivals', 'admitted', 'denied'] },
    { title: 'Upstream calls per tick', fields: ['upstream_calls', 'upstream_failures', 'completed'] },
    { title: 'Requests in flight', fields: ['in_flight'] },
    { title: 'Bucket level (tokens left, per client)', fields: ['bucket'] },
  ],
  breaker: [
    { title: 'Requests per tick', fields: ['arrivals', 'succeeded', 'rejected'] },
    { title: 'Upstream calls and retries per tick', fields: ['upstream_calls', 'upstream_failures', 'retries', 'attempts'] },
    { title: 'Gave up, by reason', fields: ['gave_up_breaker', 'gave_up_budget', 'gave_up_attempts'] },
    { title: 'Retry budget available', fields: ['budget_available'] },
  ],
  batching: [
    { title: 'Offered load', fields: ['rate_per_sec'] },
    { title: 'Arrivals and queue per tick', fields: ['arrivals', 'queued'] },
    { title: 'Batches per tick, by flush reason', fields: ['batches', 'flush_size', 'flush_linger', 'failed_batches'] },
    { title: 'Mean batch size', fields: ['batch_mean_milli'] },
    { title: 'Batch sizes (batches of each size per tick)', fields: ['batch_sizes'] },
  ],
  service: [
    { title: 'Answers per tick', fields: ['allowed', 'rate_limited', 'check_denied', 'overloaded', 'bad_request'] },
    { title: 'Requests sent per tick, and retries after the hint', fields: ['sent', 'retries', 'shed'] },
    { title: 'Consumes granted per tick (per client)', fields: ['allowed_by_client'] },
    { title: 'Limiter buckets held', fields: ['limiter_keys'] },
    { title: 'Requests and replies on the network', fields: ['in_flight'] },
    { title: 'Retry hints of the refusals (retry_after, µs)', fields: ['retry_after_p50_us', 'retry_after_p99_us'] },
  ],
  pipeline: [
    { title: 'Round', fields: ['round'] },
    { title: 'Stage starts and failures per tick', fields: ['stage_starts', 'stage_failures'] },
    { title: 'Journal lines', fields: ['journal_lines'] },
  ],
};
const LATENCY = /latency|_p\d+|^p\d+/;
const TIME_FIELD = 't_ms';

const $ = (id) => document.getElementById(id);
let current = null; // { scenario, bytes, trace, sha256 }

// The module runs in a worker (worker.js); each run is a request answered by id.
let worker = null;
let nextId = 1;
const pending = new Map();

function startWorker() {
  worker = new Worker('worker.js');
  worker.onmessage = ({ data }) => {
    const waiter = pending.get(data.id);
    pending.delete(data.id);
    if (!waiter) return;
    if (data.ok) {
      waiter.ok(data.bytes);
    } else {
      const err = new Error(data.message);
      err.code = data.code;
      waiter.fail(err);
    }
  };
  worker.onerror = (e) => {
    for (const waiter of pending.values()) waiter.fail(new Error(e.message || 'the worker failed'));
    pending.clear();
  };
}

/** Runs one config in the worker; resolves to the trace bytes or rejects with the error. */
export function runConfig(config) {
  const id = nextId;
  nextId += 1;
  return new Promise((ok, fail) => {
    pending.set(id, { ok, fail });
    worker.postMessage({ id, config });
  });
}

/** Stops a run in progress: the worker is dropped and a fresh one started. */
function stop() {
  worker.terminate();
  for (const waiter of pending.values()) waiter.fail(new Error('stopped'));
  pending.clear();
  startWorker();
}

async function sha256Hex(bytes) {
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', bytes);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function status(text, isError = false) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('error', isError);
  el.dataset.state = isError ? 'error' : 'ok';
}

// ---- parameters form ----------------------------------------------------------------------

function renderParams(params) {
  const form = $('params');
  form.replaceChildren();
  for (const [name, value] of Object.entries(params)) {
    const label = document.createElement('label');
    label.textContent = name;
    let input;
    if (typeof value === 'boolean') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = value;
    } else if (typeof value === 'number') {
      input = document.createElement('input');
      input.type = 'number';
      input.step = '1';
      input.value = String(value);
    } else if (typeof value === 'string') {
      input = document.createElement('input');
      input.type = 'text';
      input.value = value;
    } else {
      input = document.createElement('textarea');
      input.value = JSON.stringify(value);
      label.classList.add('wide');
    }
    input.name = name;
    input.dataset.kind = value === null ? 'json' : Array.isArray(value) ? 'json' : typeof value;
    label.append(input);
    form.append(label);
  }
}

function readParams() {
  const params = {};
  for (const input of $('params').querySelectorAll('[name]')) {
    const { name } = input;
    switch (input.dataset.kind) {
      case 'boolean': params[name] = input.checked; break;
      case 'number': {
        const v = Number(input.value);
        if (input.value.trim() === '' || !Number.isSafeInteger(v)) {
          throw new Error(`parameter ${name}: "${input.value}" is not a whole number`);
        }
        params[name] = v;
        break;
      }
      case 'string': params[name] = input.value; break;
      default:
        try {
          params[name] = JSON.parse(input.value);
        } catch (e) {
          throw new Error(`parameter ${name}: not valid JSON (${e.message})`);
        }
    }
  }
  return params;
}

// ---- summary table ------------------------------------------------------------------------

/** Flattens nested objects and arrays into `[path, value]` rows (`clients.0.admitted`). */
export function flatten(value, prefix = '', rows = []) {
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, rows);
  } else {
    rows.push([prefix, value]);
  }
  return rows;
}

function cell(value) {
  const td = document.createElement('td');
  td.textContent = value === null || value === undefined ? '—' : String(value);
  if (typeof value === 'number') td.className = 'num';
  return td;
}

/** The summary table; with `other` (the counterpart run), a second column of its values. */
function renderSummary(trace, sha256, millis, other) {
  const table = $('summary');
  const head = table.querySelector('thead') ?? table.createTHead();
  head.replaceChildren();
  if (other) {
    const tr = document.createElement('tr');
    for (const text of ['', other.thisLabel, other.label]) {
      const th = document.createElement('th');
      th.textContent = text;
      tr.append(th);
    }
    head.append(tr);
  }
  const otherValues = new Map(other ? flatten(other.trace.summary) : []);
  const body = table.querySelector('tbody');
  body.replaceChildren();
  for (const [key, value] of flatten(trace.summary)) {
    const tr = document.createElement('tr');
    tr.dataset.key = key;
    const th = document.createElement('th');
    th.textContent = key;
    tr.append(th, cell(value));
    if (other) {
      const td = cell(otherValues.get(key));
      td.classList.add('other');
      tr.append(td);
    }
    body.append(tr);
  }
  const rate = millis > 0 ? Math.round(trace.steps / (millis / 1000)) : 0;
  $('trace-meta').textContent = `${trace.format} · scenario ${trace.scenario} · seed ${trace.seed}`
    + ` · ${trace.steps} steps${trace.step_cap_reached ? ' (STEP CAP REACHED: the run ended early)' : ''}`
    + ` · ${trace.ticks.length} ticks of ${trace.tick_ms} ms · ran in ${millis.toFixed(1)} ms`
    + ` (${rate.toLocaleString()} events/s) · SHA-256 ${sha256 ?? 'n/a'}`;
  $('trace-meta').dataset.sha256 = sha256 ?? '';
}

// ---- charts -------------------------------------------------------------------------------

/** Splits the tick fields into numeric series (arrays expanded) and categorical ones. */
function columns(ticks) {
  const numeric = new Map(); // field -> [{label, values}]
  const categorical = new Map(); // field -> values
  const names = new Set();
  for (const t of ticks) for (const k of Object.keys(t)) names.add(k);
  names.delete(TIME_FIELD);
  for (const name of names) {
    const sample = ticks.map((t) => t[name]).find((v) => v != null);
    if (Array.isArray(sample)) {
      const width = Math.max(...ticks.map((t) => (Array.isArray(t[name]) ? t[name].length : 0)));
      const series = [];
      for (let i = 0; i < width; i += 1) {
        series.push({ label: `${name}[${i}]`, values: ticks.map((t) => t[name]?.[i] ?? null) });
      }
      numeric.set(name, series);
    } else if (typeof sample === 'number' || sample === undefined) {
      const milli = name.endsWith('_milli');
      const label = milli ? name.slice(0, -'_milli'.length) : name;
      numeric.set(name, [{
        label,
        values: ticks.map((t) => (t[name] == null ? null : milli ? t[name] / 1000 : t[name])),
      }]);
    } else {
      categorical.set(name, ticks.map((t) => t[name]));
    }
  }
  return { numeric, categorical };
}

function figure(title, legend) {
  const fig = document.createElement('figure');
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  const canvas = document.createElement('canvas');
  const keys = document.createElement('div');
  keys.className = 'legend';
  for (const [label, colour] of legend) {
    const span = document.createElement('span');
    span.textContent = label;
    span.style.setProperty('--c', colour);
    keys.append(span);
  }
  fig.append(cap, canvas, keys);
  $('charts').append(fig);
  return { fig, canvas, keys };
}

function renderCharts(trace) {
  const charts = $('charts');
  charts.replaceChildren();
  const ticks = trace.ticks;
  if (ticks.length === 0) return;
  const times = ticks.map((t) => t[TIME_FIELD]);
  const { numeric, categorical } = columns(ticks);
  const plans = [];
  for (const group of GROUPS[trace.scenario] ?? []) {
    const series = group.fields.filter((f) => numeric.has(f)).flatMap((f) => numeric.get(f));
    group.fields.forEach((f) => numeric.delete(f));
    if (series.length) plans.push({ title: group.title, series });
  }
  const latency = [...numeric.keys()].filter((f) => LATENCY.test(f));
  if (latency.length) {
    plans.push({ title: 'Latency percentiles', series: latency.flatMap((f) => numeric.get(f)) });
    latency.forEach((f) => numeric.delete(f));
  }
  for (const [name, series] of numeric) plans.push({ title: name, series });

  if (categorical.size) {
    const series = [...categorical].map(([label, values]) => ({ label, values }));
    const { canvas, keys } = figure('States over time', []);
    canvas.dataset.chart = 'states';
    const seen = bandChart(canvas, times, series);
    canvas.dataset.points = String(seen.reduce((n, values) => n + values.length, 0));
    seen.forEach((values, r) => values.forEach((v, i) => {
      const span = document.createElement('span');
      span.textContent = `${series[r].label}: ${v}`;
      span.style.setProperty('--c', stateColour(v, i));
      keys.append(span);
    }));
  }
  if (trace.comparison) plans.unshift(trace.comparison);
  for (const plan of plans) {
    const legend = plan.series.map((s, i) => [s.label, seriesColour(i)]);
    const { canvas } = figure(plan.title, legend);
    canvas.dataset.chart = plan.title;
    canvas.dataset.points = String(lineChart(canvas, times, plan.series));
  }
}

function renderEvents(trace) {
  const list = $('events');
  list.replaceChildren();
  for (const event of trace.events.slice(0, EVENTS_SHOWN)) {
    const li = document.createElement('li');
    li.textContent = JSON.stringify(event);
    list.append(li);
  }
  const hidden = trace.events.length - Math.min(trace.events.length, EVENTS_SHOWN) + trace.events_dropped;
  if (hidden > 0) {
    const li = document.createElement('li');
    li.textContent = `… ${hidden} more (all kept events are in the downloaded trace)`;
    list.append(li);
  }
}

// ---- running ------------------------------------------------------------------------------

async function run(useDefaults) {
  const scenario = $('scenario').value;
  let config;
  try {
    const seed = Number($('seed').value);
    const maxSteps = Number($('max-steps').value);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new Error('the seed must be a whole number ≥ 0');
    if (!Number.isSafeInteger(maxSteps) || maxSteps < 1) throw new Error('the step cap must be a whole number ≥ 1');
    config = { scenario, seed, max_steps: maxSteps };
    if (!useDefaults) config.params = readParams();
  } catch (e) {
    status(e.message, true);
    return;
  }
  delete $('status').dataset.done;
  status(`Running ${scenario}…`);
  await new Promise((r) => setTimeout(r, 0)); // let the status paint first
  let bytes;
  const started = performance.now();
  try {
    $('stop').disabled = false;
    bytes = await runConfig(config);
  } catch (e) {
    status(`Error${e.code ? ` (${e.code})` : ''}: ${e.message}`, true);
    return;
  } finally {
    $('stop').disabled = true;
  }
  const millis = performance.now() - started;
  try {
    const trace = JSON.parse(new TextDecoder().decode(bytes));
    const sha256 = await sha256Hex(bytes);
    current = { scenario, bytes, trace, sha256 };
    if (useDefaults) renderParams(trace.params);
    const other = await counterpart(config, trace);
    current.other = other;
    renderSummary(trace, sha256, millis, other);
    renderCharts(trace);
    renderEvents(trace);
  } catch (e) {
    status(`Cannot show the trace: ${e.message}`, true);
    return;
  }
  $('download').disabled = false;
  status(`Done: ${current.trace.scenario}, seed ${current.trace.seed}.`);
  $('status').dataset.done = `${current.trace.scenario}:${current.trace.seed}`;
}

/**
 * Scenario 2 is about the retry budget, so its page also runs the same seed and parameters
 * with the budget switched the other way, shows that run's summary beside this one and plots
 * both runs' upstream calls on one chart. `null` for other scenarios.
 */
async function counterpart(config, trace) {
  if (trace.scenario !== 'breaker') return null;
  const params = { ...trace.params, budget: !trace.params.budget };
  const otherConfig = { ...config, params };
  const bytes = await runConfig(otherConfig);
  const otherTrace = JSON.parse(new TextDecoder().decode(bytes));
  const name = (on) => (on ? 'with retry budget' : 'without retry budget');
  const calls = (t) => t.ticks.map((k) => k.upstream_calls);
  trace.comparison = {
    title: 'Upstream calls per tick: with and without a retry budget',
    series: [
      { label: `upstream_calls (${name(trace.params.budget)})`, values: calls(trace) },
      { label: `upstream_calls (${name(params.budget)})`, values: calls(otherTrace) },
    ],
  };
  return { config: otherConfig, trace: otherTrace, label: name(params.budget), thisLabel: name(trace.params.budget) };
}

function download() {
  if (!current) return;
  const blob = new Blob([current.bytes], { type: 'application/json' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `heidi-sim-${current.trace.scenario}-seed${current.trace.seed}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function main() {
  startWorker();
  $('run').addEventListener('click', () => run(false));
  $('defaults').addEventListener('click', () => run(true));
  $('scenario').addEventListener('change', () => run(true));
  $('download').addEventListener('click', download);
  $('stop').addEventListener('click', stop);
  // For tests and the curious: the last trace and the canvas check.
  window.heidiSim = { current: () => current, hasInk, runConfig };
  await run(true);
}

main();
