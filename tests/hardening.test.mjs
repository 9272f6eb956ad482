// The access and abuse holes an outside review found (issue 7): each test here failed before its fix.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { startWorker, ADMIN, nowSecs, insertBuckets } from "./helpers.mjs";

let c;
before(async () => {
  c = await startWorker();
  await c.ingest([{ chart: "users", value: 1 }, { chart: "shop.orders", value: 2 }]);
});
after(() => c.dispose());

test("a refusal does not tell through Server-Timing whether a private chart exists", async () => {
  const shopKey = await c.newKey("read", { charts: "shop." });
  for (const [path, key] of [
    ["/api/v1/charts/users", null],
    ["/api/v1/charts/nope", null],
    ["/img/users.svg", null],
    ["/img/nope.svg", null],
    ["/badge/users.svg", null],
    ["/api/v1/charts/users", shopKey],
    ["/api/v1/charts/nope", shopKey],
  ]) {
    const r = await c.get(path, key);
    assert.ok([401, 403].includes(r.status), `${path}: ${r.status}`);
    assert.equal(r.headers.get("Server-Timing"), null, `${path} says nothing about D1`);
  }
  const a = await c.get("/api/v1/charts/users", null);
  const b = await c.get("/api/v1/charts/nope", null);
  assert.deepEqual([a.status, a.body], [b.status, b.body], "the same answer for a chart that exists and one that does not");
});

test("an allowed read still reports its D1 cost", async () => {
  const r = await c.get("/api/v1/charts/users");
  assert.equal(r.status, 200);
  assert.ok(r.cost && r.cost.read > 0, "Server-Timing carries rows read");
});

/**
 * POSTs an endless chunked body (no Content-Length) over a real connection, 64 KiB at a time, until
 * the answer arrives; answers its status and how many body bytes were sent by then. Miniflare's
 * dispatchFetch cannot show this: it fails a fetch whose answer comes before its upload ends.
 */
async function endlessUpload(base, path, key) {
  const { hostname, port } = new URL(base);
  const socket = net.connect(Number(port), hostname);
  await once(socket, "connect");
  let answer = "";
  socket.on("data", (d) => (answer += d));
  socket.on("error", () => {});
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${hostname}\r\nX-API-Key: ${key}\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const chunk = Buffer.alloc(65536, 32);
  let sent = 0;
  // Bounded, so that a Worker that reads everything still ends the test (and fails it).
  while (!answer && sent < 64 * 1024 * 1024 && !socket.destroyed) {
    const ok = socket.write(`${chunk.length.toString(16)}\r\n`) && socket.write(chunk) && socket.write("\r\n");
    sent += chunk.length;
    if (!ok) await Promise.race([once(socket, "drain"), once(socket, "data"), once(socket, "close")]);
    else await new Promise((r) => setImmediate(r));
  }
  const deadline = Date.now() + 10_000;
  while (!answer && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  socket.destroy();
  return { status: Number(answer.split(" ")[1]), sent };
}

test("a key without the ingest scope is refused before its body is read", async () => {
  const read = await c.newKey("read");
  // Before the fix the body was read and parsed first: this was 400 invalid_json.
  const junk = await c.ingest("this is not json", read);
  assert.equal(junk.status, 403);
  assert.match(junk.body.error.message, /ingest scope/);
  assert.equal((await c.ingest("this is not json", null)).status, 401);
  const w = await startWorker({ listen: true });
  try {
    const wRead = await w.newKey("read");
    const r = await endlessUpload(String(await w.mf.ready), "/api/v1/ingest", wRead);
    // The old code read the whole body first and answered 413; what was sent meanwhile is mostly
    // what loopback socket buffers hold, so the bound is loose.
    assert.equal(r.status, 403);
    assert.ok(r.sent < 8 * 1024 * 1024, `${r.sent} bytes went up before the refusal`);
  } finally {
    await w.dispose();
  }
});

test("a chunked body without a length stops being read at 1 MiB and is refused with 413", async () => {
  const w = await startWorker({ listen: true });
  try {
    const r = await endlessUpload(String(await w.mf.ready), "/api/v1/ingest", ADMIN);
    assert.equal(r.status, 413);
    assert.ok(r.sent < 8 * 1024 * 1024, `the Worker took ${r.sent} bytes before refusing`);
  } finally {
    await w.dispose();
  }
});

test("an ingest or admin key in a URL is refused on read routes; a read key works there", async () => {
  const ingest = await c.newKey("ingest");
  const admin = await c.newKey("admin");
  const read = await c.newKey("read");
  for (const key of [ingest, admin]) {
    for (const path of ["/api/v1/charts/users", "/api/v1/charts", "/img/users.svg", "/badge/users.svg"]) {
      const r = await c.get(`${path}?key=${key}`, null);
      assert.equal(r.status, 403, path);
      assert.equal(r.headers.get("Server-Timing"), null);
    }
    const r = await c.get(`/api/v1/charts/users?key=${key}`, null);
    assert.equal(r.body.error.code, "url_key_not_allowed");
    assert.match(r.body.error.message, /read key/);
  }
  assert.equal((await c.get(`/api/v1/charts/users?key=${read}`, null)).status, 200);
  assert.equal((await c.get(`/img/users.svg?key=${read}`, null)).status, 200);
  assert.equal((await c.get("/api/v1/charts/users", admin)).status, 200, "in a header an admin key reads");
});

test("a huge range or step on an image or a query is clamped, not an overflow", async () => {
  const read = await c.newKey("read");
  const img = await c.get(`/img/users.svg?key=${read}&range=9223372036854775807`, null);
  assert.equal(img.status, 200);
  assert.match(img.body, /data-points="1"/);
  const q = await c.get("/api/v1/charts/users?step=9223372036854775800");
  assert.equal(q.status, 200);
  assert.equal(q.body.step, 168 * 3600, "the step is cut to the retention");
});

test("chart names that no URL can address are refused, and a trailing slash is not part of a name", async () => {
  for (const chart of [".", "..", "a/../b", "a/./b", "/lead", "trail/", "a//b"]) {
    const r = await c.ingest({ chart, value: 1 });
    assert.equal(r.status, 400, chart);
    assert.equal(r.body.error.code, "invalid_chart", chart);
  }
  await c.ingest({ chart: "dir/name.with.dots", value: 3 });
  assert.equal((await c.get("/api/v1/charts/dir/name.with.dots")).status, 200);
  const slash = await c.get("/api/v1/charts/users/");
  assert.equal(slash.status, 200);
  assert.equal(slash.body.chart, "users");
});

test("a %-escape needs two hex digits: %+4 is a broken path, not a character", async () => {
  for (const path of ["/api/v1/charts/a%+4", "/api/v1/charts/a%-4", "/api/v1/charts/a%4"]) {
    const r = await c.get(path);
    assert.equal(r.status, 400, path);
    assert.equal(r.body.error.code, "invalid_path", path);
  }
  assert.equal((await c.get("/api/v1/charts/shop%2eorders")).status, 200);
});

test("one request may not give a chart more label sets than MAX_SERIES_PER_CHART", async () => {
  const w = await startWorker();
  try {
    const points = Array.from({ length: 1001 }, (_, i) => ({ chart: "cardinality", value: 1, labels: { id: `u${i}` } }));
    const r = await w.ingest(points);
    assert.equal(r.status, 422);
    assert.equal(r.body.error.code, "too_many_series");
    assert.match(r.body.error.message, /1000/);
    assert.match(r.body.error.message, /MAX_SERIES_PER_CHART/);
    assert.equal((await w.get("/api/v1/charts/cardinality")).status, 404, "nothing was stored");
    assert.equal((await w.ingest(points.slice(0, 1000))).status, 200, "1,000 label sets are fine");
  } finally {
    await w.dispose();
  }
});

test("series added over several requests stop at the limit, and the chart's existing series still take points", async () => {
  const w = await startWorker({ vars: { MAX_SERIES_PER_CHART: "3" } });
  try {
    for (const host of ["a", "b", "c"]) {
      assert.equal((await w.ingest({ chart: "hosts", value: 1, labels: { host } })).status, 200);
    }
    const over = await w.ingest([{ chart: "other", value: 1 }, { chart: "hosts", value: 1, labels: { host: "d" } }]);
    assert.equal(over.status, 422);
    assert.equal(over.body.error.code, "too_many_series");
    assert.equal((await w.get("/api/v1/charts/other")).status, 404, "the whole batch was refused");
    assert.equal((await w.ingest({ chart: "hosts", value: 2, labels: { host: "a" } })).status, 200);
    const listed = (await w.get("/api/v1/charts")).body.charts.filter((s) => s.chart === "hosts");
    assert.equal(listed.length, 3);
  } finally {
    await w.dispose();
  }
});

test("a batch that fails in a shared group-commit round fails alone; the requests it shared with are stored", async () => {
  const w = await startWorker({ vars: { MAX_SERIES_PER_CHART: "2" } });
  try {
    await w.ingest([{ chart: "full", value: 1, labels: { k: "1" } }, { chart: "full", value: 1, labels: { k: "2" } }]);
    const good = Array.from({ length: 24 }, (_, i) => w.ingest({ chart: `fine.${i}`, value: i }));
    const bad = w.ingest({ chart: "full", value: 1, labels: { k: "3" } });
    const answers = await Promise.all([...good.slice(0, 12), bad, ...good.slice(12)]);
    const badAnswer = answers[12];
    assert.equal(badAnswer.status, 422);
    const fine = answers.filter((_, i) => i !== 12);
    assert.deepEqual(fine.map((a) => a.status), fine.map(() => 200));
    const listed = (await w.get("/api/v1/charts")).body.charts.filter((s) => s.chart.startsWith("fine."));
    assert.equal(listed.length, 24, "every good request's point is stored");
    const shared = fine.some((a) => /shared=([2-9]|\d\d)/.test(a.headers.get("Server-Timing") || ""));
    assert.ok(shared, "some requests were written together: the test exercised group commit");
  } finally {
    await w.dispose();
  }
});

test("a batch whose SQL parameter would pass 1 MB is written in several parameters of one transaction", async () => {
  const w = await startWorker();
  try {
    const t0 = nowSecs() - 20_000;
    const quotes = '\\"'.repeat(15);
    const body = "[" + Array.from({ length: 8000 }, (_, i) =>
      `{"chart":"split.s${i % 1000}","value":-9.87654321012345e-300,"ts":${t0 + i}.123456,"labels":{"a":"${quotes}"}}`).join(",") + "]";
    assert.ok(body.length < 1024 * 1024, `${body.length} bytes`);
    const r = await w.ingest(body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.accepted, 8000);
    const queries = Number(/queries=(\d+)/.exec(r.headers.get("Server-Timing"))[1]);
    assert.ok(queries >= 6, `${queries} statements: at least three parameters of two statements each, in one call`);
    assert.match(r.headers.get("Server-Timing"), /calls=1\b/);
    const listed = (await w.get("/api/v1/charts")).body.charts.filter((s) => s.chart.startsWith("split."));
    assert.equal(listed.length, 1000);
    assert.equal(listed.reduce((n, s) => n + s.points, 0), 8000, "every point is stored");
  } finally {
    await w.dispose();
  }
});

test("a key's chart list reads the charts it may see, not every series", async () => {
  const w = await startWorker();
  try {
    const blog = Array.from({ length: 300 }, (_, i) => ({ chart: `blog.post${String(i).padStart(3, "0")}`, value: i }));
    await w.ingest([...blog, { chart: "shop.a", value: 1 }, { chart: "shop.b", value: 2 }]);
    const shop = await w.newKey("read", { charts: "shop." });
    const r = await w.get("/api/v1/charts", shop);
    assert.deepEqual(r.body.charts.map((s) => s.chart), ["shop.a", "shop.b"]);
    assert.ok(r.cost.read < 20, `rows read ${r.cost.read} for 2 of 302 series`);
    const publicList = await w.get("/api/v1/charts", null);
    assert.deepEqual(publicList.body.charts, []);
    assert.ok(publicList.cost.read < 5, `rows read ${publicList.cost.read} to list no public chart`);
  } finally {
    await w.dispose();
  }
});

test("a key for one chart lists that chart without reading the charts whose names start with it", async () => {
  const w = await startWorker();
  try {
    await w.ingest({ chart: "users", value: 1 });
    const one = await w.newKey("read", { chart: "users" });
    const small = (await w.get("/api/v1/charts?spark=200", one)).cost.read;
    await w.ingest(Array.from({ length: 300 }, (_, i) => ({ chart: "users.secret", value: i, labels: { n: `x${i}` } })));
    const r = await w.get("/api/v1/charts?spark=200", one);
    assert.deepEqual(r.body.charts.map((s) => s.chart), ["users"]);
    assert.equal(r.cost.read, small, "the cost does not show that users.secret exists");
  } finally {
    await w.dispose();
  }
});

test("creating many series reads a counter per series, not the chart's series again and again", async () => {
  const w = await startWorker();
  try {
    const r = await w.ingest(Array.from({ length: 1000 }, (_, i) => ({ chart: "wide", value: i, labels: { id: `s${i}` } })));
    assert.equal(r.status, 200);
    assert.ok(r.cost.read < 20_000, `rows read ${r.cost.read} to create 1,000 series (a COUNT per series read 500,000)`);
  } finally {
    await w.dispose();
  }
});

test("a chart query reads the series it needs, not all of a chart's label sets", async () => {
  const w = await startWorker();
  try {
    const pts = Array.from({ length: 500 }, (_, i) => ({ chart: "wide", value: i, labels: { id: `s${String(i).padStart(3, "0")}` } }));
    await w.ingest(pts);
    const r = await w.get("/api/v1/charts/wide?labels=id:s250");
    assert.equal(r.status, 200);
    assert.ok(r.cost.read < 40, `rows read ${r.cost.read} with 500 label sets`);
    const ask = await w.get("/api/v1/charts/wide");
    assert.equal(ask.body.error.code, "labels_required");
    assert.match(ask.body.error.message, /and more$/);
  } finally {
    await w.dispose();
  }
});

test("retention deletes at most 20,000 hours of a series a run (10 rounds of 3 queries) and the next run continues", async () => {
  const w = await startWorker({ vars: { MAX_POINTS: "100000" } });
  try {
    const old = Math.floor((nowSecs() - 200 * 3600) / 3600) * 3600;
    await w.db.prepare("INSERT INTO series (id, chart, labels, cap, created_at) VALUES (1, 'old', '{}', 100000, 0)").run();
    // 25,000 hours holding one bucket each, as a sparse series keeps them.
    await insertBuckets(w.db, Array.from({ length: 25000 }, (_, i) => [1, old - (24999 - i) * 3600]));
    const count = async () => (await w.db.prepare("SELECT COUNT(*) AS n FROM chunks WHERE series_id = 1").first()).n;
    assert.equal(await count(), 25000);
    await w.scheduled();
    assert.equal(await count(), 5000, "one run stops after 20,000");
    await w.scheduled();
    assert.equal(await count(), 0);
    const series = await w.db.prepare("SELECT COUNT(*) AS n FROM series WHERE chart = 'old'").first();
    assert.equal(series.n, 0, "the empty series is dropped");
  } finally {
    await w.dispose();
  }
});

test("retention judges age by the event's scheduled time, not the wall clock", async () => {
  const w = await startWorker();
  try {
    await w.ingest({ chart: "fresh", value: 1 });
    const worker = await w.mf.getWorker();
    await worker.scheduled({ cron: "17 * * * *", scheduledTime: new Date(Date.now() + 3600_000) });
    assert.equal((await w.get("/api/v1/charts/fresh")).status, 200, "an hour later the point is kept");
    await worker.scheduled({ cron: "17 * * * *", scheduledTime: new Date(Date.now() + 8 * 86400_000) });
    assert.equal((await w.get("/api/v1/charts/fresh")).status, 404, "eight days later it is gone");
  } finally {
    await w.dispose();
  }
});
