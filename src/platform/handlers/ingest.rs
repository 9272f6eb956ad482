//! `POST /api/v1/ingest`: access first, then the body (capped as it streams), then the points,
//! written through group commit.

use crate::domain::chart::check_series_per_chart;
use crate::domain::ingest::Batch;
use crate::domain::keys::Action;
use crate::platform::context::{Ctx, Result};
use crate::platform::{alerts, auth, commit, http};
use worker::Response;

pub async fn ingest(ctx: &mut Ctx) -> Result<Response> {
    let caller = auth::caller(ctx).await?;
    // Refused before a byte of the body is read.
    caller.may(Action::IngestAny, false)?;
    // curl -d sends a form content type; the body is read as JSON whatever the header says.
    let body = ctx.body().await?;
    let batch = Batch::parse(&body, &ctx.cfg, ctx.now)?;
    drop(body);
    for s in &batch.series {
        caller.may(Action::Ingest(&s.chart), false)?;
    }
    check_series_per_chart(
        batch.series.iter().map(|s| &s.chart),
        ctx.cfg.max_series_per_chart,
    )?;
    let accepted = batch.len;
    let written = commit::write(&ctx.db, &batch, &ctx.cfg, ctx.now).await?;
    ctx.db.share(written.cost, written.requests, written.led);
    judge_alerts_later(ctx, &batch);
    Ok(http::raw_json(
        200,
        format!(r#"{{"ok":true,"accepted":{accepted}}}"#),
    ))
}

/// A bad value alerts within seconds: the `last` and absence rules on the charts just written are
/// judged after the response, so the answer does not wait for them.
pub fn judge_alerts_later(ctx: &Ctx, batch: &Batch) {
    let charts = batch.chart_names();
    // Most ingests write charts without rules: known from this isolate's list, nothing is set up.
    if alerts::surely_unwatched(&charts, ctx.now) {
        return;
    }
    let base = ctx.base_url();
    crate::platform::after_response(ctx, "alerts after an ingest", move |cfg, db| async move {
        alerts::after_ingest(&db, &charts, cfg.bucket_seconds, base.as_deref()).await
    });
}
