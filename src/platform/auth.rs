//! Who is calling and what they may do: the admin token, stored keys (verified against their hash
//! and cached per isolate), keys in URLs, and the read check that asks D1 only when it must.

use crate::domain::error::{ApiError, Code};
use crate::domain::keys::{
    hash_secret, key_id, presented_key, secrets_match, Action, Caller, ChartLimit, Scope,
};
use crate::domain::names::ChartName;
use crate::platform::context::{env_text, Ctx, Result};
use crate::platform::db::Db;
use std::cell::RefCell;
use std::collections::HashMap;
use worker::Env;

/// How long a verified key is trusted without asking D1 again. A revoked key stops working at
/// once in the isolate that revoked it and within this time everywhere else.
const KEY_CACHE_MS: f64 = 30_000.0;

#[derive(Clone)]
struct CachedKey {
    hash: String,
    scope: Scope,
    limit: Option<ChartLimit>,
    fetched_ms: f64,
}

thread_local! {
    static KEY_CACHE: RefCell<HashMap<String, CachedKey>> = RefCell::new(HashMap::new());
}

fn admin_token(env: &Env) -> Option<String> {
    env_text(env, "ADMIN_TOKEN").filter(|t| !t.trim().is_empty())
}

/// The caller as the headers say: the admin token, a stored key, or nobody.
pub async fn caller(ctx: &Ctx) -> Result<Caller> {
    let presented = presented_key(
        ctx.header("X-API-Key").as_deref(),
        ctx.header("Authorization").as_deref(),
    );
    let Some(presented) = presented else {
        return Ok(Caller::Anonymous);
    };
    if let Some(token) = admin_token(&ctx.env) {
        if secrets_match(&presented, &hash_secret(&token)) {
            return Ok(Caller::AdminToken);
        }
    }
    stored_key(&presented, &ctx.db, ctx.now).await
}

/// The caller of a read route. Embeds and README images cannot send headers, so these routes also
/// take `?key=`; a URL ends up in READMEs, logs and browser history, so there it must be a read key,
/// never an ingest or admin key and never the admin token.
pub async fn reader(ctx: &Ctx) -> Result<Caller> {
    with_url_key(
        ctx,
        Scope::Read,
        "a key in a URL (?key=) must be a read key; send ingest and admin keys in the X-API-Key header",
    )
    .await
}

/// The caller of a ping. A ping URL is pasted into crontabs, so here, and only here, a key in the
/// URL is an ingest key (the route's access check still wants the job inside the key's chart
/// limit). Never an admin key, and never the admin token: those must not end up in crontabs,
/// proxy logs and shell history.
pub async fn pinger(ctx: &Ctx) -> Result<Caller> {
    with_url_key(
        ctx,
        Scope::Ingest,
        "a key in a ping URL (?key=) must be an ingest key; send other keys in the X-API-Key header",
    )
    .await
}

/// The caller from the headers, else from `?key=`, which must be a stored key of exactly `scope`.
async fn with_url_key(ctx: &Ctx, scope: Scope, refusal: &'static str) -> Result<Caller> {
    let known = caller(ctx).await?;
    if known != Caller::Anonymous {
        return Ok(known);
    }
    let Some(k) = ctx.param("key").filter(|k| !k.is_empty()) else {
        return Ok(Caller::Anonymous);
    };
    match stored_key(k, &ctx.db, ctx.now).await? {
        key @ Caller::Key { scope: s, .. } if s == scope => Ok(key),
        _ => Err(ApiError::new(Code::UrlKeyNotAllowed, refusal)),
    }
}

/// Key management: only with an ADMIN_TOKEN configured, and only for admins.
pub async fn admin(ctx: &Ctx) -> Result<Caller> {
    if admin_token(&ctx.env).is_none() {
        return Err(ApiError::new(
            Code::AdminDisabled,
            "key management is off: set the ADMIN_TOKEN secret (wrangler secret put ADMIN_TOKEN)",
        ));
    }
    let caller = caller(ctx).await?;
    caller.may(Action::ManageKeys, false)?;
    Ok(caller)
}

/// Whether `caller` may read `chart`. Decided without D1 when the key alone allows it; otherwise
/// only the chart being public can allow it, and that one lookup is the only D1 cost, which the
/// refusal does not report (see `handle`).
pub async fn may_read(ctx: &Ctx, caller: &Caller, chart: &ChartName) -> Result<()> {
    let Err(refused) = caller.may(Action::Read(chart), false) else {
        return Ok(());
    };
    let public = ctx
        .db
        .chart_settings(chart.as_str())
        .await?
        .is_some_and(|s| s.public != 0);
    if public {
        caller.may(Action::Read(chart), true)
    } else {
        Err(refused)
    }
}

/// Drops a key from this isolate's cache, once it is gone from D1.
pub fn forget(id: &str) {
    KEY_CACHE.with(|c| c.borrow_mut().remove(id));
}

async fn stored_key(presented: &str, db: &Db, now: f64) -> Result<Caller> {
    let id = key_id(presented).ok_or_else(ApiError::unauthorized)?;
    let now_ms = now * 1000.0;
    let cached = KEY_CACHE.with(|c| {
        c.borrow()
            .get(id)
            .filter(|k| now_ms - k.fetched_ms < KEY_CACHE_MS)
            .cloned()
    });
    let key = match cached {
        Some(k) => k,
        None => {
            let row = db.key(id).await?.ok_or_else(ApiError::unauthorized)?;
            let k = CachedKey {
                hash: row.hash,
                scope: Scope::parse(&row.scope).map_err(|_| ApiError::internal())?,
                limit: ChartLimit::from_stored(row.prefix, row.exact != 0),
                fetched_ms: now_ms,
            };
            KEY_CACHE.with(|c| c.borrow_mut().insert(id.to_string(), k.clone()));
            k
        }
    };
    if !secrets_match(presented, &key.hash) {
        return Err(ApiError::unauthorized());
    }
    Ok(Caller::Key {
        id: id.to_string(),
        scope: key.scope,
        limit: key.limit,
    })
}
