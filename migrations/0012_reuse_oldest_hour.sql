-- Migration 0012: a full series' new hour takes over the row of its oldest hour in place. A point
-- that opens an hour then writes one row, as any other point does, instead of three (the new
-- row, its numbering by chunk_added, and the oldest hour's delete, since D1 counts a deleted row
-- as a written one). Changing a row's key in place is one written row.
-- Never edit this file once applied: add the next migration.

-- Before a new chunk goes in: if it is the series' newest hour and the series' oldest chunk lies
-- wholly past the cap once the new buckets count, that oldest row becomes the new chunk, numbered
-- after the newest, and the insert is skipped (RAISE(IGNORE): neither the insert, its upsert nor
-- chunk_added happens). Any other chunk the new buckets push past the cap among the oldest four
-- goes, as chunk_added would drop it. A point into an existing hour fails the first probe, a
-- series that is not full the last; a series that does not exist (NULL id) fails them all.
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
