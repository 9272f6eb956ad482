//! The minutely check of jobs and alert rules: judges those whose status may have changed by the
//! event's scheduled time (each read through an index of when it needs a look), saves what
//! changed and sends what is due.

use crate::domain::config::Config;
use crate::domain::job::JobName;
use crate::domain::notify::Event;
use crate::platform::context::writer_id;
use crate::platform::context::Result;
use crate::platform::db::Db;
use crate::platform::db::Guarded;
use crate::platform::handlers::jobs::{load, Judged};
use crate::platform::{alerts, notify};

/// Jobs judged per run: one query reads them and one batch of this many statements (plus one that
/// saves the rules and one that queues notifications) saves them. With a query for due rules,
/// one to claim due notifications, one for channels and one per delivery attempt, a run stays
/// near 35 of the free plan's 50 queries per invocation. More due jobs wait for the next minute.
const MAX_JOBS: u32 = 20;
/// Rules judged per run, read in one query and saved in one statement whatever their number.
const MAX_ALERTS: u32 = 50;

pub struct Summary {
    pub looked_at: usize,
    pub changed: usize,
    pub rules: usize,
    pub rules_changed: usize,
    pub delivered: usize,
    pub attempted: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "looked at {} due jobs, {} changed status; {} due rules, {} told; {} of {} notifications delivered",
            self.looked_at, self.changed, self.rules, self.rules_changed, self.delivered, self.attempted
        )
    }
}

pub async fn run(db: &Db, cfg: &Config, now: f64) -> Result<Summary> {
    let rows = db.due_jobs(now, MAX_JOBS).await?;
    // A failure to read the rules must not hold back the jobs and the deliveries.
    let rules = db
        .due_alerts(now, cfg.bucket_seconds, MAX_ALERTS)
        .await
        .unwrap_or_else(|e| {
            worker::console_error!("due alert rules could not be read: {e}");
            Vec::new()
        });
    let base = cfg.public_url.as_deref();
    let decided = alerts::decide(&rules, now, base, false);
    let mut judged = Vec::with_capacity(rows.len());
    let mut changed = 0;
    let mut events = Vec::new();
    for row in &rows {
        let j = match load(Some(row), now).and_then(|loaded| Judged::new(loaded, now)) {
            Ok(j) => j,
            Err(e) => {
                // Out of the way for an hour, so that it cannot hold back the jobs behind it.
                worker::console_error!("job {:?} cannot be judged: {e}", row.name);
                db.postpone_job(&row.name, now + 3600.0).await?;
                continue;
            }
        };
        if j.change.is_some() {
            changed += 1;
        }
        if let (Some(c), Ok(name)) = (&j.tell, JobName::parse(&row.name)) {
            events.push((
                row.name.as_str(),
                Event::job(&name, c, now, None, base).to_json(),
                row.channels.as_deref(),
            ));
        }
        judged.push((row.name.as_str(), j));
    }
    let writes: Vec<_> = judged.iter().map(|(name, j)| j.write(name, now)).collect();
    // One writer text for the run: a job's notification is queued only if its update was saved.
    let writer = writer_id()?;
    let mut guarded: Vec<Guarded> = events
        .iter()
        .map(|(job, event, channels)| Guarded {
            job: Some(job),
            alert: None,
            writer: &writer,
            event,
            channels: *channels,
        })
        .collect();
    guarded.extend(decided.guarded(&writer));
    db.settle(&writes, decided.saves.as_deref(), &writer, &guarded, now)
        .await?;
    // New ones and retries whose time has come, oldest first, taken so nobody else sends them.
    let due = db.claim_due(now, notify::MAX_ATTEMPTS_PER_RUN).await?;
    let delivered = notify::deliver(db, &due)
        .await?
        .iter()
        .filter(|a| a.ok)
        .count();
    Ok(Summary {
        looked_at: rows.len(),
        changed,
        rules: decided.looked_at,
        rules_changed: decided.events.len(),
        delivered,
        attempted: due.len(),
    })
}
