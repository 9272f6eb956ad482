//! The Worker: entry points, one handler per route, the one place that turns a key into a caller,
//! and the scheduled retention run. Domain decisions are made in `domain`; this layer moves data.

mod commit;
mod db;
mod http;

use crate::domain::bucket::Agg;
use crate::domain::config::{Config, MAX_BODY_BYTES, MAX_QUERY_POINTS};
use crate::domain::error::{ApiError, Code};
use crate::domain::ingest::{too_large_body, Batch};
use crate::domain::keys::{
    hash_secret, key_id, presented_key, secrets_match, Action, Caller, ChartLimit, NewKey, Scope,
    KEY_RANDOM_BYTES,
};
use crate::domain::names::{ChartName, Labels};
use crate::domain::query::{answer, PointOut, QueryParams};
use crate::domain::route::Route;
use crate::domain::svg;
use crate::domain::time::parse_duration;
use db::Db;
use serde_json::{json, Value as Json};
use std::cell::RefCell;
use std::collections::HashMap;
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

type Result<T> = std::result::Result<T, ApiError>;

/// How long a verified key is trusted without asking D1 again. A revoked key stops working at
/// once in the isolate that revoked it and within this time everywhere else.
const KEY_CACHE_MS: f64 = 30_000.0;
/// Retention deletes at most this many buckets per statement, and this many chunks per run.
const RETENTION_CHUNK: u32 = 1000;
const RETENTION_MAX_CHUNKS: u32 = 200;

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    Ok(handle(&mut req, &env).await)
}

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match retention(&env).await {
        Ok(summary) => worker::console_log!("retention ({}): {summary}", event.cron()),
        Err(e) => worker::console_error!("retention ({}) failed: {e}", event.cron()),
    }
}

fn now_secs() -> f64 {
    worker::js_sys::Date::now() / 1000.0
}

/// Reads a `[vars]` entry as text, whether wrangler.toml wrote it as a string or a number.
fn env_text(env: &Env, name: &str) -> Option<String> {
    let v = worker::js_sys::Reflect::get(env, &name.into()).ok()?;
    v.as_string().or_else(|| v.as_f64().map(|n| n.to_string()))
}

fn load(env: &Env) -> Result<(Config, Db)> {
    let cfg = Config::load(|name| env_text(env, name)).map_err(|msg| {
        worker::console_error!("configuration: {msg}");
        ApiError::new(Code::BadConfiguration, msg)
    })?;
    let d1 = env.d1("DB").map_err(|e| {
        worker::console_error!("the D1 binding DB is missing: {e}");
        ApiError::new(
            Code::BadConfiguration,
            "the D1 binding DB is missing from wrangler.toml",
        )
    })?;
    Ok((cfg, Db::new(d1)))
}

async fn handle(req: &mut Request, env: &Env) -> Response {
    let route = match Route::parse(req.method().as_ref(), &req.path()) {
        Ok(Some(route)) => route,
        Ok(None) => return http::error(&ApiError::not_found(format!("nothing at {}", req.path()))),
        Err(e) => return http::error(&e),
    };
    // The platform's own ceiling: no config, no D1.
    if route == Route::Health {
        return health();
    }
    let (cfg, db) = match load(env) {
        Ok(loaded) => loaded,
        Err(e) => return http::error(&e),
    };
    let resp = match dispatch(route, req, env, &db, &cfg).await {
        Ok(resp) => resp,
        Err(e) => http::error(&e),
    };
    http::with_cost(resp, db.cost())
}

async fn dispatch(
    route: Route,
    req: &mut Request,
    env: &Env,
    db: &Db,
    cfg: &Config,
) -> Result<Response> {
    let now = now_secs();
    match route {
        Route::Health => Ok(health()),
        Route::Ingest => ingest(req, env, db, cfg, now).await,
        Route::ListCharts => list_charts(req, env, db, cfg, now).await,
        Route::GetChart(chart) => get_chart(&chart, req, env, db, cfg, now).await,
        Route::ConfigureChart(chart) => configure_chart(&chart, req, env, db, cfg, now).await,
        Route::DeleteChart(chart) => {
            caller(req, env, db, now)
                .await?
                .may(Action::DeleteChart(&chart), false)?;
            let (buckets, series, settings) = db.delete_chart(chart.as_str()).await?;
            if buckets + series + settings == 0 {
                return Err(chart_not_found(&chart));
            }
            Ok(http::json(
                200,
                &json!({"ok": true, "deleted": {"buckets": buckets, "series": series}}),
            ))
        }
        Route::CreateKey => create_key(req, env, db, now).await,
        Route::Embed(_) => embed(req, env).await,
        Route::Image(chart) => Ok(image(&chart, req, env, db, cfg, now, false).await),
        Route::Badge(chart) => Ok(image(&chart, req, env, db, cfg, now, true).await),
        Route::ListKeys => {
            admin(req, env, db, now).await?;
            let keys: Vec<Json> = db
                .keys()
                .await?
                .into_iter()
                .map(|k| {
                    let exact = k.exact != 0;
                    json!({
                        "id": k.id,
                        "scope": k.scope,
                        "charts": if exact { None } else { k.prefix.clone() },
                        "chart": if exact { k.prefix.clone() } else { None },
                        "name": k.name,
                        "created_at": k.created_at,
                    })
                })
                .collect();
            Ok(http::json(200, &json!({"keys": keys})))
        }
        Route::DeleteKey(id) => {
            admin(req, env, db, now).await?;
            KEY_CACHE.with(|c| c.borrow_mut().remove(&id));
            if !db.delete_key(&id).await? {
                return Err(ApiError::not_found(format!("no key with id {id:?}")));
            }
            Ok(http::json(200, &json!({"ok": true})))
        }
    }
}

fn health() -> Response {
    http::json(200, &json!({"ok": true}))
}

fn chart_not_found(chart: &ChartName) -> ApiError {
    ApiError::new(
        Code::ChartNotFound,
        format!("no chart named {:?}", chart.as_str()),
    )
}

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

/// The one place a presented key becomes a caller: the admin token, a stored key, or nobody.
async fn caller(req: &Request, env: &Env, db: &Db, now: f64) -> Result<Caller> {
    let headers = req.headers();
    let presented = presented_key(
        headers.get("X-API-Key").ok().flatten().as_deref(),
        headers.get("Authorization").ok().flatten().as_deref(),
    );
    let Some(presented) = presented else {
        return Ok(Caller::Anonymous);
    };
    if let Some(token) = admin_token(env) {
        if secrets_match(&presented, &hash_secret(&token)) {
            return Ok(Caller::AdminToken);
        }
    }
    stored_key(&presented, db, now).await
}

/// The caller of a read route. Embeds and README images cannot send headers, so these routes
/// also take `?key=`, but only a stored key: the admin token never belongs in a URL.
async fn reader(req: &Request, env: &Env, db: &Db, now: f64) -> Result<Caller> {
    match caller(req, env, db, now).await? {
        Caller::Anonymous => match query_param(req, "key").filter(|k| !k.is_empty()) {
            Some(k) => stored_key(&k, db, now).await,
            None => Ok(Caller::Anonymous),
        },
        known => Ok(known),
    }
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

/// Key management is off unless an ADMIN_TOKEN secret is set.
async fn admin(req: &Request, env: &Env, db: &Db, now: f64) -> Result<()> {
    if admin_token(env).is_none() {
        return Err(ApiError::new(
            Code::AdminDisabled,
            "key management is off: set the ADMIN_TOKEN secret (wrangler secret put ADMIN_TOKEN)",
        ));
    }
    caller(req, env, db, now)
        .await?
        .may(Action::ManageKeys, false)
}

async fn read_body(req: &mut Request) -> Result<Vec<u8>> {
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_BODY_BYTES) {
        return Err(too_large_body());
    }
    let body = req
        .bytes()
        .await
        .map_err(|_| ApiError::new(Code::InvalidBody, "the body could not be read"))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large_body());
    }
    Ok(body)
}

/// Reads a small JSON object body (settings, new keys), with a clear error for anything else.
async fn read_object(req: &mut Request) -> Result<serde_json::Map<String, Json>> {
    let body = read_body(req).await?;
    match serde_json::from_slice::<Json>(&body) {
        Ok(Json::Object(o)) => Ok(o),
        _ => Err(ApiError::new(
            Code::InvalidJson,
            "the body must be a JSON object",
        )),
    }
}

async fn ingest(req: &mut Request, env: &Env, db: &Db, cfg: &Config, now: f64) -> Result<Response> {
    let caller = caller(req, env, db, now).await?;
    if caller == Caller::Anonymous {
        return Err(ApiError::unauthorized());
    }
    // curl -d sends a form content type; the body is read as JSON whatever the header says.
    let body = read_body(req).await?;
    let batch = Batch::parse(&body, cfg, now)?;
    for s in &batch.series {
        caller.may(Action::Ingest(&s.chart), false)?;
    }
    let accepted = batch.len;
    let written = commit::write(db, batch, cfg, now).await?;
    db.share(written.cost, written.requests, written.led);
    Ok(http::json(200, &json!({"ok": true, "accepted": accepted})))
}

fn query_param(req: &Request, name: &str) -> Option<String> {
    query_pairs(req)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn query_pairs(req: &Request) -> Vec<(String, String)> {
    req.url()
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

async fn list_charts(
    req: &Request,
    env: &Env,
    db: &Db,
    cfg: &Config,
    now: f64,
) -> Result<Response> {
    let caller = reader(req, env, db, now).await?;
    let public_only = caller == Caller::Anonymous;
    if !public_only {
        caller.may(Action::ListCharts, false)?;
    }
    let spark = match query_param(req, "spark") {
        None => 0,
        Some(n) => n.parse::<u32>().ok().filter(|n| *n <= 200).ok_or_else(|| {
            ApiError::new(
                Code::InvalidSpark,
                "spark must be a number of buckets from 0 to 200",
            )
        })?,
    };
    let rows = db
        .list(
            caller.limit().map(ChartLimit::prefix),
            public_only,
            cfg,
            spark,
        )
        .await?;
    let charts: Vec<Json> = rows
        .into_iter()
        .filter(|r| caller.limit().is_none_or(|l| l.allows(&r.chart)))
        .map(|r| {
            let newest: Option<(i64, f64, f64)> = r
                .newest
                .as_deref()
                .and_then(|n| serde_json::from_str(n).ok());
            let mut series = json!({
                "chart": r.chart,
                "labels": Labels::from_canonical(&r.labels).as_map(),
                "bucket_seconds": r.bucket_seconds,
                "points": r.n_buckets,
                "first_ts": r.first_ts,
                "last_ts": newest.map(|n| n.2),
                "last_value": newest.map(|n| n.1),
                "public": r.public != 0,
            });
            if spark > 0 {
                let mut line: Vec<(i64, f64)> = r
                    .spark
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                line.reverse();
                series["spark"] = line
                    .into_iter()
                    .map(|(ts, value)| json!({"ts": ts, "value": value}))
                    .collect();
            }
            series
        })
        .collect();
    Ok(http::json(200, &json!({"charts": charts})))
}

async fn get_chart(
    chart: &ChartName,
    req: &Request,
    env: &Env,
    db: &Db,
    cfg: &Config,
    now: f64,
) -> Result<Response> {
    let caller = reader(req, env, db, now).await?;
    let pairs = query_pairs(req);
    let params = QueryParams::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())), now)?;
    let series = db.series_of(chart.as_str(), cfg).await?;
    let public = series.first().is_some_and(|s| s.public != 0);
    caller.may(Action::Read(chart), public)?;
    let s = pick_series(chart, &series, params.labels.as_ref())?;
    let step = params.step_for(s.bucket_seconds)?;
    let (from, to) = params.bucket_range(step);
    let per_step = (step / i64::from(s.bucket_seconds)).max(1) as usize;
    let limit = (MAX_QUERY_POINTS + 1)
        .saturating_mul(per_step)
        .min(1_000_000);
    let buckets = db.buckets(s.id, from, to, limit).await?;
    let (points, truncated) = answer(&buckets, params.agg, step, s.bucket_seconds);
    // Serialized straight from a struct: a json! tree would allocate a map for every point.
    #[derive(serde::Serialize)]
    struct ChartAnswer<'a> {
        chart: &'a str,
        labels: Labels,
        bucket_seconds: u32,
        max_points: u32,
        agg: &'static str,
        step: i64,
        from: i64,
        to: i64,
        truncated: bool,
        points: Vec<PointOut>,
    }
    Ok(http::json(
        200,
        &ChartAnswer {
            chart: &s.chart,
            labels: Labels::from_canonical(&s.labels),
            bucket_seconds: s.bucket_seconds,
            max_points: cfg.max_points,
            agg: params.agg.as_str(),
            step,
            from,
            to,
            truncated,
            points,
        },
    ))
}

/// The series a read means: the one with the asked labels, else the label-less or only one.
fn pick_series<'a>(
    chart: &ChartName,
    series: &'a [db::SeriesRow],
    labels: Option<&Labels>,
) -> Result<&'a db::SeriesRow> {
    let chosen = match labels {
        Some(labels) => {
            let wanted = labels.canonical();
            series.iter().find(|s| s.labels == wanted)
        }
        None => series
            .iter()
            .find(|s| s.labels == "{}")
            .or(if series.len() == 1 {
                series.first()
            } else {
                None
            }),
    };
    if let Some(s) = chosen {
        return Ok(s);
    }
    if series.is_empty() {
        return Err(chart_not_found(chart));
    }
    if labels.is_some() {
        return Err(ApiError::new(
            Code::SeriesNotFound,
            "this chart has no series with those labels",
        ));
    }
    let sets: Vec<&str> = series.iter().map(|s| s.labels.as_str()).collect();
    Err(ApiError::new(
        Code::LabelsRequired,
        format!(
            "this chart has several series; choose one with labels=..., one of {}",
            sets.join(" ")
        ),
    ))
}

async fn configure_chart(
    chart: &ChartName,
    req: &mut Request,
    env: &Env,
    db: &Db,
    cfg: &Config,
    now: f64,
) -> Result<Response> {
    let caller = caller(req, env, db, now).await?;
    caller.may(Action::ConfigureChart(chart), false)?;
    let body = read_object(req).await?;
    let mut bucket_seconds = None;
    let mut public = None;
    for (k, v) in &body {
        match k.as_str() {
            "bucket_seconds" => {
                bucket_seconds = Some(
                    v.as_u64()
                        .filter(|n| (1..=86_400).contains(n))
                        .map(|n| n as u32)
                        .ok_or_else(|| {
                            ApiError::new(
                                Code::InvalidBucketSeconds,
                                "bucket_seconds must be a whole number of seconds from 1 to 86400",
                            )
                        })?,
                )
            }
            "public" => {
                public = Some(v.as_bool().ok_or_else(|| {
                    ApiError::new(Code::InvalidPublic, "public must be true or false")
                })?)
            }
            other => {
                return Err(ApiError::new(
                    Code::UnknownField,
                    format!("unknown setting {other:?}; a chart has bucket_seconds and public"),
                ))
            }
        }
    }
    let mut rebucketed = false;
    if let Some(new) = bucket_seconds {
        let series = db.series_of(chart.as_str(), cfg).await?;
        if let Some(old) = series
            .iter()
            .find(|s| s.n_buckets > 0 && s.bucket_seconds != new)
            .map(|s| s.bucket_seconds)
        {
            if new % old != 0 {
                return Err(ApiError::new(Code::BucketChangeNotPossible,
                    format!(
                        "this chart holds {old} s buckets; it can move to a multiple of {old} s (its buckets are merged), or to any size once deleted"
                    ),
                ));
            }
            db.rebucket(chart.as_str(), new, public, cfg, now).await?;
            rebucketed = true;
        }
    }
    if !rebucketed {
        db.save_chart_settings(chart.as_str(), bucket_seconds, public, now)
            .await?;
    }
    let saved = db.chart_settings(chart.as_str()).await?;
    Ok(http::json(
        200,
        &json!({
            "chart": chart.as_str(),
            "bucket_seconds": saved.as_ref().and_then(|s| s.bucket_seconds).unwrap_or(cfg.bucket_seconds),
            "public": saved.is_some_and(|s| s.public != 0),
        }),
    ))
}

async fn create_key(req: &mut Request, env: &Env, db: &Db, now: f64) -> Result<Response> {
    admin(req, env, db, now).await?;
    let body = read_object(req).await?;
    if let Some(k) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "scope" | "charts" | "chart" | "name"))
    {
        return Err(ApiError::new(
            Code::UnknownField,
            format!("unknown field {k:?}; a key has scope, charts or chart, and name"),
        ));
    }
    let scope = Scope::parse(body.get("scope").and_then(Json::as_str).ok_or_else(|| {
        ApiError::new(
            Code::MissingField,
            "scope is missing: ingest, read or admin",
        )
    })?)?;
    let text_field = |field: &str| -> Result<Option<String>> {
        match body.get(field) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(p)) if p.is_empty() => Ok(None),
            Some(Json::String(p)) if p.chars().count() <= 128 => Ok(Some(p.clone())),
            Some(_) => Err(ApiError::new(
                Code::InvalidCharts,
                "charts is a chart-name prefix such as \"shop.\" and chart one chart's name",
            )),
        }
    };
    let limit = match (text_field("charts")?, text_field("chart")?) {
        (None, None) => None,
        (Some(p), None) => Some(ChartLimit::Prefix(p)),
        (None, Some(c)) => Some(ChartLimit::Exact(
            ChartName::parse(&c)?.as_str().to_string(),
        )),
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Code::InvalidCharts,
                "give charts (a prefix) or chart (one chart), not both",
            ))
        }
    };
    if limit.is_some() && scope == Scope::Admin {
        return Err(ApiError::new(
            Code::InvalidCharts,
            "an admin key sees every chart; drop the chart limit or use the ingest or read scope",
        ));
    }
    let name = match body.get("name") {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(n)) if n.chars().count() <= 100 => n.clone(),
        Some(_) => {
            return Err(ApiError::new(
                Code::InvalidName,
                "name must be a string of at most 100 characters",
            ))
        }
    };
    let mut random = [0u8; KEY_RANDOM_BYTES];
    getrandom::getrandom(&mut random).map_err(|e| {
        worker::console_error!("no randomness for a new key: {e}");
        ApiError::internal()
    })?;
    let key = NewKey::from_random(&random);
    db.create_key(&key.id, &key.hash, scope, limit.as_ref(), &name, now)
        .await?;
    Ok(http::json(
        201,
        &json!({
            "id": key.id,
            "key": key.secret,
            "scope": scope.as_str(),
            "charts": match &limit { Some(ChartLimit::Prefix(p)) => Some(p), _ => None },
            "chart": match &limit { Some(ChartLimit::Exact(c)) => Some(c), _ => None },
            "name": name,
            "created_at": now.floor(),
            "note": "the key is shown only this once; store it now",
        }),
    ))
}

/// Deletes buckets older than the retention, chunk by chunk, and says what it did.
async fn retention(env: &Env) -> Result<String> {
    let (cfg, db) = load(env)?;
    let cutoff = now_secs().floor() as i64 - cfg.retention_seconds();
    let (mut buckets, mut series, mut chunks) = (0, 0, 0);
    loop {
        let (b, s) = db.retention_chunk(cutoff, RETENTION_CHUNK).await?;
        buckets += b;
        series += s;
        chunks += 1;
        if b < RETENTION_CHUNK as usize || chunks >= RETENTION_MAX_CHUNKS {
            break;
        }
    }
    let cost = db.cost();
    Ok(format!(
        "deleted {buckets} buckets older than {cutoff} and {series} empty series in {chunks} chunks (D1 rows read {}, written {})",
        cost.rows_read, cost.rows_written
    ))
}

/// The embed page is a static file; served from here so that other sites may frame it.
async fn embed(req: &Request, env: &Env) -> Result<Response> {
    let fail = |e: worker::Error| {
        worker::console_error!("embed page: {e}");
        ApiError::internal()
    };
    let assets = env.assets("ASSETS").map_err(fail)?;
    let url = req.url().map_err(fail)?;
    let page = format!(
        "{}://{}/embed.html",
        url.scheme(),
        url.host_str().unwrap_or("localhost")
    );
    let mut resp = assets.fetch(page, None).await.map_err(fail)?;
    if resp.status_code() >= 300 {
        if let Some(location) = resp.headers().get("Location").ok().flatten() {
            let target = url.join(&location).map_err(|_| ApiError::internal())?;
            resp = assets.fetch(target.to_string(), None).await.map_err(fail)?;
        }
    }
    if resp.status_code() != 200 {
        worker::console_error!(
            "embed page: public/embed.html answered {}",
            resp.status_code()
        );
        return Err(ApiError::internal());
    }
    let html = resp.text().await.map_err(fail)?;
    Ok(http::frameable(
        200,
        "text/html; charset=utf-8",
        html,
        "no-cache",
    ))
}

/// `/img/{chart}.svg` and `/badge/{chart}.svg`: errors become images too, since a README shows
/// whatever comes back.
async fn image(
    chart: &ChartName,
    req: &Request,
    env: &Env,
    db: &Db,
    cfg: &Config,
    now: f64,
    badge: bool,
) -> Response {
    let theme = svg::Theme::parse(query_param(req, "theme").as_deref());
    match draw(chart, req, env, db, cfg, now, badge, theme).await {
        Ok(body) => {
            let tag = req.headers().get("If-None-Match").ok().flatten();
            http::svg(body, tag.as_deref())
        }
        Err(e) => {
            let text = match e.status {
                401 => "unauthorized: add ?key= with a read key".to_string(),
                403 => "forbidden: this key cannot read this chart".to_string(),
                _ => e.message.clone(),
            };
            let body = if badge {
                svg::badge(chart.as_str(), e.code.as_str())
            } else {
                svg::message(&text, 420, 60, theme)
            };
            http::frameable(e.status, "image/svg+xml; charset=utf-8", body, "no-store")
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn draw(
    chart: &ChartName,
    req: &Request,
    env: &Env,
    db: &Db,
    cfg: &Config,
    now: f64,
    badge: bool,
    theme: svg::Theme,
) -> Result<String> {
    let caller = reader(req, env, db, now).await?;
    // Parsed once: an image request asks for up to nine parameters.
    let pairs = query_pairs(req);
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let labels = param("labels")
        .map(|l| Labels::from_query(&l))
        .transpose()?;
    let series = db.series_of(chart.as_str(), cfg).await?;
    let public = series.first().is_some_and(|s| s.public != 0);
    caller.may(Action::Read(chart), public)?;
    let s = pick_series(chart, &series, labels.as_ref())?;
    let agg = match param("agg") {
        Some(a) => Agg::parse(&a)?,
        None if badge => Agg::Last,
        None => Agg::Avg,
    };
    if badge {
        let newest = db.buckets(s.id, 0, i64::MAX, 1).await?;
        let value = newest
            .first()
            .map(|b| svg::format_value(b.value(agg)))
            .unwrap_or_else(|| "no data".to_string());
        let label = param("label").unwrap_or_else(|| chart.as_str().to_string());
        return Ok(svg::badge(&label, &value));
    }
    let size = |name: &str, default: u32, min: u32, max: u32| -> Result<u32> {
        match param(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::new(
                        Code::InvalidSize,
                        format!("{name} must be from {min} to {max}"),
                    )
                }),
        }
    };
    let spark = param("type").as_deref() == Some("spark");
    let width = size("width", if spark { 160 } else { 600 }, 40, 2000)?;
    let height = size("height", if spark { 40 } else { 200 }, 20, 1000)?;
    let range_text = param("range").unwrap_or_else(|| "24h".to_string());
    let range = parse_duration(&range_text).ok_or_else(|| {
        ApiError::new(
            Code::InvalidRange,
            "range must be a duration such as 1h, 24h or 7d",
        )
    })?;
    // Every bucket is drawn while there are no more than pixels; beyond that buckets are rolled
    // up by the smallest factor that fits. At most eight buckets a pixel are read.
    let bucket = i64::from(s.bucket_seconds);
    let to = now.ceil() as i64;
    let from = (to - range).div_euclid(bucket) * bucket;
    let buckets = db.buckets(s.id, from, to + 1, width as usize * 8).await?;
    let factor = buckets.len().div_ceil(width as usize).max(1) as i64;
    let (points, _) = answer(&buckets, agg, bucket * factor, s.bucket_seconds);
    let xy: Vec<(i64, f64)> = points.iter().map(|p| (p.ts, p.value)).collect();
    let title = param("title").unwrap_or_else(|| chart.as_str().to_string());
    Ok(svg::line_chart(&svg::LineChart {
        title: &title,
        points: &xy,
        from,
        to,
        width,
        height,
        theme,
        spark,
        caption: &format!("{range_text} · {}", agg.as_str()),
    }))
}
