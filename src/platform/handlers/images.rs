//! `/img/{chart}.svg` and `/badge/{chart}.svg`: charts drawn in Rust for READMEs. Errors become
//! images too, since a README shows whatever comes back.

use crate::domain::chart::pick_series;
use crate::domain::image::ImageRequest;
use crate::domain::names::ChartName;
use crate::domain::query::answer;
use crate::domain::svg;
use crate::platform::context::{Ctx, Result};
use crate::platform::{auth, http};
use worker::Response;

pub async fn image(ctx: &Ctx, chart: &ChartName, badge: bool) -> Response {
    match draw(ctx, chart, badge).await {
        Ok((body, public)) => {
            let tag = ctx.header("If-None-Match");
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
