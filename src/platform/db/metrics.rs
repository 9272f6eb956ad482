//! Pushed metric groups (the Pushgateway API): a group's row written in the same transaction as
//! its samples' points, read back for `GET /metrics`, and expired by the hourly run.

use super::{names_where, num, text, Db, Result, Wrote};
use crate::domain::config::Config;
use crate::domain::keys::Names;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct GroupRow {
    /// The grouping labels as canonical JSON (`Labels::canonical`).
    pub grouping: String,
    /// The group's families in the text exposition format, the grouping labels on every sample.
    pub metrics: String,
    pub pushed_at: f64,
    pub failed_at: f64,
    /// Bumped by each push (migration 0011).
    pub version: f64,
}

/// A series' newest value, for the `pushplot_value` family of a scrape.
#[derive(Deserialize)]
pub struct LastRow {
    pub chart: String,
    pub labels: String,
    /// `[count, sum, min, max, last, last_ts]` of its newest bucket, as JSON.
    pub newest: Option<String>,
}

/// What a push does to its group's row. `read` is the version of the group the push read and
/// checked against, `None` when it saw no live group.
pub enum GroupWrite<'a> {
    /// PUT and POST: the group as it is now.
    Save {
        grouping: &'a str,
        job: &'a str,
        metrics: &'a str,
        /// A JSON array of the charts it writes.
        names: &'a str,
        read: Option<f64>,
    },
    /// DELETE.
    Delete { grouping: &'a str, read: f64 },
}

impl Db {
    /// Writes a push: its group's row and its samples' points (`params`, as `ingest` takes
    /// them), in one transaction, so that a refused push changes nothing. `live_since` is when a
    /// group must have been pushed to be live (see `groups`). Returns `false`, having stored
    /// nothing, when the group changed since the push read it.
    pub async fn push(
        &self,
        group: GroupWrite<'_>,
        params: &[&str],
        live_since: Option<f64>,
        cfg: &Config,
        now: f64,
    ) -> Result<bool> {
        let mut stmts = vec![match group {
            GroupWrite::Save {
                grouping,
                job,
                metrics,
                names,
                read,
            } => self.stmt(
                // A group the push saw is replaced only at the version it saw; one it did not see
                // only if it is still not live (expired, or never pushed and refused long ago).
                "INSERT INTO metric_groups (grouping, job, metrics, names, pushed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (grouping) DO UPDATE SET
                   metrics = excluded.metrics, names = excluded.names,
                   pushed_at = excluded.pushed_at, version = version + 1
                 WHERE (?6 IS NOT NULL AND version = ?6)
                    OR (?6 IS NULL AND NOT (pushed_at >= ?7 OR (pushed_at = 0 AND failed_at >= ?7)))",
                &[
                    text(grouping),
                    text(job),
                    text(metrics),
                    text(names),
                    num(now),
                    super::opt(read),
                    num(live_since.unwrap_or(-1.0)),
                ],
            )?,
            GroupWrite::Delete { grouping, read } => self.stmt(
                "DELETE FROM metric_groups WHERE grouping = ?1 AND version = ?2",
                &[text(grouping), num(read)],
            )?,
        }];
        // Aborts the transaction when the statement above changed nothing.
        stmts.push(self.stmt(
            "INSERT INTO push_guard (ok) SELECT 1 WHERE changes() = 0",
            &[],
        )?);
        if let GroupWrite::Save { names, .. } = group {
            // A name already there is not written again.
            stmts.push(self.stmt(
                "INSERT OR IGNORE INTO pushed_charts (name) SELECT value FROM json_each(?1)",
                &[text(names)],
            )?);
        }
        stmts.extend(self.ingest_statements(params, false, false, cfg, now)?);
        Ok(self.write_points(stmts, false, cfg).await? != Wrote::Raced)
    }

    /// A refused push of an existing group: the Pushgateway's `push_failure_time_seconds`.
    /// A group that never took a push is made, empty, with push time 0, so that its failure
    /// shows all the same, as at the Pushgateway.
    pub async fn push_failed(&self, grouping: &str, job: &str, now: f64) -> Result<()> {
        self.batch(vec![self.stmt(
            "INSERT INTO metric_groups (grouping, job, metrics, names, pushed_at, failed_at)
             VALUES (?1, ?2, '', '[]', 0, ?3)
             ON CONFLICT (grouping) DO UPDATE SET failed_at = excluded.failed_at",
            &[text(grouping), text(job), num(now)],
        )?])
        .await?;
        Ok(())
    }

    /// Every group pushed since `since` (all of them with `None`), and those never pushed whose
    /// first push was refused since, in grouping order.
    pub async fn groups(&self, since: Option<f64>) -> Result<Vec<GroupRow>> {
        self.all(
            "SELECT grouping, metrics, pushed_at, failed_at, version FROM metric_groups
             WHERE pushed_at >= ?1 OR (pushed_at = 0 AND failed_at >= ?1) ORDER BY grouping",
            &[num(since.unwrap_or(-1.0))],
        )
        .await
    }

    /// The newest bucket of every series whose chart `names` allows and no push has written: the
    /// newest chunk, two index rows, and a probe of `pushed_charts`, per series.
    pub async fn last_values(&self, names: &Names) -> Result<Vec<LastRow>> {
        let (clause, from, until) = names_where(names, "s.chart", 1, 2);
        self.all(
            &format!(
                "SELECT s.chart, s.labels, json(t.b -> ('$.\"' || t.newest || '\"')) AS newest
                 FROM series AS s JOIN chunks AS t ON t.series_id = s.id AND t.start =
                   (SELECT x.start FROM chunks AS x WHERE x.series_id = s.id
                    ORDER BY x.start DESC LIMIT 1)
                 WHERE {clause}
                   AND NOT EXISTS (SELECT 1 FROM pushed_charts AS p WHERE p.name = s.chart)
                 ORDER BY s.chart, s.labels"
            ),
            &[from, until],
        )
        .await
    }

    /// Deletes the groups not pushed since `cutoff`; their points stay in the charts.
    pub async fn expire_groups(&self, cutoff: f64) -> Result<usize> {
        let r = self
            .batch(vec![self.stmt(
                "DELETE FROM metric_groups
                 WHERE pushed_at < ?1 AND (pushed_at > 0 OR failed_at < ?1)",
                &[num(cutoff)],
            )?])
            .await?;
        Ok(Self::changes(r.first()))
    }
}
