// The Pushgateway's API: pushes to /metrics/job/... (PUT replaces the group, POST the metrics it
// names, DELETE removes it), each sample also a point of its chart, GET /metrics for Prometheus,
// access by key, and METRICS_TTL. Real clients (prometheus_client, curl, promtool) are in
// prom-dev.test.mjs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { workersForThisFile, ADMIN } from "./helpers.mjs";

const worker = workersForThisFile();

const push = (c, method, path, body, headers = { "X-API-Key": ADMIN }) =>
  c.fetch(`/metrics/${path}`, { method, body, headers });
const scrape = async (c, key = ADMIN) => {
  const r = await c.fetch("/metrics", { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200, String(r.body));
  return r.body;
};
/** The sample lines of an exposition, without comments. */
const samples = (text) => text.split("\n").filter((l) => l && !l.startsWith("#"));

const BACKUP = `# HELP backup_duration_seconds How long the backup took.
# TYPE backup_duration_seconds gauge
backup_duration_seconds 42.5
# TYPE backup_files_total counter
backup_files_total{kind="db"} 12
`;

test("a PUT replaces the group, a POST only the metrics it names, a DELETE the whole group", async () => {
  const c = await worker();
  assert.equal((await push(c, "PUT", "job/backup/instance/db1", BACKUP)).status, 200);
  let s = samples(await scrape(c));
  assert.ok(s.includes('backup_duration_seconds{instance="db1",job="backup"} 42.5'), s.join("\n"));
  assert.ok(s.includes('backup_files_total{instance="db1",job="backup",kind="db"} 12'));
  assert.ok(s.some((l) => l.startsWith('push_time_seconds{instance="db1",job="backup"} ')));
  assert.ok(s.includes('push_failure_time_seconds{instance="db1",job="backup"} 0'));

  assert.equal((await push(c, "POST", "job/backup/instance/db1", "backup_duration_seconds 50\n")).status, 200);
  s = samples(await scrape(c));
  assert.ok(s.includes('backup_duration_seconds{instance="db1",job="backup"} 50'));
  assert.ok(s.includes('backup_files_total{instance="db1",job="backup",kind="db"} 12'), "POST keeps what it does not name");

  assert.equal((await push(c, "PUT", "job/backup/instance/db1", "backup_last_ok 1\n")).status, 200);
  s = samples(await scrape(c));
  assert.ok(s.includes('backup_last_ok{instance="db1",job="backup"} 1'));
  assert.ok(!s.some((l) => l.startsWith("backup_duration_seconds")), "PUT replaces the whole group");

  assert.equal((await push(c, "DELETE", "job/backup/instance/db1")).status, 202);
  s = samples(await scrape(c));
  // Gone, and not back as pushplot_value either: the charts were pushed, not sent as JSON.
  assert.ok(!s.some((l) => l.includes('job="backup"')), s.join("\n"));
  // Deleting nothing is fine, as at the Pushgateway.
  assert.equal((await push(c, "DELETE", "job/backup/instance/db1")).status, 202);
});

test("every pushed sample is also a point of the chart named after it, and keeps its history", async () => {
  const c = await worker();
  await push(c, "PUT", "job/backup/instance/db1", BACKUP);
  await push(c, "PUT", "job/backup/instance/db1", BACKUP.replace("42.5", "47.5"));
  await push(c, "DELETE", "job/backup/instance/db1");
  const q = await c.get("/api/v1/charts/backup_duration_seconds?agg=last");
  assert.equal(q.status, 200);
  assert.deepEqual(q.body.labels, { instance: "db1", job: "backup" });
  const p = q.body.points.at(-1);
  // Both pushes fell into the same minute's bucket: count 2, last 47.5, average 45.
  assert.deepEqual([p.count, p.last, p.sum / p.count], [2, 47.5, 45]);
  const files = await c.get(`/api/v1/charts/backup_files_total?labels=${encodeURIComponent('{"instance":"db1","job":"backup","kind":"db"}')}`);
  assert.equal(files.body.points.at(-1).last, 12);
});

test("grouping values may be base64 in the path, as the Pushgateway takes them, and a sample without instance shows instance=\"\"", async () => {
  const c = await worker();
  // job "backup", path "/var/tmp", and an empty value as "=".
  assert.equal((await push(c, "PUT", "job@base64/YmFja3Vw/path@base64/L3Zhci90bXA/zone@base64/=", "x_bytes 5\n")).status, 200);
  const s = samples(await scrape(c));
  assert.ok(s.includes('x_bytes{instance="",job="backup",path="/var/tmp",zone=""} 5'), s.join("\n"));
  const bad = await push(c, "PUT", "job/backup/instance", "x 1\n");
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "invalid_push_path");
});

test("an inconsistent push is a 400 naming its line and changes nothing", async () => {
  const c = await worker();
  await push(c, "PUT", "job/a", "# TYPE shared gauge\nshared 1\n");
  const before = await scrape(c);
  const charted = (await c.get("/api/v1/charts")).body.charts.length;

  const dup = await push(c, "POST", "job/a", "other 1\nother 2\n");
  assert.equal(dup.status, 400);
  assert.equal(dup.body.error.code, "invalid_exposition");
  assert.match(dup.body.error.message, /^line 2: /);

  // The same metric with another type in another group would break the scrape.
  const retyped = await push(c, "PUT", "job/b", "# TYPE shared counter\nshared 3\n");
  assert.equal(retyped.status, 400);
  assert.match(retyped.body.error.message, /line 2/);

  const stamped = await push(c, "PUT", "job/a", "shared 1 1763800000000\n");
  assert.equal(stamped.status, 400);
  assert.equal(stamped.body.error.code, "timestamp_not_allowed");

  const after = await scrape(c);
  // Only the push times say anything happened: job b, refused at its first push, shows with push
  // time 0 and its failure time, as at the Pushgateway.
  const metricsOnly = (t) => samples(t).filter((l) => !l.startsWith("push_"));
  assert.deepEqual(metricsOnly(after), metricsOnly(before));
  assert.ok(samples(after).includes('push_time_seconds{instance="",job="b"} 0'), after);
  assert.ok(samples(after).some((l) => /^push_failure_time_seconds\{instance="",job="b"\} 1\.\d+e\+09$/.test(l)), after);
  assert.equal((await c.get("/api/v1/charts")).body.charts.length, charted, "no chart was made");
  // As at the Pushgateway, the group's failed change shows in push_failure_time_seconds.
  assert.ok(samples(after).some((l) => /^push_failure_time_seconds\{instance="",job="a"\} 1\.\d+e\+09$/.test(l)), after);
});

test("Go's protobuf pushes get a 415 that says how to switch the client to text", async () => {
  const c = await worker();
  const r = await push(c, "PUT", "job/go", "\x08\x01", {
    "X-API-Key": ADMIN,
    "Content-Type": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
  });
  assert.equal(r.status, 415);
  assert.equal(r.body.error.code, "unsupported_media_type");
  assert.match(r.body.error.message, /TypeTextPlain/);
});

test("a push takes the key as Basic auth password, as a Bearer token or as X-API-Key", async () => {
  const c = await worker();
  const key = await c.newKey("ingest");
  const basic = `Basic ${Buffer.from(`anyone:${key}`).toString("base64")}`;
  assert.equal((await push(c, "PUT", "job/a", "a_value 1\n", { Authorization: basic })).status, 200);
  assert.equal((await push(c, "PUT", "job/b", "b_value 1\n", { Authorization: `Bearer ${key}` })).status, 200);
  assert.equal((await push(c, "PUT", "job/c", "c_value 1\n", { "X-API-Key": key })).status, 200);
  const wrong = `Basic ${Buffer.from("anyone:pp_wrong").toString("base64")}`;
  assert.equal((await push(c, "PUT", "job/d", "d_value 1\n", { Authorization: wrong })).status, 401);
  assert.equal((await push(c, "PUT", "job/e", "e_value 1\n", {})).status, 401);
});

test("a key without the ingest scope, or outside its chart limit, cannot push and changes nothing", async () => {
  const c = await worker();
  await push(c, "PUT", "job/shared", "other_metric 1\n");
  const reader = await c.newKey("read");
  const backup = await c.newKey("ingest", { charts: "backup_" });
  assert.equal((await push(c, "PUT", "job/x", "backup_ok 1\n", { "X-API-Key": reader })).status, 403);
  const outside = await push(c, "PUT", "job/x", "backup_ok 1\nother_metric 2\n", { "X-API-Key": backup });
  assert.equal(outside.status, 403);
  // Replacing or deleting a group holding someone else's metric is refused too.
  assert.equal((await push(c, "PUT", "job/shared", "backup_ok 1\n", { "X-API-Key": backup })).status, 403);
  assert.equal((await push(c, "DELETE", "job/shared", undefined, { "X-API-Key": backup })).status, 403);
  assert.equal((await push(c, "PUT", "job/x", "backup_ok 1\n", { "X-API-Key": backup })).status, 200);
  const s = samples(await scrape(c));
  assert.ok(s.includes('other_metric{instance="",job="shared"} 1'));
  assert.ok(!s.some((l) => l.startsWith("backup_ok") && l.includes("2")));
  assert.equal((await c.get("/api/v1/charts/other_metric")).body.points.at(-1).count, 1, "no point from the refused pushes");
});

test("a scrape shows a limited key only its charts, and series sent as JSON as pushplot_value", async () => {
  const c = await worker();
  await push(c, "PUT", "job/mixed", "backup_ok 1\nother_metric 2\n");
  await push(c, "PUT", "job/other", "other_only 3\n");
  const sent = await c.ingest([{ chart: "backup_sizes", value: 7, labels: { host: "db-1", chart: "x" } }, { chart: "web.users", value: 9 }]);
  assert.equal(sent.status, 200, JSON.stringify(sent.body));
  const all = samples(await scrape(c));
  assert.ok(all.includes('pushplot_value{chart="web.users"} 9'), all.join("\n"));
  // A series label named chart is renamed, as Prometheus renames a clashing label.
  assert.ok(all.includes('pushplot_value{chart="backup_sizes",exported_chart="x",host="db-1"} 7'));
  assert.ok(!all.some((l) => l.startsWith('pushplot_value{chart="backup_ok"')), "pushed metrics show as pushed, not twice");

  const limited = await c.newKey("read", { charts: "backup_" });
  const seen = samples(await scrape(c, limited));
  assert.deepEqual(
    seen.filter((l) => !l.startsWith("push_")).sort(),
    ['backup_ok{instance="",job="mixed"} 1', 'pushplot_value{chart="backup_sizes",exported_chart="x",host="db-1"} 7'],
  );
  assert.ok(!seen.some((l) => l.includes('job="other"')), "a group it sees nothing of stays out, push times too");
  assert.equal((await c.fetch("/metrics", { headers: { Authorization: `Bearer ${await c.newKey("ingest")}` } })).status, 403);
  assert.equal((await c.fetch("/metrics")).status, 401);
});

test("a group not pushed for METRICS_TTL leaves /metrics at the hourly run and its charts stay; 0 keeps it", async () => {
  for (const [ttl, kept] of [["1h", false], ["0", true]]) {
    const c = await worker({ vars: { METRICS_TTL: ttl } });
    await push(c, "PUT", "job/nightly", "nightly_rows 120\n");
    const w = await c.mf.getWorker();
    await w.scheduled({ cron: "17 * * * *", scheduledTime: new Date(Date.now() + 2 * 3600_000) });
    const s = samples(await scrape(c));
    assert.equal(s.some((l) => l.startsWith("nightly_rows")), kept, `METRICS_TTL=${ttl}: ${s.join("\n")}`);
    assert.equal((await c.get("/api/v1/charts/nightly_rows")).body.points.at(-1).last, 120);
  }
});

test("a push reads one row per group and writes one per new sample point and one for the group", async () => {
  const c = await worker();
  await push(c, "PUT", "job/a", BACKUP);
  const again = await push(c, "PUT", "job/a", BACKUP);
  // The group's row, and one bucket row per sample (the same minute's buckets).
  assert.equal(again.cost.written, 3, JSON.stringify(again.cost));
  const s = await c.fetch("/metrics", { headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.match(s.headers.get("server-timing"), /d1;dur=/);
  assert.equal(s.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
});

test("a push that would leave its group unreadable is refused, and no stored group can stop pushes, scrapes or its own delete", async () => {
  const c = await worker();
  await push(c, "PUT", "job/a", '# TYPE x summary\nx{quantile="0.5"} 1\nx_sum 1\nx_count 1\n');
  // An untyped x_count beside the summary x would read back as a second x_count of x.
  const clash = await push(c, "POST", "job/a", 'x_count{k="1"} 2\n');
  assert.equal(clash.status, 400);
  assert.match(clash.body.error.message, /does not read back/);
  // A line under the reader's 4,096 bytes, longer than that with the grouping labels, would not
  // read back either (NaN: not charted, so not held to a chart's ten labels).
  const labels = Array.from({ length: 31 }, (_, i) => `l${i}="${"v".repeat(120)}"`).join(",");
  const long = await push(c, "PUT", `job/${"j".repeat(100)}/instance/${"i".repeat(100)}`, `y{${labels}} NaN\n`);
  assert.equal(long.status, 400, JSON.stringify(long.body));
  assert.match(long.body.error.message, /does not read back/);
  // A group stored before a check existed, as text that no longer reads: written straight in D1.
  await c.db.prepare("INSERT INTO metric_groups (grouping, job, metrics, names, pushed_at) VALUES ('{\"job\":\"bad\"}', 'bad', 'not { an exposition', '[]', ?1)").bind(Date.now() / 1000).run();
  assert.equal((await push(c, "PUT", "job/c", "c_ok 1\n")).status, 200);
  assert.ok(samples(await scrape(c)).includes('c_ok{instance="",job="c"} 1'));
  assert.equal((await push(c, "DELETE", "job/bad")).status, 202);
});

test("a push may not bring the metrics /metrics writes itself", async () => {
  const c = await worker();
  for (const name of ["push_time_seconds", "push_failure_time_seconds", "pushplot_value"]) {
    const r = await push(c, "PUT", "job/a", `${name} 1\n`);
    assert.equal(r.status, 400, name);
    assert.match(r.body.error.message, /^line 1: /);
  }
});

test("a limited key cannot add to someone else's group with a POST, and learns nothing of other groups from Server-Timing", async () => {
  const c = await worker();
  await push(c, "PUT", "job/billing", "billing_runs 1\n");
  const shop = await c.newKey("ingest", { charts: "shop_" });
  const r = await push(c, "POST", "job/billing", "shop_orders 3\n", { "X-API-Key": shop });
  assert.equal(r.status, 403);
  const own = await push(c, "PUT", "job/shop", "shop_orders 3\n", { "X-API-Key": shop });
  assert.equal(own.status, 200);
  assert.equal(own.headers.get("server-timing"), null, "no D1 rows for a limited key");
});

test("concurrent POSTs to one group all land: a push whose group changed under it is made again", async () => {
  const c = await worker();
  await push(c, "PUT", "job/busy", "busy_0 0\n");
  const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => push(c, "POST", "job/busy", `busy_${i + 1} ${i + 1}\n`)));
  assert.deepEqual(rs.map((r) => r.status), Array(12).fill(200), JSON.stringify(rs.map((r) => r.body)));
  const s = samples(await scrape(c));
  for (let i = 0; i <= 12; i++) assert.ok(s.includes(`busy_${i}{instance="",job="busy"} ${i}`), `busy_${i} lost:\n${s.join("\n")}`);
});
