//! Delivering notifications: events queued in D1 for every channel, sent after the response
//! (`wait_until`) or by the minutely run, each attempt logged, failures retried with backoff.

use crate::domain::notify::{describe, is_success, next_attempt, render, ChannelKind, Event};
use crate::platform::context::Result;
use crate::platform::db::{ChannelRow, Db, NotificationRow};
use futures_util::future::{select, Either};
use std::collections::HashMap;
use std::time::Duration;
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit};

/// A receiver that has not answered by then is a failed attempt; the next one comes later.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per scheduled run: each is one query to record, inside the 50 per invocation.
pub const MAX_ATTEMPTS_PER_RUN: u32 = 8;

/// One attempt's outcome, as logged.
pub struct Attempt {
    pub ok: bool,
    pub result: String,
}

/// Takes these queued notifications (as many as one run may attempt) and sends them; what is
/// left, or fails, the minutely run takes up.
pub async fn send_now(db: &Db, mut ids: Vec<f64>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    ids.truncate(MAX_ATTEMPTS_PER_RUN as usize);
    let rows = db.claim(&ids, crate::platform::now_secs()).await?;
    deliver(db, &rows).await.map(|_| ())
}

/// Sends each notification (already claimed) to its channel and records the attempt.
pub async fn deliver(db: &Db, rows: &[NotificationRow]) -> Result<Vec<Attempt>> {
    let mut attempts_made = Vec::with_capacity(rows.len());
    if rows.is_empty() {
        return Ok(attempts_made);
    }
    let channels: HashMap<String, ChannelRow> = db
        .channels()
        .await?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    for row in rows {
        let now = crate::platform::now_secs();
        let attempts = row.attempts as u32 + 1;
        let outcome = match channels.get(&row.channel) {
            None => Err("the channel was deleted".to_string()),
            Some(channel) => match (
                ChannelKind::parse(&channel.kind),
                Event::from_json(&row.event),
            ) {
                (Some(kind), Ok(event)) => Ok(send(&channel.url, kind, &event).await),
                _ => Err("the stored notification does not read back".to_string()),
            },
        };
        let mut ok = false;
        let (result, next) = match outcome {
            Ok((status, error)) => {
                ok = status.is_some_and(is_success);
                let next = if ok {
                    None
                } else {
                    next_attempt(attempts, now)
                };
                (describe(status, error.as_deref()), next)
            }
            // Nothing to send to: trying again cannot help.
            Err(why) => (why, None),
        };
        let result = if next.is_none() && !result.starts_with("HTTP 2") && attempts > 1 {
            format!("{result} (gave up after {attempts} attempts)")
        } else {
            result
        };
        db.record_attempt(row.id, now, &result, next).await?;
        attempts_made.push(Attempt { ok, result });
    }
    Ok(attempts_made)
}

/// One HTTP POST to a receiver: its status and, when it failed, what it said or why it failed.
async fn send(url: &str, kind: ChannelKind, event: &Event) -> (Option<u16>, Option<String>) {
    let d = render(kind, event);
    let headers = Headers::new();
    let _ = headers.set("Content-Type", d.content_type);
    let _ = headers.set("User-Agent", "pushplot");
    for (name, value) in &d.headers {
        let _ = headers.set(name, value);
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(d.body.into()));
    let request = match Request::new_with_init(url, &init) {
        Ok(r) => r,
        Err(e) => return (None, Some(e.to_string())),
    };
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Request(request);
    let sending = Box::pin(fetch.send_with_signal(&signal));
    let timer = Box::pin(worker::Delay::from(SEND_TIMEOUT));
    let raced = select(sending, timer).await;
    match raced {
        Either::Left((Ok(mut resp), _)) => {
            let status = resp.status_code();
            let said = if is_success(status) {
                None
            } else {
                resp.text()
                    .await
                    .ok()
                    .map(|t| t.chars().take(120).collect())
            };
            (Some(status), said)
        }
        Either::Left((Err(e), _)) => (None, Some(e.to_string())),
        Either::Right(_) => {
            controller.abort();
            (
                None,
                Some(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
            )
        }
    }
}
