//! The write of ingested points: series made sure of, partial buckets folded into stored ones.

use super::{num, text, Db, Result, TOO_MANY_SERIES};
use crate::domain::chart::too_many_series;
use crate::domain::config::Config;
use crate::domain::error::ApiError;
use worker::D1PreparedStatement;

// The partial buckets of a request (one per series and second, merged in Rust), unpacked from the
// one JSON parameter ?1, folded per bucket (?2 is the default bucket size) and each placed into
// the chunk of its hour (`domain::chunk::CHUNK_SECONDS`). The last value of a bucket is the one
// with the latest time: MAX over the time printed at a fixed width with the value's JSON text
// after it. A window function (ROW_NUMBER) said the same for 5 more rows read per point, as D1
// counts its sorter. Partials of a series never share a second within a parameter; were two
// stamped alike, either is the last, as before. A series that does not exist joins as NULL, and
// the chunk's NOT NULL series_id refuses the whole transaction: a write that skipped making sure
// of its series (`known`) then stores nothing and is made again in full.
macro_rules! partials {
    () => {
        "
WITH g AS (
  SELECT j.value ->> 'c' AS chart, j.value ->> 'l' AS labels, j.value -> 'p' AS pts
  FROM json_each(?1) AS j
), gs AS (
  SELECT s.id AS sid, CAST(COALESCE(c.bucket_seconds, ?2) AS INTEGER) AS bs, g.pts
  FROM g LEFT JOIN series AS s ON s.chart = g.chart AND s.labels = g.labels
  LEFT JOIN charts AS c ON c.name = g.chart
), pt AS (
  SELECT gs.sid, (e ->> 0) / gs.bs * gs.bs AS bts, e ->> 1 AS n, e ->> 2 AS s,
         e ->> 3 AS mn, e ->> 4 AS mx, e -> 5 AS l, e ->> 6 AS lt"
    };
}

// Every partial of every series; D1 counts each row json_each yields as a row read.
macro_rules! all_partials {
    () => {
        "
  FROM (SELECT gs.sid, gs.bs, e.value AS e FROM gs, json_each(gs.pts) AS e) AS gs
)
INSERT INTO chunks (series_id, start, newest, n, b)"
    };
}

// The one partial of each series (`Batch::one_partial_each`), without a json_each over it: one
// row read less per point.
macro_rules! first_partials {
    () => {
        "
  FROM (SELECT gs.sid, gs.bs, gs.pts -> 0 AS e FROM gs) AS gs
)
INSERT INTO chunks (series_id, start, newest, n, b)"
    };
}

const UPSERT_BUCKETS: &str = concat!(
    partials!(),
    all_partials!(),
    "
SELECT sid, bts / 3600 * 3600, bts, 1, json_object(CAST(bts AS TEXT), json_array(SUM(n), SUM(s),
       MIN(mn), MAX(mx), json(substr(MAX(printf('%024.6f', lt) || l), 25)), MAX(lt)))
FROM pt WHERE true GROUP BY sid, bts
",
    merge_into_chunk!()
);

// The same when every series has one partial bucket: nothing to fold, and no GROUP BY, whose
// sorter D1 counts as one or two rows read more per point, nor a json_each over the partials.
const UPSERT_ONE_EACH: &str = concat!(
    partials!(),
    first_partials!(),
    "
SELECT sid, bts / 3600 * 3600, bts, 1, json_object(CAST(bts AS TEXT), json_array(n, s, mn, mx, json(l), lt))
FROM pt WHERE true
",
    merge_into_chunk!()
);

/// What SQLite says when a point's series does not exist (see UPSERT_BUCKETS).
const SERIES_MISSING: &str = "NOT NULL constraint failed: chunks.series_id";

/// How an ingest ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wrote {
    Stored,
    /// Only with `known`: a series was not there, and nothing was stored.
    SeriesMissing,
    /// Only for a push: its group changed since it was read, and nothing was stored.
    Raced,
}

impl Db {
    /// Writes batches, given as their SQL parameters (`Batch::to_sql_json`), in one transaction
    /// and one round trip: per parameter, make sure every series exists (carrying the current
    /// MAX_POINTS and MAX_SERIES_PER_CHART), then fold the points into their buckets. `one_each`
    /// says that every series of every parameter has a single partial bucket
    /// (`Batch::one_partial_each`). Numbering and trimming happen in the chunks' triggers
    /// (`chunk_reused` takes over a full series' oldest hour for its new one, `chunk_added`
    /// numbers any other new hour and trims), the series limit in `series_added`. Every
    /// statement reads only the rows the request touches, so the cost does not grow with what a
    /// chart already holds.
    ///
    /// With `known`, the caller has seen every series written before and the statements that
    /// make sure of them are left out (three rows read per point); if one is gone after all,
    /// nothing is stored and the answer is `Wrote::SeriesMissing`.
    pub async fn ingest(
        &self,
        params: &[&str],
        one_each: bool,
        known: bool,
        cfg: &Config,
        now: f64,
    ) -> Result<Wrote> {
        let stmts = self.ingest_statements(params, one_each, known, cfg, now)?;
        self.write_points(stmts, known, cfg).await
    }

    /// The statements that write `params` (see `ingest`), for a caller that adds its own to the
    /// same transaction.
    pub(super) fn ingest_statements(
        &self,
        params: &[&str],
        one_each: bool,
        known: bool,
        cfg: &Config,
        now: f64,
    ) -> Result<Vec<D1PreparedStatement>> {
        let ensure_series = "INSERT INTO series (chart, labels, cap, max_series, created_at)
            SELECT j.value ->> 'c', j.value ->> 'l', ?2, ?3, ?4 FROM json_each(?1) AS j WHERE true
            ON CONFLICT (chart, labels) DO UPDATE SET cap = excluded.cap, max_series = excluded.max_series
            WHERE cap <> excluded.cap OR max_series <> excluded.max_series";
        let mut stmts = Vec::with_capacity(params.len() * 2);
        for p in params {
            let points = text(p);
            if !known {
                stmts.push(self.stmt(
                    ensure_series,
                    &[
                        points.clone(),
                        num(cfg.max_points),
                        num(cfg.max_series_per_chart),
                        num(now.floor()),
                    ],
                )?);
            }
            let upsert = if one_each {
                UPSERT_ONE_EACH
            } else {
                UPSERT_BUCKETS
            };
            stmts.push(self.stmt(upsert, &[points, num(cfg.bucket_seconds)])?);
        }
        Ok(stmts)
    }

    /// Runs statements that write points as one transaction, telling the failures apart.
    pub(super) async fn write_points(
        &self,
        stmts: Vec<D1PreparedStatement>,
        known: bool,
        cfg: &Config,
    ) -> Result<Wrote> {
        let started = worker::js_sys::Date::now();
        let n = stmts.len();
        match self.d1.batch(stmts).await {
            Ok(results) => {
                self.record(started, &results, n);
                Ok(Wrote::Stored)
            }
            // A statement failed inside the transaction, so none of it is stored.
            Err(e) if known && e.to_string().contains(SERIES_MISSING) => {
                self.record(started, &[], n);
                Ok(Wrote::SeriesMissing)
            }
            // A push whose group changed since it was read (migration 0011): nothing stored.
            Err(e) if e.to_string().contains("push_raced") => {
                self.record(started, &[], n);
                Ok(Wrote::Raced)
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
