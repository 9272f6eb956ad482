-- Migration 0003: jobs (cron jobs and scripts that ping) and their runs. Never edit this file once
-- applied: add the next migration.

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
  writer TEXT
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
