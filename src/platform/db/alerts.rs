//! Alert rules: one row per rule, read with the newest bucket (and, for aggregates, the buckets
//! of the window) of the series it watches, so a look at a rule is one query.

use super::{names_where, num, opt, text, Db, Guarded, Result};
use crate::domain::chunk::CHUNK_SECONDS;
use crate::domain::keys::Names;
use serde::Deserialize;
use wasm_bindgen::JsValue;

#[derive(Deserialize)]
pub struct AlertRow {
    pub id: String,
    pub name: String,
    pub chart: String,
    pub labels: String,
    pub agg: Option<String>,
    pub window_secs: Option<f64>,
    pub op: Option<String>,
    pub threshold: Option<f64>,
    pub absent_secs: Option<f64>,
    /// A JSON array of channel ids, or NULL for every channel.
    pub channels: Option<String>,
    pub state: String,
    pub since: f64,
    pub last_value: Option<f64>,
    pub judged_at: Option<f64>,
    pub check_at: Option<f64>,
    pub history: String,
    pub created_at: f64,
    pub writer: String,
    /// `damping::Told` as JSON.
    pub told: String,
    /// Only in a look (`due_alerts`, `alerts_of_charts`): the chart's bucket size,
    #[serde(default)]
    pub bucket_seconds: Option<f64>,
    /// `[ts, [count, sum, min, max, last, last_ts]]` of the series' newest bucket, as JSON,
    #[serde(default)]
    pub newest: Option<String>,
    /// and for aggregates other than `last`, the chunks overlapping the window with what cuts
    /// them: `[top, cap, [chunk, ...]]` (`domain::chunk`).
    #[serde(default)]
    pub window_chunks: Option<String>,
}

/// A new rule.
pub struct AlertInsert<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub chart: &'a str,
    pub labels: &'a str,
    pub agg: Option<&'a str>,
    pub window_secs: Option<i64>,
    pub op: Option<&'a str>,
    pub threshold: Option<f64>,
    pub absent_secs: Option<i64>,
    pub channels: Option<&'a str>,
    pub now: f64,
    pub writer: &'a str,
}

const COLUMNS: &str = "a.id, a.name, a.chart, a.labels, a.agg, a.window_secs, a.op, a.threshold,
    a.absent_secs, a.channels, a.state, a.since, a.last_value, a.judged_at, a.check_at, a.history,
    a.created_at, a.writer, a.told";

/// A look at rules: each with what its series holds at `?1` (`?2` is the default bucket size).
/// The newest bucket is reached through the newest chunk, one row along the primary key; a window
/// is read only `with_windows`, and then only for aggregates that need it, as the chunks (hours)
/// that overlap it, cut and folded in the Worker (`domain::chunk`): walking the JSON in SQL would
/// count every bucket as a row read. Buckets ahead of `?1` count: points may be stamped a little
/// ahead. `filter` ends the WHERE clause and may order and limit.
fn look(filter: &str, with_windows: bool) -> String {
    let windows = if with_windows {
        "a.agg IS NOT NULL AND a.agg <> 'last'"
    } else {
        "0"
    };
    format!(
        "SELECT {COLUMNS}, COALESCE(c.bucket_seconds, ?2) AS bucket_seconds,
           (SELECT json_array(k.newest, json(k.b -> ('$.\"' || k.newest || '\"'))) FROM chunks AS k
            WHERE k.series_id = s.id ORDER BY k.start DESC LIMIT 1) AS newest,
           CASE WHEN {windows} THEN
             (SELECT json_array(
                (SELECT t.upto FROM chunks AS t WHERE t.series_id = s.id ORDER BY t.start DESC LIMIT 1),
                s.cap, json_group_array(json_array(k.n, k.upto, json(k.b))))
              FROM chunks AS k WHERE k.series_id = s.id
                AND k.start > ?1 - a.window_secs - COALESCE(c.bucket_seconds, ?2) - {CHUNK_SECONDS})
           END AS window_chunks
         FROM alerts AS a
         LEFT JOIN series AS s ON s.chart = a.chart AND s.labels = a.labels
         LEFT JOIN charts AS c ON c.name = a.chart
         WHERE {filter}"
    )
}

impl Db {
    pub async fn create_alert(&self, a: &AlertInsert<'_>) -> Result<()> {
        self.batch(vec![self.stmt(
            "INSERT INTO alerts (id, name, chart, labels, agg, window_secs, op, threshold,
                                 absent_secs, channels, state, since, check_at, created_at, writer)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 'ok', ?11, ?12, ?11, ?13)",
            &[
                text(a.id),
                text(a.name),
                text(a.chart),
                text(a.labels),
                a.agg.map(text).unwrap_or(JsValue::NULL),
                opt(a.window_secs.map(|w| w as f64)),
                a.op.map(text).unwrap_or(JsValue::NULL),
                opt(a.threshold),
                opt(a.absent_secs.map(|w| w as f64)),
                a.channels.map(text).unwrap_or(JsValue::NULL),
                num(a.now),
                // Judged by the next minutely run (or the next ingest into its chart).
                num(a.now.floor()),
                text(a.writer),
            ],
        )?])
        .await?;
        Ok(())
    }

    /// The rules on the charts a caller may see, optionally of one chart, by chart and name.
    pub async fn alerts(&self, names: &Names, chart: Option<&str>) -> Result<Vec<AlertRow>> {
        let (clause, from, until) = names_where(names, "a.chart", 1, 2);
        self.all(
            &format!(
                "SELECT {COLUMNS} FROM alerts AS a WHERE {clause} AND (?3 IS NULL OR a.chart = ?3)
                 ORDER BY a.chart, a.name, a.id"
            ),
            &[from, until, chart.map(text).unwrap_or(JsValue::NULL)],
        )
        .await
    }

    pub async fn alert(&self, id: &str) -> Result<Option<AlertRow>> {
        let mut rows = self
            .all(
                &format!("SELECT {COLUMNS} FROM alerts AS a WHERE a.id = ?1"),
                &[text(id)],
            )
            .await?;
        Ok(rows.pop())
    }

    /// Returns whether there was a rule to delete.
    pub async fn delete_alert(&self, id: &str) -> Result<bool> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM alerts WHERE id = ?1", &[text(id)])?
            ])
            .await?;
        Ok(Self::changes(r.first()) > 0)
    }

    /// Rules due for a look by `now`, soonest first, along the partial index `alerts_check`.
    pub async fn due_alerts(
        &self,
        now: f64,
        bucket_seconds: u32,
        limit: u32,
    ) -> Result<Vec<AlertRow>> {
        self.all(
            &look("a.check_at <= ?1 ORDER BY a.check_at LIMIT ?3", true),
            &[num(now.floor()), num(bucket_seconds), num(limit)],
        )
        .await
    }

    /// The rules on the charts an ingest wrote (a JSON array of names), found through the index
    /// on chart, with the newest bucket of each but no window: `last` and absence rules are
    /// judged from it, aggregates only woken (see `alerts::decide`).
    pub async fn alerts_of_charts(
        &self,
        charts: &str,
        now: f64,
        bucket_seconds: u32,
    ) -> Result<Vec<AlertRow>> {
        self.all(
            &look("a.chart IN (SELECT value FROM json_each(?3))", false),
            &[num(now.floor()), num(bucket_seconds), text(charts)],
        )
        .await
    }

    /// The charts that have rules, through the index on chart (one row read per rule).
    pub async fn watched_charts(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Row {
            chart: String,
        }
        let rows: Vec<Row> = self
            .all("SELECT DISTINCT chart FROM alerts ORDER BY chart", &[])
            .await?;
        Ok(rows.into_iter().map(|r| r.chart).collect())
    }

    /// Saves judged rules and queues the notifications of those saved, in one transaction.
    /// Returns how many rules were saved (fewer than sent: another judgement saved some first)
    /// and the ids queued.
    pub async fn save_alerts_now(
        &self,
        saves: &str,
        writer: &str,
        events: &[Guarded<'_>],
        now: f64,
    ) -> Result<(usize, Vec<f64>)> {
        let mut stmts = vec![self.save_alerts(saves, writer, now)?];
        if !events.is_empty() {
            stmts.push(self.queue_guarded(events, now)?);
        }
        let results = self.batch(stmts).await?;
        let ids = if events.is_empty() {
            Vec::new()
        } else {
            Self::ids(results.get(1), now)
        };
        Ok((Self::changes(results.first()), ids))
    }

    /// The statement that saves judged rules (`saves`: a JSON array of `{id, read, state, since,
    /// last_value, check_at, history, told}`), each only if no other judgement saved it since it was
    /// read (its writer is still `read`); the rules saved get `writer`.
    pub fn save_alerts(
        &self,
        saves: &str,
        writer: &str,
        now: f64,
    ) -> Result<worker::D1PreparedStatement> {
        self.stmt(
            "UPDATE alerts SET state = j.value ->> 'state', since = j.value ->> 'since',
               last_value = j.value ->> 'last_value', judged_at = ?2,
               check_at = j.value ->> 'check_at', history = j.value ->> 'history',
               told = j.value ->> 'told', writer = ?3
             FROM json_each(?1) AS j
             WHERE alerts.id = j.value ->> 'id' AND alerts.writer = j.value ->> 'read'",
            &[text(saves), num(now), text(writer)],
        )
    }
}
