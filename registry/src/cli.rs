//! The command line of the `registry` binary: serves `township.registry.v1.RegistryService` and runs the reclassification worker,
//! or checks a running registry's health.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use crate::{app::RegistryConfig, outbox::WorkerConfig, service::SERVICE_NAME};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use township_runtime::{CommonArgs, GrpcServer};

#[derive(Debug, Parser)]
#[command(name = "registry", version, about = "The township registry: system of record, reclassifying over gRPC")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 only if the registry at --url answers SERVING (for container health checks).
    Healthcheck {
        #[arg(long, env = "REGISTRY_HEALTHCHECK_URL", default_value = "http://127.0.0.1:50052")]
        url: String,
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u64,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    /// `sqlite://FILE` (created if missing) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, env = "REGISTRY_DATABASE_URL", default_value = "sqlite://data/registry.db")]
    database_url: String,
    /// The classifier's gRPC endpoint.
    #[arg(long, env = "REGISTRY_CLASSIFIER_URL", default_value = "http://127.0.0.1:50051")]
    classifier_url: String,
    /// Deadline of one Classify call, in seconds. A cohort claimed by a replica that died is retried by
    /// another after twice this time.
    #[arg(long, env = "REGISTRY_CLASSIFY_TIMEOUT_SECONDS", default_value_t = 30)]
    classify_timeout_seconds: u64,
    /// Failed attempts after which a cohort goes to the dead letter state.
    #[arg(long, env = "REGISTRY_MAX_ATTEMPTS", default_value_t = 12)]
    max_attempts: u32,
    /// Longest back-off between two attempts, in seconds.
    #[arg(long, env = "REGISTRY_MAX_BACKOFF_SECONDS", default_value_t = 30)]
    max_backoff_seconds: u64,
    #[command(flatten)]
    common: CommonArgs,
}

/// Parses `args` (the program name first) and runs the command: the `registry` binary's `main`, also used by
/// `townctl up` to run the service as a child process of its own executable.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Some(Command::Healthcheck { url, timeout_seconds }) => township_runtime::run_main("registry", async move {
            township_runtime::check_health(&url, SERVICE_NAME, Duration::from_secs(timeout_seconds)).await
        }),
        None => township_runtime::run_main("registry", serve(cli.serve)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    township_runtime::init_tracing(args.common.log_format, &args.common.log_filter);
    // Health answers NOT_SERVING from here until the database is open and migrated.
    let server = GrpcServer::bind(args.listen, SERVICE_NAME).await?;
    let config = RegistryConfig {
        database_url: args.database_url,
        classifier_url: args.classifier_url,
        worker: WorkerConfig {
            call_timeout: Duration::from_secs(args.classify_timeout_seconds),
            // A crashed replica's cohort is taken over once its lease expires; twice the call deadline keeps a
            // live worker's lease safe.
            lease: Duration::from_secs(2 * args.classify_timeout_seconds.max(1)),
            max_attempts: args.max_attempts,
            backoff_cap: Duration::from_secs(args.max_backoff_seconds),
            ..WorkerConfig::default()
        },
        max_message_bytes: args.common.max_message_bytes,
        shutdown_grace: Duration::from_secs(args.common.shutdown_grace_seconds),
        // Stable across restarts and unique per replica: two replicas on one host listen on different ports.
        worker_id: format!("{}:{}", hostname(), server.local_addr().port()),
    };
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        township_runtime::shutdown_signal().await;
        signal.cancel();
    });
    crate::app::run(config, server, shutdown).await
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "registry".to_owned())
}
