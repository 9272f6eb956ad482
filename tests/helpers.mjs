// Starts the real built wasm in Miniflare with a fresh local D1 made by applying migrations/ in order.
import { Miniflare } from "miniflare";
import { after } from "node:test";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import net from "node:net";
import { fileURLToPath } from "node:url";
import path from "node:path";
import assert from "node:assert/strict";

process.env.WRANGLER_SEND_METRICS = "false";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const ADMIN = "test-admin-token-0123456789";
export const BASE = "http://pushplot.test";

/**
 * The statements of a SQL text, split as wrangler's D1 commands split them (wrangler 4.86,
 * src/d1/splitter.ts), so that a test applies a file exactly as `wrangler d1 migrations apply` will:
 * comments dropped, quoted text kept whole, and a `;` inside BEGIN ... END or CASE ... END (a
 * trigger's body) does not end the statement. Like wrangler's, an END must be written in capitals.
 */
export function splitSql(sql) {
  const chars = [...sql];
  let i = 0;
  // Takes characters up to and including the first one for which keepGoing(taken) is false.
  const take = (keepGoing) => {
    let taken = "";
    while (i < chars.length) {
      taken += chars[i++];
      if (!keepGoing(taken)) break;
    }
    return taken;
  };
  const upTo = (marker) => take((t) => !t.endsWith(marker));
  const statements = [];
  const open = []; // BEGIN and CASE blocks not yet closed by END
  let str = "";
  while (i < chars.length) {
    const c = chars[i++];
    if (open.length && /\sEND[;\s]$/.test(str + c)) open.pop();
    if (c === "'" || c === '"' || c === "`") {
      str += c + upTo(c);
    } else if (c === "$") {
      const quote = "$" + take((t) => t.slice(-1) !== "$" && (/[0-9_]/.test(t.slice(-1)) || t.slice(-1).toLowerCase() !== t.slice(-1).toUpperCase()));
      str += quote;
      if (quote.endsWith("$")) str += upTo(quote);
    } else if (c === "-" && chars[i] === "-") {
      i++;
      upTo("\n");
      str += "\n";
    } else if (c === "/" && chars[i] === "*") {
      i++;
      upTo("*/");
    } else if (c === ";" && open.length === 0) {
      statements.push(str);
      str = "";
    } else {
      str += c;
    }
    if (/\s(BEGIN|CASE)\s$/i.test(str)) open.push(true);
  }
  statements.push(str);
  return statements.map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The statements of schema.sql, the readable current schema. */
export function schemaStatements() {
  return splitSql(readFileSync(path.join(root, "schema.sql"), "utf8"));
}

/**
 * The files of migrations/ in the order wrangler applies them: every *.sql, by the number before
 * the first "_", then by name.
 */
export function migrationFiles() {
  const number = (name) => parseInt(name.split("_")[0]);
  return readdirSync(path.join(root, "migrations"))
    .filter((name) => name.endsWith(".sql"))
    .sort()
    .sort((a, b) => number(a) - number(b));
}

/**
 * Applies migration files to a D1 database as wrangler does: each file is one batch, so one
 * transaction, and a file that fails leaves nothing behind. (wrangler also records each file in the
 * table d1_migrations; a Miniflare database made here is never handed to wrangler, so it does not.)
 */
export async function applyMigrations(db, files = migrationFiles()) {
  for (const file of files) {
    const statements = splitSql(readFileSync(path.join(root, "migrations", file), "utf8"));
    if (statements.length) await db.batch(statements.map((s) => db.prepare(s)));
  }
}

/**
 * `wrangler d1 migrations apply DB --local --persist-to <state>`, as npm start runs it
 * (scripts/migrate), with stdin closed so that it never waits on its confirmation prompt.
 * With `config`, another wrangler.toml (and so another migrations_dir) is used.
 */
export function wranglerMigrate(state, { config } = {}) {
  const args = ["d1", "migrations", "apply", "DB", "--local", "--persist-to", state];
  if (config) args.push("--config", config);
  return wrangler(args);
}

/** Runs the project's wrangler with stdin closed; a failure carries what wrangler printed. */
export function wrangler(args) {
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
  try {
    return execFileSync(path.join(root, "node_modules/.bin/wrangler"), args, {
      cwd: root,
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      // A wrangler that hangs fails the test instead of hanging npm test.
      timeout: 120_000,
    });
  } catch (e) {
    throw new Error(`wrangler ${args.join(" ")} failed:\n${e.stdout ?? ""}${e.stderr ?? ""}`);
  }
}

/**
 * The built Worker in Miniflare with a fresh local D1 made from migrations/. With `listen`, it also
 * serves HTTP on a free loopback port (`await client.mf.ready` is its URL), for tests that need a
 * real connection rather than dispatchFetch.
 */
export async function startWorker({ vars = {}, adminToken = ADMIN, listen = false } = {}) {
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
    ...(listen ? { host: "127.0.0.1", port: 0 } : {}),
  });
  const db = await mf.getD1Database("DB");
  await applyMigrations(db);
  return new Client(mf, db);
}

/** `startWorker` for one test file: every Worker it starts is disposed after the file's tests. */
export function workersForThisFile() {
  const started = [];
  after(() => Promise.all(started.map((c) => c.dispose())));
  return async (opts) => {
    const c = await startWorker(opts);
    started.push(c);
    return c;
  };
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

/**
 * A client of a server that listens (`wrangler dev`): `call` sends a body as JSON (a string as it
 * is) with the key in X-API-Key and answers `{status, body}`, the body parsed as JSON when it is;
 * `newKey` makes a key named after `who`, the test file.
 */
export function httpApi(base, token, who) {
  async function call(method, p, body, key = token) {
    const r = await fetch(base + p, {
      method,
      headers: { "X-API-Key": key, "Content-Type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: r.status, body: json };
  }
  async function newKey(scope, charts) {
    const r = await call("POST", "/api/v1/keys", { scope, charts, name: `${who} ${scope} ${charts || ""}` });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.key;
  }
  return { call, newKey };
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
 * A real `wrangler dev` on a free loopback port with a fresh local D1 (migrations applied by
 * wrangler), as `npm start` serves it. It runs in its own process group, so that stop() also ends
 * the workerd children.
 */
export async function startWranglerDev({ adminToken, name = "dev" }) {
  const env = { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" };
  const state = mkdtempSync(path.join(tmpdir(), `pushplot-${name}-`));
  wranglerMigrate(state);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(
    path.join(root, "node_modules/.bin/wrangler"),
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

/**
 * Stores buckets straight into D1, past the API's checks (points older than the retention):
 * `rows` are [series_id, ts], each a bucket of one point of value 1, packed an hour to a row as
 * the Worker packs them, oldest first so that the chunk_added trigger numbers them in order.
 */
export async function insertBuckets(db, rows) {
  await db
    .prepare(
      `INSERT INTO chunks (series_id, start, newest, n, b)
       SELECT sid, ts / 3600 * 3600 AS hour, MAX(ts), COUNT(*), json_group_object(CAST(ts AS TEXT), json_array(1, 1, 1, 1, 1, ts))
       FROM (SELECT value ->> 0 AS sid, value ->> 1 AS ts FROM json_each(?1))
       GROUP BY sid, hour ORDER BY sid, hour`,
    )
    .bind(JSON.stringify(rows))
    .run();
}
