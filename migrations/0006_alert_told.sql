-- Migration 0006: what the channels were last told about each alert rule, and when (the
-- domain's `damping::Told` as JSON), so that a rule that flaps is told at most ten times an hour
-- and its final state is told when the hour allows. Jobs keep the same inside their `state`.
-- Never edit this file once applied: add the next migration.
ALTER TABLE alerts ADD COLUMN told TEXT NOT NULL DEFAULT '{}';
-- A rule firing now was told so when it began: not told again, and its recovery is told.
UPDATE alerts SET told = json_object('state', state) WHERE state = 'firing';
