// The dashboard: a key form, the overview of every series with sparklines, and one chart in detail.
// The URL hash holds the view: #/?q=filter or #/chart/<name>?range=24h&agg=avg&labels=host:a
import {
  api, ApiError, explain, pickStep, makePlot, RANGES, AGGS, labelsKey, parseLabels, labelsText,
  fmtNum, fmtFull, fmtDur, ago,
} from "/plot.js";

const $ = (id) => document.getElementById(id);
const STORE = "pushplot.key";
const REFRESH_MS = 30_000;
let key = localStorage.getItem(STORE) || "";
let list = null; // the last /api/v1/charts answer
let withSpark = false; // whether that answer holds sparklines (the detail view asks without)
let plot = null;
let shown = null; // the last chart answer drawn, for the downloads
let series = null; // the series shown: an entry of the list
let loads = 0;
let zoomBase = "24h";
const cards = new Map();
const groups = new Map();

// ---- state in the URL -------------------------------------------------------------------------

function route() {
  const h = location.hash.slice(1) || "/";
  const i = h.indexOf("?");
  const path = i < 0 ? h : h.slice(0, i);
  const q = new URLSearchParams(i < 0 ? "" : h.slice(i + 1));
  if (path.startsWith("/chart/")) {
    let chart = path.slice(7);
    try {
      chart = decodeURIComponent(chart);
    } catch {}
    const range = q.get("range") in RANGES || q.get("range") === "custom" ? q.get("range") : "24h";
    const from = Number(q.get("from")) || 0;
    const to = Number(q.get("to")) || 0;
    return {
      view: "chart",
      chart,
      range: range === "custom" && !(from && to && from < to) ? "24h" : range,
      from,
      to,
      agg: AGGS.includes(q.get("agg")) ? q.get("agg") : "avg",
      labels: q.get("labels"),
    };
  }
  return { view: "overview", q: q.get("q") || "" };
}

function chartHash(s) {
  const q = new URLSearchParams({ range: s.range });
  if (s.range === "custom") {
    q.set("from", s.from);
    q.set("to", s.to);
  }
  q.set("agg", s.agg);
  if (s.labels) q.set("labels", s.labels);
  return `#/chart/${encodeURIComponent(s.chart)}?${q.toString().replace(/%3A/gi, ":").replace(/%2C/gi, ",")}`;
}

/** Changes the view: a new history entry when asked (links, zoom), else the entry is replaced. */
function go(s, push = true) {
  const h = chartHash(s);
  if (push) location.hash = h;
  else {
    history.replaceState(null, "", h);
    render();
  }
}

// ---- key --------------------------------------------------------------------------------------

function showOnly(id) {
  for (const s of ["login", "overview", "detail"]) $(s).hidden = s !== id;
}

function askKey(message) {
  showOnly("login");
  $("login-error").textContent = message || "";
  $("login-error").hidden = !message;
  $("forget").hidden = !key;
  $("key-form").key.focus();
}

$("key-form").addEventListener("submit", (e) => {
  e.preventDefault();
  key = e.target.key.value.trim();
  e.target.key.value = "";
  localStorage.setItem(STORE, key);
  list = null;
  render();
});

$("forget").addEventListener("click", () => {
  localStorage.removeItem(STORE);
  key = "";
  list = null;
  askKey("The key was removed from this browser.");
});

/** Errors that concern the key send the person back to the key form with the reason. */
function failed(e, where) {
  if (e instanceof ApiError && (e.status === 401 || (e.status === 403 && where === "list"))) {
    askKey(
      e.status === 401
        ? "This key was not accepted (401 unauthorized): it is wrong or has been revoked. Enter another key."
        : `This key may not read charts (403 forbidden): ${e.message}. Use a read key or the admin token.`,
    );
    return true;
  }
  $("banner").textContent = `${explain(e)}${e.status === 0 ? " Retrying every 30 s." : ""}`;
  $("banner").hidden = false;
  return false;
}

// ---- overview ---------------------------------------------------------------------------------

async function loadOverview() {
  const n = ++loads;
  let data;
  try {
    data = await api("/api/v1/charts?spark=48", key);
  } catch (e) {
    if (n === loads) failed(e, "list");
    return;
  }
  if (n !== loads) return;
  $("banner").hidden = true;
  list = data.charts;
  withSpark = true;
  if (route().view === "overview") drawOverview();
}

const SVG = "http://www.w3.org/2000/svg";

function newCard() {
  const a = document.createElement("a");
  a.className = "card";
  a.innerHTML =
    '<div class="card-head"><span class="name"></span><span class="chips"></span></div>' +
    '<svg class="spark" viewBox="0 0 200 44" preserveAspectRatio="none" aria-hidden="true"><polygon class="area"></polygon><polyline class="line"></polyline></svg>' +
    '<div class="card-foot"><span class="value"></span><span class="change"></span><span class="ago"></span></div>';
  const q = (s) => a.querySelector(s);
  return { a, name: q(".name"), chips: q(".chips"), svg: q(".spark"), line: q(".line"), area: q(".area"), value: q(".value"), change: q(".change"), ago: q(".ago") };
}

/** The sparkline: one polyline over time, scaled into a 200 x 44 box. */
function drawSpark(c, pts) {
  const W = 200;
  const H = 44;
  const old = c.svg.querySelector("text");
  if (old) old.remove();
  if (!pts.length) {
    c.line.setAttribute("points", "");
    c.area.setAttribute("points", "");
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", "0");
    t.setAttribute("y", "26");
    t.textContent = "no points yet";
    c.svg.append(t);
    return;
  }
  if (pts.length === 1) pts = [pts[0], { ts: pts[0].ts + 1, value: pts[0].value }];
  const t0 = pts[0].ts;
  const t1 = pts[pts.length - 1].ts;
  let lo = Infinity;
  let hi = -Infinity;
  for (const p of pts) {
    lo = Math.min(lo, p.value);
    hi = Math.max(hi, p.value);
  }
  const y = (v) => (hi === lo ? H / 2 : 3 + (H - 6) * (1 - (v - lo) / (hi - lo)));
  const xy = pts.map((p) => `${(((p.ts - t0) / (t1 - t0 || 1)) * W).toFixed(1)},${y(p.value).toFixed(1)}`);
  c.line.setAttribute("points", xy.join(" "));
  c.area.setAttribute("points", `0,${H} ${xy.join(" ")} ${W},${H}`);
}

function seriesHash(s) {
  const many = list.filter((o) => o.chart === s.chart).length > 1;
  return chartHash({ chart: s.chart, range: "24h", agg: "avg", labels: many || Object.keys(s.labels).length ? labelsKey(s.labels) : null });
}

function drawOverview() {
  showOnly("overview");
  $("forget").hidden = false;
  $("empty").hidden = list.length > 0;
  $("filter").hidden = !list.length;
  $("curl").textContent = `curl -X POST ${location.origin}/api/v1/ingest -H "X-API-Key: $KEY" -d '{"chart":"users","value":42}'`;
  const seen = new Set();
  const byGroup = new Map();
  const sorted = [...list].sort((a, b) => a.chart.localeCompare(b.chart) || labelsKey(a.labels).localeCompare(labelsKey(b.labels)));
  for (const s of sorted) {
    const id = `${s.chart}\u0000${labelsKey(s.labels)}`;
    seen.add(id);
    let c = cards.get(id);
    if (!c) cards.set(id, (c = newCard()));
    c.series = s;
    c.a.href = seriesHash(s);
    c.name.textContent = c.name.title = s.chart;
    c.chips.replaceChildren(
      ...Object.keys(s.labels)
        .sort()
        .map((k) => Object.assign(document.createElement("span"), { className: "chip", textContent: `${k}=${s.labels[k]}` })),
    );
    const spark = s.spark || (s.last_ts != null ? [{ ts: s.last_ts, value: s.last_value }] : []);
    drawSpark(c, spark);
    c.value.textContent = fmtNum(s.last_value);
    c.value.title = s.last_value == null ? "" : `last value: ${s.last_value}`;
    const n = spark.length;
    if (n >= 2) {
      const a = spark[n - 2].value;
      const b = spark[n - 1].value;
      const pct = a === 0 ? null : ((b - a) / Math.abs(a)) * 100;
      c.change.textContent = b === a ? "±0%" : `${b > a ? "▲" : "▼"} ${pct == null ? fmtNum(Math.abs(b - a)) : `${Math.abs(pct) < 10 ? Math.abs(pct).toFixed(1) : Math.round(Math.abs(pct))}%`}`;
      c.change.title = `Change of the newest bucket's average against the bucket before it (${fmtNum(a)} → ${fmtNum(b)})`;
    } else {
      c.change.textContent = "";
      c.change.title = "";
    }
    c.ago.textContent = s.last_ts == null ? "" : `updated ${ago(s.last_ts)}`;
    c.ago.title = s.last_ts == null ? "" : fmtFull(s.last_ts);
    const dot = s.chart.indexOf(".");
    const g = dot > 0 ? s.chart.slice(0, dot) : "";
    if (!byGroup.has(g)) byGroup.set(g, []);
    byGroup.get(g).push(c.a);
  }
  for (const [id, c] of cards) {
    if (!seen.has(id)) {
      c.a.remove();
      cards.delete(id);
    }
  }
  const order = [...byGroup.keys()].sort((a, b) => (a === "") - (b === "") || a.localeCompare(b));
  const els = order.map((g) => {
    let el = groups.get(g);
    if (!el) {
      el = document.createElement("section");
      el.className = "group";
      el.innerHTML = '<h2></h2><div class="cards"></div>';
      el.firstChild.textContent = g || "other";
      groups.set(g, el);
    }
    el.lastChild.replaceChildren(...byGroup.get(g));
    return el;
  });
  for (const [g, el] of groups) if (!byGroup.has(g)) groups.delete(g);
  // Headings only when there is more than one group: "other" alone says nothing.
  for (const el of els) el.firstChild.hidden = els.length < 2;
  $("groups").replaceChildren(...els);
  applyFilter();
}

function applyFilter() {
  const q = $("filter").value.trim().toLowerCase();
  let any = false;
  for (const c of cards.values()) {
    const s = c.series;
    c.a.hidden = !!q && !`${s.chart} ${labelsText(s.labels)}`.toLowerCase().includes(q);
    any ||= !c.a.hidden;
  }
  for (const el of groups.values()) el.hidden = ![...el.lastChild.children].some((a) => !a.hidden);
  $("nomatch").hidden = any || !list || !list.length;
}

$("filter").addEventListener("input", () => {
  const q = $("filter").value;
  history.replaceState(null, "", q ? `#/?q=${encodeURIComponent(q)}` : "#/");
  applyFilter();
});

// ---- detail -----------------------------------------------------------------------------------

function ensurePlot() {
  if (plot) return plot;
  plot = makePlot($("canvas"));
  window.__pushplot = { chart: plot.chart, refresh };
  zoomable($("canvas"));
  return plot;
}

function plotWidth() {
  return Math.max(200, $("plot").clientWidth - 60);
}

async function loadChart(st) {
  const n = ++loads;
  try {
    if (!list || !list.some((s) => s.chart === st.chart)) {
      list = (await api("/api/v1/charts", key)).charts;
      withSpark = false;
    }
  } catch (e) {
    if (n === loads) failed(e, "list");
    return;
  }
  if (n !== loads) return;
  const sets = list.filter((s) => s.chart === st.chart);
  const wanted = st.labels != null ? labelsKey(parseLabels(st.labels)) : null;
  series =
    (wanted != null && sets.find((s) => labelsKey(s.labels) === wanted)) ||
    (wanted == null && (sets.find((s) => !Object.keys(s.labels).length) || sets[0])) ||
    null;
  drawLabelChips(st, sets);
  const span = st.range === "custom" ? st.to - st.from : RANGES[st.range];
  const step = pickStep(span, plotWidth(), series ? series.bucket_seconds : 60);
  const q = new URLSearchParams(st.range === "custom" ? { from: st.from, to: st.to } : { from: st.range });
  q.set("agg", st.agg);
  q.set("step", step);
  const labels = series ? series.labels : parseLabels(st.labels);
  if (labels && (sets.length > 1 || Object.keys(labels).length)) q.set("labels", JSON.stringify(labels));
  let resp;
  try {
    resp = await api(`/api/v1/charts/${encodeURIComponent(st.chart)}?${q}`, key);
  } catch (e) {
    if (n !== loads || failed(e, "chart")) return;
    $("banner").hidden = true;
    $("d-error").textContent =
      e.code === "chart_not_found" ? `There is no chart named “${st.chart}” (or this key may not see it).` : explain(e);
    $("d-error").hidden = false;
    shown = null;
    ensurePlot().show({ points: [], from: Math.floor(Date.now() / 1000) - span, to: Math.floor(Date.now() / 1000), step, agg: st.agg });
    $("d-info").textContent = "";
    return;
  }
  if (n !== loads) return;
  $("banner").hidden = true;
  $("d-error").hidden = true;
  shown = resp;
  ensurePlot().show(resp);
  Object.assign($("plot").dataset, { chart: resp.chart, labels: labelsKey(resp.labels), points: resp.points.length, step: resp.step });
  $("d-info").textContent = [
    `bucket ${fmtDur(resp.bucket_seconds)}`,
    `step ${fmtDur(resp.step)}`,
    `${resp.points.length} point${resp.points.length === 1 ? "" : "s"} shown (${resp.agg}${resp.agg === "avg" ? ", shaded: min–max" : ""})`,
    `keeps the newest ${resp.max_points.toLocaleString()} buckets per series`,
    ...(resp.truncated ? ["older points left out (at most 2,000 per answer)"] : []),
    `refreshed ${new Date().toLocaleTimeString()}`,
  ].join(" · ");
}

function drawLabelChips(st, sets) {
  const box = $("d-labels");
  if (sets.length < 2) {
    box.replaceChildren(
      ...(series ? Object.keys(series.labels).sort() : []).map((k) =>
        Object.assign(document.createElement("span"), { className: "chip", textContent: `${k}=${series.labels[k]}` }),
      ),
    );
    return;
  }
  box.replaceChildren(
    ...sets.map((s) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = labelsText(s.labels) || "(no labels)";
      b.setAttribute("aria-pressed", String(s === series));
      b.addEventListener("click", () => go({ ...st, labels: labelsKey(s.labels) }));
      return b;
    }),
  );
}

function drawDetail(st) {
  showOnly("detail");
  $("forget").hidden = false;
  $("d-title").textContent = st.chart;
  document.title = `${st.chart} · pushplot`;
  for (const b of $("ranges").children) b.setAttribute("aria-pressed", String(b.dataset.range === st.range));
  $("agg").value = st.agg;
  $("reset").hidden = st.range !== "custom";
  $("custom").hidden = st.range !== "custom";
  if (st.range !== "custom") zoomBase = st.range;
  const f = $("custom");
  const now = Math.floor(Date.now() / 1000);
  f.from.value = localInput(st.range === "custom" ? st.from : now - RANGES[st.range]);
  f.to.value = localInput(st.range === "custom" ? st.to : now);
  ensurePlot();
  loadChart(st);
}

const pad = (n) => String(n).padStart(2, "0");
function localInput(ts) {
  const d = new Date(ts * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

$("ranges").addEventListener("click", (e) => {
  const r = e.target.dataset && e.target.dataset.range;
  if (!r) return;
  const st = route();
  if (r === "custom") {
    const now = Math.floor(Date.now() / 1000);
    const span = st.range === "custom" ? st.to - st.from : RANGES[st.range];
    go({ ...st, range: "custom", from: st.range === "custom" ? st.from : now - span, to: st.range === "custom" ? st.to : now }, false);
  } else go({ ...st, range: r }, false);
});
$("agg").addEventListener("change", () => go({ ...route(), agg: $("agg").value }, false));
$("reset").addEventListener("click", () => go({ ...route(), range: zoomBase }));
$("custom").addEventListener("submit", (e) => {
  e.preventDefault();
  const from = Math.floor(new Date(e.target.from.value).getTime() / 1000);
  const to = Math.floor(new Date(e.target.to.value).getTime() / 1000);
  if (!(from < to)) {
    $("d-error").textContent = "“From” must be before “To”.";
    $("d-error").hidden = false;
    return;
  }
  go({ ...route(), range: "custom", from, to });
});

/** Drag across the chart to zoom: the selected time range becomes a custom range. */
function zoomable(canvas) {
  const sel = $("sel");
  let drag = null;
  const clampX = (x) => {
    const a = plot.chart.chartArea;
    return Math.min(a.right, Math.max(a.left, x));
  };
  canvas.addEventListener("pointerdown", (e) => {
    const a = plot.chart.chartArea;
    if (e.button !== 0 || !a || e.offsetX < a.left || e.offsetX > a.right) return;
    drag = { x0: e.offsetX, x1: e.offsetX };
    canvas.setPointerCapture(e.pointerId);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    drag.x1 = clampX(e.offsetX);
    const a = plot.chart.chartArea;
    Object.assign(sel.style, {
      left: `${canvas.offsetLeft + Math.min(drag.x0, drag.x1)}px`,
      width: `${Math.abs(drag.x1 - drag.x0)}px`,
      top: `${canvas.offsetTop + a.top}px`,
      height: `${a.bottom - a.top}px`,
    });
    sel.hidden = Math.abs(drag.x1 - drag.x0) < 3;
  });
  const end = (e) => {
    if (!drag) return;
    const { x0, x1 } = drag;
    drag = null;
    sel.hidden = true;
    if (e.type !== "pointerup" || Math.abs(x1 - x0) < 6) return;
    const scale = plot.chart.scales.x;
    const from = Math.floor(scale.getValueForPixel(Math.min(x0, x1)));
    const to = Math.ceil(scale.getValueForPixel(Math.max(x0, x1)));
    if (to - from >= 60) go({ ...route(), range: "custom", from, to });
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
}

// ---- downloads --------------------------------------------------------------------------------

function fileName(ext) {
  const st = route();
  const range = st.range === "custom" ? `${st.from}-${st.to}` : st.range;
  return `${st.chart.replace(/[^\w.-]+/g, "_")}-${range}-${st.agg}.${ext}`;
}

function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = Object.assign(document.createElement("a"), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

$("csv").addEventListener("click", () => {
  if (!shown) return;
  const rows = shown.points.map((p) => [p.ts, new Date(p.ts * 1000).toISOString(), p.value, p.count, p.sum, p.min, p.max, p.last].join(","));
  download(fileName("csv"), ["ts,time,value,count,sum,min,max,last", ...rows].join("\n") + "\n", "text/csv");
});
$("json").addEventListener("click", () => {
  if (shown) download(fileName("json"), JSON.stringify(shown, null, 2), "application/json");
});

// ---- embed ------------------------------------------------------------------------------------

let embedKey = null;

function fillEmbed() {
  const st = route();
  const isPublic = series && series.public;
  const k = embedKey || (isPublic ? "" : "READ_KEY");
  const enc = encodeURIComponent(st.chart);
  const q = new URLSearchParams();
  if (k) q.set("key", k);
  q.set("range", st.range === "custom" ? "24h" : st.range);
  if (st.agg !== "avg") q.set("agg", st.agg);
  if (series && (Object.keys(series.labels).length || list.filter((s) => s.chart === st.chart).length > 1)) q.set("labels", labelsKey(series.labels));
  const link = `${location.origin}/embed/${enc}?${q.toString().replace(/%3A/gi, ":").replace(/%2C/gi, ",")}`;
  const img = new URLSearchParams();
  if (k) img.set("key", k);
  if (st.range !== "custom" && st.range !== "24h") img.set("range", st.range);
  if (st.agg !== "avg") img.set("agg", st.agg);
  $("e-iframe").value = `<iframe src="${link}" width="600" height="300" frameborder="0"></iframe>`;
  $("e-link").value = link;
  $("e-md").value = `![${st.chart.replace(/[\[\]]/g, "")}](${location.origin}/img/${enc}.svg${img.size ? `?${img}` : ""})`;
  $("e-note").textContent = embedKey
    ? "The snippets hold a new read key that can read this chart only. It is shown only here: copy what you need now."
    : isPublic
      ? "This chart is public: the snippets need no key."
      : "Replace READ_KEY with a read key, or make one that can read only this chart:";
}

$("embed").addEventListener("click", () => {
  embedKey = null;
  $("e-status").textContent = "";
  fillEmbed();
  $("embed-dialog").showModal();
});
for (const id of ["e-iframe", "e-link", "e-md"]) $(id).addEventListener("focus", (e) => e.target.select());
$("e-mint").addEventListener("click", async () => {
  const chart = route().chart;
  $("e-status").textContent = "Making a key…";
  try {
    const r = await api("/api/v1/keys", key, "POST", { scope: "read", chart, name: `embed: ${chart}`.slice(0, 100) });
    embedKey = r.key;
    $("e-status").textContent = `Made read key ${r.id}, limited to charts starting with “${r.charts}”. Revoke it with DELETE /api/v1/keys/${r.id}.`;
    fillEmbed();
  } catch (e) {
    $("e-status").textContent =
      e instanceof ApiError && (e.status === 401 || e.status === 403)
        ? `Only the admin token can make keys; the key this browser holds cannot (${e.status} ${e.code}: ${e.message}).`
        : explain(e);
  }
});

// ---- start ------------------------------------------------------------------------------------

function render() {
  $("banner").hidden = true;
  if (!key) return askKey();
  const st = route();
  if (st.view === "chart") return drawDetail(st);
  document.title = "pushplot";
  if ($("filter").value !== st.q) $("filter").value = st.q;
  if (list && withSpark) drawOverview();
  else showOnly("overview");
  loadOverview();
}

function refresh() {
  if (!key || document.hidden || !$("login").hidden) return;
  const st = route();
  if (st.view === "overview") loadOverview();
  else if (st.range !== "custom") loadChart(st);
}

window.__pushplot = { chart: null, refresh };
addEventListener("hashchange", render);
setInterval(refresh, REFRESH_MS);
document.addEventListener("visibilitychange", () => document.hidden || refresh());
render();
