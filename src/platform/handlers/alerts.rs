//! Alert rules on charts: `POST /api/v1/alerts` (admin), `GET /api/v1/alerts[?chart=]` (read,
//! within the key's chart limit), `DELETE /api/v1/alerts/{id}` (admin).

use crate::domain::alert::{check_fits, short, AlertRequest, Condition};
use crate::domain::chart::pick_series;
use crate::domain::error::{ApiError, Code};
use crate::domain::keys::{short_id, Action, Names, SHORT_ID_BYTES};
use crate::domain::names::{ChartName, Labels};
use crate::platform::context::{random_bytes, writer_id, Ctx, Result};
use crate::platform::db::{AlertInsert, AlertRow};
use crate::platform::handlers::channels;
use crate::platform::{alerts, auth, http};
use serde::Serialize;
use serde_json::Value;
use worker::Response;

/// A rule as the API shows it: the fields it was made with (so it can be sent again), then its
/// state.
#[derive(Serialize)]
struct AlertOut<'a> {
    id: &'a str,
    name: &'a str,
    chart: &'a str,
    labels: Value,
    agg: Option<&'a str>,
    window: Option<String>,
    op: Option<&'a str>,
    value: Option<f64>,
    absent: Option<String>,
    channels: Option<Value>,
    state: &'a str,
    since: f64,
    last_value: Option<f64>,
    judged_at: Option<f64>,
    next_check: Option<f64>,
    created_at: f64,
    history: Value,
}

fn raw(text: &str, what: &str, id: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|_| {
        worker::console_error!("alert {id:?}: its stored {what} does not read back");
        ApiError::internal()
    })
}

fn alert_out(r: &AlertRow) -> Result<AlertOut<'_>> {
    Ok(AlertOut {
        id: &r.id,
        name: &r.name,
        chart: &r.chart,
        labels: raw(&r.labels, "labels", &r.id)?,
        agg: r.agg.as_deref(),
        window: r.window_secs.map(|w| short(w as i64)),
        op: r.op.as_deref(),
        value: r.threshold,
        absent: r.absent_secs.map(|a| short(a as i64)),
        channels: r
            .channels
            .as_deref()
            .map(|c| raw(c, "channels", &r.id))
            .transpose()?,
        state: &r.state,
        since: r.since,
        last_value: r.last_value,
        judged_at: r.judged_at,
        next_check: r.check_at,
        created_at: r.created_at,
        history: raw(&r.history, "history", &r.id)?,
    })
}

/// `POST /api/v1/alerts`: a rule on one series of a chart. Without labels it watches the chart's
/// series without labels, or its only series; a chart with several must be told which.
pub async fn create(ctx: &mut Ctx) -> Result<Response> {
    auth::caller(ctx).await?.may(Action::ManageAlerts, false)?;
    let body = ctx.body().await?;
    let req = AlertRequest::parse(&body)?;
    // The series it watches: the one with those labels, or the chart's unlabelled or only one. A
    // chart not written yet is taken at its word (an absence rule may wait for its first point).
    let series = ctx
        .db
        .series_for(req.chart.as_str(), req.labels.as_ref(), &ctx.cfg)
        .await?;
    let (labels, bucket_seconds) = if series.is_empty() {
        let labels = req
            .labels
            .as_ref()
            .map_or_else(|| Labels::none().canonical(), Labels::canonical);
        let bucket_seconds = ctx
            .db
            .chart_settings(req.chart.as_str())
            .await?
            .and_then(|s| s.bucket_seconds)
            .unwrap_or(ctx.cfg.bucket_seconds);
        (labels, bucket_seconds)
    } else {
        let s = pick_series(&req.chart, &series, |s| &s.labels, req.labels.as_ref())?;
        (s.labels.clone(), s.bucket_seconds)
    };
    check_fits(
        &req.condition,
        i64::from(ctx.cfg.max_points) * i64::from(bucket_seconds),
        ctx.cfg.retention_seconds(),
    )?;
    let channels = channels::named(ctx, req.channels.as_deref()).await?;
    let id = format!(
        "a_{}",
        short_id(&random_bytes::<SHORT_ID_BYTES>("an alert id")?)
    );
    let (agg, window, op, threshold, absent) = match req.condition {
        Condition::Threshold {
            agg,
            window,
            op,
            value,
        } => (
            Some(agg.as_str()),
            Some(window),
            Some(op.as_str()),
            Some(value),
            None,
        ),
        Condition::Absent { after } => (None, None, None, None, Some(after)),
    };
    ctx.db
        .create_alert(&AlertInsert {
            id: &id,
            name: &req.name,
            chart: req.chart.as_str(),
            labels: &labels,
            agg,
            window_secs: window,
            op,
            threshold,
            absent_secs: absent,
            channels: channels.as_deref(),
            now: ctx.now,
            writer: &writer_id()?,
        })
        .await?;
    alerts::forget_watched();
    let row = ctx.db.alert(&id).await?.ok_or_else(ApiError::internal)?;
    Ok(http::json(201, &alert_out(&row)?))
}

/// `GET /api/v1/alerts[?chart=NAME]`: the rules on the charts the caller may read.
pub async fn list(ctx: &Ctx) -> Result<Response> {
    let caller = auth::reader(ctx).await?;
    caller.may(Action::ListAlerts, false)?;
    let chart = ctx.param("chart").map(ChartName::parse).transpose()?;
    if let Some(c) = &chart {
        caller.may(Action::Read(c), false)?;
    }
    let names = caller.limit().map_or(
        Names::Range {
            from: String::new(),
            until: None,
        },
        |l| l.names(),
    );
    let rows = ctx
        .db
        .alerts(&names, chart.as_ref().map(ChartName::as_str))
        .await?;
    #[derive(Serialize)]
    struct Answer<'a> {
        alerts: Vec<AlertOut<'a>>,
    }
    let alerts = rows
        .iter()
        .filter(|r| caller.limit().is_none_or(|l| l.allows(&r.chart)))
        .map(alert_out)
        .collect::<Result<_>>()?;
    Ok(http::json(200, &Answer { alerts }))
}

/// `DELETE /api/v1/alerts/{id}`.
pub async fn delete(ctx: &Ctx, id: &str) -> Result<Response> {
    auth::caller(ctx).await?.may(Action::ManageAlerts, false)?;
    let deleted = ctx.db.delete_alert(id).await?;
    alerts::forget_watched();
    if !deleted {
        return Err(ApiError::new(
            Code::NotFound,
            format!("no alert rule {id:?}"),
        ));
    }
    Ok(http::ok())
}
