-- Migration 0005: alert rules on charts, and the channels a job names instead of all of them.
-- Never edit this file once applied: add the next migration.

-- NULL: every channel; else a JSON array of channel ids.
ALTER TABLE jobs ADD COLUMN channels TEXT;

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
  writer TEXT NOT NULL
) WITHOUT ROWID;

-- The scheduled handler reads only the rules due for a look.
CREATE INDEX alerts_check ON alerts (check_at) WHERE check_at IS NOT NULL;
-- An ingest finds the rules of the charts it wrote.
CREATE INDEX alerts_chart ON alerts (chart);
