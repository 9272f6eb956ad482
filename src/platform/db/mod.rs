//! Every SQL statement of pushplot, with bound parameters only, and the D1 cost of each call
//! (rows read and written, as Cloudflare bills them) summed per request. One submodule per
//! feature; the calls and the cost accounting they share live here.

/// How a bucket (a row of one bucket, keyed by its start in `newest`) folds into its stored
/// chunk: added if the chunk lacks it, else merged by the rule of `domain::bucket::Bucket::merge`.
/// One written row, and no JSON is walked: the bucket is reached by its key.
macro_rules! merge_into_chunk {
    () => {
        "ON CONFLICT (series_id, start) DO UPDATE SET
           n = n + ((b -> ('$.\"' || excluded.newest || '\"')) IS NULL),
           upto = upto + ((b -> ('$.\"' || excluded.newest || '\"')) IS NULL),
           newest = MAX(newest, excluded.newest),
           b = json_set(b, '$.\"' || excluded.newest || '\"', (
             SELECT CASE WHEN o IS NULL THEN json(e) ELSE json_array(
                      (o ->> 0) + (e ->> 0), (o ->> 1) + (e ->> 1),
                      MIN(o ->> 2, e ->> 2), MAX(o ->> 3, e ->> 3),
                      CASE WHEN (e ->> 5) >= (o ->> 5) THEN e ->> 4 ELSE o ->> 4 END,
                      MAX(o ->> 5, e ->> 5)) END
             FROM (SELECT (b -> ('$.\"' || excluded.newest || '\"')) AS o,
                          (excluded.b -> ('$.\"' || excluded.newest || '\"')) AS e)))"
    };
}

mod alerts;
mod charts;
mod ingest;
mod jobs;
mod keys;
mod metrics;
mod notify;
mod retention;

pub use alerts::{AlertInsert, AlertRow};
pub use ingest::Wrote;
pub use jobs::{JobRow, JobWrite, RunWrite};
pub use metrics::{GroupRow, GroupWrite};
pub use notify::{ChannelRow, Guarded, NotificationRow};

use crate::domain::error::ApiError;
use crate::domain::keys::Names;
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
    /// Statements run (D1 counts each as a query: 50 per invocation on the free plan).
    pub queries: u32,
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
            queries: self.queries - before.queries,
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

/// A number, or SQL NULL.
fn opt(v: Option<f64>) -> JsValue {
    v.map(num).unwrap_or(JsValue::NULL)
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

/// A key's chart limit as SQL on `column`: the clause and the values of its two parameters `?{lo}`
/// and `?{hi}`. Bounds go into the SQL text rather than `?hi IS NULL OR ...`, which would keep
/// SQLite from stopping at the end of the range; both parameters are always bound, so both are
/// always named.
fn names_where(names: &Names, column: &str, lo: u8, hi: u8) -> (String, JsValue, JsValue) {
    match names {
        Names::Exact(c) => (
            format!("{column} = ?{lo} AND ?{hi} IS NULL"),
            text(c),
            JsValue::NULL,
        ),
        Names::Range { from, until: None } => (
            format!("{column} >= ?{lo} AND ?{hi} IS NULL"),
            text(from),
            JsValue::NULL,
        ),
        Names::Range {
            from,
            until: Some(u),
        } => (
            format!("{column} >= ?{lo} AND {column} < ?{hi}"),
            text(from),
            text(u),
        ),
    }
}

/// What the `series_added` trigger (migrations/0002) raises when a chart would hold too many series.
pub(super) const TOO_MANY_SERIES: &str = "pushplot:too_many_series";

/// Logs the error of a D1 call, or of the JSON going to or coming from one, for the operator and
/// answers the client with the opaque internal error.
fn internal<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> ApiError {
    move |e| {
        worker::console_error!("d1 {context}: {e}");
        ApiError::internal()
    }
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

    /// Forgets what this request cost, so that `Server-Timing` says nothing of rows a caller may
    /// not see.
    pub fn hide_cost(&self) {
        self.cost.set(Cost::default());
    }

    /// Reports a write that another request's calls made on this request's behalf.
    pub fn share(&self, round: Cost, requests: usize, counted_here: bool) {
        let mut c = self.cost.get();
        if !counted_here {
            c.ms += round.ms;
            c.rows_read += round.rows_read;
            c.rows_written += round.rows_written;
            c.calls += round.calls;
            c.queries += round.queries;
        }
        c.shared_by = requests;
        self.cost.set(c);
    }

    fn stmt(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement> {
        self.d1.prepare(sql).bind(args).map_err(internal("bind"))
    }

    fn record(&self, started: f64, results: &[D1Result], statements: usize) {
        let mut c = self.cost.get();
        c.ms += worker::js_sys::Date::now() - started;
        c.calls += 1;
        c.queries += statements as u32;
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
        self.record(started, std::slice::from_ref(&result), 1);
        rows
    }

    /// Runs statements as one transaction in one round trip.
    async fn batch(&self, stmts: Vec<D1PreparedStatement>) -> Result<Vec<D1Result>> {
        let started = worker::js_sys::Date::now();
        let n = stmts.len();
        let results = self.d1.batch(stmts).await.map_err(internal("batch"))?;
        self.record(started, &results, n);
        Ok(results)
    }

    fn changes(result: Option<&D1Result>) -> usize {
        result
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0)
    }
}
