//! Assembling the registry: database, classifier client, worker and gRPC server. Used by `main.rs` and by
//! tests that run the registry in-process on a loopback port.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use township_policy::Policy;
use township_runtime::GrpcServer;

use crate::audit::{CheckpointConfig, run_checkpoints};
use crate::classification::Classifier;
use crate::outbox::{self, Outbox, WorkerConfig};
use crate::service::RegistryApi;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    pub database_url: String,
    pub classifier_url: String,
    /// How to reach an `https://` classifier: the CA to trust and the registry's client certificate.
    pub classifier_tls: township_runtime::tls::ClientTls,
    pub worker: WorkerConfig,
    pub max_message_bytes: usize,
    pub shutdown_grace: Duration,
    /// Names this replica's leases in the outbox.
    pub worker_id: String,
    /// Signs the audit log's head; None leaves the log chained but unsigned (warned at start).
    pub audit_checkpoints: Option<CheckpointConfig>,
}

/// Opens (and migrates) the database, then serves on `server` until `shutdown` is cancelled. Health stays
/// NOT_SERVING until the database is ready.
pub async fn run(config: RegistryConfig, server: GrpcServer, shutdown: CancellationToken) -> anyhow::Result<()> {
    if let Some(path) = config.database_url.strip_prefix("sqlite://") {
        let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    let store = crate::store::open(&config.database_url).await?;
    tracing::info!(database = %redact(&config.database_url), "database open and migrated");

    let channel = config
        .classifier_tls
        .endpoint(&config.classifier_url)
        .with_context(|| format!("the classifier URL {}", config.classifier_url))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_keepalive(Some(Duration::from_secs(30)))
        .connect_lazy();
    let classifier = Classifier::new(channel, config.max_message_bytes);
    let checkpoints = match config.audit_checkpoints.clone() {
        Some(checkpoint_config) => {
            tracing::info!(file = %checkpoint_config.file.display(), "audit checkpoints are signed");
            Some(AbortOnDropHandle::new(tokio::spawn(run_checkpoints(
                store.clone(),
                checkpoint_config,
                shutdown.clone(),
            ))))
        }
        None => {
            tracing::warn!(
                "audit checkpoints are NOT signed (no --audit-signing-key): the chain alone cannot show a cut tail"
            );
            None
        }
    };
    let refusal_store = store.clone();
    let metrics_store = store.clone();
    let outbox = Outbox::new(store, Policy::builtin_default());

    let stop_worker = CancellationToken::new();
    // Aborted if this future is dropped (a test's simulated crash), so no worker outlives its registry.
    let worker = AbortOnDropHandle::new(tokio::spawn(outbox::run(
        outbox.clone(),
        classifier.clone(),
        config.worker.clone(),
        config.worker_id.clone(),
        stop_worker.clone(),
    )));
    let routes = tonic::service::Routes::new(
        RegistryApi::new(outbox, classifier, config.worker.call_timeout).into_server(config.max_message_bytes),
    );
    let server = server
        .record_refusals_with(Arc::new(crate::audit::AuditedRefusals::new(refusal_store)))
        .refresh_metrics_with(crate::metrics::refresh_from(metrics_store));
    let served = server.serve(routes, async move { shutdown.cancelled().await }, config.shutdown_grace).await;
    stop_worker.cancel();
    if let Err(error) = worker.await {
        tracing::error!(%error, "the outbox worker panicked");
    }
    // The checkpoint task signs once more on shutdown, after the last write has committed.
    if let Some(checkpoints) = checkpoints
        && let Err(error) = checkpoints.await
    {
        tracing::error!(%error, "the audit checkpoint task panicked");
    }
    served
}

/// The URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_never_reach_the_logs() {
        assert_eq!(super::redact("postgres://u:secret@db:5432/x"), "postgres://u:***@db:5432/x");
        assert_eq!(super::redact("sqlite://data/registry.db"), "sqlite://data/registry.db");
    }
}
