//! The minutely check of jobs: judges the jobs whose status may have changed by the event's
//! scheduled time (read through an index of when each needs a look), and saves what changed.

use crate::domain::config::Config;
use crate::platform::context::Result;
use crate::platform::db::Db;
use crate::platform::handlers::jobs::{load, to_write, zone_of};

/// Jobs judged per run: one query reads them and one batch of this many statements saves them,
/// inside the free plan's 50 queries per invocation. More due jobs wait for the next minute.
const MAX_JOBS: u32 = 40;

pub struct Summary {
    pub looked_at: usize,
    pub changed: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "looked at {} due jobs, {} changed status",
            self.looked_at, self.changed
        )
    }
}

pub async fn run(db: &Db, _cfg: &Config, now: f64) -> Result<Summary> {
    let rows = db.due_jobs(now, MAX_JOBS).await?;
    let mut texts = Vec::with_capacity(rows.len());
    let mut changed = 0;
    for row in &rows {
        let Ok(mut loaded) = load(Some(row), now) else {
            continue;
        };
        let zone = match zone_of(&loaded.schedule) {
            Ok(z) => z,
            Err(e) => {
                worker::console_error!("job {:?}: {e}", row.name);
                continue;
            }
        };
        let (state, change) = loaded.state.clone().settle(&loaded.schedule, &*zone, now);
        loaded.state = state;
        if let Some(c) = change {
            changed += 1;
            if c.notifies() {
                worker::console_log!(
                    "job {:?}: {} -> {} (notifications are not built yet)",
                    row.name,
                    c.from.as_str(),
                    c.to.as_str()
                );
            }
        }
        let (Ok(schedule_json), Ok(state_json)) = (
            serde_json::to_string(&loaded.schedule.to_json()),
            serde_json::to_string(&loaded.state),
        ) else {
            continue;
        };
        texts.push((row, loaded, schedule_json, state_json, zone));
    }
    let writes: Vec<_> = texts
        .iter()
        .map(|(row, loaded, schedule_json, state_json, zone)| {
            to_write(&row.name, loaded, schedule_json, state_json, &**zone, now)
        })
        .collect();
    db.settle_jobs(&writes).await?;
    Ok(Summary {
        looked_at: rows.len(),
        changed,
    })
}
