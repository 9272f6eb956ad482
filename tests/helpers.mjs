// Starts the real built wasm in Miniflare with a fresh local D1 that has schema.sql applied.
import { Miniflare } from "miniflare";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";

process.env.WRANGLER_SEND_METRICS = "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ADMIN = "test-admin-token-0123456789";
export const BASE = "http://pushplot.test";

/** The statements of schema.sql, for D1's batch(): a trigger's body keeps its semicolons. */
export function schemaStatements() {
  const statements = [];
  let current = [];
  let inTrigger = false;
  for (const line of readFileSync(path.join(root, "schema.sql"), "utf8").split("\n")) {
    if (line.trim().startsWith("--") || !line.trim()) continue;
    current.push(line);
    if (/^CREATE TRIGGER/i.test(line.trim())) inTrigger = true;
    const ends = inTrigger ? /^END;\s*$/i.test(line.trim()) : line.trim().endsWith(";");
    if (ends) {
      statements.push(current.join("\n"));
      current = [];
      inTrigger = false;
    }
  }
  return statements;
}

export async function startWorker({ vars = {}, adminToken = ADMIN } = {}) {
  const bindings = { ...vars };
  if (adminToken) bindings.ADMIN_TOKEN = adminToken;
  const mf = new Miniflare({
    modules: true,
    scriptPath: path.join(root, "build/index.js"),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: "2026-04-20",
    d1Databases: { DB: "pushplot-test" },
    d1Persist: false,
    cf: false,
    assets: { directory: path.join(root, "public"), binding: "ASSETS", routerConfig: { has_user_worker: true } },
    bindings,
  });
  const db = await mf.getD1Database("DB");
  await db.batch(schemaStatements().map((s) => db.prepare(s)));
  return new Client(mf, db);
}

export class Client {
  constructor(mf, db) {
    this.mf = mf;
    this.db = db;
  }

  async fetch(p, init = {}) {
    const res = await this.mf.dispatchFetch(BASE + p, init);
    const text = await res.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
    return { status: res.status, headers: res.headers, body, cost: d1Cost(res.headers) };
  }

  /** Sends the body as curl -d would: a form content type, the JSON as it is. */
  ingest(body, key = ADMIN, headers = {}) {
    return this.fetch("/api/v1/ingest", {
      method: "POST",
      headers: { "X-API-Key": key, "Content-Type": "application/x-www-form-urlencoded", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  }

  get(p, key = ADMIN) {
    return this.fetch(p, { headers: key ? { "X-API-Key": key } : {} });
  }

  send(method, p, body, key = ADMIN) {
    return this.fetch(p, {
      method,
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  async newKey(scope, extra = {}) {
    const r = await this.send("POST", "/api/v1/keys", { scope, ...extra });
    if (r.status !== 201) throw new Error(`key not created: ${JSON.stringify(r.body)}`);
    return r.body.key;
  }

  async scheduled(cron = "17 * * * *") {
    const worker = await this.mf.getWorker();
    return worker.scheduled({ cron });
  }

  dispose() {
    return this.mf.dispose();
  }
}

/** Rows read and written, from the Server-Timing header the Worker sets from D1's own meta. */
export function d1Cost(headers) {
  const h = headers.get("Server-Timing");
  if (!h) return null;
  const m = /read=(\d+) written=(\d+)/.exec(h);
  return m ? { read: Number(m[1]), written: Number(m[2]) } : null;
}

export const nowSecs = () => Math.floor(Date.now() / 1000);

export const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/**
 * A real `wrangler dev` on a free loopback port with a fresh local D1 (schema.sql applied), as
 * `npm start` serves it. It runs in its own process group, so that stop() also ends the workerd
 * children.
 */
export async function startWranglerDev({ adminToken, name = "dev" }) {
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
  const state = mkdtempSync(path.join(tmpdir(), `pushplot-${name}-`));
  const wrangler = path.join(root, "node_modules/.bin/wrangler");
  execFileSync(wrangler, ["d1", "execute", "DB", "--local", "--persist-to", state, "--file=schema.sql"], { cwd: root, env, stdio: "ignore" });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(
    wrangler,
    ["dev", "--local", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", state, "--test-scheduled",
      "--show-interactive-dev-session=false", "--var", `ADMIN_TOKEN:${adminToken}`],
    { cwd: root, env, detached: true, stdio: "ignore" },
  );
  const stop = () => {
    try {
      process.kill(-server.pid, "SIGTERM");
    } catch {}
    rmSync(state, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/api/v1/health`)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      stop();
      throw new Error("wrangler dev did not answer within 60 s");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { base, stop };
}
