//! `townctl`: the command line of the township registry and classifier for the people who run the reform,
//! and `townctl up`, which runs both services with a demo province.
//!
//! Exit status: 0 done; 1 the command failed (a service unreachable, a call refused, a file unreadable);
//! 2 the data is not acceptable: an import with bad rows, or error-level compliance findings.

mod client;
#[cfg(feature = "up")]
mod demo;
mod import;
mod list;
mod output;
mod report;
mod sheet;
mod token;
#[cfg(feature = "up")]
mod up;
mod views;
mod vocabulary;
mod years;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::client::Connection;
use crate::output::Output;

/// Exit status when the data is not acceptable (see the crate documentation).
pub const EXIT_DATA: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "townctl", version, about = "Township reform: import, classes, compliance, exports and reports")]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Print JSON instead of tables, for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the classifier and the registry on loopback ports (SQLite in ./data), load the Hunan demo on
    /// first start, print a summary, and serve until Ctrl-C.
    #[cfg(feature = "up")]
    Up(up::UpArgs),
    /// Import divisions, indicators, institutions, posts or catalogue items from CSV or XLSX: all rows or none.
    Import(import::ImportArgs),
    /// A city's or county's townships with score, rank, class and the class before.
    Classes(views::ClassesArgs),
    /// Why a township has its class: indices, weighted contributions, distance to the boundaries.
    Explain(views::ExplainArgs),
    /// The policy's rules a township, county or city breaks; exit status 2 when any is an error.
    Compliance(views::ComplianceArgs),
    /// Classes, institutions or catalogues to CSV or XLSX.
    Export(views::ExportArgs),
    /// Follow class changes as they happen (Ctrl-C to stop).
    Watch(views::WatchArgs),
    /// Whether both services answer, with the classifier's default policy.
    Status,
    /// A self-contained HTML report: score distribution, classes per county, compliance findings.
    Report(views::ReportArgs),
    /// Development certificates: `townctl pki init DIR` writes a CA and the services' and clients' certificates
    /// (what `townctl up` and the compose proof use; production uses the city's own CA).
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Tokens for the registry: `keygen DIR` (a signing key), `init DIR` (the key and an administrator's and
    /// an auditor's token, for a deployment), `mint --role … --jurisdiction …` (prints a token).
    #[command(subcommand)]
    Token(token::TokenCommand),
}

#[derive(Debug, Subcommand)]
enum PkiCommand {
    /// Write ca.pem, classifier.pem, registry.pem, registry-client.pem and townctl-client.pem (each with its .key)
    /// into DIR, unless DIR/ca.pem exists already.
    Init { dir: std::path::PathBuf },
}

/// Whether writing to stdout failed because its reader closed the pipe.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        let kind = cause
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind));
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    #[cfg(feature = "up")]
    if let Some(exit) = up::run_child_if_asked(&args) {
        return exit;
    }
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("townctl: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let output = Output { json: cli.json };
    let connection = cli.connection;
    let outcome = runtime.block_on(async move {
        match cli.command {
            #[cfg(feature = "up")]
            Command::Up(args) => up::run(args, &connection, output).await,
            Command::Import(args) => import::run(args, &connection, output).await,
            Command::Classes(args) => views::classes(args, &connection, output).await,
            Command::Explain(args) => views::explain(args, &connection, output).await,
            Command::Compliance(args) => views::compliance(args, &connection, output).await,
            Command::Export(args) => views::export(args, &connection).await,
            Command::Watch(args) => views::watch(args, &connection, output).await,
            Command::Report(args) => views::report(args, &connection).await,
            Command::Status => views::status(&connection, output).await,
            Command::Token(command) => token::run(command),
            Command::Pki(PkiCommand::Init { dir }) => {
                let pki = township_runtime::tls::DevPki::generate(&dir)?;
                eprintln!("development PKI in {} (CA {})", pki.dir.display(), pki.ca_cert().display());
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match outcome {
        Ok(exit) => exit,
        // `townctl … --json | head`: the reader has what it wanted; nothing to report.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("townctl: {error:#}");
            ExitCode::FAILURE
        }
    }
}
