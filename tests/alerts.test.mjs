// Alert rules on charts: who may make and see them, a bad value alerting within seconds of its
// ingest, rules the minutely check judges by scheduled time, and the channels a job or rule names.
// A local HTTP receiver on loopback stands in for the webhooks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startWorker, nowSecs } from "./helpers.mjs";

let c, receiver, base;
const got = []; // { path, body }

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      got.push({ path: req.url, body });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${receiver.address().port}`;
  c = await startWorker({ vars: { PUBLIC_URL: "https://pp.example.com/" } });
});
after(async () => {
  await c.dispose();
  receiver.close();
});

const checkAt = async (at) => (await c.mf.getWorker()).scheduled({ cron: "* * * * *", scheduledTime: new Date(at * 1000) });
const rule = async (id) => (await c.get("/api/v1/alerts")).body.alerts.find((a) => a.id === id);
const hits = (path) => got.filter((g) => g.path === path).map((g) => JSON.parse(g.body));
const pause = (ms) => new Promise((r) => setTimeout(r, ms));
/** Waits until the receiver has seen `n` requests on `path` (deliveries run after the response). */
async function seen(path, n) {
  const deadline = Date.now() + 5000;
  while (hits(path).length < n && Date.now() < deadline) await pause(50);
  return hits(path);
}
/** Waits until a rule reaches `state` (an ingest's look runs after its response). */
async function reaches(id, state) {
  const deadline = Date.now() + 5000;
  let r;
  while ((r = await rule(id)).state !== state && Date.now() < deadline) await pause(50);
  return r;
}
const hook = async (name) => (await c.send("POST", "/api/v1/channels", { type: "webhook", url: `${base}/${name}` })).body.id;

test("only an admin makes or deletes a rule; a read key lists only the rules on its charts", async () => {
  const ingest = await c.newKey("ingest");
  const diskReader = await c.newKey("read", { charts: "disk." });
  const body = { chart: "disk.used", op: ">", value: 90 };
  assert.equal((await c.send("POST", "/api/v1/alerts", body, ingest)).status, 403);
  assert.equal((await c.send("POST", "/api/v1/alerts", body, diskReader)).status, 403);
  const made = await c.send("POST", "/api/v1/alerts", body);
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const other = await c.send("POST", "/api/v1/alerts", { chart: "blog.errors", op: ">", value: 0 });
  assert.equal(other.status, 201);
  const listed = (await c.get("/api/v1/alerts", diskReader)).body.alerts.map((a) => a.chart);
  assert.ok(listed.includes("disk.used"));
  assert.ok(!listed.includes("blog.errors"), "a key limited to disk. sees no other chart's rules");
  assert.equal((await c.get("/api/v1/alerts?chart=blog.errors", diskReader)).status, 403);
  assert.deepEqual(
    (await c.get("/api/v1/alerts?chart=disk.used")).body.alerts.map((a) => a.id),
    [made.body.id],
  );
  assert.equal((await c.get("/api/v1/alerts", ingest)).status, 403, "listing rules takes the read scope");
  assert.equal((await c.send("DELETE", `/api/v1/alerts/${made.body.id}`, undefined, diskReader)).status, 403);
  for (const id of [made.body.id, other.body.id]) assert.equal((await c.send("DELETE", `/api/v1/alerts/${id}`)).status, 200);
  assert.equal((await c.send("DELETE", `/api/v1/alerts/${made.body.id}`)).status, 404);
});

test("a bad rule is a 400 that says what is wrong, and nothing is stored", async () => {
  const before = (await c.get("/api/v1/alerts")).body.alerts.length;
  for (const [body, code] of [
    [{ chart: "x", op: "=<", value: 1 }, "invalid_body"],
    [{ chart: "x", op: "<" }, "missing_field"],
    [{ chart: "x", absent: "2h", op: "<", value: 1 }, "invalid_body"],
    [{ chart: "x", op: "<", value: 1, window: "10s" }, "invalid_body"],
    [{ chart: "x", op: "<", value: 1, agg: "median" }, "invalid_agg"],
    [{ chart: "x", absent: "1h", channels: ["nope"] }, "invalid_body"],
    [{ chart: "x", absent: "1h", treshold: 3 }, "unknown_field"],
  ]) {
    const r = await c.send("POST", "/api/v1/alerts", body);
    assert.equal(r.status, 400, JSON.stringify(body));
    assert.equal(r.body.error.code, code, JSON.stringify(r.body));
  }
  assert.equal((await c.get("/api/v1/alerts")).body.alerts.length, before);
});

test("a window longer than the chart keeps, or an absence longer than the retention, is refused", async () => {
  // 1,000 buckets of a minute: under 17 hours.
  const day = await c.send("POST", "/api/v1/alerts", { chart: "big", agg: "sum", window: "1d", op: ">", value: 1 });
  assert.equal(day.status, 400);
  assert.match(day.body.error.message, /1000 minutes of points this chart keeps/);
  assert.equal((await c.send("POST", "/api/v1/alerts", { chart: "big", window: "1d", op: ">", value: 1 })).status, 201, "last reads only the newest bucket");
  const week = await c.send("POST", "/api/v1/alerts", { chart: "big", absent: "8d" });
  assert.equal(week.status, 400);
  assert.match(week.body.error.message, /retention/);
});

test("a rule naming labels that none of its chart's series has is refused", async () => {
  await c.ingest({ chart: "hosts.load", value: 1, labels: { host: "a" } });
  const r = await c.send("POST", "/api/v1/alerts", { chart: "hosts.load", labels: { host: "typo" }, op: ">", value: 5 });
  assert.equal(r.status, 404);
  assert.equal(r.body.error.code, "series_not_found");
});

test("a rule on a chart with several series must name one; the only series is taken without labels", async () => {
  await c.ingest([{ chart: "temp", value: 20, labels: { room: "a" } }, { chart: "temp", value: 21, labels: { room: "b" } }]);
  const r = await c.send("POST", "/api/v1/alerts", { chart: "temp", op: ">", value: 30 });
  assert.equal(r.status, 400);
  assert.equal(r.body.error.code, "labels_required");
  await c.ingest({ chart: "solo", value: 1, labels: { host: "x" } });
  const solo = await c.send("POST", "/api/v1/alerts", { chart: "solo", op: ">", value: 30 });
  assert.equal(solo.status, 201);
  assert.deepEqual(solo.body.labels, { host: "x" });
  await c.send("DELETE", `/api/v1/alerts/${solo.body.id}`);
});

test("a last rule fires within seconds of a bad value and notifies once; a good value clears it", async () => {
  const ch = await hook("disk-hook");
  const made = await c.send("POST", "/api/v1/alerts", {
    chart: "disk.free", labels: { host: "a" }, agg: "last", window: "15m", op: "<", value: 10, name: "disk almost full",
  });
  assert.equal(made.status, 201);
  assert.equal(made.body.state, "ok");
  const id = made.body.id;
  const point = (value) => c.ingest({ chart: "disk.free", value, labels: { host: "a" } });
  assert.equal((await point(50)).status, 200);
  await point(7.5);
  const firing = await reaches(id, "firing");
  assert.equal(firing.last_value, 7.5);
  const [event] = await seen("/disk-hook", 1);
  assert.deepEqual([event.kind, event.name, event.from, event.to, event.value], ["alert", "disk almost full", "ok", "firing", 7.5]);
  assert.equal(event.url, "https://pp.example.com/#/chart/disk.free?labels=%7B%22host%22%3A%22a%22%7D");
  assert.equal(event.image, "https://pp.example.com/img/disk.free.svg?labels=%7B%22host%22%3A%22a%22%7D");
  assert.match(event.detail, /last over 15m < 10/);
  // Still below: no second message.
  await point(8);
  await pause(500);
  assert.equal(hits("/disk-hook").length, 1);
  await point(40);
  const ok = await reaches(id, "ok");
  const events = await seen("/disk-hook", 2);
  assert.equal(events.length, 2);
  assert.deepEqual([events[1].from, events[1].to, events[1].value], ["firing", "ok", 40]);
  assert.deepEqual(ok.history.map((h) => h.to), ["firing", "ok"]);
  // Another series of the chart is not this rule's business.
  await c.ingest({ chart: "disk.free", value: 1, labels: { host: "b" } });
  await pause(500);
  assert.equal((await rule(id)).state, "ok");
  await c.send("DELETE", `/api/v1/alerts/${id}`);
  await c.send("DELETE", `/api/v1/channels/${ch}`);
});

test("an absence rule fires by scheduled time when no point comes, and the next point clears it", async () => {
  const ch = await hook("orders-hook");
  const t = nowSecs();
  await c.ingest({ chart: "orders", value: 1, ts: t });
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "orders", absent: "2h" })).body.id;
  await checkAt(t + 3600);
  assert.equal((await rule(id)).state, "ok");
  await checkAt(t + 7200 + 60);
  const r = await rule(id);
  assert.equal(r.state, "firing");
  const [event] = await seen("/orders-hook", 1);
  assert.equal(event.name, "orders no point for 2h");
  assert.match(event.detail, /last point 121 minutes ago \(rule: no point for 2h\)/);
  // The minutely check does not repeat it.
  await checkAt(t + 7200 + 120);
  await checkAt(t + 9000);
  await pause(300);
  assert.equal(hits("/orders-hook").length, 1);
  await c.ingest({ chart: "orders", value: 1 });
  assert.equal((await reaches(id, "ok")).state, "ok");
  assert.equal((await seen("/orders-hook", 2)).length, 2);
  await c.send("DELETE", `/api/v1/alerts/${id}`);
  await c.send("DELETE", `/api/v1/channels/${ch}`);
});

test("an aggregate rule is judged over its window by the minutely check, and clears when its points leave it", async () => {
  const t = nowSecs();
  await c.ingest([150, 250, 200].map((value, i) => ({ chart: "latency", value, ts: t - 300 + i * 60 })));
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "latency", agg: "avg", window: "10m", op: ">", value: 100 })).body.id;
  assert.equal((await rule(id)).state, "ok", "not judged before its first look");
  await checkAt(t + 60);
  const r = await rule(id);
  assert.equal(r.state, "firing");
  assert.equal(r.last_value, 200);
  // While its window holds points it is looked at every bucket (a minute), not on every ingest.
  assert.equal(r.next_check, t + 120, JSON.stringify(r));
  await checkAt(t + 1200);
  const later = await rule(id);
  assert.equal(later.state, "ok");
  assert.equal(later.last_value, null);
  await c.send("DELETE", `/api/v1/alerts/${id}`);
});

test("an aggregate rule put off for want of points wakes up when a point arrives", async () => {
  const t = nowSecs();
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "queue.depth", agg: "max", window: "15m", op: ">", value: 10000 })).body.id;
  await checkAt(t + 60);
  const idle = await rule(id);
  assert.equal(idle.state, "ok");
  assert.ok(idle.next_check >= t + 3600, "an empty window waits for a point, not the clock");
  await c.ingest({ chart: "queue.depth", value: 12000 });
  const deadline = Date.now() + 5000;
  while ((await rule(id)).next_check > nowSecs() + 60 && Date.now() < deadline) await pause(50);
  await checkAt(nowSecs() + 60);
  const woken = await rule(id);
  assert.equal(woken.state, "firing");
  assert.equal(woken.last_value, 12000);
  await c.send("DELETE", `/api/v1/alerts/${id}`);
});

test("a point stamped a little ahead of the clock fires its rule", async () => {
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "ahead", op: "<", value: 10 })).body.id;
  assert.equal((await c.ingest({ chart: "ahead", value: 5, ts: nowSecs() + 150 })).status, 200);
  assert.equal((await reaches(id, "firing")).last_value, 5);
  await checkAt(nowSecs() + 60);
  assert.equal((await rule(id)).state, "firing", "the minutely check agrees");
  await c.send("DELETE", `/api/v1/alerts/${id}`);
});

test("deleting a chart deletes its rules", async () => {
  await c.ingest({ chart: "gone.soon", value: 1 });
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "gone.soon", absent: "1h" })).body.id;
  assert.equal((await c.send("DELETE", "/api/v1/charts/gone.soon")).status, 200);
  assert.equal(await rule(id), undefined);
});

test("a rule that flaps is told ten times an hour, then the state it ends in once the hour has room; a job's failure gets through meanwhile", async () => {
  const ch = await hook("flap-hook");
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "flappy", window: "2h", op: "<", value: 10, name: "flappy" })).body.id;
  for (let i = 0; i < 11; i++) {
    await c.ingest({ chart: "flappy", value: i % 2 === 0 ? 5 : 50 });
    await reaches(id, i % 2 === 0 ? "firing" : "ok");
  }
  const r = await rule(id);
  assert.equal(r.history.length, 11, "every change is in the rule's history");
  assert.ok(r.next_check <= nowSecs() + 3600, "it comes back when the hour has room");
  await seen("/flap-hook", 10);
  await pause(300);
  const told = () => hits("/flap-hook").filter((e) => e.kind === "alert");
  assert.equal(told().length, 10);
  assert.deepEqual([told()[9].from, told()[9].to], ["firing", "ok"]);
  await c.fetch("/ping/after.flap/1", { method: "POST", headers: { "X-API-Key": "test-admin-token-0123456789" } });
  const [failed] = (await seen("/flap-hook", 11)).filter((e) => e.kind === "job");
  assert.equal(failed?.to, "failed", "one flapping rule does not use up what a job needs");
  // An hour on, the rule is still firing: that is told, once.
  await checkAt(nowSecs() + 3700);
  await seen("/flap-hook", 12);
  await checkAt(nowSecs() + 3800);
  await pause(300);
  assert.equal(told().length, 11);
  assert.deepEqual([told()[10].from, told()[10].to], ["ok", "firing"]);
  await c.send("DELETE", `/api/v1/alerts/${id}`);
  await c.send("DELETE", `/api/v1/channels/${ch}`);
});

test("a job or a rule that names its own channels notifies only those", async () => {
  const a = await hook("only-a");
  const b = await hook("only-b");
  const job = await c.send("PUT", "/api/v1/jobs/named.job", { channels: [a] });
  assert.equal(job.status, 200, JSON.stringify(job.body));
  assert.deepEqual(job.body.channels, [a]);
  assert.equal((await c.send("PUT", "/api/v1/jobs/named.job", { channels: ["missing"] })).status, 400);
  await c.fetch("/ping/named.job/1", { method: "POST", headers: { "X-API-Key": "test-admin-token-0123456789" } });
  await seen("/only-a", 1);
  const made = await c.send("POST", "/api/v1/alerts", { chart: "named.metric", op: ">", value: 5, channels: [b] });
  assert.deepEqual(made.body.channels, [b]);
  await c.ingest({ chart: "named.metric", value: 9 });
  await seen("/only-b", 1);
  await pause(500);
  assert.equal(hits("/only-a").length, 1, "the job told only a");
  assert.equal(hits("/only-a")[0].kind, "job");
  assert.equal(hits("/only-b").length, 1, "the rule told only b");
  assert.equal(hits("/only-b")[0].kind, "alert");
  // Deleting the only channel a job names leaves it telling every channel, not nobody.
  const c2 = await hook("only-c");
  await c.send("DELETE", `/api/v1/channels/${a}`);
  await c.fetch("/ping/named.job", { method: "POST", headers: { "X-API-Key": "test-admin-token-0123456789" } });
  assert.equal((await seen("/only-c", 1)).length, 1);
  // Only an admin changes whom a job tells; null is every channel again.
  const ingest = await c.newKey("ingest");
  assert.equal((await c.send("PUT", "/api/v1/jobs/named.job", { channels: null }, ingest)).status, 403);
  assert.equal((await c.send("PUT", "/api/v1/jobs/named.job", { grace: "2h" }, ingest)).status, 200);
  assert.equal((await c.send("PUT", "/api/v1/jobs/named.job", { channels: null })).body.channels, null);
  await c.send("DELETE", `/api/v1/channels/${c2}`);
  await c.send("DELETE", `/api/v1/alerts/${made.body.id}`);
  await c.send("DELETE", `/api/v1/channels/${b}`);
});

test("a job's duration chart can carry a rule like any chart", async () => {
  const ch = await hook("slow-hook");
  const id = (await c.send("POST", "/api/v1/alerts", { chart: "slowjob.duration", op: ">", value: 0, name: "slow job" })).body.id;
  const key = { "X-API-Key": "test-admin-token-0123456789" };
  await c.fetch("/ping/slowjob/start", { method: "POST", headers: key });
  await pause(1100);
  await c.fetch("/ping/slowjob", { method: "POST", headers: key });
  const [event] = await seen("/slow-hook", 1);
  assert.equal(event.name, "slow job");
  assert.ok(event.value >= 1, JSON.stringify(event));
  await c.send("DELETE", `/api/v1/alerts/${id}`);
  await c.send("DELETE", `/api/v1/channels/${ch}`);
});

test("a job that goes down in the scheduled run links PUBLIC_URL", async () => {
  const ch = await hook("down-hook");
  await c.send("PUT", "/api/v1/jobs/linked", { period: "60s", grace: "60s" });
  await c.fetch("/ping/linked", { method: "POST", headers: { "X-API-Key": "test-admin-token-0123456789" } });
  const t = (await c.get("/api/v1/jobs/linked")).body.last_ping;
  for (const at of [t + 90, t + 400]) await checkAt(at);
  const [event] = await seen("/down-hook", 1);
  assert.equal(event.to, "down");
  assert.equal(event.url, "https://pp.example.com/#/jobs/linked");
  await c.send("DELETE", `/api/v1/channels/${ch}`);
});

test("past 60 notifications a minute the rest wait, logged as delayed, and go out with the minutely run", async () => {
  const ch = await hook("mass-hook");
  const key = { "X-API-Key": "test-admin-token-0123456789" };
  for (let i = 0; i < 70; i++) await c.fetch(`/ping/mass.${i}/1`, { method: "POST", headers: key });
  const mine = async () => (await c.get("/api/v1/notifications")).body.notifications.filter((n) => n.channel === ch);
  const rows = await mine();
  assert.equal(rows.length, 70, "every failure is queued: none is dropped");
  const delayed = rows.filter((n) => /^delayed: over 60 notifications a minute/.test(n.result));
  assert.ok(delayed.length >= 10, `${delayed.length} delayed`);
  await checkAt(nowSecs() + 120);
  const sent = (await mine()).filter((n) => delayed.some((d) => d.id === n.id) && n.attempts > 0);
  assert.ok(sent.length > 0, "the minutely run sends what waited");
  await c.send("DELETE", `/api/v1/channels/${ch}`);
});
