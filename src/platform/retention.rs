//! The scheduled retention run: deletes buckets older than RETENTION_HOURS in bounded chunks, so a
//! run stays within the free plan's 50 D1 queries per invocation and a backlog continues next run.

use crate::domain::config::Config;
use crate::platform::context::Result;
use crate::platform::db::Db;

/// Buckets deleted per chunk (one D1 batch of three statements).
const CHUNK: u32 = 2000;
/// Statements in one chunk's batch; D1 counts each as a query.
const STATEMENTS_PER_CHUNK: u32 = 3;
/// Chunks per run: 10 × 3 = 30 queries, well inside the free plan's 50 per invocation, leaving room
/// for the other work of a scheduled run. At most 20,000 buckets a run; what is left is the oldest
/// data and the next run starts with it.
const MAX_CHUNKS: u32 = 10;

/// What one run did, for the log.
pub struct Summary {
    pub cutoff: i64,
    pub buckets: usize,
    pub series: usize,
    pub chunks: u32,
    /// Whether the run stopped at MAX_CHUNKS with old buckets possibly left for the next run.
    pub more: bool,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "deleted {} buckets older than {} and {} empty series in {} chunks ({} queries){}",
            self.buckets,
            self.cutoff,
            self.series,
            self.chunks,
            self.chunks * STATEMENTS_PER_CHUNK,
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
        buckets: 0,
        series: 0,
        chunks: 0,
        more: false,
    };
    while s.chunks < MAX_CHUNKS {
        let (b, gone) = db.retention_chunk(cutoff, CHUNK).await?;
        s.buckets += b;
        s.series += gone;
        s.chunks += 1;
        if b < CHUNK as usize {
            return Ok(s);
        }
    }
    s.more = true;
    Ok(s)
}
