-- Migration 0009: metric groups pushed the Pushgateway's way (PUT/POST/DELETE
-- /metrics/job/{job}/...), each as its latest push left it, for GET /metrics. Their samples are
-- also stored as points in the charts; this row is only what a scrape answers.
-- Never edit this file once applied: add the next migration.

-- `grouping` is the grouping labels (job and the rest) as canonical JSON; `metrics` the group's
-- families in the text exposition format, without the grouping labels; `names` a JSON array of
-- its metric names, so that a key limited to some charts sees only those. No index on
-- `pushed_at`: each push would write its entry as one more row; expiry reads the few groups.
CREATE TABLE metric_groups (
  grouping TEXT PRIMARY KEY,
  job TEXT NOT NULL,
  metrics TEXT NOT NULL,
  names TEXT NOT NULL,
  pushed_at REAL NOT NULL,
  failed_at REAL NOT NULL DEFAULT 0
) WITHOUT ROWID;
