-- pushplot's schema as all of migrations/ leave it, to read in one place. It is not applied by any
-- script (the migrations are: wrangler d1 migrations apply), and tests/migrations.test.mjs proves
-- that they give exactly this. No IF NOT EXISTS: running it on an existing database is an error.

-- One row per series: a chart with one label set. cap is MAX_POINTS and max_series
-- MAX_SERIES_PER_CHART as of the latest ingest.
CREATE TABLE series (
  id INTEGER PRIMARY KEY,
  chart TEXT NOT NULL,
  labels TEXT NOT NULL DEFAULT '{}',
  cap INTEGER NOT NULL DEFAULT 1000,
  created_at INTEGER NOT NULL,
  max_series INTEGER NOT NULL DEFAULT 1000,
  UNIQUE (chart, labels)
);

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

-- The points, as buckets packed an hour to a row (migration 0007; src/domain/chunk.rs says why).
-- `start` is the hour the chunk's buckets start in; `newest` the start of its newest bucket; `n`
-- how many buckets `b` holds; `upto` numbers them: they are the series' buckets number
-- upto - n + 1 ..= upto in time order, deleted ones still counted. `b` is a JSON object
-- {"<bucket start>": [count, sum, min, max, last, last_ts], ...}.
CREATE TABLE chunks (
  series_id INTEGER NOT NULL,
  start INTEGER NOT NULL,
  newest INTEGER NOT NULL,
  n INTEGER NOT NULL,
  upto INTEGER NOT NULL DEFAULT 0,
  b TEXT NOT NULL,
  PRIMARY KEY (series_id, start)
) WITHOUT ROWID;

-- Before a new chunk goes in (migration 0012: a deleted row is a written row, and a key changed
-- in place is one): if it is the series' newest hour and the series' oldest chunk lies
-- wholly past the cap once the new buckets count, that oldest row becomes the new chunk, numbered
-- after the newest, and the insert is skipped (RAISE(IGNORE): neither the insert, its upsert nor
-- chunk_added happens). Any other chunk the new buckets push past the cap among the oldest four
-- goes, as chunk_added would drop it (keep the two DELETEs in step). A point into an existing hour
-- fails the first probe, a late hour the second, a series that is not full the last; for a
-- series that does not exist (NULL id) the second is NULL, so the insert goes ahead and fails on
-- NOT NULL.
CREATE TRIGGER chunk_reused BEFORE INSERT ON chunks
WHEN NOT EXISTS (SELECT 1 FROM chunks AS k WHERE k.series_id = NEW.series_id AND k.start = NEW.start)
  AND NEW.start > (SELECT k.start FROM chunks AS k WHERE k.series_id = NEW.series_id
                   ORDER BY k.start DESC LIMIT 1)
  AND (SELECT k.upto FROM chunks AS k WHERE k.series_id = NEW.series_id ORDER BY k.start LIMIT 1)
      <= (SELECT k.upto FROM chunks AS k WHERE k.series_id = NEW.series_id
          ORDER BY k.start DESC LIMIT 1) + NEW.n - (SELECT cap FROM series WHERE id = NEW.series_id)
BEGIN
  UPDATE chunks SET start = NEW.start, newest = NEW.newest, n = NEW.n, b = NEW.b,
      upto = NEW.n + (SELECT k.upto FROM chunks AS k WHERE k.series_id = NEW.series_id
                      ORDER BY k.start DESC LIMIT 1)
    WHERE series_id = NEW.series_id
      AND start = (SELECT k.start FROM chunks AS k WHERE k.series_id = NEW.series_id
                   ORDER BY k.start LIMIT 1);
  DELETE FROM chunks WHERE series_id = NEW.series_id
    AND start IN (SELECT k.start FROM chunks AS k WHERE k.series_id = NEW.series_id
                  ORDER BY k.start LIMIT 4)
    AND upto <= (SELECT k.upto FROM chunks AS k WHERE k.series_id = NEW.series_id
                 ORDER BY k.start DESC LIMIT 1)
              - (SELECT cap FROM series WHERE id = NEW.series_id);
  SELECT RAISE(IGNORE);
END;

-- A new chunk is numbered after the chunk before it (or before the one after it, when it is the
-- oldest), and the chunks after it move up by its buckets. Then a full series drops, among its
-- four oldest chunks, those wholly past its cap: a bounded look, once per new chunk, and the
-- readers' cut is exact whatever is left. chunk_reused above drops the same way.
CREATE TRIGGER chunk_added AFTER INSERT ON chunks
BEGIN
  UPDATE chunks SET upto = NEW.n + COALESCE(
      (SELECT k.upto FROM chunks AS k
        WHERE k.series_id = NEW.series_id AND k.start < NEW.start ORDER BY k.start DESC LIMIT 1),
      (SELECT k.upto - k.n FROM chunks AS k
        WHERE k.series_id = NEW.series_id AND k.start > NEW.start ORDER BY k.start LIMIT 1),
      0)
    WHERE series_id = NEW.series_id AND start = NEW.start;
  UPDATE chunks SET upto = upto + NEW.n WHERE series_id = NEW.series_id AND start > NEW.start;
  DELETE FROM chunks WHERE series_id = NEW.series_id
    AND start IN (SELECT k.start FROM chunks AS k WHERE k.series_id = NEW.series_id
                  ORDER BY k.start LIMIT 4)
    AND upto <= (SELECT k.upto FROM chunks AS k WHERE k.series_id = NEW.series_id
                 ORDER BY k.start DESC LIMIT 1)
              - (SELECT cap FROM series WHERE id = NEW.series_id);
END;

-- A bucket added to a chunk that is not the newest (a late point) moves the numbers after it up.
-- For the newest chunk this finds nothing to update: one index probe.
CREATE TRIGGER chunk_grown AFTER UPDATE OF n ON chunks WHEN NEW.n > OLD.n
BEGIN
  UPDATE chunks SET upto = upto + NEW.n - OLD.n
    WHERE series_id = NEW.series_id AND start > NEW.start;
END;

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
  channels TEXT,
  -- The runs since the job's newest block in run_blocks, oldest first: a JSON array of up to
  -- ten {"started","finished","duration","exit_code","status","message"} (migration 0013).
  recent TEXT NOT NULL DEFAULT '[]'
) WITHOUT ROWID;

-- No index on check_at (migration 0008): a ping would write its entry as one more row.

-- Finished runs (migration 0013): the newest in the job's row (`recent`), the others here, ten
-- to a row, oldest first, as in `jobs.recent`; blocks are numbered per job from 1 and the
-- newest ten are kept, so a job keeps from 100 to 110 runs, and shows its newest 100.
CREATE TABLE run_blocks (
  job TEXT NOT NULL,
  id INTEGER NOT NULL,
  runs TEXT NOT NULL,
  PRIMARY KEY (job, id)
) WITHOUT ROWID;

-- The eleventh block takes over the row of the first, and so on: one written row, where an insert
-- and a delete are two. Ten runs a block and ten blocks kept: src/domain/job.rs (RUNS_PER_BLOCK,
-- BLOCKS_KEPT) says the same.
CREATE TRIGGER run_block_reused BEFORE INSERT ON run_blocks
WHEN EXISTS (SELECT 1 FROM run_blocks AS r WHERE r.job = NEW.job AND r.id = NEW.id - 10)
BEGIN
  UPDATE run_blocks SET id = NEW.id, runs = NEW.runs WHERE job = NEW.job AND id = NEW.id - 10;
  SELECT RAISE(IGNORE);
END;

-- Blocks are numbered without gaps, so the trigger above finds the one to take over; should one
-- go in after a gap all the same, the blocks ten or more before it go.
CREATE TRIGGER run_block_added AFTER INSERT ON run_blocks
BEGIN
  DELETE FROM run_blocks WHERE job = NEW.job AND id <= NEW.id - 10;
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

-- Pushed metric groups (migration 0009).
-- `grouping` is the grouping labels (job and the rest) as canonical JSON; `metrics` the group's
-- families in the text exposition format, the grouping labels on every sample (migration 0009's
-- comment says otherwise and is wrong); `names` the charts its samples write (kept for
-- inspection; pushed_charts is what reads use). No index on `pushed_at`: each push would write
-- its entry as one more row; expiry reads the few groups.
CREATE TABLE metric_groups (
  grouping TEXT PRIMARY KEY,
  job TEXT NOT NULL,
  metrics TEXT NOT NULL,
  names TEXT NOT NULL,
  pushed_at REAL NOT NULL,
  failed_at REAL NOT NULL DEFAULT 0,
  -- Bumped by each push; a push names the one it read (migration 0011).
  version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Charts that pushes have written: never shown as pushplot_value (migration 0010).
CREATE TABLE pushed_charts (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;

-- Never holds a row: a push whose group changed since it read it aborts on this (migration 0011).
CREATE TABLE push_guard (
  ok INTEGER CONSTRAINT push_raced CHECK (ok = 0)
);
