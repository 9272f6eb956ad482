// The dashboard and the embed page in headless Chromium, against a real `wrangler dev`
// (helpers.mjs starts it as smoke.test.mjs does). Screenshots go to tests/screenshots/ (gitignored) for a person to
// look at. Every page is checked for console errors, Content-Security-Policy violations and for
// requests that leave 127.0.0.1.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import http from "node:http";
import { gzipSync } from "node:zlib";
import { launchChromium, openPage, clean } from "./pages.mjs";
import { startWranglerDev, freePort, httpApi } from "./helpers.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const shots = path.join(root, "tests/screenshots");
const token = "browser-admin-token";
const T = { timeout: 90_000 };
let dev, base, browser, other, otherBase;
const keys = {};

let call, newKey; // httpApi (helpers.mjs), once the server's address is known

// The series the tests expect: 7 series over 6 charts, in 3 groups (api, shop, and no prefix).
const now = Math.floor(Date.now() / 1000);
const minute = Math.floor(now / 60) * 60;
function seed() {
  const pts = [];
  // users: every 5 min for 48 h.
  for (let i = 0; i < 576; i++) {
    const ts = now - i * 300;
    pts.push({ chart: "users", value: Math.round(1200 + 300 * Math.sin(ts / 20000) + (i % 7) * 9), ts });
  }
  // api.errors: 30 one-minute buckets in the last 30 min, 3 points each (values v-2, v, v+2).
  for (let i = 0; i < 30; i++) {
    const b = minute - 60 * i + 10;
    const v = 10 + (i % 5);
    pts.push({ chart: "api.errors", value: v - 2, ts: b }, { chart: "api.errors", value: v, ts: b + 5 }, { chart: "api.errors", value: v + 2, ts: b + 10 });
  }
  // api.latency: two label sets, every 10 min.
  for (let i = 0; i < 200; i++) {
    for (const host of ["a", "b"]) {
      pts.push({ chart: "api.latency", value: (host === "a" ? 120 : 180) + 30 * Math.sin(i / 9), ts: now - i * 600, labels: { host } });
    }
  }
  for (let i = 0; i < 100; i++) pts.push({ chart: "shop.orders", value: 20 + (i % 12) * 3, ts: now - i * 1800 });
  for (let i = 0; i < 48; i++) pts.push({ chart: "shop.revenue", value: 1234.5 + i * 100 - (i % 4) * 310, ts: now - i * 3600 });
  for (let i = 0; i < 7; i++) pts.push({ chart: "jobs/nightly rows", value: 500000 + i * 12000, ts: now - i * 86400 - 600 });
  return pts;
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  dev = await startWranglerDev({ adminToken: token, name: "browser" });
  base = dev.base;
  ({ call, newKey } = httpApi(base, token, "browser test"));
  const r = await call("POST", "/api/v1/ingest", seed());
  assert.equal(r.status, 200, JSON.stringify(r.body));
  keys.users = await newKey("read", "users");
  keys.jobs = await newKey("read", "jobs/nightly rows");

  // Another origin (another port) whose page frames the embeds.
  const otherPort = await freePort();
  otherBase = `http://127.0.0.1:${otherPort}`;
  const frames = [
    `${base}/embed/users?key=${keys.users}&range=24h&title=1`,
    `${base}/embed/${encodeURIComponent("jobs/nightly rows")}?key=${keys.jobs}&range=7d&theme=dark&title=1`,
    `${base}/embed/users?key=pp_wrong_key&range=24h`,
  ];
  other = http
    .createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(
        `<!doctype html><title>another site</title><body style="margin:16px;font-family:sans-serif;background:#fafafa">` +
          `<h1 style="font-size:16px">A page on another origin framing three embeds</h1>` +
          frames.map((src, i) => `<iframe id="f${i}" src="${src}" width="600" height="300" frameborder="0"></iframe>`).join("<br>") +
          `</body>`,
      );
    })
    .listen(otherPort, "127.0.0.1");

  browser = await launchChromium();
});

after(async () => {
  try {
    await browser?.close();
  } catch {}
  try {
    other?.close();
  } catch {}
  dev?.stop();
});

const open = (opts) => openPage(browser, opts);

const shot = (page, name) => page.screenshot({ path: path.join(shots, name) });
const dataset = (page, i = 2) => page.evaluate((i) => window.__pushplot.chart.data.datasets[i].data.map((p) => p.y), i);
const pointCount = (page) => page.evaluate(() => window.__pushplot.chart.data.datasets[2].data.length);
/** Waits until the chart shows min to max points. A function, not a string: the pages'
 * CSP forbids eval, which Playwright would use for a string predicate. */
async function drawn(page, min = 1, max = Infinity) {
  await page.waitForFunction(
    ([min, max]) => {
      const c = window.__pushplot && window.__pushplot.chart;
      const n = c ? c.data.datasets[2].data.length : 0;
      return n >= min && n <= max;
    },
    [min, max],
  );
}

test("the key form: a wrong key, an ingest key and the admin token, remembered and forgotten", T, async () => {
  const ingestKey = await newKey("ingest");
  const page = await open();
  await page.goto(base + "/");
  await page.waitForSelector("#key-form input:visible");
  await page.fill("#key-form input", "pp_not_a_key");
  await page.press("#key-form input", "Enter");
  await page.waitForSelector("#login-error:visible");
  assert.match(await page.textContent("#login-error"), /401.*wrong or has been revoked/);
  await page.fill("#key-form input", ingestKey);
  await page.press("#key-form input", "Enter");
  await page.waitForFunction(() => /403/.test(document.getElementById("login-error").textContent));
  await page.fill("#key-form input", token);
  await page.press("#key-form input", "Enter");
  await page.waitForSelector(".card");
  assert.equal(await page.evaluate(() => localStorage.getItem("pushplot.key")), token);
  await page.reload();
  await page.waitForSelector(".card");
  await page.click("#forget");
  await page.waitForSelector("#key-form input:visible");
  assert.equal(await page.evaluate(() => localStorage.getItem("pushplot.key")), null);
  await clean(page, [/status of 40[13]/]);
});

test("the overview: every series as a card with a sparkline from one request, grouped and filterable", T, async () => {
  const list = (await call("GET", "/api/v1/charts")).body.charts;
  assert.equal(list.length, 7);
  const page = await open({ key: token });
  await page.goto(base + "/");
  await page.waitForSelector(".card");
  const cards = await page.$$eval(".card", (els) =>
    els.map((a) => ({
      name: a.querySelector(".name").textContent,
      chips: a.querySelector(".chips").textContent,
      spark: a.querySelector(".spark .line").getAttribute("points").trim().split(/\s+/).filter(Boolean).length,
      value: a.querySelector(".value").textContent,
      ago: a.querySelector(".ago").textContent,
      changeTitle: a.querySelector(".change").title,
    })),
  );
  assert.equal(cards.length, list.length);
  for (const s of list) {
    const c = cards.find((c) => c.name === s.chart && c.chips === Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(""));
    assert.ok(c, `no card for ${s.chart} ${JSON.stringify(s.labels)}`);
    // The spark holds the newest 48 buckets, each a vertex of the polyline.
    assert.equal(c.spark, Math.min(48, s.points), `sparkline of ${s.chart}`);
    assert.match(c.ago, /^updated (just now|\d+ (min|h|d) ago)$/);
  }
  assert.ok(cards.find((c) => c.name === "api.errors").changeTitle.length > 0, "the change says what it compares");
  assert.deepEqual(await page.$$eval(".group h2", (h) => h.map((e) => e.textContent)), ["api", "shop", "other"]);
  // One list request with sparklines, no request per chart.
  assert.ok(page.requests.some((u) => u.includes("/api/v1/charts?spark=48")));
  assert.equal(page.requests.filter((u) => u.includes("/api/v1/charts/")).length, 0);
  await shot(page, "overview.png");

  // A refresh asks only for what changed since the last answer, and draws what a full load draws.
  assert.equal((await call("POST", "/api/v1/ingest", { chart: "shop.orders", value: 999 })).status, 200);
  await page.evaluate(() => window.__pushplot.refresh());
  await page.waitForFunction(() => [...document.querySelectorAll(".card .value")].some((e) => e.textContent === "999"));
  assert.ok(page.requests.some((u) => /\/api\/v1\/charts\?spark=48&since=\d+$/.test(u)), "the refresh sends since=");
  const lines = (p) =>
    p.$$eval(".card", (els) => els.map((a) => `${a.querySelector(".name").textContent} ${a.querySelector(".chips").textContent}: ${a.querySelector(".spark .line").getAttribute("points")}`).sort());
  const fresh = await open({ key: token });
  await fresh.goto(base + "/");
  await fresh.waitForFunction(() => [...document.querySelectorAll(".card .value")].some((e) => e.textContent === "999"));
  assert.deepEqual(await lines(page), await lines(fresh), "every sparkline as a full load draws it");
  await clean(fresh);

  await page.fill("#filter", "shop");
  assert.deepEqual(await page.$$eval(".card:not([hidden]) .name", (e) => e.map((x) => x.textContent)), ["shop.orders", "shop.revenue"]);
  assert.match(page.url(), /#\/\?q=shop$/);
  await page.fill("#filter", "host=b");
  assert.equal(await page.locator(".card:visible").count(), 1);
  await page.fill("#filter", "nothing-like-this");
  await page.waitForSelector("#nomatch:visible");

  // The budget: every script and style sheet the dashboard loads (its ES modules, each once),
  // gzipped, at most 120 KB.
  const loaded = page.requests.filter((u) => /\.(js|css)(\?|$)/.test(u)).map((u) => new URL(u).pathname).sort();
  assert.deepEqual(loaded, [
    "/alerts.js", "/app.js", "/channels.js", "/detail.js", "/embed-dialog.js", "/jobs.js", "/key.js", "/nav.js", "/ops.js", "/overview.js", "/plot.js",
    "/route.js", "/spark-merge.js", "/state.js", "/style.css", "/thresholds.js", "/vendor/chart.umd.js",
  ]);
  let total = 0;
  for (const u of loaded) total += gzipSync(Buffer.from(await (await fetch(base + u)).arrayBuffer())).length;
  assert.ok(total <= 120 * 1024, `the page loads ${total} bytes of gzipped JS and CSS`);
  await clean(page);
});

test("the detail view: points, ranges, aggregates, labels, zoom, downloads and refresh in place", T, async () => {
  const page = await open({ key: token });
  await page.goto(base + "/");
  await page.click(".card:has-text('api.errors')");
  await page.waitForURL(/#\/chart\/api\.errors\?range=24h&agg=avg$/);
  await drawn(page);
  await page.click("#ranges [data-range='1h']");
  await page.waitForURL(/range=1h/);
  await drawn(page, 30, 30);
  assert.equal(await page.getAttribute("#plot", "data-step"), "60");
  // The min-max band behind avg: min and max datasets hold v-2 and v+2.
  const [min, max, avg] = [await dataset(page, 0), await dataset(page, 1), await dataset(page, 2)];
  assert.deepEqual(min.map((v, i) => v + 2), avg);
  assert.deepEqual(max.map((v, i) => v - 2), avg);
  assert.match(await page.textContent("#d-info"), /bucket 1 min · step 1 min · 30 points shown \(avg, shaded: min–max\) · keeps the newest 1,000 buckets/);

  // Another aggregate changes what is drawn, and drops the band.
  await page.selectOption("#agg", "count");
  await page.waitForURL(/agg=count/);
  await page.waitForFunction(() => window.__pushplot.chart.data.datasets[2].data.every((p) => p.y === 3) && window.__pushplot.chart.data.datasets[1].data.length === 0);
  await page.selectOption("#agg", "max");
  await page.waitForFunction(() => window.__pushplot.chart.data.datasets[2].data.every((p) => p.y >= 12));
  await page.selectOption("#agg", "avg");

  // A longer range: a coarser step fitted to the width, so fewer points.
  await page.click("#ranges [data-range='24h']");
  await page.waitForFunction(() => document.getElementById("plot").dataset.step === "300");
  const coarse = await pointCount(page);
  assert.ok(coarse >= 6 && coarse <= 7, `24h shows ${coarse} points of 5 min`);

  // Drag across the chart: the selected time becomes a custom range; reset goes back.
  await page.click("#ranges [data-range='1h']");
  await drawn(page, 30, 30);
  const area = await page.evaluate(() => {
    const a = window.__pushplot.chart.chartArea;
    const r = document.getElementById("canvas").getBoundingClientRect();
    return { x: r.left + a.left, y: r.top + (a.top + a.bottom) / 2, w: a.right - a.left };
  });
  await page.mouse.move(area.x + area.w * 0.6, area.y);
  await page.mouse.down();
  await page.mouse.move(area.x + area.w * 0.8, area.y, { steps: 6 });
  await page.waitForSelector("#sel:visible");
  await page.mouse.up();
  await page.waitForURL(/range=custom&from=\d+&to=\d+/);
  const u = new URLSearchParams(page.url().split("?")[1]);
  const span = Number(u.get("to")) - Number(u.get("from"));
  assert.ok(span > 600 && span < 900, `the zoom selected ${span} s of the hour`);
  await page.waitForSelector("#reset:visible");
  await drawn(page, 1, 29);
  await page.click("#reset");
  await page.waitForURL(/range=1h/);
  await drawn(page, 30, 30);

  // Tooltips: exact value and local time.
  await page.mouse.move(area.x + area.w * 0.99, area.y);
  await page.waitForFunction(() => window.__pushplot.chart.tooltip.opacity > 0);
  const tip = await page.evaluate(() => ({ title: window.__pushplot.chart.tooltip.title, body: window.__pushplot.chart.tooltip.body.map((b) => [...b.lines, ...b.after].join(" ")) }));
  assert.match(tip.title[0], /\d{4}.*\(1 min\)/);
  assert.match(tip.body.join(" "), /^avg: \d+ min \d+ · max \d+ · count 3$/);
  await shot(page, "detail.png");

  // Downloads: the points shown, as CSV and as the JSON answer.
  const [csv] = await Promise.all([page.waitForEvent("download"), page.click("#csv")]);
  assert.equal(csv.suggestedFilename(), "api.errors-1h-avg.csv");
  const lines = readFileSync(await csv.path(), "utf8").trim().split("\n");
  assert.equal(lines[0], "ts,time,value,count,sum,min,max,last");
  assert.equal(lines.length, 31);
  const [json] = await Promise.all([page.waitForEvent("download"), page.click("#json")]);
  const answer = JSON.parse(readFileSync(await json.path(), "utf8"));
  assert.equal(answer.points.length, 30);
  assert.equal(answer.chart, "api.errors");

  // Refresh: a new point shows up in the same chart object, drawn in place.
  await page.evaluate(() => (window.__before = window.__pushplot.chart));
  assert.equal((await call("POST", "/api/v1/ingest", { chart: "api.errors", value: 99 })).status, 200);
  await page.evaluate(() => window.__pushplot.refresh());
  await page.waitForFunction(() => window.__pushplot.chart.data.datasets[1].data.at(-1).y === 99);
  assert.ok(await page.evaluate(() => window.__before === window.__pushplot.chart && document.querySelectorAll("canvas").length === 1));

  // Labels: a chart with two label sets offers both; the choice is in the URL and the query.
  await page.goto(base + "/#/chart/api.latency?range=24h&agg=avg");
  await page.waitForSelector("#plot[data-chart='api.latency'][data-labels='host:a']");
  assert.deepEqual(await page.$$eval("#d-labels button", (b) => b.map((x) => x.textContent)), ["host=a", "host=b"]);
  const a = await dataset(page);
  await page.click("#d-labels button:has-text('host=b')");
  await page.waitForURL(/labels=host:b/);
  await page.waitForFunction(() => window.__pushplot.chart.data.datasets[2].data.every((p) => p.y > 145));
  assert.ok(a.every((v) => v < 155));
  assert.ok(page.requests.some((r) => r.includes("labels=%7B%22host%22%3A%22b%22%7D")));
  // The URL alone reproduces the view.
  const linked = await open({ key: token });
  await linked.goto(page.url());
  await linked.waitForFunction(() => window.__pushplot.chart && window.__pushplot.chart.data.datasets[2].data.length > 0 && window.__pushplot.chart.data.datasets[2].data.every((p) => p.y > 145));
  assert.equal(await linked.textContent("#d-labels button[aria-pressed='true']"), "host=b");
  await clean(linked);

  // Custom range from the inputs.
  await page.click("#ranges [data-range='custom']");
  await page.waitForSelector("#custom:visible");
  await page.click("#custom button");
  await page.waitForURL(/range=custom/);
  await drawn(page);
  await clean(page);
});

test("the embed button gives the snippets and mints a read key for one chart", T, async () => {
  const page = await open({ key: token });
  await page.goto(base + "/#/chart/users?range=7d&agg=avg");
  await drawn(page);
  await page.click("#embed");
  await page.waitForSelector("#embed-dialog[open]");
  assert.equal(await page.inputValue("#e-link"), `${base}/embed/users?key=READ_KEY&range=7d`);
  await page.click("#e-mint");
  await page.waitForFunction(() => !document.getElementById("e-link").value.includes("READ_KEY"));
  const link = await page.inputValue("#e-link");
  const minted = new URL(link).searchParams.get("key");
  assert.equal(await page.inputValue("#e-iframe"), `<iframe src="${link}" width="600" height="300" frameborder="0"></iframe>`);
  assert.equal(await page.inputValue("#e-md"), `![users](${base}/img/users.svg?key=${minted}&range=7d)`);
  // The key is described as what it is: one chart, not a prefix (GET /api/v1/keys agrees).
  const status = await page.textContent("#e-status");
  assert.match(status, /^Made read key \S+, limited to the chart “users”\. Revoke it with DELETE \/api\/v1\/keys\/\S+\.$/);
  assert.doesNotMatch(status, /null/);
  const listed = (await call("GET", "/api/v1/keys")).body.keys.find((k) => status.includes(k.id));
  assert.deepEqual([listed.chart, listed.charts], ["users", null]);
  const reach = await page.evaluate(() =>
    import("/embed-dialog.js").then((m) => [{ chart: "users", charts: null }, { chart: null, charts: "shop." }, { chart: null, charts: null }].map(m.keyReach)),
  );
  assert.deepEqual(reach, ["limited to the chart “users”", "limited to charts starting with “shop.”", "for every chart"]);
  // The minted key reads this chart and no other.
  assert.equal((await call("GET", "/api/v1/charts/users?from=1h", undefined, minted)).status, 200);
  assert.equal((await call("GET", "/api/v1/charts/shop.orders?from=1h", undefined, minted)).status, 403);
  await page.keyboard.press("Escape");

  // A chart name with a slash and a space is encoded in every snippet.
  await page.goto(base + "/#/chart/" + encodeURIComponent("jobs/nightly rows") + "?range=7d&agg=avg");
  await page.waitForSelector(`#plot[data-chart="jobs/nightly rows"]`);
  await page.click("#embed");
  assert.match(await page.inputValue("#e-link"), /\/embed\/jobs%2Fnightly%20rows\?key=READ_KEY&range=7d$/);
  await clean(page);

  // A read key cannot mint keys: the dialog says so.
  const reader = await open({ key: await newKey("read") });
  await reader.goto(base + "/#/chart/users?range=24h&agg=avg");
  await drawn(reader);
  await reader.click("#embed");
  await reader.click("#e-mint");
  await reader.waitForFunction(() => /Only the admin token can make keys/.test(document.getElementById("e-status").textContent));
  await clean(reader, [/status of 403/]);
});

test("the embed renders inside an iframe of a page from another origin", T, async () => {
  const page = await open({ viewport: { width: 680, height: 1040 } });
  await page.goto(otherBase + "/");
  const byId = async (id) => (await page.$(`#${id}`)).contentFrame();
  const f0 = await byId("f0");
  const f1 = await byId("f1");
  const f2 = await byId("f2");
  // 24 h at a step fitted to 600 px: 15 min, 96 points.
  await f0.waitForFunction(() => window.__pushplot && window.__pushplot.chart && window.__pushplot.chart.data.datasets[2].data.length > 90);
  await f1.waitForFunction(() => window.__pushplot && window.__pushplot.chart && window.__pushplot.chart.data.datasets[2].data.length === 7);
  assert.equal(await f0.textContent("#title"), "users");
  assert.equal(await f1.textContent("#title"), "jobs/nightly rows");
  // Fills the frame with no scrollbars.
  for (const f of [f0, f1]) {
    const m = await f.evaluate(() => ({ sw: document.documentElement.scrollWidth, sh: document.documentElement.scrollHeight, cw: innerWidth, ch: innerHeight, canvas: document.getElementById("canvas").getBoundingClientRect().height }));
    assert.ok(m.sw <= m.cw && m.sh <= m.ch, `scrollbars in the embed: ${JSON.stringify(m)}`);
    assert.ok(m.canvas > 200, `the chart is ${m.canvas}px high in a 300px frame`);
  }
  // theme=dark is dark whatever the system says.
  assert.equal(await f1.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(23, 27, 34)");
  await f2.waitForSelector("#msg:visible");
  assert.match(await f2.textContent("#msg"), /key was not accepted \(401\)/);
  await shot(page, "embed.png");
  await clean(page, [/status of 401/]);

  // A public chart embeds without a key.
  assert.equal((await call("PUT", "/api/v1/charts/shop.orders", { public: true })).status, 200);
  const pub = await open({ viewport: { width: 600, height: 300 } });
  await pub.goto(base + "/embed/shop.orders?range=7d");
  await pub.waitForFunction(() => window.__pushplot && window.__pushplot.chart.data.datasets[2].data.length > 10);
  await clean(pub);
});

test("an embed made with the admin token or an admin key shows no data: URLs take read keys only", T, async () => {
  const admin = await newKey("admin");
  for (const key of [admin, token]) {
    const page = await open({ viewport: { width: 600, height: 300 } });
    await page.goto(`${base}/embed/users?key=${encodeURIComponent(key)}&range=24h`);
    await page.waitForSelector("#msg:not([hidden])");
    assert.match(await page.textContent("#msg"), /not a read key|not accepted/);
    assert.equal(await page.evaluate(() => Boolean(window.__pushplot)), false, "no chart was drawn");
    await page.close();
  }
});

/** A Content-Security-Policy as a map of directive -> value, so that order does not matter. */
const directives = (csp) => new Map((csp || "").split(";").map((d) => d.trim()).filter(Boolean).map((d) => [d.split(/\s+/)[0], d.split(/\s+/).slice(1).join(" ")]));
const STATIC_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const EMBED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *";

test("the dashboard and the embed page run under a strict Content-Security-Policy with no violation", T, async () => {
  const page = await open({ key: token });
  const res = await page.goto(base + "/");
  assert.deepEqual(directives(res.headers()["content-security-policy"]), directives(STATIC_CSP), "the dashboard's policy");
  assert.equal(res.headers()["referrer-policy"], "no-referrer");
  await page.waitForSelector(".card");
  // The detail view: the chart, a label set, a drag (the selection is styled from JS), the dialog
  // opened and closed with its × button (a method=dialog form: no submission for form-action).
  await page.click(".card:has-text('api.latency') >> nth=1");
  await drawn(page);
  const area = await page.evaluate(() => {
    const a = window.__pushplot.chart.chartArea;
    const r = document.getElementById("canvas").getBoundingClientRect();
    return { x: r.left + a.left, y: r.top + (a.top + a.bottom) / 2, w: a.right - a.left };
  });
  await page.mouse.move(area.x + area.w * 0.3, area.y);
  await page.mouse.down();
  await page.mouse.move(area.x + area.w * 0.5, area.y, { steps: 4 });
  await page.waitForSelector("#sel:visible");
  await page.mouse.up();
  await page.waitForURL(/range=custom/);
  await drawn(page);
  await page.click("#embed");
  await page.waitForSelector("#embed-dialog[open]");
  await page.click("#embed-dialog .dlg-head button");
  await page.waitForFunction(() => !document.getElementById("embed-dialog").open);
  await page.click(".back");
  await page.waitForSelector(".card:visible");
  assert.deepEqual(page.violations, [], "violations in the dashboard");
  await clean(page);

  // The embed page: the Worker sends its own policy, which lets any site frame it.
  const embed = await open({ viewport: { width: 600, height: 300 } });
  const r = await embed.goto(`${base}/embed/users?key=${keys.users}&range=24h&title=1&theme=dark`);
  await embed.waitForFunction(() => window.__pushplot && window.__pushplot.chart && window.__pushplot.chart.data.datasets[2].data.length > 90);
  assert.deepEqual(directives(r.headers()["content-security-policy"]), directives(EMBED_CSP), "the embed page's policy (sent by the Worker)");
  assert.equal(r.headers()["referrer-policy"], "no-referrer");
  assert.deepEqual(embed.violations, [], "violations in the embed page");
  await clean(embed);
});

test("dark theme follows prefers-color-scheme", T, async () => {
  const page = await open({ key: token });
  await page.emulateMedia({ colorScheme: "dark" });
  await page.goto(base + "/#/chart/users?range=24h&agg=avg");
  await drawn(page);
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(15, 18, 23)");
  assert.equal(await page.evaluate(() => window.__pushplot.chart.data.datasets[2].borderColor), "#60a5fa");
  await shot(page, "dark.png");
  // Switching back redraws in the light colors without a reload.
  await page.emulateMedia({ colorScheme: "light" });
  await page.waitForFunction(() => window.__pushplot.chart.data.datasets[2].borderColor === "#2563eb");
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), "rgb(245, 246, 248)");
  await clean(page);
});

test("works at phone width (390 px)", T, async () => {
  const page = await open({ key: token, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
  await page.goto(base + "/");
  await page.waitForSelector(".card");
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.equal(await overflow(), 0);
  await shot(page, "phone.png");
  await page.goto(base + "/#/chart/users?range=24h&agg=avg");
  await drawn(page);
  assert.equal(await overflow(), 0);
  const box = await page.evaluate(() => document.getElementById("canvas").getBoundingClientRect().width);
  assert.ok(box > 300, `the chart is ${box}px wide`);
  await clean(page);
});

test("the empty state shows the curl line for a first point", T, async () => {
  const page = await open({ key: await newKey("read", "nothing-here.") });
  await page.goto(base + "/");
  await page.waitForSelector("#empty:visible");
  assert.equal(
    await page.textContent("#curl"),
    `curl -X POST ${base}/api/v1/ingest -H "X-API-Key: $KEY" -d '{"chart":"users","value":42}'`,
  );
  await clean(page);
});

test("the SVG image and badge open in the browser", T, async () => {
  const page = await open({ viewport: { width: 800, height: 400 }, deviceScaleFactor: 2 });
  for (const [p, name] of [
    [`/img/users.svg?key=${keys.users}&range=24h`, "img.png"],
    [`/badge/users.svg?key=${keys.users}`, "badge.png"],
  ]) {
    const r = await page.goto(base + p);
    assert.equal(r.status(), 200, `${p}: ${await r.text()}`);
    assert.match(r.headers()["content-type"], /^image\/svg\+xml/);
    assert.match(await r.text(), /<svg[\s>]/);
    await page.locator("svg").first().screenshot({ path: path.join(shots, name) });
  }
  // Chromium asks for /favicon.ico on its own for a page that is an image and logs its 404; no
  // request the pages made failed.
  assert.deepEqual(page.failed, []);
  await clean(page, [/status of 404/]);
});

test("the overview packs small groups: six one-chart groups share rows at every width, light and dark", T, async () => {
  const singles = ["auth.logins", "billing.invoices", "cache.hit_ratio", "db.size_mb", "mail.sent", "queue.depth"];
  const pts = singles.flatMap((chart, j) => Array.from({ length: 48 }, (_, i) => ({ chart, value: 50 + 10 * j + 20 * Math.sin((i + 5 * j) / 6), ts: now - i * 1800 })));
  assert.equal((await call("POST", "/api/v1/ingest", pts)).status, 200);
  try {
    const page = await open({ key: token });
    await page.goto(base + "/");
    await page.waitForSelector(".card");
    const layout = () =>
      page.evaluate(() => ({
        overflow: document.documentElement.scrollWidth - innerWidth,
        width: document.getElementById("groups").getBoundingClientRect().width,
        groups: [...document.querySelectorAll(".group:not([hidden])")].map((g) => ({
          name: g.querySelector("h2").textContent,
          cards: g.querySelectorAll(".card:not([hidden])").length,
          top: Math.round(g.getBoundingClientRect().top),
          width: g.getBoundingClientRect().width,
          cardWidths: [...g.querySelectorAll(".card:not([hidden])")].map((c) => c.getBoundingClientRect().width),
        })),
      }));
    const rows = (l) => new Set(l.groups.map((g) => g.top)).size;
    // At 1280 px: four columns; api (3 cards), shop and other (2), six groups of one.
    let l = await layout();
    assert.equal(l.groups.length, 9);
    const card = l.groups[0].cardWidths[0];
    for (const g of l.groups) {
      for (const w of g.cardWidths) assert.ok(Math.abs(w - card) < 1, `a card of ${g.name} is ${w}px wide, others ${card}px`);
      assert.ok(g.width < g.cards * (card + 13), `${g.name} shows ${g.cards} cards in ${g.width}px`);
    }
    assert.ok(rows(l) <= 4, `nine groups take ${rows(l)} rows`);
    // Cards that share a row are as high as each other, whichever group they are in.
    const heights = await page.$$eval(".card", (cs) => Object.values(Object.groupBy(cs.map((c) => c.getBoundingClientRect()), (r) => Math.round(r.top))).map((rs) => new Set(rs.map((r) => Math.round(r.height))).size));
    assert.ok(heights.every((n) => n === 1), "cards of unequal height in a row");
    await page.screenshot({ path: path.join(shots, "overview-groups.png"), fullPage: true });
    // A filter narrows a group to the cards it still shows.
    await page.fill("#filter", "latency");
    l = await layout();
    assert.deepEqual(l.groups.map((g) => [g.name, g.cards]), [["api", 2]]);
    assert.ok(l.groups[0].width < 2 * (card + 13));
    await page.fill("#filter", "");
    await page.emulateMedia({ colorScheme: "dark" });
    assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector(".card")).backgroundColor), "rgb(23, 27, 34)");
    await page.screenshot({ path: path.join(shots, "overview-groups-dark.png"), fullPage: true });
    await page.emulateMedia({ colorScheme: "light" });
    // Narrower: three columns, two, and one at phone width; never a horizontal scrollbar.
    for (const [width, cols] of [[1000, 3], [700, 2], [390, 1]]) {
      await page.setViewportSize({ width, height: 844 });
      l = await layout();
      assert.equal(l.overflow, 0, `horizontal overflow at ${width}px`);
      const w = l.groups[0].cardWidths[0];
      assert.ok(Math.abs(w - (l.width - (cols - 1) * 12.8) / cols) < 2, `${cols} columns at ${width}px: a card is ${w}px of ${l.width}px`);
      for (const g of l.groups) assert.ok(g.width <= l.width + 0.5, `${g.name} is wider than the page at ${width}px`);
      if (cols > 1) assert.ok(rows(l) < l.groups.length, `at ${width}px small groups share rows`);
      await page.screenshot({ path: path.join(shots, `overview-groups-${width}.png`), fullPage: true });
    }
    await clean(page);
  } finally {
    for (const chart of singles) await call("DELETE", `/api/v1/charts/${chart}`);
  }
});
