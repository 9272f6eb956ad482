//! The write of ingested points: series made sure of, partial buckets folded into stored ones.

use super::{num, text, Db, Result, TOO_MANY_SERIES};
use crate::domain::chart::too_many_series;
use crate::domain::config::Config;
use crate::domain::error::ApiError;

// The partial buckets of a request (one per series and second, merged in Rust), unpacked from the
// one JSON parameter ?1 and placed into their chart's buckets; ?2 is the default bucket size.
const UPSERT_BUCKETS: &str = concat!(
    "
WITH g AS (
  SELECT j.value ->> 'c' AS chart, j.value ->> 'l' AS labels, j.value -> 'p' AS pts
  FROM json_each(?1) AS j
), gs AS (
  SELECT s.id AS sid, CAST(COALESCE(c.bucket_seconds, ?2) AS INTEGER) AS bs, g.pts
  FROM g JOIN series AS s ON s.chart = g.chart AND s.labels = g.labels
  LEFT JOIN charts AS c ON c.name = g.chart
), pt AS (
  SELECT gs.sid, (e.value ->> 0) / gs.bs * gs.bs AS bts, e.value ->> 1 AS n, e.value ->> 2 AS s,
         e.value ->> 3 AS mn, e.value ->> 4 AS mx, e.value ->> 5 AS l, e.value ->> 6 AS lt
  FROM gs, json_each(gs.pts) AS e
), ranked AS (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY sid, bts ORDER BY lt DESC) AS rn FROM pt
)
INSERT INTO buckets (series_id, ts, count, sum, min, max, last, last_ts)
SELECT sid, bts, SUM(n), SUM(s), MIN(mn), MAX(mx), MAX(CASE WHEN rn = 1 THEN l END), MAX(lt)
FROM ranked WHERE true GROUP BY sid, bts
",
    merge_into_existing!()
);

impl Db {
    /// Writes batches, given as their SQL parameters (`Batch::to_sql_json`), in one transaction
    /// and one round trip: per parameter, make sure every series exists (carrying the current
    /// MAX_POINTS and MAX_SERIES_PER_CHART), then fold the points into their buckets. Counting and
    /// trimming happen in the `bucket_added` trigger, the series limit in `series_added`. Every
    /// statement reads only the rows the request touches, so the cost does not grow with what a
    /// chart already holds.
    pub async fn ingest(&self, params: &[&str], cfg: &Config, now: f64) -> Result<()> {
        let ensure_series = "INSERT INTO series (chart, labels, n_buckets, cap, max_series, created_at)
            SELECT j.value ->> 'c', j.value ->> 'l', 0, ?2, ?3, ?4 FROM json_each(?1) AS j WHERE true
            ON CONFLICT (chart, labels) DO UPDATE SET cap = excluded.cap, max_series = excluded.max_series
            WHERE cap <> excluded.cap OR max_series <> excluded.max_series";
        let mut stmts = Vec::with_capacity(params.len() * 2);
        for p in params {
            let points = text(p);
            stmts.push(self.stmt(
                ensure_series,
                &[
                    points.clone(),
                    num(cfg.max_points),
                    num(cfg.max_series_per_chart),
                    num(now.floor()),
                ],
            )?);
            stmts.push(self.stmt(UPSERT_BUCKETS, &[points, num(cfg.bucket_seconds)])?);
        }
        let started = worker::js_sys::Date::now();
        let n = stmts.len();
        match self.d1.batch(stmts).await {
            Ok(results) => {
                self.record(started, &results, n);
                Ok(())
            }
            // The `series_added` trigger refuses a series past the limit, and the whole
            // transaction with it: nothing of the batch is stored.
            Err(e) if e.to_string().contains(TOO_MANY_SERIES) => {
                self.record(started, &[], n);
                Err(too_many_series(None, cfg.max_series_per_chart))
            }
            // The call failed after it was sent: D1 may have committed it all the same.
            Err(e) => {
                self.record(started, &[], n);
                worker::console_error!("d1 ingest: {e}");
                Err(ApiError::write_unconfirmed())
            }
        }
    }
}
