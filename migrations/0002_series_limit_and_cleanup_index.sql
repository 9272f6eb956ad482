-- Migration 0002: bound the label sets of one chart, and give retention's empty-series cleanup an
-- index. Never edit this file once applied: add the next migration.

-- MAX_SERIES_PER_CHART as of the latest ingest, carried by each series as cap carries MAX_POINTS:
-- a trigger cannot read the Worker's settings.
ALTER TABLE series ADD COLUMN max_series INTEGER NOT NULL DEFAULT 1000;

-- A new series past its chart's limit aborts the whole ingest transaction, so nothing of the batch
-- is stored. It fires only when a series is really created, so an ingest into existing series
-- reads nothing more; creating one reads the chart's series once, along (chart, labels).
CREATE TRIGGER series_added AFTER INSERT ON series
WHEN (SELECT COUNT(*) FROM series WHERE chart = NEW.chart) > NEW.max_series
BEGIN
  SELECT RAISE(ABORT, 'pushplot:too_many_series');
END;

-- Only empty series are in this index, so retention finds them without reading every series, and
-- counting buckets up and down in non-empty series never writes to it.
CREATE INDEX series_empty ON series (n_buckets) WHERE n_buckets <= 0;
