// Schema changes: migrations/ leads to exactly the schema that schema.sql shows, and a database that
// already holds data keeps all of it when the later migrations reach it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { applyMigrations, migrationFiles, root, schemaStatements, splitSql, wrangler, wranglerMigrate } from "./helpers.mjs";

/** An empty Worker with D1 databases: in memory, or the local D1 that wrangler keeps under `state`. */
function d1Only(databases, state) {
  return new Miniflare({
    modules: true,
    script: "export default {}",
    d1Databases: databases,
    d1Persist: state ? path.join(state, "v3", "d1") : false,
    cf: false,
  });
}

/** The D1 id wrangler gives the local database, so that Miniflare opens the same file. */
function localDatabaseId() {
  const toml = readFileSync(path.join(root, "wrangler.toml"), "utf8");
  const id = /^preview_database_id\s*=\s*"([^"]+)"/m.exec(toml) ?? /^database_id\s*=\s*"([^"]+)"/m.exec(toml);
  return id[1];
}

/**
 * A directory with a wrangler.toml for the same local database that knows only `files` of
 * migrations/, so that wrangler brings a database to that point and no further.
 */
function knowingOnly(files) {
  const dir = mkdtempSync(path.join(tmpdir(), "pushplot-migrations-"));
  mkdirSync(path.join(dir, "migrations"));
  for (const f of files) copyFileSync(path.join(root, "migrations", f), path.join(dir, "migrations", f));
  writeFileSync(
    path.join(dir, "wrangler.toml"),
    `name = "pushplot"\ncompatibility_date = "2026-04-20"\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "pushplot"\n` +
      `database_id = "${localDatabaseId()}"\nmigrations_dir = "migrations"\n`,
  );
  return dir;
}

/** SQL text as a comparable value: comments dropped, whitespace collapsed. */
function normalizeSql(sql) {
  return splitSql(sql)
    .join("; ")
    .replace(/\s+/g, " ")
    .replace(/\s*([(),;])\s*/g, "$1")
    .replace(/([),;])(?=\w)/g, "$1 ")
    .replace(/,/g, ", ")
    .trim();
}

/**
 * A CREATE TABLE as its parts: the column definitions in order, the table constraints in any order,
 * and what follows the parentheses (WITHOUT ROWID, STRICT). ALTER TABLE ADD COLUMN appends its
 * column definition after the table constraints, so the raw text is no use; the parts are, and they
 * hold what the pragmas do not show (CHECK, COLLATE, REFERENCES). Case does not matter.
 */
function tableParts(sql) {
  const text = normalizeSql(sql);
  const items = [];
  let depth = 0;
  let quote = null;
  let item = "";
  let rest = null;
  for (const c of text) {
    if (rest !== null) {
      rest += c;
      continue;
    }
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"' || c === "`") {
      quote = c;
    } else if (c === "(") {
      if (depth++ === 0) continue;
    } else if (c === ")") {
      if (--depth === 0) {
        items.push(item);
        rest = "";
        continue;
      }
    } else if (c === "," && depth === 1) {
      items.push(item);
      item = "";
      continue;
    }
    if (depth > 0) item += c;
  }
  const isConstraint = (i) => /^(CONSTRAINT|PRIMARY KEY|UNIQUE|CHECK|FOREIGN KEY)\b/i.test(i);
  return {
    column_definitions: items.filter((i) => !isConstraint(i)).map((i) => i.toLowerCase()),
    table_constraints: items.filter(isConstraint).map((i) => i.toLowerCase()).sort(),
    options: rest.trim().toLowerCase(),
  };
}

/**
 * A D1 database's schema as data: every table, index, trigger and view of the application (not
 * wrangler's d1_migrations, D1's _cf_* or SQLite's own), tables by their columns, constraints and
 * indexes rather than by their CREATE text, which ALTER TABLE ADD COLUMN rewrites.
 */
async function describeSchema(db) {
  const rows = async (sql, ...params) => (await db.prepare(sql).bind(...params).all()).results;
  const ours = (name) => !/^(sqlite_|_cf_)/i.test(name) && name !== "d1_migrations";
  const schema = {};
  for (const o of await rows("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")) {
    if (!ours(o.name)) continue;
    if (o.type !== "table") {
      const sql = normalizeSql(o.sql);
      schema[`${o.type} ${o.name}`] = { on: o.tbl_name, sql, ...(o.type === "index" && { where: /\bWHERE\b(.*)$/i.exec(sql)?.[1].trim() ?? null }) };
      continue;
    }
    const [shape] = await rows("SELECT wr AS without_rowid, strict FROM pragma_table_list WHERE schema = 'main' AND name = ?", o.name);
    const indexes = {};
    for (const index of await rows("SELECT name, \"unique\", origin, partial FROM pragma_index_list(?) ORDER BY name", o.name)) {
      indexes[index.name] = {
        ...index,
        columns: await rows("SELECT name, \"desc\", coll, key FROM pragma_index_xinfo(?) ORDER BY seqno", index.name),
      };
    }
    schema[`table ${o.name}`] = {
      ...tableParts(o.sql),
      ...shape,
      columns: await rows("SELECT name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid", o.name),
      indexes,
      foreign_keys: await rows("SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", o.name),
    };
  }
  return schema;
}

/** What schema.sql makes of an empty database (worked out once per run). */
let fromSchemaSql;
function schemaFromSchemaSql() {
  fromSchemaSql ??= (async () => {
    const mf = d1Only({ DB: "from-schema-sql" });
    try {
      const db = await mf.getD1Database("DB");
      await db.batch(schemaStatements().map((s) => db.prepare(s)));
      return await describeSchema(db);
    } finally {
      await mf.dispose();
    }
  })();
  return fromSchemaSql;
}

const driftHint =
  "migrations/ and schema.sql disagree: a schema change needs both a new migrations/NNNN_name.sql and the same " +
  "change in schema.sql (a column that ALTER TABLE adds comes last in its table, so put it last there too)";

/** Every row of every table the first migration made, in a stable order. */
async function snapshot(db, tables) {
  const out = {};
  for (const t of tables) {
    const columns = (await db.prepare("SELECT name FROM pragma_table_info(?)").bind(t).all()).results.length;
    const order = Array.from({ length: columns }, (_, i) => i + 1).join(", ");
    out[t] = (await db.prepare(`SELECT * FROM ${t} ORDER BY ${order}`).all()).results;
  }
  return out;
}

test("applying every migration gives exactly the schema in schema.sql", async () => {
  const expected = await schemaFromSchemaSql();
  assert.ok(expected["table series"] && expected["trigger chunk_added"], "schema.sql should make the series table and the chunks' trigger");
  const mf = d1Only({ DB: "from-migrations" });
  try {
    const db = await mf.getD1Database("DB");
    await applyMigrations(db);
    assert.deepEqual(await describeSchema(db), expected, driftHint);
  } finally {
    await mf.dispose();
  }
});

test("a database with data at the first migration keeps all of it when wrangler applies the later ones", async () => {
  const [first, ...later] = migrationFiles();
  const state = mkdtempSync(path.join(tmpdir(), "pushplot-migrate-"));
  // A wrangler.toml that knows only the first migration, for the same local database.
  const early = knowingOnly([first]);
  const tables = ["series", "charts", "buckets", "api_keys"];
  // Migration 0007 packs the buckets an hour to a row and drops series.n_buckets with them.
  const dropped = { buckets: true };
  try {
    wranglerMigrate(state, { config: path.join(early, "wrangler.toml") });

    let mf = d1Only({ DB: localDatabaseId() }, state);
    let before;
    try {
      const db = await mf.getD1Database("DB");
      await db.batch(
        [
          "INSERT INTO series (id, chart, labels, cap, created_at) VALUES (1, 'users', '{}', 1000, 1763800000)",
          `INSERT INTO series (id, chart, labels, cap, created_at) VALUES (2, 'cpu', '{"host":"prod1"}', 2, 1763800001)`,
          "INSERT INTO charts (name, bucket_seconds, public, updated_at) VALUES ('cpu', 300, 1, 1763800002)",
          "INSERT INTO buckets (series_id, ts, count, sum, min, max, last, last_ts) VALUES (1, 1763799960, 2, 84, 42, 42, 42, 1763800000.5)",
          // An hour earlier, so that the move numbers a series' rows in time order.
          "INSERT INTO buckets (series_id, ts, count, sum, min, max, last, last_ts) VALUES (1, 1763796000, 1, 7, 7, 7, 7, 1763796001)",
          "INSERT INTO buckets (series_id, ts, count, sum, min, max, last, last_ts) VALUES (2, 1763799900, 1, 0.5, 0.5, 0.5, 0.5, 1763799901)",
          "INSERT INTO buckets (series_id, ts, count, sum, min, max, last, last_ts) VALUES (2, 1763800200, 3, 2.25, 0.25, 1, 1, 1763800201.25)",
          "INSERT INTO api_keys (id, hash, scope, prefix, exact, name, created_at) VALUES ('k1', 'h1', 'ingest', 'cpu', 1, 'cron job', 1763800003)",
          "INSERT INTO api_keys (id, hash, scope, prefix, exact, name, created_at) VALUES ('k2', 'h2', 'read', NULL, 0, '', 1763800004)",
        ].map((s) => db.prepare(s)),
      );
      before = await snapshot(db, tables);
    } finally {
      await mf.dispose();
    }
    for (const t of tables) assert.ok(before[t].length > 0, `the test should put rows in ${t}`);

    const out = wranglerMigrate(state);
    for (const file of later) assert.match(out, new RegExp(`${file.replace(/\./g, "\\.")}\\s*│\\s*✅`), `wrangler should apply ${file}`);

    mf = d1Only({ DB: localDatabaseId() }, state);
    try {
      const db = await mf.getD1Database("DB");
      const applied = (await db.prepare("SELECT name FROM d1_migrations ORDER BY id").all()).results.map((r) => r.name);
      assert.deepEqual(applied, [first, ...later], "d1_migrations should list every file once, in order");
      for (const t of tables.filter((t) => !dropped[t])) {
        const columns = (await db.prepare("SELECT name, dflt_value FROM pragma_table_info(?)").bind(t).all()).results;
        const added = columns.filter((c) => !(c.name in before[t][0]));
        const kept = (k) => columns.some((c) => c.name === k);
        const rows = (await snapshot(db, [t]))[t];
        assert.equal(rows.length, before[t].length, `${t} should keep every row`);
        for (const old of before[t]) {
          const now = rows.find((r) => Object.keys(old).filter(kept).every((k) => Object.is(r[k], old[k])));
          assert.ok(now, `${t} should still hold ${JSON.stringify(old)}`);
          // A column a later migration added reads as its declared default in rows that were there.
          for (const c of added) {
            const dflt = c.dflt_value === null ? null : (await db.prepare(`SELECT ${c.dflt_value} AS v`).first()).v;
            assert.equal(now[c.name], dflt, `${t}.${c.name} of an existing row should be its default`);
          }
        }
      }
      // Every bucket is in the chunk of its hour, with the same numbers, numbered in time order.
      const unpacked = (
        await db
          .prepare(
            `SELECT k.series_id, CAST(e.key AS INTEGER) AS ts, e.value ->> 0 AS count, e.value ->> 1 AS sum,
                    e.value ->> 2 AS min, e.value ->> 3 AS max, e.value ->> 4 AS last, e.value ->> 5 AS last_ts
             FROM chunks AS k, json_each(k.b) AS e WHERE k.start = CAST(e.key AS INTEGER) / 3600 * 3600
             ORDER BY 1, 2`,
          )
          .all()
      ).results;
      assert.deepEqual(unpacked, before.buckets, "0007 moves every bucket into the chunk of its hour");
      const numbered = (await db.prepare("SELECT series_id, n, upto FROM chunks ORDER BY series_id, start").all()).results;
      assert.deepEqual(numbered, [{ series_id: 1, n: 1, upto: 1 }, { series_id: 1, n: 1, upto: 2 }, { series_id: 2, n: 2, upto: 2 }]);
      const counted = (await db.prepare("SELECT chart, n FROM chart_series ORDER BY chart").all()).results;
      assert.deepEqual(counted, [{ chart: "cpu", n: 1 }, { chart: "users", n: 1 }], "0002 counts the series each chart already holds");
      assert.deepEqual(await describeSchema(db), await schemaFromSchemaSql(), driftHint);
    } finally {
      await mf.dispose();
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
    rmSync(early, { recursive: true, force: true });
  }
});

test("a local database made by the old schema.sql adopts migrations without an error", async () => {
  // Before migrations, npm start ran `wrangler d1 execute DB --local --file=schema.sql`; the
  // fixture is that schema.sql as it was then, frozen, so that drift between it and 0001 shows.
  const state = mkdtempSync(path.join(tmpdir(), "pushplot-adopt-"));
  try {
    wrangler(["d1", "execute", "DB", "--local", "--persist-to", state, `--file=${path.join("tests", "fixtures", "schema-before-migrations.sql")}`]);
    wrangler(["d1", "execute", "DB", "--local", "--persist-to", state, "--command",
      "INSERT INTO series (id, chart, labels, cap, created_at) VALUES (1, 'users', '{}', 1000, 1763800000)"]);
    wranglerMigrate(state);
    const mf = d1Only({ DB: localDatabaseId() }, state);
    try {
      const db = await mf.getD1Database("DB");
      const applied = (await db.prepare("SELECT name FROM d1_migrations ORDER BY id").all()).results.map((r) => r.name);
      assert.deepEqual(applied, migrationFiles());
      assert.equal((await db.prepare("SELECT chart FROM series WHERE id = 1").first()).chart, "users");
      assert.deepEqual(await describeSchema(db), await schemaFromSchemaSql(), driftHint);
    } finally {
      await mf.dispose();
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
  }
});

test("a job's runs recorded before migration 0013 are all still there, in order, packed ten to a row", async () => {
  const files = migrationFiles();
  const upTo = files.indexOf("0013_runs_packed.sql");
  assert.ok(upTo > 0, "migrations/ should hold 0013_runs_packed.sql");
  const state = mkdtempSync(path.join(tmpdir(), "pushplot-migrate-runs-"));
  const early = knowingOnly(files.slice(0, upTo));
  const run = (job, id) =>
    `INSERT INTO runs (job, id, started, finished, duration, exit_code, status, message) VALUES ` +
    `('${job}', ${id}, ${id % 2 ? "NULL" : 1763800000 + id}, ${1763800010 + id}, ${id % 2 ? "NULL" : 10}, ${id % 3 ? "NULL" : id % 256}, ` +
    `'${id % 3 ? "success" : "failure"}', 'run ${id}')`;
  try {
    wranglerMigrate(state, { config: path.join(early, "wrangler.toml") });
    let mf = d1Only({ DB: localDatabaseId() }, state);
    let before;
    try {
      const db = await mf.getD1Database("DB");
      const job = (name) =>
        `INSERT INTO jobs (name, schedule, state, created_at) VALUES ('${name}', '{"period":60,"grace":60}', '{}', 1763800000)`;
      // 25 runs (two blocks and five in the row); 3 numbered from 98, as after trimming; none.
      const stmts = [job("a"), job("b"), job("c")];
      for (let i = 1; i <= 25; i++) stmts.push(run("a", i));
      for (let i = 98; i <= 100; i++) stmts.push(run("b", i));
      await db.batch(stmts.map((s) => db.prepare(s)));
      before = (await db.prepare("SELECT job, started, finished, duration, exit_code, status, message FROM runs ORDER BY job, id").all()).results;
    } finally {
      await mf.dispose();
    }
    wranglerMigrate(state);
    mf = d1Only({ DB: localDatabaseId() }, state);
    try {
      const db = await mf.getD1Database("DB");
      const after = [];
      for (const name of ["a", "b", "c"]) {
        const blocks = (await db.prepare("SELECT id, runs FROM run_blocks WHERE job = ? ORDER BY id").bind(name).all()).results;
        const { recent } = await db.prepare("SELECT recent FROM jobs WHERE name = ?").bind(name).first();
        for (const b of blocks) assert.equal(JSON.parse(b.runs).length, 10, "a block holds ten runs");
        assert.ok(JSON.parse(recent).length < 10, "fewer than ten stay in the job's row");
        for (const r of [...blocks.flatMap((b) => JSON.parse(b.runs)), ...JSON.parse(recent)]) after.push({ job: name, ...r });
      }
      assert.deepEqual(after, before);
      const ids = (await db.prepare("SELECT job, id FROM run_blocks ORDER BY job, id").all()).results;
      assert.deepEqual(ids, [{ job: "a", id: 1 }, { job: "a", id: 2 }]);
    } finally {
      await mf.dispose();
    }
  } finally {
    rmSync(state, { recursive: true, force: true });
    rmSync(early, { recursive: true, force: true });
  }
});
