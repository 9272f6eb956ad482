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
    let origin = ctx
        .origin()
        .unwrap_or_else(|| "http://localhost".to_string());
    let page = format!("{origin}/embed.html");
    let mut resp = assets.fetch(page, None).await.map_err(fail)?;
    if resp.status_code() >= 300 {
        if let Some(location) = resp.headers().get("Location").ok().flatten() {
            // The assets binding redirects within the site: an absolute URL, a path, or a name
            // relative to /embed.html (which sits at the root).
            let target = if location.contains("://") {
                location
            } else {
                format!("{origin}/{}", location.trim_start_matches('/'))
            };
            resp = assets.fetch(target, None).await.map_err(fail)?;
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
