//! `/img/{chart}.svg` and `/badge/{chart}.svg`: charts drawn in Rust for READMEs. Errors become
//! images too, since a README shows whatever comes back.

use crate::domain::chart::pick_series;
use crate::domain::image::ImageRequest;
use crate::domain::names::ChartName;
use crate::domain::query::answer;
use crate::domain::svg;
use crate::platform::context::{Ctx, Result};
use crate::platform::{auth, http};
use worker::{Cache, Headers, Response};

pub async fn image(ctx: &Ctx, chart: &ChartName, badge: bool) -> Response {
    let tag = ctx.header("If-None-Match");
    // An image asked for with a `?key=` in its URL (a README's) is the same for everyone holding
    // that URL: the edge cache keeps it a minute, so a README image viewed 2,000 times a day
    // reaches D1 at most once a minute per location. A key in a header is not in the URL, so such
    // an answer is never shared; nor is an anonymous one, so that a chart made private stops
    // showing at once.
    let url = ctx.req.inner().url();
    let shared = ctx.param("key").is_some()
        && ctx.header("X-API-Key").is_none()
        && ctx.header("Authorization").is_none();
    if shared {
        if let Some((body, public)) = cached(&url).await {
            return http::svg(body, tag.as_deref(), public);
        }
    }
    match draw(ctx, chart, badge).await {
        Ok((body, public)) => {
            if shared {
                keep(&url, &body, public).await;
            }
            http::svg(body, tag.as_deref(), public)
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
/// How long the edge keeps an image: as long as browsers may (`max-age=60`).
const CACHE_CONTROL: &str = "public, max-age=60";

async fn cached(url: &str) -> Option<(String, bool)> {
    let mut hit = Cache::default().get(url, false).await.ok()??;
    let public = hit.headers().get(PUBLIC_MARK).ok()?.as_deref() == Some("1");
    Some((hit.text().await.ok()?, public))
}

/// Stores a drawn image for a minute. The stored copy says `public` whatever the chart (the edge
/// cache keeps nothing private); what a caller gets is rebuilt with the chart's own headers.
async fn keep(url: &str, body: &str, public: bool) {
    let headers = Headers::new();
    let _ = headers.set("Content-Type", "image/svg+xml; charset=utf-8");
    let _ = headers.set("Cache-Control", CACHE_CONTROL);
    let _ = headers.set(PUBLIC_MARK, if public { "1" } else { "0" });
    let stored = match Response::ok(body) {
        Ok(r) => r.with_headers(headers),
        Err(_) => return,
    };
    if let Err(e) = Cache::default().put(url, stored).await {
        worker::console_error!("image cache: {e}");
    }
}

/// The image, and whether the chart is public (which decides who may cache it).
async fn draw(ctx: &Ctx, chart: &ChartName, badge: bool) -> Result<(String, bool)> {
    let caller = auth::reader(ctx).await?;
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
        let newest = ctx.db.buckets(s.id, 0, i64::MAX, 1).await?;
        let value = newest
            .first()
            .map(|b| svg::format_value(b.value(req.agg)))
            .unwrap_or_else(|| "no data".to_string());
        return Ok((svg::badge(title, &value), public));
    }
    let (from, to) = req.bucket_range(ctx.now, s.bucket_seconds);
    let buckets = ctx
        .db
        .buckets(s.id, from, to + 1, req.most_buckets())
        .await?;
    let step = req.step(buckets.len(), s.bucket_seconds);
    let (points, _) = answer(&buckets, req.agg, step, s.bucket_seconds);
    let xy: Vec<(i64, f64)> = points.iter().map(|p| (p.ts, p.value)).collect();
    Ok((
        svg::line_chart(&svg::LineChart {
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
    ))
}
