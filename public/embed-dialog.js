// The Embed dialog of the detail view: iframe, link and README image snippets, and minting a read key for one chart.
import { $, api, ApiError, explain, labelsKey } from "./plot.js";
import { state, seriesOf } from "./state.js";
import { route, readable } from "./route.js";

let embedKey = null; // a key minted for this chart, shown in the snippets until the dialog reopens

/** What a key can reach, from its `chart` (exactly one chart) or `charts` (a name prefix); both null: every chart. */
export function keyReach(k) {
  if (k.chart != null) return `limited to the chart “${k.chart}”`;
  if (k.charts != null) return `limited to charts starting with “${k.charts}”`;
  return "for every chart";
}

function fillEmbed() {
  const st = route();
  const series = state.series;
  const isPublic = series && series.public;
  const k = embedKey || (isPublic ? "" : "READ_KEY");
  const enc = encodeURIComponent(st.chart);
  const q = new URLSearchParams();
  if (k) q.set("key", k);
  q.set("range", st.range === "custom" ? "24h" : st.range);
  if (st.agg !== "avg") q.set("agg", st.agg);
  if (series && (Object.keys(series.labels).length || seriesOf(st.chart).length > 1)) q.set("labels", labelsKey(series.labels));
  const link = `${location.origin}/embed/${enc}?${readable(q)}`;
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
    const r = await api("/api/v1/keys", state.key, "POST", { scope: "read", chart, name: `embed: ${chart}`.slice(0, 100) });
    embedKey = r.key;
    $("e-status").textContent = `Made read key ${r.id}, ${keyReach(r)}. Revoke it with DELETE /api/v1/keys/${r.id}.`;
    fillEmbed();
  } catch (e) {
    $("e-status").textContent =
      e instanceof ApiError && (e.status === 401 || e.status === 403)
        ? `Only the admin token can make keys; the key this browser holds cannot (${e.status} ${e.code}: ${e.message}).`
        : explain(e);
  }
});
