//! API keys as stored: only the hash of a secret, its scope and chart limit.

use super::{num, text, Db, Result};
use crate::domain::keys::{ChartLimit, Scope};
use serde::Deserialize;
use wasm_bindgen::JsValue;

#[derive(Deserialize)]
pub struct KeyRow {
    pub id: String,
    pub hash: String,
    pub scope: String,
    pub prefix: Option<String>,
    pub exact: i64,
    pub name: String,
    pub created_at: f64,
}

impl Db {
    pub async fn key(&self, id: &str) -> Result<Option<KeyRow>> {
        let mut rows = self
            .all(
                "SELECT id, hash, scope, prefix, exact, name, created_at FROM api_keys WHERE id = ?1",
                &[text(id)],
            )
            .await?;
        Ok(rows.pop())
    }

    pub async fn keys(&self) -> Result<Vec<KeyRow>> {
        self.all(
            "SELECT id, hash, scope, prefix, exact, name, created_at FROM api_keys ORDER BY created_at, id",
            &[],
        )
        .await
    }

    pub async fn create_key(
        &self,
        id: &str,
        hash: &str,
        scope: Scope,
        limit: Option<&ChartLimit>,
        name: &str,
        now: f64,
    ) -> Result<()> {
        let exact = matches!(limit, Some(ChartLimit::Exact(_)));
        self.batch(vec![self.stmt(
            "INSERT INTO api_keys (id, hash, scope, prefix, exact, name, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            &[
                text(id),
                text(hash),
                text(scope.as_str()),
                limit.map(|l| text(l.prefix())).unwrap_or(JsValue::NULL),
                num(u8::from(exact)),
                text(name),
                num(now.floor()),
            ],
        )?])
        .await?;
        Ok(())
    }

    /// Returns whether a key was there to delete.
    pub async fn delete_key(&self, id: &str) -> Result<bool> {
        let r = self
            .batch(vec![
                self.stmt("DELETE FROM api_keys WHERE id = ?1", &[text(id)])?
            ])
            .await?;
        Ok(Self::changes(r.first()) > 0)
    }
}
