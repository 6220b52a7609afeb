//! The classification outbox: one job row per cohort, which the worker claims, completes or fails.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::model::{ClassChange, CohortJob, CohortKey, NewRun, TimestampMs};

/// The outcome of storing a classification run.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRun {
    pub run_id: i64,
    /// Every township whose computed class moved (first classification included).
    pub changes: Vec<ClassChange>,
    /// False when a newer change to the cohort arrived while classifying: the job stays pending.
    pub job_cleared: bool,
}

/// The classification worker's side of the outbox: claims and leases of due cohorts, the stored runs that
/// complete them, failed attempts, and the state of a cohort's job.
#[async_trait]
pub trait OutboxRepo: Send + Sync {
    /// Claims one PENDING cohort whose next attempt is due and that no live lease holds, leasing it to `worker`
    /// for `lease_ms`. Concurrent callers (other replicas) never get the same cohort while the lease lives.
    async fn claim_due_cohort(&self, worker: &str, lease_ms: i64) -> StoreResult<Option<CohortJob>>;
    /// Releases every lease `worker` holds, so that a replica restarted under the same worker id resumes its
    /// cohorts at once instead of waiting for its dead leases to expire. Returns how many were released.
    async fn release_leases(&self, worker: &str) -> StoreResult<u64>;
    /// Stores the run, every township's class, and the history of classes that moved, in one transaction;
    /// clears the job if its generation is still `run.generation`, otherwise leaves it PENDING for another pass.
    async fn complete_run(&self, run: &NewRun, worker: &str) -> StoreResult<StoredRun>;
    /// Records a failed attempt: back to PENDING with `next_attempt_at`, or DEAD_LETTER; releases the lease.
    async fn fail_attempt(
        &self,
        cohort: &CohortKey,
        worker: &str,
        error: &str,
        next_attempt_at: TimestampMs,
        dead_letter: bool,
    ) -> StoreResult<()>;
    /// The outbox row of a cohort, if it ever had one.
    async fn cohort_job(&self, cohort: &CohortKey) -> StoreResult<Option<CohortJob>>;
    /// The earliest `next_attempt_at` among PENDING cohorts, for the worker to sleep until.
    async fn next_due_at(&self) -> StoreResult<Option<TimestampMs>>;
}
