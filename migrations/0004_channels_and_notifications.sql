-- Migration 0004: where notifications go (channels) and every notification with its delivery
-- attempts (an outbox the scheduled run retries from). Never edit this file once applied.

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
