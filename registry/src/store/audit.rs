//! The audit log: every write records its events in its own transaction.

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::model::AuditEvent;

/// The audit events the writes recorded.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Newest first; `resource_prefix` filters by resource name prefix.
    async fn list_audit_events(&self, resource_prefix: &str, page: &PageRequest) -> StoreResult<Page<AuditEvent>>;
}
