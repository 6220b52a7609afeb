//! What the registry's metrics read from the store at each scrape: a few aggregates, each one indexed query.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::model::TimestampMs;

/// The store's state as the metrics show it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreGauges {
    /// How many cohorts each outbox state holds (`pending`, `current`, `dead_letter`), as stored; a state no
    /// cohort is in is absent.
    pub cohorts_by_state: Vec<(String, u64)>,
    /// The earliest `updated_at` of a PENDING cohort: when the longest-waiting one last changed or was last
    /// attempted.
    pub oldest_pending_updated_at: Option<TimestampMs>,
    /// When the newest audit checkpoint was signed.
    pub last_checkpoint_at: Option<TimestampMs>,
}

#[async_trait]
pub trait GaugeRepo: Send + Sync {
    async fn gauges(&self) -> StoreResult<StoreGauges>;
}
