// One smoke test through a real `wrangler dev` process, as `npm start` serves it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWranglerDev } from "./helpers.mjs";

const token = "smoke-admin-token";
let dev, base;

before(async () => {
  dev = await startWranglerDev({ adminToken: token, name: "smoke" });
  base = dev.base;
});

after(() => dev?.stop());

test("wrangler dev serves the first curl line, the query and the scheduled handler", async () => {
  const r = await fetch(`${base}/api/v1/ingest`, {
    method: "POST",
    headers: { "X-API-Key": token, "Content-Type": "application/x-www-form-urlencoded" },
    body: '{"chart":"users","value":42}',
  });
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { ok: true, accepted: 1 });
  const q = await fetch(`${base}/api/v1/charts/users`, { headers: { "X-API-Key": token } });
  assert.equal((await q.json()).points[0].value, 42);
  const s = await fetch(`${base}/__scheduled?cron=17+*+*+*+*`);
  assert.equal(s.status, 200);
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /pushplot/);
});
