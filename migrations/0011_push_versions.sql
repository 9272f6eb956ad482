-- Migration 0011: pushes to one group that race. A push names the version of the group it read
-- (and checked against); a push whose group changed meanwhile stores nothing and is made again,
-- as the Pushgateway, which takes pushes one at a time, never loses one.
-- Never edit this file once applied: add the next migration.
ALTER TABLE metric_groups ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- Never holds a row: a push whose guarded group write changed nothing inserts one here, and the
-- CHECK aborts its whole transaction (SQLite's RAISE works only inside triggers).
CREATE TABLE push_guard (
  ok INTEGER CONSTRAINT push_raced CHECK (ok = 0)
);
