// Ingest: POST /api/v1/ingest in every accepted shape, and every way it refuses bad input.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { startWorker, nowSecs, ADMIN } from "./helpers.mjs";

let c;
before(async () => {
  c = await startWorker();
});
after(() => c.dispose());

const points = async (chart, q = "") => (await c.get(`/api/v1/charts/${encodeURIComponent(chart)}${q}`)).body.points;

describe("accepted shapes", () => {
  test("the Spikelog-style curl call with a form content type creates the chart", async () => {
    const r = await c.ingest('{"chart":"users","value":42}', ADMIN);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, accepted: 1 });
    const p = await points("users");
    assert.equal(p.length, 1);
    assert.equal(p[0].value, 42);
  });

  test("the same call answers on /ingest too", async () => {
    const r = await c.fetch("/ingest", { method: "POST", headers: { "X-API-Key": ADMIN }, body: '{"chart":"short-path","value":1}' });
    assert.equal(r.status, 200);
  });

  test("a key in Authorization: Bearer works like X-API-Key", async () => {
    const r = await c.fetch("/api/v1/ingest", { method: "POST", headers: { Authorization: `Bearer ${ADMIN}` }, body: '{"chart":"bearer","value":1}' });
    assert.equal(r.status, 200);
  });

  test("an array and a points object are both batches", async () => {
    const t = nowSecs() - 3600;
    assert.equal((await c.ingest([{ chart: "arr", value: 1, ts: t }, { chart: "arr", value: 2, ts: t + 60 }])).body.accepted, 2);
    assert.equal((await c.ingest({ points: [{ chart: "arr", value: 3, ts: t + 120 }] })).body.accepted, 1);
    assert.deepEqual((await points("arr", "?from=2h")).map((p) => p.value), [1, 2, 3]);
  });

  test("a fractional ts is accepted and lands in its bucket", async () => {
    const t = Math.floor((nowSecs() - 600) / 60) * 60;
    await c.ingest({ chart: "frac", value: 7, ts: t + 59.75 });
    const p = await points("frac");
    assert.equal(p[0].ts, t);
  });

  test("the same chart with other labels is another series", async () => {
    await c.ingest([
      { chart: "cpu", value: 10, labels: { host: "a" } },
      { chart: "cpu", value: 90, labels: { host: "b" } },
    ]);
    const list = (await c.get("/api/v1/charts")).body.charts.filter((s) => s.chart === "cpu");
    assert.deepEqual(list.map((s) => s.labels), [{ host: "a" }, { host: "b" }]);
    const b = await c.get("/api/v1/charts/cpu?labels=host:b");
    assert.equal(b.body.points[0].value, 90);
  });

  test("the seed service's payload, with timestamp for ts, lands at that time", async () => {
    const t = Math.floor((nowSecs() - 900) / 60) * 60;
    const r = await c.ingest(`{"chart":"seeded","value":42.0,"timestamp":${t + 5}}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const p = await points("seeded");
    assert.deepEqual(p.map((x) => [x.ts, x.value]), [[t, 42]]);
  });

  test("non-ASCII chart names are fine", async () => {
    assert.equal((await c.ingest({ chart: "注册用户", value: 5 })).status, 200);
    assert.equal((await points("注册用户"))[0].value, 5);
  });

  test("points in one bucket keep count, sum, min, max and the value with the latest ts", async () => {
    const t = Math.floor((nowSecs() - 1200) / 60) * 60;
    await c.ingest([
      { chart: "agg", value: 5, ts: t + 30 },
      { chart: "agg", value: 1, ts: t + 50 },
      { chart: "agg", value: 9, ts: t + 10 },
    ]);
    await c.ingest({ chart: "agg", value: 3, ts: t + 20 });
    const [p] = await points("agg");
    assert.deepEqual({ count: p.count, sum: p.sum, min: p.min, max: p.max, last: p.last }, { count: 4, sum: 18, min: 1, max: 9, last: 1 });
  });

  test("a pre-aggregated point answers avg, min, max, count, sum and last as the raw points would", async () => {
    // Three buckets of values, sent one by one into one chart and folded per bucket into another.
    // Quarters add up exactly in any order, so the sums can be compared with equal.
    const t0 = Math.floor((nowSecs() - 1800) / 60) * 60;
    const raw = [];
    for (let b = 0; b < 3; b++) {
      for (let i = 0; i < 40; i++) raw.push({ ts: t0 + b * 60 + i * 1.25, value: ((i * 37 + b * 11) % 101) / 4 - 7 });
    }
    await c.ingest(raw.map((p) => ({ chart: "pre.raw", ...p, labels: { host: "a" } })));
    const folded = [0, 1, 2].map((b) => {
      const vs = raw.filter((p) => p.ts >= t0 + b * 60 && p.ts < t0 + (b + 1) * 60);
      const last = vs[vs.length - 1];
      const values = vs.map((p) => p.value);
      return {
        chart: "pre.agg", labels: { host: "a" }, ts: last.ts, count: vs.length,
        sum: values.reduce((s, v) => s + v, 0), min: Math.min(...values), max: Math.max(...values), last: last.value,
      };
    });
    const r = await c.ingest(folded);
    assert.deepEqual([r.status, r.body], [200, { ok: true, accepted: 3 }]);
    for (const agg of ["avg", "min", "max", "count", "sum", "last"]) {
      const q = `?from=1h&agg=${agg}&labels=host:a`;
      const want = await points("pre.raw", q);
      assert.equal(want.length, 3);
      assert.deepEqual(await points("pre.agg", q), want, agg);
      // Rolled up into one step, too.
      assert.deepEqual(await points("pre.agg", `${q}&step=1h`), await points("pre.raw", `${q}&step=1h`), `${agg} by the hour`);
    }
  });

  test("a pre-aggregated point without last shows its mean as last, and later values still win", async () => {
    const t = Math.floor((nowSecs() - 2400) / 60) * 60;
    await c.ingest({ chart: "pre.nolast", ts: t + 10, count: 4, sum: 10, min: 1, max: 4 });
    assert.equal((await points("pre.nolast", "?from=1h&agg=last"))[0].value, 2.5);
    await c.ingest({ chart: "pre.nolast", ts: t + 20, value: 3 });
    const [p] = await points("pre.nolast", "?from=1h&agg=last");
    assert.deepEqual([p.value, p.count, p.sum, p.min, p.max], [3, 5, 13, 1, 4]);
  });

  test("10,000 points in one request are accepted", async () => {
    const t = nowSecs() - 100 * 60;
    const batch = Array.from({ length: 10000 }, (_, i) => ({ chart: "big", value: i % 10, ts: t + (i % 100) * 60 }));
    const r = await c.ingest(batch);
    assert.equal(r.status, 200);
    assert.equal(r.body.accepted, 10000);
    const p = await points("big", "?agg=count");
    assert.equal(p.reduce((s, x) => s + x.value, 0), 10000);
  });
});

describe("refused input", () => {
  const cases = [
    ["malformed JSON", "{chart:", 400, "invalid_json"],
    ["an empty body", "", 400, "invalid_json"],
    ["a missing chart", { value: 1 }, 400, "missing_field"],
    ["a missing value", { chart: "a" }, 400, "missing_field"],
    ["a value in quotes", { chart: "a", value: "42" }, 400, "invalid_value"],
    ["a boolean value", { chart: "a", value: true }, 400, "invalid_value"],
    ["a number too large for JSON", '{"chart":"a","value":1e999}', 400, "invalid_json"],
    ["a value beyond MAX_VALUE", { chart: "a", value: 2e9 }, 400, "value_out_of_range"],
    ["an empty chart name", { chart: "", value: 1 }, 400, "invalid_chart"],
    ["a chart name of 129 characters", { chart: "x".repeat(129), value: 1 }, 400, "invalid_chart"],
    ["a chart name with a newline", { chart: "a\nb", value: 1 }, 400, "invalid_chart"],
    ["a chart that is not a string", { chart: 5, value: 1 }, 400, "invalid_chart"],
    ...[".", "..", "a/../b", "a/./b", "a/", "/a", "a//b"].map((chart) => [`the chart name ${JSON.stringify(chart)}, which a URL cannot hold`, { chart, value: 1 }, 400, "invalid_chart"]),
    ["both ts and timestamp", () => ({ chart: "a", value: 1, ts: nowSecs(), timestamp: nowSecs() }), 400, "duplicate_field"],
    ["a timestamp as a string", { chart: "a", value: 1, timestamp: "now" }, 400, "invalid_timestamp"],
    ["a ts ten minutes ahead", () => ({ chart: "a", value: 1, ts: nowSecs() + 600 }), 400, "timestamp_in_future"],
    ["a ts older than retention", () => ({ chart: "a", value: 1, ts: nowSecs() - 169 * 3600 }), 400, "timestamp_too_old"],
    ["a ts in milliseconds", () => ({ chart: "a", value: 1, ts: Date.now() }), 400, "timestamp_in_milliseconds"],
    ["a ts as a string", { chart: "a", value: 1, ts: "now" }, 400, "invalid_timestamp"],
    ["labels that are not an object", { chart: "a", value: 1, labels: "prod" }, 400, "invalid_labels"],
    ["a misspelt field", { chart: "a", valeu: 1 }, 400, "unknown_field"],
    ["value and count together", { chart: "a", value: 1, count: 1, sum: 1, min: 1, max: 1 }, 400, "conflicting_fields"],
    ["a pre-aggregated point without min", { chart: "a", count: 2, sum: 3, max: 2 }, 400, "missing_field"],
    ["a count of 0", { chart: "a", count: 0, sum: 0, min: 1, max: 2 }, 400, "invalid_count"],
    ["a fractional count", { chart: "a", count: 2.5, sum: 3, min: 1, max: 2 }, 400, "invalid_count"],
    ["min above max", { chart: "a", count: 2, sum: 3, min: 2, max: 1 }, 400, "inconsistent_aggregate"],
    ["a sum no values between min and max can have", { chart: "a", count: 3, sum: 100, min: 1, max: 2 }, 400, "inconsistent_aggregate"],
    ["last outside min and max", { chart: "a", count: 2, sum: 3, min: 1, max: 2, last: 5 }, 400, "inconsistent_aggregate"],
    ["a max beyond MAX_VALUE", { chart: "a", count: 2, sum: 3, min: 1, max: 2e9 }, 400, "value_out_of_range"],
    ["an empty batch", [], 400, "empty_batch"],
    ["a number as the body", "42", 400, "invalid_body"],
  ];
  for (const [what, body, status, code] of cases) {
    test(`${what} gets ${status} ${code}`, async () => {
      const r = await c.ingest(typeof body === "function" ? body() : body);
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code);
      assert.ok(r.body.error.message.length > 10, "the message says what to fix");
    });
  }

  test("a chart name a URL cannot hold says so", async () => {
    const r = await c.ingest({ chart: "a/../b", value: 1 });
    assert.match(r.body.error.message, /URL path/);
  });

  test("ts and timestamp together are refused naming both", async () => {
    const r = await c.ingest([{ chart: "a", value: 1 }, { chart: "a", value: 1, ts: nowSecs(), timestamp: nowSecs() }]);
    assert.equal(r.body.error.index, 1);
    assert.match(r.body.error.message, /ts and timestamp/);
  });

  test("a timestamp in milliseconds is called out as such", async () => {
    const r = await c.ingest({ chart: "a", value: 1, ts: Date.now() });
    assert.match(r.body.error.message, /milliseconds/);
  });

  test("a batch with one bad point is rejected whole, names the index and stores nothing", async () => {
    const r = await c.ingest([{ chart: "whole", value: 1 }, { chart: "whole", value: 2 }, { chart: "whole", value: "x" }]);
    assert.equal(r.status, 400);
    assert.equal(r.body.error.index, 2);
    assert.equal((await c.get("/api/v1/charts/whole")).status, 404);
  });

  test("a body over 1 MiB gets 413 and nothing is stored", async () => {
    const pad = " ".repeat(1024 * 1024);
    const r = await c.ingest(`{"chart":"huge","value":1}${pad}`);
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, "payload_too_large");
    assert.equal((await c.get("/api/v1/charts/huge")).status, 404);
  });

  test("a batch of 10,001 points gets 413 batch_too_large", async () => {
    const r = await c.ingest(Array.from({ length: 10001 }, () => ({ chart: "a", value: 1 })));
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, "batch_too_large");
  });

  test("no key gets 401", async () => {
    const r = await c.fetch("/api/v1/ingest", { method: "POST", body: '{"chart":"a","value":1}' });
    assert.equal(r.status, 401);
    assert.equal(r.body.error.code, "unauthorized");
  });

  test("a wrong key gets 401", async () => {
    for (const key of ["nope", "pp_aaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"]) {
      const r = await c.ingest({ chart: "a", value: 1 }, key);
      assert.equal(r.status, 401);
    }
  });

  test("a read key gets 403 when it tries to ingest", async () => {
    const key = await c.newKey("read");
    const r = await c.ingest({ chart: "a", value: 1 }, key);
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, "forbidden");
  });

  test("bad input leaves what was stored before untouched", async () => {
    await c.ingest({ chart: "keep", value: 11 });
    await c.ingest([{ chart: "keep", value: 1000 }, { chart: "keep", value: null }]);
    const p = await points("keep");
    assert.deepEqual(p.map((x) => [x.count, x.sum]), [[1, 11]]);
  });

  test("a GET on the ingest route is 405", async () => {
    const r = await c.get("/api/v1/ingest");
    assert.equal(r.status, 405);
    assert.equal(r.body.error.code, "method_not_allowed");
  });
});

describe("concurrency and cost", () => {
  test("200 concurrent ingests into one bucket give count 200 and the exact sum", async () => {
    const t = Math.floor((nowSecs() - 300) / 60) * 60 + 1;
    const rs = await Promise.all(Array.from({ length: 200 }, (_, i) => c.ingest({ chart: "race", value: i + 0.5, ts: t })));
    assert.ok(rs.every((r) => r.status === 200));
    const [p] = await points("race");
    assert.equal(p.count, 200);
    assert.equal(p.sum, (199 * 200) / 2 + 100);
  });

  test("every API response that touched D1 reports its rows in Server-Timing", async () => {
    const r = await c.ingest({ chart: "timing", value: 1 });
    assert.match(r.headers.get("Server-Timing"), /^d1;dur=[\d.]+;desc="read=\d+ written=\d+/);
    assert.ok(r.cost.written >= 1);
    const q = await c.get("/api/v1/charts/timing");
    assert.ok(q.cost.read >= 1);
    const h = await c.get("/api/v1/health");
    assert.equal(h.headers.get("Server-Timing"), null);
  });

  test("a single point into an existing bucket writes one row", async () => {
    await c.ingest({ chart: "onerow", value: 1 });
    const r = await c.ingest({ chart: "onerow", value: 2 });
    assert.equal(r.cost.written, 1);
  });

  test("a batch whose points share buckets writes fewer rows than points", async () => {
    const t = Math.floor((nowSecs() - 600) / 60) * 60;
    await c.ingest({ chart: "shared", value: 0, ts: t });
    const r = await c.ingest(Array.from({ length: 100 }, (_, i) => ({ chart: "shared", value: i, ts: t + (i % 2) * 60 })));
    assert.ok(r.cost.written < 10, `written ${r.cost.written}`);
  });
});
