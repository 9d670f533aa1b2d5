// Canvas charts by hand: line charts for numbers, bands for states. No dependencies, so the
// page works offline from plain files.

const PALETTE = ['#2f6fdf', '#d9480f', '#2b8a3e', '#9c36b5', '#e67700', '#0b7285', '#c2255c',
  '#5c940d', '#495057', '#1864ab'];
const STATE_COLOURS = {
  closed: '#2b8a3e', open: '#c92a2a', half_open: '#f08c00', 'half-open': '#f08c00',
  true: '#c92a2a', false: '#e9ecef', IDLE: '#adb5bd', RUNNING: '#2f6fdf', PAUSED: '#f08c00',
  STOPPED: '#495057', ERROR: '#c92a2a', COMPLETE: '#2b8a3e',
};

/** A colour for a categorical value: fixed for known states, otherwise from the palette. */
export function stateColour(value, index) {
  const known = STATE_COLOURS[String(value)];
  return known ?? PALETTE[index % PALETTE.length];
}

/** A colour for the i-th series. */
export function seriesColour(i) {
  return PALETTE[i % PALETTE.length];
}

function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * p >= max) return m * p;
  }
  return 10 * p;
}

function formatNumber(v) {
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  return Number.isInteger(v) ? String(v) : v.toPrecision(3);
}

function setup(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 520;
  const height = canvas.clientHeight || 220;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  return { ctx, width, height };
}

const MARGIN = { left: 52, right: 12, top: 10, bottom: 26 };

function timeAxis(ctx, width, height, times) {
  const x0 = MARGIN.left;
  const x1 = width - MARGIN.right;
  const t0 = times[0] ?? 0;
  const t1 = times[times.length - 1] ?? 1;
  const span = Math.max(t1 - t0, 1);
  const x = (t) => x0 + ((t - t0) / span) * (x1 - x0);
  ctx.strokeStyle = '#868e96';
  ctx.fillStyle = '#495057';
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.beginPath();
  ctx.moveTo(x0, height - MARGIN.bottom);
  ctx.lineTo(x1, height - MARGIN.bottom);
  ctx.stroke();
  for (let i = 0; i <= 5; i += 1) {
    const t = t0 + (span * i) / 5;
    const px = x(t);
    ctx.fillText(`${formatNumber(t / 1000)} s`, px, height - MARGIN.bottom + 14);
  }
  return x;
}

/**
 * A line chart. `series` is `[{label, values}]` with one value (a number or null) per time
 * in `times` (ms). Returns the number of points drawn.
 */
export function lineChart(canvas, times, series) {
  const { ctx, width, height } = setup(canvas);
  const x = timeAxis(ctx, width, height, times);
  let max = 0;
  for (const s of series) {
    for (const v of s.values) if (v != null && v > max) max = v;
  }
  max = niceMax(max);
  const y0 = height - MARGIN.bottom;
  const y1 = MARGIN.top;
  const y = (v) => y0 - (v / max) * (y0 - y1);
  ctx.textAlign = 'right';
  ctx.strokeStyle = '#e9ecef';
  for (let i = 0; i <= 4; i += 1) {
    const v = (max * i) / 4;
    ctx.beginPath();
    ctx.moveTo(MARGIN.left, y(v));
    ctx.lineTo(width - MARGIN.right, y(v));
    ctx.stroke();
    ctx.fillText(formatNumber(v), MARGIN.left - 4, y(v) + 4);
  }
  let points = 0;
  series.forEach((s, i) => {
    ctx.strokeStyle = seriesColour(i);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let pen = false;
    s.values.forEach((v, k) => {
      if (v == null) {
        pen = false;
        return;
      }
      points += 1;
      if (pen) ctx.lineTo(x(times[k]), y(v));
      else ctx.moveTo(x(times[k]), y(v));
      pen = true;
    });
    ctx.stroke();
  });
  return points;
}

/**
 * A band chart: one row per series of categorical values (strings or booleans), coloured by
 * value. Returns the distinct values of each row, for the legend.
 */
export function bandChart(canvas, times, series) {
  const { ctx, width, height } = setup(canvas);
  const x = timeAxis(ctx, width, height, times);
  const rows = series.length;
  const top = MARGIN.top;
  const rowHeight = (height - MARGIN.bottom - top) / Math.max(rows, 1);
  const step = times.length > 1 ? times[1] - times[0] : 1;
  const legends = [];
  series.forEach((s, r) => {
    const seen = [];
    s.values.forEach((v, k) => {
      if (v == null) return; // no value in this tick: left blank
      const key = String(v);
      let index = seen.indexOf(key);
      if (index < 0) {
        seen.push(key);
        index = seen.length - 1;
      }
      ctx.fillStyle = stateColour(key, index);
      const left = x(times[k]);
      const right = x(times[k] + step);
      ctx.fillRect(left, top + r * rowHeight + 2, Math.max(right - left, 1), rowHeight - 4);
    });
    ctx.fillStyle = '#495057';
    ctx.textAlign = 'right';
    ctx.font = '11px system-ui, sans-serif';
    ctx.fillText(s.label, MARGIN.left - 4, top + r * rowHeight + rowHeight / 2 + 4);
    legends.push(seen);
  });
  return legends;
}

/** Whether a canvas has any pixel that is not the white background (used by tests too). */
export function hasInk(canvas) {
  const ctx = canvas.getContext('2d');
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] !== 255 || data[i + 1] !== 255 || data[i + 2] !== 255) return true;
  }
  return false;
}
