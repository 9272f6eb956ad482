-- Migration 0008: no index on jobs.check_at. Every ping moves a job's check_at, and D1 counts the
-- index entry as one more written row: 2 rows a ping instead of 1, about 5,800 written rows a
-- day for ten jobs pinging start and success every 5 minutes, of the free plan's 100,000.
-- The minutely check reads every job row instead (1,440 rows a day per job, of 5,000,000).
-- Never edit this file once applied: add the next migration.
DROP INDEX jobs_check;
