//! The registry's own metrics beside the per-RPC ones of `township_runtime::metrics`: the outbox and the audit
//! log as the store holds them, read at each scrape (so every replica reports the shared truth), and the calls
//! authorization refused, counted where they are refused.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::{counter::Counter, family::Family, gauge::Gauge};

use crate::store::Store;

/// Every outbox state, so that a state no cohort is in reads 0 rather than vanishing.
const COHORT_STATES: [&str; 3] = ["pending", "current", "dead_letter"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// A gauge that is absent while there is nothing to measure (no checkpoint yet): one series without labels.
type Optional = Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>;

struct RegistryMetrics {
    cohorts: Family<StateLabels, Gauge>,
    oldest_pending_age: Gauge<f64, AtomicU64>,
    audit_head_seq: Gauge,
    last_checkpoint_age: Optional,
    authorization_refusals: Counter,
}

static METRICS: LazyLock<RegistryMetrics> = LazyLock::new(|| {
    let metrics = RegistryMetrics {
        cohorts: Family::default(),
        oldest_pending_age: Gauge::default(),
        audit_head_seq: Gauge::default(),
        last_checkpoint_age: Family::default(),
        authorization_refusals: Counter::default(),
    };
    use township_runtime::metrics::register;
    register("registry_cohorts", "Cohorts by outbox state.", metrics.cohorts.clone());
    register(
        "registry_oldest_pending_change_age_seconds",
        "Seconds since the longest-waiting PENDING cohort last changed or was last attempted; 0 when none is pending.",
        metrics.oldest_pending_age.clone(),
    );
    register("registry_audit_head_seq", "Sequence number of the audit chain's head.", metrics.audit_head_seq.clone());
    register(
        "registry_audit_last_checkpoint_age_seconds",
        "Seconds since the newest audit checkpoint was signed; absent before the first.",
        metrics.last_checkpoint_age.clone(),
    );
    register(
        "registry_authorization_refusals",
        "Calls refused PERMISSION_DENIED by authorization.",
        metrics.authorization_refusals.clone(),
    );
    metrics
});

/// Counts one call authorization refused.
pub fn authorization_refused() {
    METRICS.authorization_refusals.inc();
}

/// The refresh `GrpcServer` runs before each scrape: reads the gauges from `store`.
pub fn refresh_from(store: Arc<dyn Store>) -> township_runtime::metrics::Refresh {
    LazyLock::force(&METRICS);
    Arc::new(move || {
        let store = store.clone();
        Box::pin(async move { refresh(store.as_ref()).await })
    })
}

/// A store that cannot be read leaves the last values in place and says so in the log.
async fn refresh(store: &dyn Store) {
    let (gauges, head) = match (store.gauges().await, store.audit_chain_head().await) {
        (Ok(gauges), Ok((head, _))) => (gauges, head),
        (Err(error), _) | (_, Err(error)) => {
            tracing::warn!(%error, "cannot read the metrics' gauges from the store");
            return;
        }
    };
    let now = township_runtime::now_ms();
    let age_seconds = |at: i64| now.saturating_sub(at).max(0) as f64 / 1000.0;
    for state in COHORT_STATES {
        let stored = gauges.cohorts_by_state.iter().find(|(stored, _)| stored == state).map_or(0, |(_, n)| *n);
        METRICS.cohorts.get_or_create(&StateLabels { state: state.to_owned() }).set(saturating_i64(stored));
    }
    METRICS.oldest_pending_age.set(gauges.oldest_pending_updated_at.map_or(0.0, age_seconds));
    METRICS.audit_head_seq.set(saturating_i64(head));
    match gauges.last_checkpoint_at {
        Some(at) => {
            METRICS.last_checkpoint_age.get_or_create(&Vec::new()).set(age_seconds(at));
        }
        None => METRICS.last_checkpoint_age.clear(),
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
