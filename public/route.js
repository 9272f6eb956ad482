// The view in the URL hash (#/?q=filter or #/chart/<name>?range=24h&agg=avg&labels=host:a) and which section is shown.
import { $, RANGES, AGGS } from "./plot.js";

let onChange = () => {};

export function route() {
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

/** Shows one of the three sections: login, overview or detail. */
export function showOnly(id) {
  for (const s of ["login", "overview", "detail"]) $(s).hidden = s !== id;
}
