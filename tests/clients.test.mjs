// The clients the Worker hands out, /pushplot.py and /client.sh, fetched with curl from a real
// `wrangler dev` and run as a user runs them: python3, and dash (Debian's /bin/sh) for the shell.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import path from "node:path";
import { startWranglerDev, httpApi, freePort, root } from "./helpers.mjs";

const token = "clients-admin-token";
let dev, api, key, dir;

/** Runs a program to its end, whatever its status: {code, signal, stdout, stderr, ms}. */
function run(file, args, { env = {}, timeout = 60_000 } = {}) {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(file, args, { cwd: dir, env: { ...process.env, ...env }, timeout, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, signal: err?.signal ?? null, stdout, stderr, ms: Date.now() - started }),
    );
  });
}

/** Runs a Python program next to the downloaded pushplot.py, with its own spool. */
async function python(source, { url = dev.base, spool, env = {} } = {}) {
  const file = path.join(dir, `job-${Math.random().toString(36).slice(2)}.py`);
  writeFileSync(file, source);
  const r = await run("python3", [file], {
    env: { PUSHPLOT_URL: url, PUSHPLOT_KEY: key, PYTHONPATH: dir, XDG_CACHE_HOME: spool ?? path.join(dir, "cache"), ...env },
  });
  assert.equal(r.code, 0, `python failed:\n${r.stderr}`);
  return r;
}

/** The downloaded shell client under dash. */
function pushplot(args, { url = dev.base, timeout = 5 } = {}) {
  return run("dash", [path.join(dir, "pushplot"), ...args], {
    env: { PUSHPLOT_URL: url, PUSHPLOT_KEY: key, PUSHPLOT_TIMEOUT: String(timeout) },
  });
}

/** Every bucket of a series in the last hour, folded into one. */
async function total(chart, labels = "") {
  const r = await api("GET", `/api/v1/charts/${encodeURIComponent(chart)}?from=2h${labels && `&labels=${labels}`}`);
  if (r.status === 404) return { count: 0, sum: 0 };
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const p = r.body.points;
  return {
    count: p.reduce((s, b) => s + b.count, 0),
    sum: p.reduce((s, b) => s + b.sum, 0),
    min: Math.min(...p.map((b) => b.min)),
    max: Math.max(...p.map((b) => b.max)),
  };
}

/** A server that takes connections and never answers. */
async function hangingServer() {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

before(async () => {
  dev = await startWranglerDev({ adminToken: token, name: "clients" });
  ({ call: api } = httpApi(dev.base, token, "clients test"));
  key = (await api("POST", "/api/v1/keys", { scope: "ingest", charts: "cl.", name: "clients test" })).body.key;
  dir = mkdtempSync(path.join(tmpdir(), "pushplot-clients-"));
  // Both clients as a user gets them: from the running Worker, without a key.
  for (const [url, file] of [["/pushplot.py", "pushplot.py"], ["/client.sh", "pushplot"]]) {
    const r = await run("curl", ["-fsS", "-m", "10", `${dev.base}${url}`, "-o", path.join(dir, file)]);
    assert.equal(r.code, 0, r.stderr);
  }
});

after(() => {
  dev?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("both clients are served by the Worker as text, without a key, as they are in public/", async () => {
  for (const [url, file, first] of [["/pushplot.py", "pushplot.py", '"""pushplot'], ["/client.sh", "pushplot", "#!/bin/sh"]]) {
    const r = await run("curl", ["-sS", "-m", "10", "-D", "-", "-o", "/dev/null", `${dev.base}${url}`]);
    assert.match(r.stdout, /^HTTP\/1\.1 200/);
    assert.match(r.stdout, /^content-type: text\/plain; charset=utf-8\r$/im);
    const served = readFileSync(path.join(dir, file), "utf8");
    assert.ok(served.startsWith(first), url);
    assert.equal(served, readFileSync(path.join(root, "public", url), "utf8"));
  }
});

test("10,000 observe calls arrive as a few requests, and the chart's count, sum, min and max are the values'", async () => {
  // Quarters in a range that JSON and SQLite spell exactly, so the sums compare with equal.
  const r = await python(`
import json, pushplot
requests = []
post = pushplot.Pushplot._post
def counted(self, path, body, timeout):
    requests.append(len(json.loads(body)) if path.endswith("/ingest") else 0)
    return post(self, path, body, timeout)
pushplot.Pushplot._post = counted
pp = pushplot.Pushplot()
values = [((i * 7919) % 4001) / 4 - 250 for i in range(10000)]
for v in values:
    pp.observe("cl.page.ms", v, site="shop")
pp.close()
print(json.dumps({"requests": requests, "count": len(values), "sum": sum(values), "min": min(values), "max": max(values)}))
`);
  const sent = JSON.parse(r.stdout);
  assert.ok(sent.requests.length >= 1 && sent.requests.length <= 3, `requests: ${sent.requests}`);
  assert.deepEqual(await total("cl.page.ms", "site:shop"), { count: 10000, sum: sent.sum, min: sent.min, max: sent.max });
  assert.equal(r.stderr, "", "silent by default");
});

test("a server that is down: the points are spooled, and a later run delivers them once", async () => {
  const down = `http://127.0.0.1:${await freePort()}`;
  const spool = path.join(dir, "spool-cache");
  const spoolFile = path.join(spool, "pushplot", "spool.jsonl");
  const job = (n, offset) => `
import pushplot
pp = pushplot.Pushplot()
for i in range(${n}):
    pp.observe("cl.spooled", (i + ${offset}) / 4)
    pp.inc("cl.spooled.count")
`;
  await python(job(100, 0), { url: down, spool });
  assert.ok(statSync(spoolFile).size > 0, "the first run spooled its points");
  assert.deepEqual(await total("cl.spooled"), { count: 0, sum: 0 });
  await python(job(50, 100), { spool });
  const want = { count: 150, sum: (149 * 150) / 2 / 4, min: 0, max: 149 / 4 };
  assert.deepEqual(await total("cl.spooled"), want);
  assert.equal((await total("cl.spooled.count")).sum, 150);
  // A third run with nothing to say sends nothing again.
  await python("import pushplot\npushplot.Pushplot().flush()\n", { spool });
  assert.deepEqual(await total("cl.spooled"), want);
  assert.equal(readFileSync(spoolFile, "utf8"), "");
  // The shell client says so in one line and leaves the exit status alone.
  const s = await pushplot(["send", "cl.down", "1"], { url: down });
  assert.equal(s.code, 0);
  assert.equal(s.stderr.trim().split("\n").length, 1, s.stderr);
  assert.match(s.stderr, /^pushplot: send cl\.down: /);
});

test("a server that never answers holds a job no longer than the timeout", async () => {
  const hang = await hangingServer();
  try {
    const timeout = 3;
    // Python: 3 tries of 3 s would take 9 s; the job's exit waits 3 s in all, then spools.
    const spool = path.join(dir, "hang-cache");
    const py = await python(`
import pushplot
pp = pushplot.Pushplot(timeout=${timeout})
for i in range(1000):
    pp.observe("cl.hang", i)
with pp.run("cl.hang.job"):
    pass
`, { url: hang.url, spool });
    assert.ok(py.ms < (timeout + 3.5) * 1000, `python held the job ${py.ms} ms`);
    assert.ok(statSync(path.join(spool, "pushplot", "spool.jsonl")).size > 0);
    // Shell: a start and a finish of 3 s each would take 6 s.
    const sh = await pushplot(["run", "cl.hang.sh", "--", "sh", "-c", "echo done; exit 3"], { url: hang.url, timeout });
    assert.equal(sh.code, 3);
    assert.equal(sh.stdout, "done\n");
    assert.equal(sh.stderr.trim().split("\n").length, 1, sh.stderr);
    assert.ok(sh.ms < (timeout + 2.5) * 1000, `pushplot run held the job ${sh.ms} ms`);
    const send = await pushplot(["send", "cl.hang.sh", "1"], { url: hang.url, timeout });
    assert.equal(send.code, 0);
    assert.ok(send.ms < (timeout + 2.5) * 1000, `pushplot send held the job ${send.ms} ms`);
  } finally {
    hang.close();
  }
});

test("pushplot run passes exit codes 0, 1 and 137 through, and the job's runs show them with durations", async () => {
  const cases = [
    [0, "echo out-0; echo err-0 >&2; sleep 0.2"],
    [1, "echo out-1; echo err-1 >&2; sleep 0.2; exit 1"],
    [137, "echo out-137; kill -9 $$"],
  ];
  for (const [code, script] of cases) {
    const r = await pushplot(["run", "cl.nightly", "--", "sh", "-c", script]);
    assert.equal(r.code, code, r.stderr);
    assert.equal(r.stdout, `out-${code}\n`, "stdout passes through to stdout");
    if (code !== 137) assert.equal(r.stderr, `err-${code}\n`, "stderr to stderr, and nothing from pushplot");
  }
  const job = (await api("GET", "/api/v1/jobs/cl.nightly")).body;
  assert.equal(job.status, "failed");
  const runs = job.runs.slice(0, 3).reverse();
  assert.deepEqual(runs.map((r) => r.exit_code), [0, 1, 137]);
  assert.deepEqual(runs.map((r) => r.status), ["success", "failure", "failure"]);
  for (const [i, r] of runs.entries()) {
    assert.equal(typeof r.duration, "number", "the start paired with its finish");
    assert.ok(r.duration >= 0);
    assert.match(r.message, new RegExp(`^exit code ${cases[i][0]} after \\d+ s\\n`));
    assert.match(r.message, new RegExp(`out-${cases[i][0]}`));
  }
  assert.match(runs[1].message, /err-1/, "the message keeps stderr too");
  // Output in colour, with carriage returns, as progress bars print it: recorded as printed.
  const coloured = await pushplot(["run", "cl.colour", "--", "sh", "-c", "printf '\\033[32mok\\033[0m 50%%\\r100%%\\n'"]);
  assert.equal(coloured.code, 0, coloured.stderr);
  assert.equal(coloured.stderr, "", "nothing from pushplot: the finish was taken");
  const [last] = (await api("GET", "/api/v1/jobs/cl.colour")).body.runs;
  assert.ok(last.message.endsWith("\x1b[32mok\x1b[0m 50%\r100%\n"), JSON.stringify(last.message));
  // The other two commands.
  assert.equal((await pushplot(["ping", "cl.nightly", "start"])).code, 0);
  assert.equal((await pushplot(["ping", "cl.nightly"])).code, 0);
  assert.equal((await api("GET", "/api/v1/jobs/cl.nightly")).body.status, "up");
  const sent = await pushplot(["send", "cl.shell", "2.5", "host=a b", 'q=say "hi"']);
  assert.deepEqual([sent.code, sent.stderr], [0, ""]);
  // A control character cannot stand in JSON as it is: it is sent as "?", not refused.
  const ctrl = await pushplot(["send", "cl.ctrl", "1", "note=a\x1bb"]);
  assert.deepEqual([ctrl.code, ctrl.stderr], [0, ""]);
  assert.equal((await total("cl.ctrl", encodeURIComponent(JSON.stringify({ note: "a?b" })))).count, 1);
  assert.deepEqual(await total("cl.shell", encodeURIComponent(JSON.stringify({ host: "a b", q: 'say "hi"' }))), { count: 1, sum: 2.5, min: 2.5, max: 2.5 });
  // A refused point is one line, not a changed exit status.
  const refused = await pushplot(["send", "blog.users", "1"]);
  assert.equal(refused.code, 0);
  assert.match(refused.stderr, /^pushplot: send blog\.users: HTTP 403 forbidden: .+\n$/);
});

test("the last 10 KB of a run's output are its message", async () => {
  const r = await pushplot(["run", "cl.verbose", "--", "sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done"]);
  assert.equal(r.code, 0);
  const [run] = (await api("GET", "/api/v1/jobs/cl.verbose")).body.runs;
  assert.ok(Buffer.byteLength(run.message) <= 10240, `${Buffer.byteLength(run.message)} bytes`);
  assert.ok(Buffer.byteLength(run.message) > 10000);
  assert.match(run.message, /line-2999\n$/);
  assert.doesNotMatch(run.message, /line-0\n/);
});

test("the Python client under 8 threads loses no increments", async () => {
  // Tiny buckets, a flush at every new point and flushes from the threads themselves, so points
  // are taken while threads add, with threads switched as often as Python can. (Under CPython's
  // GIL a missing lock rarely loses an increment, so this mostly guards the whole path: folding,
  // taking, sending and the server's merge.)
  await python(`
import sys, threading, pushplot
sys.setswitchinterval(1e-6)
pp = pushplot.Pushplot(bucket=0.005, interval=0.05, max_pending=1)
def work():
    for i in range(5000):
        pp.inc("cl.threads")
        if i % 1000 == 999:
            pp.flush()  # in the caller's thread, beside the sender's own
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
`);
  const t = await total("cl.threads");
  assert.deepEqual([t.count, t.sum], [40000, 40000]);
});

test("points the server refuses are dropped, once, and the others of the batch still arrive", async () => {
  const spool = path.join(dir, "refused-cache");
  await python(`
import pushplot
pp = pushplot.Pushplot()
for i in range(10):
    pp.observe("cl.mixed", i)
    pp.observe("blog.other", i)   # outside the key's charts: 403 for the whole batch
    pp.observe("cl.a//b", i)      # not a chart name: 400 naming the point
`, { spool });
  assert.deepEqual(await total("cl.mixed"), { count: 10, sum: 45, min: 0, max: 9 });
  const spoolFile = path.join(spool, "pushplot", "spool.jsonl");
  assert.ok(!existsSync(spoolFile) || readFileSync(spoolFile, "utf8") === "", "nothing refused is kept to be sent again");
});

test("pp.run sends a start, then success, or failure with the exception's summary", async () => {
  await python(`
import time, pushplot
pp = pushplot.Pushplot()
with pp.run("cl.py.job"):
    time.sleep(0.2)
@pp.run("cl.py.job")
def broken():
    raise ValueError("disk full")
try:
    broken()
except ValueError:
    pass
else:
    raise SystemExit("the exception was swallowed")
`);
  const [failed, ok] = (await api("GET", "/api/v1/jobs/cl.py.job")).body.runs;
  assert.deepEqual([ok.status, failed.status], ["success", "failure"]);
  assert.equal(typeof ok.duration, "number");
  assert.equal(typeof failed.duration, "number");
  assert.match(failed.message, /^ValueError: disk full\n/);
  assert.match(ok.message, /^ok after \d+\.\d+ s$/);
});

test("a Python client without a URL does nothing and never raises", async () => {
  const r = await python(`
import pushplot
pp = pushplot.Pushplot()
pp.observe("cl.none", 1)
pp.inc("cl.none", "not a number")
with pp.run("cl.none.job"):
    pass
pp.flush()
print("fine")
`, { env: { PUSHPLOT_URL: "" } });
  assert.equal(r.stdout, "fine\n");
  assert.ok(!existsSync(path.join(dir, "cache", "pushplot", "spool.jsonl")) || readFileSync(path.join(dir, "cache", "pushplot", "spool.jsonl"), "utf8") === "");
});
