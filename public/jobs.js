// The jobs views: every job with its status, last run, next due time and a sparkline of its run
// durations (two requests for all jobs), and one job's page with its schedule and newest 100 runs.
import { $, api, explain, fmtFull, fmtDur, labelsKey } from "./plot.js";
import { state, startLoad, isNewest } from "./state.js";
import { showOnly, chartHash, jobHash } from "./route.js";
import { failed } from "./key.js";
import { drawSpark } from "./overview.js";
import { pill, rel, timeEl, fmtSecs, scheduleText, el } from "./ops.js";

const PROBLEMS = ["down", "failed", "late"];

export function drawJobsView() {
  showOnly("jobs");
  $("forget").hidden = false;
  document.title = "Jobs · pushplot";
  loadJobs();
}

export async function loadJobs() {
  const n = startLoad();
  let jobs, charts;
  try {
    // The durations come from the chart list with sparklines: one request whatever the number of jobs.
    [jobs, charts] = await Promise.all([api("/api/v1/jobs", state.key), api("/api/v1/charts?spark=48", state.key)]);
  } catch (e) {
    if (isNewest(n)) failed(e, "list");
    return;
  }
  if (!isNewest(n)) return;
  $("banner").hidden = true;
  state.list = charts.charts;
  state.withSpark = true;
  drawJobs(jobs.jobs);
}

/** The "due" cell: when the next ping is expected, or why none is. */
function dueText(j, now) {
  if (j.paused || j.status === "paused") return "paused";
  if (j.next_due == null) return "–";
  if (j.next_due >= now) return rel(j.next_due, now);
  return now - j.next_due < 60 ? "due now" : rel(j.next_due, now).replace(/ ago$/, " overdue");
}

function drawJobs(jobs) {
  const now = Date.now() / 1000;
  const spark = new Map();
  for (const s of state.list || []) if (s.chart.endsWith(".duration") && labelsKey(s.labels) === "{}") spark.set(s.chart, s.spark || []);
  const sorted = [...jobs].sort((a, b) => a.job.localeCompare(b.job));
  const rows = sorted.map((j) => {
    const a = $("t-job").content.firstElementChild.cloneNode(true);
    const q = (s) => a.querySelector(s);
    a.href = jobHash(j.job);
    a.dataset.job = j.job;
    q(".name").textContent = q(".name").title = j.job;
    pill(j.status, q(".pill"));
    q(".last").replaceChildren(j.last_ping == null ? el("span", "muted", "never") : timeEl(j.last_ping));
    q(".due").textContent = dueText(j, now);
    if (j.next_due != null) q(".due").title = fmtFull(j.next_due);
    q(".due").classList.toggle("late", j.next_due != null && j.next_due < now && !j.paused);
    const pts = spark.get(`${j.job}.duration`) || [];
    q(".spark").toggleAttribute("hidden", !pts.length); // an SVG element has no .hidden
    if (pts.length) drawSpark({ svg: q(".spark"), line: q(".line"), area: q(".area") }, pts);
    const last = q(".dur-last");
    last.textContent = j.last_duration != null ? fmtSecs(j.last_duration) : pts.length ? "" : "no timed runs";
    last.title = j.last_duration != null ? "the last run's duration" : pts.length ? "" : "Runs get a duration when a /start ping comes before the end";
    return a;
  });
  $("jobs-rows").replaceChildren(...rows);
  $("jobs-table").hidden = !jobs.length;
  $("jobs-empty").hidden = jobs.length > 0;
  $("jobs-curl").textContent = `0 3 * * * /usr/local/bin/backup.sh && curl -fsS "${location.origin}/ping/backup?key=$INGEST_KEY"`;
  const counts = PROBLEMS.map((s) => [s, jobs.filter((j) => j.status === s).length]).filter(([, c]) => c);
  $("jobs-count").textContent = [`${jobs.length} job${jobs.length === 1 ? "" : "s"}`, ...counts.map(([s, c]) => `${c} ${s}`)].join(" · ");
}

// ---- one job --------------------------------------------------------------------------------

export function drawJobView(st) {
  showOnly("job");
  $("forget").hidden = false;
  if ($("j-title").textContent !== st.job) {
    // Another job: nothing of the last one stays on screen while this one loads.
    for (const id of ["j-facts", "j-runs"]) $(id).replaceChildren();
    for (const id of ["j-status", "j-noruns", "j-error", "j-dur-chart", "j-code-chart"]) $(id).hidden = true;
    $("j-runs-count").textContent = "";
  }
  $("j-title").textContent = st.job;
  document.title = `${st.job} · jobs · pushplot`;
  loadJob(st.job);
}

export async function loadJob(name) {
  const n = startLoad();
  let j;
  try {
    j = await api(`/api/v1/jobs/${encodeURIComponent(name)}`, state.key);
  } catch (e) {
    if (!isNewest(n) || failed(e, "job")) return;
    $("banner").hidden = true;
    $("j-error").textContent = e.code === "not_found" ? `There is no job named “${name}” (or this key may not see it).` : explain(e);
    $("j-error").hidden = false;
    for (const id of ["j-facts", "j-runs"]) $(id).replaceChildren();
    for (const id of ["j-status", "j-noruns", "j-dur-chart", "j-code-chart"]) $(id).hidden = true;
    return;
  }
  if (!isNewest(n)) return;
  $("banner").hidden = true;
  $("j-error").hidden = true;
  drawJob(j);
}

function drawJob(j) {
  const now = Date.now() / 1000;
  $("j-status").hidden = false;
  pill(j.status, $("j-status"));
  const s = j.schedule || {};
  const facts = [
    ["Schedule", scheduleText(s)],
    ["Grace", s.grace == null ? "–" : fmtDur(s.grace)],
    ["Last ping", j.last_ping == null ? el("span", "muted", "never") : timeEl(j.last_ping)],
    ["Next due", j.next_due == null ? dueText(j, now) : Object.assign(timeEl(j.next_due), { textContent: dueText(j, now) })],
    ["Last duration", fmtSecs(j.last_duration)],
    ["Last exit code", j.last_exit_code == null ? "–" : String(j.last_exit_code)],
    ["Created", timeEl(j.created_at)],
    ["Channels", j.channels == null ? "all" : j.channels.length ? j.channels.join(", ") : "none"],
  ];
  $("j-facts").replaceChildren(
    ...facts.map(([k, v]) => {
      const div = el("div");
      const dd = el("dd");
      dd.append(v);
      div.append(el("dt", null, k), dd);
      return div;
    }),
  );
  const chartLink = (a, chart, show) => {
    a.hidden = !show;
    a.href = chartHash({ chart, range: "7d", agg: "avg", labels: null });
  };
  chartLink($("j-dur-chart"), `${j.job}.duration`, j.last_duration != null);
  chartLink($("j-code-chart"), `${j.job}.exit_code`, j.runs.length > 0);
  $("j-runs-count").textContent = j.runs.length >= 100 ? "(the newest 100)" : j.runs.length ? `(${j.runs.length})` : "";
  $("j-noruns").hidden = j.runs.length > 0;
  $("j-runs").replaceChildren(...j.runs.map(runItem));
}

/** One run: its outcome, when it finished, how long it took, its exit code and message (as text). */
function runItem(r) {
  const li = el("li", `run ${r.status === "success" ? "ok" : "bad"}`);
  const head = el("div", "run-head");
  const when = r.finished ?? r.started;
  const time = el("time", "when", when == null ? "–" : fmtFull(when));
  if (when != null) {
    time.dateTime = new Date(when * 1000).toISOString();
    time.title = rel(when);
  }
  head.append(pill(r.status), time);
  if (r.duration != null) head.append(el("span", "muted", `took ${fmtSecs(r.duration)}`));
  if (r.exit_code != null) head.append(el("span", "muted", `exit code ${r.exit_code}`));
  li.append(head);
  if (r.message) li.append(el("pre", "msg", r.message));
  return li;
}
