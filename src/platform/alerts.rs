//! Judging alert rules, for the minutely check and right after an ingest into their chart: rows
//! in, the saves and notifications of the changes out.

use crate::domain::alert::{
    cadence, condition_from_columns, judge, push_history, reads_window, AlertState, Condition,
    Seen, Transition, RECHECK_AT_MOST,
};
use crate::domain::bucket::Bucket;
use crate::domain::names::ChartName;
use crate::domain::notify::{AlertChange, Event};
use crate::platform::context::Result;
use crate::platform::db::{AlertRow, Db, Guarded};
use crate::platform::handlers::jobs::writer_id;
use crate::platform::notify;
use serde::Serialize;

/// What judging some rules decided.
#[derive(Default)]
pub struct Decided {
    /// `Db::save_alerts`' JSON, `None` when nothing is to be saved.
    pub saves: Option<String>,
    /// Per changed rule: its id, the event as JSON, its channel list.
    pub events: Vec<(String, String, Option<String>)>,
    pub looked_at: usize,
}

impl Decided {
    pub fn guarded<'a>(&'a self, writer: &'a str) -> Vec<Guarded<'a>> {
        self.events
            .iter()
            .map(|(id, event, channels)| Guarded {
                job: None,
                alert: Some(id),
                writer,
                event,
                channels: channels.as_deref(),
            })
            .collect()
    }
}

#[derive(Serialize)]
struct Save<'a> {
    id: &'a str,
    read: &'a str,
    state: &'static str,
    since: f64,
    last_value: Option<f64>,
    check_at: i64,
    history: String,
}

type Packed = (i64, i64, f64, f64, f64, f64, f64);

fn unpack((ts, count, sum, min, max, last, last_ts): Packed) -> Bucket {
    Bucket {
        ts,
        count,
        sum,
        min,
        max,
        last,
        last_ts,
    }
}

fn seen(row: &AlertRow) -> Option<Seen> {
    let newest = match row.newest.as_deref() {
        Some(raw) => Some(unpack(serde_json::from_str(raw).ok()?)),
        None => None,
    };
    let window = match row.window_buckets.as_deref() {
        Some(raw) => serde_json::from_str::<Vec<Packed>>(raw)
            .ok()?
            .into_iter()
            .map(unpack)
            .collect(),
        None => Vec::new(),
    };
    Some(Seen {
        newest,
        window,
        bucket_seconds: row.bucket_seconds.unwrap_or(60.0) as i64,
    })
}

/// Judges each rule at `now`. With `changes_only` (an ingest's look), rules whose state holds are
/// left unsaved and aggregates are not judged, only woken; otherwise (the minutely check, which
/// must move `check_at` on) each is saved with its next look. A rule whose row does not read back
/// is put off for an hour, logged.
pub fn decide(rows: &[AlertRow], now: f64, base_url: Option<&str>, changes_only: bool) -> Decided {
    let mut saves = Vec::new();
    let mut events = Vec::new();
    for row in rows {
        let before = AlertState::parse(&row.state);
        let condition = condition_from_columns(
            row.agg.as_deref(),
            row.window_secs.map(|w| w as i64),
            row.op.as_deref(),
            row.threshold,
            row.absent_secs.map(|a| a as i64),
        );
        let (Some(condition), Some(seen), Ok(chart)) =
            (condition, seen(row), ChartName::parse(&row.chart))
        else {
            worker::console_error!(
                "alert {:?} cannot be judged: its row does not read back",
                row.id
            );
            if !changes_only {
                saves.push(Save {
                    id: &row.id,
                    read: &row.writer,
                    state: before.as_str(),
                    since: row.since,
                    last_value: row.last_value,
                    check_at: now.floor() as i64 + RECHECK_AT_MOST,
                    history: row.history.clone(),
                });
            }
            continue;
        };
        if changes_only && reads_window(&condition) {
            // An ingest does not read a window: an aggregate put off for want of points is
            // brought forward to the next minutely check instead.
            let Condition::Threshold { window, .. } = condition else {
                continue;
            };
            let soon = now.floor() as i64 + cadence(window, seen.bucket_seconds);
            if row.check_at.is_some_and(|c| c as i64 > soon) {
                saves.push(Save {
                    id: &row.id,
                    read: &row.writer,
                    state: before.as_str(),
                    since: row.since,
                    last_value: row.last_value,
                    check_at: now.floor() as i64,
                    history: row.history.clone(),
                });
            }
            continue;
        }
        let j = judge(&condition, &seen, row.created_at, now);
        let changed = j.state != before;
        if changes_only && !changed {
            continue;
        }
        let mut history = row.history.clone();
        if changed {
            history = push_history(
                &history,
                Transition {
                    at: now,
                    from: before.as_str().to_string(),
                    to: j.state.as_str().to_string(),
                    value: j.value,
                },
            );
            let event = Event::alert(
                AlertChange {
                    name: &row.name,
                    chart: &chart,
                    labels: &row.labels,
                    from: before.as_str(),
                    to: j.state.as_str(),
                    value: j.value,
                    detail: format!("{} (rule: {})", j.detail, condition.describe()),
                },
                now,
                base_url,
            );
            events.push((row.id.clone(), event.to_json(), row.channels.clone()));
        }
        saves.push(Save {
            id: &row.id,
            read: &row.writer,
            state: j.state.as_str(),
            since: if changed { now } else { row.since },
            last_value: j.value,
            check_at: j.check_at,
            history,
        });
    }
    Decided {
        saves: if saves.is_empty() {
            None
        } else {
            serde_json::to_string(&saves).ok()
        },
        events,
        looked_at: rows.len(),
    }
}

/// After an ingest into `charts` (a JSON array of names): judges the `last` and absence rules on
/// them, saves the changes and sends their notifications. Runs after the response.
pub async fn after_ingest(
    db: &Db,
    charts: &str,
    bucket_seconds: u32,
    base_url: Option<&str>,
) -> Result<()> {
    let now = crate::platform::now_secs();
    let rows = db.alerts_of_charts(charts, now, bucket_seconds).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let decided = decide(&rows, now, base_url, true);
    let Some(saves) = decided.saves.as_deref() else {
        return Ok(());
    };
    let writer = writer_id()?;
    let ids = db
        .settle(&[], Some(saves), &writer, &decided.guarded(&writer), now)
        .await?;
    notify::send_now(db, ids).await
}
