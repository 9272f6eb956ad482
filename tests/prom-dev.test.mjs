// The Pushgateway API through a real `wrangler dev`, driven by what Prometheus users already run:
// the real prometheus_client from PyPI (push_to_gateway, pushadd_to_gateway, delete_from_gateway
// with basic_auth_handler, tests/fixtures/prom_client.py), a job script's curl of a heredoc, and
// promtool on the scrape. scripts/setup installs the client (.venv-prom) and promtool.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { root, startWranglerDev, httpApi } from "./helpers.mjs";

const token = "prom-dev-admin-token";
const python = path.join(root, ".venv-prom/bin/python");
const fixture = path.join(root, "tests/fixtures/prom_client.py");
let dev, api, ingestKey, readKey;

before(async () => {
  assert.ok(existsSync(python), `${python} is missing: run bash scripts/setup`);
  dev = await startWranglerDev({ adminToken: token, name: "prom" });
  ({ call: api } = httpApi(dev.base, token, "prom dev test"));
  ingestKey = (await api("POST", "/api/v1/keys", { scope: "ingest", name: "prom dev ingest" })).body.key;
  readKey = (await api("POST", "/api/v1/keys", { scope: "read", name: "prom dev scrape" })).body.key;
});

after(() => dev?.stop());

/** Runs a program; answers its exit code and output, never throws. */
function run(file, args, { stdin, env = {} } = {}) {
  return new Promise((resolve) => {
    const p = execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code : 0, stdout, stderr }),
    );
    p.stdin.end(stdin ?? "");
  });
}

/**
 * prometheus_client pushes as a job would (see the fixture): the body it sent, its samples, and the
 * HTTP error if any. The metrics are named after the job (`job_queue_depth`...), so that each test
 * has series no other group holds.
 */
async function client(action, job, { instance = "worker-1", key = ingestKey } = {}) {
  const r = await run(python, [fixture, dev.base, key, action, job, instance, `${job}_`]);
  assert.equal(r.code, 0, `prom_client.py ${action} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** GET /metrics as Prometheus sends it (Bearer), read with prometheus_client's own parser. */
async function scrape(key = readKey) {
  const res = await fetch(`${dev.base}/metrics`, { headers: { Authorization: `Bearer ${key}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get("content-type"), /^text\/plain; version=0\.0\.4/);
  const parsed = await run(python, [fixture, "parse"], { stdin: text });
  assert.equal(parsed.code, 0, `prometheus_client could not parse /metrics:\n${parsed.stderr}\n${text}`);
  return { text, samples: JSON.parse(parsed.stdout) };
}

/** The samples of a scrape with this name and exactly these labels. */
const find = (samples, name, labels) =>
  samples.filter((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort()));

/** The one value of a series in a scrape; fails when it is missing or there twice. */
function valueOf(samples, name, labels) {
  const hits = find(samples, name, labels);
  assert.equal(hits.length, 1, `${name} ${JSON.stringify(labels)} should be in /metrics once, found ${hits.length}`);
  return hits[0].value;
}

/** A chart's series over the last 2 hours, as the API answers it (status and body). */
async function chart(name, labels) {
  return api("GET", `/api/v1/charts/${encodeURIComponent(name)}?from=2h&labels=${encodeURIComponent(JSON.stringify(labels))}`);
}

/** The newest value of a chart's series and how many points it holds. */
async function charted(name, labels) {
  const r = await chart(name, labels);
  assert.equal(r.status, 200, `${name} ${JSON.stringify(labels)}: ${JSON.stringify(r.body)}`);
  const points = r.body.points;
  return { last: points.at(-1).last, count: points.reduce((n, p) => n + p.count, 0) };
}

/** Every sample the client sent shows in the scrape with the grouping labels added and the same value. */
function assertScraped(samples, sent, grouping) {
  for (const s of sent) {
    assert.deepEqual(valueOf(samples, s.name, { ...s.labels, ...grouping }), s.value, `${s.name} ${JSON.stringify(s.labels)}`);
  }
}

/** The series of a group in a scrape: every sample carrying its job label. */
const ofJob = (samples, job) => samples.filter((s) => s.labels.job === job).map((s) => `${s.name}${JSON.stringify(s.labels)} ${s.value}`);

/** curl as a job script runs it, the body from stdin. */
const curl = (args, stdin) => run("curl", ["-sS", "-m", "10", ...args], { stdin });

test("push_to_gateway with Basic auth: a counter, a gauge, a histogram and a summary read back from /metrics and chart as points", async () => {
  const group = { job: "push", instance: "worker-1" };
  const before = Date.now() / 1000;
  const pushed = await client("push", group.job);
  const after = Date.now() / 1000;
  assert.equal(pushed.error, null, JSON.stringify(pushed.error));
  // The registry really holds all four kinds (and client_python's _created gauges).
  assert.deepEqual([...new Set(pushed.sent.map((s) => s.type))].sort(), ["counter", "gauge", "histogram", "summary"]);
  const { samples } = await scrape();
  assertScraped(samples, pushed.sent, group);
  const pushTime = valueOf(samples, "push_time_seconds", group);
  assert.ok(pushTime >= before - 1 && pushTime <= after + 1, `push_time_seconds ${pushTime} not in [${before}, ${after}]`);
  assert.equal(valueOf(samples, "push_failure_time_seconds", group), 0);
  // The families keep the types the client gave them.
  const typeOf = (name) => samples.find((s) => s.name === name && s.labels.job === group.job)?.type;
  assert.deepEqual(
    ["push_jobs_processed_total", "push_queue_depth", "push_job_duration_seconds_count", "push_payload_bytes_sum"].map(typeOf),
    ["counter", "gauge", "histogram", "summary"],
  );
  // Every sample is a point of the chart named after it, with the grouping labels.
  assert.equal((await charted("push_queue_depth", group)).last, 17.5);
  assert.equal((await charted("push_jobs_processed_total", { ...group, result: "ok" })).last, 41);
  assert.equal((await charted("push_jobs_processed_total", { ...group, result: "failed" })).last, 1);
  assert.equal((await charted("push_job_duration_seconds_count", group)).last, 4);
  assert.equal((await charted("push_job_duration_seconds_sum", group)).last, 5);
  assert.equal((await charted("push_job_duration_seconds_bucket", { ...group, le: "1.0" })).last, 2);
  assert.equal((await charted("push_job_duration_seconds_bucket", { ...group, le: "+Inf" })).last, 4);
  assert.equal((await charted("push_payload_bytes_count", group)).last, 2);
  assert.equal((await charted("push_payload_bytes_sum", group)).last, 1536);
  // client_python's _created gauges stay in /metrics but are not charted.
  assert.equal((await chart("push_jobs_processed_created", { ...group, result: "ok" })).status, 404);
});

test("a pushed histogram and summary show in /metrics as themselves only, not again as pushplot_value", async () => {
  const group = { job: "twice", instance: "worker-1" };
  assert.equal((await client("push", group.job)).error, null);
  const { samples } = await scrape();
  assert.equal(valueOf(samples, "twice_job_duration_seconds_count", group), 4);
  const repeated = samples.filter((s) => s.name === "pushplot_value" && s.labels.job === group.job);
  assert.deepEqual(repeated.map((s) => s.labels.chart), [], "pushed samples must not come back as series sent as JSON");
});

test("pushadd_to_gateway replaces only the metrics it names and keeps the rest of the group", async () => {
  const group = { job: "pushadd", instance: "worker-1" };
  const first = await client("push", group.job);
  const added = await client("pushadd", group.job);
  assert.equal(added.error, null, JSON.stringify(added.error));
  const { samples } = await scrape();
  assertScraped(samples, added.sent, group);
  assert.equal(valueOf(samples, "pushadd_queue_depth", group), 3);
  assert.equal(valueOf(samples, "pushadd_last_success_unixtime", group), 1700000000);
  // What the POST did not name is there as the first push left it.
  assertScraped(samples, first.sent.filter((s) => s.name !== "pushadd_queue_depth"), group);
  assert.deepEqual(await charted("pushadd_queue_depth", group), { last: 3, count: 2 }, "both pushes are points of the chart");
  // (pushadd_last_success_unixtime, 1.7e9, is past the default MAX_VALUE of 1e9: not charted.)
});

test("push_to_gateway replaces the whole group: metrics it does not name leave /metrics, their charts keep their points", async () => {
  const group = { job: "replace", instance: "worker-1" };
  assert.equal((await client("push", group.job)).error, null);
  const replaced = await client("replace", group.job);
  assert.equal(replaced.error, null, JSON.stringify(replaced.error));
  const { samples } = await scrape();
  assert.equal(valueOf(samples, "replace_queue_depth", group), 9);
  for (const gone of ["replace_jobs_processed_total", "replace_job_duration_seconds_count", "replace_payload_bytes_sum"]) {
    assert.equal(samples.filter((s) => s.name === gone && s.labels.job === group.job).length, 0, gone);
  }
  assert.equal((await charted("replace_jobs_processed_total", { ...group, result: "ok" })).last, 41);
  assert.equal((await charted("replace_job_duration_seconds_sum", group)).last, 5);
  assert.deepEqual(await charted("replace_queue_depth", group), { last: 9, count: 2 });
  // Nothing of what was replaced stays in the scrape under any name: the group is its last push.
  assert.deepEqual(ofJob(samples, group.job).map((s) => s.split("{")[0]).sort(), ["push_failure_time_seconds", "push_time_seconds", "replace_queue_depth"]);
});

test("delete_from_gateway removes the group from /metrics, push times too, and its charts keep their history", async () => {
  const group = { job: "delete", instance: "worker-1" };
  assert.equal((await client("push", group.job)).error, null);
  assert.equal(valueOf((await scrape()).samples, "delete_queue_depth", group), 17.5);
  const deleted = await client("delete", group.job);
  assert.equal(deleted.error, null, JSON.stringify(deleted.error));
  const { samples } = await scrape();
  for (const name of ["delete_queue_depth", "delete_jobs_processed_total", "push_time_seconds", "push_failure_time_seconds"]) {
    assert.equal(samples.filter((s) => s.name === name && s.labels.job === group.job).length, 0, name);
  }
  assert.equal((await charted("delete_queue_depth", group)).last, 17.5);
  assert.equal((await charted("delete_payload_bytes_sum", group)).last, 1536);
  // Deleting it again is a success, as with the Pushgateway.
  assert.equal((await client("delete", group.job)).error, null);
  // Nothing of the group stays in the scrape under any name.
  assert.deepEqual(ofJob(samples, group.job), []);
});

test("push_to_gateway with compression=\"gzip\" is refused with a 415 that says to send it uncompressed, and changes nothing", async () => {
  const group = { job: "gzip", instance: "worker-1" };
  const pushed = await client("gzip", group.job);
  assert.equal(pushed.error?.status, 415, JSON.stringify(pushed));
  assert.match(JSON.stringify(pushed.error), /compression=None/);
  const { samples } = await scrape();
  assert.equal(find(samples, "gzip_queue_depth", group).length, 0);
});

test("a push of an empty registry keeps its group alive in /metrics with a new push_time_seconds, as at the Pushgateway", async () => {
  const group = { job: "empty", instance: "worker-1" };
  assert.equal((await client("replace", group.job)).error, null);
  const before = Date.now() / 1000;
  const emptied = await client("empty", group.job);
  assert.deepEqual([emptied.error, emptied.body], [null, ""]);
  const { samples } = await scrape();
  assert.equal(find(samples, "empty_queue_depth", group).length, 0, "PUT replaced the group with nothing");
  assert.ok(valueOf(samples, "push_time_seconds", group) >= before - 1);
  assert.equal(valueOf(samples, "push_failure_time_seconds", group), 0);
});

test("a job whose first push is refused shows in /metrics with push_failure_time_seconds set and push_time_seconds 0, as at the Pushgateway", async () => {
  const group = { job: "never_ok", instance: "worker-1" };
  const before = Date.now() / 1000;
  const r = await client("stamped", group.job);
  assert.equal(r.error?.status, 400, JSON.stringify(r));
  const { samples } = await scrape();
  assert.equal(find(samples, "never_ok_stamped", group).length, 0);
  assert.ok(valueOf(samples, "push_failure_time_seconds", group) >= before - 1);
  assert.equal(valueOf(samples, "push_time_seconds", group), 0);
});

test("a job script's heredoc piped to curl --data-binary @- shows in /metrics and in its chart", async () => {
  const script = `cat <<EOF | curl -fsS -m 10 --data-binary @- -H "X-API-Key: $KEY" "$URL/metrics/job/backup/instance/db1"
# HELP backup_duration_seconds How long the nightly backup took.
# TYPE backup_duration_seconds gauge
backup_duration_seconds 42.5
# HELP backup_size_bytes Size of the nightly backup.
# TYPE backup_size_bytes gauge
backup_size_bytes{kind="full"} 7.5e+08
EOF
`;
  const r = await run("sh", ["-c", script], { env: { KEY: ingestKey, URL: dev.base } });
  assert.deepEqual([r.code, r.stdout, r.stderr], [0, "", ""]);
  const group = { job: "backup", instance: "db1" };
  const { text, samples } = await scrape();
  assert.equal(valueOf(samples, "backup_duration_seconds", group), 42.5);
  assert.equal(valueOf(samples, "backup_size_bytes", { ...group, kind: "full" }), 7.5e8);
  assert.match(text, /^# HELP backup_duration_seconds How long the nightly backup took\.\n# TYPE backup_duration_seconds gauge\n/m);
  assert.equal((await charted("backup_duration_seconds", group)).last, 42.5);
  assert.equal((await charted("backup_size_bytes", { ...group, kind: "full" })).last, 7.5e8);
});

test("promtool check metrics passes on /metrics holding all four types from two groups and a series sent as JSON", async () => {
  for (const instance of ["worker-1", "worker-2"]) assert.equal((await client("push", "lint", { instance })).error, null);
  const json = await api("POST", "/api/v1/ingest", { chart: "web.users", value: 5, labels: { host: "a" } });
  assert.equal(json.status, 200, JSON.stringify(json.body));
  const { text, samples } = await scrape();
  // The scrape really holds what promtool is meant to see.
  assert.equal(valueOf(samples, "pushplot_value", { chart: "web.users", host: "a" }), 5);
  for (const instance of ["worker-1", "worker-2"]) {
    for (const name of ["lint_jobs_processed_total", "lint_queue_depth", "lint_job_duration_seconds_count", "lint_payload_bytes_count"]) {
      assert.equal(find(samples, name, { job: "lint", instance, ...(name.includes("processed") ? { result: "ok" } : {}) }).length, 1, name);
    }
  }
  const lint = await run("promtool", ["check", "metrics"], { stdin: text });
  assert.equal(lint.code, 0, `promtool check metrics:\n${lint.stdout}${lint.stderr}`);
  assert.equal(lint.stdout + lint.stderr, "");
});

test("a key limited to some charts: a push naming a metric outside its limit is 403 and changes nothing, and its scrape shows only its charts", async () => {
  const limitedIngest = (await api("POST", "/api/v1/keys", { scope: "ingest", charts: "lim_", name: "prom dev lim_ ingest" })).body.key;
  const limitedRead = (await api("POST", "/api/v1/keys", { scope: "read", charts: "lim_", name: "prom dev lim_ read" })).body.key;
  const push = (method, job, body, key = limitedIngest) =>
    curl(["-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--data-binary", "@-", "-H", `X-API-Key: ${key}`, `${dev.base}/metrics/job/${job}`], body);
  assert.equal((await push("PUT", "lim", "# TYPE lim_runs_total counter\nlim_runs_total 1\n")).stdout, "200");
  // A group with a metric the limited key may not write, pushed by the admin.
  assert.equal((await push("PUT", "mixed", "lim_mixed 1\nsecret_metric 7\n", token)).stdout, "200");
  assert.equal((await api("POST", "/api/v1/ingest", [{ chart: "lim_json", value: 2 }, { chart: "other_json", value: 3 }])).status, 200);
  const before = (await scrape()).samples;

  assert.equal((await push("PUT", "lim", "# TYPE lim_runs_total counter\nlim_runs_total 2\nother_metric 9\n")).stdout, "403");
  assert.equal((await push("POST", "lim", "other_metric 9\n")).stdout, "403");
  // Replacing or deleting a group holding another's metric would remove it: refused too.
  assert.equal((await push("PUT", "mixed", "lim_mixed 2\n")).stdout, "403");
  assert.equal((await push("DELETE", "mixed", "")).stdout, "403");
  const after = (await scrape()).samples;
  assert.deepEqual(after, before, "the refused pushes changed nothing in /metrics");
  assert.equal((await chart("other_metric", { job: "lim" })).status, 404);
  assert.deepEqual(await charted("lim_runs_total", { job: "lim" }), { last: 1, count: 1 });
  assert.deepEqual(await charted("lim_mixed", { job: "mixed" }), { last: 1, count: 1 });

  // Its scrape: only lim_ metrics, the push times of groups it sees something of, lim_ JSON series.
  const seen = (await scrape(limitedRead)).samples;
  const names = [...new Set(seen.map((s) => s.name))].sort();
  assert.deepEqual(names, ["lim_mixed", "lim_runs_total", "push_failure_time_seconds", "push_time_seconds", "pushplot_value"]);
  assert.deepEqual([...new Set(seen.filter((s) => s.name === "push_time_seconds").map((s) => s.labels.job))].sort(), ["lim", "mixed"]);
  assert.deepEqual(seen.filter((s) => s.name === "pushplot_value").map((s) => s.labels.chart), ["lim_json"]);
  assert.equal(valueOf(seen, "lim_runs_total", { job: "lim", instance: "" }), 1);
});

test("a key limited to one chart cannot push a histogram of that name, whose _bucket, _sum and _count are other charts", async () => {
  const one = (await api("POST", "/api/v1/keys", { scope: "ingest", chart: "one_latency_seconds", name: "prom dev one chart" })).body.key;
  const body = '# TYPE one_latency_seconds histogram\none_latency_seconds_bucket{le="1"} 1\none_latency_seconds_bucket{le="+Inf"} 2\none_latency_seconds_sum 3\none_latency_seconds_count 2\n';
  const r = await curl(["-o", "/dev/null", "-w", "%{http_code}", "--data-binary", "@-", "-H", `X-API-Key: ${one}`, `${dev.base}/metrics/job/one`], body);
  assert.equal(r.stdout, "403");
  assert.equal((await chart("one_latency_seconds_sum", { job: "one" })).status, 404);
});

test("a sample with its own timestamp, as a custom collector sends it, is 400 naming the line and leaves the group as it was", async () => {
  const group = { job: "stamped", instance: "worker-1" };
  assert.equal((await client("replace", group.job)).error, null);
  const pushedAt = valueOf((await scrape()).samples, "push_time_seconds", group);
  const before = Date.now() / 1000;
  const r = await client("stamped", group.job);
  assert.equal(r.error?.status, 400, JSON.stringify(r));
  const line = r.body.split("\n").findIndex((l) => /^stamped_stamped \S+ \d+$/.test(l)) + 1;
  assert.ok(line > 0, r.body);
  const body = JSON.parse(r.error.body);
  assert.equal(body.error.code, "timestamp_not_allowed");
  assert.match(body.error.message, new RegExp(`^line ${line}: `));
  const { samples } = await scrape();
  assert.equal(valueOf(samples, "stamped_queue_depth", group), 9);
  assert.equal(find(samples, "stamped_stamped", group).length, 0);
  assert.equal((await chart("stamped_stamped", group)).status, 404);
  // As the Pushgateway: the group's last success stays, and the failure shows.
  assert.equal(valueOf(samples, "push_time_seconds", group), pushedAt);
  assert.ok(valueOf(samples, "push_failure_time_seconds", group) >= before - 1);
});

test("a push in Go's default protobuf format is 415 and says how to switch the client to text", async () => {
  const r = await fetch(`${dev.base}/metrics/job/go_job`, {
    method: "PUT",
    headers: { "X-API-Key": ingestKey, "Content-Type": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" },
    body: Buffer.from([0x0c, 0x0a, 0x05, 0x67, 0x6f, 0x5f, 0x75, 0x70, 0x18, 0x01, 0x22, 0x00]),
  });
  assert.equal(r.status, 415);
  const body = await r.json();
  assert.match(body.error.message, /text format/);
  assert.match(body.error.message, /expfmt\.TypeTextPlain/);
  const { samples } = await scrape();
  assert.deepEqual(ofJob(samples, "go_job"), []);
});

test("a scrape needs a key: none is 401, and an ingest key's Bearer is refused", async () => {
  assert.equal((await fetch(`${dev.base}/metrics`)).status, 401);
  assert.equal((await fetch(`${dev.base}/metrics`, { headers: { Authorization: `Bearer ${ingestKey}` } })).status, 403);
  assert.equal((await fetch(`${dev.base}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).status, 200);
});
