// Shared by the dashboard (app.js and its modules) and the embed page (embed.js): API calls,
// formatting, the step that fits a width, local-time axis ticks and the Chart.js line with its band.

export const $ = (id) => document.getElementById(id);
export const pad = (n) => String(n).padStart(2, "0");

export const RANGES = { "1h": 3600, "6h": 21600, "24h": 86400, "7d": 604800, "30d": 2592000 };
export const AGGS = ["avg", "sum", "min", "max", "last", "count"];

export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body; // the JSON answer, when there was one
  }
}

/** Calls the API with the key in X-API-Key; answers the JSON body or throws an ApiError. */
export async function api(path, key, method = "GET", body) {
  const headers = {};
  if (key) headers["X-API-Key"] = key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  } catch {
    throw new ApiError(0, "network", "The server could not be reached.");
  }
  let data = null;
  try {
    data = await res.json();
  } catch {}
  if (!res.ok) {
    const e = data && data.error;
    throw new ApiError(res.status, (e && e.code) || `http_${res.status}`, (e && e.message) || res.statusText || `HTTP ${res.status}`, data);
  }
  return data;
}

/** A sentence for a person, from an ApiError. */
export function explain(e) {
  if (!(e instanceof ApiError)) return String((e && e.message) || e);
  if (e.status === 401) return "The key was not accepted (401 unauthorized): it is wrong or has been revoked.";
  if (e.status === 403) return `This key may not do that (403 forbidden): ${e.message}`;
  if (e.status === 0) return e.message;
  return `${e.message} (${e.status} ${e.code})`;
}

/** Seconds in a duration such as 90m, 24h, 7d, 2w (what the API accepts for from/to). */
export function durationSeconds(raw) {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(raw || "");
  return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]] : null;
}

const STEPS = [60, 300, 900, 3600, 21600, 86400];

/** About one point per 3 px: the first nice step that is at least that coarse and a multiple of
 * the bucket size, never below the bucket size. */
export function pickStep(span, width, bucket) {
  const raw = span / Math.max(1, Math.floor(width / 3));
  for (const s of STEPS) if (s >= raw && s >= bucket && s % bucket === 0) return s;
  return Math.max(bucket, Math.ceil(raw / bucket) * bucket);
}

// Labels: one canonical text per label set, short when it can be (host:a,region:eu), else JSON.
export function labelsKey(labels) {
  const keys = Object.keys(labels || {}).sort();
  if (!keys.length) return "{}";
  if (keys.some((k) => /[,:={}]|^\s|\s$/.test(labels[k]) || labels[k] === "")) {
    const o = {};
    for (const k of keys) o[k] = labels[k];
    return JSON.stringify(o);
  }
  return keys.map((k) => `${k}:${labels[k]}`).join(",");
}
export function parseLabels(text) {
  if (!text) return null;
  if (text.trim().startsWith("{")) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }
  const o = {};
  for (const pair of text.split(",")) {
    const i = pair.search(/[:=]/);
    if (i > 0) o[pair.slice(0, i).trim()] = pair.slice(i + 1).trim();
  }
  return o;
}
export const labelsText = (labels) =>
  Object.keys(labels || {})
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(" ");
/** One chip per label, name=value, as text: for a card or the detail head. */
export const labelChips = (labels) =>
  Object.keys(labels || {})
    .sort()
    .map((k) => Object.assign(document.createElement("span"), { className: "chip", textContent: `${k}=${labels[k]}` }));

const nf = {};
const numberFormat = (o) => nf[JSON.stringify(o)] || (nf[JSON.stringify(o)] = new Intl.NumberFormat(undefined, o));

/** Short number for cards and axes. */
export function fmtNum(v) {
  if (v == null || !Number.isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e6) return numberFormat({ notation: "compact", maximumFractionDigits: 2 }).format(v);
  if (a >= 1000) return numberFormat({ maximumFractionDigits: 0 }).format(v);
  if (a >= 1 || a === 0) return numberFormat({ maximumFractionDigits: 2 }).format(v);
  return numberFormat({ maximumSignificantDigits: 3 }).format(v);
}
/** The value as stored (15 significant digits drop float noise only). */
export const fmtExact = (v) => (v == null ? "–" : numberFormat({ maximumSignificantDigits: 15 }).format(v));

export function fmtDur(s) {
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

export function ago(ts, now = Date.now() / 1000) {
  const s = Math.max(0, now - ts);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export const fmtFull = (ts) =>
  new Date(ts * 1000).toLocaleString(undefined, { weekday: "short", year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const fmtDay = (d) => d.toLocaleDateString(undefined, { month: "short", day: "numeric" });

function fmtTick(ts, iv) {
  const d = new Date(ts * 1000);
  if (iv >= 86400 || (d.getHours() === 0 && d.getMinutes() === 0)) return fmtDay(d);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const TICKS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000];

/** Tick positions on whole local minutes, hours or days, at most maxCount of them. */
export function timeTicks(min, max, maxCount) {
  const span = max - min;
  const iv = TICKS.find((t) => span / t <= maxCount) || Math.ceil(span / maxCount / 86400) * 86400;
  const out = [];
  if (iv < 86400) {
    const off = -new Date(min * 1000).getTimezoneOffset() * 60; // local time = t + off
    for (let t = Math.ceil((min + off) / iv) * iv - off; t <= max; t += iv) out.push(t);
  } else {
    const d = new Date(min * 1000);
    d.setHours(0, 0, 0, 0);
    if (d.getTime() / 1000 < min) d.setDate(d.getDate() + 1);
    for (; d.getTime() / 1000 <= max; d.setDate(d.getDate() + iv / 86400)) out.push(d.getTime() / 1000);
  }
  return { iv, ticks: out };
}

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * A Chart.js line over unix seconds (a linear axis, no date adapter): dataset 0 and 1 are the min
 * and max band (shown behind avg), dataset 2 is the chosen aggregate. `plugins`: Chart.js plugin
 * objects of this chart only (the detail view's threshold lines).
 */
export function makePlot(canvas, plugins = []) {
  const C = window.Chart;
  C.defaults.font.family = getComputedStyle(document.body).fontFamily;
  let info = { step: 60, agg: "avg", points: [] };
  let radius = 0; // dots when the points are few; scriptable, as Chart.js caches plain options
  const line = { data: [], borderWidth: 1.75, pointRadius: () => radius, pointHoverRadius: 4, tension: 0, fill: false };
  const band = { data: [], borderWidth: 0, pointRadius: 0, pointHoverRadius: 0, tension: 0 };
  const chart = new C(canvas, {
    type: "line",
    data: { datasets: [{ ...band, label: "min", fill: false }, { ...band, label: "max", fill: "-1" }, { ...line, label: "value" }] },
    plugins,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      normalized: true,
      interaction: { mode: "index", intersect: false },
      layout: { padding: { right: 8 } },
      scales: {
        x: {
          type: "linear",
          grid: { display: false },
          ticks: {
            maxRotation: 0,
            autoSkip: true,
            callback(v) {
              return fmtTick(v, this._ppIv || 3600);
            },
          },
          afterBuildTicks(scale) {
            const { iv, ticks } = timeTicks(scale.min, scale.max, Math.max(2, Math.floor((scale.width || 600) / 75)));
            scale._ppIv = iv;
            scale.ticks = ticks.map((value) => ({ value }));
          },
        },
        y: { grace: "5%", ticks: { callback: (v) => fmtNum(v), maxTicksLimit: 6 } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          filter: (item) => item.datasetIndex === 2,
          displayColors: false,
          callbacks: {
            title: (items) => (items.length ? `${fmtFull(items[0].parsed.x)} (${fmtDur(info.step)})` : ""),
            label: (item) => `${info.agg}: ${fmtExact(item.parsed.y)}`,
            afterLabel: (item) => {
              const p = info.points[item.dataIndex];
              return p ? `min ${fmtExact(p.min)} · max ${fmtExact(p.max)} · count ${p.count}` : "";
            },
          },
        },
      },
    },
  });

  function theme() {
    const accent = cssVar("--accent");
    const [mn, mx, v] = chart.data.datasets;
    v.borderColor = v.backgroundColor = v.pointBackgroundColor = accent;
    mn.borderColor = mx.borderColor = "transparent";
    mx.backgroundColor = cssVar("--band");
    const grid = cssVar("--grid");
    const muted = cssVar("--muted");
    for (const s of Object.values(chart.options.scales)) {
      s.ticks.color = muted;
      s.border = { color: grid };
      if (s.grid.display !== false) s.grid.color = grid;
    }
    chart.update("none");
  }
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", theme);
  theme();

  /** Shows one chart answer, replacing the datasets' data in place: no new chart, no flicker. */
  function show(resp) {
    const pts = resp.points;
    info = { step: resp.step, agg: resp.agg, points: pts };
    const [mn, mx, v] = chart.data.datasets;
    const withBand = resp.agg === "avg";
    mn.data = withBand ? pts.map((p) => ({ x: p.ts, y: p.min })) : [];
    mx.data = withBand ? pts.map((p) => ({ x: p.ts, y: p.max })) : [];
    v.data = pts.map((p) => ({ x: p.ts, y: p.value }));
    radius = pts.length <= 2 || pts.length < canvas.clientWidth / 12 ? 2.5 : 0;
    chart.options.scales.x.min = resp.from;
    chart.options.scales.x.max = Math.max(resp.to, resp.from + resp.step);
    chart.update("none");
  }

  return { chart, show, theme };
}
