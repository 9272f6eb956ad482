-- pushplot's schema as all of migrations/ leave it, to read in one place. It is not applied by any
-- script (the migrations are: wrangler d1 migrations apply), and tests/migrations.test.mjs proves
-- that they give exactly this. No IF NOT EXISTS: running it on an existing database is an error.

-- One row per series: a chart with one label set. n_buckets counts the buckets the series holds
-- now, so trimming never has to count them; cap is MAX_POINTS and max_series MAX_SERIES_PER_CHART
-- as of the latest ingest.
CREATE TABLE series (
  id INTEGER PRIMARY KEY,
  chart TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  n_buckets INTEGER NOT NULL DEFAULT 0,
  cap INTEGER NOT NULL DEFAULT 1000,
  created_at INTEGER NOT NULL,
  max_series INTEGER NOT NULL DEFAULT 1000,
  UNIQUE (chart, labels)
);

-- Retention's cleanup finds empty series here; non-empty ones never enter this index.
CREATE INDEX series_empty ON series (n_buckets) WHERE n_buckets <= 0;

-- How many series each chart holds, kept by the two triggers below, so that the limit check of a
-- new series reads one row.
CREATE TABLE chart_series (
  chart TEXT PRIMARY KEY,
  n INTEGER NOT NULL
) WITHOUT ROWID;

-- A new series past its chart's limit aborts the whole ingest transaction (nothing is stored).
CREATE TRIGGER series_added AFTER INSERT ON series
BEGIN
  INSERT OR IGNORE INTO chart_series (chart, n) VALUES (NEW.chart, 0);
  UPDATE chart_series SET n = n + 1 WHERE chart = NEW.chart;
  SELECT RAISE(ABORT, 'pushplot:too_many_series')
    FROM chart_series WHERE chart = NEW.chart AND n > NEW.max_series;
END;

CREATE TRIGGER series_removed AFTER DELETE ON series
BEGIN
  UPDATE chart_series SET n = n - 1 WHERE chart = OLD.chart;
  DELETE FROM chart_series WHERE chart = OLD.chart AND n <= 0;
END;

-- Settings of charts that differ from the defaults; most charts have no row here.
CREATE TABLE charts (
  name TEXT PRIMARY KEY,
  bucket_seconds INTEGER,
  public INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The listing without a key starts from public charts only.
CREATE INDEX charts_public ON charts (name) WHERE public = 1;

-- The points, as buckets. WITHOUT ROWID: the primary key is the table, so an upsert writes one row.
CREATE TABLE buckets (
  series_id INTEGER NOT NULL,
  ts INTEGER NOT NULL,
  count INTEGER NOT NULL,
  sum REAL NOT NULL,
  min REAL NOT NULL,
  max REAL NOT NULL,
  last REAL NOT NULL,
  last_ts REAL NOT NULL,
  PRIMARY KEY (series_id, ts)
) WITHOUT ROWID;

-- API keys: only a hash of the secret is kept. prefix limits the charts a key reaches; with exact = 1
-- it must be the whole chart name.
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL,
  scope TEXT NOT NULL,
  prefix TEXT,
  exact INTEGER NOT NULL DEFAULT 0,
  name TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Trimming, exact and O(1): each new bucket bumps its series' counter, and a series over its cap
-- loses its oldest buckets (read along the primary key, only as many as it is over) in the same
-- statement. Merging into an existing bucket is an UPDATE and fires nothing.
CREATE TRIGGER bucket_added AFTER INSERT ON buckets
BEGIN
  UPDATE series SET n_buckets = n_buckets + 1 WHERE id = NEW.series_id;
  DELETE FROM buckets WHERE series_id = NEW.series_id AND ts IN (
    SELECT ts FROM buckets WHERE series_id = NEW.series_id ORDER BY ts
    LIMIT (SELECT MAX(n_buckets - cap, 0) FROM series WHERE id = NEW.series_id));
  UPDATE series SET n_buckets = cap WHERE id = NEW.series_id AND n_buckets > cap;
END;

-- One row per job. `state` is the domain's JobState as JSON (open starts, last ping, last outcome),
-- read and written whole by each ping; `version` lets a ping that raced another one notice and
-- try again, and `writer` (random, per save) lets the run and the notifications of a save go in
-- only with the job row they belong to. `check_at` is when the scheduled handler must look at the job next (its due time
-- plus grace, or an open start plus grace); NULL when nothing can change without a ping (paused).
CREATE TABLE jobs (
  name TEXT PRIMARY KEY,
  schedule TEXT NOT NULL,
  paused INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'new',
  state TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_ping REAL,
  next_due INTEGER,
  check_at INTEGER,
  last_duration REAL,
  last_exit_code INTEGER,
  version INTEGER NOT NULL DEFAULT 0,
  writer TEXT,
  -- NULL: every channel; else a JSON array of channel ids (migration 0005).
  channels TEXT
) WITHOUT ROWID;

-- The scheduled handler reads only the jobs that are due for a look, not one row per job.
CREATE INDEX jobs_check ON jobs (check_at) WHERE check_at IS NOT NULL;

-- Finished runs, numbered per job; the newest 100 are kept.
CREATE TABLE runs (
  job TEXT NOT NULL,
  id INTEGER NOT NULL,
  started REAL,
  finished REAL NOT NULL,
  duration REAL,
  exit_code INTEGER,
  status TEXT NOT NULL,
  message TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job, id)
) WITHOUT ROWID;

-- Trimming as for buckets, but simpler: ids grow by one, so the run 100 before the new one goes.
CREATE TRIGGER run_added AFTER INSERT ON runs
BEGIN
  DELETE FROM runs WHERE job = NEW.job AND id <= NEW.id - 100;
END;

CREATE TABLE channels (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  url TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- One row per event and channel. `next_attempt` is NULL once delivered or given up; `log` holds
-- every attempt as JSON, so a channel that fails shows why, and is never dropped silently.
CREATE TABLE notifications (
  id INTEGER PRIMARY KEY,
  channel TEXT NOT NULL,
  event TEXT NOT NULL,
  created_at REAL NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt REAL,
  result TEXT NOT NULL DEFAULT 'pending',
  log TEXT NOT NULL DEFAULT '[]'
);

-- The scheduled run finds what is due for another attempt without reading delivered ones.
CREATE INDEX notifications_due ON notifications (next_attempt) WHERE next_attempt IS NOT NULL;

-- The newest 1,000 are kept.
CREATE TRIGGER notification_added AFTER INSERT ON notifications
BEGIN
  DELETE FROM notifications WHERE id <= NEW.id - 1000;
END;

-- One row per rule. A rule watches one series (chart and canonical labels). A threshold rule has
-- agg, window_secs, op and threshold; an absence rule has absent_secs. `check_at` is when the
-- scheduled handler must look at it next (its window loses a bucket, its absence limit passes,
-- or at most an hour ahead); `writer` (random, per save) lets a judgement's notifications go in
-- only with the save they belong to. `history` holds its newest 20 changes of state as JSON.
CREATE TABLE alerts (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  chart TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  agg TEXT,
  window_secs INTEGER,
  op TEXT,
  threshold REAL,
  absent_secs INTEGER,
  channels TEXT,
  state TEXT NOT NULL DEFAULT 'ok',
  since REAL NOT NULL,
  last_value REAL,
  judged_at REAL,
  check_at INTEGER,
  history TEXT NOT NULL DEFAULT '[]',
  created_at REAL NOT NULL,
  writer TEXT NOT NULL,
  -- What the channels were last told, and when, as JSON (migration 0006).
  told TEXT NOT NULL DEFAULT '{}'
) WITHOUT ROWID;

-- The scheduled handler reads only the rules due for a look.
CREATE INDEX alerts_check ON alerts (check_at) WHERE check_at IS NOT NULL;
-- An ingest finds the rules of the charts it wrote.
CREATE INDEX alerts_chart ON alerts (chart);
