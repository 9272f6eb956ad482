// A day in the life: what a typical user's day costs in D1 rows, built from real requests against
// `wrangler dev` with the default configuration and the rows each one's Server-Timing reports (and,
// for the scheduled runs, the rows the Worker logs). The profile is issue 9's.

/** The reference profile: how often each part happens in a day. */
export const PROFILE = {
  minutely_charts: 20, // pushed once a minute
  labelled_charts: 5, // with 4 label sets each, each set pushed once a minute
  label_sets: 4,
  five_minute_charts: 30, // pushed every 5 minutes
  jobs: 10, // start and success every 5 minutes
  overview_hours: 8, // the overview open, refreshing every 30 s
  detail_hours: 1, // one chart's 7-day view open, refreshing every 30 s
  images: 3, // README images
  image_views: 2000, // each, a day
};

import { FULL_EVERY, nextSince } from "../public/spark-merge.js";

const DAY_MINUTES = 1440;
/** The same day as this bench first measured it, before issue 9's work (commit 2b83a43). */
export const BEFORE = { commit: "2b83a43", read: 9_208_257, written: 285_120 };
/** Issue 9's targets for the day. */
export const TARGET = { read: 1_000_000, written: 80_000 };
const FREE = { read: 5_000_000, written: 100_000 };
const PRICE = { read: 0.001 / 1e6, written: 1.0 / 1e6 }; // dollars per row on the paid plan

/**
 * Origin fetches of an image that the Worker's edge cache lets through in a day, for views spread
 * evenly at random over one location: the cache windows (of `ttl` seconds) that see at least one
 * view (Poisson).
 */
export function originFetches(views, ttl) {
  const windows = 86400 / ttl;
  return Math.round(windows * (1 - Math.exp(-views / windows)));
}

/** How long the edge keeps an image of `range` seconds: src/domain/image.rs, edge_seconds. */
const edgeSeconds = (range) => Math.min(3600, Math.max(60, Math.floor(range / 200)));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
/** The mean rows of requests, for a cost that recurs every so many requests. */
const mean = (rs) => ({
  read: rs.reduce((a, r) => a + r.read, 0) / rs.length,
  written: rs.reduce((a, r) => a + r.written, 0) / rs.length,
});

/**
 * Seeds a full week's state, measures one request of each kind, and multiplies by the profile.
 * `p` calls the API with the admin token and returns `{ body, read, written }`; `scheduled(cron)`
 * runs a scheduled event and returns the rows its log line reports.
 */
export async function dayOfCost({ p, scheduled, smoke }) {
  const full = smoke ? 5 : 1000; // buckets per series: full, as after a week, with MAX_POINTS 1000
  // Buckets are stored an hour to a row (src/domain/chunk.rs): most points open a bucket in the
  // hour's row, and the first point of an hour opens a row (and the oldest row goes). Both are
  // measured: the series end two minutes back, within the hour, and a point one minute back
  // opens a bucket in the same row; other series end just before this hour, and a point at the
  // hour opens a row.
  const now = Math.floor(Date.now() / 60_000) * 60;
  const hour = Math.floor(now / 3600) * 3600;
  // Two minutes back must stay in this hour's row: in the first minutes of an hour, use the last.
  const minute = now - 120 < hour ? hour - 60 : now - 60;
  const seed = async (chart, every, labels, end = minute - 60, n = full) => {
    for (let i = 0; i < n; i += 1000) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 1000); j++) {
        batch.push({ chart, value: j % 97, ts: end - (n - 1 - j) * every, ...(labels ? { labels } : {}) });
      }
      await p.ingest(batch);
    }
  };
  const P = PROFILE;
  for (let i = 0; i < P.minutely_charts; i++) await seed(`day.m${i}`, 60);
  for (let i = 0; i < P.labelled_charts; i++) {
    for (let h = 0; h < P.label_sets; h++) await seed(`day.l${i}`, 60, { host: `h${h}` });
  }
  for (let i = 0; i < P.five_minute_charts; i++) await seed(`day.f${i}`, 300);
  // The measured job's runs of a week: a job shows its newest 100, and every tenth run moves its
  // ten newest into a block that takes over the oldest (migration 0013).
  for (let r = 0; r < 100 && !smoke; r++) {
    await p.call(`/api/v1/ping/day.j0/start`, { method: "POST" });
    await p.call(`/api/v1/ping/day.j0`, { method: "POST" });
  }
  const openers = 5;
  const opening = hour;
  // An hour more than they keep: the point that opens a row also drops the oldest, as every hour.
  for (let i = 0; i < openers; i++) await seed(`day.o${i}`, 60, undefined, opening - 60, smoke ? full : full + 60);
  for (let i = 0; i < P.jobs; i++) {
    await p.call(`/api/v1/jobs/day.j${i}`, { method: "PUT", body: JSON.stringify({ period: "5m", grace: "5m" }) });
    await seed(`day.j${i}.duration`, 300);
    await seed(`day.j${i}.exit_code`, 300);
  }

  // One request of each kind, as the day repeats it; a point opens a new bucket in a full series.
  const next = minute;
  const each = async (n, f) => {
    const rs = [];
    for (let i = 0; i < n; i++) rs.push(await f(i));
    return { read: median(rs.map((r) => r.read)), written: median(rs.map((r) => r.written)) };
  };
  const costs = {};
  costs.point_minutely = await each(5, (i) => p.ingest({ chart: `day.m${i}`, value: 1, ts: next }));
  costs.point_labelled = await each(4, (h) => p.ingest({ chart: "day.l0", value: 1, ts: next, labels: { host: `h${h}` } }));
  costs.point_five_minutes = await each(5, (i) => p.ingest({ chart: `day.f${i}`, value: 1, ts: next }));
  costs.point_opening_an_hour = await each(openers, (i) => p.ingest({ chart: `day.o${i}`, value: 1, ts: opening }));
  // A job files its ten newest runs as a block every tenth run (migration 0013): ten runs in a
  // row of one job hold exactly one such run, so their mean is the cost a run averages.
  const starts = [];
  const successes = [];
  for (let i = 0; i < 10; i++) {
    starts.push(await p.call(`/api/v1/ping/day.j0/start`, { method: "POST" }));
    successes.push(await p.call(`/api/v1/ping/day.j0`, { method: "POST" }));
  }
  costs.job_start = mean(starts);
  costs.job_success = mean(successes);
  // The overview's refresh; the detail view's (its chart and its alert rules, 7 days fitted to
  // about 1,000 pixels); a README image (`range=7d`, as the README shows it).
  // The overview asks for everything every FULL_EVERY-th refresh, and in between only for the
  // buckets since its last answer (public/spark-merge.js), as the dashboard does.
  let last = null;
  costs.overview_full = await each(3, async () => {
    const r = await p.call("/api/v1/charts?spark=48");
    last = r.body;
    return r;
  });
  costs.overview_since = await each(3, () => p.call(`/api/v1/charts?spark=48&since=${nextSince(last)}`));
  costs.detail_refresh = await each(3, async () => {
    const chart = await p.call("/api/v1/charts/day.m0?from=7d&agg=avg&step=600");
    const rules = await p.call("/api/v1/alerts?chart=day.m0");
    return { read: chart.read + rules.read, written: chart.written + rules.written };
  });
  costs.image = await each(3, (i) => p.call(`/img/day.m${i + 1}.svg?range=7d`, {}, "text"));
  costs.minutely_check = await each(3, () => scheduled("* * * * *"));
  costs.retention_run = await each(1, () => scheduled("17 * * * *"));

  const per30s = 120; // refreshes an hour
  // Each series' first point of an hour opens a row; the others land in the hour's row.
  const minutelySeries = P.minutely_charts + P.labelled_charts * P.label_sets;
  const times = {
    point_minutely: P.minutely_charts * (DAY_MINUTES - 24),
    point_labelled: P.labelled_charts * P.label_sets * (DAY_MINUTES - 24),
    point_five_minutes: P.five_minute_charts * (DAY_MINUTES / 5 - 24),
    point_opening_an_hour: (minutelySeries + P.five_minute_charts) * 24,
    job_start: P.jobs * (DAY_MINUTES / 5),
    job_success: P.jobs * (DAY_MINUTES / 5),
    overview_full: (P.overview_hours * per30s) / FULL_EVERY,
    overview_since: P.overview_hours * per30s * (1 - 1 / FULL_EVERY),
    detail_refresh: P.detail_hours * per30s,
    image: P.images * originFetches(P.image_views, edgeSeconds(7 * 86400)),
    minutely_check: DAY_MINUTES,
    retention_run: 24,
  };
  const parts = {};
  const total = { read: 0, written: 0 };
  for (const [k, n] of Object.entries(times)) {
    const c = costs[k];
    parts[k] = { per_request: c, times: n, read: c.read * n, written: c.written * n };
    total.read += parts[k].read;
    total.written += parts[k].written;
  }
  const dollars = total.read * PRICE.read + total.written * PRICE.written;
  return {
    profile: P,
    smoke,
    parts,
    total,
    free_plan: { read: FREE.read, written: FREE.written, fits: total.read <= FREE.read && total.written <= FREE.written },
    paid_plan_dollars: { per_day: dollars, per_30_days: dollars * 30 },
    before: BEFORE,
    target: { ...TARGET, met: total.read <= TARGET.read && total.written <= TARGET.written },
  };
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");
/** Rows of one request: a mean over several shows its tenths. */
const perRequest = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(1));

/** The day as a Markdown table. */
export function dayTable(d) {
  const rows = Object.entries(d.parts).map(
    ([k, v]) => `| ${k.replaceAll("_", " ")} | ${fmt(v.times)} | ${perRequest(v.per_request.read)} / ${perRequest(v.per_request.written)} | ${fmt(v.read)} | ${fmt(v.written)} |`,
  );
  const pct = (a, b) => `${Math.round((100 * a) / b)}%`;
  return [
    `### A day of the reference profile${d.smoke ? " (smoke: series not full, figures not meaningful)" : ""}`,
    "",
    "| part | requests a day | rows read / written each | rows read a day | rows written a day |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...rows,
    `| **total** | | | **${fmt(d.total.read)}** | **${fmt(d.total.written)}** |`,
    "",
    `Free plan: ${fmt(d.total.read)} of ${fmt(d.free_plan.read)} rows read (${pct(d.total.read, d.free_plan.read)}), ` +
      `${fmt(d.total.written)} of ${fmt(d.free_plan.written)} written (${pct(d.total.written, d.free_plan.written)}): ` +
      `${d.free_plan.fits ? "fits" : "**does not fit**"}. Paid plan, before its monthly allowance: ` +
      `$${d.paid_plan_dollars.per_day.toFixed(3)} a day, $${d.paid_plan_dollars.per_30_days.toFixed(2)} for 30 days.`,
    "",
    `Before and after: ${fmt(d.before.read)} rows read and ${fmt(d.before.written)} written a day at ${d.before.commit} ` +
      `(this bench's first day), ${fmt(d.total.read)} and ${fmt(d.total.written)} now. ` +
      `Targets: read <= ${fmt(d.target.read)} ${d.total.read <= d.target.read ? "met" : "**not met**"}, ` +
      `written <= ${fmt(d.target.written)} ${d.total.written <= d.target.written ? "met" : "**not met**"}.`,
  ].join("\n");
}
