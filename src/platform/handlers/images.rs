//! `/img/{chart}.svg` and `/badge/{chart}.svg`: charts drawn in Rust for READMEs. Errors become
//! images too, since a README shows whatever comes back.

use crate::domain::chart::pick_series;
use crate::domain::image::ImageRequest;
use crate::domain::keys::{hash_secret, Action, Caller};
use crate::domain::names::ChartName;
use crate::domain::query::answer;
use crate::domain::svg;
use crate::platform::context::{Ctx, Result};
use crate::platform::{auth, http};
use worker::{Cache, Headers, Response};

pub async fn image(ctx: &Ctx, chart: &ChartName, badge: bool) -> Response {
    let tag = ctx.header("If-None-Match");
    // An image asked for with a read key in its URL (a README's) is the same for everyone holding
    // that URL: the edge cache keeps it a minute, or longer for long ranges, so a README image
    // viewed 2,000 times a day reaches D1 a few dozen times a day per location. Only where the key
    // in the URL is what grants access: a key in a header is not in the URL, and an image that a
    // chart's being public allows must stop showing when the chart stops being public. (The Cache
    // API works on a custom domain; on *.workers.dev it keeps nothing.)
    let url = ctx.req.inner().url();
    let url_key = ctx
        .param("key")
        .filter(|k| !k.is_empty())
        .filter(|_| ctx.header("X-API-Key").is_none() && ctx.header("Authorization").is_none());
    let key_hash = url_key.map(hash_secret);
    if let Some(hash) = &key_hash {
        if let Some((body, public)) = cached(&url, hash).await {
            return http::svg(body, tag.as_deref(), public);
        }
    }
    match draw(ctx, chart, badge).await {
        Ok(drawn) => {
            if let (Some(hash), true) = (key_hash, drawn.by_url_key) {
                if let Some(waiter) = &ctx.waiter {
                    let (url, body) = (url.clone(), drawn.body.clone());
                    let (public, seconds) = (drawn.public, drawn.edge_seconds);
                    // Stored after the response: a miss waits for D1, not for the cache too.
                    waiter
                        .wait_until(async move { keep(&url, &body, &hash, public, seconds).await });
                }
            }
            http::svg(drawn.body, tag.as_deref(), drawn.public)
        }
        Err(e) => {
            let text = match e.status {
                401 => "unauthorized: add ?key= with a read key".to_string(),
                403 => format!("forbidden: {}", e.message),
                _ => e.message.clone(),
            };
            let body = if badge {
                svg::badge(chart.as_str(), e.code.as_str())
            } else {
                svg::message(&text, 420, 60, svg::Theme::parse(ctx.param("theme")))
            };
            http::svg_error(e.status, body)
        }
    }
}

/// Marks a cached image of a public chart, so that a hit answers with the same headers.
const PUBLIC_MARK: &str = "X-Pushplot-Public";
/// The hash of the key that drew a cached image: a hit serves only the same key, even if the
/// cache were ever to match URLs loosely.
const KEY_MARK: &str = "X-Pushplot-Key";

async fn cached(url: &str, key_hash: &str) -> Option<(String, bool)> {
    let mut hit = Cache::default().get(url, false).await.ok()??;
    if hit.headers().get(KEY_MARK).ok()?.as_deref() != Some(key_hash) {
        return None;
    }
    let public = hit.headers().get(PUBLIC_MARK).ok()?.as_deref() == Some("1");
    Some((hit.text().await.ok()?, public))
}

/// Stores a drawn image for `seconds` (see `ImageRequest::edge_seconds`). The stored copy says
/// `public` whatever the chart (the edge cache keeps nothing private); what a caller gets is
/// rebuilt with the chart's own headers.
async fn keep(url: &str, body: &str, key_hash: &str, public: bool, seconds: u32) {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "image/svg+xml; charset=utf-8");
    let _ = headers.set("Cache-Control", &format!("public, max-age={seconds}"));
    let _ = headers.set(PUBLIC_MARK, if public { "1" } else { "0" });
    let _ = headers.set(KEY_MARK, key_hash);
    let stored = match Response::ok(body) {
        Ok(r) => r.with_headers(headers),
        Err(_) => return,
    };
    if let Err(e) = Cache::default().put(url, stored).await {
        worker::console_error!("image cache: {e}");
    }
}

/// A drawn image: its SVG, whether the chart is public (which decides who may cache it), how long
/// the edge may keep it, and whether the key in the URL alone allowed it.
struct Drawn {
    body: String,
    public: bool,
    edge_seconds: u32,
    by_url_key: bool,
}

async fn draw(ctx: &Ctx, chart: &ChartName, badge: bool) -> Result<Drawn> {
    let caller = auth::reader(ctx).await?;
    let by_url_key =
        matches!(caller, Caller::Key { .. }) && caller.may(Action::Read(chart), false).is_ok();
    let req = ImageRequest::parse(ctx.params(), badge, ctx.cfg.retention_seconds())?;
    auth::may_read(ctx, &caller, chart).await?;
    let series = ctx
        .db
        .series_for(chart.as_str(), req.labels.as_ref(), &ctx.cfg)
        .await?;
    let s = pick_series(chart, &series, |s| &s.labels, req.labels.as_ref())?;
    let public = s.public != 0;
    let title = req.title.as_deref().unwrap_or(chart.as_str());
    if badge {
        let newest = ctx
            .db
            .buckets(s.id, ctx.cfg.max_points, 0, i64::MAX, 1)
            .await?;
        let value = newest
            .first()
            .map(|b| svg::format_value(b.value(req.agg)))
            .unwrap_or_else(|| "no data".to_string());
        return Ok(Drawn {
            body: svg::badge(title, &value),
            public,
            edge_seconds: req.edge_seconds(),
            by_url_key,
        });
    }
    let (from, to) = req.bucket_range(ctx.now, s.bucket_seconds);
    let buckets = ctx
        .db
        .buckets(s.id, ctx.cfg.max_points, from, to + 1, req.most_buckets())
        .await?;
    let step = req.step(buckets.len(), s.bucket_seconds);
    let (points, _) = answer(&buckets, req.agg, step, s.bucket_seconds);
    let xy: Vec<(i64, f64)> = points.iter().map(|p| (p.ts, p.value)).collect();
    Ok(Drawn {
        body: svg::line_chart(&svg::LineChart {
            title,
            points: &xy,
            from,
            to,
            width: req.width,
            height: req.height,
            theme: req.theme,
            spark: req.spark,
            caption: &format!("{} · {}", req.range_text, req.agg.as_str()),
        }),
        public,
        // An empty chart (a README added before the first push) is not kept long.
        edge_seconds: if xy.is_empty() {
            60
        } else {
            req.edge_seconds()
        },
        by_url_key,
    })
}
