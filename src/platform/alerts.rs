//! Judging alert rules, for the minutely check and right after an ingest into their chart: rows
//! in, the saves and notifications of the changes out.

use crate::domain::alert::{
    condition_from_columns, judge, push_history, reads_window, AlertState, Condition, Seen,
    Transition, RECHECK_AT_MOST,
};
use crate::domain::bucket::{Agg, Bucket};
use crate::domain::chunk::{kept, Chunk, One};
use crate::domain::damping::{Tell, Told};
use crate::domain::error::ApiError;
use crate::domain::names::ChartName;
use crate::domain::notify::{AlertChange, Event};
use crate::platform::context::writer_id;
use crate::platform::context::Result;
use crate::platform::db::{AlertRow, Db, Guarded};
use crate::platform::notify;
use serde::Serialize;
use std::cell::RefCell;
use std::rc::Rc;

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
    told: String,
}

fn seen(row: &AlertRow) -> Option<Seen> {
    let newest = match row.newest.as_deref() {
        Some(raw) => Some(Bucket::from(serde_json::from_str::<One>(raw).ok()?)),
        None => None,
    };
    let window = match row.window_chunks.as_deref() {
        Some(raw) => {
            let (top, cap, chunks): (Option<i64>, Option<i64>, Vec<Chunk>) =
                serde_json::from_str(raw).ok()?;
            match (top, cap) {
                (Some(top), Some(cap)) => kept(chunks, top, cap),
                // A series without buckets, or none at all.
                _ => Vec::new(),
            }
        }
        None => Vec::new(),
    };
    Some(Seen {
        newest,
        window,
        bucket_seconds: row.bucket_seconds.unwrap_or(60.0) as i64,
    })
}

/// The save of a rule whose state holds, looked at again at `check_at`.
fn keep(row: &AlertRow, check_at: i64) -> Save<'_> {
    Save {
        id: &row.id,
        read: &row.writer,
        state: AlertState::parse(&row.state).as_str(),
        since: row.since,
        last_value: row.last_value,
        check_at,
        history: row.history.clone(),
        told: row.told.clone(),
    }
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
                saves.push(keep(row, now.floor() as i64 + RECHECK_AT_MOST));
            }
            continue;
        };
        if changes_only && reads_window(&condition) {
            // An ingest does not read a window: an aggregate put off for want of points (its
            // window was empty at its last look) is brought forward to the next minutely check
            // once its own series has a point in the window again.
            let Condition::Threshold { agg, window, .. } = condition else {
                continue;
            };
            // Empty at the last look: no value, or a count of 0; a sum of 0 may be a full window
            // of zeros, so it counts as empty only if the rule was put off the full hour.
            let put_off = match (row.check_at, row.judged_at) {
                (Some(next), Some(judged)) => next - judged >= RECHECK_AT_MOST as f64,
                _ => false,
            };
            let was_empty = match row.last_value {
                None => true,
                Some(v) => v == 0.0 && (agg == Agg::Count || (agg == Agg::Sum && put_off)),
            };
            let bs = seen.bucket_seconds.max(1);
            let has_point = seen
                .newest
                .as_ref()
                .is_some_and(|b| (b.ts + bs) as f64 > now - window as f64);
            if was_empty && has_point && row.check_at.is_some_and(|c| c > now + 60.0) {
                saves.push(keep(row, now.floor() as i64));
            }
            continue;
        }
        let j = judge(&condition, &seen, before, row.created_at, now);
        let changed = j.state != before;
        // What the channels hear follows `damping`: at once, unless this rule has used up its
        // hour, in which case the state it is then in is told when the hour has room.
        let mut told: Told = serde_json::from_str(&row.told).unwrap_or_default();
        let told_before = told.clone();
        let last_told = told.state.clone().unwrap_or_else(|| "ok".to_string());
        let worth = j.state.as_str() != last_told;
        let tell = told.decide(j.state.as_str(), worth, now);
        if changes_only && !changed && told == told_before {
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
        }
        if let Tell::Now { from } = tell {
            let event = Event::alert(
                AlertChange {
                    name: &row.name,
                    chart: &chart,
                    labels: &row.labels,
                    from: from.as_deref().unwrap_or("ok"),
                    to: j.state.as_str(),
                    value: j.value,
                    detail: format!("{} (rule: {})", j.detail, condition.describe()),
                },
                now,
                base_url,
            );
            events.push((row.id.clone(), event.to_json(), row.channels.clone()));
        }
        let owed = told.owed_at.map(|t| t.ceil() as i64);
        saves.push(Save {
            id: &row.id,
            read: &row.writer,
            state: j.state.as_str(),
            since: if changed { now } else { row.since },
            last_value: j.value,
            check_at: owed.map_or(j.check_at, |o| o.min(j.check_at)),
            history,
            told: serde_json::to_string(&told).unwrap_or_else(|_| "{}".to_string()),
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

/// How long an isolate trusts its list of the charts that have rules. A rule made in another
/// isolate is judged after ingests here this much later at worst (the minutely check does not
/// wait for it); one made or deleted here is seen at once.
const WATCHED_FOR: f64 = 30.0;

thread_local! {
    static WATCHED: RefCell<Option<(f64, Rc<Vec<String>>)>> = const { RefCell::new(None) };
}

/// Makes this isolate read the charts with rules again (a rule was made or deleted).
pub fn forget_watched() {
    WATCHED.with(|w| *w.borrow_mut() = None);
}

/// This isolate's list of the charts with rules, if it is recent enough to trust.
fn fresh_watched(now: f64) -> Option<Rc<Vec<String>>> {
    WATCHED.with(|w| {
        w.borrow()
            .as_ref()
            .filter(|(at, _)| now - at < WATCHED_FOR)
            .map(|(_, list)| list.clone())
    })
}

/// The charts among `charts` that have rules (`watched` is sorted).
fn watched_among<'a>(watched: &[String], charts: &'a [String]) -> Vec<&'a String> {
    charts
        .iter()
        .filter(|c| watched.binary_search(c).is_ok())
        .collect()
}

/// Whether this isolate already knows that none of `charts` has rules: then an ingest need not
/// set up a look after its response at all.
pub fn surely_unwatched(charts: &[String], now: f64) -> bool {
    fresh_watched(now).is_some_and(|w| watched_among(&w, charts).is_empty())
}

async fn watched(db: &Db, now: f64) -> Result<Rc<Vec<String>>> {
    if let Some(list) = fresh_watched(now) {
        return Ok(list);
    }
    let list = Rc::new(db.watched_charts().await?);
    WATCHED.with(|w| *w.borrow_mut() = Some((now, list.clone())));
    Ok(list)
}

/// Looks after an ingest that lose a race (another judgement saved the rule first, or a newer
/// point arrived meanwhile) look again, this often at most.
const LOOKS: usize = 3;

/// After an ingest into `charts`: judges the `last` and absence rules on them (and wakes idle
/// aggregates), saves the changes and sends their notifications. Runs after the response; reads
/// D1 only when a written chart has rules (the list of those is kept per isolate). A look is
/// repeated while its save lost a race or changed something, so that the stored state ends
/// as the newest points say.
pub async fn after_ingest(
    db: &Db,
    charts: &[String],
    bucket_seconds: u32,
    base_url: Option<&str>,
) -> Result<()> {
    let now = crate::platform::now_secs();
    let watched = watched(db, now).await?;
    let hit = watched_among(&watched, charts);
    if hit.is_empty() {
        return Ok(());
    }
    let hit = serde_json::to_string(&hit).map_err(|_| ApiError::internal())?;
    let mut ids = Vec::new();
    for _ in 0..LOOKS {
        let now = crate::platform::now_secs();
        let rows = db.alerts_of_charts(&hit, now, bucket_seconds).await?;
        let decided = decide(&rows, now, base_url, true);
        let Some(saves) = decided.saves.as_deref() else {
            break;
        };
        let writer = writer_id()?;
        let (_, queued) = db
            .save_alerts_now(saves, &writer, &decided.guarded(&writer), now)
            .await?;
        ids.extend(queued);
    }
    notify::send_now(db, ids).await
}
