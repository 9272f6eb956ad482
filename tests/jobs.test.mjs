// Jobs: pings from cron jobs and scripts, schedules, status judged by scheduled time, runs, and the
// charts every finished run writes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, ADMIN } from "./helpers.mjs";

let c;
before(async () => {
  c = await startWorker();
});
after(() => c.dispose());

const ping = (path, { key = ADMIN, body, json = false, method = "POST" } = {}) =>
  c.fetch(path, { method, headers: { "X-API-Key": key, ...(json ? { Accept: "application/json" } : {}) }, body });
const job = async (name) => (await c.get(`/api/v1/jobs/${encodeURIComponent(name)}`)).body;
/** Runs the minutely check as if it were `at` (unix seconds). */
const checkAt = async (at) => (await c.mf.getWorker()).scheduled({ cron: "* * * * *", scheduledTime: new Date(at * 1000) });

test("the first ping creates the job and answers OK, or JSON when asked", async () => {
  const r = await ping("/ping/first");
  assert.equal(r.status, 200);
  assert.equal(r.body, "OK\n");
  assert.match(r.headers.get("Content-Type"), /^text\/plain/);
  const j = await ping("/api/v1/ping/first", { json: true });
  assert.deepEqual(j.body, { ok: true, status: "up" });
  const got = await job("first");
  assert.equal(got.status, "up");
  assert.deepEqual(got.schedule, { period: 86400, grace: 3600 }, "a new job expects a ping a day, with an hour's grace");
  assert.equal(got.runs.length, 2);
});

test("a run with a start has a duration, and every run is charted", async () => {
  assert.equal((await ping("/ping/backup/start")).status, 200);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await ping("/ping/backup", { body: "copied 1234 files" })).status, 200);
  const j = await job("backup");
  assert.equal(j.runs.length, 1);
  const [run] = j.runs;
  assert.ok(run.duration > 0 && run.duration < 10, `duration ${run.duration}`);
  assert.equal(run.status, "success");
  assert.equal(run.message, "copied 1234 files");
  assert.equal(j.last_duration, run.duration);
  const durations = await c.get("/api/v1/charts/backup.duration?agg=last");
  assert.equal(durations.status, 200);
  assert.equal(durations.body.points.length, 1);
  const codes = await c.get("/api/v1/charts/backup.exit_code?agg=last");
  assert.equal(codes.body.points.at(-1).value, 0);
});

test("a failing exit code or /fail makes the job failed, and the next success brings it back up", async () => {
  assert.equal((await ping("/ping/nightly/3", { body: "disk full" })).status, 200);
  let j = await job("nightly");
  assert.equal(j.status, "failed");
  assert.equal(j.last_exit_code, 3);
  assert.equal(j.runs[0].message, "disk full");
  assert.equal((await c.get("/api/v1/charts/nightly.exit_code?agg=last")).body.points.at(-1).value, 3);
  await ping("/ping/nightly/0");
  assert.equal((await job("nightly")).status, "up");
  await ping("/ping/nightly/fail");
  j = await job("nightly");
  assert.equal(j.status, "failed");
  assert.equal((await c.get("/api/v1/charts/nightly.exit_code?agg=last")).body.points.at(-1).value, 1);
});

test("a run's message keeps the first 10 KB of the body", async () => {
  await ping("/ping/chatty", { body: "x".repeat(50_000) });
  assert.equal((await job("chatty")).runs[0].message.length, 10 * 1024);
});

test("?rid= pairs each finish with its own start when runs overlap", async () => {
  await ping("/ping/overlap/start?rid=a");
  await new Promise((r) => setTimeout(r, 30));
  await ping("/ping/overlap/start?rid=b");
  await ping("/ping/overlap?rid=a");
  await ping("/ping/overlap?rid=b");
  const runs = (await job("overlap")).runs;
  assert.equal(runs.length, 2);
  const [b, a] = runs;
  assert.ok(a.started < b.started, "each run kept its own start");
  assert.ok(a.duration > b.duration);
});

test("bad pings are 400 with the usual error body", async () => {
  const code = await ping("/ping/x/256");
  assert.equal(code.status, 400);
  assert.ok(code.body.error.code);
  assert.equal((await ping("/ping/x?rid=" + "r".repeat(65))).status, 400);
  assert.equal((await c.fetch("/ping/x", { method: "PUT", headers: { "X-API-Key": ADMIN } })).status, 405);
});

test("a job with period 60 s and grace 60 s goes late, then down by scheduled time, then up on its next ping", async () => {
  const put = await c.send("PUT", "/api/v1/jobs/minutely", { period: "60s", grace: "60s" });
  assert.equal(put.status, 200);
  assert.equal(put.body.status, "new");
  await ping("/ping/minutely");
  const pinged = (await job("minutely")).last_ping;
  assert.equal((await job("minutely")).status, "up");
  await checkAt(pinged + 30);
  assert.equal((await job("minutely")).status, "up");
  await checkAt(pinged + 90);
  assert.equal((await job("minutely")).status, "late");
  await checkAt(pinged + 150);
  assert.equal((await job("minutely")).status, "down");
  await ping("/ping/minutely");
  assert.equal((await job("minutely")).status, "up");
});

test("a paused job stays paused through the checks", async () => {
  await c.send("PUT", "/api/v1/jobs/holiday", { period: "60s", grace: "60s", paused: true });
  const created = (await job("holiday")).created_at;
  await checkAt(created + 3600);
  const j = await job("holiday");
  assert.equal(j.status, "paused");
  assert.equal(j.paused, true);
});

test("a cron job in Europe/Berlin is due at the next 03:00 Berlin time, as the runtime's time zones say", async () => {
  const r = await c.send("PUT", "/api/v1/jobs/berlin", { cron: "0 3 * * *", tz: "Europe/Berlin", grace: "30m" });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.schedule, { cron: "0 3 * * *", tz: "Europe/Berlin", grace: 1800 });
  await ping("/ping/berlin");
  const j = await job("berlin");
  const berlin = new Intl.DateTimeFormat("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  assert.equal(berlin.format(new Date(j.next_due * 1000)), "03:00");
  assert.ok(j.next_due > j.last_ping && j.next_due <= j.last_ping + 25 * 3600);
  const bad = await c.send("PUT", "/api/v1/jobs/berlin", { tz: "Mars/Olympus" });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /time zone/);
});

/** The last Sunday of a month (0-based) of a year, as a day of the month. */
function lastSunday(y, m) {
  const end = new Date(Date.UTC(y, m + 1, 0));
  return end.getUTCDate() - end.getUTCDay();
}

/**
 * Berlin wall time to UTC seconds by the EU rule itself (summer time from 01:00 UTC on the last
 * Sunday of March to 01:00 UTC on the last Sunday of October), independent of any tz database:
 * a time the spring change skips runs right after the gap, a repeated one at its first instant.
 */
function berlinToUtc(y, m, d, h, min) {
  const start = Date.UTC(y, 2, lastSunday(y, 2), 1) / 1000;
  const end = Date.UTC(y, 9, lastSunday(y, 9), 1) / 1000;
  const wall = Date.UTC(y, m, d, h, min) / 1000;
  const summer = wall - 7200;
  const winter = wall - 3600;
  if (summer >= start && summer < end) return summer;
  if (!(winter >= start && winter < end)) return winter;
  return start;
}

test("a cron job in Europe/Berlin is due at the right UTC instants across the March and October changes", async () => {
  const now = Date.now() / 1000;
  const y0 = new Date().getUTCFullYear();
  // The next change days: this year's if still ahead, else next year's.
  const changeDay = (m) => {
    const ahead = berlinToUtc(y0, m, lastSunday(y0, m), 0, 0) > now + 86400;
    return ahead ? lastSunday(y0, m) : lastSunday(y0 + 1, m);
  };
  const march = changeDay(2);
  const october = changeDay(9);
  const cases = [
    [`30 2 ${march} 3 *`, 2, march, 2, 30], // skipped by the spring change: runs right after the gap
    [`0 3 ${march} 3 *`, 2, march, 3, 0],
    [`0 1 ${march} 3 *`, 2, march, 1, 0],
    [`30 2 ${october} 10 *`, 9, october, 2, 30], // repeated in autumn: runs once, at the first
    [`0 4 ${october} 10 *`, 9, october, 4, 0],
  ];
  for (const [cron, m, d, h, min] of cases) {
    const name = `dst.${cron.replace(/[^0-9]+/g, "-")}`;
    const r = await c.send("PUT", `/api/v1/jobs/${name}`, { cron, tz: "Europe/Berlin" });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const expected = [y0, y0 + 1, y0 + 2].map((y) => berlinToUtc(y, m, d, h, min)).find((t) => t > now);
    assert.equal(r.body.next_due, expected, `${cron}: ${new Date(r.body.next_due * 1000).toISOString()} vs ${new Date(expected * 1000).toISOString()}`);
    await c.send("DELETE", `/api/v1/jobs/${name}`);
  }
});

test("a key limited to shop. can ping shop.backup and not blog.backup; ping URLs take ingest keys", async () => {
  const shop = await c.newKey("ingest", { charts: "shop." });
  assert.equal((await ping("/ping/shop.backup", { key: shop })).status, 200);
  assert.equal((await ping("/ping/blog.backup", { key: shop })).status, 403);
  assert.equal((await c.fetch(`/ping/shop.backup?key=${shop}`)).status, 200, "the key in a crontab URL");
  assert.equal((await c.fetch(`/ping/shop.backup?key=${ADMIN}`)).status, 401, "never the admin token in a URL");
  const adminKey = await c.newKey("admin");
  const inUrl = await c.fetch(`/ping/shop.backup?key=${adminKey}`);
  assert.equal(inUrl.status, 403, "nor an admin key");
  assert.equal(inUrl.body.error.code, "url_key_not_allowed");
  assert.equal((await ping("/ping/shop.backup", { key: adminKey })).status, 200, "in a header it pings");
  const oneChart = await c.newKey("ingest", { chart: "solo" });
  const solo = await ping("/ping/solo", { key: oneChart });
  assert.equal(solo.status, 403, "its runs would be charted as solo.duration and solo.exit_code, outside the key");
  const read = await c.newKey("read");
  assert.equal((await ping("/ping/shop.backup", { key: read })).status, 403);
  assert.equal((await c.get(`/api/v1/jobs?key=${shop}`, null)).status, 403, "an ingest key in a URL does not read");
  const shopRead = await c.newKey("read", { charts: "shop." });
  const listed = (await c.get("/api/v1/jobs", shopRead)).body.jobs.map((j) => j.job);
  assert.deepEqual(listed, ["shop.backup"]);
  assert.equal((await c.get("/api/v1/jobs/blog.backup", shopRead)).status, 403);
  assert.equal((await c.send("PUT", "/api/v1/jobs/blog.x", { period: "1h" }, shop)).status, 403);
});

test("the job list shows each job's status, schedule and last run; only an admin deletes a job", async () => {
  const list = (await c.get("/api/v1/jobs")).body.jobs;
  const backup = list.find((j) => j.job === "backup");
  assert.equal(backup.status, "up");
  assert.ok(backup.next_due > backup.last_ping);
  assert.equal(backup.last_exit_code, null, "a success ping reports no exit code");
  const ingest = await c.newKey("ingest");
  assert.equal((await c.send("DELETE", "/api/v1/jobs/backup", undefined, ingest)).status, 403);
  assert.equal((await c.send("DELETE", "/api/v1/jobs/backup")).status, 200);
  assert.equal((await c.get("/api/v1/jobs/backup")).status, 404);
  assert.equal((await c.get("/api/v1/charts/backup.duration")).status, 200, "its charts stay");
});

test("pings racing for one job record every run exactly once", async () => {
  await ping("/ping/race");
  const answers = await Promise.all(Array.from({ length: 12 }, () => ping("/ping/race")));
  const ok = answers.filter((a) => a.status === 200).length;
  for (const a of answers) assert.ok([200, 503].includes(a.status), `${a.status} ${JSON.stringify(a.body)}`);
  const runs = (await job("race")).runs.length;
  assert.equal(runs, 1 + ok, "one run per ping that was answered OK, no more");
});

test("a ping into an existing job costs a small, fixed number of rows", async () => {
  await ping("/ping/costly");
  const first = (await ping("/ping/costly")).cost;
  for (let i = 0; i < 5; i++) await ping("/ping/costly");
  const later = (await ping("/ping/costly")).cost;
  assert.deepEqual(later, first, "the same with 2 and with 8 runs stored");
  console.log(`ping Server-Timing rows: ${JSON.stringify(first)}`);
});

test("a job shows its newest 100 runs, newest first, and a run writes only the job's row besides its chart", async () => {
  for (let i = 0; i < 125; i++) assert.equal((await ping("/ping/hundred", { body: `run ${i}` })).status, 200);
  const runs = (await job("hundred")).runs;
  assert.equal(runs.length, 100);
  assert.deepEqual(
    runs.map((r) => r.message),
    Array.from({ length: 100 }, (_, i) => `run ${124 - i}`),
  );
  // Ten runs a row in the job's row, then in blocks of ten, of which the newest ten are kept.
  const blocks = async () => (await c.db.prepare("SELECT COUNT(*) AS n FROM run_blocks WHERE job = 'hundred'").first()).n;
  assert.equal(await blocks(), 10);
  // The job's row and the exit code's point; one run in ten also files the job's ten newest.
  const written = [];
  for (let i = 0; i < 10; i++) written.push((await ping("/ping/hundred", { body: `more ${i}` })).cost.written);
  assert.deepEqual(written.sort(), [2, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
  assert.equal(await blocks(), 10);
  assert.equal((await job("hundred")).runs[0].message, "more 9");
  assert.equal((await c.send("DELETE", "/api/v1/jobs/hundred")).status, 200);
  assert.equal(await blocks(), 0, "a deleted job's runs go with it");
});
