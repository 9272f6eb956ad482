//! Reading charts (series, buckets, the list) and changing them (settings, bucket size, delete).

use super::{internal, names_where, num, text, Db, Result};
use crate::domain::bucket::Bucket;
use crate::domain::chart::SERIES_SHOWN;
use crate::domain::chunk::{kept, Chunk, CHUNK_SECONDS};
use crate::domain::config::Config;
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
    pub bucket_seconds: u32,
    pub public: i64,
    /// `[upto, ts, [count, sum, min, max, last, last_ts]]`: the newest chunk's `upto`
    /// (`domain::chunk`) and its newest bucket, as JSON.
    pub newest: Option<String>,
    /// The oldest chunk holding a kept bucket, as `domain::chunk::Chunk` JSON.
    pub bottom: Option<String>,
    /// The chunks holding the newest `spark` buckets (those that end after `since`), as a JSON
    /// array of chunks.
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
                 WHERE s.chart = ?1
                   AND EXISTS (SELECT 1 FROM chunks AS k WHERE k.series_id = s.id) LIMIT 1",
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

    /// The newest `limit` buckets of a series in [from, to), ascending, of those within its cap.
    /// Rows read are the chunks (hours) that overlap the range, plus two probes; they travel back
    /// as one JSON text, which costs far less than one JavaScript object per row.
    pub async fn buckets(
        &self,
        series_id: f64,
        cap: u32,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<Bucket>> {
        #[derive(Deserialize)]
        struct Answer {
            top: Option<i64>,
            chunks: Option<String>,
        }
        // Rolling up inside SQL (GROUP BY, window functions, json_each) sends fewer rows back, but
        // D1 counts temporary b-trees and every JSON element walked as rows read. Rows read are
        // what D1 bills, so unpacking, the cut and the rollup happen in the Worker.
        // A chunk may hold buckets outside [from, to) at either end: `limit + 2` chunks always
        // hold the newest `limit` buckets in range.
        let sql = "SELECT (SELECT upto FROM chunks WHERE series_id = ?1 ORDER BY start DESC LIMIT 1) AS top,
              (SELECT json_group_array(json_array(n, upto, json(b))) FROM
                 (SELECT n, upto, b FROM chunks WHERE series_id = ?1 AND start > ?2 - ?5 AND start < ?3
                    AND upto > (SELECT upto FROM chunks WHERE series_id = ?1 ORDER BY start DESC LIMIT 1) - ?6
                  ORDER BY start DESC LIMIT ?4)) AS chunks";
        let args = [
            num(series_id),
            num(from as f64),
            num(to as f64),
            num(limit.saturating_add(2) as f64),
            num(CHUNK_SECONDS as f64),
            num(cap),
        ];
        let answer: Vec<Answer> = self.all(sql, &args).await?;
        let Some(Answer {
            top: Some(top),
            chunks: Some(chunks),
        }) = answer.into_iter().next()
        else {
            return Ok(Vec::new());
        };
        let chunks: Vec<Chunk> =
            serde_json::from_str(&chunks).map_err(internal("decode chunks"))?;
        let mut buckets = kept(chunks, top, i64::from(cap));
        buckets.retain(|b| b.ts >= from && b.ts < to);
        let extra = buckets.len().saturating_sub(limit);
        buckets.drain(..extra);
        Ok(buckets)
    }

    /// Every series a caller may list, with what its newest, oldest kept and sparkline chunks say
    /// (the sparkline's only those that end after `since`, when given: a refresh then reads the
    /// chunks that may have changed). A key's chart limit becomes a range on the (chart, labels)
    /// index, and a listing of public charts starts from the few charts with settings, so neither
    /// reads series it does not list. Reads a handful of chunk rows per listed series (for a
    /// sparkline of at most 60 minute buckets), whatever a series holds.
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
        // Each series reads its newest chunk (`t`, joined once: two index rows), the oldest
        // chunk it keeps a bucket of (walking up from the oldest: one row, two when the oldest
        // hour is wholly past the cap; a walk that stops at a match never reads into the next
        // series, so the rows read do not tell whether another chart follows) and the chunks of
        // its sparkline: back to the chunk holding the sparkline's oldest bucket (found by
        // `upto`, walking back from the newest, so a sparse series reads as far as it must and a
        // dense one an hour or two), and with `since` no further back than the hour of the
        // oldest bucket that may end after it, which is mostly `t` alone and then costs nothing
        // more. An old `since` reads no more than no `since`.
        let since_hour = format!(
            "CAST((?5 - COALESCE(c.bucket_seconds, ?2) + 1) / {CHUNK_SECONDS} AS INTEGER) * {CHUNK_SECONDS}"
        );
        let columns = format!(
            "s.chart, s.labels,
                COALESCE(c.bucket_seconds, ?2) AS bucket_seconds, COALESCE(c.public, 0) AS public,
                CASE WHEN t.series_id IS NOT NULL THEN
                  json_array(t.upto, t.newest, json(t.b -> ('$.\"' || t.newest || '\"')))
                END AS newest,
                (SELECT json_array(k.n, k.upto, json(k.b)) FROM chunks AS k
                   WHERE k.series_id = s.id AND k.upto > t.upto - ?6
                   ORDER BY k.start LIMIT 1) AS bottom,
                CASE
                  WHEN ?3 <= 0 OR t.series_id IS NULL THEN NULL
                  WHEN ?5 > -9.0e15 AND t.start < {since_hour} THEN '[]'
                  WHEN ?5 > -9.0e15 AND t.start - {CHUNK_SECONDS} < {since_hour} THEN
                    json_array(json_array(t.n, t.upto, json(t.b)))
                  ELSE
                  (SELECT json_group_array(json_array(r.n, r.upto, json(r.b))) FROM
                     (SELECT k.n, k.upto, k.b FROM chunks AS k
                      WHERE k.series_id = s.id
                        AND k.start >= MAX(
                          CASE WHEN ?5 > -9.0e15 THEN {since_hour} ELSE -9.0e15 END,
                          COALESCE((SELECT j.start FROM chunks AS j WHERE j.series_id = s.id
                                      AND j.upto - j.n <= t.upto - MIN(?3, ?6)
                                    ORDER BY j.start DESC LIMIT 1), -9.0e15))
                      ORDER BY k.start DESC) AS r)
                END AS spark"
        );
        let newest = "LEFT JOIN chunks AS t ON t.series_id = s.id AND t.start =
            (SELECT x.start FROM chunks AS x WHERE x.series_id = s.id ORDER BY x.start DESC LIMIT 1)";
        let (names_clause, from, until) = names_where(&names, "s.chart", 1, 4);
        let sql = if public_only {
            format!(
                // CROSS JOIN keeps charts, the few with settings, as the outer loop.
                "SELECT {columns} FROM charts AS c CROSS JOIN series AS s ON s.chart = c.name {newest}
                 WHERE c.public = 1 AND {names_clause}
                 ORDER BY s.chart, s.labels"
            )
        } else {
            format!(
                "SELECT {columns} FROM series AS s LEFT JOIN charts AS c ON c.name = s.chart {newest}
                 WHERE {names_clause}
                 ORDER BY s.chart, s.labels"
            )
        };
        // Without `since`, every bucket is at or after the earliest time there is.
        let since = since.map_or(-9.0e15, |t| t as f64);
        self.all(
            &sql,
            &[
                from,
                num(cfg.bucket_seconds),
                num(spark),
                until,
                num(since),
                num(cfg.max_points),
            ],
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
    /// in one transaction so that no point ingested meanwhile is lost: the kept buckets of each
    /// series are folded into buckets of the new size and packed into new chunks under the
    /// negated series id, the old chunks deleted, and the new ones moved to the real id. Buckets
    /// past the cap stay out, so the answers show what they showed, merged. An admin's rare
    /// request, so it may walk every bucket of the chart.
    pub async fn rebucket(
        &self,
        chart: &str,
        bucket_seconds: u32,
        public: Option<bool>,
        cap: u32,
        now: f64,
    ) -> Result<()> {
        let c = text(chart);
        let size = num(bucket_seconds);
        // D1 binds every JavaScript number as REAL; integer division needs an INTEGER.
        let n = "CAST(?2 AS INTEGER)";
        self.batch(vec![
            self.stmt(
                &format!(
                    "WITH old AS (
                       SELECT k.series_id AS sid, CAST(e.key AS INTEGER) AS ts, e.value AS v,
                              k.upto - k.n + ROW_NUMBER() OVER (
                                PARTITION BY k.series_id, k.start ORDER BY CAST(e.key AS INTEGER)) AS seq,
                              (SELECT t.upto FROM chunks AS t WHERE t.series_id = k.series_id
                               ORDER BY t.start DESC LIMIT 1) - ?3 AS past
                       FROM series AS s JOIN chunks AS k ON k.series_id = s.id, json_each(k.b) AS e
                       WHERE s.chart = ?1
                     ), ranked AS (
                       SELECT sid, ts / {n} * {n} AS bts, v,
                              ROW_NUMBER() OVER (PARTITION BY sid, ts / {n} * {n} ORDER BY v ->> 5 DESC) AS rn
                       FROM old WHERE seq > past
                     ), merged AS (
                       SELECT sid, bts, json_array(SUM(v ->> 0), SUM(v ->> 1), MIN(v ->> 2), MAX(v ->> 3),
                                                   MAX(CASE WHEN rn = 1 THEN v ->> 4 END), MAX(v ->> 5)) AS bucket
                       FROM ranked GROUP BY sid, bts
                     )
                     INSERT INTO chunks (series_id, start, newest, n, b)
                     SELECT -sid, bts / {CHUNK_SECONDS} * {CHUNK_SECONDS} AS hour, MAX(bts), COUNT(*),
                            json_group_object(CAST(bts AS TEXT), json(bucket))
                     FROM merged GROUP BY sid, hour ORDER BY sid, hour"
                ),
                &[c.clone(), size.clone(), num(cap)],
            )?,
            self.stmt(
                "DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE chart = ?1)",
                std::slice::from_ref(&c),
            )?,
            self.stmt(
                "UPDATE chunks SET series_id = -series_id
                 WHERE series_id IN (SELECT -id FROM series WHERE chart = ?1)",
                std::slice::from_ref(&c),
            )?,
            self.settings_stmt(chart, Some(bucket_seconds), public, now)?,
        ])
        .await?;
        Ok(())
    }

    /// Deletes a chart's chunks, series and settings. Returns (chunks, series, settings) deleted.
    pub async fn delete_chart(&self, chart: &str, cap: u32) -> Result<(usize, usize, usize)> {
        let c = text(chart);
        let r = self
            .batch(vec![
                // The buckets a reader saw: each series' held ones up to its cap.
                self.stmt(
                    "SELECT COALESCE(SUM(MIN(?2, COALESCE(
                       (SELECT SUM(k.n) FROM chunks AS k WHERE k.series_id = s.id), 0))), 0) AS n
                     FROM series AS s WHERE s.chart = ?1",
                    &[c.clone(), num(cap)],
                )?,
                self.stmt(
                    "DELETE FROM chunks WHERE series_id IN (SELECT id FROM series WHERE chart = ?1)",
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
                self.stmt(
                    "DELETE FROM alerts WHERE chart = ?1",
                    std::slice::from_ref(&c),
                )?,
                // Sent again as JSON, it shows in /metrics as pushplot_value.
                self.stmt("DELETE FROM pushed_charts WHERE name = ?1", &[c])?,
            ])
            .await?;
        #[derive(Deserialize)]
        struct Count {
            n: f64,
        }
        let buckets = match r.first() {
            Some(result) => result
                .results::<Count>()
                .map_err(super::internal("delete count"))?
                .first()
                .map_or(0, |c| c.n as usize),
            None => 0,
        };
        Ok((
            buckets,
            Self::changes(r.get(3)),
            Self::changes(r.get(4)) + Self::changes(r.get(5)),
        ))
    }
}
