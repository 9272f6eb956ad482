//! The one value every handler gets: the request, its parsed query, configuration, the database and
//! the time the request is judged at, plus reading the body with its size cap.

use crate::domain::config::{Config, MAX_BODY_BYTES};
use crate::domain::error::{ApiError, Code};
use crate::domain::ingest::too_large_body;
use crate::domain::keys::{short_id, SHORT_ID_BYTES};
use crate::domain::url;
use crate::platform::db::Db;
use futures_util::StreamExt;
use worker::{Env, Request};

pub type Result<T> = std::result::Result<T, ApiError>;

/// `N` random bytes from the runtime's CSPRNG, for keys and ids; `what` names them in the log if
/// the runtime has none to give (the client then sees only an internal error).
pub fn random_bytes<const N: usize>(what: &str) -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        worker::console_error!("no randomness for {what}: {e}");
        ApiError::internal()
    })?;
    Ok(bytes)
}

/// A random text that marks one save of a job or alert rule, so that what goes in with it (a run,
/// notifications) goes in only if the row is the one this save wrote (see `Db::save_job`).
pub fn writer_id() -> Result<String> {
    Ok(short_id(&random_bytes::<SHORT_ID_BYTES>("a save")?))
}

/// Reads a `[vars]` entry or secret as text, whether wrangler.toml wrote it as a string or a number.
pub fn env_text(env: &Env, name: &str) -> Option<String> {
    let v = worker::js_sys::Reflect::get(env, &name.into()).ok()?;
    v.as_string().or_else(|| v.as_f64().map(|n| n.to_string()))
}

pub struct Ctx {
    pub req: Request,
    pub env: Env,
    pub db: Db,
    pub cfg: Config,
    /// Unix seconds, read once per request so that every decision in it agrees.
    pub now: f64,
    /// The query string, decoded once.
    query: Vec<(String, String)>,
    /// Work that may finish after the response (delivering notifications).
    pub waiter: Option<worker::Context>,
}

impl Ctx {
    pub fn new(
        req: Request,
        env: Env,
        db: Db,
        cfg: Config,
        now: f64,
        waiter: Option<worker::Context>,
    ) -> Ctx {
        let query = url::query_pairs(url::query(&req.inner().url()));
        Ctx {
            req,
            env,
            db,
            cfg,
            now,
            query,
            waiter,
        }
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.query.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// `scheme://host[:port]` of this request, for links in notifications.
    pub fn origin(&self) -> Option<String> {
        url::origin(&self.req.inner().url()).map(str::to_string)
    }

    /// Where links in notifications point: `PUBLIC_URL`, else this request's origin.
    pub fn base_url(&self) -> Option<String> {
        self.cfg.public_url.clone().or_else(|| self.origin())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.req.headers().get(name).ok().flatten()
    }

    /// The body, up to MAX_BODY_BYTES. Call it only once access is decided.
    pub async fn body(&mut self) -> Result<Vec<u8>> {
        self.body_up_to(MAX_BODY_BYTES).await
    }

    /// Reads the body as it arrives and stops at `max` bytes, so that a chunked upload without a
    /// Content-Length cannot fill memory first.
    pub async fn body_up_to(&mut self, max: usize) -> Result<Vec<u8>> {
        let declared = self
            .header("Content-Length")
            .and_then(|l| l.trim().parse::<usize>().ok());
        if declared.is_some_and(|l| l > max) {
            return Err(too_large_body());
        }
        if self.req.inner().body().is_none() {
            return Ok(Vec::new());
        }
        let unreadable = |_| ApiError::new(Code::InvalidBody, "the body could not be read");
        let mut stream = self.req.stream().map_err(unreadable)?;
        let mut body = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(unreadable)?;
            if body.len() + chunk.len() > max {
                return Err(too_large_body());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
