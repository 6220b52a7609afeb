//! Test harness: the classifier and the registry served in-process on `127.0.0.1` ports, each with its own
//! real socket and (for the registry) its own SQLite file, so that tests can stop, crash and restart either.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use township_classifier::{ClassifierApi, domain::Policy};
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;
use township_proto::registry::v1::registry_service_client::RegistryServiceClient;
use township_registry::{app::RegistryConfig, outbox::WorkerConfig};
use township_runtime::GrpcServer;

pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;
/// Liveness bound for waits; tests never assert on timings.
pub const PATIENCE: Duration = Duration::from_secs(60);

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        township_runtime::init_tracing(township_runtime::LogFormat::Text, "info,township_registry=debug");
    }
}

/// Hunan's division files, shipped in `fixtures/divisions/hunan/`.
pub fn hunan_divisions() -> (String, String, String) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/divisions/hunan");
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).expect("fixture present");
    (read("cities.csv"), read("areas.csv"), read("streets.csv"))
}

/// A classifier serving on a loopback port.
pub struct TestClassifier {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestClassifier {
    pub async fn spawn() -> Self {
        Self::spawn_on("127.0.0.1:0".parse().unwrap()).await
    }

    /// Serves on `addr`, e.g. the address of a classifier stopped earlier.
    pub async fn spawn_on(addr: SocketAddr) -> Self {
        init_logs();
        let server = GrpcServer::bind(addr, township_classifier::SERVICE_NAME).await.expect("bind the classifier");
        let addr = server.local_addr();
        let routes = tonic::service::Routes::new(
            ClassifierApi::new(Policy::builtin_default(), 100_000).into_server(MAX_MESSAGE_BYTES),
        );
        let shutdown = CancellationToken::new();
        let signal = shutdown.clone();
        let task = tokio::spawn(server.serve(routes, async move { signal.cancelled().await }, Duration::from_secs(5)));
        Self { addr, shutdown, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("classifier task").expect("classifier served");
    }
}

/// A registry serving on a loopback port with its own SQLite file.
pub struct TestRegistry {
    pub addr: SocketAddr,
    pub database_url: String,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
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

impl TestRegistry {
    pub async fn spawn(database_url: &str, classifier_url: &str) -> Self {
        Self::spawn_with(database_url, classifier_url, fast_worker(), "127.0.0.1:0".parse().unwrap()).await
    }

    pub async fn spawn_with(database_url: &str, classifier_url: &str, worker: WorkerConfig, addr: SocketAddr) -> Self {
        init_logs();
        let server = GrpcServer::bind(addr, township_registry::service::SERVICE_NAME).await.expect("bind the registry");
        let addr = server.local_addr();
        let config = RegistryConfig {
            database_url: database_url.to_owned(),
            classifier_url: classifier_url.to_owned(),
            worker,
            max_message_bytes: MAX_MESSAGE_BYTES,
            shutdown_grace: Duration::from_secs(5),
            worker_id: format!("test-{}", addr.port()),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(township_registry::app::run(config, server, shutdown.clone()));
        let registry = Self { addr, database_url: database_url.to_owned(), shutdown, task };
        registry.wait_until_serving().await;
        registry
    }

    async fn wait_until_serving(&self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while township_runtime::check_health(
            &self.url(),
            township_registry::service::SERVICE_NAME,
            Duration::from_secs(2),
        )
        .await
        .is_err()
        {
            assert!(!self.task.is_finished(), "the registry stopped during start-up");
            assert!(tokio::time::Instant::now() < deadline, "the registry did not become SERVING");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn client(&self) -> RegistryServiceClient<Channel> {
        let channel = Channel::from_shared(self.url()).unwrap().connect().await.expect("connect to the registry");
        RegistryServiceClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Graceful stop: health NOT_SERVING, drain, worker stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("registry task").expect("registry served");
    }

    /// Abrupt stop: the server, the worker and their connections are dropped mid-flight, as in a crash.
    pub async fn crash(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// A request carrying the `x-actor` header.
pub fn as_actor<T>(actor: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("x-actor", actor.parse().expect("ASCII actor"));
    request
}

/// Imports Hunan's cities, counties and townships, restricted to `code_prefix` (e.g. "4301" for 长沙市).
pub async fn import(client: &mut RegistryServiceClient<Channel>, code_prefix: &str) -> pb::ImportDivisionsResponse {
    let (cities_csv, counties_csv, townships_csv) = hunan_divisions();
    client
        .import_divisions(as_actor(
            "importer",
            pb::ImportDivisionsRequest {
                cities_csv,
                counties_csv,
                townships_csv,
                code_prefix: code_prefix.to_owned(),
                validate_only: false,
            },
        ))
        .await
        .expect("import divisions")
        .into_inner()
}

/// Every township of a scope, across pages.
pub async fn all_townships(client: &mut RegistryServiceClient<Channel>, parent: &str) -> Vec<pb::Township> {
    let mut townships = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_townships(pb::ListTownshipsRequest { parent: parent.to_owned(), page_size: 100, page_token })
            .await
            .expect("list townships")
            .into_inner();
        townships.extend(page.townships);
        if page.next_page_token.is_empty() {
            return townships;
        }
        page_token = page.next_page_token;
    }
}

/// Seeded, realistic indicators for a township (ranges of `shared/data/divisions/SOURCE.md`): population
/// 0.5–15 万人 (typical 1.5–5), land area 5–600 km² (街道 5–50), fiscal revenue 200–50,000 万元, right-skewed.
pub fn generated_indicators(code: &str, kind: i32, seed: u64) -> cpb::IndicatorValues {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ code.parse::<u64>().unwrap_or(0));
    let subdistrict = kind == cpb::TownshipKind::Subdistrict as i32;
    let log_normal = |rng: &mut ChaCha8Rng, median: f64, sigma: f64| {
        let normal: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
        median * (sigma * normal).exp()
    };
    let population = log_normal(&mut rng, 2.8, 0.5).clamp(0.5, 15.0);
    let land_area =
        if subdistrict { rng.random_range(5.0..50.0) } else { log_normal(&mut rng, 110.0, 0.6).clamp(5.0, 600.0) };
    let fiscal_revenue = log_normal(&mut rng, 1800.0, 0.9).clamp(200.0, 50_000.0);
    let round = |x: f64| (x * 100.0).round() / 100.0;
    cpb::IndicatorValues {
        population: round(population),
        fiscal_revenue: round(fiscal_revenue),
        land_area: round(land_area),
    }
}

/// Records generated indicators for every township given, in one batch.
pub async fn record_generated(
    client: &mut RegistryServiceClient<Channel>,
    townships: &[pb::Township],
    data_year: i32,
    seed: u64,
) {
    let observations = townships
        .iter()
        .map(|t| pb::IndicatorObservation {
            township: t.name.clone(),
            data_year,
            values: Some(generated_indicators(&t.code, t.kind, seed)),
            source: "generated (seeded) for tests".to_owned(),
            ..Default::default()
        })
        .collect();
    client
        .batch_record_indicators(as_actor(
            "statistician",
            pb::BatchRecordIndicatorsRequest { observations, validate_only: false },
        ))
        .await
        .expect("record indicators");
}

/// Waits until the cohort's state is CURRENT and returns its status.
pub async fn wait_until_current(
    client: &mut RegistryServiceClient<Channel>,
    city: &str,
    data_year: i32,
) -> pb::CohortStatus {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = client
            .get_cohort_status(pb::GetCohortStatusRequest { city: city.to_owned(), data_year })
            .await
            .expect("cohort status")
            .into_inner();
        if status.state() == pb::CohortState::Current {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "cohort {city}/{data_year} did not become CURRENT: {status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every township class of a scope, across pages.
pub async fn all_classes(
    client: &mut RegistryServiceClient<Channel>,
    parent: &str,
    data_year: i32,
) -> Vec<pb::TownshipClass> {
    let mut classes = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_township_classes(pb::ListTownshipClassesRequest {
                parent: parent.to_owned(),
                data_year,
                page_size: 100,
                page_token,
            })
            .await
            .expect("list classes")
            .into_inner();
        classes.extend(page.classes);
        if page.next_page_token.is_empty() {
            return classes;
        }
        page_token = page.next_page_token;
    }
}

/// A fresh SQLite database URL in a temporary directory that lives as long as the returned guard.
pub fn temp_sqlite() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("registry.db").display());
    (dir, url)
}
