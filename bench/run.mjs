// npm run bench: pushplot (wrangler dev, release build, fresh local D1) and the Prometheus
// Pushgateway side by side, loaded by the same generator with the same settings, after the native
// micro-benchmark of the ingest parser (bench/ingest_parse.rs), then a real Prometheus server
// scraping pushplot's /metrics (Debian's prometheus). Writes bench/results.json and
// prints a Markdown table. `--smoke` runs every workload for a moment, writes to a temporary file,
// and is what `npm test` runs so that this script cannot rot. `--day` prints only the day of cost.
import autocannon from "autocannon";
import { spawn, execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir, cpus, totalmem } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../tests/helpers.mjs";
import { dayOfCost, dayTable } from "./day.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const smoke = process.argv.includes("--smoke");
const DURATION = smoke ? 0.3 : 8; // seconds per workload
const CONNECTIONS = 16;
const TOKEN = "bench-admin-token";
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
const groups = [];
const temps = [];

function stopAll() {
  for (const pid of groups.splice(0)) {
    try {
      process.kill(-pid, "SIGTERM");
    } catch {}
  }
  for (const t of temps.splice(0)) rmSync(t, { recursive: true, force: true });
}
process.on("exit", stopAll);

/** Stops one server started by startServer (its whole process group). */
function stopGroup(pid) {
  const i = groups.indexOf(pid);
  if (i >= 0) groups.splice(i, 1);
  try {
    process.kill(-pid, "SIGTERM");
  } catch {}
}
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    stopAll();
    process.exit(130);
  });
}

/**
 * Starts a server in its own process group and waits for `readyUrl` to answer 200. With `lines`,
 * its standard output is kept there, a line each.
 */
async function startServer(cmd, args, readyUrl, lines) {
  const t0 = performance.now();
  const child = spawn(cmd, args, { cwd: root, env, detached: true, stdio: lines ? ["ignore", "pipe", "ignore"] : "ignore" });
  if (lines) {
    let rest = "";
    child.stdout.on("data", (d) => {
      const parts = (rest + d).split("\n");
      rest = parts.pop();
      lines.push(...parts);
    });
  }
  groups.push(child.pid);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(readyUrl)).status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${cmd} did not answer ${readyUrl} within 60 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return performance.now() - t0;
}

function pushgatewayBinary() {
  const bin = "/usr/bin/prometheus-pushgateway";
  if (existsSync(bin)) return bin;
  console.error("bench: installing prometheus-pushgateway from Debian's packages");
  spawnSync("apt-get", ["update", "-qq"], { stdio: "ignore" });
  const r = spawnSync("apt-get", ["install", "-y", "-qq", "prometheus-pushgateway"], { stdio: "ignore" });
  return r.status === 0 && existsSync(bin) ? bin : null;
}

/** CPU seconds spent so far by each program in a process group, from /proc (Linux). */
function groupCpu(pgid) {
  const byProgram = {};
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(f[2]) !== pgid) continue;
    byProgram[comm] = (byProgram[comm] || 0) + (Number(f[11]) + Number(f[12])) / 100;
  }
  return byProgram;
}

/** The server group whose CPU the load workloads report, set once pushplot is up. */
let measuredGroup = null;

async function load(name, opts) {
  const cpuBefore = measuredGroup ? groupCpu(measuredGroup) : null;
  // In smoke mode a fixed number of requests, so that slow workloads still complete some.
  const length = smoke ? { amount: CONNECTIONS * 2 } : { duration: DURATION };
  const r = await autocannon({ connections: CONNECTIONS, ...length, ...opts });
  const ok = r["2xx"];
  const bad = r.non2xx + r.errors + r.timeouts;
  if (ok === 0 || bad > ok * 0.01) {
    throw new Error(`${name}: ${ok} ok, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  }
  const seconds = r.duration;
  // Where the time goes: CPU milliseconds per request in each program of the server's group.
  const cpu_ms_per_request = {};
  if (cpuBefore) {
    for (const [prog, secs] of Object.entries(groupCpu(measuredGroup))) {
      const used = secs - (cpuBefore[prog] || 0);
      if (used > 0) cpu_ms_per_request[prog] = Number(((used * 1000) / ok).toFixed(3));
    }
  }
  return {
    cpu_ms_per_request,
    requests_per_s: Math.round(ok / seconds),
    points_per_s: Math.round((ok * (opts.pointsPerRequest ?? 1)) / seconds),
    p50_ms: r.latency.p50,
    p99_ms: r.latency.p99,
    requests: ok,
    errors: bad,
  };
}

const api = (base) => ({
  async call(p, init = {}) {
    const res = await fetch(base + p, { ...init, headers: { "X-API-Key": TOKEN, ...(init.headers || {}) } });
    const h = res.headers.get("Server-Timing") || "";
    const m = /read=(\d+) written=(\d+)/.exec(h);
    // Pings answer "OK", images SVG: only JSON is parsed.
    const text = await res.text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {}
    if (!res.ok) throw new Error(`${p}: ${res.status} ${JSON.stringify(body)}`);
    return { body, read: m ? Number(m[1]) : 0, written: m ? Number(m[2]) : 0 };
  },
  ingest(points) {
    return this.call("/api/v1/ingest", { method: "POST", body: JSON.stringify(points) });
  },
});

const nowSecs = () => Math.floor(Date.now() / 1000);

/** Fills `chart` with `n` one-minute buckets ending now, 1,000 points per request. */
async function seed(p, chart, n) {
  const start = Math.floor(nowSecs() / 60) * 60 - (n - 1) * 60;
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push({ chart, value: j % 97, ts: start + j * 60 });
    await p.ingest(batch);
  }
}

function batchBody(n) {
  return JSON.stringify(Array.from({ length: n }, (_, i) => ({ chart: `bench.batch${i % 10}`, value: i })));
}

function promBody(n) {
  let s = "";
  for (let i = 0; i < n; i++) s += `bench_metric_${i} ${i}\n`;
  return s;
}

/** The exposition-format bodies pushed to both pushplot and the Pushgateway, byte for byte. */
const EXPO_SINGLE = "bench_single 42\n";
const EXPO_100 = promBody(100);

async function main() {
  // `--day`: only the day of cost, printed, for trying a change to what a request reads or writes.
  if (process.argv.includes("--day")) {
    const d = await day();
    stopAll();
    console.log(dayTable(d));
    return;
  }
  if (!smoke) {
    console.error("bench: building the release wasm");
    execFileSync("bash", ["scripts/build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  }
  const wasm = readFileSync(path.join(root, "build/index_bg.wasm"));
  const size = { wasm_raw_bytes: wasm.length, wasm_gzip_bytes: gzipSync(wasm, { level: 9 }).length, dashboard_gzip_bytes: dashboardBytes(), commit: commit() };
  // Before any server starts, so that nothing else competes for the CPU.
  const parser = ingestParse();

  // pushplot: a fresh local D1, room for 7 days of one-minute buckets in one series.
  const state = mkdtempSync(path.join(tmpdir(), "pushplot-bench-"));
  temps.push(state);
  const wrangler = path.join(root, "node_modules/.bin/wrangler");
  execFileSync(wrangler, ["d1", "execute", "DB", "--local", "--persist-to", state, "--file=schema.sql"], { cwd: root, env, stdio: "ignore" });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const startMs = await startServer(
    wrangler,
    ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--show-interactive-dev-session=false",
      "--var", `ADMIN_TOKEN:${TOKEN}`, "--var", "MAX_POINTS:20000"],
    `${base}/api/v1/health`,
  );
  const p = api(base);
  measuredGroup = groups[groups.length - 1];
  const headers = { "X-API-Key": TOKEN };
  const results = { date: new Date().toISOString(), smoke, machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
    settings: { connections: CONNECTIONS, duration_s: DURATION, generator: "autocannon 9 (in one Node process)" }, size: { ...size, start_to_first_200_ms: Math.round(startMs) }, ingest_parse: parser, pushplot: {}, pushgateway: {}, d1: {} };

  // First, while the database holds nothing else: the dashboard with exactly its 50 series.
  results.dashboard = await dashboard(p, base);

  // D1 cost, measured on single requests before any load.
  await seed(p, "cost.small", 10);
  await seed(p, "cost.large", 1000);
  const nowTs = nowSecs();
  for (const chart of ["cost.small", "cost.large"]) {
    const n = chart === "cost.small" ? 10 : 1000;
    const existing = await p.ingest({ chart, value: 1, ts: nowTs });
    results.d1[`single_ingest_existing_bucket_${n}_stored`] = { read: existing.read, written: existing.written };
  }
  for (const n of [100, 1000]) {
    const r = await p.ingest(Array.from({ length: n }, (_, i) => ({ chart: `cost.batch${i % 10}`, value: i })));
    results.d1[`batch_${n}_points_10_series`] = { read: r.read, written: r.written, written_per_point: r.written / n };
  }
  await seed(p, "query.1000", 1000);
  await seed(p, "query.week", 7 * 24 * 60);
  const q1 = await p.call("/api/v1/charts/query.1000?from=2d");
  results.d1.query_1000_points = { read: q1.read, points: q1.body.points.length };
  const q2 = await p.call("/api/v1/charts/query.week?step=1h");
  results.d1.query_7d_minutes_as_hours = { read: q2.read, points: q2.body.points.length };

  // Before any load: the Worker's own CPU per ingest, request by request.
  results.wasm_cpu = await wasmCpu(base, headers);

  // Load: the same generator and settings for both services. The Pushgateway runs without
  // persistence (Debian's build keeps a store file by default, so earlier runs would linger in
  // it) and both sides hold the same number of stored series before each round of workloads: the
  // Pushgateway checks its whole store on every push, pushplot's cost does not grow with it.
  results.pushplot.health_no_d1 = await load("health", { url: `${base}/api/v1/health` });
  results.pushplot.query_1000_points = await load("query 1000", { url: `${base}/api/v1/charts/query.1000?from=2d`, headers });
  results.pushplot.query_7d_as_hours = await load("query week", { url: `${base}/api/v1/charts/query.week?step=1h`, headers });
  const pg = pushgatewayBinary();
  let pgBase = null;
  let pgGroup = null;
  if (pg) {
    const pgPort = await freePort();
    pgBase = `http://127.0.0.1:${pgPort}`;
    await startServer(pg, [`--web.listen-address=127.0.0.1:${pgPort}`, "--persistence.file="], `${pgBase}/-/ready`);
    pgGroup = groups[groups.length - 1];
  } else {
    results.pushgateway.skipped = "prometheus-pushgateway could not be installed";
  }
  const ppGroup = measuredGroup;
  results.curve = [];
  let stored = 0;
  for (const target of smoke ? [0, 10, 100] : [0, 1000, 10000]) {
    // Both sides up to `target` stored series: pushplot one point in each of that many series,
    // the Pushgateway one group holding that many.
    for (let i = stored; i < target; i += 1000) {
      const n = Math.min(1000, target - i);
      await p.ingest(Array.from({ length: n }, (_, j) => ({ chart: `stored.s${i + j}`, value: 1 })));
    }
    if (pgBase && target > stored) {
      let body = "";
      for (let i = 0; i < target; i++) body += `stored_series_${i} 1\n`;
      const r = await fetch(`${pgBase}/metrics/job/stored`, { method: "PUT", body });
      if (!r.ok) throw new Error(`Pushgateway preload: ${r.status}`);
    }
    stored = target;
    const round = { stored, pushplot: {}, pushgateway: {} };
    measuredGroup = ppGroup;
    round.pushplot.single = await load(`single @${stored}`, { url: `${base}/api/v1/ingest`, method: "POST", headers, body: '{"chart":"bench.single","value":42}' });
    round.pushplot.batch_100 = await load(`batch 100 @${stored}`, { url: `${base}/api/v1/ingest`, method: "POST", headers, body: batchBody(100), pointsPerRequest: 100 });
    round.pushplot.batch_1000 = await load(`batch 1000 @${stored}`, { url: `${base}/api/v1/ingest`, method: "POST", headers, body: batchBody(1000), pointsPerRequest: 1000 });
    if (stored === 0) {
      // The Pushgateway API: the Pushgateway's own bodies, POSTed to pushplot's /metrics/job/...
      // (its side is the same bodies' single and batch_100 workloads below).
      results.expo = { stored, pushplot: {}, pushgateway: {} };
      results.expo.pushplot.single = await load("expo single", { url: `${base}/metrics/job/bench`, method: "POST", headers, body: EXPO_SINGLE });
      results.expo.pushplot.batch_100 = await load("expo 100", { url: `${base}/metrics/job/bench100`, method: "POST", headers, body: EXPO_100, pointsPerRequest: 100 });
    }
    if (pgBase) {
      measuredGroup = pgGroup;
      round.pushgateway.single = await load(`pg single @${stored}`, { url: `${pgBase}/metrics/job/bench`, method: "POST", body: EXPO_SINGLE });
      round.pushgateway.batch_100 = await load(`pg batch 100 @${stored}`, { url: `${pgBase}/metrics/job/bench100`, method: "POST", body: EXPO_100, pointsPerRequest: 100 });
      round.pushgateway.batch_1000 = await load(`pg batch 1000 @${stored}`, { url: `${pgBase}/metrics/job/bench1000`, method: "POST", body: promBody(1000), pointsPerRequest: 1000 });
      round.ratio = Object.fromEntries(
        ["single", "batch_100", "batch_1000"].map((k) => [k, Number((round.pushplot[k].points_per_s / round.pushgateway[k].points_per_s).toFixed(2))]),
      );
      if (stored === 0) {
        Object.assign(results.expo.pushgateway, { single: round.pushgateway.single, batch_100: round.pushgateway.batch_100 });
        results.expo.ratio = Object.fromEntries(
          ["single", "batch_100"].map((k) => [k, Number((results.expo.pushplot[k].points_per_s / results.expo.pushgateway[k].points_per_s).toFixed(2))]),
        );
      }
    }
    results.curve.push(round);
  }
  // The throughput table and the older targets read the round with an empty store.
  Object.assign(results.pushplot, results.curve[0].pushplot);
  Object.assign(results.pushgateway, results.curve[0].pushgateway);

  // A real Prometheus scraping pushplot as its README says to, and the time until it has a push.
  results.prometheus_scrape = await prometheusScrape(p, base);
  stopAll();

  // A day of the reference profile, on its own server with the default configuration.
  results.day = await day();
  stopAll();

  results.targets = targets(results);
  const out = smoke ? path.join(mkdtempSync(path.join(tmpdir(), "pushplot-bench-out-")), "results.json") : path.join(root, "bench/results.json");
  writeFileSync(out, JSON.stringify(results, null, 2) + "\n");
  console.log(table(results));
  console.log("\n" + dayTable(results.day));
  console.log(`\nresults: ${path.relative(root, out)}`);
}

/** A fresh `wrangler dev` with the default [vars], for the day's cost model (bench/day.mjs). */
async function day() {
  const state = mkdtempSync(path.join(tmpdir(), "pushplot-day-"));
  temps.push(state);
  const wrangler = path.join(root, "node_modules/.bin/wrangler");
  execFileSync("bash", ["scripts/migrate", "--local", "--persist-to", state], { cwd: root, env, stdio: "ignore" });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const lines = [];
  await startServer(
    wrangler,
    ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--show-interactive-dev-session=false",
      "--test-scheduled", "--var", `ADMIN_TOKEN:${TOKEN}`],
    `${base}/api/v1/health`,
    lines,
  );
  // The Worker logs each scheduled run's D1 rows; wrangler's /__scheduled passes the cron only.
  const scheduled = async (cron) => {
    const seen = lines.length;
    await fetch(`${base}/__scheduled?cron=${encodeURIComponent(cron)}`);
    const re = new RegExp(`scheduled \\(${cron.replace(/\*/g, "\\*")}\\).*D1 rows read (\\d+), written (\\d+)`);
    for (let i = 0; i < 200; i++) {
      const hit = lines.slice(seen).map((l) => re.exec(l)).find(Boolean);
      if (hit) return { read: Number(hit[1]), written: Number(hit[2]) };
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no log line for the scheduled run ${cron}`);
  };
  return dayOfCost({ p: api(base), scheduled, smoke });
}

/**
 * workerd CPU per request, sequentially (no group commit, no overlap): the no-D1 health route as
 * the floor, and ingest batches of 1,000 and 10,000 points over 100 series whose last point is bad,
 * so that the whole body is parsed and nothing reaches D1. The difference to the floor is what
 * parsing a batch costs the Worker, the part the free plan's 10 ms of CPU limits.
 */
async function wasmCpu(base, headers) {
  const rounds = smoke ? 3 : 30;
  const refused = (n) =>
    JSON.stringify(
      Array.from({ length: n }, (_, i) => ({
        chart: `cpu.s${i % 100}`,
        value: i === n - 1 ? "bad" : (i % 97) * 1.25,
        ts: nowSecs() - 3600 + i * 0.3,
        labels: { host: `prod${i % 4}` },
      })),
    );
  const cases = { health: null, refused_1000: refused(1000), refused_10000: refused(10000) };
  const ms = {};
  for (const [name, body] of Object.entries(cases)) {
    const send = () =>
      body
        ? fetch(`${base}/api/v1/ingest`, { method: "POST", headers, body }).then((r) => r.text())
        : fetch(`${base}/api/v1/health`).then((r) => r.text());
    await send(); // warm
    const before = groupCpu(measuredGroup).workerd || 0;
    for (let i = 0; i < rounds; i++) await send();
    ms[name] = Number(((((groupCpu(measuredGroup).workerd || 0) - before) * 1000) / rounds).toFixed(2));
  }
  const parse = (n) => Number(Math.max(0, ms[`refused_${n}`] - ms.health).toFixed(2));
  const per_point = (parse(10000) - parse(1000)) / 9000;
  return {
    rounds,
    workerd_ms_per_request: ms,
    parse_ms_1000_points: parse(1000),
    parse_ms_10000_points: parse(10000),
    // Where the parsing alone reaches the free plan's 10 ms, along the line through both sizes.
    points_within_10ms: per_point > 0 ? Math.floor(1000 + (10 - parse(1000)) / per_point) : null,
  };
}

/**
 * Debian's Prometheus server scraping pushplot's /metrics every second with a read key as Bearer
 * and honor_labels, as pushplot's README configures it. Once it has scraped once, a value is
 * pushed with PUT /metrics/job/bench_prom, and Prometheus' query API is asked for it every 100 ms
 * until it answers it (at most 30 s). Records whether it was seen, how long after the push, the
 * scrape's duration and size, and the target's last error if it never was. Prometheus is stopped
 * before this returns.
 */
async function prometheusScrape(p, base) {
  const bin = "/usr/bin/prometheus";
  if (!existsSync(bin)) return { skipped: `no ${bin} (scripts/setup installs Debian's prometheus)` };
  const version = execFileSync(bin, ["--version"], { encoding: "utf8" }).split("\n")[0];
  const readKey = (await p.call("/api/v1/keys", { method: "POST", body: JSON.stringify({ scope: "read", name: "bench prometheus" }) })).body.key;
  const dir = mkdtempSync(path.join(tmpdir(), "pushplot-prometheus-"));
  temps.push(dir);
  const scraped = new URL(base).host;
  const config = path.join(dir, "prometheus.yml");
  writeFileSync(
    config,
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: pushplot
    honor_labels: true
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: ${JSON.stringify(readKey)}
    static_configs:
      - targets: [${JSON.stringify(scraped)}]
`,
  );
  const port = await freePort();
  const promBase = `http://127.0.0.1:${port}`;
  await startServer(
    bin,
    [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    `${promBase}/-/ready`,
  );
  const pid = groups[groups.length - 1];
  const target = async () => (await fetch(`${promBase}/api/v1/targets`).then((res) => res.json()).catch(() => null))?.data?.activeTargets?.[0];
  try {
    // Its first scrape comes some seconds after it is ready (target discovery is throttled to
    // 5 s); the time to see a push is measured from a target already scraped.
    const started = Date.now();
    let t;
    while (Date.now() < started + 30_000) {
      t = await target();
      if (t?.health && t.health !== "unknown") break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const firstScrapeMs = Date.now() - started;
    const value = 1000 + (Date.now() % 1000) / 4; // a quarter: exact in every format it passes through
    const pushed = Date.now();
    const r = await fetch(`${base}/metrics/job/bench_prom/instance/bench`, {
      method: "PUT",
      headers: { "X-API-Key": TOKEN },
      body: `# HELP bench_prom_seen A value pushed to pushplot, to be seen by Prometheus.\n# TYPE bench_prom_seen gauge\nbench_prom_seen ${value}\n`,
    });
    if (!r.ok) throw new Error(`push for Prometheus: ${r.status} ${await r.text()}`);
    const deadline = pushed + 30_000;
    let seen = null;
    while (Date.now() < deadline) {
      const q = await fetch(`${promBase}/api/v1/query?query=bench_prom_seen`).then((res) => res.json()).catch(() => null);
      const hit = q?.data?.result?.find((x) => Number(x.value[1]) === value);
      if (hit) {
        seen = { ms: Date.now() - pushed, labels: hit.metric };
        break;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
    t = await target();
    const samples = await fetch(`${promBase}/api/v1/query?query=scrape_samples_scraped`).then((res) => res.json()).catch(() => null);
    return {
      version,
      scrape_interval_s: 1,
      first_scrape_after_start_ms: firstScrapeMs,
      value,
      seen: Boolean(seen),
      seen_after_push_ms: seen?.ms ?? null,
      // honor_labels: the pushed job and instance, not Prometheus' own.
      labels: seen?.labels ?? null,
      target_health: t?.health ?? null,
      last_error: t?.lastError || null,
      last_scrape_ms: t?.lastScrapeDuration === undefined ? null : Math.round(t.lastScrapeDuration * 1000),
      samples_scraped: Number(samples?.data?.result?.[0]?.value?.[1] ?? NaN) || null,
    };
  } finally {
    stopGroup(pid);
  }
}

/** The commit the sizes belong to (`+dirty` when the tree holds uncommitted changes). */
function commit() {
  const git = (...args) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim();
  try {
    return git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain") ? "+dirty" : "");
  } catch {
    return "unknown";
  }
}

/**
 * The native micro-benchmark of `Batch::parse` + `to_sql_json` (bench/ingest_parse.rs, built with
 * the release settings): milliseconds per case, the median of its runs. It prints one JSON line.
 */
function ingestParse() {
  console.error("bench: the ingest parser, natively (cargo bench --bench ingest_parse)");
  const out = execFileSync("cargo", ["bench", "--bench", "ingest_parse", "--", "--iterations", smoke ? "3" : "51"], {
    cwd: root,
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = out.split("\n").find((l) => l.startsWith('{"bench":"ingest_parse"'));
  if (!line) throw new Error(`cargo bench --bench ingest_parse printed no result:\n${out}`);
  return JSON.parse(line);
}

/** Gzip size of every script and stylesheet the dashboard page loads. */
function dashboardBytes() {
  const html = readFileSync(path.join(root, "public/index.html"), "utf8");
  const files = new Set([...html.matchAll(/<(?:script[^>]*src|link[^>]*href)="(\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]));
  // Modules pull in their own imports, at any depth (a Set iterates what is added while it runs).
  for (const f of files) {
    if (!f.endsWith(".js")) continue;
    for (const m of readFileSync(path.join(root, "public", f), "utf8").matchAll(/import[^"']*["']\.\/([^"']+\.js)["']/g)) files.add(`/${m[1]}`);
  }
  return [...files].reduce((sum, ref) => sum + gzipSync(readFileSync(path.join(root, "public", ref)), { level: 9 }).length, 0);
}

/**
 * 50 series of 1,000 points each; the time from navigation until every card's sparkline is drawn
 * in headless Chromium (the Debian package; skipped when it is not installed).
 */
async function dashboard(p, base) {
  const series = smoke ? 5 : 50;
  if (!existsSync("/usr/bin/chromium")) return { skipped: "no /usr/bin/chromium" };
  for (let i = 0; i < series; i++) await seed(p, `dash.s${String(i).padStart(2, "0")}`, smoke ? 100 : 1000);
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    await page.addInitScript((key) => localStorage.setItem("pushplot.key", key), TOKEN);
    const total = (await (await fetch(`${base}/api/v1/charts`, { headers: { "X-API-Key": TOKEN } })).json()).charts.length;
    const times = [];
    for (let run = 0; run < (smoke ? 1 : 3); run++) {
      const t0 = Date.now();
      await page.goto(`${base}/`);
      await page.waitForFunction(
        (n) => [...document.querySelectorAll("svg.spark polyline.line")].filter((l) => (l.getAttribute("points") || "").trim().includes(" ")).length >= n,
        total,
        { timeout: 30_000 },
      );
      times.push(Date.now() - t0);
    }
    times.sort((a, b) => a - b);
    return { series: total, points_per_series: smoke ? 100 : 1000, sparklines_drawn_ms: times[Math.floor(times.length / 2)], runs_ms: times };
  } finally {
    await browser.close();
  }
}

function targets(r) {
  const pp = r.pushplot, d = r.d1;
  const t = [];
  const add = (name, measured, goal, pass) => t.push({ name, measured, goal, pass });
  for (const round of r.curve ?? []) {
    if (!round.ratio) continue;
    const stored = round.stored.toLocaleString("en-US");
    if (round.stored >= 1000 || r.smoke) {
      for (const [k, v] of Object.entries(round.ratio)) add(`${k.replace("_", " ")} vs a Pushgateway holding ${stored} series`, `${v}x`, ">= 1.0x", v >= 1);
    }
    if (round.stored === 0) add("batch 1000 vs an empty Pushgateway", `${round.ratio.batch_1000}x`, ">= 1.0x", round.ratio.batch_1000 >= 1);
  }
  const frac = pp.single.requests_per_s / pp.health_no_d1.requests_per_s;
  add("single ingest as a fraction of the no-D1 route", frac.toFixed(2), ">= 0.80", frac >= 0.8);
  const w = d.single_ingest_existing_bucket_1000_stored.written;
  add("rows written, single ingest into an existing bucket", w, "<= 1", w <= 1);
  const same = JSON.stringify(d.single_ingest_existing_bucket_10_stored) === JSON.stringify(d.single_ingest_existing_bucket_1000_stored);
  add("single ingest cost with 10 vs 1,000 stored", same ? "equal" : "differs", "equal", same);
  const b = d.batch_100_points_10_series.written;
  add("rows written, batch of 100 points sharing buckets", b, "< 100", b < 100);
  const q = d.query_1000_points;
  add("rows read per query / points returned", `${q.read} / ${q.points}`, "close (<= 1.05x + 5)", q.read <= q.points * 1.05 + 5);
  add("dashboard JS and CSS, gzip", `${(r.size.dashboard_gzip_bytes / 1024).toFixed(0)} KB`, "<= 120 KB", r.size.dashboard_gzip_bytes <= 120 * 1024);
  const parser = r.ingest_parse.cases.find((c) => c.points === 10000 && c.series === 100);
  add("ingest parser: 10,000 points in 100 series, natively", `${parser.ms} ms`, "<= 4 ms", parser.ms <= 4);
  // The budget issue 7 set for everything through job runs, alerts and Prometheus push.
  add("release wasm gzip", `${(r.size.wasm_gzip_bytes / 1024).toFixed(0)} KB`, "<= 300 KB", r.size.wasm_gzip_bytes <= 300 * 1024);
  const scrape = r.prometheus_scrape;
  if (scrape && !scrape.skipped) {
    const honored = scrape.labels?.job === "bench_prom" && scrape.labels?.instance === "bench";
    add("Prometheus scrapes /metrics and has a pushed value, with its job and instance", scrape.seen ? `after ${scrape.seen_after_push_ms} ms${honored ? "" : ", labels not honored"}` : `not seen (${scrape.last_error || scrape.target_health})`, "seen, within 30 s", scrape.seen && honored);
  }
  if (r.wasm_cpu) {
    add("Worker CPU to parse 10,000 points (free plan: 10 ms a request)", `${r.wasm_cpu.parse_ms_10000_points} ms`, "<= 10 ms", r.wasm_cpu.parse_ms_10000_points <= 10);
  }
  return t;
}

function table(r) {
  const row = (cells) => `| ${cells.join(" | ")} |`;
  const cpu = r.wasm_cpu;
  const cpuLines = cpu
    ? [
        `### Worker CPU per ingest (workerd, sequential, ${cpu.rounds} requests each)`,
        "",
        `- health (no D1, the floor): ${cpu.workerd_ms_per_request.health} ms`,
        `- 1,000 points over 100 series, refused at the last point: ${cpu.workerd_ms_per_request.refused_1000} ms (parsing: ${cpu.parse_ms_1000_points} ms)`,
        `- 10,000 points over 100 series, refused at the last point: ${cpu.workerd_ms_per_request.refused_10000} ms (parsing: ${cpu.parse_ms_10000_points} ms)`,
        `- largest batch whose parsing fits the free plan's 10 ms of CPU, by this line: about ${cpu.points_within_10ms} points`,
        "",
      ]
    : [];
  const lines = [
    ...cpuLines,
    `### Throughput (${r.settings.connections} connections, ${r.settings.duration_s} s each, ${r.settings.generator})`,
    "",
    row(["workload", "pushplot req/s", "pushplot points/s", "p50 / p99 ms", "Pushgateway req/s", "Pushgateway samples/s", "p50 / p99 ms"]),
    row(["---", "---:", "---:", "---:", "---:", "---:", "---:"]),
  ];
  const fmt = (x) => (x ? [x.requests_per_s, x.points_per_s, `${x.p50_ms} / ${x.p99_ms}`] : ["-", "-", "-"]);
  lines.push(row(["no-D1 route (health)", ...fmt(r.pushplot.health_no_d1), "-", "-", "-"]));
  for (const [k, label] of [["single", "1 point per request"], ["batch_100", "100 points per request"], ["batch_1000", "1,000 points per request"]]) {
    lines.push(row([label, ...fmt(r.pushplot[k]), ...fmt(r.pushgateway[k])]));
  }
  lines.push(row(["query: 1,000-point series", ...fmt(r.pushplot.query_1000_points), "-", "-", "-"]));
  lines.push(row(["query: 7 d of minutes as hours", ...fmt(r.pushplot.query_7d_as_hours), "-", "-", "-"]));
  if (r.curve?.some((c) => c.ratio)) {
    lines.push("", "### pushplot against the Pushgateway by series stored (points or samples/s, and the ratio)", "");
    lines.push(row(["stored series", "1 point: pushplot / Pushgateway", "ratio", "100 points", "ratio", "1,000 points", "ratio"]));
    lines.push(row(["---:", "---:", "---:", "---:", "---:", "---:", "---:"]));
    for (const c of r.curve) {
      if (!c.ratio) continue;
      const cell = (k) => [`${c.pushplot[k].points_per_s} / ${c.pushgateway[k].points_per_s}`, `${c.ratio[k]}x`];
      lines.push(row([c.stored.toLocaleString("en-US"), ...cell("single"), ...cell("batch_100"), ...cell("batch_1000")]));
    }
  }
  if (r.expo) {
    lines.push("", "### Pushgateway API: the same exposition-format bodies POSTed to both (empty store; samples/s, and the ratio)", "");
    lines.push(row(["body", "pushplot req/s", "pushplot samples/s", "p50 / p99 ms", "Pushgateway req/s", "Pushgateway samples/s", "p50 / p99 ms", "ratio"]));
    lines.push(row(["---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]));
    for (const [k, label] of [["single", "1 sample"], ["batch_100", "100 samples"]]) {
      lines.push(row([label, ...fmt(r.expo.pushplot[k]), ...fmt(r.expo.pushgateway[k]), r.expo.ratio ? `${r.expo.ratio[k]}x` : "-"]));
    }
  }
  const scrape = r.prometheus_scrape;
  if (scrape) {
    lines.push("", "### Prometheus scraping /metrics", "");
    if (scrape.skipped) lines.push(`skipped: ${scrape.skipped}`);
    else if (scrape.seen) {
      lines.push(
        `${scrape.version}, every ${scrape.scrape_interval_s} s with a read key as Bearer and honor_labels: a pushed value answered by its query API ${scrape.seen_after_push_ms} ms after the push, labels ${JSON.stringify(scrape.labels)}; a scrape of ${scrape.samples_scraped} samples took ${scrape.last_scrape_ms} ms (first scrape ${scrape.first_scrape_after_start_ms} ms after Prometheus was ready)`,
      );
    }
    else lines.push(`${scrape.version}: the pushed value was not seen within 30 s (target ${scrape.target_health}, last error: ${scrape.last_error || "none"})`);
  }
  lines.push("", "### Where the CPU goes (ms of CPU per request, by program in the server's process group)", "");
  for (const [label, x] of [["pushplot no-D1 route", r.pushplot.health_no_d1], ["pushplot 1 point", r.pushplot.single], ["pushplot 100 points", r.pushplot.batch_100], ["pushplot 1,000 points", r.pushplot.batch_1000], ["Pushgateway 1 sample", r.pushgateway.single], ["Pushgateway 100 samples", r.pushgateway.batch_100]]) {
    if (x?.cpu_ms_per_request) lines.push(`- ${label}: ${Object.entries(x.cpu_ms_per_request).map(([k, v]) => `${k} ${v}`).join(", ")}`);
  }
  lines.push("", "### D1 cost per call (rows, from Server-Timing)", "", row(["call", "rows read", "rows written"]), row(["---", "---:", "---:"]));
  for (const [k, v] of Object.entries(r.d1)) lines.push(row([k.replaceAll("_", " "), v.read, v.written ?? `- (${v.points} points)`]));
  if (r.dashboard?.sparklines_drawn_ms !== undefined) {
    lines.push("", "### Dashboard", "", `${r.dashboard.series} series × ${r.dashboard.points_per_series} points: every sparkline drawn ${r.dashboard.sparklines_drawn_ms} ms after navigation (median of ${r.dashboard.runs_ms.length}, headless Chromium)`);
  }
  const p = r.ingest_parse;
  lines.push("", `### Ingest parser, natively (Batch::parse + to_sql_json, ms, median of ${p.iterations})`, "", row(["points", "series", "parse", "SQL parameter", "total"]), row(["---:", "---:", "---:", "---:", "---:"]));
  for (const c of p.cases) lines.push(row([c.points.toLocaleString("en-US"), c.series.toLocaleString("en-US"), c.parse_ms, c.to_sql_json_ms, c.ms]));
  lines.push("", "### Size and start", "", `release wasm ${(r.size.wasm_raw_bytes / 1024).toFixed(0)} KB raw, ${(r.size.wasm_gzip_bytes / 1024).toFixed(0)} KB gzip (${r.size.wasm_raw_bytes} and ${r.size.wasm_gzip_bytes} bytes, commit ${r.size.commit}); dashboard JS and CSS ${(r.size.dashboard_gzip_bytes / 1024).toFixed(0)} KB gzip; wrangler dev start to first 200: ${r.size.start_to_first_200_ms} ms`);
  lines.push("", "### Targets", "", row(["target", "measured", "goal", "met"]), row(["---", "---", "---", "---"]));
  for (const t of r.targets) lines.push(row([t.name, t.measured, t.goal, t.pass ? "yes" : "**no**"]));
  return lines.join("\n");
}

main().catch((e) => {
  console.error(`bench: ${e.stack || e}`);
  stopAll();
  process.exit(1);
});
