//! Where results become HTTP responses: JSON bodies, the one error shape, security headers
//! (Content-Security-Policy per kind of answer, Referrer-Policy) and the Server-Timing header that
//! reports what D1 cost.

use crate::domain::error::ApiError;
use crate::platform::db::Cost;
use serde::Serialize;
use worker::{Headers, Response};

/// API answers load nothing and are framed by nobody.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// The embed page: its own scripts, styles and data only, framed by any site.
const EMBED_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors *";
/// An SVG opened on its own runs nothing and loads nothing; READMEs and embeds may show it.
const SVG_CSP: &str = "default-src 'none'; frame-ancestors *";

fn headers(content_type: &str, csp: &str, cache: &str) -> Headers {
    let h = Headers::new();
    // Setting fixed, valid header names and values cannot fail; nothing to handle.
    let _ = h.set("Content-Type", content_type);
    let _ = h.set("X-Content-Type-Options", "nosniff");
    let _ = h.set("Content-Security-Policy", csp);
    let _ = h.set("Referrer-Policy", "no-referrer");
    let _ = h.set("Cache-Control", cache);
    h
}

fn respond(status: u16, h: Headers, body: String) -> Response {
    Response::builder()
        .with_status(status)
        .with_headers(h)
        .fixed(body.into_bytes())
}

/// The embed page, which other sites may frame.
pub fn embed_page(html: String) -> Response {
    respond(
        200,
        headers("text/html; charset=utf-8", EMBED_CSP, "no-cache"),
        html,
    )
}

/// An SVG image with an ETag, cacheable for a minute: by anyone when the chart is public, only by
/// the browser that asked when it took a key to see it. `if_none_match` answers 304 when unchanged.
pub fn svg(body: String, if_none_match: Option<&str>, public: bool) -> Response {
    let etag = format!("\"{}\"", &crate::domain::keys::hash_secret(&body)[..16]);
    let cache = if public {
        "public, max-age=60"
    } else {
        "private, max-age=60"
    };
    let (status, content_type, body) =
        if if_none_match.is_some_and(|m| m.split(',').any(|t| t.trim() == etag)) {
            (304, "image/svg+xml", String::new())
        } else {
            (200, "image/svg+xml; charset=utf-8", body)
        };
    let h = headers(content_type, SVG_CSP, cache);
    let _ = h.set("ETag", &etag);
    respond(status, h, body)
}

/// An error drawn as an SVG, never cached.
pub fn svg_error(status: u16, body: String) -> Response {
    respond(
        status,
        headers("image/svg+xml; charset=utf-8", SVG_CSP, "no-store"),
        body,
    )
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(s) => raw_json(status, s),
        Err(e) => {
            worker::console_error!("an answer did not serialize: {e}");
            error(&ApiError::internal())
        }
    }
}

/// `200 {"ok":true}`: what health and every delete answer.
pub fn ok() -> Response {
    raw_json(200, r#"{"ok":true}"#.to_string())
}

/// A JSON body that is already text.
pub fn raw_json(status: u16, body: String) -> Response {
    respond(
        status,
        headers("application/json; charset=utf-8", API_CSP, "no-store"),
        body,
    )
}

/// A plain-text answer, for curl in a crontab.
pub fn plain(status: u16, body: &str) -> Response {
    respond(
        status,
        headers("text/plain; charset=utf-8", API_CSP, "no-store"),
        body.to_string(),
    )
}

/// A text answer of any content type: the Prometheus exposition, or the Pushgateway's empty
/// answers to a push.
pub fn text(status: u16, content_type: &str, body: String) -> Response {
    respond(status, headers(content_type, API_CSP, "no-store"), body)
}

pub fn error(e: &ApiError) -> Response {
    raw_json(e.status, e.to_json())
}

/// `d1;dur=<ms>;desc="read=<rows> written=<rows>"`, from D1's own result meta.
pub fn with_cost(resp: Response, cost: Cost) -> Response {
    if cost.calls > 0 {
        // A group-committed write names how many requests shared the rows it reports.
        let shared = if cost.shared_by > 1 {
            format!(" shared={}", cost.shared_by)
        } else {
            String::new()
        };
        let value = format!(
            "d1;dur={:.1};desc=\"read={} written={} calls={} queries={}{shared}\"",
            cost.ms, cost.rows_read, cost.rows_written, cost.calls, cost.queries
        );
        let _ = resp.headers().set("Server-Timing", &value);
    }
    resp
}
