// API keys: created by the admin, stored hashed, scoped, limited to a chart prefix, revocable.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ADMIN } from "./helpers.mjs";

let c;
before(async () => {
  c = await startWorker();
});
after(() => c.dispose());

test("the admin creates a key that is shown once and stored only as a hash", async () => {
  const r = await c.send("POST", "/api/v1/keys", { scope: "ingest", name: "backup script" });
  assert.equal(r.status, 201);
  assert.match(r.body.key, /^pp_[a-z2-9]{10}_[a-z2-9]{32}$/);
  assert.equal(r.body.scope, "ingest");
  const { results } = await c.db.prepare("SELECT * FROM api_keys WHERE id = ?").bind(r.body.id).all();
  assert.equal(results.length, 1);
  assert.ok(!JSON.stringify(results).includes(r.body.key.slice(3)), "the secret is not stored");
  const list = await c.get("/api/v1/keys");
  const listed = list.body.keys.find((k) => k.id === r.body.id);
  assert.deepEqual(listed.name, "backup script");
  assert.ok(!JSON.stringify(list.body).includes(r.body.key), "the list never shows the secret");
  assert.ok(!("hash" in listed));
});

test("an ingest key writes but cannot read, a read key reads but cannot write", async () => {
  const ingest = await c.newKey("ingest");
  const read = await c.newKey("read");
  assert.equal((await c.ingest({ chart: "scoped", value: 1 }, ingest)).status, 200);
  assert.equal((await c.get("/api/v1/charts/scoped", ingest)).status, 403);
  assert.equal((await c.get("/api/v1/charts/scoped", read)).status, 200);
  assert.equal((await c.ingest({ chart: "scoped", value: 1 }, read)).status, 403);
});

test("a key limited to shop. cannot see or touch blog.users", async () => {
  await c.ingest([{ chart: "blog.users", value: 1 }, { chart: "shop.orders", value: 2 }]);
  const ingest = await c.newKey("ingest", { charts: "shop." });
  const read = await c.newKey("read", { charts: "shop." });
  assert.equal((await c.ingest({ chart: "shop.orders", value: 3 }, ingest)).status, 200);
  const denied = await c.ingest({ chart: "blog.users", value: 3 }, ingest);
  assert.equal(denied.status, 403);
  assert.match(denied.body.error.message, /shop\./);
  assert.equal((await c.get("/api/v1/charts/blog.users", read)).status, 403);
  const list = (await c.get("/api/v1/charts", read)).body.charts.map((s) => s.chart);
  assert.deepEqual(list, ["shop.orders"]);
  const mixed = await c.ingest([{ chart: "shop.orders", value: 1 }, { chart: "blog.users", value: 1 }], ingest);
  assert.equal(mixed.status, 403, "a batch touching a forbidden chart is refused whole");
});

test("only the admin manages keys", async () => {
  const read = await c.newKey("read");
  assert.equal((await c.send("POST", "/api/v1/keys", { scope: "read" }, read)).status, 403);
  assert.equal((await c.get("/api/v1/keys", read)).status, 403);
  assert.equal((await c.get("/api/v1/keys", null)).status, 401);
  const admin = await c.newKey("admin");
  assert.equal((await c.get("/api/v1/keys", admin)).status, 200);
});

test("a revoked key stops working", async () => {
  const r = await c.send("POST", "/api/v1/keys", { scope: "ingest" });
  assert.equal((await c.ingest({ chart: "rev", value: 1 }, r.body.key)).status, 200);
  assert.equal((await c.send("DELETE", `/api/v1/keys/${r.body.id}`)).status, 200);
  assert.equal((await c.ingest({ chart: "rev", value: 1 }, r.body.key)).status, 401);
  assert.equal((await c.send("DELETE", `/api/v1/keys/${r.body.id}`)).status, 404);
});

test("bad key requests are clear errors", async () => {
  assert.equal((await c.send("POST", "/api/v1/keys", { scope: "root" })).body.error.code, "invalid_scope");
  assert.equal((await c.send("POST", "/api/v1/keys", {})).body.error.code, "missing_field");
  assert.equal((await c.send("POST", "/api/v1/keys", { scope: "admin", charts: "shop." })).body.error.code, "invalid_charts");
  assert.equal((await c.send("POST", "/api/v1/keys", { scope: "read", expires: 1 })).body.error.code, "unknown_field");
});

test("the admin token works wherever a key does", async () => {
  assert.equal((await c.ingest({ chart: "admin-can", value: 1 }, ADMIN)).status, 200);
  assert.equal((await c.get("/api/v1/charts/admin-can", ADMIN)).status, 200);
});

test("without an ADMIN_TOKEN the admin routes are off", async () => {
  const bare = await startWorker({ adminToken: null });
  try {
    const r = await bare.send("POST", "/api/v1/keys", { scope: "read" }, "anything");
    assert.equal(r.status, 403);
    assert.equal(r.body.error.code, "admin_disabled");
    assert.equal((await bare.ingest({ chart: "a", value: 1 }, "anything")).status, 401);
  } finally {
    await bare.dispose();
  }
});

test("?key= works on read routes with a stored key, never with the admin token or on admin routes", async () => {
  const read = await c.newKey("read");
  await c.ingest({ chart: "urlkey", value: 1 });
  assert.equal((await c.get(`/api/v1/charts/urlkey?key=${read}`, null)).status, 200);
  assert.equal((await c.get(`/api/v1/charts/urlkey?key=${ADMIN}`, null)).status, 401);
  const admin = await c.newKey("admin");
  assert.equal((await c.get(`/api/v1/keys?key=${admin}`, null)).status, 401);
  assert.equal((await c.get(`/api/v1/keys?key=${ADMIN}`, null)).status, 401);
});

test("a key for one chart reads that chart and not one that merely shares its prefix", async () => {
  await c.ingest([{ chart: "sales", value: 1 }, { chart: "sales2", value: 2 }]);
  const r = await c.send("POST", "/api/v1/keys", { scope: "read", chart: "sales" });
  assert.equal(r.status, 201);
  assert.equal(r.body.chart, "sales");
  assert.equal(r.body.charts, null);
  assert.equal((await c.get("/api/v1/charts/sales", r.body.key)).status, 200);
  assert.equal((await c.get("/api/v1/charts/sales2", r.body.key)).status, 403);
  const list = (await c.get("/api/v1/charts", r.body.key)).body.charts.map((s) => s.chart);
  assert.deepEqual(list, ["sales"]);
  const listed = (await c.get("/api/v1/keys")).body.keys.find((k) => k.id === r.body.id);
  assert.equal(listed.chart, "sales");
  assert.equal((await c.send("POST", "/api/v1/keys", { scope: "read", chart: "a", charts: "b" })).body.error.code, "invalid_charts");
});
