// The Alerts view: every rule (or those of one chart) with its state, since when, its last value,
// its condition in words, a link to its chart, its history of state changes and, for admins, Delete.
import { $, api, ApiError, explain, fmtExact, fmtFull, labelsKey, labelChips, AGGS } from "./plot.js";
import { state, setAdmin, startLoad, isNewest } from "./state.js";
import { showOnly, chartHash } from "./route.js";
import { failed } from "./key.js";
import { pill, timeEl, durText, el } from "./ops.js";

const open = new Set(); // ids of rules whose history is unfolded, kept across refreshes

/** The rule's condition in words: "last over 15m < 10", "no point for 2h". */
export function condition(r) {
  if (r.absent != null) return `no point for ${durText(r.absent)}`;
  return `${r.agg} over ${durText(r.window)} ${r.op} ${fmtExact(r.value)}`;
}

/** A threshold rule draws a line on its chart; an absence rule does not. */
export const isThreshold = (r) => r.op != null && r.value != null;

export function drawAlertsView(st) {
  showOnly("alerts");
  $("forget").hidden = false;
  document.title = st.chart ? `Alerts on ${st.chart} · pushplot` : "Alerts · pushplot";
  loadAlerts(st);
}

export async function loadAlerts(st) {
  const n = startLoad();
  let data;
  try {
    data = await api(`/api/v1/alerts${st.chart ? `?chart=${encodeURIComponent(st.chart)}` : ""}`, state.key);
  } catch (e) {
    if (!isNewest(n) || failed(e, "alerts")) return;
    $("banner").hidden = true;
    $("alerts-error").textContent = explain(e);
    $("alerts-error").hidden = false;
    return;
  }
  if (!isNewest(n)) return;
  $("banner").hidden = true;
  $("alerts-error").hidden = true;
  drawAlerts(st, data.alerts);
}

function drawAlerts(st, rules) {
  const firing = rules.filter((r) => r.state === "firing");
  // Firing rules first, then by chart and name.
  const sorted = [...rules].sort(
    (a, b) => (b.state === "firing") - (a.state === "firing") || a.chart.localeCompare(b.chart) || (a.name || "").localeCompare(b.name || ""),
  );
  $("alerts-list").replaceChildren(...sorted.map((r) => ruleCard(r, st)));
  $("alerts-empty").hidden = rules.length > 0;
  $("alerts-all").hidden = !st.chart;
  $("alerts-curl").textContent = `curl -X POST ${location.origin}/api/v1/alerts -H "X-API-Key: $ADMIN_TOKEN" -d '{"chart":"disk.free","agg":"last","window":"15m","op":"<","value":10,"name":"disk almost full"}'`;
  $("alerts-count").textContent = [
    `${rules.length} rule${rules.length === 1 ? "" : "s"}${st.chart ? ` on ${st.chart}` : ""}`,
    ...(firing.length ? [`${firing.length} firing`] : []),
  ].join(" · ");
}

function ruleCard(r, st) {
  const card = el("article", `rule${r.state === "firing" ? " alarm" : ""}`);
  card.dataset.id = r.id;
  const head = el("div", "rule-head");
  head.append(pill(r.state), el("h3", "name", r.name || condition(r)), ...labelChips(r.labels));
  if (state.admin !== false) {
    const del = el("button", "danger", "Delete");
    del.type = "button";
    del.addEventListener("click", () => remove(r, st, del));
    head.append(del);
  }
  const cond = el("p", "cond");
  const link = el("a", "chart", r.chart);
  const agg = AGGS.includes(r.agg) ? r.agg : "avg";
  link.href = chartHash({ chart: r.chart, range: "24h", agg, labels: Object.keys(r.labels || {}).length ? labelsKey(r.labels) : null });
  link.title = "Open the chart";
  cond.append(link, el("span", "muted", ": "), el("span", "words", condition(r)));
  const meta = el("p", "meta muted");
  meta.append(`${r.state} since `, timeEl(r.since));
  // An absence rule has no value to show.
  if (r.absent == null) meta.append(" · last value ", el("span", "value", r.last_value == null ? "–" : fmtExact(r.last_value)));
  if (r.judged_at != null) meta.append(" · judged ", timeEl(r.judged_at));
  if (Array.isArray(r.channels) && r.channels.length) meta.append(` · notifies ${r.channels.join(", ")}`);
  card.append(head, cond, meta, history(r));
  return card;
}

/** The rule's state changes, newest first, folded away. */
function history(r) {
  const items = [...(r.history || [])].sort((a, b) => b.at - a.at);
  const d = el("details", "history");
  d.open = open.has(r.id);
  d.addEventListener("toggle", () => (d.open ? open.add(r.id) : open.delete(r.id)));
  d.append(el("summary", null, items.length ? `History (${items.length} change${items.length === 1 ? "" : "s"})` : "History (no change yet)"));
  const ol = el("ol");
  for (const h of items) {
    const li = el("li");
    const t = el("time", null, fmtFull(h.at));
    t.dateTime = new Date(h.at * 1000).toISOString();
    li.append(t, " ", h.from == null ? el("span", "muted", "(new)") : pill(h.from), " → ", pill(h.to));
    if (h.value != null) li.append(el("span", "muted", ` value ${fmtExact(h.value)}`));
    ol.append(li);
  }
  d.append(ol);
  return d;
}

async function remove(r, st, button) {
  if (!confirm(`Delete the alert rule “${r.name || condition(r)}” on ${r.chart}?`)) return;
  button.disabled = true;
  try {
    await api(`/api/v1/alerts/${encodeURIComponent(r.id)}`, state.key, "DELETE");
  } catch (e) {
    button.disabled = false;
    const refused = e instanceof ApiError && e.status === 403;
    $("alerts-error").textContent = refused ? `Only the admin token or an admin key may delete rules (403 forbidden: ${e.message}).` : explain(e);
    $("alerts-error").hidden = false;
    if (refused) {
      // Deleting looks at the scope alone, so this key is not an admin's: no more Delete buttons.
      setAdmin(false);
      for (const b of document.querySelectorAll("#alerts-list button.danger")) b.remove();
    }
    return;
  }
  open.delete(r.id);
  loadAlerts(st);
}
