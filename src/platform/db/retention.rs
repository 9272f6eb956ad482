//! Retention's one round: chunks (hours of buckets) older than the cutoff deleted, series left
//! empty dropped.

use super::{internal, num, text, Db, Result};
use crate::domain::chunk::CHUNK_SECONDS;
use serde::de::IgnoredAny;
use serde::Deserialize;

impl Db {
    /// Deletes up to `limit` chunks whose hour ended by `cutoff`, oldest first per series, and
    /// drops the series they leave empty. Returns (chunks deleted, series dropped). The victims
    /// are read first and named to the deletes, and a series that gained a chunk meanwhile is not
    /// dropped. With buckets longer than an hour, a point accepted just inside the retention can
    /// land in a victim's hour between the read and the delete and go with it, as a point went
    /// with its bucket before chunks.
    pub async fn retention_round(&self, cutoff: i64, limit: u32) -> Result<(usize, usize)> {
        #[derive(Deserialize)]
        struct Victims {
            v: String,
        }
        let found: Vec<Victims> = self
            .all(
                "SELECT json_group_array(json_array(sid, start)) AS v FROM (
                   SELECT k.series_id AS sid, k.start FROM series AS s
                   JOIN chunks AS k ON k.series_id = s.id AND k.start <= ?1
                   ORDER BY s.id, k.start LIMIT ?2)",
                &[num((cutoff - CHUNK_SECONDS) as f64), num(limit)],
            )
            .await?;
        let victims = found.into_iter().next().map_or_else(String::new, |f| f.v);
        if victims.is_empty() || victims == "[]" {
            return Ok((0, 0));
        }
        let v = text(&victims);
        let r = self
            .batch(vec![
                self.stmt(
                    "DELETE FROM chunks WHERE (series_id, start) IN
                       (SELECT value ->> 0, value ->> 1 FROM json_each(?1))",
                    std::slice::from_ref(&v),
                )?,
                // RETURNING counts the series themselves: D1's `changes` would also count the
                // rows the series_removed trigger touches.
                self.stmt(
                    "DELETE FROM series
                     WHERE id IN (SELECT DISTINCT value ->> 0 FROM json_each(?1))
                       AND NOT EXISTS (SELECT 1 FROM chunks AS k WHERE k.series_id = series.id)
                     RETURNING id",
                    std::slice::from_ref(&v),
                )?,
            ])
            .await?;
        let series = match r.get(1) {
            Some(result) => result
                .results::<IgnoredAny>()
                .map_err(internal("retention decode"))?
                .len(),
            None => 0,
        };
        Ok((Self::changes(r.first()), series))
    }
}
