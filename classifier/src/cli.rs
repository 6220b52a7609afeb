//! The command line of the `classifier` binary: serves `township.classifier.v1.ClassifierService`, or checks a running one's health.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use crate::{ClassifierApi, SERVICE_NAME, domain::Policy};
use anyhow::Context;
use clap::{Parser, Subcommand};
use township_runtime::{CommonArgs, GrpcServer};

#[derive(Debug, Parser)]
#[command(name = "classifier", version, about = "Classifies townships into classes 1-3 over gRPC")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Exit 0 only if the classifier at --url answers SERVING (for container health checks).
    Healthcheck {
        #[arg(long, env = "CLASSIFIER_HEALTHCHECK_URL", default_value = "http://127.0.0.1:50051")]
        url: String,
        #[arg(long, default_value_t = 3)]
        timeout_seconds: u64,
        #[command(flatten)]
        tls: township_runtime::tls::HealthcheckTlsArgs,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CLASSIFIER_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// A policy TOML file to use as the default policy instead of the built-in `policy/policies/default.toml`.
    #[arg(long, env = "CLASSIFIER_POLICY_FILE")]
    policy_file: Option<PathBuf>,
    /// Largest cohort one Classify call may carry (China has 41,352 township-level units).
    #[arg(long, env = "CLASSIFIER_MAX_COHORT_SIZE", default_value_t = 100_000)]
    max_cohort_size: usize,
    #[command(flatten)]
    tls: township_runtime::tls::ServerTlsArgs,
    #[command(flatten)]
    auth: township_runtime::auth::AuthArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// Parses `args` (the program name first) and runs the command: the `classifier` binary's `main`, also used by
/// `townctl up` to run the service as a child process of its own executable.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::parse_from(args);
    match cli.command {
        Some(Command::Healthcheck { url, timeout_seconds, tls }) => {
            township_runtime::run_main("classifier", async move {
                township_runtime::check_health_with(
                    &url,
                    SERVICE_NAME,
                    Duration::from_secs(timeout_seconds),
                    &tls.client(),
                )
                .await
            })
        }
        None => township_runtime::run_main("classifier", serve(cli.serve)),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    township_runtime::init_tracing(args.common.log_format, &args.common.log_filter);
    let authenticator = args.auth.authenticator("township-classifier", args.tls.requires_client_certificates())?;
    let server = GrpcServer::bind(args.listen, SERVICE_NAME)
        .await?
        .with_tls(args.tls.load()?)
        .authenticate_with(authenticator)
        .with_metrics(args.common.metrics_listener().await?);
    let policy = match &args.policy_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            Policy::from_toml(&text).with_context(|| format!("policy file {}", path.display()))?
        }
        None => Policy::builtin_default(),
    };
    tracing::info!(policy = %policy.name, version = %policy.version, fingerprint = %policy.fingerprint(), "default policy loaded");
    let routes = tonic::service::Routes::new(
        ClassifierApi::new(policy, args.max_cohort_size).into_server(args.common.max_message_bytes),
    );
    server
        .serve(routes, township_runtime::shutdown_signal(), Duration::from_secs(args.common.shutdown_grace_seconds))
        .await
}
