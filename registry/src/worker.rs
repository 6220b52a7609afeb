//! The reclassification worker: drains the outbox of cohorts that need classifying (DESIGN.md §5).
//!
//! Each pass claims one due cohort under a lease (so replicas never process it twice at once), calls the
//! classifier with a deadline, checks the answer, and stores the run. Failures are retried with exponential
//! back-off and full jitter; after `max_attempts` — or at once for an answer no retry can change — the cohort
//! goes to DEAD_LETTER, visible in `GetCohortStatus`, until a new change to it arrives.

use std::{sync::Arc, time::Duration};

use rand::Rng;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};
use township_policy::Policy;
use township_proto::classifier::v1::classifier_service_client::ClassifierServiceClient;
use township_runtime::now_ms;

use crate::classification::{check_answer, classify_request};
use crate::domain::model::{ClassChange, CohortJob, NewRun};
use crate::store::Store;

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
    pub max_message_bytes: usize,
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
            max_message_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Shared by the service (which wakes the worker after a write) and the worker.
#[derive(Debug, Clone)]
pub struct Reclassifier {
    pub store: Arc<dyn Store>,
    pub default_policy: Arc<Policy>,
    pub wake: Arc<Notify>,
    pub changes: broadcast::Sender<ClassChange>,
}

impl Reclassifier {
    pub fn new(store: Arc<dyn Store>, default_policy: Policy) -> Self {
        Self {
            store,
            default_policy: Arc::new(default_policy),
            wake: Arc::new(Notify::new()),
            changes: broadcast::channel(4096).0,
        }
    }

    /// The policy a city's cohorts are classified with, and its stored version (0 = the default).
    pub async fn effective_policy(
        &self,
        city: &crate::domain::names::CityCode,
    ) -> crate::store::StoreResult<(Policy, i64)> {
        Ok(match self.store.latest_city_policy(city).await? {
            Some(stored) => (stored.policy, stored.version),
            None => ((*self.default_policy).clone(), 0),
        })
    }
}

/// Delay before attempt `attempt + 1`: a uniformly random time up to `base × 2^attempt`, capped ("full jitter").
pub fn backoff(config: &WorkerConfig, attempt: u32) -> Duration {
    let ceiling = config.backoff_base.saturating_mul(2u32.saturating_pow(attempt.min(20))).min(config.backoff_cap);
    let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX).max(1);
    Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
}

/// Runs until `shutdown` is cancelled; an in-flight cohort is finished first (its lease covers a crash).
pub async fn run(
    reclassifier: Reclassifier,
    classifier: ClassifierServiceClient<Channel>,
    config: WorkerConfig,
    worker_id: String,
    shutdown: CancellationToken,
) {
    let classifier = classifier
        .max_decoding_message_size(config.max_message_bytes)
        .max_encoding_message_size(config.max_message_bytes);
    // The id is stable across restarts of one replica (host and port), so leases left by a crash are ours.
    match reclassifier.store.release_leases(&worker_id).await {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "released the leases of this replica's previous run"),
        Err(error) => tracing::warn!(%error, "cannot release old leases; they will expire"),
    }
    tracing::info!(worker = %worker_id, "reclassification worker started");
    loop {
        let claimed = reclassifier.store.claim_due_cohort(&worker_id, config.lease.as_millis() as i64).await;
        let idle = match claimed {
            Ok(Some(job)) => {
                process(&reclassifier, classifier.clone(), &config, &worker_id, job).await;
                None
            }
            Ok(None) => {
                let next_due = reclassifier.store.next_due_at().await.ok().flatten();
                let until_due = next_due.map(|at| Duration::from_millis((at - now_ms()).max(0) as u64));
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
                () = reclassifier.wake.notified() => {}
                () = tokio::time::sleep(idle) => {}
            }
        } else if shutdown.is_cancelled() {
            break;
        }
    }
    tracing::info!(worker = %worker_id, "reclassification worker stopped");
}

#[tracing::instrument(skip_all, fields(city = %job.cohort.city, year = job.cohort.data_year, attempt = job.attempts + 1))]
async fn process(
    reclassifier: &Reclassifier,
    mut classifier: ClassifierServiceClient<Channel>,
    config: &WorkerConfig,
    worker_id: &str,
    job: CohortJob,
) {
    let store = &reclassifier.store;
    let outcome: Result<(), (String, bool)> = async {
        let inputs = store.cohort_inputs(&job.cohort).await.map_err(|e| (e.to_string(), false))?;
        let (policy, policy_version) =
            reclassifier.effective_policy(&job.cohort.city).await.map_err(|e| (e.to_string(), false))?;
        let mut request = tonic::Request::new(classify_request(&policy, &inputs));
        request.set_timeout(config.call_timeout);
        let answer = match tokio::time::timeout(config.call_timeout, classifier.classify(request)).await {
            Err(_) => return Err((format!("classifier call timed out after {:?}", config.call_timeout), false)),
            Ok(Err(status)) => {
                // Only an answer about the request itself is permanent: retrying the same cohort cannot help.
                let permanent = status.code() == Code::InvalidArgument;
                return Err((format!("classifier answered {:?}: {}", status.code(), status.message()), permanent));
            }
            Ok(Ok(answer)) => answer.into_inner(),
        };
        let lines = check_answer(&job.cohort, &policy, &inputs, &answer).map_err(|e| (e.to_string(), false))?;
        let run = NewRun {
            cohort: job.cohort.clone(),
            generation: job.generation,
            policy_version,
            policy_fingerprint: answer.policy_fingerprint.clone(),
            lines,
            response: prost::Message::encode_to_vec(&answer),
        };
        let stored = store.complete_run(&run, worker_id).await.map_err(|e| (e.to_string(), false))?;
        tracing::info!(run = stored.run_id, moved = stored.changes.len(), "cohort classified");
        for change in stored.changes {
            // No subscriber is not an error.
            let _ = reclassifier.changes.send(change);
        }
        Ok(())
    }
    .await;

    if let Err((error, permanent)) = outcome {
        let attempts = job.attempts + 1;
        let dead_letter = permanent || attempts >= config.max_attempts;
        let delay = backoff(config, job.attempts);
        if dead_letter {
            tracing::error!(%error, attempts, "cohort moved to the dead letter state");
        } else {
            tracing::warn!(%error, attempts, retry_in_ms = delay.as_millis() as u64, "classification failed; will retry");
        }
        let next_attempt_at = now_ms() + delay.as_millis() as i64;
        if let Err(store_error) = store.fail_attempt(&job.cohort, worker_id, &error, next_attempt_at, dead_letter).await
        {
            // The lease expires on its own, so the cohort is retried even if this write is lost.
            tracing::error!(%store_error, "cannot record the failed attempt");
        }
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
            let delay = backoff(&config, attempt).as_millis() as u64;
            assert!((ceiling / 2..=ceiling).contains(&delay), "attempt {attempt}: {delay} ms not in jitter range");
        }
    }
}
