//! Retention's one chunk: old buckets deleted, counters kept exact, empty series dropped.

use super::{internal, num, Db, Result};
use serde::de::IgnoredAny;

impl Db {
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
                // RETURNING counts the series themselves: D1's `changes` would also count the
                // rows the series_removed trigger touches.
                self.stmt("DELETE FROM series WHERE n_buckets <= 0 RETURNING id", &[])?,
            ])
            .await?;
        let series = match r.get(2) {
            Some(result) => result
                .results::<IgnoredAny>()
                .map_err(internal("retention decode"))?
                .len(),
            None => 0,
        };
        Ok((Self::changes(r.get(1)), series))
    }
}
