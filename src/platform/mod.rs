//! The Worker: entry points, configuration, and dispatch from a route to its handler. Domain
//! decisions are made in `domain`; this layer moves data.

mod alerts;
mod auth;
mod checks;
mod commit;
mod context;
mod db;
mod handlers;
mod http;
mod notify;
mod retention;
mod zone;

use crate::domain::config::Config;
use crate::domain::error::{ApiError, Code};
use crate::domain::route::Route;
use context::{Ctx, Result};
use db::Db;
use handlers::{
    alerts as alert_rules, channels, charts, embed, images, ingest, jobs, keys, metrics,
};
use worker::{event, Context, Env, Request, Response, ScheduleContext, ScheduledEvent};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> worker::Result<Response> {
    Ok(handle(req, env, ctx).await)
}

/// The cron of the hourly retention run (wrangler.toml); every other trigger checks jobs.
const RETENTION_CRON: &str = "17 * * * *";

#[event(scheduled)]
async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    // Judged at the event's scheduled time, not the wall clock, so that a test can move time.
    let now = event.schedule() / 1000.0;
    let cron = event.cron();
    let (cfg, db) = match load(&env) {
        Ok(loaded) => loaded,
        Err(e) => return worker::console_error!("scheduled ({cron}): {e}"),
    };
    // One trigger, one task: each run keeps to its own part of the 50 queries per invocation.
    let outcome = if cron == RETENTION_CRON {
        retention::run(&db, &cfg, now).await.map(|s| s.to_string())
    } else {
        checks::run(&db, &cfg, now).await.map(|s| s.to_string())
    };
    let cost = db.cost();
    match outcome {
        Ok(summary) => worker::console_log!(
            "scheduled ({cron}): {summary}; D1 rows read {}, written {}, in {} calls",
            cost.rows_read,
            cost.rows_written,
            cost.calls
        ),
        Err(e) => worker::console_error!("scheduled ({cron}) failed: {e}"),
    }
}

/// Runs `work` after the response, with its own configuration and D1 handle (the request's have
/// answered by then); a failure is logged, as nobody is left to tell.
pub(crate) fn after_response<F, Fut>(ctx: &Ctx, what: &'static str, work: F)
where
    F: FnOnce(Config, Db) -> Fut + 'static,
    Fut: std::future::Future<Output = Result<()>> + 'static,
{
    let Some(waiter) = &ctx.waiter else {
        return;
    };
    let env = ctx.env.clone();
    waiter.wait_until(async move {
        let (cfg, db) = match load(&env) {
            Ok(loaded) => loaded,
            // `load` has logged why.
            Err(_) => return,
        };
        if let Err(e) = work(cfg, db).await {
            worker::console_error!("{what}: {e}");
        }
    });
}

pub(crate) fn now_secs() -> f64 {
    worker::js_sys::Date::now() / 1000.0
}

/// Configuration and the database, the same for the fetch and the scheduled handler.
pub(crate) fn load(env: &Env) -> Result<(Config, Db)> {
    let cfg = Config::load(|name| context::env_text(env, name)).map_err(|msg| {
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

async fn handle(req: Request, env: Env, waiter: Context) -> Response {
    let route = match Route::parse(req.method().as_ref(), &req.path()) {
        Ok(Some(route)) => route,
        Ok(None) => return http::error(&ApiError::not_found(format!("nothing at {}", req.path()))),
        Err(e) => return http::error(&e),
    };
    // The platform's own ceiling: no config, no D1.
    if route == Route::Health {
        return health();
    }
    let (cfg, db) = match load(&env) {
        Ok(loaded) => loaded,
        Err(e) => return http::error(&e),
    };
    let mut ctx = Ctx::new(req, env, db, cfg, now_secs(), Some(waiter));
    let resp = match dispatch(route, &mut ctx).await {
        Ok(resp) => resp,
        Err(e) => http::error(&e),
    };
    // A refused caller learns nothing from what D1 did on the way to refusing it: not even
    // whether a row was there to read.
    if matches!(resp.status_code(), 401 | 403) {
        resp
    } else {
        http::with_cost(resp, ctx.db.cost())
    }
}

async fn dispatch(route: Route, ctx: &mut Ctx) -> Result<Response> {
    match route {
        Route::Health => Ok(health()),
        Route::Ingest => ingest::ingest(ctx).await,
        Route::ListCharts => charts::list(ctx).await,
        Route::GetChart(chart) => charts::get(ctx, &chart).await,
        Route::ConfigureChart(chart) => charts::configure(ctx, &chart).await,
        Route::DeleteChart(chart) => charts::delete(ctx, &chart).await,
        Route::CreateKey => keys::create(ctx).await,
        Route::ListKeys => keys::list(ctx).await,
        Route::DeleteKey(id) => keys::delete(ctx, &id).await,
        Route::Embed(_) => embed::page(ctx).await,
        Route::Image(chart) => Ok(images::image(ctx, &chart, false).await),
        Route::Badge(chart) => Ok(images::image(ctx, &chart, true).await),
        Route::Ping(job, kind) => jobs::ping(ctx, &job, kind).await,
        Route::ListJobs => jobs::list(ctx).await,
        Route::GetJob(job) => jobs::get(ctx, &job).await,
        Route::ConfigureJob(job) => jobs::configure(ctx, &job).await,
        Route::DeleteJob(job) => jobs::delete(ctx, &job).await,
        Route::ListChannels => channels::list(ctx).await,
        Route::CreateChannel => channels::create(ctx).await,
        Route::DeleteChannel(id) => channels::delete(ctx, &id).await,
        Route::TestChannel(id) => channels::test(ctx, &id).await,
        Route::ListNotifications => channels::notifications(ctx).await,
        Route::ListAlerts => alert_rules::list(ctx).await,
        Route::CreateAlert => alert_rules::create(ctx).await,
        Route::DeleteAlert(id) => alert_rules::delete(ctx, &id).await,
        Route::Scrape => metrics::scrape(ctx).await,
        Route::Push(how, rest) => metrics::push(ctx, how, &rest).await,
    }
}

fn health() -> Response {
    http::ok()
}
