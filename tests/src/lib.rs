//! The end-to-end harness: [`TestApp`] (the classifier and the registry served in-process on `127.0.0.1` ports
//! with a fresh database, and a connected client), the calls tests make of any registry ([`calls`]), and the
//! service binaries run as child processes ([`process`]). Logs are printed only with TEST_LOG set.

use std::{net::SocketAddr, time::Duration};

use township_proto::registry::v1 as pb;

pub mod calls;
pub mod database;
pub mod pki;
pub mod process;
pub mod scrape;
pub mod services;

pub use calls::{
    Bearer, Client, all_classes, all_townships, as_actor, connect, connect_presenting, connect_with, hunan_divisions,
    import, record_generated, wait_until_current,
};
pub use database::{Backend, TestDatabase, temp_sqlite};
pub use pki::TestPki;
pub use services::{TestClassifier, TestRegistry, fast_worker, loopback};

pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Liveness bound for waits; tests never assert on timings.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Both services on loopback ports with a fresh database (SQLite unless asked), and a client of the registry.
/// Either service can be stopped, crashed and restarted on the same address; the database outlives them.
pub struct TestApp {
    pub client: Client,
    classifier: Option<TestClassifier>,
    classifier_addr: SocketAddr,
    registry: Option<TestRegistry>,
    registry_addr: SocketAddr,
    database: TestDatabase,
    /// Set for [`TestApp::spawn_tls`]: the PKI both services and the client use.
    pki: Option<TestPki>,
}

impl TestApp {
    /// On a temporary SQLite file.
    pub async fn spawn() -> Self {
        Self::spawn_on(Backend::Sqlite).await
    }

    pub async fn spawn_on(backend: Backend) -> Self {
        let database = TestDatabase::new(backend).await;
        let classifier = TestClassifier::spawn().await;
        let registry = TestRegistry::spawn(database.url(), &classifier.url()).await;
        Self {
            client: registry.client().await,
            classifier_addr: classifier.addr,
            classifier: Some(classifier),
            registry_addr: registry.addr,
            registry: Some(registry),
            database,
            pki: None,
        }
    }

    /// Both services over TLS as deployed: the classifier requires the registry's client certificate (mutual
    /// TLS), the registry serves TLS, and `client` trusts the test PKI's CA.
    pub async fn spawn_tls(backend: Backend) -> Self {
        let pki = TestPki::new();
        let database = TestDatabase::new(backend).await;
        let classifier = TestClassifier::spawn_tls(&pki).await;
        let registry = TestRegistry::spawn_tls(database.url(), &classifier.url(), &pki).await;
        Self {
            client: registry.client().await,
            classifier_addr: classifier.addr,
            classifier: Some(classifier),
            registry_addr: registry.addr,
            registry: Some(registry),
            database,
            pki: Some(pki),
        }
    }

    /// The PKI of a [`TestApp::spawn_tls`] app.
    pub fn pki(&self) -> &TestPki {
        self.pki.as_ref().expect("an app spawned with spawn_tls")
    }

    pub fn registry_url(&self) -> String {
        township_runtime::client_url_with(self.registry_addr, self.pki.is_some())
    }

    pub fn classifier_url(&self) -> String {
        township_runtime::client_url_with(self.classifier_addr, self.pki.is_some())
    }

    /// The registry's `/metrics` text, fetched over HTTP.
    pub async fn scrape_registry(&self) -> String {
        scrape::metrics(self.registry.as_ref().expect("the registry is running").metrics_addr).await
    }

    /// The classifier's `/metrics` text, fetched over HTTP.
    pub async fn scrape_classifier(&self) -> String {
        scrape::metrics(self.classifier.as_ref().expect("the classifier is running").metrics_addr).await
    }

    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    /// Another connection to the registry, e.g. for a stream beside `client`.
    pub async fn connect(&self) -> Client {
        let tls = self.pki.as_ref().map(|pki| pki.client(None)).unwrap_or_default();
        connect_with(&self.registry_url(), &tls).await
    }

    /// Imports Hunan's divisions under `code_prefix` (e.g. "4301" for 长沙市).
    pub async fn import(&mut self, code_prefix: &str) -> pb::ImportDivisionsResponse {
        import(&mut self.client, code_prefix).await
    }

    /// Every township under `parent`.
    pub async fn townships(&mut self, parent: &str) -> Vec<pb::Township> {
        all_townships(&mut self.client, parent).await
    }

    /// Records the seeded sample indicators of `townships` for `data_year` in one batch.
    pub async fn record_generated(&mut self, townships: &[pb::Township], data_year: i32, seed: u64) {
        record_generated(&mut self.client, townships, data_year, seed).await;
    }

    pub async fn wait_until_current(&mut self, city: &str, data_year: i32) -> pb::CohortStatus {
        wait_until_current(&mut self.client, city, data_year).await
    }

    /// Every township class under `parent` for `data_year`.
    pub async fn classes(&mut self, parent: &str, data_year: i32) -> Vec<pb::TownshipClass> {
        all_classes(&mut self.client, parent, data_year).await
    }

    pub async fn stop_classifier(&mut self) {
        self.classifier.take().expect("the classifier is running").stop().await;
    }

    pub async fn crash_classifier(&mut self) {
        self.classifier.take().expect("the classifier is running").crash().await;
    }

    /// A new classifier on the stopped one's address; the registry's lazy channel reconnects to it.
    pub async fn restart_classifier(&mut self) {
        assert!(self.classifier.is_none(), "stop or crash the classifier first");
        assert!(self.pki.is_none(), "restarts are for plaintext apps");
        self.classifier = Some(TestClassifier::spawn_on(self.classifier_addr).await);
    }

    pub async fn stop_registry(&mut self) {
        self.registry.take().expect("the registry is running").stop().await;
    }

    pub async fn crash_registry(&mut self) {
        self.registry.take().expect("the registry is running").crash().await;
    }

    /// A new registry on the stopped one's address and database, and `client` connected to it.
    pub async fn restart_registry(&mut self) {
        assert!(self.registry.is_none(), "stop or crash the registry first");
        assert!(self.pki.is_none(), "restarts are for plaintext apps");
        let registry =
            TestRegistry::spawn_with(self.database.url(), &self.classifier_url(), fast_worker(), self.registry_addr)
                .await;
        self.client = registry.client().await;
        self.registry = Some(registry);
    }

    /// Stops whatever still runs, gracefully, checking that each service ends cleanly.
    pub async fn stop(mut self) {
        if let Some(registry) = self.registry.take() {
            registry.stop().await;
        }
        if let Some(classifier) = self.classifier.take() {
            classifier.stop().await;
        }
    }
}
