import { startWorker } from "./helpers.mjs";
const c = await startWorker();
const t = Math.floor(Date.now() / 60000) * 60;
for (let k = 0; k < 3; k++) await c.ingest(Array.from({ length: 500 }, (_, j) => ({ chart: "a", value: j, ts: t - (1500 - k * 500 - j) * 60 })));
console.log("chunks", JSON.stringify((await c.db.prepare("select count(*) n, sum(n) b, min(upto), max(upto) from chunks").all()).results));
for (const [name, body] of [["existing", { chart: "a", value: 1, ts: t - 60 }], ["new", { chart: "a", value: 1, ts: t }], ["new2", { chart: "a", value: 1, ts: t + 60 }], ["newseries", { chart: "b", value: 1 }]]) {
  const r = await c.ingest(body);
  console.log(name, JSON.stringify(r.cost));
}
for (const p of ["/api/v1/charts?spark=48", "/api/v1/charts?spark=48&since=" + (t - 60), "/api/v1/charts/a", "/api/v1/charts/a?from=7d"]) {
  const r = await c.get(p);
  console.log(p, r.status, JSON.stringify(r.cost), r.body.points?.length);
}
await c.dispose();
