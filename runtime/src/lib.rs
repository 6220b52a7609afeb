//! What every township gRPC service shares: structured logs, the serving loop with health and reflection,
//! graceful shutdown on SIGTERM/SIGINT, and the `healthcheck` client that containers run.

pub mod auth;
pub mod error;
pub mod metrics;
pub mod principal;
pub mod tls;

pub use error::{ERROR_DOMAIN, ErrorKind, ServiceError};
pub use principal::{Credential, Principal, Role};

/// Milliseconds since the Unix epoch: the one clock reading every timestamp of the services is made from.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

use std::{future::Future, net::SocketAddr, process::ExitCode, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{ServingStatus, pb::health_client::HealthClient, server::HealthReporter};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flags every service accepts besides its own.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter in `tracing` syntax, e.g. `info,township_registry=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// Largest gRPC message accepted or sent, in bytes. A whole-China cohort (41,352 townships) is ~6 MiB.
    #[arg(long, env = "GRPC_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_message_bytes: usize,
    /// How long in-flight requests may run after a shutdown signal before the server stops anyway.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// Serve Prometheus metrics on `http://ADDR/metrics` (plain HTTP, a port of its own); off when unset.
    #[arg(long, env = "METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

impl CommonArgs {
    /// The metrics listener `--metrics-listen` asks for, bound.
    pub async fn metrics_listener(&self) -> anyhow::Result<Option<metrics::MetricsListener>> {
        match self.metrics_listen {
            Some(addr) => Ok(Some(metrics::MetricsListener::bind(addr).await?)),
            None => Ok(None),
        }
    }
}

/// Installs the global `tracing` subscriber. Safe to call more than once (later calls do nothing), so tests
/// that start several servers in one process can all call it.
pub fn init_tracing(format: LogFormat, filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal: a log file or a pipe gets plain text (and NO_COLOR is honoured).
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

/// A bound listener and the health reporter of the server that will run on it.
///
/// Binding is separate from serving so that a caller (a test, `townctl up`) can learn the real address of
/// `127.0.0.1:0` before the server runs, and so that the service can finish its start-up work (migrations,
/// loading a policy) while health already answers NOT_SERVING.
pub struct GrpcServer {
    listener: TcpListener,
    health: HealthReporter,
    service_name: &'static str,
    authenticator: Option<std::sync::Arc<dyn auth::Authenticate>>,
    refusals: Option<std::sync::Arc<dyn auth::RefusalLog>>,
    tls: Option<tls::ServerTls>,
    metrics: Option<metrics::MetricsListener>,
    metrics_refresh: Option<metrics::Refresh>,
}

impl GrpcServer {
    /// Binds `addr`. `service_name` is the fully-qualified gRPC service name whose health is reported.
    pub async fn bind(addr: SocketAddr, service_name: &'static str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let health = HealthReporter::new();
        health.set_service_status(service_name, ServingStatus::NotServing).await;
        health.set_service_status("", ServingStatus::NotServing).await;
        Ok(Self {
            listener,
            health,
            service_name,
            authenticator: None,
            refusals: None,
            tls: None,
            metrics: None,
            metrics_refresh: None,
        })
    }

    /// The address actually bound (the real port when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound TCP listener has an address")
    }

    /// Who may call: every route but health and reflection goes through `authenticator` first. Without one the
    /// server runs with authentication disabled and logs an error saying so; the binaries never rely on that
    /// default (their flags demand a choice).
    pub fn authenticate_with(mut self, authenticator: std::sync::Arc<dyn auth::Authenticate>) -> Self {
        self.authenticator = Some(authenticator);
        self
    }

    /// Records every call the authentication refuses in `log` before answering it.
    pub fn record_refusals_with(mut self, log: std::sync::Arc<dyn auth::RefusalLog>) -> Self {
        self.refusals = Some(log);
        self
    }

    /// Serves TLS only (and, with a client CA, requires client certificates). Without it the port speaks
    /// plaintext and the server warns at start.
    pub fn with_tls(mut self, tls: Option<tls::ServerTls>) -> Self {
        self.tls = tls;
        self
    }

    /// Serves metrics on `listener` while the server runs.
    pub fn with_metrics(mut self, listener: Option<metrics::MetricsListener>) -> Self {
        self.metrics = listener;
        self
    }

    /// Runs `refresh` before each scrape, e.g. to read gauges from a store.
    pub fn refresh_metrics_with(mut self, refresh: metrics::Refresh) -> Self {
        self.metrics_refresh = Some(refresh);
        self
    }

    /// The address the metrics listener bound, if metrics are served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(metrics::MetricsListener::local_addr)
    }

    /// A handle to change the reported health, e.g. to NOT_SERVING when a dependency is lost.
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.clone()
    }

    /// Serves `routes` plus health and reflection (v1 and v1alpha, listing the service named at `bind`, health
    /// and reflection) until `shutdown` resolves, then reports NOT_SERVING,
    /// stops accepting connections and lets in-flight requests finish for at most `grace`.
    pub async fn serve(
        self,
        routes: Routes,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(self.health.clone()),
        );
        let served = [self.service_name, name_of(&health_service), REFLECTION_V1, REFLECTION_V1ALPHA];
        let reflection_v1 = reflection(&served).build_v1().context("cannot build the reflection service (v1)")?;
        let reflection_v1alpha =
            reflection(&served).build_v1alpha().context("cannot build the reflection service (v1alpha)")?;
        debug_assert_eq!((name_of(&reflection_v1), name_of(&reflection_v1alpha)), (REFLECTION_V1, REFLECTION_V1ALPHA));
        let routes = routes.add_service(health_service).add_service(reflection_v1).add_service(reflection_v1alpha);

        let local_addr = self.local_addr();
        let health = self.health.clone();
        let service_name = self.service_name;
        health.set_service_status(service_name, ServingStatus::Serving).await;
        health.set_service_status("", ServingStatus::Serving).await;
        let authenticator = self.authenticator.unwrap_or_else(|| std::sync::Arc::new(auth::AuthDisabled));
        let authentication = authenticator.describe();
        if authenticator.is_disabled() {
            tracing::error!(%local_addr, service = service_name, "AUTHENTICATION IS DISABLED: every caller may do anything");
        }
        let tls_mode = match &self.tls {
            None => "off",
            Some(tls) if tls.mutual => "mutual",
            Some(_) => "on",
        };
        if self.tls.is_none() {
            tracing::warn!(%local_addr, service = service_name, "TLS is off: this port speaks plaintext");
        }
        tracing::info!(%local_addr, service = service_name, %authentication, tls = tls_mode, "serving");
        // Aborted when serving ends, however it ends.
        let _metrics_task = self.metrics.map(|listener| {
            let task = tokio::spawn(listener.serve(self.metrics_refresh));
            AbortOnDrop(task)
        });

        let (drain_started_tx, drain_started_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = async move {
            shutdown.await;
            health.set_service_status(service_name, ServingStatus::NotServing).await;
            health.set_service_status("", ServingStatus::NotServing).await;
            let _ = drain_started_tx.send(());
        };
        let mut builder = Server::builder();
        if let Some(tls) = self.tls {
            builder = builder.tls_config(tls.config).context("cannot use the TLS certificate and key")?;
        }
        let server = builder
            .trace_fn(|request| tracing::info_span!("grpc", method = %request.uri().path()))
            // Outermost, so that the calls authentication refuses are counted too.
            .layer(metrics::MetricsLayer)
            .layer(auth::AuthLayer::new(authenticator, self.refusals))
            .add_routes(routes)
            // Nagle's algorithm on accepted sockets stalls every small HTTP/2 write by ~40 ms (BENCHMARKS.md).
            .serve_with_incoming_shutdown(TcpIncoming::from(self.listener).with_nodelay(Some(true)), signal);
        tokio::pin!(server);

        // Serve until the shutdown signal, then give the drain a bounded time.
        tokio::select! {
            result = &mut server => return result.context("gRPC server failed"),
            _ = drain_started_rx => {}
        }
        match tokio::time::timeout(grace, server).await {
            Ok(result) => result.context("gRPC server failed while draining"),
            Err(_) => {
                tracing::warn!(grace_seconds = grace.as_secs_f64(), "drain timed out; dropping in-flight requests");
                Ok(())
            }
        }
    }
}

/// A task aborted when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reflection serves both versions: newer clients (grpcurl, tonic) speak v1, Python's `grpcio-reflection` (and older
/// tools) only v1alpha.
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// A reflection builder listing exactly the `served` services (by default it would list every service of
/// every registered file: both township services on both ports). All descriptors stay registered, so that
/// every type a served service uses can be described.
fn reflection(served: &[&'static str]) -> tonic_reflection::server::Builder<'static> {
    let builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(township_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
        .include_reflection_service(false);
    served.iter().fold(builder, |builder, name| builder.with_service_name(*name))
}

fn name_of<S: tonic::server::NamedService>(_: &S) -> &'static str {
    S::NAME
}

/// Asks the server at `endpoint` (e.g. `http://127.0.0.1:50051`) for the health of `service_name`.
/// Returns `Ok(())` only for SERVING; the error says what was found instead.
pub async fn check_health(endpoint: &str, service_name: &str, timeout: Duration) -> anyhow::Result<()> {
    check_health_with(endpoint, service_name, timeout, &tls::ClientTls::default()).await
}

/// [`check_health`] of an `https://` endpoint, trusting and presenting what `tls` says.
pub async fn check_health_with(
    endpoint: &str,
    service_name: &str,
    timeout: Duration,
    tls: &tls::ClientTls,
) -> anyhow::Result<()> {
    let channel = tls
        .endpoint(endpoint)?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {endpoint}"))?;
    let response = HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest { service: service_name.to_owned() })
        .await
        .with_context(|| format!("health check of {service_name} at {endpoint} failed"))?;
    let status = response.into_inner().status();
    anyhow::ensure!(
        status == tonic_health::pb::health_check_response::ServingStatus::Serving,
        "{service_name} at {endpoint} is {}",
        status.as_str_name()
    );
    Ok(())
}

/// Turns a listen address into the URL a client on this host would use: an unspecified address
/// (`0.0.0.0`, `[::]`) becomes loopback.
pub fn client_url(listen: SocketAddr) -> String {
    client_url_with(listen, false)
}

/// [`client_url`] with `https://` for a TLS listener.
pub fn client_url_with(listen: SocketAddr, tls: bool) -> String {
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        std::net::IpAddr::V4(ip) => ip.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}", listen.port())
}

/// A service binary's `main`: runs `job` on a multi-threaded runtime and turns its outcome into the exit code,
/// printing the error chain prefixed by the program's `name`.
pub fn run_main<F>(name: &str, job: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<()>>,
{
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("{name}: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}
