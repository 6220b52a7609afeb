//! The command line of the `registry` binary: serves `township.registry.v1.RegistryService` and runs the reclassification worker,
//! or checks a running registry's health.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

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
        #[command(flatten)]
        tls: township_runtime::tls::HealthcheckTlsArgs,
    },
    /// The audit log's proof: make a signing key, or verify a log offline.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Write a new Ed25519 key pair: KEY (private, PKCS#8 PEM, mode 0600) and KEY.pub (public, SPKI PEM).
    Keygen {
        /// Where to write the private key; the public key goes beside it with `.pub` appended.
        key: PathBuf,
    },
    /// Check the audit log's hash chain and signed checkpoints; exit 1 naming the first bad sequence number.
    Verify {
        /// The registry's database (read as the registry opens it).
        #[arg(long, env = "REGISTRY_DATABASE_URL")]
        database_url: String,
        /// The checkpoint file the registry writes (--audit-checkpoint-file).
        #[arg(long, env = "REGISTRY_AUDIT_CHECKPOINT_FILE")]
        checkpoint_file: PathBuf,
        /// A public key whose checkpoints are trusted; repeat for keys rotated out.
        #[arg(long = "public-key", required = true)]
        public_keys: Vec<PathBuf>,
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
    /// PEM CA certificate to trust for an `https://` classifier (default: the system's roots).
    #[arg(long, env = "REGISTRY_CLASSIFIER_CA_CERT")]
    classifier_ca_cert: Option<PathBuf>,
    /// Client certificate (PEM) the registry presents to a classifier that requires one (mutual TLS).
    #[arg(long, env = "REGISTRY_CLASSIFIER_CLIENT_CERT", requires = "classifier_client_key")]
    classifier_client_cert: Option<PathBuf>,
    /// Key of --classifier-client-cert.
    #[arg(long, env = "REGISTRY_CLASSIFIER_CLIENT_KEY", requires = "classifier_client_cert")]
    classifier_client_key: Option<PathBuf>,
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
    /// Ed25519 private key (PKCS#8 PEM, from `registry audit keygen`) that signs audit checkpoints. Without
    /// it the log is chained but unsigned, and a warning says so.
    #[arg(long, env = "REGISTRY_AUDIT_SIGNING_KEY", requires = "audit_checkpoint_file")]
    audit_signing_key: Option<PathBuf>,
    /// File, outside the database, that receives a copy of every checkpoint.
    #[arg(long, env = "REGISTRY_AUDIT_CHECKPOINT_FILE", requires = "audit_signing_key")]
    audit_checkpoint_file: Option<PathBuf>,
    /// Seconds between checkpoints (one is also signed at shutdown).
    #[arg(long, env = "REGISTRY_AUDIT_CHECKPOINT_SECONDS", default_value_t = 60)]
    audit_checkpoint_seconds: u64,
    #[command(flatten)]
    tls: township_runtime::tls::ServerTlsArgs,
    #[command(flatten)]
    auth: township_runtime::auth::AuthArgs,
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
        Some(Command::Healthcheck { url, timeout_seconds, tls }) => {
            township_runtime::run_main("registry", async move {
                township_runtime::check_health_with(
                    &url,
                    SERVICE_NAME,
                    Duration::from_secs(timeout_seconds),
                    &tls.client(),
                )
                .await
            })
        }
        Some(Command::Audit(AuditCommand::Keygen { key })) => match crate::audit::generate_key_pair(&key) {
            Ok(public) => {
                println!("wrote {} (private) and {} (public)", key.display(), public.display());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("registry audit keygen: {error:#}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Audit(AuditCommand::Verify { database_url, checkpoint_file, public_keys })) => {
            township_runtime::run_main("registry", verify_audit(database_url, checkpoint_file, public_keys))
        }
        None => township_runtime::run_main("registry", serve(cli.serve)),
    }
}

async fn verify_audit(database_url: String, checkpoint_file: PathBuf, public_keys: Vec<PathBuf>) -> anyhow::Result<()> {
    let trusted =
        public_keys.iter().map(|path| crate::audit::load_verifying_key(path)).collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
        anyhow::ensure!(path.exists(), "{} does not exist: there is no audit log to verify", path.display());
    }
    let store = crate::store::open(&database_url).await?;
    match crate::audit::verify(store.as_ref(), &checkpoint_file, &trusted).await? {
        crate::audit::Verification::Intact(verified) => {
            println!(
                "audit log intact: {} events, head {}, {} checkpoints, signed up to seq {}",
                verified.events,
                verified.head.to_hex(),
                verified.checkpoints,
                verified.covered_to
            );
            if verified.covered_to < verified.events {
                println!("events after seq {} are not yet covered by a checkpoint", verified.covered_to);
            }
            Ok(())
        }
        crate::audit::Verification::Broken(broken) => anyhow::bail!("{broken}"),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    township_runtime::init_tracing(args.common.log_format, &args.common.log_filter);
    // Health answers NOT_SERVING from here until the database is open and migrated.
    let authenticator = args.auth.authenticator("township-registry", args.tls.requires_client_certificates())?;
    let server = GrpcServer::bind(args.listen, SERVICE_NAME)
        .await?
        .with_tls(args.tls.load()?)
        .authenticate_with(authenticator)
        .with_metrics(args.common.metrics_listener().await?);
    let config = RegistryConfig {
        database_url: args.database_url,
        classifier_url: args.classifier_url,
        classifier_tls: township_runtime::tls::ClientTls {
            ca_cert: args.classifier_ca_cert,
            client_cert: args.classifier_client_cert,
            client_key: args.classifier_client_key,
        },
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
        audit_checkpoints: match (args.audit_signing_key, args.audit_checkpoint_file) {
            (Some(key), Some(file)) => Some(crate::audit::CheckpointConfig {
                key: crate::audit::load_signing_key(&key)?,
                file,
                interval: Duration::from_secs(args.audit_checkpoint_seconds.max(1)),
            }),
            _ => None,
        },
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
