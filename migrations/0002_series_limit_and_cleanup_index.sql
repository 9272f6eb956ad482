-- Migration 0002: bound the label sets of one chart, give retention's empty-series cleanup an index,
-- and let the public listing find public charts without reading every chart's settings. Never edit
-- this file once applied: add the next migration.

-- MAX_SERIES_PER_CHART as of the latest ingest, carried by each series as cap carries MAX_POINTS:
-- a trigger cannot read the Worker's settings.
ALTER TABLE series ADD COLUMN max_series INTEGER NOT NULL DEFAULT 1000;

-- How many series each chart holds, kept by the triggers below, so that checking the limit when a
-- series is created reads one row instead of counting the chart's series.
CREATE TABLE chart_series (
  chart TEXT PRIMARY KEY,
  n INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO chart_series (chart, n) SELECT chart, COUNT(*) FROM series GROUP BY chart;

-- A new series past its chart's limit aborts the whole ingest transaction, so nothing of the batch
-- is stored. It fires only when a series is really created, not on the upsert's update path.
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

-- Only empty series are in this index, so retention finds them without reading every series, and
-- counting buckets up and down in non-empty series never writes to it.
CREATE INDEX series_empty ON series (n_buckets) WHERE n_buckets <= 0;

-- Only public charts are in this index: the listing without a key starts here.
CREATE INDEX charts_public ON charts (name) WHERE public = 1;
