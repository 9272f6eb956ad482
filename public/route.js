// The view in the URL hash (#/?q=filter, #/chart/<name>?range=24h&agg=avg&labels=host:a, #/jobs,
// #/jobs/<name>, #/alerts?chart=<name>, #/channels) and which section is shown.
import { $, RANGES, AGGS } from "./plot.js";

let onChange = () => {};

export function route() {
  const h = location.hash.slice(1) || "/";
  const i = h.indexOf("?");
  const path = i < 0 ? h : h.slice(0, i);
  const q = new URLSearchParams(i < 0 ? "" : h.slice(i + 1));
  if (path === "/jobs" || path === "/jobs/") return { view: "jobs" };
  if (path.startsWith("/jobs/")) return { view: "job", job: decoded(path.slice(6)) };
  if (path === "/alerts") return { view: "alerts", chart: q.get("chart") || "" };
  if (path === "/channels") return { view: "channels" };
  if (path.startsWith("/chart/")) {
    const chart = decoded(path.slice(7));
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

function decoded(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** Query parameters as text, with the `:` and `,` of label sets left readable. */
export const readable = (q) => q.toString().replace(/%3A/gi, ":").replace(/%2C/gi, ",");

export function chartHash(s) {
  const q = new URLSearchParams({ range: s.range });
  if (s.range === "custom") {
    q.set("from", s.from);
    q.set("to", s.to);
  }
  q.set("agg", s.agg);
  if (s.labels) q.set("labels", s.labels);
  return `#/chart/${encodeURIComponent(s.chart)}?${readable(q)}`;
}

/** Changes the view: a new history entry when asked (links, zoom), else the entry is replaced. */
export function go(s, push = true) {
  const h = chartHash(s);
  if (push) location.hash = h;
  else {
    history.replaceState(null, "", h);
    onChange();
  }
}

/** `draw` shows the view of the URL: on every hash change, on go() and on rerender(). */
export function onRoute(draw) {
  onChange = draw;
  addEventListener("hashchange", draw);
}
export const rerender = () => onChange();

export const jobHash = (job) => `#/jobs/${encodeURIComponent(job)}`;
export const alertsHash = (chart) => `#/alerts?chart=${encodeURIComponent(chart)}`;

const SECTIONS = ["login", "overview", "detail", "jobs", "job", "alerts", "channels"];
/** Shows one section (login, overview, detail, jobs, job, alerts or channels), and the navigation
 * with the current view marked when a key is in use. */
export function showOnly(id) {
  for (const s of SECTIONS) $(s).hidden = s !== id;
  const area = { overview: "charts", detail: "charts", job: "jobs" }[id] || id;
  $("nav").hidden = id === "login";
  $("failing").classList.toggle("off", id === "login");
  for (const a of $("nav").querySelectorAll("a[data-area]")) {
    if (a.dataset.area === area) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}
