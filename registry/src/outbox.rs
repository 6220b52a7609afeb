//! The transactional outbox of reclassification (DESIGN.md §5): a write that changes a cohort's inputs marks
//! the cohort (city, data year) PENDING in the same transaction; the outbox worker drains those entries.
//!
//! Each pass claims one due cohort under a lease (so replicas never process it twice at once), calls the
//! classifier with a deadline, checks the answer, and stores the run. Failures are retried with exponential
//! back-off and equal jitter (half the delay fixed, half random); after `max_attempts` — or at once for an
//! answer no retry can change — the cohort goes to DEAD_LETTER, visible in `GetCohortStatus`, until a new change
//! to it arrives.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use township_policy::Policy;
use township_runtime::now_ms;

use crate::classification::{Classifier, check_answer, classify_request};
use crate::domain::model::{ClassChange, CohortJob, NewRun};
use crate::domain::names::CityCode;
use crate::store::{Store, StoreResult};

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Deadline of one Classify call.
    pub call_timeout: Duration,
    /// How long a claimed cohort stays leased; longer than a call, so a live worker never loses it.
    pub lease: Duration,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How often to look for due work when nothing wakes the worker.
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(30),
            lease: Duration::from_secs(60),
            max_attempts: 12,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// The outbox as the rest of the registry sees it: the store it lives in, a way to wake its worker after a write
/// has queued work, and the class changes its runs publish. Shared by the service and the worker.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub store: Arc<dyn Store>,
    pub default_policy: Arc<Policy>,
    wake: Arc<Notify>,
    pub changes: broadcast::Sender<ClassChange>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>, default_policy: Policy) -> Self {
        Self {
            store,
            default_policy: Arc::new(default_policy),
            wake: Arc::new(Notify::new()),
            changes: broadcast::channel(4096).0,
        }
    }

    /// Wakes the worker after a write that queued work; the outbox entry is already committed.
    pub fn wake_worker(&self) {
        self.wake.notify_one();
    }

    /// Publishes a class change to `WatchClassChanges` subscribers of this replica; none is not an error.
    pub fn publish(&self, change: ClassChange) {
        let _ = self.changes.send(change);
    }

    /// The policy a city's cohorts are classified with, and its stored version (0 = the default).
    pub async fn effective_policy(&self, city: &CityCode) -> StoreResult<(Policy, i64)> {
        crate::limits::effective_policy(self.store.as_ref(), &self.default_policy, city).await
    }
}

/// How one attempt at a cohort ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Attempt {
    /// The run is stored; `moved` classes changed.
    Classified { run_id: i64, moved: usize },
    /// Nothing was stored; the cohort is tried again later, unless no retry can change the answer.
    Failed { error: String, retry: Retry },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// A transient failure: classifier down or slow, database busy.
    Later,
    /// The classifier refused the request itself: the same cohort would be refused again.
    Never,
}

impl Attempt {
    fn failed(error: impl std::fmt::Display) -> Self {
        Attempt::Failed { error: error.to_string(), retry: Retry::Later }
    }
}

/// Delay before attempt `attempt + 1`: with `ceiling = min(base × 2^attempt, cap)`, a uniformly random time from
/// `ceiling / 2` to `ceiling` ("equal jitter": retries spread out, yet never come sooner than half the ceiling).
pub fn backoff(config: &WorkerConfig, attempt: u32) -> Duration {
    let ceiling = config.backoff_base.saturating_mul(2u32.saturating_pow(attempt.min(20))).min(config.backoff_cap);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

/// Runs until `shutdown` is cancelled; an in-flight cohort is finished first (its lease covers a crash).
pub async fn run(
    outbox: Outbox,
    classifier: Classifier,
    config: WorkerConfig,
    worker_id: String,
    shutdown: CancellationToken,
) {
    // The id is stable across restarts of one replica (host and port), so leases left by a crash are ours.
    match outbox.store.release_leases(&worker_id).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "released the leases of this replica's previous run"),
        Err(error) => tracing::warn!(%error, "cannot release old leases; they will expire"),
    }
    tracing::info!(worker = %worker_id, "reclassification worker started");
    loop {
        let claimed = outbox
            .store
            .claim_due_cohort(&worker_id, i64::try_from(config.lease.as_millis()).unwrap_or(i64::MAX))
            .await;
        let idle = match claimed {
            Ok(Some(job)) => {
                process(&outbox, &classifier, &config, &worker_id, job).await;
                None
            }
            Ok(None) => {
                let next_due = outbox.store.next_due_at().await.ok().flatten();
                let until_due = next_due.map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)));
                Some(until_due.map_or(config.poll_interval, |d| d.min(config.poll_interval)))
            }
            Err(error) => {
                tracing::error!(%error, "cannot claim work from the outbox");
                Some(config.poll_interval)
            }
        };
        if let Some(idle) = idle {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = outbox.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
            }
        } else if shutdown.is_cancelled() {
            break;
        }
    }
    tracing::info!(worker = %worker_id, "reclassification worker stopped");
}

#[tracing::instrument(skip_all, fields(city = %job.cohort.city, year = job.cohort.data_year, attempt = job.attempts + 1))]
async fn process(outbox: &Outbox, classifier: &Classifier, config: &WorkerConfig, worker_id: &str, job: CohortJob) {
    match attempt(outbox, classifier, config, worker_id, &job).await {
        Attempt::Classified { run_id, moved } => tracing::info!(run = run_id, moved, "cohort classified"),
        Attempt::Failed { error, retry } => {
            let attempts = job.attempts + 1;
            let dead_letter = retry == Retry::Never || attempts >= config.max_attempts;
            let delay = backoff(config, job.attempts);
            if dead_letter {
                tracing::error!(%error, attempts, "cohort moved to the dead letter state");
            } else {
                tracing::warn!(%error, attempts, retry_in = ?delay, "classification failed; will retry");
            }
            let next_attempt_at = now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
            let store = &outbox.store;
            if let Err(store_error) =
                store.fail_attempt(&job.cohort, worker_id, &error, next_attempt_at, dead_letter).await
            {
                // The lease expires on its own, so the cohort is retried even if this write is lost.
                tracing::error!(%store_error, "cannot record the failed attempt");
            }
        }
    }
}

async fn attempt(
    outbox: &Outbox,
    classifier: &Classifier,
    config: &WorkerConfig,
    worker_id: &str,
    job: &CohortJob,
) -> Attempt {
    let store = &outbox.store;
    let inputs = match store.cohort_inputs(&job.cohort).await {
        Ok(inputs) => inputs,
        Err(error) => return Attempt::failed(error),
    };
    let (policy, policy_version) = match outbox.effective_policy(&job.cohort.city).await {
        Ok(found) => found,
        Err(error) => return Attempt::failed(error),
    };
    let answer = match classifier.classify(classify_request(&policy, &inputs), config.call_timeout).await {
        Ok(answer) => answer,
        Err(error) => {
            let retry = if error.is_permanent() { Retry::Never } else { Retry::Later };
            return Attempt::Failed { error: error.to_string(), retry };
        }
    };
    let lines = match check_answer(&job.cohort, &policy, &inputs, &answer) {
        Ok(lines) => lines,
        Err(error) => return Attempt::failed(error),
    };
    let run = NewRun {
        cohort: job.cohort.clone(),
        generation: job.generation,
        policy_version,
        policy_fingerprint: answer.policy_fingerprint.clone(),
        lines,
        response: prost::Message::encode_to_vec(&answer),
    };
    match store.complete_run(&run, worker_id).await {
        Ok(stored) => {
            let moved = stored.changes.len();
            for change in stored.changes {
                outbox.publish(change);
            }
            Attempt::Classified { run_id: stored.run_id, moved }
        }
        Err(error) => Attempt::failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_jitter_and_stays_under_the_cap() {
        let config = WorkerConfig::default();
        for attempt in 0..30 {
            let ceiling = (250u64 << attempt.min(20)).min(30_000);
            let delay = u64::try_from(backoff(&config, attempt).as_millis()).unwrap();
            assert!((ceiling / 2..=ceiling).contains(&delay), "attempt {attempt}: {delay} ms not in jitter range");
        }
    }
}
