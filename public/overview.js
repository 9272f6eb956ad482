// The overview: every series as a card with a sparkline, grouped by the name before the first ".", and the filter.
import { $, api, labelsKey, labelsText, labelChips, fmtNum, fmtFull, ago } from "./plot.js";
import { state, seriesOf, startLoad, isNewest } from "./state.js";
import { route, chartHash, showOnly } from "./route.js";
import { failed } from "./key.js";
import { SPARK, FULL_EVERY, nextSince, mergeSince } from "./spark-merge.js";

const SVG = "http://www.w3.org/2000/svg";
const cards = new Map(); // chart and labels -> card, kept across refreshes
const groups = new Map(); // group name -> its section

// A refresh asks only for the buckets since the last answer (a few rows a series instead of the
// whole sparkline), merged into the list; every FULL_EVERY-th asks for everything again.
let since = null;
let partials = 0;

export async function loadOverview() {
  const n = startLoad();
  const incremental = since != null && state.withSpark && state.list && partials < FULL_EVERY - 1;
  const asked = since;
  let data;
  try {
    data = await api(`/api/v1/charts?spark=${SPARK}${incremental ? `&since=${asked}` : ""}`, state.key);
  } catch (e) {
    if (isNewest(n)) failed(e, "list");
    return;
  }
  if (!isNewest(n)) return;
  $("banner").hidden = true;
  // The key may have been forgotten while this was on its way: then it is a full list.
  const merge = incremental && state.list;
  partials = merge ? partials + 1 : 0;
  state.list = merge ? mergeSince(state.list, data.charts, asked) : data.charts;
  since = nextSince(data);
  state.withSpark = true;
  if (route().view === "overview") drawOverview();
}

/** A card from the template in index.html, with its parts at hand. */
function newCard() {
  const a = $("t-card").content.firstElementChild.cloneNode(true);
  const q = (s) => a.querySelector(s);
  return { a, name: q(".name"), chips: q(".chips"), svg: q(".spark"), line: q(".line"), area: q(".area"), value: q(".value"), change: q(".change"), ago: q(".ago") };
}

/** The sparkline: one polyline over time, scaled into a 200 x 44 box (c holds the svg, its line and
 * area); the jobs view draws durations with it too. */
export function drawSpark(c, pts) {
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

/** The change of the newest bucket's average against the one before it. */
function drawChange(c, spark) {
  const n = spark.length;
  if (n < 2) {
    c.change.textContent = c.change.title = "";
    return;
  }
  const a = spark[n - 2].value;
  const b = spark[n - 1].value;
  const pct = a === 0 ? null : Math.abs(((b - a) / a) * 100);
  const size = pct == null ? fmtNum(Math.abs(b - a)) : `${pct < 10 ? pct.toFixed(1) : Math.round(pct)}%`;
  c.change.textContent = b === a ? "±0%" : `${b > a ? "▲" : "▼"} ${size}`;
  c.change.title = `Change of the newest bucket's average against the bucket before it (${fmtNum(a)} → ${fmtNum(b)})`;
}

function drawCard(c, s) {
  const many = seriesOf(s.chart).length > 1;
  c.series = s;
  c.a.href = chartHash({ chart: s.chart, range: "24h", agg: "avg", labels: many || Object.keys(s.labels).length ? labelsKey(s.labels) : null });
  c.name.textContent = c.name.title = s.chart;
  c.chips.replaceChildren(...labelChips(s.labels));
  const spark = s.spark || (s.last_ts != null ? [{ ts: s.last_ts, value: s.last_value }] : []);
  drawSpark(c, spark);
  drawChange(c, spark);
  c.value.textContent = fmtNum(s.last_value);
  c.value.title = s.last_value == null ? "" : `last value: ${s.last_value}`;
  c.ago.textContent = s.last_ts == null ? "" : `updated ${ago(s.last_ts)}`;
  c.ago.title = s.last_ts == null ? "" : fmtFull(s.last_ts);
}

export function drawOverview() {
  const list = state.list;
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
    drawCard(c, s);
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
      el = $("t-group").content.firstElementChild.cloneNode(true);
      el.querySelector("h2").textContent = g || "other";
      groups.set(g, el);
    }
    el.querySelector(".cards").replaceChildren(...byGroup.get(g));
    return el;
  });
  for (const g of groups.keys()) if (!byGroup.has(g)) groups.delete(g);
  // Headings only when there is more than one group: "other" alone says nothing.
  for (const el of els) el.querySelector("h2").hidden = els.length < 2;
  $("groups").replaceChildren(...els);
  applyFilter();
}

/** Hides the cards the filter leaves out, and tells each group how many cards it shows (its width). */
function applyFilter() {
  const q = $("filter").value.trim().toLowerCase();
  let any = false;
  for (const c of cards.values()) {
    const s = c.series;
    c.a.hidden = !!q && !`${s.chart} ${labelsText(s.labels)}`.toLowerCase().includes(q);
    any ||= !c.a.hidden;
  }
  for (const el of groups.values()) {
    const shown = [...el.querySelector(".cards").children].filter((a) => !a.hidden).length;
    el.hidden = shown === 0;
    el.dataset.cards = shown < 4 ? String(shown) : "many";
  }
  $("nomatch").hidden = any || !state.list || !state.list.length;
}

$("filter").addEventListener("input", () => {
  const q = $("filter").value;
  history.replaceState(null, "", q ? `#/?q=${encodeURIComponent(q)}` : "#/");
  applyFilter();
});
