//! Notification channels and the outbox: every notification with its attempts, due ones found
//! through an index.

use super::{internal, num, text, Db, Result};
use serde::Deserialize;
use wasm_bindgen::JsValue;

#[derive(Deserialize, Clone)]
pub struct ChannelRow {
    pub id: String,
    pub kind: String,
    pub url: String,
    pub name: String,
    pub created_at: f64,
}

#[derive(Deserialize)]
pub struct NotificationRow {
    pub id: f64,
    pub channel: String,
    /// The event as JSON.
    pub event: String,
    pub created_at: f64,
    pub attempts: f64,
    pub next_attempt: Option<f64>,
    pub result: String,
    /// Every attempt, as a JSON array of `{"at","result"}`.
    pub log: String,
}

/// A notification to queue only if the row of `job` (or of `alert`) was last saved by `writer`,
/// for the channels in `channels` (a JSON array of ids) or, without it, every channel.
#[derive(serde::Serialize)]
pub struct Guarded<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<&'a str>,
    pub writer: &'a str,
    pub event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<&'a str>,
}

/// At most this many notifications are sent a minute, whatever pings and checks ask for (each job
/// and rule also keeps to `damping`'s ten an hour): many subjects changing at once cannot flood
/// the channels.
const MAX_PER_MINUTE: u32 = 60;

const NOTIFICATION_COLUMNS: &str =
    "id, channel, event, created_at, attempts, next_attempt, result, log";

impl Db {
    pub async fn channels(&self) -> Result<Vec<ChannelRow>> {
        self.all(
            "SELECT id, kind, url, name, created_at FROM channels ORDER BY created_at, id",
            &[],
        )
        .await
    }

    pub async fn create_channel(&self, c: &ChannelRow) -> Result<()> {
        self.batch(vec![self.stmt(
            "INSERT INTO channels (id, kind, url, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            &[
                text(&c.id),
                text(&c.kind),
                text(&c.url),
                text(&c.name),
                num(c.created_at),
            ],
        )?])
        .await?;
        Ok(())
    }

    /// Returns whether there was a channel to delete.
    pub async fn delete_channel(&self, id: &str) -> Result<bool> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM channels WHERE id = ?1", &[text(id)])?
            ])
            .await?;
        Ok(Self::changes(r.first()) > 0)
    }

    /// Queues every event (JSON texts) for every channel, or for `only` that one, due at once,
    /// in one statement whatever their number, so a scheduled run's queries stay bounded.
    /// Returns the new notifications' ids.
    pub async fn queue(&self, events: &[String], only: Option<&str>, now: f64) -> Result<Vec<f64>> {
        #[derive(Deserialize)]
        struct Id {
            id: f64,
        }
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let list = serde_json::to_string(events).map_err(internal("encode notification events"))?;
        self.all::<Id>(
            "INSERT INTO notifications (channel, event, created_at, next_attempt)
             SELECT c.id, e.value, ?2, ?2 FROM json_each(?1) AS e CROSS JOIN channels AS c
             WHERE ?3 IS NULL OR c.id = ?3
             RETURNING id",
            &[
                text(&list),
                num(now),
                only.map(text).unwrap_or(JsValue::NULL),
            ],
        )
        .await
        .map(|ids| ids.into_iter().map(|i| i.id).collect())
    }

    /// The statement that queues guarded events for every channel (or the job's or rule's own; if
    /// none of those exists any more, every channel, so that deleting a channel silences
    /// nobody). Each job and rule keeps itself to `damping`'s limit; past MAX_PER_MINUTE for all
    /// of them together, a notification waits a minute (logged as `delayed`) and goes out with the
    /// minutely run's deliveries. The minute's count reads the newest rows not delayed, once per
    /// statement. Returns the ids of those to send at once.
    pub fn queue_guarded(
        &self,
        events: &[Guarded<'_>],
        now: f64,
    ) -> Result<worker::D1PreparedStatement> {
        let list = serde_json::to_string(events).map_err(internal("encode notification events"))?;
        self.stmt(
            "INSERT INTO notifications (channel, event, created_at, next_attempt, result)
             SELECT c.id, e.value ->> 'event', ?2,
                    CASE WHEN over_cap THEN ?2 + 60 ELSE ?2 END,
                    CASE WHEN over_cap
                      THEN 'delayed: over ' || CAST(?3 AS INTEGER) || ' notifications a minute'
                      ELSE 'pending' END
             FROM json_each(?1) AS e CROSS JOIN channels AS c
             CROSS JOIN (SELECT COUNT(*) >= ?3 AS over_cap
                         FROM (SELECT created_at FROM notifications
                               WHERE result NOT LIKE 'delayed%'
                               ORDER BY id DESC LIMIT ?3)
                         WHERE created_at > ?2 - 60)
             WHERE CASE WHEN e.value ->> 'job' IS NOT NULL
                     THEN (SELECT writer FROM jobs WHERE name = e.value ->> 'job')
                     ELSE (SELECT writer FROM alerts WHERE id = e.value ->> 'alert')
                   END = e.value ->> 'writer'
               AND (e.value ->> 'channels' IS NULL
                    OR c.id IN (SELECT value FROM json_each(e.value ->> 'channels'))
                    OR NOT EXISTS (SELECT 1 FROM channels
                                   WHERE id IN (SELECT value FROM json_each(e.value ->> 'channels'))))
             RETURNING id, next_attempt",
            &[text(&list), num(now), num(MAX_PER_MINUTE)],
        )
    }

    /// The ids a RETURNING statement answered, of the notifications to send now (not delayed).
    pub fn ids(result: Option<&worker::D1Result>, now: f64) -> Vec<f64> {
        #[derive(Deserialize)]
        struct Id {
            id: f64,
            #[serde(default)]
            next_attempt: Option<f64>,
        }
        result
            .and_then(|r| r.results::<Id>().ok())
            .map(|rows| {
                rows.into_iter()
                    .filter(|i| i.next_attempt.is_some_and(|at| at <= now))
                    .map(|i| i.id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes up to `limit` notifications due by `now` for this sender: they are moved two minutes
    /// ahead before anything is sent, so that a delivery running at the same time (another
    /// minutely run, a ping's `waitUntil`) does not send them again. A sender that dies leaves
    /// them due again two minutes later.
    pub async fn claim_due(&self, now: f64, limit: u32) -> Result<Vec<NotificationRow>> {
        self.all(
            &format!(
                "UPDATE notifications SET next_attempt = ?1 + 120
                 WHERE id IN (SELECT id FROM notifications WHERE next_attempt <= ?1
                              ORDER BY next_attempt LIMIT ?2)
                 RETURNING {NOTIFICATION_COLUMNS}"
            ),
            &[num(now), num(limit)],
        )
        .await
    }

    /// Takes these notifications for this sender, if they are still due (see `claim_due`).
    pub async fn claim(&self, ids: &[f64], now: f64) -> Result<Vec<NotificationRow>> {
        // Whole numbers (row ids), so joining them is the JSON array.
        let list = format!(
            "[{}]",
            ids.iter()
                .map(|i| format!("{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        self.all(
            &format!(
                "UPDATE notifications SET next_attempt = ?2 + 120
                 WHERE id IN (SELECT value FROM json_each(?1)) AND next_attempt <= ?2
                 RETURNING {NOTIFICATION_COLUMNS}"
            ),
            &[text(&list), num(now)],
        )
        .await
    }

    /// Records one attempt: its result, and when to try again (`None`: delivered or given up).
    pub async fn record_attempt(
        &self,
        id: f64,
        at: f64,
        result: &str,
        next_attempt: Option<f64>,
    ) -> Result<()> {
        self.batch(vec![self.stmt(
            "UPDATE notifications SET attempts = attempts + 1, result = ?3, next_attempt = ?4,
               log = json_insert(log, '$[#]', json_object('at', ?2, 'result', ?3))
             WHERE id = ?1",
            &[
                num(id),
                num(at),
                text(result),
                next_attempt.map(num).unwrap_or(JsValue::NULL),
            ],
        )?])
        .await?;
        Ok(())
    }

    /// The newest `limit` notifications, newest first.
    pub async fn notifications(&self, limit: u32) -> Result<Vec<NotificationRow>> {
        self.all(
            &format!("SELECT {NOTIFICATION_COLUMNS} FROM notifications ORDER BY id DESC LIMIT ?1"),
            &[num(limit)],
        )
        .await
    }
}
