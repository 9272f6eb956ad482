// One smoke test through a real `wrangler dev` process, as `npm start` serves it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import net from "node:net";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
const token = "smoke-admin-token";
let server, base, state;

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

before(async () => {
  state = mkdtempSync(path.join(tmpdir(), "pushplot-smoke-"));
  const wrangler = path.join(root, "node_modules/.bin/wrangler");
  execFileSync(wrangler, ["d1", "execute", "DB", "--local", "--persist-to", state, "--file=schema.sql"], { cwd: root, env, stdio: "ignore" });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Its own process group, so that stopping it also stops the workerd children.
  server = spawn(
    wrangler,
    ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--test-scheduled", "--show-interactive-dev-session=false", "--var", `ADMIN_TOKEN:${token}`],
    { cwd: root, env, detached: true, stdio: "ignore" },
  );
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/api/v1/health`)).ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error("wrangler dev did not answer within 60 s");
    await new Promise((r) => setTimeout(r, 200));
  }
});

after(() => {
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {}
  rmSync(state, { recursive: true, force: true });
});

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
