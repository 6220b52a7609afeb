//! The classifier and the registry served in-process, each on its own `127.0.0.1` socket through
//! `township_runtime::GrpcServer` as the binaries serve them, so that a test can stop, crash and restart either.

use std::{net::SocketAddr, time::Duration};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use township_classifier::{ClassifierApi, domain::Policy};
use township_registry::{app::RegistryConfig, outbox::WorkerConfig};
use township_runtime::GrpcServer;

use crate::{Client, MAX_MESSAGE_BYTES, PATIENCE, TestPki, connect_with};
use township_runtime::tls::ClientTls;

/// `127.0.0.1:0`: an OS-chosen port.
pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("loopback address")
}

async fn metrics_listener() -> township_runtime::metrics::MetricsListener {
    township_runtime::metrics::MetricsListener::bind(loopback()).await.expect("bind a metrics listener")
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        township_runtime::init_tracing(township_runtime::LogFormat::Text, "info,township_registry=debug");
    }
}

/// A server task and the token that stops it.
struct Served {
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Served {
    /// Graceful: health NOT_SERVING, then the bounded drain.
    async fn stop(self, what: &str) {
        self.shutdown.cancel();
        self.task.await.unwrap_or_else(|error| panic!("the {what} task: {error}")).expect(what);
    }

    /// Abrupt: the server (and for the registry its worker) dropped mid-flight, as in a crash; connections already
    /// accepted close once their in-flight calls end.
    async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A classifier serving on a loopback port.
pub struct TestClassifier {
    pub addr: SocketAddr,
    /// Where it serves Prometheus metrics (`http://ADDR/metrics`); every test service serves them.
    pub metrics_addr: SocketAddr,
    /// Whether it serves TLS (its URL is then `https://`).
    tls: bool,
    served: Served,
}

impl TestClassifier {
    pub async fn spawn() -> Self {
        Self::spawn_on(loopback()).await
    }

    /// Serves on `addr`, e.g. the address of a classifier stopped earlier.
    pub async fn spawn_on(addr: SocketAddr) -> Self {
        let classifier = ClassifierApi::new(Policy::builtin_default(), 100_000).into_server(MAX_MESSAGE_BYTES);
        Self::spawn_with(addr, Routes::new(classifier)).await
    }

    /// Serves `routes` (a classifier service of the caller's, e.g. one that times its calls) on `addr`.
    pub async fn spawn_with(addr: SocketAddr, routes: Routes) -> Self {
        Self::spawn_serving(addr, routes, None).await
    }

    /// Serves mutual TLS with `pki`'s `classifier` certificate: only callers presenting a certificate of `pki`
    /// (the registry's `registry-client`) get an answer, each authenticated as the service its certificate names.
    pub async fn spawn_tls(pki: &TestPki) -> Self {
        let classifier = ClassifierApi::new(Policy::builtin_default(), 100_000).into_server(MAX_MESSAGE_BYTES);
        Self::spawn_serving(loopback(), Routes::new(classifier), Some(pki)).await
    }

    async fn spawn_serving(addr: SocketAddr, routes: Routes, pki: Option<&TestPki>) -> Self {
        init_logs();
        let tls =
            pki.map(|pki| pki.server("classifier", true).load().expect("the classifier's TLS files").expect("TLS"));
        let mut server =
            GrpcServer::bind(addr, township_classifier::SERVICE_NAME).await.expect("bind the classifier").with_tls(tls);
        if pki.is_some() {
            // As the binary under mutual TLS: the verified client certificate is the caller, a service.
            let by_certificate = township_runtime::auth::jwt::Authenticator::new(None, true, Duration::from_secs(60))
                .expect("a certificate authenticator");
            server = server.authenticate_with(by_certificate);
        }
        let server = server.with_metrics(Some(metrics_listener().await));
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr().expect("metrics are served");
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        let task = tokio::spawn(server.serve(routes, async move { signal.cancelled().await }, Duration::from_secs(5)));
        Self { addr, metrics_addr, tls: pki.is_some(), served: Served { shutdown, task } }
    }

    pub fn url(&self) -> String {
        township_runtime::client_url_with(self.addr, self.tls)
    }

    pub async fn stop(self) {
        self.served.stop("classifier").await;
    }

    pub async fn crash(self) {
        self.served.crash().await;
    }
}

/// Quick retries so that convergence after an outage takes a second, not minutes.
pub fn fast_worker() -> WorkerConfig {
    WorkerConfig {
        call_timeout: Duration::from_secs(5),
        // Short, so that a crashed registry's claim expires quickly in restart scenarios.
        lease: Duration::from_secs(6),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(400),
        poll_interval: Duration::from_millis(200),
        max_attempts: 1000,
    }
}

/// A registry serving on a loopback port: `township_registry::app::run` (database, worker, gRPC), as the binary
/// runs it.
pub struct TestRegistry {
    pub addr: SocketAddr,
    /// Where it serves Prometheus metrics (`http://ADDR/metrics`).
    pub metrics_addr: SocketAddr,
    pub database_url: String,
    /// How a client reaches it: plaintext, or TLS trusting the test PKI's CA.
    client_tls: Option<ClientTls>,
    served: Served,
}

impl TestRegistry {
    /// On an OS-chosen port, with [`fast_worker`].
    pub async fn spawn(database_url: &str, classifier_url: &str) -> Self {
        Self::spawn_with(database_url, classifier_url, fast_worker(), loopback()).await
    }

    /// Returns once the registry answers SERVING (its database open and migrated).
    pub async fn spawn_with(database_url: &str, classifier_url: &str, worker: WorkerConfig, addr: SocketAddr) -> Self {
        Self::spawn_serving(database_url, classifier_url, worker, addr, None, None).await
    }

    /// Serves TLS with `pki`'s `registry` certificate and calls an `https://` classifier with its
    /// `registry-client` certificate.
    pub async fn spawn_tls(database_url: &str, classifier_url: &str, pki: &TestPki) -> Self {
        Self::spawn_serving(database_url, classifier_url, fast_worker(), loopback(), Some(pki), None).await
    }

    /// [`TestRegistry::spawn_tls`], authenticating every call with `authenticator` (e.g. JWTs).
    pub async fn spawn_tls_authenticated(
        database_url: &str,
        classifier_url: &str,
        pki: &TestPki,
        authenticator: std::sync::Arc<dyn township_runtime::auth::Authenticate>,
    ) -> Self {
        Self::spawn_serving(database_url, classifier_url, fast_worker(), loopback(), Some(pki), Some(authenticator))
            .await
    }

    /// Authenticates every call with `authenticator` (e.g. JWTs), plaintext.
    pub async fn spawn_authenticated(
        database_url: &str,
        classifier_url: &str,
        authenticator: std::sync::Arc<dyn township_runtime::auth::Authenticate>,
    ) -> Self {
        Self::spawn_serving(database_url, classifier_url, fast_worker(), loopback(), None, Some(authenticator)).await
    }

    async fn spawn_serving(
        database_url: &str,
        classifier_url: &str,
        worker: WorkerConfig,
        addr: SocketAddr,
        pki: Option<&TestPki>,
        authenticator: Option<std::sync::Arc<dyn township_runtime::auth::Authenticate>>,
    ) -> Self {
        init_logs();
        let tls = pki.map(|pki| pki.server("registry", false).load().expect("the registry's TLS files").expect("TLS"));
        let mut server = GrpcServer::bind(addr, township_registry::service::SERVICE_NAME)
            .await
            .expect("bind the registry")
            .with_tls(tls);
        if let Some(authenticator) = authenticator {
            server = server.authenticate_with(authenticator);
        }
        let server = server.with_metrics(Some(metrics_listener().await));
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr().expect("metrics are served");
        let config = RegistryConfig {
            database_url: database_url.to_owned(),
            classifier_url: classifier_url.to_owned(),
            classifier_tls: pki.map(|pki| pki.client(Some("registry-client"))).unwrap_or_default(),
            worker,
            max_message_bytes: MAX_MESSAGE_BYTES,
            shutdown_grace: Duration::from_secs(5),
            // Stable per address, as the binary's (host and port): a restart on the same address releases the
            // leases its previous run left.
            worker_id: format!("test-{}", addr.port()),
            audit_checkpoints: None,
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(township_registry::app::run(config, server, shutdown.clone()));
        let registry = Self {
            addr,
            metrics_addr,
            database_url: database_url.to_owned(),
            client_tls: pki.map(|pki| pki.client(None)),
            served: Served { shutdown, task },
        };
        registry.wait_until_serving().await;
        registry
    }

    async fn wait_until_serving(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while township_runtime::check_health_with(
            &self.url(),
            township_registry::service::SERVICE_NAME,
            Duration::from_secs(2),
            &self.client_tls.clone().unwrap_or_default(),
        )
        .await
        .is_err()
        {
            assert!(!self.served.task.is_finished(), "the registry stopped during start-up");
            assert!(tokio::time::Instant::now() < deadline, "the registry did not become SERVING");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self) -> String {
        township_runtime::client_url_with(self.addr, self.client_tls.is_some())
    }

    /// A new connection.
    pub async fn client(&self) -> Client {
        connect_with(&self.url(), &self.client_tls.clone().unwrap_or_default()).await
    }

    /// A new connection presenting `token` on every call.
    pub async fn client_with_token(&self, token: &str) -> Client {
        crate::connect_presenting(&self.url(), &self.client_tls.clone().unwrap_or_default(), crate::Bearer::new(token))
            .await
    }

    /// Graceful stop: health NOT_SERVING, drain, worker stopped.
    pub async fn stop(self) {
        self.served.stop("registry").await;
    }

    /// Abrupt stop: the server, the worker and their connections are dropped mid-flight, as in a crash.
    pub async fn crash(self) {
        self.served.crash().await;
    }
}
