//! The audit log: every write records its events in its own transaction, chained by hash
//! (`domain::audit_chain`); signed checkpoints of the chain's head are kept beside it.

use crate::domain::access::Visible;
use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};
use crate::domain::audit_chain::{ChainHash, ChainedEvent, Checkpoint};
use crate::domain::model::AuditEvent;

/// The audit events the writes recorded.
#[async_trait]
pub trait AuditRepo: Send + Sync {
    /// Newest first; `resource_prefix` filters by resource name prefix.
    async fn list_audit_events(&self, resource_prefix: &str, page: &PageRequest) -> StoreResult<Page<AuditEvent>> {
        self.list_visible_audit_events(resource_prefix, page, &Visible::All).await
    }
    /// The same, of the resources under the divisions `visible` shows.
    async fn list_visible_audit_events(
        &self,
        resource_prefix: &str,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<AuditEvent>>;

    /// Records a refused call (等保 2.0: date and time, user, event type, outcome): `action` is
    /// `Refused <Method>`, `resource` the name asked for, `outcome` the code and message answered.
    async fn record_refusal(&self, actor: &str, action: &str, resource: &str, outcome: &str) -> StoreResult<()>;

    /// Up to `limit` events after `after_seq`, in chain order, as stored (hashes unchecked): what
    /// `registry audit verify` reads.
    async fn chained_audit_events(&self, after_seq: u64, limit: u32) -> StoreResult<Vec<ChainedEvent>>;

    /// The chain's last sequence number and hash (0 and [`ChainHash::GENESIS`] for an empty log).
    async fn audit_chain_head(&self) -> StoreResult<(u64, ChainHash)>;

    /// Stores a signed checkpoint; one per sequence number (a second for the same seq is AlreadyExists).
    async fn record_audit_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<()>;

    /// Every stored checkpoint, by sequence number.
    async fn list_audit_checkpoints(&self) -> StoreResult<Vec<Checkpoint>>;

    /// Chains the events recorded before the chain existed, in id order; returns how many. Run when the
    /// store opens.
    async fn chain_unchained_audit_events(&self) -> StoreResult<u64>;
}
