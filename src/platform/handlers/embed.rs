//! `/embed/{chart}`: the embed page is a static file, served from here so that other sites may
//! frame it (the static pages refuse framing).

use crate::domain::error::ApiError;
use crate::platform::context::{Ctx, Result};
use crate::platform::http;
use worker::Response;

pub async fn page(ctx: &Ctx) -> Result<Response> {
    let fail = |e: worker::Error| {
        worker::console_error!("embed page: {e}");
        ApiError::internal()
    };
    let assets = ctx.env.assets("ASSETS").map_err(fail)?;
    let url = ctx.req.url().map_err(fail)?;
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
    Ok(http::embed_page(html))
}
