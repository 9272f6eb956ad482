// Shared by the jobs, alerts and channels views: status pills, times before and after now, durations.
import { fmtDur, fmtFull } from "./plot.js";

/** A pill that says a status in words; its colours come from the stylesheet (.pill.s-<status>). */
export function pill(status, el = document.createElement("span")) {
  el.className = `pill s-${String(status).replace(/[^a-z]/g, "")}`;
  el.textContent = status;
  return el;
}

/** "in 3 h", "5 min ago", "just now": a time relative to now, as the cards say it. */
export function rel(ts, now = Date.now() / 1000) {
  const d = ts - now;
  const a = Math.abs(d);
  if (a < 60) return d > 0 ? "in under a minute" : "just now";
  const t = a < 3600 ? `${Math.floor(a / 60)} min` : a < 86400 ? `${Math.floor(a / 3600)} h` : `${Math.floor(a / 86400)} d`;
  return d > 0 ? `in ${t}` : `${t} ago`;
}

/** A <time> with the relative time as its text and the full local time as its tooltip. */
export function timeEl(ts, prefix = "") {
  const el = document.createElement("time");
  if (ts == null) {
    el.textContent = "–";
    return el;
  }
  el.dateTime = new Date(ts * 1000).toISOString();
  el.textContent = prefix + rel(ts);
  el.title = fmtFull(ts);
  return el;
}

/** A run's length: 0.4 s, 12 s, 2 min 5 s, 1 h 3 min. */
export function fmtSecs(s) {
  if (s == null || !Number.isFinite(s)) return "–";
  if (s < 10) return `${s.toFixed(1)} s`;
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (s < 3600) return `${m} min${Math.round(s % 60) ? ` ${Math.round(s % 60)} s` : ""}`;
  return `${Math.floor(s / 3600)} h${m % 60 ? ` ${m % 60} min` : ""}`;
}

/** A duration as the API takes it: 900 → "15m", "15m" stays. */
export function durText(v) {
  if (typeof v !== "number") return String(v);
  for (const [n, u] of [[86400, "d"], [3600, "h"], [60, "m"]]) if (v >= n && v % n === 0) return `${v / n}${u}`;
  return `${v}s`;
}

/** A job's schedule in words: "every 1 d", "cron 0 3 * * * (Europe/Berlin)". */
export function scheduleText(s) {
  if (!s) return "–";
  if (s.cron) return `cron ${s.cron}${s.tz ? ` (${s.tz})` : ""}`;
  if (s.period) return `every ${fmtDur(s.period)}`;
  return JSON.stringify(s);
}

/** An element with a class and text, for the small pieces the views build. */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text != null) e.textContent = text;
  return e;
}
