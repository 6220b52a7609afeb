//! [`AuditRepo`]: the audit log's listing, its chain and checkpoints (each write records its own events, see
//! `support::audit`).

use async_trait::async_trait;
use township_runtime::now_ms;

use super::ThisStore;
use super::rows::{AUDIT_COLUMNS, audit_from_row};
use super::support;
use crate::domain::access::Visible;
use crate::domain::audit_chain::{ChainHash, ChainedEvent, Checkpoint};
use crate::domain::model::AuditEvent;
use crate::store::sql::corrupt;
use crate::store::sql::{after_id_descending, like_prefix, page_by, page_limit, visible_resources};
use crate::store::{AuditRepo, Page, PageRequest, StoreError, StoreResult};
use sqlx::Row;

#[async_trait]
impl AuditRepo for ThisStore {
    async fn list_visible_audit_events(
        &self,
        resource_prefix: &str,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<AuditEvent>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let rows = if resource_prefix.is_empty() {
            let (shown, prefixes) = visible_resources("a.resource", visible, 3);
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.id < $1{shown} ORDER BY a.id DESC LIMIT $2"
            );
            let query = sqlx::query(&sql).bind(after).bind(limit + 1);
            prefixes.into_iter().fold(query, |query, prefix| query.bind(prefix)).fetch_all(&self.read).await?
        } else {
            // LIKE can use the resource index; substr makes the match exact (SQLite's LIKE ignores ASCII case).
            let (shown, prefixes) = visible_resources("a.resource", visible, 6);
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.id < $1 AND a.resource LIKE $2 ESCAPE '\\' \
                 AND substr(a.resource, 1, $3) = $4{shown} ORDER BY a.id DESC LIMIT $5"
            );
            let length = i32::try_from(resource_prefix.chars().count()).unwrap_or(i32::MAX);
            let query = sqlx::query(&sql)
                .bind(after)
                .bind(like_prefix(resource_prefix))
                .bind(length)
                .bind(resource_prefix)
                .bind(limit + 1);
            prefixes.into_iter().fold(query, |query, prefix| query.bind(prefix)).fetch_all(&self.read).await?
        };
        let events = rows.iter().map(audit_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(events, limit, |event| event.id.to_string()))
    }

    async fn record_refusal(&self, actor: &str, action: &str, resource: &str, outcome: &str) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        support::audit(&mut tx, actor, now_ms(), action, resource, None, Some(outcome.to_owned())).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn chained_audit_events(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<ChainedEvent>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS}, a.seq, a.prev_hash, a.hash FROM audit_events a \
             WHERE a.seq > $1 ORDER BY a.seq LIMIT $2"
        );
        let after = i64::try_from(after_seq).map_err(|_| corrupt(format!("audit seq {after_seq}")))?;
        let rows = sqlx::query(&sql).bind(after).bind(i64::from(limit)).fetch_all(&self.read).await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                Ok(ChainedEvent {
                    seq: u64::try_from(seq).map_err(|_| corrupt(format!("audit seq {seq}")))?,
                    event: audit_from_row(row)?,
                    prev_hash: stored_hash(row.try_get("prev_hash")?)?,
                    hash: stored_hash(row.try_get("hash")?)?,
                })
            })
            .collect()
    }

    async fn audit_chain_head(&self) -> StoreResult<(u64, ChainHash)> {
        let mut conn = self.read.acquire().await?;
        support::audit_head(&mut conn).await
    }

    async fn record_audit_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<()> {
        let seq = i64::try_from(checkpoint.seq).map_err(|_| corrupt(format!("audit seq {}", checkpoint.seq)))?;
        let mut tx = self.begin_write().await?;
        let exists = sqlx::query("SELECT 1 FROM audit_checkpoints WHERE seq = $1")
            .bind(seq)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        if exists {
            return Err(StoreError::AlreadyExists(format!("audit checkpoint {}", checkpoint.seq)));
        }
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, signed_at, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(seq)
        .bind(checkpoint.hash.to_hex())
        .bind(checkpoint.signed_at)
        .bind(&checkpoint.key_id)
        .bind(hex::encode(checkpoint.signature))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>> {
        let rows = sqlx::query("SELECT seq, hash, signed_at, key_id, signature FROM audit_checkpoints ORDER BY seq")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let signature: String = row.try_get("signature")?;
                Ok(Checkpoint {
                    seq: u64::try_from(seq).map_err(|_| corrupt(format!("checkpoint seq {seq}")))?,
                    hash: stored_hash(row.try_get("hash")?)?,
                    signed_at: row.try_get("signed_at")?,
                    key_id: row.try_get("key_id")?,
                    signature: hex::decode(&signature)
                        .ok()
                        .and_then(|bytes| bytes.try_into().ok())
                        .ok_or_else(|| corrupt(format!("checkpoint {seq} signature {signature:?}")))?,
                })
            })
            .collect()
    }

    async fn chain_unchained_audit_events(&self) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let chained = support::chain_unchained_audit_events(&mut tx).await?;
        tx.commit().await?;
        Ok(chained)
    }
}

/// A stored hash; a row the chain left unset (NULL) reads as the genesis hash, which no real event has, so the
/// verifier reports it.
fn stored_hash(text: Option<String>) -> StoreResult<ChainHash> {
    match text {
        None => Ok(ChainHash::GENESIS),
        Some(text) => ChainHash::from_hex(&text).ok_or_else(|| corrupt(format!("audit hash {text:?}"))),
    }
}
