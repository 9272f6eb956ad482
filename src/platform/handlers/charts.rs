//! The chart API: list, query, settings (bucket size, public) and delete.

use crate::domain::bucket::Bucket;
use crate::domain::chart::{
    bucket_change, chart_not_found, pick_series, BucketChange, SettingsChange,
};
use crate::domain::chunk::{extent, kept, sparkline, Chunk, One};
use crate::domain::config::MAX_QUERY_POINTS;
use crate::domain::error::ApiError;
use crate::domain::keys::{Action, Caller};
use crate::domain::names::{ChartName, Labels};
use crate::domain::query::{answer, parse_since, parse_spark, PointOut, QueryParams};
use crate::platform::context::{Ctx, Result};
use crate::platform::{auth, http};
use serde::Serialize;
use worker::Response;

/// `GET /api/v1/charts`: every series the caller may see; without a key, the public ones.
pub async fn list(ctx: &Ctx) -> Result<Response> {
    let caller = auth::reader(ctx).await?;
    let public_only = caller == Caller::Anonymous;
    if !public_only {
        caller.may(Action::ListCharts, false)?;
    }
    let spark = parse_spark(ctx.param("spark"))?;
    let since = parse_since(ctx.param("since"))?;
    let rows = ctx
        .db
        .list(caller.limit(), public_only, &ctx.cfg, spark, since)
        .await?;

    #[derive(Serialize)]
    struct Spark {
        ts: i64,
        value: f64,
    }
    #[derive(Serialize)]
    struct Listed<'a> {
        chart: &'a str,
        labels: Labels,
        bucket_seconds: u32,
        points: i64,
        first_ts: Option<i64>,
        last_ts: Option<f64>,
        last_value: Option<f64>,
        public: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        spark: Option<Vec<Spark>>,
    }
    #[derive(Serialize)]
    struct Answer<'a> {
        /// Echoed when given: each `spark` then holds only its buckets that end after it.
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<i64>,
        /// The server's time of the answer: the `since` of the next refresh, whatever the
        /// client's clock says.
        now: i64,
        charts: Vec<Listed<'a>>,
    }
    let decode = |e: serde_json::Error| {
        worker::console_error!("chart list: a stored JSON column did not decode: {e}");
        ApiError::internal()
    };
    // Readers cut to MAX_POINTS as configured now (`domain::chunk`).
    let cap = i64::from(ctx.cfg.max_points);
    let mut charts = Vec::with_capacity(rows.len());
    for r in rows
        .iter()
        .filter(|r| caller.limit().is_none_or(|l| l.allows(&r.chart)))
    {
        let newest: Option<(i64, One)> = r
            .newest
            .as_deref()
            .map(serde_json::from_str::<(i64, i64, _)>)
            .transpose()
            .map_err(decode)?
            .map(|(top, ts, b)| (top, One(ts, b)));
        let top = newest.as_ref().map_or(0, |n| n.0);
        let newest = newest.map(|(_, one)| Bucket::from(one));
        let bottom: Option<Chunk> = r
            .bottom
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(decode)?;
        let extent = extent(bottom, top, cap);
        let spark = if spark > 0 {
            let chunks: Vec<Chunk> = r
                .spark
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(decode)?
                .unwrap_or_default();
            Some(sparkline(
                kept(chunks, top, cap),
                spark,
                since,
                r.bucket_seconds,
            ))
        } else {
            None
        };
        charts.push(Listed {
            chart: &r.chart,
            labels: Labels::from_canonical(&r.labels)?,
            bucket_seconds: r.bucket_seconds,
            points: extent.points,
            first_ts: extent.first_ts,
            last_ts: newest.map(|n| n.last_ts),
            last_value: newest.map(|n| n.last),
            public: r.public != 0,
            spark: spark.map(|line| {
                line.into_iter()
                    .map(|(ts, value)| Spark { ts, value })
                    .collect()
            }),
        });
    }
    Ok(http::json(
        200,
        &Answer {
            since,
            now: ctx.now.floor() as i64,
            charts,
        },
    ))
}

/// `GET /api/v1/charts/{chart}`: one series' points over a range, rolled up to a step.
pub async fn get(ctx: &Ctx, chart: &ChartName) -> Result<Response> {
    let caller = auth::reader(ctx).await?;
    let params = QueryParams::parse(ctx.params(), ctx.now)?;
    auth::may_read(ctx, &caller, chart).await?;
    let series = ctx
        .db
        .series_for(chart.as_str(), params.labels.as_ref(), &ctx.cfg)
        .await?;
    let s = pick_series(chart, &series, |s| &s.labels, params.labels.as_ref())?;
    let step = params.step_for(s.bucket_seconds, ctx.cfg.retention_seconds())?;
    let (from, to) = params.bucket_range(step);
    let per_step = (step / i64::from(s.bucket_seconds.max(1))).max(1) as usize;
    let limit = (MAX_QUERY_POINTS + 1)
        .saturating_mul(per_step)
        .min(1_000_000);
    let buckets: Vec<Bucket> = ctx
        .db
        .buckets(s.id, ctx.cfg.max_points, from, to, limit)
        .await?;
    let (points, truncated) = answer(&buckets, params.agg, step, s.bucket_seconds);
    // Serialized straight from a struct: a json! tree would allocate a map for every point.
    #[derive(Serialize)]
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
            labels: Labels::from_canonical(&s.labels)?,
            bucket_seconds: s.bucket_seconds,
            max_points: ctx.cfg.max_points,
            agg: params.agg.as_str(),
            step,
            from,
            to,
            truncated,
            points,
        },
    ))
}

/// `PUT /api/v1/charts/{chart}`: an ingest key may set the bucket size of its charts; making a
/// chart public (or private again) needs the admin scope, because it decides who may read.
pub async fn configure(ctx: &mut Ctx, chart: &ChartName) -> Result<Response> {
    let caller = auth::caller(ctx).await?;
    caller.may(Action::ConfigureChart(chart), false)?;
    let change = SettingsChange::parse(&ctx.body().await?)?;
    if change.public.is_some() {
        caller.may(Action::PublishChart(chart), false)?;
    }
    let (db, cfg, now) = (&ctx.db, &ctx.cfg, ctx.now);
    let mut rebucketed = false;
    if let Some(new) = change.bucket_seconds {
        let stored = db.stored_bucket_seconds(chart.as_str(), cfg).await?;
        if bucket_change(stored, new)? == BucketChange::Merge {
            db.rebucket(chart.as_str(), new, change.public, cfg.max_points, now)
                .await?;
            rebucketed = true;
        }
    }
    if !rebucketed {
        db.save_chart_settings(chart.as_str(), change.bucket_seconds, change.public, now)
            .await?;
    }
    let saved = db.chart_settings(chart.as_str()).await?;
    #[derive(Serialize)]
    struct Saved<'a> {
        chart: &'a str,
        bucket_seconds: u32,
        public: bool,
    }
    Ok(http::json(
        200,
        &Saved {
            chart: chart.as_str(),
            bucket_seconds: saved
                .as_ref()
                .and_then(|s| s.bucket_seconds)
                .unwrap_or(cfg.bucket_seconds),
            public: saved.is_some_and(|s| s.public != 0),
        },
    ))
}

/// `DELETE /api/v1/charts/{chart}`: admin only; its buckets, series and settings.
pub async fn delete(ctx: &Ctx, chart: &ChartName) -> Result<Response> {
    auth::caller(ctx)
        .await?
        .may(Action::DeleteChart(chart), false)?;
    let (buckets, series, settings) = ctx
        .db
        .delete_chart(chart.as_str(), ctx.cfg.max_points)
        .await?;
    if buckets + series + settings == 0 {
        return Err(chart_not_found(chart));
    }
    Ok(http::raw_json(
        200,
        format!(r#"{{"ok":true,"deleted":{{"buckets":{buckets},"series":{series}}}}}"#),
    ))
}
