// Notifications: channels, exactly one message per state change, the shapes each kind of receiver
// gets, retries with every attempt logged. A local HTTP receiver on loopback stands in for the
// webhook, Slack, Discord and ntfy endpoints.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, ADMIN } from "./helpers.mjs";

let c, receiver, base;
const got = []; // { path, headers, body }
let failNext = 0;

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      got.push({ path: req.url, headers: req.headers, body });
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end("receiver is down");
      } else res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${receiver.address().port}`;
  c = await startWorker();
});
after(async () => {
  await c.dispose();
  receiver.close();
});

const ping = (path) => c.fetch(path, { method: "POST", headers: { "X-API-Key": ADMIN } });
const checkAt = async (at) => (await c.mf.getWorker()).scheduled({ cron: "* * * * *", scheduledTime: new Date(at * 1000) });
const job = async (name) => (await c.get(`/api/v1/jobs/${encodeURIComponent(name)}`)).body;
const settle = () => new Promise((r) => setTimeout(r, 300));
/** Waits until the receiver has seen `n` requests on `path` (deliveries run after the response). */
async function seen(path, n) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const hits = got.filter((g) => g.path === path);
    if (hits.length >= n || Date.now() > deadline) return hits;
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("only an admin manages channels; a bad URL is refused; the list hides the secret part of a URL", async () => {
  const ingest = await c.newKey("ingest");
  assert.equal((await c.send("POST", "/api/v1/channels", { type: "webhook", url: `${base}/x` }, ingest)).status, 403);
  assert.equal((await c.send("POST", "/api/v1/channels", { type: "webhook", url: "javascript:alert(1)" })).status, 400);
  assert.equal((await c.send("POST", "/api/v1/channels", { type: "pager", url: `${base}/x` })).status, 400);
  const r = await c.send("POST", "/api/v1/channels", { type: "slack", url: `${base}/slack/T000/B000/secret`, name: "ops" });
  assert.equal(r.status, 201);
  const listed = (await c.get("/api/v1/channels")).body.channels.find((ch) => ch.id === r.body.id);
  assert.equal(listed.url, `${base}/…`);
  assert.ok(!JSON.stringify(listed).includes("secret"));
  assert.equal((await c.send("DELETE", `/api/v1/channels/${r.body.id}`)).status, 200);
  assert.equal((await c.get("/api/v1/notifications", ingest)).status, 403);
});

test("a test message reaches the channel and is logged", async () => {
  const r = await c.send("POST", "/api/v1/channels", { type: "webhook", url: `${base}/test-hook` });
  const t = await c.send("POST", `/api/v1/channels/${r.body.id}/test`);
  assert.equal(t.status, 200, JSON.stringify(t.body));
  assert.deepEqual(t.body, { ok: true, result: "HTTP 204" });
  const [hit] = await seen("/test-hook", 1);
  assert.equal(JSON.parse(hit.body).name, "pushplot test");
  await c.send("DELETE", `/api/v1/channels/${r.body.id}`);
});

test("every channel gets exactly one message per state change: down, then up again", async () => {
  const ids = [];
  for (const type of ["webhook", "slack", "discord", "ntfy"]) {
    ids.push((await c.send("POST", "/api/v1/channels", { type, url: `${base}/${type}` })).body.id);
  }
  await c.send("PUT", "/api/v1/jobs/minutely", { period: "60s", grace: "60s" });
  await ping("/ping/minutely");
  const t = (await job("minutely")).last_ping;
  for (const at of [t + 30, t + 90, t + 150, t + 210, t + 400]) await checkAt(at);
  assert.equal((await job("minutely")).status, "down");
  await ping("/ping/minutely");
  assert.equal((await job("minutely")).status, "up");
  for (const type of ["webhook", "slack", "discord", "ntfy"]) {
    const hits = await seen(`/${type}`, 2);
    await settle();
    assert.equal(got.filter((g) => g.path === `/${type}`).length, 2, `${type}: one for down, one for up`);
    if (type === "webhook") {
      const [down, up] = hits.map((h) => JSON.parse(h.body));
      assert.deepEqual([down.kind, down.name, down.from, down.to], ["job", "minutely", "late", "down"]);
      assert.deepEqual([up.from, up.to], ["down", "up"]);
      assert.match(up.url, /^http:\/\/pushplot\.test\/#\/jobs\/minutely$/);
      assert.equal(hits[0].headers["content-type"], "application/json");
    }
    if (type === "slack") assert.match(JSON.parse(hits[0].body).text, /minutely.*down/);
    if (type === "discord") assert.match(JSON.parse(hits[0].body).embeds[0].title, /minutely/);
    if (type === "ntfy") {
      assert.match(hits[0].headers.title, /minutely/);
      assert.ok(hits[0].headers.tags);
    }
  }
  for (const id of ids) await c.send("DELETE", `/api/v1/channels/${id}`);
});

test("a failed exit code notifies at once, with the run's exit code and message", async () => {
  const id = (await c.send("POST", "/api/v1/channels", { type: "webhook", url: `${base}/fail-hook` })).body.id;
  await ping("/ping/nightly");
  await c.fetch("/ping/nightly/2", { method: "POST", headers: { "X-API-Key": ADMIN }, body: "tar: disk full" });
  const [hit] = await seen("/fail-hook", 1);
  const event = JSON.parse(hit.body);
  assert.deepEqual([event.from, event.to], ["up", "failed"]);
  assert.match(event.detail, /exit code 2/);
  assert.match(event.detail, /disk full/);
  await c.send("DELETE", `/api/v1/channels/${id}`);
});

test("a receiver that answers 500 gets retries, then success, and the log shows each attempt", async () => {
  const id = (await c.send("POST", "/api/v1/channels", { type: "webhook", url: `${base}/flaky` })).body.id;
  failNext = 1;
  await ping("/ping/flaky");
  await c.fetch("/ping/flaky/fail", { method: "POST", headers: { "X-API-Key": ADMIN } });
  await seen("/flaky", 1);
  await settle();
  let [n] = (await c.get("/api/v1/notifications")).body.notifications.filter((x) => x.channel === id);
  assert.equal(n.attempts, 1);
  assert.match(n.result, /HTTP 500/);
  assert.ok(n.next_attempt > n.created_at, "a retry is planned");
  await checkAt(n.next_attempt - 1);
  assert.equal(got.filter((g) => g.path === "/flaky").length, 1, "not before its time");
  await checkAt(n.next_attempt + 1);
  await seen("/flaky", 2);
  [n] = (await c.get("/api/v1/notifications")).body.notifications.filter((x) => x.channel === id);
  assert.equal(n.attempts, 2);
  assert.equal(n.result, "HTTP 204");
  assert.equal(n.next_attempt, null);
  assert.deepEqual(n.log.map((a) => a.result.split(":")[0]), ["HTTP 500", "HTTP 204"]);
  await c.send("DELETE", `/api/v1/channels/${id}`);
});
