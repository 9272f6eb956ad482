// Storage: per-chart bucket sizes, trimming to the newest MAX_POINTS buckets at a constant D1
// cost, retention by the scheduled handler, and strict configuration.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { workersForThisFile, nowSecs, insertBuckets } from "./helpers.mjs";

const worker = workersForThisFile();

const minute = (secsAgo) => Math.floor((nowSecs() - secsAgo) / 60) * 60;

/** `n` one-minute buckets ending a few minutes ago, sent in batches of 500. */
async function fill(c, chart, n) {
  const start = minute(n * 60 + 600);
  for (let i = 0; i < n; i += 500) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 500); j++) batch.push({ chart, value: j, ts: start + j * 60 });
    const r = await c.ingest(batch);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return start;
}

describe("trimming", () => {
  test("1,500 buckets into one chart leave exactly the newest 1,000", async () => {
    const c = await worker();
    const start = await fill(c, "trim", 1500);
    const r = await c.get("/api/v1/charts/trim?from=30h");
    assert.equal(r.body.points.length, 1000);
    assert.equal(r.body.points[0].ts, start + 500 * 60);
    assert.equal(r.body.points[0].value, 500);
    assert.equal(r.body.points.at(-1).value, 1499);
    // Storage drops whole hours: it never holds more than about two hours beyond the cap.
    const { results } = await c.db.prepare("SELECT SUM(n) AS n FROM chunks").all();
    assert.ok(results[0].n >= 1000 && results[0].n < 1120, `${results[0].n} buckets stored`);
    const list = (await c.get("/api/v1/charts")).body.charts;
    assert.equal(list[0].points, 1000);
  });

  test("a sparse hour between full ones does not hide where the newest MAX_POINTS begin", async () => {
    const c = await worker({ vars: { MAX_POINTS: "5" } });
    const hour = (h) => Math.floor(nowSecs() / 3600) * 3600 - h * 3600;
    await c.ingest([0, 1, 2].map((i) => ({ chart: "sparse", value: i, ts: hour(5) + i * 60 })));
    await c.ingest({ chart: "sparse", value: 3, ts: hour(4) });
    // Seven buckets in one later hour: the cut falls inside it, past both older hours.
    for (let i = 0; i < 7; i++) await c.ingest({ chart: "sparse", value: 10 + i, ts: hour(3) + i * 60 });
    const p = (await c.get("/api/v1/charts/sparse?from=6h")).body.points;
    assert.deepEqual(p.map((x) => x.value), [12, 13, 14, 15, 16]);
    const [listed] = (await c.get("/api/v1/charts")).body.charts;
    assert.equal(listed.points, 5);
    assert.equal(listed.first_ts, hour(3) + 120);
  });

  test("a late point into an older hour counts as a bucket, so the newest MAX_POINTS still exclude the oldest", async () => {
    const c = await worker({ vars: { MAX_POINTS: "5" } });
    const hour = (h) => Math.floor(nowSecs() / 3600) * 3600 - h * 3600;
    await c.ingest([{ chart: "late", value: 1, ts: hour(5) }, { chart: "late", value: 2, ts: hour(5) + 120 }]);
    await c.ingest([0, 1, 2].map((i) => ({ chart: "late", value: 10 + i, ts: hour(4) + i * 60 })));
    // A new bucket between the two of the older hour: six buckets, of which the newest five show.
    await c.ingest({ chart: "late", value: 1.5, ts: hour(5) + 60 });
    const p = (await c.get("/api/v1/charts/late?from=6h")).body.points;
    assert.deepEqual(p.map((x) => x.value), [1.5, 2, 10, 11, 12]);
    const [listed] = (await c.get("/api/v1/charts")).body.charts;
    assert.deepEqual([listed.points, listed.first_ts], [5, hour(5) + 60]);
  });

  test("a full series' point that opens an hour writes one row, and the newest MAX_POINTS still show", async () => {
    const c = await worker({ vars: { MAX_POINTS: "5" } });
    const hour = (h) => Math.floor(nowSecs() / 3600) * 3600 - h * 3600;
    // One bucket in an old hour, four in the next: full, and the old hour's only bucket is the
    // one the next bucket pushes out.
    await c.ingest({ chart: "ring", value: 0, ts: hour(3) });
    await c.ingest([1, 2, 3, 4].map((i) => ({ chart: "ring", value: i, ts: hour(2) + i * 60 })));
    const opened = await c.ingest({ chart: "ring", value: 5, ts: hour(1) });
    assert.equal(opened.status, 200);
    // The old hour's row becomes the new hour's: no insert, no numbering, no delete.
    assert.equal(opened.cost.written, 1);
    const p = (await c.get("/api/v1/charts/ring?from=5h")).body.points;
    assert.deepEqual(p.map((x) => x.value), [1, 2, 3, 4, 5]);
    const rows = (await c.db.prepare("SELECT start FROM chunks ORDER BY start").all()).results;
    assert.deepEqual(rows.map((r) => r.start), [hour(2), hour(1)]);
    // The next bucket of the new hour folds into it as usual, and the cut moves on by one.
    await c.ingest({ chart: "ring", value: 6, ts: hour(1) + 60 });
    const q = (await c.get("/api/v1/charts/ring?from=5h")).body.points;
    assert.deepEqual(q.map((x) => x.value), [2, 3, 4, 5, 6]);
    const [listed] = (await c.get("/api/v1/charts")).body.charts;
    assert.deepEqual([listed.points, listed.first_ts, listed.last_value], [5, hour(2) + 120, 6]);
  });

  test("a late point into a series' newest hours does not take over its oldest row", async () => {
    const c = await worker({ vars: { MAX_POINTS: "3" } });
    const hour = (h) => Math.floor(nowSecs() / 3600) * 3600 - h * 3600;
    await c.ingest([{ chart: "late2", value: 0, ts: hour(4) }, { chart: "late2", value: 1, ts: hour(2) }]);
    await c.ingest({ chart: "late2", value: 2, ts: hour(1) });
    // An hour between two kept ones is inserted and numbered; the oldest hour goes past the cap.
    await c.ingest({ chart: "late2", value: 1.5, ts: hour(3) });
    const p = (await c.get("/api/v1/charts/late2?from=6h")).body.points;
    assert.deepEqual(p.map((x) => x.value), [1.5, 1, 2]);
    // Numbered right, the cut moves on by exactly one with the next bucket.
    await c.ingest({ chart: "late2", value: 3, ts: hour(1) + 60 });
    const q = (await c.get("/api/v1/charts/late2?from=6h")).body.points;
    assert.deepEqual(q.map((x) => x.value), [1, 2, 3]);
    const [listed] = (await c.get("/api/v1/charts")).body.charts;
    assert.deepEqual([listed.points, listed.first_ts], [3, hour(2)]);
  });

  test("one batch that opens several hours of a full series keeps exactly its newest MAX_POINTS", async () => {
    const c = await worker({ vars: { MAX_POINTS: "5" } });
    const hour = (h) => Math.floor(nowSecs() / 3600) * 3600 - h * 3600;
    await c.ingest({ chart: "hours", value: 0, ts: hour(5) });
    await c.ingest([1, 2, 3, 4].map((i) => ({ chart: "hours", value: i, ts: hour(4) + i * 60 })));
    // Four buckets in three new hours, in one statement: each new hour takes over or is inserted.
    const r = await c.ingest([
      { chart: "hours", value: 5, ts: hour(3) },
      { chart: "hours", value: 6, ts: hour(3) + 60 },
      { chart: "hours", value: 7, ts: hour(2) },
      { chart: "hours", value: 8, ts: hour(1) },
    ]);
    assert.equal(r.status, 200);
    const p = (await c.get("/api/v1/charts/hours?from=6h")).body.points;
    assert.deepEqual(p.map((x) => x.value), [4, 5, 6, 7, 8]);
    const [listed] = (await c.get("/api/v1/charts")).body.charts;
    assert.deepEqual([listed.points, listed.first_ts], [5, hour(4) + 240]);
    await c.ingest({ chart: "hours", value: 9, ts: hour(1) + 60 });
    const q = (await c.get("/api/v1/charts/hours?from=6h")).body.points;
    assert.deepEqual(q.map((x) => x.value), [5, 6, 7, 8, 9]);
  });

  test("a point older than everything a full series keeps is not kept", async () => {
    const c = await worker({ vars: { MAX_POINTS: "5" } });
    const start = await fill(c, "full", 5);
    await c.ingest({ chart: "full", value: -1, ts: start - 3600 });
    const p = (await c.get("/api/v1/charts/full")).body.points;
    assert.deepEqual(p.map((x) => x.value), [0, 1, 2, 3, 4]);
  });

  // Buckets are stored an hour to a row, and the trimming looks at the four oldest rows: from five
  // hours of buckets on, the cost is the same however much a series holds.
  test("rows read and written per ingest are the same with 300 and with 3,000 points stored", async () => {
    const c = await worker({ vars: { MAX_POINTS: "5000" } });
    await fill(c, "small", 300);
    await fill(c, "large", 3000);
    const cost = async (chart, ts) => (await c.ingest({ chart, value: 1, ts })).cost;
    // Into an existing bucket, then into a new one.
    const existing = minute(700);
    assert.deepEqual(await cost("small", existing), await cost("large", existing));
    const fresh = minute(60);
    assert.deepEqual(await cost("small", fresh), await cost("large", fresh));
  });

  test("at the cap, adding a bucket costs the same with 300 and with 3,000 points stored", async () => {
    const small = await worker({ vars: { MAX_POINTS: "300" } });
    const large = await worker({ vars: { MAX_POINTS: "3000" } });
    await fill(small, "c", 300);
    await fill(large, "c", 3000);
    const a = (await small.ingest({ chart: "c", value: 1, ts: minute(60) })).cost;
    const b = (await large.ingest({ chart: "c", value: 1, ts: minute(60) })).cost;
    assert.deepEqual(a, b);
  });
});

describe("series a Worker instance remembers", () => {
  test("a chart deleted after this instance wrote it takes the next point as a new chart", async () => {
    const c = await worker();
    assert.equal((await c.ingest({ chart: "again", value: 1 })).status, 200);
    // Remembered now: the next write skips making sure of the series, and finds it gone.
    assert.equal((await c.send("DELETE", "/api/v1/charts/again")).status, 200);
    const r = await c.ingest({ chart: "again", value: 2 });
    assert.equal(r.status, 200);
    const p = (await c.get("/api/v1/charts/again")).body.points;
    assert.deepEqual(p.map((x) => [x.count, x.value]), [[1, 2]]);
  });

  test("a write into a series this instance has written reads fewer rows than one it has not", async () => {
    const c = await worker();
    // Made straight in D1: it exists, but this instance has not written it.
    await c.db.prepare("INSERT INTO series (id, chart, labels, cap, created_at) VALUES (7, 'seen', '{}', 1000, 0)").run();
    // An hour's row already there, so that both points below add a bucket to it.
    const hour = Math.floor((nowSecs() - 300) / 3600) * 3600;
    await insertBuckets(c.db, [[7, hour]]);
    const first = await c.ingest({ chart: "seen", value: 1, ts: hour + 60 });
    const second = await c.ingest({ chart: "seen", value: 2, ts: hour + 120 });
    assert.deepEqual([first.cost.written, second.cost.written], [1, 1]);
    assert.ok(second.cost.read < first.cost.read, `${second.cost.read} rows read remembered, ${first.cost.read} not`);
    // What the day's cost model counts a point at (README, What it costs to run).
    assert.equal(second.cost.read, 5);
  });
});

describe("bucket size per chart", () => {
  test("a chart set to 3600 s buckets puts an hour of points into one bucket", async () => {
    const c = await worker();
    const r = await c.send("PUT", "/api/v1/charts/hourly", { bucket_seconds: 3600 });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { chart: "hourly", bucket_seconds: 3600, public: false });
    const hour = Math.floor((nowSecs() - 7200) / 3600) * 3600;
    await c.ingest([0, 600, 1800, 3599].map((o, i) => ({ chart: "hourly", value: i, ts: hour + o })));
    const q = await c.get("/api/v1/charts/hourly?agg=count");
    assert.equal(q.body.bucket_seconds, 3600);
    assert.deepEqual(q.body.points.map((p) => [p.ts, p.value]), [[hour, 4]]);
  });

  test("moving a chart with data to a coarser bucket merges its buckets", async () => {
    const c = await worker();
    const hour = Math.floor((nowSecs() - 7200) / 3600) * 3600;
    await c.ingest(Array.from({ length: 60 }, (_, i) => ({ chart: "merge", value: i, ts: hour + i * 60 })));
    const r = await c.send("PUT", "/api/v1/charts/merge", { bucket_seconds: 3600 });
    assert.equal(r.status, 200);
    const p = (await c.get("/api/v1/charts/merge")).body.points;
    assert.equal(p.length, 1);
    assert.deepEqual([p[0].count, p[0].min, p[0].max, p[0].last], [60, 0, 59, 59]);
    assert.equal((await c.get("/api/v1/charts")).body.charts[0].points, 1);
  });

  test("a bucket size that does not divide evenly is refused for a chart with data", async () => {
    const c = await worker();
    await c.ingest({ chart: "odd", value: 1 });
    const r = await c.send("PUT", "/api/v1/charts/odd", { bucket_seconds: 90 });
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, "bucket_change_not_possible");
  });

  test("bad settings are clear errors", async () => {
    const c = await worker();
    assert.equal((await c.send("PUT", "/api/v1/charts/x", { bucket_seconds: 0 })).body.error.code, "invalid_bucket_seconds");
    assert.equal((await c.send("PUT", "/api/v1/charts/x", { bucket: 60 })).body.error.code, "unknown_field");
    assert.equal((await c.send("PUT", "/api/v1/charts/x", [1])).body.error.code, "invalid_json");
  });
});

describe("retention", () => {
  async function seedOld(c) {
    // Written straight into D1: the API refuses points older than retention.
    const old = nowSecs() - 200 * 3600;
    await c.ingest({ chart: "mixed", value: 1 });
    const ids = (await c.db.prepare("SELECT id FROM series WHERE chart = 'mixed'").all()).results;
    await c.db.prepare("INSERT INTO series (chart, labels, cap, created_at) VALUES ('gone', '{}', 100000, 0)").run();
    await c.db.prepare("UPDATE series SET cap = 100000 WHERE chart = 'mixed'").run();
    const gone = (await c.db.prepare("SELECT id FROM series WHERE chart = 'gone'").all()).results[0].id;
    const rows = [];
    for (let i = 0; i < 1500; i++) rows.push([gone, old - i * 60]);
    for (let i = 0; i < 20; i++) rows.push([ids[0].id, old - i * 60]);
    await insertBuckets(c.db, rows);
  }

  test("the scheduled run deletes buckets older than RETENTION_HOURS and drops series left empty", async () => {
    const c = await worker();
    await seedOld(c);
    await c.scheduled();
    const { results } = await c.db.prepare("SELECT s.chart, (SELECT SUM(n) FROM chunks AS k WHERE k.series_id = s.id) AS held FROM series s").all();
    assert.deepEqual(results, [{ chart: "mixed", held: 1 }]);
    const list = (await c.get("/api/v1/charts")).body.charts.map((s) => s.chart);
    assert.deepEqual(list, ["mixed"]);
  });

  test("running retention twice is safe", async () => {
    const c = await worker();
    await seedOld(c);
    await c.scheduled();
    await c.scheduled();
    const p = (await c.get("/api/v1/charts/mixed")).body.points;
    assert.equal(p.length, 1);
    assert.equal((await c.get("/api/v1/charts")).body.charts[0].points, 1);
  });

  test("trimming stays exact after retention has run", async () => {
    const c = await worker({ vars: { MAX_POINTS: "21" } });
    await seedOld(c);
    await c.scheduled();
    await fill(c, "mixed", 30);
    const p = (await c.get("/api/v1/charts/mixed?from=2d")).body.points;
    assert.equal(p.length, 21);
  });
});

describe("configuration", () => {
  test("a bad value in [vars] is a clear 500 naming the variable, not a silent default", async () => {
    const c = await worker({ vars: { MAX_POINTS: "lots" } });
    const r = await c.ingest({ chart: "a", value: 1 });
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, "bad_configuration");
    assert.match(r.body.error.message, /MAX_POINTS/);
  });

  test("MAX_VALUE is settable", async () => {
    const c = await worker({ vars: { MAX_VALUE: "10" } });
    assert.equal((await c.ingest({ chart: "a", value: 11 })).body.error.code, "value_out_of_range");
    assert.equal((await c.ingest({ chart: "a", value: 10 })).status, 200);
  });
});
