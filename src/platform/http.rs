//! Where results become HTTP responses: JSON bodies, the one error shape, security headers and the
//! Server-Timing header that reports what D1 cost.

use crate::domain::error::ApiError;
use crate::platform::db::Cost;
use serde::Serialize;
use worker::{Headers, Response};

/// Only embeds and images may be framed by other sites; everything else refuses.
pub const NO_FRAMING: &str = "frame-ancestors 'none'";
pub const ANY_FRAMING: &str = "frame-ancestors *";

fn headers(content_type: &str) -> Headers {
    let h = Headers::new();
    // Setting fixed, valid header names and values cannot fail; nothing to handle.
    let _ = h.set("Content-Type", content_type);
    let _ = h.set("X-Content-Type-Options", "nosniff");
    let _ = h.set("Content-Security-Policy", NO_FRAMING);
    let _ = h.set("Cache-Control", "no-store");
    h
}

/// A page or image that other sites may frame.
pub fn frameable(status: u16, content_type: &str, body: String, cache: &str) -> Response {
    let h = headers(content_type);
    let _ = h.set("Content-Security-Policy", ANY_FRAMING);
    let _ = h.set("Cache-Control", cache);
    Response::builder()
        .with_status(status)
        .with_headers(h)
        .fixed(body.into_bytes())
}

/// An SVG image, cacheable for a minute with an ETag; `if_none_match` answers 304 when unchanged.
pub fn svg(body: String, if_none_match: Option<&str>) -> Response {
    let etag = format!("\"{}\"", &crate::domain::keys::hash_secret(&body)[..16]);
    let resp = if if_none_match.is_some_and(|m| m.split(',').any(|t| t.trim() == etag)) {
        frameable(304, "image/svg+xml", String::new(), "public, max-age=60")
    } else {
        frameable(
            200,
            "image/svg+xml; charset=utf-8",
            body,
            "public, max-age=60",
        )
    };
    let _ = resp.headers().set("ETag", &etag);
    resp
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    match serde_json::to_string(body) {
        Ok(s) => text(status, "application/json; charset=utf-8", s),
        Err(_) => error(&ApiError::internal()),
    }
}

pub fn text(status: u16, content_type: &str, body: String) -> Response {
    Response::builder()
        .with_status(status)
        .with_headers(headers(content_type))
        .fixed(body.into_bytes())
}

pub fn error(e: &ApiError) -> Response {
    text(e.status, "application/json; charset=utf-8", e.to_json())
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
            "d1;dur={:.1};desc=\"read={} written={} calls={}{shared}\"",
            cost.ms, cost.rows_read, cost.rows_written, cost.calls
        );
        let _ = resp.headers().set("Server-Timing", &value);
    }
    resp
}
