//! Key management (admin only): create, list and revoke API keys.

use crate::domain::error::ApiError;
use crate::domain::keys::{ChartLimit, KeyRequest, NewKey, KEY_RANDOM_BYTES};
use crate::platform::context::{random_bytes, Ctx, Result};
use crate::platform::{auth, http};
use serde::Serialize;
use worker::Response;

/// A key as the API shows it: never its secret or hash.
#[derive(Serialize)]
struct KeyOut<'a> {
    id: &'a str,
    scope: &'a str,
    /// A chart-name prefix the key is limited to.
    charts: Option<&'a str>,
    /// The one chart the key is limited to.
    chart: Option<&'a str>,
    name: &'a str,
    created_at: f64,
}

impl<'a> KeyOut<'a> {
    fn new(
        id: &'a str,
        scope: &'a str,
        limit: Option<&'a ChartLimit>,
        name: &'a str,
        created_at: f64,
    ) -> Self {
        KeyOut {
            id,
            scope,
            charts: match limit {
                Some(ChartLimit::Prefix(p)) => Some(p),
                _ => None,
            },
            chart: match limit {
                Some(ChartLimit::Exact(c)) => Some(c),
                _ => None,
            },
            name,
            created_at,
        }
    }
}

/// `POST /api/v1/keys`: the secret is in this answer and nowhere else, ever.
pub async fn create(ctx: &mut Ctx) -> Result<Response> {
    auth::admin(ctx).await?;
    let wanted = KeyRequest::parse(&ctx.body().await?)?;
    let key = NewKey::from_random(&random_bytes::<KEY_RANDOM_BYTES>("a new key")?);
    ctx.db
        .create_key(
            &key.id,
            &key.hash,
            wanted.scope,
            wanted.limit.as_ref(),
            &wanted.name,
            ctx.now,
        )
        .await?;
    #[derive(Serialize)]
    struct Answer<'a> {
        #[serde(flatten)]
        shown: KeyOut<'a>,
        key: &'a str,
        note: &'static str,
    }
    Ok(http::json(
        201,
        &Answer {
            shown: KeyOut::new(
                &key.id,
                wanted.scope.as_str(),
                wanted.limit.as_ref(),
                &wanted.name,
                ctx.now.floor(),
            ),
            key: &key.secret,
            note: "the key is shown only this once; store it now",
        },
    ))
}

/// `GET /api/v1/keys`
pub async fn list(ctx: &Ctx) -> Result<Response> {
    auth::admin(ctx).await?;
    let rows = ctx.db.keys().await?;
    let limits: Vec<Option<ChartLimit>> = rows
        .iter()
        .map(|k| ChartLimit::from_stored(k.prefix.clone(), k.exact != 0))
        .collect();
    #[derive(Serialize)]
    struct Answer<'a> {
        keys: Vec<KeyOut<'a>>,
    }
    let keys = rows
        .iter()
        .zip(&limits)
        .map(|(k, limit)| KeyOut::new(&k.id, &k.scope, limit.as_ref(), &k.name, k.created_at))
        .collect();
    Ok(http::json(200, &Answer { keys }))
}

/// `DELETE /api/v1/keys/{id}`: gone from D1 first, then from this isolate's cache, so a failed
/// delete never leaves a key that looks revoked here but works everywhere else.
pub async fn delete(ctx: &Ctx, id: &str) -> Result<Response> {
    auth::admin(ctx).await?;
    if !ctx.db.delete_key(id).await? {
        return Err(ApiError::not_found(format!("no key with id {id:?}")));
    }
    auth::forget(id);
    Ok(http::ok())
}
