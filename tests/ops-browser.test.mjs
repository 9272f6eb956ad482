// The dashboard's Jobs, Alerts and Channels views, and the alert thresholds on a chart, in headless
// Chromium against a real `wrangler dev` (as browser.test.mjs runs it). A local HTTP receiver on
// 127.0.0.1 stands in for the webhooks. Every page is checked for console errors,
// Content-Security-Policy violations and requests that leave 127.0.0.1. Screenshots go to
// tests/screenshots/ (gitignored) for a person to look at.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { launchChromium, openPage, clean } from "./pages.mjs";
import { startWranglerDev, httpApi } from "./helpers.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shots = path.join(root, "tests/screenshots");
const token = "ops-browser-admin-token";
const T = { timeout: 120_000 };
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
let dev, base, browser, receiver, hooks;
const rules = {}; // name -> the rule as POST answered it
const down = new Set(); // receiver paths that answer 500

let call, newKey; // httpApi (helpers.mjs), once the server's address is known

const ping = async (p, body) => {
  const r = await call("POST", p, body);
  assert.equal(r.status, 200, `${p}: ${JSON.stringify(r.body)}`);
};

const now = Math.floor(Date.now() / 1000);
// A message with markup and line breaks: it must show as the text it is.
const MESSAGE = "copied 1234 files\n<b>not bold</b> <img src=x onerror=alert(1)>\n  indented line";

before(async () => {
  mkdirSync(shots, { recursive: true });
  receiver = http
    .createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (down.has(req.url)) res.writeHead(500).end("receiver is down");
        else res.writeHead(204).end();
      });
    })
    .listen(0, "127.0.0.1");
  await new Promise((r) => receiver.once("listening", r));
  hooks = `http://127.0.0.1:${receiver.address().port}`;
  dev = await startWranglerDev({ adminToken: token, name: "ops-browser" });
  base = dev.base;
  ({ call, newKey } = httpApi(base, token, "ops browser test"));

  // backup: a timed run with a message, and a day of earlier durations in its chart.
  await ping("/ping/backup/start");
  await new Promise((r) => setTimeout(r, 300));
  await ping("/ping/backup/0", MESSAGE);
  const history = Array.from({ length: 20 }, (_, i) => ({ chart: "backup.duration", value: 40 + 15 * Math.sin(i / 3) + i, ts: now - (i + 1) * 3600 }));
  assert.equal((await call("POST", "/api/v1/ingest", history)).status, 200);
  // nightly: failed with exit code 3; no timed run.
  await ping("/ping/nightly/3", "tar: disk full");
  // berlin: a cron schedule, never pinged.
  assert.equal((await call("PUT", "/api/v1/jobs/berlin", { cron: "0 3 * * *", tz: "Europe/Berlin", grace: "30m" })).status, 200);
  // holiday: paused.
  assert.equal((await call("PUT", "/api/v1/jobs/holiday", { period: "1h", grace: "5m", paused: true })).status, 200);
  // a name with a slash and a space, running.
  await ping(`/ping/${encodeURIComponent("shop/export all")}/start`);

  // Alert rules on disk.free (two series) and an absence rule on orders.
  const disk = [];
  for (let i = 1; i <= 30; i++) {
    disk.push({ chart: "disk.free", labels: { host: "a" }, value: 50 + 8 * Math.sin(i / 4), ts: now - i * 60 });
    disk.push({ chart: "disk.free", labels: { host: "b" }, value: 70 + 5 * Math.cos(i / 5), ts: now - i * 60 });
  }
  assert.equal((await call("POST", "/api/v1/ingest", disk)).status, 200);
  for (const rule of [
    { chart: "disk.free", labels: { host: "a" }, agg: "last", window: "15m", op: "<", value: 10, name: "disk almost full" },
    { chart: "disk.free", labels: { host: "a" }, agg: "max", window: "1h", op: ">", value: 95, name: "disk suspiciously empty" },
    { chart: "disk.free", labels: { host: "b" }, agg: "last", window: "15m", op: "<", value: 20, name: "b low" },
    { chart: "orders", absent: "2h" },
  ]) {
    const r = await call("POST", "/api/v1/alerts", rule);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    rules[rule.name || "orders"] = r.body;
  }
  // A bad value fires the first rule; an old point fires the absence rule (both judged after the ingest).
  assert.equal((await call("POST", "/api/v1/ingest", { chart: "disk.free", labels: { host: "a" }, value: 5 })).status, 200);
  assert.equal((await call("POST", "/api/v1/ingest", { chart: "orders", value: 3, ts: now - 3 * 3600 })).status, 200);
  for (let i = 0; ; i++) {
    const firing = (await call("GET", "/api/v1/alerts")).body.alerts.filter((a) => a.state === "firing").map((a) => a.id);
    if (firing.includes(rules["disk almost full"].id) && firing.includes(rules.orders.id)) break;
    assert.ok(i < 100, `the rules did not fire: ${JSON.stringify(firing)}`);
    await new Promise((r) => setTimeout(r, 100));
  }

  browser = await launchChromium();
});

after(async () => {
  try {
    await browser?.close();
  } catch {}
  try {
    receiver?.close();
  } catch {}
  dev?.stop();
});

/** A page (see pages.mjs) with the admin token unless told otherwise; a dialog is an error. */
async function open({ key = token, ...opts } = {}) {
  const page = await openPage(browser, { key, keepKey: true, dark: false, ...opts });
  page.on("dialog", (d) => page.errors.push(`unexpected dialog: ${d.message()}`) && d.dismiss());
  return page;
}

const shot = (page, name, fullPage = false) => page.screenshot({ path: path.join(shots, name), fullPage });
const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
const api = (page, re) => page.requests.filter((u) => re.test(new URL(u).pathname + new URL(u).search));
const texts = (page, sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()));

test("the Jobs view lists every job with its status, last run, next due time and a duration sparkline, from one jobs and one chart-list request", T, async () => {
  const jobs = (await call("GET", "/api/v1/jobs")).body.jobs;
  const sparks = (await call("GET", "/api/v1/charts?spark=48")).body.charts;
  const page = await open();
  await page.goto(base + "/#/jobs");
  await page.waitForSelector("#jobs-rows .tr");
  const rows = await page.$$eval("#jobs-rows .tr", (els) =>
    els.map((a) => ({
      href: a.getAttribute("href"),
      name: a.querySelector(".name").textContent,
      pill: a.querySelector(".pill").textContent,
      pillClass: a.querySelector(".pill").className,
      last: a.querySelector(".last").textContent,
      due: a.querySelector(".due").textContent,
      spark: (a.querySelector(".spark .line").getAttribute("points") || "").trim().split(/\s+/).filter(Boolean).length,
      sparkShown: !a.querySelector(".spark").hasAttribute("hidden"),
      dur: a.querySelector(".dur-last").textContent,
    })),
  );
  assert.deepEqual(
    rows.map((r) => r.name),
    jobs.map((j) => j.job).sort((a, b) => a.localeCompare(b)),
  );
  const row = (name) => rows.find((r) => r.name === name);
  for (const j of jobs) {
    assert.equal(row(j.job).pill, j.status, `the pill of ${j.job}`);
    assert.equal(row(j.job).pillClass, `pill s-${j.status}`);
    assert.equal(row(j.job).href, `#/jobs/${encodeURIComponent(j.job)}`);
  }
  assert.deepEqual(
    ["backup", "nightly", "berlin", "holiday", "shop/export all"].map((n) => row(n).pill),
    ["up", "failed", "new", "paused", "running"],
  );
  assert.equal(row("backup").last, "just now");
  assert.equal(row("berlin").last, "never");
  assert.match(row("backup").due, /^in (23|24) h$/);
  assert.match(row("berlin").due, /^in \d+ (min|h)$/);
  assert.equal(row("holiday").due, "paused");
  // The sparkline holds the newest 48 buckets of backup.duration, as the chart list says.
  const backupSpark = sparks.find((s) => s.chart === "backup.duration").spark;
  assert.equal(backupSpark.length, 21);
  assert.equal(row("backup").spark, backupSpark.length);
  assert.ok(row("backup").sparkShown);
  assert.match(row("backup").dur, /^0\.\d s$/, "the last run's duration");
  assert.equal(row("nightly").sparkShown, false);
  assert.equal(row("nightly").dur, "no timed runs");
  assert.equal(await page.textContent("#jobs-count"), "5 jobs · 1 failed");
  assert.equal(await page.getAttribute("nav a[aria-current='page']", "href"), "#/jobs");
  // Two requests for the whole list, none per job or per chart.
  assert.equal(api(page, /^\/api\/v1\/jobs$/).length, 1);
  assert.equal(api(page, /^\/api\/v1\/charts\?spark=48$/).length, 1);
  assert.equal(api(page, /^\/api\/v1\/(jobs|charts)\//).length, 0);
  await shot(page, "jobs.png");
  // A refresh draws the list again from the same two requests, and shows a new status.
  await ping("/ping/nightly/0");
  await page.evaluate(() => window.__pushplot.refresh());
  await page.waitForFunction(() => document.querySelector(".tr[data-job='nightly'] .pill").textContent === "up");
  assert.equal(await page.textContent("#jobs-count"), "5 jobs");
  await ping("/ping/nightly/3", "tar: disk full");
  await clean(page);
});

test("a job's page shows its schedule and every run, with the run's message as text, line breaks kept", T, async () => {
  const page = await open();
  await page.goto(base + "/#/jobs");
  await page.click(".tr[data-job='backup']");
  await page.waitForURL(/#\/jobs\/backup$/);
  await page.waitForSelector("#j-runs .run");
  assert.equal(await page.textContent("#j-title"), "backup");
  assert.equal(await page.textContent("#j-status"), "up");
  const facts = Object.fromEntries(await page.$$eval("#j-facts div", (ds) => ds.map((d) => [d.querySelector("dt").textContent, d.querySelector("dd").textContent])));
  assert.equal(facts.Schedule, "every 1 d");
  assert.equal(facts.Grace, "1 h");
  assert.equal(facts["Last ping"], "just now");
  assert.match(facts["Next due"], /^in (23|24) h$/);
  assert.match(facts["Last duration"], /^0\.\d s$/);
  assert.equal(facts.Channels, "all");
  const runs = (await call("GET", "/api/v1/jobs/backup")).body.runs;
  assert.equal(await page.locator("#j-runs .run").count(), runs.length);
  // The message is text: no element made from it, its line breaks and spaces shown.
  assert.equal(await page.textContent("#j-runs .run .msg"), MESSAGE);
  assert.equal(await page.locator("#j-runs b, #j-runs img").count(), 0);
  assert.equal(await page.$eval("#j-runs .msg", (e) => getComputedStyle(e).whiteSpace), "pre-wrap");
  assert.deepEqual(await texts(page, "#j-runs .run .pill"), ["success"]);
  assert.match(await page.textContent("#j-runs .run-head"), /took 0\.\d s.*exit code 0/);
  assert.equal(await page.getAttribute("#j-dur-chart", "href"), "#/chart/backup.duration?range=7d&agg=avg");
  await shot(page, "job.png", true);

  // A cron schedule in its time zone, and a job that never ran.
  await page.goto(base + "/#/jobs/berlin");
  await page.waitForFunction(() => document.getElementById("j-title").textContent === "berlin" && document.querySelector("#j-facts dd"));
  const cron = Object.fromEntries(await page.$$eval("#j-facts div", (ds) => ds.map((d) => [d.querySelector("dt").textContent, d.querySelector("dd").textContent])));
  assert.equal(cron.Schedule, "cron 0 3 * * * (Europe/Berlin)");
  assert.equal(cron.Grace, "30 min");
  assert.equal(cron["Last ping"], "never");
  await page.waitForSelector("#j-noruns:visible");
  assert.ok(await page.locator("#j-dur-chart").isHidden(), "no durations chart for a job without timed runs");

  // A failed run: its exit code and message.
  await page.goto(base + "/#/jobs/nightly");
  await page.waitForSelector("#j-runs .run.bad");
  assert.equal(await page.textContent("#j-runs .run.bad .msg"), "tar: disk full");
  assert.match(await page.textContent("#j-runs .run.bad .run-head"), /failure.*exit code 3/);

  // A name with a slash and a space goes through the URL and back; Back returns to the list.
  await page.goto(base + "/#/jobs");
  await page.click(`.tr[data-job="shop/export all"]`);
  await page.waitForURL(/#\/jobs\/shop%2Fexport%20all$/);
  await page.waitForFunction(() => document.getElementById("j-status").textContent === "running");
  assert.equal(await page.textContent("#j-title"), "shop/export all");
  await page.click("#job .back");
  await page.waitForSelector("#jobs-rows .tr");

  // A job that does not exist says so.
  await page.goto(base + "/#/jobs/no-such-job");
  await page.waitForSelector("#j-error:visible");
  assert.match(await page.textContent("#j-error"), /There is no job named “no-such-job”/);
  await clean(page, [/status of 404/]);
});

test("status pills are readable in light and dark: every status has a contrast of at least 4.5:1", T, async () => {
  const statuses = ["new", "up", "late", "down", "failed", "running", "paused", "ok", "firing", "success", "failure", "delivered", "retrying", "pending", "failing", "unused"];
  for (const dark of [false, true]) {
    const page = await open({ dark });
    await page.goto(base + "/#/jobs");
    await page.waitForSelector("#jobs-rows .tr");
    const ratios = await page.evaluate(async (statuses) => {
      const { pill } = await import("/ops.js");
      const rgb = (c) => c.match(/[\d.]+/g).slice(0, 3).map(Number);
      const lum = (c) => {
        const [r, g, b] = rgb(c).map((v) => {
          v /= 255;
          return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
      };
      const panel = getComputedStyle(document.querySelector(".jobs-table")).backgroundColor;
      const box = document.getElementById("jobs-rows");
      return statuses.map((s) => {
        const p = box.appendChild(pill(s));
        const { color, backgroundColor } = getComputedStyle(p);
        p.remove();
        const bg = backgroundColor === "rgba(0, 0, 0, 0)" ? panel : backgroundColor;
        const [a, b] = [lum(color), lum(bg)].sort((x, y) => y - x);
        return [s, Math.round(((a + 0.05) / (b + 0.05)) * 100) / 100, backgroundColor];
      });
    }, statuses);
    for (const [s, ratio] of ratios) assert.ok(ratio >= 4.5, `${dark ? "dark" : "light"}: the pill "${s}" has a contrast of ${ratio}`);
    // Good, bad and waiting look different from each other.
    const bg = Object.fromEntries(ratios.map(([s, , b]) => [s, b]));
    assert.notEqual(bg.up, bg.failed);
    assert.notEqual(bg.up, bg.late);
    assert.notEqual(bg.failed, bg.late);
    assert.notEqual(bg.running, bg.up);
    await shot(page, `jobs-${dark ? "dark" : "light"}.png`);
    await clean(page);
  }
});

test("the Channels view tests a channel, marks the one whose latest delivery failed, and the header warns on every view until it works again", T, async () => {
  const ok = (await call("POST", "/api/v1/channels", { type: "webhook", url: `${hooks}/ok/secret-token`, name: "ops webhook" })).body;
  const flaky = (await call("POST", "/api/v1/channels", { type: "slack", url: `${hooks}/flaky/T000/B000/secret`, name: "team slack" })).body;
  down.add("/flaky/T000/B000/secret");
  try {
    const page = await open();
    await page.goto(base + "/#/channels");
    await page.waitForSelector(`.channel[data-id="${ok.id}"]`);
    assert.deepEqual(await texts(page, ".channel .name"), ["ops webhook", "team slack"]);
    // The URL only up to its host: the rest is the secret.
    assert.equal(await page.textContent(`.channel[data-id="${flaky.id}"] .url`), `${hooks}/…`);
    assert.ok(!(await page.textContent("#channels-list")).includes("secret"));
    assert.deepEqual(await texts(page, ".channel .pill"), ["unused", "unused"]);
    assert.ok(await page.locator("#failing").isHidden());

    await page.click(`.channel[data-id="${ok.id}"] button.test`);
    await page.waitForSelector(`.channel[data-id="${ok.id}"] .test-result`);
    assert.equal(await page.textContent(`.channel[data-id="${ok.id}"] .test-result`), "Test delivered: HTTP 204");
    await page.click(`.channel[data-id="${flaky.id}"] button.test`);
    await page.waitForSelector(`.channel[data-id="${flaky.id}"] .test-result`);
    assert.equal(await page.textContent(`.channel[data-id="${flaky.id}"] .test-result`), "Test failed: HTTP 500: receiver is down");
    assert.deepEqual(await texts(page, ".channel .pill"), ["ok", "failing"]);
    assert.ok(await page.locator(`.channel.alarm[data-id="${flaky.id}"]`).isVisible());
    assert.match(await page.textContent(`.channel[data-id="${flaky.id}"] .meta`), /latest delivery just now: HTTP 500: receiver is down/);
    assert.equal(await page.textContent("#channels-count"), "2 channels · 1 failing");
    // The header says so, on this view and on every other.
    await page.waitForSelector("#failing:visible");
    assert.equal(await page.textContent("#failing"), "⚠ Channel “team slack” is failing");
    assert.ok(await page.locator("#nav-dot").isVisible());

    // The delivery log: both tests, newest first, with result and attempts.
    const log = await page.$$eval("#log .note", (ls) =>
      ls.map((l) => ({ pill: l.querySelector(".pill").textContent, head: l.querySelector(".note-head").textContent, result: l.querySelector(".note-result").textContent })),
    );
    assert.equal(log.length, 2);
    assert.equal(log[0].pill, "retrying");
    assert.match(log[0].head, /test message.*to team slack/);
    assert.match(log[0].result, /^HTTP 500: receiver is down · 1 attempt · next attempt in (1 min|under a minute)$/);
    assert.equal(log[1].pill, "delivered");
    assert.match(log[1].result, /^HTTP 204 · 1 attempt$/);
    await shot(page, "channels.png", true);

    // A job's state change goes to both channels and shows in the log by name.
    await ping("/ping/backup/2", "exit 2");
    await page.evaluate(() => window.__pushplot.refresh());
    await page.waitForFunction(() => document.querySelectorAll("#log .note").length === 4);
    assert.match(await page.textContent("#log"), /backup: up → failed/);

    for (const hash of ["#/", "#/jobs", "#/jobs/backup"]) {
      await page.goto(base + "/" + hash);
      await page.waitForSelector("#failing:visible");
      assert.equal(await page.getAttribute("#failing", "href"), "#/channels");
    }
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(base + "/#/jobs");
    await page.waitForSelector("#jobs-rows .tr");
    assert.ok(await page.locator("#failing").isVisible(), "the warning shows at phone width");
    assert.equal(await overflow(page), 0);
    await shot(page, "channels-warning-phone.png");
    await page.setViewportSize({ width: 1280, height: 800 });

    // Once the receiver works and a test gets through, the channel and the header are fine again.
    down.delete("/flaky/T000/B000/secret");
    await page.goto(base + "/#/channels");
    await page.click(`.channel[data-id="${flaky.id}"] button.test`);
    await page.waitForFunction((id) => document.querySelector(`.channel[data-id="${id}"] .test-result`).textContent === "Test delivered: HTTP 204", flaky.id);
    await page.waitForSelector("#failing", { state: "hidden" });
    assert.equal(await page.locator(".channel.alarm").count(), 0);
    assert.ok(await page.locator("#nav-dot").isHidden());
    await clean(page, [/status of 502/]);
  } finally {
    for (const c of [ok, flaky]) await call("DELETE", `/api/v1/channels/${c.id}`);
    await ping("/ping/backup/0", MESSAGE);
  }
});

test("a read key sees on Channels that it needs an admin key, and asks for no admin-only route anywhere else", T, async () => {
  const reader = await newKey("read");
  const page = await open({ key: reader });
  for (const [hash, ready] of [["#/", ".card"], ["#/jobs", "#jobs-rows .tr"], ["#/jobs/backup", "#j-runs .run"]]) {
    await page.goto(base + "/" + hash);
    await page.waitForSelector(ready);
  }
  assert.equal(api(page, /^\/api\/v1\/(channels|notifications)/).length, 0, "no admin-only request with a key not known to be an admin's");
  await page.click("nav a[href='#/channels']");
  await page.waitForSelector("#channels-denied:visible");
  assert.match(await page.textContent("#channels-denied"), /Channels need an admin key/);
  assert.match(await page.textContent("#channels-denied-why"), /may not read channels \(403 forbidden: .+\)/);
  assert.equal(await page.locator("#channels-list .channel, #log .note").count(), 0);
  assert.ok(await page.locator("#log-head").isHidden());
  await shot(page, "channels-denied.png");
  // A refresh does not ask again; the header stays quiet.
  const asked = api(page, /^\/api\/v1\/channels/).length;
  await page.evaluate(() => window.__pushplot.refresh());
  await page.goto(base + "/#/jobs");
  await page.waitForSelector("#jobs-rows .tr");
  assert.equal(api(page, /^\/api\/v1\/channels/).length, asked);
  assert.ok(await page.locator("#failing").isHidden());
  await clean(page, [/status of 403/]);
});

test("the Alerts view shows each rule's state, since when, last value, condition in words, chart link and history", T, async () => {
  const page = await open();
  await page.goto(base + "/#/alerts");
  await page.waitForSelector("#alerts-list .rule");
  const cards = await page.$$eval("#alerts-list .rule", (els) =>
    els.map((r) => ({
      id: r.dataset.id,
      alarm: r.classList.contains("alarm"),
      pill: r.querySelector(".rule-head .pill").textContent,
      name: r.querySelector("h3").textContent,
      chips: [...r.querySelectorAll(".rule-head .chip")].map((c) => c.textContent),
      cond: r.querySelector(".cond").textContent,
      href: r.querySelector(".cond a").getAttribute("href"),
      meta: r.querySelector(".meta").textContent,
      summary: r.querySelector("summary").textContent,
    })),
  );
  assert.equal(cards.length, 4);
  // Firing rules first.
  assert.deepEqual(cards.map((c) => c.pill), ["firing", "firing", "ok", "ok"]);
  const card = (id) => cards.find((c) => c.id === id);
  const full = card(rules["disk almost full"].id);
  assert.equal(full.name, "disk almost full");
  assert.ok(full.alarm);
  assert.deepEqual(full.chips, ["host=a"]);
  assert.equal(full.cond, "disk.free: last over 15m < 10");
  assert.equal(full.href, "#/chart/disk.free?range=24h&agg=last&labels=host:a");
  assert.match(full.meta, /^firing since just now · last value 5 · judged just now$/);
  assert.equal(full.summary, "History (1 change)");
  const absent = card(rules.orders.id);
  assert.equal(absent.cond, "orders: no point for 2h");
  assert.equal(absent.name, rules.orders.name);
  assert.equal(absent.href, "#/chart/orders?range=24h&agg=avg");
  const empty = card(rules["disk suspiciously empty"].id);
  assert.equal(empty.cond, "disk.free: max over 1h > 95");
  assert.ok(!empty.alarm);
  assert.equal(empty.summary, "History (no change yet)");
  assert.equal(await page.textContent("#alerts-count"), "4 rules · 2 firing");
  assert.equal(await page.getAttribute("nav a[aria-current='page']", "href"), "#/alerts");

  // The history unfolds: each change with its time, states and value; it stays open on a refresh.
  await page.click(`.rule[data-id="${rules["disk almost full"].id}"] summary`);
  const li = `.rule[data-id="${rules["disk almost full"].id}"] .history li`;
  await page.waitForSelector(li);
  assert.match(await page.textContent(li), /^\w{3}, \w{3} \d+, \d{4}, \d+:\d+ [AP]M ok → firing value 5$/);
  await shot(page, "alerts.png", true);
  await page.evaluate(() => window.__pushplot.refresh());
  await page.waitForFunction(() => document.querySelectorAll("#alerts-list .rule").length === 4);
  assert.ok(await page.locator(li).isVisible(), "the unfolded history stays open");

  // The chart link opens the chart with the rule's series and aggregate.
  await page.click(`.rule[data-id="${rules["disk almost full"].id}"] .cond a`);
  await page.waitForURL(/#\/chart\/disk\.free\?range=24h&agg=last&labels=host:a$/);
  await page.waitForSelector("#plot[data-labels='host:a']");

  // One chart's rules, from the URL.
  await page.goto(base + "/#/alerts?chart=disk.free");
  await page.waitForFunction(() => document.querySelectorAll("#alerts-list .rule").length === 3);
  assert.equal(await page.textContent("#alerts-count"), "3 rules on disk.free · 1 firing");
  assert.ok(await page.locator("#alerts-all").isVisible());
  assert.ok(api(page, /^\/api\/v1\/alerts\?chart=disk\.free$/).length >= 1);
  await clean(page);
});

test("an admin deletes a rule with its Delete button; a read key is told it may not", T, async () => {
  const temp = (await call("POST", "/api/v1/alerts", { chart: "disk.free", labels: { host: "b" }, op: ">", value: 1000, name: "temporary rule" })).body;
  const page = await open();
  page.removeAllListeners("dialog");
  const asked = [];
  page.on("dialog", (d) => asked.push(d.message()) && d.accept());
  await page.goto(base + "/#/alerts");
  await page.waitForSelector(`.rule[data-id="${temp.id}"]`);
  await page.click(`.rule[data-id="${temp.id}"] button.danger`);
  await page.waitForSelector(`.rule[data-id="${temp.id}"]`, { state: "detached" });
  assert.deepEqual(asked, ["Delete the alert rule “temporary rule” on disk.free?"]);
  assert.ok(!(await call("GET", "/api/v1/alerts")).body.alerts.some((a) => a.id === temp.id), "the rule is gone");
  assert.equal(await page.locator("#alerts-list .rule").count(), 4);
  await clean(page);

  const reader = await open({ key: await newKey("read") });
  reader.removeAllListeners("dialog");
  reader.on("dialog", (d) => d.accept());
  await reader.goto(base + "/#/alerts");
  await reader.waitForSelector("#alerts-list .rule");
  await reader.click(`.rule[data-id="${rules["b low"].id}"] button.danger`);
  await reader.waitForSelector("#alerts-error:visible");
  assert.match(await reader.textContent("#alerts-error"), /^Only the admin token or an admin key may delete rules \(403 forbidden: .+\)\.$/);
  assert.equal(await reader.locator("#alerts-list button.danger").count(), 0, "no more Delete buttons for this key");
  assert.ok((await call("GET", "/api/v1/alerts")).body.alerts.some((a) => a.id === rules["b low"].id), "the rule is still there");
  await reader.reload();
  await reader.waitForSelector("#alerts-list .rule");
  assert.equal(await reader.locator("#alerts-list button.danger").count(), 0);
  await clean(reader, [/status of 403/]);
});

/** Pixels of the canvas in a band of rows around y (CSS px) across the plot area, as [r,g,b]. */
const rowPixels = (page, y) =>
  page.evaluate((y) => {
    const c = window.__pushplot.chart;
    const a = c.chartArea;
    const dpr = c.currentDevicePixelRatio;
    const d = c.ctx.getImageData(Math.round(a.left * dpr), Math.round((y - 1.5) * dpr), Math.round((a.right - a.left) * dpr), Math.round(3 * dpr)).data;
    const out = [];
    for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
    return out;
  }, y);
const near = (pixels, hex, tol = 50) => {
  const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return pixels.filter((p) => Math.hypot(p[0] - want[0], p[1] - want[1], p[2] - want[2]) < tol).length;
};

test("the chart draws the thresholds of its alert rules as dashed lines, red while firing and muted otherwise, labelled with their names", T, async () => {
  const page = await open();
  await page.goto(base + "/#/chart/disk.free?range=1h&agg=avg&labels=host:a");
  await page.waitForFunction(() => window.__pushplot.chart && (window.__pushplot.chart.$thresholds || []).length === 2 && window.__pushplot.chart.data.datasets[2].data.length > 20);
  await page.waitForFunction(() => window.__pushplot.chart.$thresholds.every((t) => t.y != null));
  const lines = await page.evaluate(() => {
    const c = window.__pushplot.chart;
    return { lines: c.$thresholds.map(({ name, op, value, firing, y }) => ({ name, op, value, firing, y })), area: c.chartArea, min: c.scales.y.min, max: c.scales.y.max };
  });
  assert.deepEqual(
    lines.lines.map(({ name, op, value, firing }) => ({ name, op, value, firing })),
    [
      { name: "disk almost full", op: "<", value: 10, firing: true },
      { name: "disk suspiciously empty", op: ">", value: 95, firing: false },
    ],
    "the threshold rules of host=a only: not host=b's, not the absence rule",
  );
  // The y axis stretches to hold both lines though the points stay between 5 and 60.
  assert.ok(lines.min <= 10 && lines.max >= 95, `y from ${lines.min} to ${lines.max}`);
  for (const l of lines.lines) assert.ok(l.y > lines.area.top && l.y < lines.area.bottom, `${l.name} is drawn inside the plot`);
  // What is on the canvas: the firing line in the theme's red, the other in its muted grey.
  const colors = await page.evaluate(() => ["--error", "--muted"].map((v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim()));
  assert.deepEqual(colors, ["#b42318", "#5b6470"]);
  const [fire, calm] = [await rowPixels(page, lines.lines[0].y), await rowPixels(page, lines.lines[1].y)];
  assert.ok(near(fire, colors[0]) > 100, `red pixels on the firing line: ${near(fire, colors[0])}`);
  assert.ok(near(calm, colors[1]) > 100, `grey pixels on the other line: ${near(calm, colors[1])}`);
  assert.equal(near(calm, colors[0]), 0, "no red on the line that does not fire");
  // Dashed: along the line, red and gaps take turns many times.
  const dashes = await page.evaluate(({ y, red }) => {
    const c = window.__pushplot.chart;
    const a = c.chartArea;
    const dpr = c.currentDevicePixelRatio;
    const want = [1, 3, 5].map((i) => parseInt(red.slice(i, i + 2), 16));
    let turns = 0;
    let prev = null;
    for (const dy of [-1, 0, 1]) {
      const d = c.ctx.getImageData(Math.round(a.left * dpr), Math.round(y * dpr) + dy, Math.round((a.right - a.left) * 0.6 * dpr), 1).data;
      let t = 0;
      prev = null;
      for (let i = 0; i < d.length; i += 4) {
        const on = Math.hypot(d[i] - want[0], d[i + 1] - want[1], d[i + 2] - want[2]) < 50;
        if (prev !== null && on !== prev) t++;
        prev = on;
      }
      turns = Math.max(turns, t);
    }
    return turns;
  }, { y: lines.lines[0].y, red: colors[0] });
  assert.ok(dashes >= 40, `the firing line changes between dash and gap ${dashes} times`);
  // Under the chart: which rules watch it, with a link to them.
  assert.equal(
    await page.textContent("#d-rules"),
    "2 alert rules: disk almost full (last over 15m < 10), firing · disk suspiciously empty (max over 1h > 95), ok",
  );
  assert.equal(await page.getAttribute("#d-rules a", "href"), "#/alerts?chart=disk.free");
  await shot(page, "detail-thresholds.png");

  // Dark: the same lines in the dark theme's colours, without a reload.
  await page.emulateMedia({ colorScheme: "dark" });
  await page.waitForFunction(() => getComputedStyle(document.body).backgroundColor === "rgb(15, 18, 23)");
  await page.evaluate(() => new Promise(requestAnimationFrame));
  const dark = await rowPixels(page, lines.lines[0].y);
  assert.ok(near(dark, "#ff8a80") > 100, `dark red pixels on the firing line: ${near(dark, "#ff8a80")}`);
  await shot(page, "detail-thresholds-dark.png");
  await page.emulateMedia({ colorScheme: "light" });

  // The other series has its own rule.
  await page.click("#d-labels button:has-text('host=b')");
  await page.waitForFunction(() => (window.__pushplot.chart.$thresholds || []).map((t) => t.name).join() === "b low");
  assert.match(await page.textContent("#d-rules"), /^1 alert rule: b low \(last over 15m < 20\), ok$/);
  // A chart without rules has no lines and no line about rules.
  await page.goto(base + "/#/chart/backup.duration?range=24h&agg=avg");
  await page.waitForFunction(() => window.__pushplot.chart.data.datasets[2].data.length > 0 && window.__pushplot.chart.$thresholds.length === 0);
  assert.ok(await page.locator("#d-rules").isHidden());
  await clean(page);
});

test("the header links switch between Charts, Jobs, Alerts and Channels, mark the current one, and the URL alone reproduces a view", T, async () => {
  const page = await open();
  await page.goto(base + "/");
  await page.waitForSelector(".card");
  const current = () => page.getAttribute("nav a[aria-current='page']", "href");
  assert.equal(await current(), "#/");
  await page.click("nav a[href='#/jobs']");
  await page.waitForSelector("#jobs-rows .tr");
  assert.equal(await current(), "#/jobs");
  assert.ok(await page.locator("#overview").isHidden());
  await page.click("nav a[href='#/alerts']");
  await page.waitForSelector("#alerts-list .rule");
  assert.equal(await current(), "#/alerts");
  await page.click("nav a[href='#/channels']");
  await page.waitForSelector("#channels:visible");
  assert.equal(await current(), "#/channels");
  await page.click("nav a[href='#/']");
  await page.waitForSelector(".card:visible");
  assert.equal(await current(), "#/");
  assert.equal(await page.title(), "pushplot");
  // A job page marks Jobs; the link alone opens it.
  const linked = await open();
  await linked.goto(base + "/#/jobs/nightly");
  await linked.waitForSelector("#j-runs .run");
  assert.equal(await linked.getAttribute("nav a[aria-current='page']", "href"), "#/jobs");
  assert.equal(await linked.title(), "nightly · jobs · pushplot");
  await clean(linked);
  // Without a key there is no navigation, only the key form.
  const anon = await open({ key: null });
  await anon.goto(base + "/#/jobs");
  await anon.waitForSelector("#key-form input:visible");
  assert.ok(await anon.locator("#nav").isHidden());
  await clean(anon);
  await clean(page);
});

test("the Jobs, job, Alerts and Channels views and a chart with thresholds fit a phone (390 px) in light and dark, with no horizontal scrolling", T, async () => {
  // Two channels, one of them failing, so that the Channels view and the header's warning show.
  const made = [];
  for (const [name, p] of [["phone ok", "/ok/phone"], ["phone down", "/down/phone"]]) made.push((await call("POST", "/api/v1/channels", { type: "ntfy", url: `${hooks}${p}`, name })).body);
  down.add("/down/phone");
  assert.equal((await call("POST", `/api/v1/channels/${made[1].id}/test`)).status, 502);
  try {
    await phoneViews();
  } finally {
    down.delete("/down/phone");
    for (const c of made) await call("DELETE", `/api/v1/channels/${c.id}`);
  }
});

async function phoneViews() {
  for (const dark of [false, true]) {
    const page = await open({ ...PHONE, dark });
    for (const [hash, ready, name] of [
      ["#/jobs", "#jobs-rows .tr", "jobs"],
      ["#/jobs/backup", "#j-runs .run", "job"],
      ["#/alerts", "#alerts-list .rule", "alerts"],
      ["#/channels", "#channels-list .channel.alarm", "channels"],
      ["#/chart/disk.free?range=1h&agg=avg&labels=host:a", "#plot[data-labels='host:a']", "detail-thresholds"],
    ]) {
      await page.goto(base + "/" + hash);
      await page.waitForSelector(ready);
      assert.equal(await overflow(page), 0, `${name} scrolls sideways at 390 px`);
      await shot(page, `${name}-phone-${dark ? "dark" : "light"}.png`, true);
    }
    // Every row of the list keeps its name and status on one line, inside the screen.
    await page.goto(base + "/#/jobs");
    await page.waitForSelector("#jobs-rows .tr");
    const boxes = await page.$$eval("#jobs-rows .tr", (rs) =>
      rs.map((r) => {
        const n = r.querySelector(".name").getBoundingClientRect();
        const p = r.querySelector(".pill").getBoundingClientRect();
        return { sameLine: Math.abs(n.top - p.top) < 8, right: p.right, width: innerWidth };
      }),
    );
    for (const b of boxes) assert.ok(b.sameLine && b.right <= b.width, JSON.stringify(b));
    if (dark) assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector(".jobs-table")).backgroundColor), "rgb(23, 27, 34)");
    await clean(page);
  }
}
