// Alert thresholds on the detail chart: each threshold rule of the series shown is a dashed
// horizontal line labelled with the rule's name, red while it fires, muted otherwise. Drawn by a
// small Chart.js plugin of our own; the y axis stretches to include every line.
import { $, api, cssVar, labelsKey, fmtExact } from "./plot.js";
import { isThreshold, condition } from "./alerts.js";
import { alertsHash } from "./route.js";
import { el } from "./ops.js";

export const thresholdPlugin = {
  id: "ppThresholds",
  afterDatasetsDraw(chart) {
    const lines = chart.$thresholds || [];
    const a = chart.chartArea;
    const y = chart.scales.y;
    if (!lines.length || !a || !y) return;
    const ctx = chart.ctx;
    ctx.save();
    ctx.font = `12px ${getComputedStyle(document.body).fontFamily}`;
    ctx.lineWidth = 1.5;
    for (const t of lines) {
      const py = y.getPixelForValue(t.value);
      t.y = py;
      if (!(py >= a.top - 1 && py <= a.bottom + 1)) continue;
      const color = cssVar(t.firing ? "--error" : "--muted");
      ctx.strokeStyle = color;
      ctx.setLineDash([6, 4]);
      ctx.beginPath();
      ctx.moveTo(a.left, py);
      ctx.lineTo(a.right, py);
      ctx.stroke();
      // The label sits above the line at the right, below it when the line is near the top.
      const text = `${t.name} ${t.op} ${fmtExact(t.value)}${t.firing ? " · firing" : ""}`;
      const w = ctx.measureText(text).width;
      const ty = py - a.top < 18 ? py + 15 : py - 5;
      ctx.setLineDash([]);
      ctx.fillStyle = cssVar("--panel");
      ctx.globalAlpha = 0.85;
      ctx.fillRect(a.right - w - 8, ty - 12, w + 6, 16);
      ctx.globalAlpha = 1;
      ctx.fillStyle = color;
      ctx.textAlign = "right";
      ctx.fillText(text, a.right - 5, ty);
    }
    ctx.restore();
  },
};

/** The rules on a chart, or [] when they cannot be read (the chart itself still shows). */
export async function rulesOf(chart, key) {
  try {
    return (await api(`/api/v1/alerts?chart=${encodeURIComponent(chart)}`, key)).alerts || [];
  } catch {
    return [];
  }
}

/** Whether a rule watches the series shown: same labels, or no labels on a chart of one series. */
const watches = (r, series, count) => labelsKey(r.labels) === labelsKey(series ? series.labels : {}) || (labelsKey(r.labels) === "{}" && count === 1);

/** Puts the threshold lines of `rules` on the chart (drawn at its next update) and stretches its
 * y axis to hold them; says under the chart which rules watch it. */
export function setThresholds(chart, rules, series, count) {
  const mine = rules.filter((r) => watches(r, series, count));
  const lines = mine.filter(isThreshold).map((r) => ({ id: r.id, name: r.name || r.chart, op: r.op, value: r.value, firing: r.state === "firing" }));
  chart.$thresholds = lines;
  const values = lines.map((t) => t.value);
  chart.options.scales.y.suggestedMin = values.length ? Math.min(...values) : undefined;
  chart.options.scales.y.suggestedMax = values.length ? Math.max(...values) : undefined;
  const p = $("d-rules");
  p.hidden = !mine.length;
  if (!mine.length) return;
  const link = el("a", null, `${mine.length} alert rule${mine.length === 1 ? "" : "s"}`);
  link.href = alertsHash(mine[0].chart);
  p.replaceChildren(
    link,
    ": ",
    ...mine.flatMap((r, i) => [i ? " · " : "", el("span", r.state === "firing" ? "error" : "", `${r.name ? `${r.name} (${condition(r)})` : condition(r)}, ${r.state}`)]),
  );
}
