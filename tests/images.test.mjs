// Images and embeds: SVG charts and badges drawn by the Worker, public charts, sparklines for the
// dashboard, and which routes other sites may frame.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, nowSecs } from "./helpers.mjs";

let c, readKey;
before(async () => {
  c = await startWorker();
  const start = Math.floor((nowSecs() - 3 * 3600) / 60) * 60;
  await c.ingest(Array.from({ length: 50 }, (_, i) => ({ chart: "users", value: 10 + i, ts: start + i * 60 })));
  await c.ingest(Array.from({ length: 5 }, (_, i) => ({ chart: "blog.visits", value: i, ts: start + i * 60 })));
  readKey = await c.newKey("read", { charts: "users" });
});
after(() => c.dispose());

/** A small well-formedness check: every tag closes in order and no raw `<` or `&` hides in text. */
function assertWellFormedXml(xml) {
  const stack = [];
  const tags = xml.match(/<[^>]*>/g) || [];
  for (const t of tags) {
    if (t.startsWith("<?") || t.endsWith("/>")) continue;
    const close = /^<\/([\w:-]+)>$/.exec(t);
    if (close) assert.equal(stack.pop(), close[1], `</${close[1]}> closes the open tag`);
    else stack.push(/^<([\w:-]+)/.exec(t)[1]);
  }
  assert.deepEqual(stack, [], "every tag is closed");
  const text = xml.replace(/<[^>]*>/g, "");
  assert.ok(!/&(?!(amp|lt|gt|quot|#39);)/.test(text), "no bare & in text");
}

test("an SVG chart carries as many points as the series and parses as XML", async () => {
  const r = await c.get(`/img/users.svg?key=${readKey}&range=24h`, null);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("Content-Type"), /^image\/svg\+xml/);
  assertWellFormedXml(r.body);
  assert.match(r.body, /data-points="50"/);
  assert.match(r.body, />59</, "the last value is shown");
  assert.match(r.body, /data-tick="\d+"/, "a scale of values is drawn");
});

test("images are cacheable for about a minute and answer 304 to their ETag", async () => {
  const r = await c.get(`/img/users.svg?key=${readKey}`, null);
  assert.equal(r.headers.get("Cache-Control"), "private, max-age=60", "a private chart: no shared cache keeps it");
  const etag = r.headers.get("ETag");
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  const again = await c.fetch(`/img/users.svg?key=${readKey}`, { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
});

test("an image with its key in the URL is drawn at most once a minute: the next fetch comes from the edge cache, not D1", async () => {
  const path = `/img/users.svg?key=${readKey}&range=6h`;
  const first = await c.get(path, null);
  assert.equal(first.status, 200);
  assert.ok(first.cost, "the first fetch reads D1");
  // The image is stored after the response: the next fetches find it.
  let second;
  for (let i = 0; i < 40 && (second = await c.get(path, null)).cost; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(second.status, 200);
  assert.equal(second.cost, null, "the second comes from the cache");
  assert.equal(second.body, first.body);
  assert.equal(second.headers.get("Cache-Control"), "private, max-age=60", "with the chart's own headers");
  assert.equal(second.headers.get("ETag"), first.headers.get("ETag"));
  // A key in a header is not in the URL: never shared.
  const byHeader = `/img/users.svg?range=6h`;
  for (let i = 0; i < 2; i++) assert.ok((await c.get(byHeader, readKey)).cost, "a header-key image always reads D1");
});

test("width, height, theme and the sparkline style change the image", async () => {
  const dark = await c.get(`/img/users.svg?key=${readKey}&theme=dark&width=300&height=100`, null);
  assert.match(dark.body, /width="300" height="100"/);
  assert.match(dark.body, /#0d1117/);
  const spark = await c.get(`/img/users.svg?key=${readKey}&type=spark`, null);
  assert.ok(!spark.body.includes("<text"));
  assert.equal((await c.get(`/img/users.svg?key=${readKey}&width=5`, null)).status, 400);
});

test("a badge shows the chart name and the last value", async () => {
  const r = await c.get(`/badge/users.svg?key=${readKey}`, null);
  assert.equal(r.status, 200);
  assertWellFormedXml(r.body);
  assert.match(r.body, />users</);
  assert.match(r.body, />59</);
});

test("a missing or wrong key on an image answers 401 with an SVG that says so", async () => {
  for (const q of ["", "?key=nope"]) {
    const r = await c.get(`/img/users.svg${q}`, null);
    assert.equal(r.status, 401);
    assert.match(r.headers.get("Content-Type"), /^image\/svg\+xml/);
    assertWellFormedXml(r.body);
    assert.match(r.body, /unauthorized/);
  }
  const badge = await c.get("/badge/users.svg", null);
  assert.equal(badge.status, 401);
});

test("a read key limited to one chart cannot draw another", async () => {
  const r = await c.get(`/img/blog.visits.svg?key=${readKey}`, null);
  assert.equal(r.status, 403);
});

test("a chart marked public is readable by anyone, and writable by no one without a key", async () => {
  assert.equal((await c.get("/api/v1/charts/blog.visits", null)).status, 401);
  const put = await c.send("PUT", "/api/v1/charts/blog.visits", { public: true });
  assert.deepEqual(put.body, { chart: "blog.visits", bucket_seconds: 60, public: true });
  assert.equal((await c.get("/api/v1/charts/blog.visits", null)).status, 200);
  const img = await c.get("/img/blog.visits.svg", null);
  assert.equal(img.status, 200);
  // A URL key that does not itself reach the chart (its being public does) keeps nothing in the
  // edge cache, so making the chart private again stops that URL at once.
  for (let i = 0; i < 3; i++) assert.ok((await c.get(`/img/blog.visits.svg?key=${readKey}`, null)).cost, "drawn, not cached");
  assert.equal(img.headers.get("Cache-Control"), "public, max-age=60", "a public chart's image may sit in shared caches");
  const listed = (await c.get("/api/v1/charts", null)).body.charts.map((s) => s.chart);
  assert.deepEqual(listed, ["blog.visits"]);
  const write = await c.fetch("/api/v1/ingest", { method: "POST", body: '{"chart":"blog.visits","value":1}' });
  assert.equal(write.status, 401);
  await c.send("PUT", "/api/v1/charts/blog.visits", { public: false });
  assert.equal((await c.get("/img/blog.visits.svg", null)).status, 401);
  assert.equal((await c.get(`/img/blog.visits.svg?key=${readKey}`, null)).status, 403);
});

test("only an admin may make a chart public; an ingest key may still set its bucket size", async () => {
  const ingest = await c.newKey("ingest", { charts: "shop." });
  await c.ingest({ chart: "shop.rev", value: 5 }, ingest);
  const publish = await c.send("PUT", "/api/v1/charts/shop.rev", { public: true }, ingest);
  assert.equal(publish.status, 403);
  assert.match(publish.body.error.message, /admin/);
  assert.equal((await c.get("/api/v1/charts/shop.rev", null)).status, 401, "still private: nothing to read without a key");
  assert.equal((await c.send("PUT", "/api/v1/charts/shop.rev", { bucket_seconds: 120 }, ingest)).status, 200);
  assert.equal((await c.send("PUT", "/api/v1/charts/users", { public: true }, readKey)).status, 403);
  const admin = await c.newKey("admin");
  assert.equal((await c.send("PUT", "/api/v1/charts/shop.rev", { public: true }, admin)).status, 200);
  assert.equal((await c.get("/api/v1/charts/shop.rev", null)).status, 200);
  assert.equal((await c.send("PUT", "/api/v1/charts/shop.rev", { public: false }, admin)).status, 200);
});

test("the chart list gives every series its sparkline in one request", async () => {
  const r = await c.get("/api/v1/charts?spark=48");
  const users = r.body.charts.find((s) => s.chart === "users");
  assert.equal(users.spark.length, 48);
  assert.deepEqual(users.spark.at(-1), { ts: users.first_ts + 49 * 60, value: 59 });
  const ts = users.spark.map((p) => p.ts);
  assert.deepEqual(ts, [...ts].sort((a, b) => a - b));
  assert.equal(r.body.charts.find((s) => s.chart === "blog.visits").spark.length, 5);
  assert.ok(r.cost.read < 2 * (48 + 5 + 10), `rows read ${r.cost.read}`);
  assert.equal((await c.get("/api/v1/charts?spark=1000")).body.error.code, "invalid_spark");
  assert.equal((await c.get("/api/v1/charts")).body.charts[0].spark, undefined);
});

test("only embeds and images may be framed by other sites", async () => {
  const embed = await c.get(`/embed/users?key=${readKey}`, null);
  assert.equal(embed.status, 200);
  assert.match(embed.headers.get("Content-Type"), /^text\/html/);
  const embedCsp = embed.headers.get("Content-Security-Policy");
  assert.match(embedCsp, /frame-ancestors \*/);
  assert.match(embedCsp, /script-src 'self'/);
  assert.doesNotMatch(embedCsp, /unsafe/);
  assert.equal(embed.headers.get("Referrer-Policy"), "no-referrer");
  assert.match(embed.body, /<html/i);
  const img = await c.get(`/img/users.svg?key=${readKey}`, null);
  assert.equal(img.headers.get("Content-Security-Policy"), "default-src 'none'; frame-ancestors *");
  assert.equal(img.headers.get("Referrer-Policy"), "no-referrer");
  for (const p of ["/api/v1/charts", "/api/v1/charts/users", "/api/v1/keys", "/api/v1/health"]) {
    const r = await c.get(p);
    assert.equal(r.headers.get("Content-Security-Policy"), "default-src 'none'; frame-ancestors 'none'", p);
    assert.equal(r.headers.get("Referrer-Policy"), "no-referrer", p);
  }
});
