// The embed page, served for /embed/{chart}: one chart filling the frame, refreshed every 60 s.
// Options: ?key=&range=24h&agg=avg&theme=light|dark|auto&title=1&labels=host:a
// Served under the Worker's Content-Security-Policy (script-src 'self', style-src 'self'): no inline
// script or style attribute in embed.html; styles set from here go through element.style or classes.
import { $, api, ApiError, explain, pickStep, makePlot, durationSeconds, AGGS, parseLabels, labelsText, fmtNum } from "./plot.js";

const q = new URLSearchParams(location.search);
let chart = location.pathname.replace(/^\/embed\//, "");
try {
  chart = decodeURIComponent(chart);
} catch {}
const key = q.get("key") || "";
const range = durationSeconds(q.get("range")) ? q.get("range") : "24h";
const agg = AGGS.includes(q.get("agg")) ? q.get("agg") : "avg";
const labels = parseLabels(q.get("labels"));
const theme = q.get("theme");
if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
document.title = `${chart} · pushplot`;
$("canvas").setAttribute("aria-label", `Chart of ${chart}, last ${range}`);
if (q.get("title") === "1") {
  $("head").hidden = false;
  $("title").textContent = labels ? `${chart} ${labelsText(labels)}` : chart;
  $("title").title = $("title").textContent;
}

let plot = null;
let bucket = null;

// The key travels on as ?key=, as it came: the Worker takes only read keys from a URL, so an
// embed made with an ingest or admin key fails instead of handing that key to every viewer.
function url(params) {
  const p = new URLSearchParams(params);
  if (labels) p.set("labels", JSON.stringify(labels));
  if (key) p.set("key", key);
  return `/api/v1/charts/${encodeURIComponent(chart)}?${p}`;
}

function fail(e) {
  let text = explain(e);
  if (e instanceof ApiError && e.status === 401)
    text = key
      ? "This embed's key was not accepted (401): it is wrong or has been revoked. Make a new read key for this chart in the dashboard."
      : "This chart is not public: add ?key=<read key> to the embed URL.";
  else if (e instanceof ApiError && e.code === "url_key_not_allowed")
    text = "This embed's key is not a read key. Embed URLs are public: make a read key for this chart in the dashboard.";
  else if (e instanceof ApiError && e.code === "chart_not_found") text = `There is no chart named “${chart}”.`;
  $("msg").textContent = text;
  $("msg").hidden = false;
  $("box").hidden = true;
}

async function load() {
  try {
    // The bucket size decides the steps allowed; a tiny first query learns it.
    if (bucket == null) bucket = (await api(url({ from: Math.floor(Date.now() / 1000) - 1, agg }))).bucket_seconds;
    const step = pickStep(durationSeconds(range), $("box").clientWidth - 50 || 500, bucket);
    const resp = await api(url({ from: range, agg, step }));
    $("msg").hidden = true;
    $("box").hidden = false;
    plot ||= makePlot($("canvas"));
    window.__pushplot = { chart: plot.chart, refresh: load };
    plot.show(resp);
    const last = resp.points[resp.points.length - 1];
    $("value").textContent = last ? fmtNum(last.value) : "";
    $("box").dataset.points = resp.points.length;
  } catch (e) {
    fail(e);
  }
}

load();
setInterval(() => document.hidden || load(), 60_000);
