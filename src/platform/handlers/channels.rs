//! Notification channels (admin only): create, list, delete, send a test; and the delivery log.

use crate::domain::error::ApiError;
use crate::domain::keys::{short_id, Action, SHORT_ID_BYTES};
use crate::domain::notify::{ChannelRequest, Event, EventKind};
use crate::platform::context::{random_bytes, Ctx, Result};
use crate::platform::db::ChannelRow;
use crate::platform::{auth, http, notify};
use serde::Serialize;
use worker::Response;

async fn admin(ctx: &Ctx) -> Result<()> {
    auth::caller(ctx).await?.may(Action::ManageChannels, false)
}

/// A channel as the API shows it: the URL only as far as its host, since the rest of a Slack or
/// Discord webhook URL is its secret.
#[derive(Serialize)]
struct ChannelOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    name: &'a str,
    url: String,
    created_at: f64,
}

fn channel_out(c: &ChannelRow) -> ChannelOut<'_> {
    // The host ends at the first '/', '?' or '#' after the scheme: a token may sit in any.
    let host_end = c
        .url
        .find("://")
        .map(|i| i + 3)
        .and_then(|start| c.url[start..].find(['/', '?', '#']).map(|j| start + j))
        .unwrap_or(c.url.len());
    let shown = if host_end < c.url.len() {
        format!("{}/…", &c.url[..host_end])
    } else {
        c.url.clone()
    };
    ChannelOut {
        id: &c.id,
        kind: &c.kind,
        name: &c.name,
        url: shown,
        created_at: c.created_at,
    }
}

/// `POST /api/v1/channels`
pub async fn create(ctx: &mut Ctx) -> Result<Response> {
    admin(ctx).await?;
    let wanted = ChannelRequest::parse(&ctx.body().await?)?;
    let row = ChannelRow {
        id: short_id(&random_bytes::<SHORT_ID_BYTES>("a channel id")?),
        kind: wanted.kind.as_str().to_string(),
        url: wanted.url.as_str().to_string(),
        name: wanted.name,
        created_at: ctx.now.floor(),
    };
    ctx.db.create_channel(&row).await?;
    Ok(http::json(201, &channel_out(&row)))
}

/// `GET /api/v1/channels`
pub async fn list(ctx: &Ctx) -> Result<Response> {
    admin(ctx).await?;
    let rows = ctx.db.channels().await?;
    #[derive(Serialize)]
    struct Answer<'a> {
        channels: Vec<ChannelOut<'a>>,
    }
    Ok(http::json(
        200,
        &Answer {
            channels: rows.iter().map(channel_out).collect(),
        },
    ))
}

/// `DELETE /api/v1/channels/{id}`
pub async fn delete(ctx: &Ctx, id: &str) -> Result<Response> {
    admin(ctx).await?;
    if !ctx.db.delete_channel(id).await? {
        return Err(ApiError::not_found(format!("no channel with id {id:?}")));
    }
    Ok(http::ok())
}

/// `POST /api/v1/channels/{id}/test`: sends a test message now and answers how it went; the
/// attempt is in the delivery log like any other.
pub async fn test(ctx: &Ctx, id: &str) -> Result<Response> {
    admin(ctx).await?;
    let event = Event {
        kind: EventKind::Job,
        name: "pushplot test".to_string(),
        from: "up".to_string(),
        to: "up".to_string(),
        at: ctx.now,
        value: None,
        detail: Some("If you can read this, this channel works.".to_string()),
        url: ctx.origin(),
        image: None,
    };
    let ids = ctx.db.queue(&[event.to_json()], Some(id), ctx.now).await?;
    if ids.is_empty() {
        return Err(ApiError::not_found(format!("no channel with id {id:?}")));
    }
    let rows = ctx.db.claim(&ids, ctx.now).await?;
    let attempts = notify::deliver(&ctx.db, &rows).await?;
    let ok = !attempts.is_empty() && attempts.iter().all(|a| a.ok);
    let result = attempts
        .into_iter()
        .map(|a| a.result)
        .collect::<Vec<_>>()
        .join("; ");
    #[derive(Serialize)]
    struct Answer {
        ok: bool,
        result: String,
    }
    Ok(http::json(
        if ok { 200 } else { 502 },
        &Answer { ok, result },
    ))
}

/// `GET /api/v1/notifications`: the newest 100, with every attempt.
pub async fn notifications(ctx: &Ctx) -> Result<Response> {
    admin(ctx).await?;
    let rows = ctx.db.notifications(100).await?;
    #[derive(Serialize)]
    struct Out<'a> {
        id: f64,
        channel: &'a str,
        event: serde_json::Value,
        created_at: f64,
        attempts: f64,
        next_attempt: Option<f64>,
        result: &'a str,
        log: serde_json::Value,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        notifications: Vec<Out<'a>>,
    }
    let notifications = rows
        .iter()
        .map(|n| Out {
            id: n.id,
            channel: &n.channel,
            event: serde_json::from_str(&n.event).unwrap_or_default(),
            created_at: n.created_at,
            attempts: n.attempts,
            next_attempt: n.next_attempt,
            result: &n.result,
            log: serde_json::from_str(&n.log).unwrap_or_default(),
        })
        .collect();
    Ok(http::json(200, &Answer { notifications }))
}

/// A job or rule may name only channels that exist: a mistyped id would silence it unnoticed.
/// Returns the list as stored (JSON), or `None` for every channel.
pub async fn named(ctx: &Ctx, list: Option<&[String]>) -> Result<Option<String>> {
    let Some(list) = list else {
        return Ok(None);
    };
    let known = ctx.db.channels().await?;
    if let Some(unknown) = list.iter().find(|id| !known.iter().any(|c| &c.id == *id)) {
        return Err(ApiError::new(
            crate::domain::error::Code::InvalidBody,
            format!("there is no channel {unknown:?}; GET /api/v1/channels lists them"),
        ));
    }
    serde_json::to_string(list).map(Some).map_err(|e| {
        worker::console_error!("a channel list did not serialize: {e}");
        ApiError::internal()
    })
}
