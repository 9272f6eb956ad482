-- Migration 0013: a job's runs packed ten to a row, the newest of them in the job's own row. A
-- finished run wrote three rows (the job, the run, and the delete of the run 100 before it, as
-- D1 counts a deleted row as a written one); it now writes the job's row alone, and one row more
-- every tenth run, when the job's ten newest runs move to a block that takes over the oldest
-- block in place. Reading a job's 100 runs reads 11 rows instead of 100.
-- Never edit this file once applied: add the next migration.

-- The runs since the job's newest block, oldest first: a JSON array of up to ten
-- {"started","finished","duration","exit_code","status","message"}. Last of the row's columns, so
-- that reading the job's other columns does not load it.
ALTER TABLE jobs ADD COLUMN recent TEXT NOT NULL DEFAULT '[]';

-- Ten runs each, oldest first, as in `jobs.recent`; blocks are numbered per job from 1 and the
-- newest ten are kept, so a job keeps from 100 to 110 runs, and shows its newest 100.
CREATE TABLE run_blocks (
  job TEXT NOT NULL,
  id INTEGER NOT NULL,
  runs TEXT NOT NULL,
  PRIMARY KEY (job, id)
) WITHOUT ROWID;

-- The eleventh block takes over the row of the first, and so on: one written row, where an insert
-- and a delete are two.
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

-- The runs move over: per job, in order, whole tens into blocks and the rest into `recent`.
INSERT INTO run_blocks (job, id, runs)
SELECT job, (rn - 1) / 10 + 1,
       json_group_array(json_object('started', started, 'finished', finished, 'duration', duration,
         'exit_code', exit_code, 'status', status, 'message', message) ORDER BY rn)
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id) AS rn,
             COUNT(*) OVER (PARTITION BY job) AS c FROM runs)
WHERE rn <= c - c % 10
GROUP BY job, (rn - 1) / 10;

UPDATE jobs SET recent = (
  SELECT json_group_array(json_object('started', started, 'finished', finished,
           'duration', duration, 'exit_code', exit_code, 'status', status, 'message', message)
           ORDER BY rn)
  FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY job ORDER BY id) AS rn,
               COUNT(*) OVER (PARTITION BY job) AS c FROM runs WHERE job = jobs.name)
  WHERE rn > c - c % 10)
WHERE EXISTS (SELECT 1 FROM runs WHERE job = jobs.name);

DROP TRIGGER run_added;
DROP TABLE runs;
