// The detail view of one chart: ranges, aggregate, label sets, drag to zoom, custom range, downloads
// and the thresholds of its alert rules.
import { $, pad, api, explain, pickStep, makePlot, RANGES, labelsKey, parseLabels, labelsText, labelChips, fmtDur } from "./plot.js";
import { state, seriesOf, startLoad, isNewest } from "./state.js";
import { route, go, showOnly } from "./route.js";
import { failed } from "./key.js";
import { thresholdPlugin, rulesOf, setThresholds } from "./thresholds.js";

let plot = null;
let shown = null; // the last chart answer drawn, for the downloads
let zoomBase = "24h"; // the range that "Reset zoom" goes back to

function ensurePlot() {
  if (plot) return plot;
  plot = makePlot($("canvas"), [thresholdPlugin]);
  window.__pushplot.chart = plot.chart;
  zoomable($("canvas"));
  return plot;
}

export async function loadChart(st) {
  const n = startLoad();
  try {
    if (!seriesOf(st.chart).length) {
      state.list = (await api("/api/v1/charts", state.key)).charts;
      state.withSpark = false;
    }
  } catch (e) {
    if (isNewest(n)) failed(e, "list");
    return;
  }
  if (!isNewest(n)) return;
  const sets = seriesOf(st.chart);
  const wanted = st.labels != null ? labelsKey(parseLabels(st.labels)) : null;
  const series = (state.series =
    (wanted != null && sets.find((s) => labelsKey(s.labels) === wanted)) ||
    (wanted == null && (sets.find((s) => !Object.keys(s.labels).length) || sets[0])) ||
    null);
  drawLabelChips(st, sets);
  const span = st.range === "custom" ? st.to - st.from : RANGES[st.range];
  const step = pickStep(span, Math.max(200, $("plot").clientWidth - 60), series ? series.bucket_seconds : 60);
  const q = new URLSearchParams(st.range === "custom" ? { from: st.from, to: st.to } : { from: st.range });
  q.set("agg", st.agg);
  q.set("step", step);
  const labels = series ? series.labels : parseLabels(st.labels);
  if (labels && (sets.length > 1 || Object.keys(labels).length)) q.set("labels", JSON.stringify(labels));
  let resp, rules;
  try {
    [resp, rules] = await Promise.all([api(`/api/v1/charts/${encodeURIComponent(st.chart)}?${q}`, state.key), rulesOf(st.chart, state.key)]);
  } catch (e) {
    if (!isNewest(n) || failed(e, "chart")) return;
    $("banner").hidden = true;
    $("d-error").textContent =
      e.code === "chart_not_found" ? `There is no chart named “${st.chart}” (or this key may not see it).` : explain(e);
    $("d-error").hidden = false;
    shown = null;
    const now = Math.floor(Date.now() / 1000);
    setThresholds(ensurePlot().chart, [], null, 0);
    plot.show({ points: [], from: now - span, to: now, step, agg: st.agg });
    $("d-info").textContent = "";
    return;
  }
  if (!isNewest(n)) return;
  $("banner").hidden = true;
  $("d-error").hidden = true;
  shown = resp;
  setThresholds(ensurePlot().chart, rules, series, sets.length);
  plot.show(resp);
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

/** The labels of the series shown; a button per label set when the chart has several. */
function drawLabelChips(st, sets) {
  const box = $("d-labels");
  if (sets.length < 2) {
    box.replaceChildren(...labelChips(state.series && state.series.labels));
    return;
  }
  box.replaceChildren(
    ...sets.map((s) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.textContent = labelsText(s.labels) || "(no labels)";
      b.setAttribute("aria-pressed", String(s === state.series));
      b.addEventListener("click", () => go({ ...st, labels: labelsKey(s.labels) }));
      return b;
    }),
  );
}

export function drawDetail(st) {
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

/** Unix seconds as the value of a datetime-local input, in local time. */
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

// ---- downloads: the points shown, as CSV or as the JSON answer --------------------------------

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
