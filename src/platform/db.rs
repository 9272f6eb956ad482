//! Every SQL statement of pushplot, with bound parameters only, and the D1 cost of each call
//! (rows read and written, as Cloudflare bills them) summed per request.

use crate::domain::bucket::Bucket;
use crate::domain::chart::{too_many_series, SERIES_SHOWN};
use crate::domain::config::Config;
use crate::domain::error::ApiError;
use crate::domain::keys::{ChartLimit, Scope};
use crate::domain::names::Labels;
use serde::Deserialize;
use std::cell::Cell;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, D1Result};

/// What the D1 calls of one request cost.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cost {
    pub ms: f64,
    pub rows_read: usize,
    pub rows_written: usize,
    pub calls: u32,
    /// How many requests shared these calls (group commit); 1 when not shared.
    pub shared_by: usize,
}

impl Cost {
    /// What was spent after `before` was taken.
    pub fn since(self, before: Cost) -> Cost {
        Cost {
            ms: self.ms - before.ms,
            rows_read: self.rows_read - before.rows_read,
            rows_written: self.rows_written - before.rows_written,
            calls: self.calls - before.calls,
            shared_by: self.shared_by,
        }
    }
}

pub struct Db {
    d1: D1Database,
    cost: Cell<Cost>,
}

type Result<T> = std::result::Result<T, ApiError>;

fn num(n: impl Into<f64>) -> JsValue {
    JsValue::from_f64(n.into())
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

/// What the `series_added` trigger (migrations/0002) raises when a chart would hold too many series.
const TOO_MANY_SERIES: &str = "pushplot:too_many_series";

/// Logs the D1 error for the operator and answers the client with the opaque internal error.
fn internal(context: &'static str) -> impl Fn(worker::Error) -> ApiError {
    move |e| {
        worker::console_error!("d1 {context}: {e}");
        ApiError::internal()
    }
}

// The partial buckets of a request (one per series and second, merged in Rust), unpacked from the
// one JSON parameter ?1 and placed into their chart's buckets; ?2 is the default bucket size.
/// How a partial bucket folds into the stored one: the same rule as `domain::bucket::Bucket::merge`.
macro_rules! merge_into_existing {
    () => {
        "ON CONFLICT (series_id, ts) DO UPDATE SET
           count = count + excluded.count,
           sum = sum + excluded.sum,
           min = MIN(min, excluded.min),
           max = MAX(max, excluded.max),
           last = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last ELSE last END,
           last_ts = MAX(last_ts, excluded.last_ts)"
    };
}

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

#[derive(Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub hash: String,
    pub scope: String,
    pub prefix: Option<String>,
    pub exact: i64,
    pub name: String,
    pub created_at: f64,
}

impl Db {
    pub fn new(d1: D1Database) -> Self {
        Db {
            d1,
            cost: Cell::new(Cost::default()),
        }
    }

    pub fn cost(&self) -> Cost {
        self.cost.get()
    }

    /// Reports a write that another request's calls made on this request's behalf.
    pub fn share(&self, round: Cost, requests: usize, counted_here: bool) {
        let mut c = self.cost.get();
        if !counted_here {
            c.ms += round.ms;
            c.rows_read += round.rows_read;
            c.rows_written += round.rows_written;
            c.calls += round.calls;
        }
        c.shared_by = requests;
        self.cost.set(c);
    }

    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement> {
        self.d1.prepare(sql).bind(args).map_err(internal("bind"))
    }

    fn record(&self, started: f64, results: &[D1Result]) {
        let mut c = self.cost.get();
        c.ms += worker::js_sys::Date::now() - started;
        c.calls += 1;
        for r in results {
            if let Ok(Some(meta)) = r.meta() {
                c.rows_read += meta.rows_read.unwrap_or(0);
                c.rows_written += meta.rows_written.unwrap_or(0);
            }
        }
        self.cost.set(c);
    }

    async fn all<T: for<'a> Deserialize<'a>>(&self, sql: &str, args: &[JsValue]) -> Result<Vec<T>> {
        let stmt = self.stmt(sql, args)?;
        let started = worker::js_sys::Date::now();
        let result = stmt.all().await.map_err(internal("query"))?;
        let rows = result.results::<T>().map_err(internal("decode"));
        self.record(started, std::slice::from_ref(&result));
        rows
    }

    /// Runs statements as one transaction in one round trip.
    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>> {
        let started = worker::js_sys::Date::now();
        let results = self.d1.batch(stmts).await.map_err(internal("batch"))?;
        self.record(started, &results);
        Ok(results)
    }

    fn changes(result: Option<&D1Result>) -> usize {
        result
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0)
    }

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
        match self.d1.batch(stmts).await {
            Ok(results) => {
                self.record(started, &results);
                Ok(())
            }
            // The `series_added` trigger refuses a series past the limit, and the whole
            // transaction with it: nothing of the batch is stored.
            Err(e) if e.to_string().contains(TOO_MANY_SERIES) => {
                self.record(started, &[]);
                Err(too_many_series(None, cfg.max_series_per_chart))
            }
            Err(e) => {
                self.record(started, &[]);
                Err(internal("ingest")(e))
            }
        }
    }

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
        struct Packed {
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
        let packed: Vec<Packed> = self.all(sql, &args).await?;
        let rows: Vec<(i64, i64, f64, f64, f64, f64, f64)> = packed
            .first()
            .and_then(|p| p.rows.as_deref())
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| {
                worker::console_error!("d1 decode buckets: {e}");
                ApiError::internal()
            })?
            .unwrap_or_default();
        let mut buckets: Vec<Bucket> = rows
            .into_iter()
            .map(|(ts, count, sum, min, max, last, last_ts)| Bucket {
                ts,
                count,
                sum,
                min,
                max,
                last,
                last_ts,
            })
            .collect();
        buckets.sort_by_key(|b| b.ts);
        Ok(buckets)
    }

    /// Every series a caller may list, with first and newest bucket and the averages of its newest
    /// `spark` buckets. A key's chart limit becomes a range on the (chart, labels) index, and a
    /// listing of public charts starts from the few charts with settings, so neither reads series
    /// it does not list. Reads about `spark + 3` index rows per listed series, whatever a series
    /// holds.
    pub async fn list(
        &self,
        limit: Option<&ChartLimit>,
        public_only: bool,
        cfg: &Config,
        spark: u32,
    ) -> Result<Vec<ListRow>> {
        let (from, until) = limit.map(ChartLimit::name_range).unwrap_or_default();
        let columns = "s.chart, s.labels, s.n_buckets,
                COALESCE(c.bucket_seconds, ?2) AS bucket_seconds, COALESCE(c.public, 0) AS public,
                (SELECT MIN(b.ts) FROM buckets AS b WHERE b.series_id = s.id) AS first_ts,
                (SELECT json_array(b.ts, b.last, b.last_ts) FROM buckets AS b
                   WHERE b.series_id = s.id ORDER BY b.ts DESC LIMIT 1) AS newest,
                CASE WHEN ?3 > 0 THEN
                  (SELECT json_group_array(json_array(r.ts, r.sum / r.count)) FROM
                     (SELECT b.ts, b.sum, b.count FROM buckets AS b WHERE b.series_id = s.id
                      ORDER BY b.ts DESC LIMIT ?3) AS r)
                END AS spark";
        // A bound in SQL text rather than `?4 IS NULL OR ...`, which would keep SQLite from
        // stopping at the end of the range.
        let until_clause = if until.is_some() {
            "AND s.chart < ?4"
        } else {
            "AND ?4 IS NULL"
        };
        let sql = if public_only {
            format!(
                // CROSS JOIN keeps charts, the few with settings, as the outer loop.
                "SELECT {columns} FROM charts AS c CROSS JOIN series AS s ON s.chart = c.name
                 WHERE c.public = 1 AND s.chart >= ?1 {until_clause}
                 ORDER BY s.chart, s.labels"
            )
        } else {
            format!(
                "SELECT {columns} FROM series AS s LEFT JOIN charts AS c ON c.name = s.chart
                 WHERE s.chart >= ?1 {until_clause}
                 ORDER BY s.chart, s.labels"
            )
        };
        self.all(
            &sql,
            &[
                text(&from),
                num(cfg.bucket_seconds),
                num(spark),
                until.as_deref().map(text).unwrap_or(JsValue::NULL),
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
                self.stmt("DELETE FROM series WHERE chart = ?1", std::slice::from_ref(&c))?,
                self.stmt("DELETE FROM charts WHERE name = ?1", &[c])?,
            ])
            .await?;
        Ok((
            Self::changes(r.first()),
            Self::changes(r.get(1)),
            Self::changes(r.get(2)),
        ))
    }

    /// Deletes up to `chunk` buckets older than `cutoff`, keeps the counters exact, and drops
    /// series left empty, all in one transaction. Returns (buckets deleted, series dropped).
    pub async fn retention_chunk(&self, cutoff: i64, chunk: u32) -> Result<(usize, usize)> {
        // The same victims in both statements: same data, same plan, inside one transaction.
        let victims = "SELECT b.series_id AS sid, b.ts FROM series AS s
            JOIN buckets AS b ON b.series_id = s.id AND b.ts < ?1 ORDER BY s.id, b.ts LIMIT ?2";
        let args = [num(cutoff as f64), num(chunk)];
        let r = self
            .batch(vec![
                self.stmt(
                    &format!(
                        "WITH v AS ({victims})
                         UPDATE series SET n_buckets = n_buckets - gone.n
                         FROM (SELECT sid, COUNT(*) AS n FROM v GROUP BY sid) AS gone
                         WHERE series.id = gone.sid"
                    ),
                    &args,
                )?,
                self.stmt(
                    &format!("DELETE FROM buckets WHERE (series_id, ts) IN ({victims})"),
                    &args,
                )?,
                // Walks the partial index `series_empty` (migrations/0002), not every series.
                self.stmt("DELETE FROM series WHERE n_buckets <= 0", &[])?,
            ])
            .await?;
        Ok((Self::changes(r.get(1)), Self::changes(r.get(2))))
    }

    pub async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let mut rows = self
            .all(
                "SELECT id, hash, scope, prefix, exact, name, created_at FROM api_keys WHERE id = ?1",
                &[text(id)],
            )
            .await?;
        Ok(rows.pop())
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        self.all(
            "SELECT id, hash, scope, prefix, exact, name, created_at FROM api_keys ORDER BY created_at, id",
            &[],
        )
        .await
    }

    pub async fn create_key(
        &self,
        id: &str,
        hash: &str,
        scope: Scope,
        limit: Option<&ChartLimit>,
        name: &str,
        now: f64,
    ) -> Result<()> {
        let exact = matches!(limit, Some(ChartLimit::Exact(_)));
        self.batch(vec![self.stmt(
            "INSERT INTO api_keys (id, hash, scope, prefix, exact, name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                text(id),
                text(hash),
                text(scope.as_str()),
                limit.map(|l| text(l.prefix())).unwrap_or(JsValue::NULL),
                num(u8::from(exact)),
                text(name),
                num(now.floor()),
            ],
        )?])
        .await?;
        Ok(())
    }

    /// Returns whether a key was there to delete.
    pub async fn delete_key(&self, id: &str) -> Result<bool> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM api_keys WHERE id = ?1", &[text(id)])?
            ])
            .await?;
        Ok(Self::changes(r.first()) > 0)
    }
}
