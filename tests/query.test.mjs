// Reading: the chart list, one chart's points with range, aggregate, step and labels, deletion.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, nowSecs } from "./helpers.mjs";
import { mergeSince, nextSince } from "../public/spark-merge.js";

let c;
const hour = Math.floor((nowSecs() - 5 * 3600) / 3600) * 3600;
before(async () => {
  c = await startWorker();
  // Three hours of one-minute buckets: value = minute of the hour.
  const batch = [];
  for (let i = 0; i < 180; i++) batch.push({ chart: "shop/orders today", value: i % 60, ts: hour + i * 60 + 5 });
  await c.ingest(batch);
  await c.ingest({ chart: "other", value: 3 });
});
after(() => c.dispose());

const get = (q) => c.get(`/api/v1/charts/shop%2Forders%20today${q}`);

test("the list shows every series with labels, bucket size, points held, first and last ts and last value", async () => {
  const r = await c.get("/api/v1/charts");
  assert.equal(r.status, 200);
  const s = r.body.charts.find((x) => x.chart === "shop/orders today");
  assert.deepEqual(s, {
    chart: "shop/orders today",
    labels: {},
    bucket_seconds: 60,
    points: 180,
    first_ts: hour,
    last_ts: hour + 179 * 60 + 5,
    last_value: 59,
    public: false,
  });
});

test("the list with since= sends only newer buckets, reads far fewer rows, and merged into the last answer equals a full one", async () => {
  const t = Math.floor(nowSecs() / 60) * 60;
  for (let i = 0; i < 20; i++) {
    await c.ingest(Array.from({ length: 60 }, (_, j) => ({ chart: `since.s${i}`, value: j, ts: t - (60 - j) * 60 })));
  }
  const full = await c.get("/api/v1/charts?spark=48");
  const since = nextSince(full.body);
  assert.ok(Math.abs(full.body.now - nowSecs()) <= 2, "the answer says the server's time");
  // New points: one into the bucket still filling, one opening the next.
  await c.ingest([{ chart: "since.s0", value: 1000, ts: t - 60 + 30 }, { chart: "since.s1", value: 7, ts: t + 1 }]);
  const part = await c.get(`/api/v1/charts?spark=48&since=${since}`);
  assert.equal(part.status, 200);
  assert.equal(part.body.since, since);
  for (const s of part.body.charts) for (const p of s.spark || []) assert.ok(p.ts + s.bucket_seconds > since, `${s.chart}: ${p.ts} ended by ${since}`);
  // Rows read per series do not grow with the sparkline: a refresh reads the newest hour or two.
  const series = full.body.charts.length;
  assert.ok(part.cost.read < full.cost.read, `${part.cost.read} rows with since= against ${full.cost.read}`);
  assert.ok(part.cost.read <= 10 * series, `${part.cost.read} rows with since= for ${series} series`);
  const now = await c.get("/api/v1/charts?spark=48");
  assert.deepEqual(mergeSince(full.body.charts, part.body.charts, since), now.body.charts);
  // A chart deleted and sent again starts afresh: nothing of the old one is kept.
  await c.send("DELETE", "/api/v1/charts/since.s2");
  await c.ingest({ chart: "since.s2", value: 5 });
  const after = await c.get(`/api/v1/charts?spark=48&since=${nextSince(now.body)}`);
  const merged = mergeSince(now.body.charts, after.body.charts, nextSince(now.body)).find((s) => s.chart === "since.s2");
  assert.deepEqual(merged.spark.map((p) => p.value), [5]);
  assert.equal((await c.get("/api/v1/charts?spark=48&since=1763800000000")).status, 400);
  // An old since reads no more than no since: the sparkline's newest buckets bound it too. A
  // point an hour for 30 hours is 30 rows that an unbounded since=0 would read.
  await c.ingest(Array.from({ length: 30 }, (_, i) => ({ chart: "since.long", value: i, ts: t - (30 - i) * 3600 })));
  const old = await c.get("/api/v1/charts?spark=2&since=0");
  const none = await c.get("/api/v1/charts?spark=2");
  assert.ok(old.cost.read <= none.cost.read, `${old.cost.read} rows with since=0 against ${none.cost.read}`);
  assert.deepEqual(old.body.charts.map((s) => s.spark), none.body.charts.map((s) => s.spark));
});

test("a chart answers ascending points with every aggregate", async () => {
  const r = await get("");
  assert.equal(r.status, 200);
  assert.equal(r.body.chart, "shop/orders today");
  assert.equal(r.body.agg, "avg");
  assert.equal(r.body.step, 60);
  assert.equal(r.body.points.length, 180);
  const ts = r.body.points.map((p) => p.ts);
  assert.deepEqual(ts, [...ts].sort((a, b) => a - b));
  assert.deepEqual(Object.keys(r.body.points[0]).sort(), ["count", "last", "max", "min", "sum", "ts", "value"]);
});

test("a path with a slash and a space reaches the same chart unescaped", async () => {
  const r = await c.get("/api/v1/charts/shop/orders%20today?agg=count");
  assert.equal(r.body.points.length, 180);
});

test("step rolls one-minute buckets up into hours", async () => {
  const r = await get("?step=3600&agg=sum");
  assert.equal(r.body.step, 3600);
  assert.deepEqual(r.body.points.map((p) => p.ts), [hour, hour + 3600, hour + 7200]);
  assert.deepEqual(r.body.points.map((p) => p.value), [1770, 1770, 1770]);
  assert.deepEqual(r.body.points.map((p) => p.count), [60, 60, 60]);
  const max = await get("?step=1h&agg=max");
  assert.deepEqual(max.body.points.map((p) => p.value), [59, 59, 59]);
  const last = await get("?step=1h&agg=last");
  assert.deepEqual(last.body.points.map((p) => p.value), [59, 59, 59]);
});

test("from and to select a range", async () => {
  const r = await get(`?from=${hour + 3600}&to=${hour + 7200}`);
  assert.equal(r.body.points.length, 60);
  assert.equal(r.body.points[0].ts, hour + 3600);
});

test("rows read are close to the points returned", async () => {
  const r = await get(`?from=${hour + 3600}&to=${hour + 7200}`);
  assert.ok(r.cost.read <= 60 + 5, `read ${r.cost.read} for 60 points`);
});

test("an unknown aggregate, a bad step and a backwards range are 400s", async () => {
  assert.equal((await get("?agg=median")).body.error.code, "invalid_agg");
  assert.equal((await get("?step=90")).body.error.code, "invalid_step");
  assert.equal((await get("?from=2000000000&to=1000000000")).body.error.code, "invalid_range");
});

test("a chart that does not exist is 404 chart_not_found", async () => {
  const r = await c.get("/api/v1/charts/nothing-here");
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, "chart_not_found");
});

test("a chart with several label sets asks which one", async () => {
  await c.ingest([
    { chart: "multi", value: 1, labels: { host: "a" } },
    { chart: "multi", value: 2, labels: { host: "b" } },
  ]);
  const r = await c.get("/api/v1/charts/multi");
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, "labels_required");
  const a = await c.get(`/api/v1/charts/multi?labels=${encodeURIComponent('{"host":"a"}')}`);
  assert.equal(a.body.points[0].value, 1);
  assert.deepEqual(a.body.labels, { host: "a" });
  assert.equal((await c.get("/api/v1/charts/multi?labels=host:zzz")).body.error.code, "series_not_found");
});

test("DELETE removes a chart and its points", async () => {
  await c.ingest({ chart: "doomed", value: 1 });
  const r = await c.send("DELETE", "/api/v1/charts/doomed");
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { ok: true, deleted: { buckets: 1, series: 1 } });
  assert.equal((await c.get("/api/v1/charts/doomed")).status, 404);
  assert.equal((await c.send("DELETE", "/api/v1/charts/doomed")).status, 404);
  assert.ok((await c.get("/api/v1/charts/other")).status === 200, "other charts stay");
});

test("without a key, private charts can be neither read nor listed", async () => {
  assert.equal((await c.get("/api/v1/charts/other", null)).status, 401);
  assert.deepEqual((await c.get("/api/v1/charts", null)).body.charts, []);
});

test("unknown API paths are JSON 404s", async () => {
  const r = await c.get("/api/v1/nope");
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, "not_found");
});

test("a duration with a non-ASCII unit is a 400, never a crash", async () => {
  for (const q of ["?from=1%C3%A9", "?step=1%C3%A9", "?to=%C3%A9", "?from=-1e300"]) {
    const r = await get(q);
    assert.ok(r.status === 400 || r.status === 200, `${q}: ${r.status}`);
    if (r.status === 400) assert.equal(r.body.error.code === "invalid_range" || r.body.error.code === "invalid_step", true);
  }
  assert.equal((await get("?from=1%C3%A9")).body.error.code, "invalid_range");
});
