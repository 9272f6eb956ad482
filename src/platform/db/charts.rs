//! Reading charts (series, buckets, the list) and changing them (settings, bucket size, delete).

use super::{names_where, num, text, Db, Result};
use crate::domain::bucket::{Bucket, Packed};
use crate::domain::chart::SERIES_SHOWN;
use crate::domain::config::Config;
use crate::domain::error::ApiError;
use crate::domain::keys::{ChartLimit, Names};
use crate::domain::names::Labels;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::D1PreparedStatement;

#[derive(Deserialize)]
pub struct SeriesRow {
    pub id: f64,
    pub chart: String,
    pub labels: String,
    pub bucket_seconds: u32,
    pub public: i64,
}

#[derive(Deserialize)]
pub struct ListRow {
    pub chart: String,
    pub labels: String,
    pub n_buckets: i64,
    pub bucket_seconds: u32,
    pub public: i64,
    pub first_ts: Option<i64>,
    /// `[ts, last, last_ts]` of the newest bucket, as JSON.
    pub newest: Option<String>,
    /// `[[ts, avg], ...]` of the newest buckets, newest first, as JSON.
    pub spark: Option<String>,
}

#[derive(Deserialize)]
pub struct ChartSettings {
    pub bucket_seconds: Option<u32>,
    pub public: i64,
}

impl Db {
    /// The series of a chart that a read has to choose from: the one with `labels` (or none) and
    /// the first `SERIES_SHOWN + 1` by labels, with the chart's settings. Reads at most about
    /// SERIES_SHOWN + 3 rows, however many series the chart has.
    pub async fn series_for(
        &self,
        chart: &str,
        labels: Option<&Labels>,
        cfg: &Config,
    ) -> Result<Vec<SeriesRow>> {
        let wanted = labels.map_or_else(|| "{}".to_string(), Labels::canonical);
        let cols = "s.id, s.chart, s.labels,
            COALESCE(c.bucket_seconds, ?2) AS bucket_seconds, COALESCE(c.public, 0) AS public
            FROM series AS s LEFT JOIN charts AS c ON c.name = s.chart";
        self.all(
            &format!(
                "SELECT * FROM (SELECT {cols} WHERE s.chart = ?1 AND s.labels = ?3)
                 UNION ALL
                 SELECT * FROM (SELECT {cols} WHERE s.chart = ?1 ORDER BY s.labels LIMIT ?4)"
            ),
            &[
                text(chart),
                num(cfg.bucket_seconds),
                text(&wanted),
                num(SERIES_SHOWN as u32 + 1),
            ],
        )
        .await
    }

    /// The bucket size a chart's stored buckets have, if it holds any.
    pub async fn stored_bucket_seconds(&self, chart: &str, cfg: &Config) -> Result<Option<u32>> {
        #[derive(Deserialize)]
        struct Row {
            bucket_seconds: u32,
        }
        let mut rows: Vec<Row> = self
            .all(
                "SELECT COALESCE(c.bucket_seconds, ?2) AS bucket_seconds
                 FROM series AS s LEFT JOIN charts AS c ON c.name = s.chart
                 WHERE s.chart = ?1 AND s.n_buckets > 0 LIMIT 1",
                &[text(chart), num(cfg.bucket_seconds)],
            )
            .await?;
        Ok(rows.pop().map(|r| r.bucket_seconds))
    }

    pub async fn chart_settings(&self, chart: &str) -> Result<Option<ChartSettings>> {
        let mut rows = self
            .all(
                "SELECT bucket_seconds, public FROM charts WHERE name = ?1",
                &[text(chart)],
            )
            .await?;
        Ok(rows.pop())
    }

    /// The newest `limit` buckets of a series in [from, to), ascending. Rows read equal the
    /// buckets returned, along the primary key; they travel back as one JSON text, which costs far
    /// less than one JavaScript object per bucket.
    pub async fn buckets(
        &self,
        series_id: f64,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Bucket>> {
        #[derive(Deserialize)]
        struct Answer {
            rows: Option<String>,
        }
        // Rolling up inside SQL (GROUP BY, window functions) sends fewer rows back, but D1 counts
        // its temporary b-trees as rows read: 20,329 to 60,650 for a week of minutes as hours,
        // against 10,080 for reading the buckets once. Rows read are what D1 bills, so the rollup
        // happens in the Worker.
        let sql =
            "SELECT json_group_array(json_array(ts, count, sum, min, max, last, last_ts)) AS rows
             FROM (SELECT * FROM buckets WHERE series_id = ?1 AND ts >= ?2 AND ts < ?3
                   ORDER BY ts DESC LIMIT ?4)";
        let args = [
            num(series_id),
            num(from as f64),
            num(to as f64),
            num(limit as f64),
        ];
        let packed: Vec<Answer> = self.all(sql, &args).await?;
        let rows: Vec<Packed> = packed
            .first()
            .and_then(|p| p.rows.as_deref())
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| {
                worker::console_error!("d1 decode buckets: {e}");
                ApiError::internal()
            })?
            .unwrap_or_default();
        let mut buckets: Vec<Bucket> = rows.into_iter().map(Bucket::from).collect();
        buckets.sort_by_key(|b| b.ts);
        Ok(buckets)
    }

    /// Every series a caller may list, with first and newest bucket and the averages of its newest
    /// `spark` buckets (only those that end after `since`, when given: a refresh then reads the
    /// buckets that may have changed, not the whole sparkline again). A key's chart limit becomes a range on the (chart, labels) index, and a
    /// listing of public charts starts from the few charts with settings, so neither reads series
    /// it does not list. Reads about `spark + 3` index rows per listed series, whatever a series
    /// holds.
    pub async fn list(
        &self,
        limit: Option<&ChartLimit>,
        public_only: bool,
        cfg: &Config,
        spark: u32,
        since: Option<i64>,
    ) -> Result<Vec<ListRow>> {
        let names = limit.map_or(
            Names::Range {
                from: String::new(),
                until: None,
            },
            ChartLimit::names,
        );
        let columns = "s.chart, s.labels, s.n_buckets,
                COALESCE(c.bucket_seconds, ?2) AS bucket_seconds, COALESCE(c.public, 0) AS public,
                (SELECT MIN(b.ts) FROM buckets AS b WHERE b.series_id = s.id) AS first_ts,
                (SELECT json_array(b.ts, b.last, b.last_ts) FROM buckets AS b
                   WHERE b.series_id = s.id ORDER BY b.ts DESC LIMIT 1) AS newest,
                CASE WHEN ?3 > 0 THEN
                  (SELECT json_group_array(json_array(r.ts, r.sum / r.count)) FROM
                     (SELECT b.ts, b.sum, b.count FROM buckets AS b
                      WHERE b.series_id = s.id
                        AND b.ts > ?5 - COALESCE(c.bucket_seconds, ?2)
                      ORDER BY b.ts DESC LIMIT ?3) AS r)
                END AS spark";
        let (names_clause, from, until) = names_where(&names, "s.chart", 1, 4);
        let sql = if public_only {
            format!(
                // CROSS JOIN keeps charts, the few with settings, as the outer loop.
                "SELECT {columns} FROM charts AS c CROSS JOIN series AS s ON s.chart = c.name
                 WHERE c.public = 1 AND {names_clause}
                 ORDER BY s.chart, s.labels"
            )
        } else {
            format!(
                "SELECT {columns} FROM series AS s LEFT JOIN charts AS c ON c.name = s.chart
                 WHERE {names_clause}
                 ORDER BY s.chart, s.labels"
            )
        };
        // Without `since`, every bucket is at or after the earliest time there is.
        let since = since.map_or(-9.0e15, |t| t as f64);
        self.all(
            &sql,
            &[from, num(cfg.bucket_seconds), num(spark), until, num(since)],
        )
        .await
    }

    /// Saves a chart's settings; `None` leaves a setting as it is.
    pub async fn save_chart_settings(
        &self,
        chart: &str,
        bucket_seconds: Option<u32>,
        public: Option<bool>,
        now: f64,
    ) -> Result<()> {
        self.batch(vec![self.settings_stmt(
            chart,
            bucket_seconds,
            public,
            now,
        )?])
        .await?;
        Ok(())
    }

    fn settings_stmt(
        &self,
        chart: &str,
        bucket_seconds: Option<u32>,
        public: Option<bool>,
        now: f64,
    ) -> Result<D1PreparedStatement> {
        let bs = bucket_seconds.map(num).unwrap_or(JsValue::NULL);
        let public = public.map(|p| num(u8::from(p))).unwrap_or(JsValue::NULL);
        self.stmt(
            "INSERT INTO charts (name, bucket_seconds, public, updated_at)
             VALUES (?1, ?2, COALESCE(?3, 0), ?4)
             ON CONFLICT (name) DO UPDATE SET
               bucket_seconds = COALESCE(?2, bucket_seconds),
               public = COALESCE(?3, public),
               updated_at = ?4",
            &[text(chart), bs, public, num(now.floor())],
        )
    }

    /// Moves a chart to a coarser bucket size (a multiple of the old one) and saves its settings,
    /// in one transaction so that no point ingested meanwhile is lost: buckets that do not start
    /// on the new size are folded into the one that does, then deleted, and the counters are
    /// recounted. While it runs the series' cap is lifted, so the trimming trigger stays out of it.
    pub async fn rebucket(
        &self,
        chart: &str,
        bucket_seconds: u32,
        public: Option<bool>,
        cfg: &Config,
        now: f64,
    ) -> Result<()> {
        let c = text(chart);
        let size = num(bucket_seconds);
        let of_chart = "SELECT id FROM series WHERE chart = ?1";
        // D1 binds every JavaScript number as REAL; integer division needs an INTEGER.
        let n = "CAST(?2 AS INTEGER)";
        self.batch(vec![
            self.stmt(
                "UPDATE series SET cap = 1000000000 WHERE chart = ?1",
                std::slice::from_ref(&c),
            )?,
            self.stmt(
                &format!(
                    "INSERT INTO buckets (series_id, ts, count, sum, min, max, last, last_ts)
                     SELECT b.series_id, b.ts / {n} * {n} AS start, SUM(b.count), SUM(b.sum),
                            MIN(b.min), MAX(b.max),
                            (SELECT l.last FROM buckets AS l WHERE l.series_id = b.series_id
                               AND l.ts >= b.ts / {n} * {n} AND l.ts < b.ts / {n} * {n} + {n}
                             ORDER BY l.last_ts DESC LIMIT 1),
                            MAX(b.last_ts)
                     FROM buckets AS b
                     WHERE b.series_id IN ({of_chart}) AND b.ts % {n} <> 0
                     GROUP BY b.series_id, start
                     {merge}",
                    merge = merge_into_existing!()
                ),
                &[c.clone(), size.clone()],
            )?,
            self.stmt(
                &format!("DELETE FROM buckets WHERE series_id IN ({of_chart}) AND ts % {n} <> 0"),
                &[c.clone(), size.clone()],
            )?,
            self.stmt(
                "UPDATE series SET cap = ?2,
                   n_buckets = (SELECT COUNT(*) FROM buckets WHERE series_id = series.id)
                 WHERE chart = ?1",
                &[c.clone(), num(cfg.max_points)],
            )?,
            self.settings_stmt(chart, Some(bucket_seconds), public, now)?,
        ])
        .await?;
        Ok(())
    }

    /// Deletes a chart's buckets, series and settings. Returns (buckets, series, settings) deleted.
    pub async fn delete_chart(&self, chart: &str) -> Result<(usize, usize, usize)> {
        let c = text(chart);
        let r = self
            .batch(vec![
                self.stmt(
                    "DELETE FROM buckets WHERE series_id IN (SELECT id FROM series WHERE chart = ?1)",
                    std::slice::from_ref(&c),
                )?,
                // The counter goes first, so that deleting the series does not count it down
                // one written row at a time (the series_removed trigger finds nothing to update).
                self.stmt(
                    "DELETE FROM chart_series WHERE chart = ?1",
                    std::slice::from_ref(&c),
                )?,
                self.stmt("DELETE FROM series WHERE chart = ?1", std::slice::from_ref(&c))?,
                self.stmt("DELETE FROM charts WHERE name = ?1", std::slice::from_ref(&c))?,
                // Its rules go with it: an absence rule would otherwise fire for a chart deleted
                // on purpose.
                self.stmt("DELETE FROM alerts WHERE chart = ?1", &[c])?,
            ])
            .await?;
        Ok((
            Self::changes(r.first()),
            Self::changes(r.get(2)),
            Self::changes(r.get(3)) + Self::changes(r.get(4)),
        ))
    }
}
