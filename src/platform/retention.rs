//! The scheduled retention run: deletes the hours of buckets (chunks) older than RETENTION_HOURS in
//! bounded rounds, so a run stays within the free plan's 50 D1 queries per invocation and a
//! backlog continues next run. A chunk goes when its whole hour is past the retention, so a point
//! outlives RETENTION_HOURS by up to an hour, and by up to another until the next hourly run.

use crate::domain::config::Config;
use crate::platform::context::Result;
use crate::platform::db::Db;

/// Chunks (hours of one series) deleted per round: one read and one batch of two statements.
const ROUND: u32 = 2000;
/// Queries in one round; D1 counts each statement as a query.
const QUERIES_PER_ROUND: u32 = 3;
/// Rounds per run: 10 × 3 = 30 queries, well inside the free plan's 50 per invocation, leaving room
/// for the other work of a scheduled run. At most 20,000 hours of series a run; what is left is
/// the oldest data and the next run starts with it.
const MAX_ROUNDS: u32 = 10;

/// What one run did, for the log.
pub struct Summary {
    pub cutoff: i64,
    pub chunks: usize,
    pub series: usize,
    /// Pushed metric groups past METRICS_TTL, deleted (one more query).
    pub groups: usize,
    pub rounds: u32,
    /// Whether the run stopped at MAX_ROUNDS with old chunks possibly left for the next run.
    pub more: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deleted {} hours of buckets older than {} and {} empty series in {} rounds ({} queries), and {} metric groups past METRICS_TTL{}",
            self.chunks,
            self.cutoff,
            self.series,
            self.rounds,
            self.rounds * QUERIES_PER_ROUND,
            self.groups,
            if self.more {
                "; more remain, the next run continues"
            } else {
                ""
            }
        )
    }
}

/// `now` is the event's scheduled time, so a test can move the clock.
pub async fn run(db: &Db, cfg: &Config, now: f64) -> Result<Summary> {
    let cutoff = now.floor() as i64 - cfg.retention_seconds();
    let mut s = Summary {
        cutoff,
        chunks: 0,
        series: 0,
        groups: 0,
        rounds: 0,
        more: false,
    };
    if let Some(ttl) = cfg.metrics_ttl_seconds {
        s.groups = db.expire_groups(now - ttl as f64).await?;
    }
    while s.rounds < MAX_ROUNDS {
        let (gone, empty) = db.retention_round(cutoff, ROUND).await?;
        s.chunks += gone;
        s.series += empty;
        s.rounds += 1;
        if gone < ROUND as usize {
            return Ok(s);
        }
    }
    s.more = true;
    Ok(s)
}
