// Jobs, alert rules and notifications through a real `wrangler dev`, as `npm start` serves it, with
// curl as a crontab line would call it and a local HTTP receiver standing in for the webhook.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { execFile } from "node:child_process";
import { startWranglerDev, httpApi } from "./helpers.mjs";

const token = "ops-dev-admin-token";
let dev, base, receiver, hookBase;
const got = [];

before(async () => {
  receiver = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      got.push({ path: req.url, body: JSON.parse(body) });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  hookBase = `http://127.0.0.1:${receiver.address().port}`;
  dev = await startWranglerDev({ adminToken: token, name: "ops" });
  base = dev.base;
  api = httpApi(base, token, "ops dev test").call;
});

after(() => {
  dev?.stop();
  receiver?.close();
});

/** curl as a crontab line runs it: -fsS, the body from stdin when given. */
function curl(args, stdin) {
  return new Promise((resolve, reject) => {
    const p = execFile("curl", ["-fsS", "-m", "10", ...args], (err, stdout, stderr) =>
      err ? reject(new Error(`curl ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout),
    );
    if (stdin !== undefined) p.stdin.end(stdin);
  });
}

let api; // httpApi(...).call (helpers.mjs), once the server's address is known

async function received(path, n) {
  const deadline = Date.now() + 10_000;
  while (got.filter((g) => g.path === path).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return got.filter((g) => g.path === path).map((g) => g.body);
}

test("a crontab's curl lines record runs, a failure notifies at once and the next success brings the job up", async () => {
  const key = (await api("POST", "/api/v1/keys", { scope: "ingest", charts: "nightly." })).body.key;
  const channel = await api("POST", "/api/v1/channels", { type: "webhook", url: `${hookBase}/jobs` });
  assert.equal(channel.status, 201);
  assert.equal(await curl([`${base}/ping/nightly.backup/start?key=${key}`]), "OK\n");
  await curl(["--data-binary", "@-", `${base}/ping/nightly.backup/2?key=${key}`], "tar: disk full\n");
  const [failed] = await received("/jobs", 1);
  assert.deepEqual([failed.kind, failed.name, failed.to], ["job", "nightly.backup", "failed"]);
  assert.match(failed.detail, /exit code 2/);
  assert.equal(failed.url, `${base}/#/jobs/nightly.backup`);
  await curl([`${base}/ping/nightly.backup?key=${key}`]);
  const [, up] = await received("/jobs", 2);
  assert.deepEqual([up.from, up.to], ["failed", "up"]);
  const job = (await api("GET", "/api/v1/jobs/nightly.backup")).body;
  assert.equal(job.status, "up");
  assert.deepEqual(job.runs.map((r) => r.exit_code), [null, 2]);
  assert.match(job.runs[1].message, /disk full/);
  assert.ok(job.runs[1].duration >= 0);
  // Outside the key's limit, the same curl line fails loudly.
  await assert.rejects(curl([`${base}/ping/blog.backup?key=${key}`]), /403/);
  // The minutely trigger runs; nothing is due, so nothing changes and nothing more is sent.
  assert.equal((await fetch(`${base}/__scheduled?cron=*+*+*+*+*`)).status, 200);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(got.filter((g) => g.path === "/jobs").length, 2);
  await api("DELETE", `/api/v1/channels/${channel.body.id}`);
});

test("a bad value sent with curl fires its alert rule within seconds", async () => {
  const channel = await api("POST", "/api/v1/channels", { type: "webhook", url: `${hookBase}/alerts` });
  const rule = await api("POST", "/api/v1/alerts", { chart: "disk.free", op: "<", value: 10, name: "disk almost full" });
  assert.equal(rule.status, 201, JSON.stringify(rule.body));
  await curl(["-X", "POST", `${base}/api/v1/ingest`, "-H", `X-API-Key: ${token}`, "-d", '{"chart":"disk.free","value":4.5}']);
  const [event] = await received("/alerts", 1);
  assert.deepEqual([event.kind, event.name, event.to, event.value], ["alert", "disk almost full", "firing", 4.5]);
  const listed = (await api("GET", "/api/v1/alerts")).body.alerts.find((a) => a.id === rule.body.id);
  assert.equal(listed.state, "firing");
  await api("DELETE", `/api/v1/alerts/${rule.body.id}`);
  await api("DELETE", `/api/v1/channels/${channel.body.id}`);
});
