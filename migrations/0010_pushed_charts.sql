-- Migration 0010: the charts that pushes to /metrics/job/... have written, so that GET /metrics
-- never shows them as `pushplot_value` (series sent as JSON): not while their group is live, where
-- they show as pushed, and not after it is deleted or expired, when Prometheus must stop seeing
-- them. A name is written once, when a push first charts it.
-- Never edit this file once applied: add the next migration.
CREATE TABLE pushed_charts (
  name TEXT PRIMARY KEY
) WITHOUT ROWID;
