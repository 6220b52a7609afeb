//! [`GaugeRepo`]: the aggregates the metrics read, from the read pool.

use async_trait::async_trait;
use sqlx::Row;

use super::ThisStore;
use crate::store::{GaugeRepo, StoreError, StoreGauges, StoreResult};

#[async_trait]
impl GaugeRepo for ThisStore {
    async fn gauges(&self) -> StoreResult<StoreGauges> {
        let mut cohorts_by_state = Vec::new();
        for row in sqlx::query("SELECT state, COUNT(*) AS cohorts FROM cohort_jobs GROUP BY state ORDER BY state")
            .fetch_all(&self.read)
            .await?
        {
            let cohorts: i64 = row.try_get("cohorts")?;
            let cohorts = u64::try_from(cohorts).map_err(|_| StoreError::Internal(format!("{cohorts} cohorts")))?;
            cohorts_by_state.push((row.try_get("state")?, cohorts));
        }
        let oldest_pending_updated_at =
            sqlx::query("SELECT MIN(updated_at) AS oldest FROM cohort_jobs WHERE state = 'pending'")
                .fetch_one(&self.read)
                .await?
                .try_get("oldest")?;
        let last_checkpoint_at = sqlx::query("SELECT MAX(signed_at) AS newest FROM audit_checkpoints")
            .fetch_one(&self.read)
            .await?
            .try_get("newest")?;
        Ok(StoreGauges { cohorts_by_state, oldest_pending_updated_at, last_checkpoint_at })
    }
}
