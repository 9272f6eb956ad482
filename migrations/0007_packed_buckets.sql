-- Migration 0007: buckets packed an hour to a row (a chunk), so that a point opening a bucket in
-- a full series writes one row instead of four (the bucket, the series counter, the trimmed
-- bucket, the counter again). D1 bills a written row 1,000 times a read row, and a deleted row is
-- a written row; the oldest chunk of a full series now goes as a whole, once an hour.
-- Readers cut to the newest MAX_POINTS buckets themselves (src/domain/chunk.rs), by `upto`.
-- Never edit this file once applied: add the next migration.

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

-- A new chunk is numbered after the chunk before it (or before the one after it, when it is the
-- oldest), and the chunks after it move up by its buckets. Then a full series drops, among its
-- four oldest chunks, those wholly past its cap: a bounded look, once per new chunk, and the
-- readers' cut is exact whatever is left.
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

-- The buckets move over, oldest first per series, so the trigger numbers them in order. Series
-- hold at most their cap today, so nothing is dropped.
INSERT INTO chunks (series_id, start, newest, n, b)
SELECT series_id, ts / 3600 * 3600 AS hour, MAX(ts), COUNT(*),
       json_group_object(CAST(ts AS TEXT), json_array(count, sum, min, max, last, last_ts))
FROM buckets GROUP BY series_id, hour ORDER BY series_id, hour;

DROP TRIGGER bucket_added;
DROP TABLE buckets;
-- The counter of buckets per series is gone with them: chunks need no counter.
DROP INDEX series_empty;
ALTER TABLE series DROP COLUMN n_buckets;
