//! [`AuditRepo`]: the audit log's listing (each write records its own events, see `support::audit`).

use async_trait::async_trait;

use super::ThisStore;
use super::rows::{AUDIT_COLUMNS, audit_from_row};
use crate::domain::model::AuditEvent;
use crate::store::sql::{after_id_descending, like_prefix, page_by, page_limit};
use crate::store::{AuditRepo, Page, PageRequest, StoreResult};

#[async_trait]
impl AuditRepo for ThisStore {
    async fn list_audit_events(&self, resource_prefix: &str, page: &PageRequest) -> StoreResult<Page<AuditEvent>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let rows = if resource_prefix.is_empty() {
            let sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.id < $1 ORDER BY a.id DESC LIMIT $2");
            sqlx::query(&sql).bind(after).bind(limit + 1).fetch_all(&self.read).await?
        } else {
            // LIKE can use the resource index; substr makes the match exact (SQLite's LIKE ignores ASCII case).
            let sql = format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_events a WHERE a.id < $1 AND a.resource LIKE $2 ESCAPE '\\' \
                 AND substr(a.resource, 1, $3) = $4 ORDER BY a.id DESC LIMIT $5"
            );
            let length = i32::try_from(resource_prefix.chars().count()).unwrap_or(i32::MAX);
            sqlx::query(&sql)
                .bind(after)
                .bind(like_prefix(resource_prefix))
                .bind(length)
                .bind(resource_prefix)
                .bind(limit + 1)
                .fetch_all(&self.read)
                .await?
        };
        let events = rows.iter().map(audit_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(events, limit, |event| event.id.to_string()))
    }
}
