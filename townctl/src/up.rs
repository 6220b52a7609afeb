//! `townctl up`: the main job in one command. Starts the classifier and the registry as two child processes
//! of this executable (the same code as the `classifier` and `registry` binaries) on loopback ports, with the
//! registry's SQLite database in `--data-dir` and the registry requiring tokens signed by the key in
//! `--data-dir/auth` (an administrator's and an auditor's token are minted there on each start); loads the
//! Hunan demo on first start; waits until every city is classified; prints a summary; serves until Ctrl-C.

use std::{
    collections::BTreeMap,
    ffi::OsString,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{ExitCode, Stdio},
    time::Duration,
};

use anyhow::Context;
use tokio::process::{Child, Command};
use township_proto::registry::v1 as pb;

use crate::client::{Connection, Registry, Token, call_error};
use crate::demo;
use crate::list;
use crate::output::Output;
use township_runtime::auth::token::TokenDir;
use township_runtime::tls::{ClientTls, DevPki};

/// The hidden first argument that makes this executable run one of the services instead of the CLI.
const CLASSIFIER_CHILD: &str = "__serve-classifier";
const REGISTRY_CHILD: &str = "__serve-registry";
/// The process id of the `townctl up` that started a service, for the service to check it is still there.
const PARENT_PID_ENV: &str = "TOWNCTL_UP_PID";

/// Runs a service when `townctl up` started this process as one; `None` for every ordinary command line.
pub(crate) fn run_child_if_asked(args: &[OsString]) -> Option<ExitCode> {
    let which = args.get(1)?.to_str()?;
    let (name, main): (&str, fn(Vec<OsString>) -> ExitCode) = match which {
        CLASSIFIER_CHILD => ("classifier", township_classifier::cli::main),
        REGISTRY_CHILD => ("registry", township_registry::cli::main),
        _ => return None,
    };
    // A killed `townctl up` must not leave its services holding the ports: they stop with it. If it died
    // before the death signal was set, this process already has another parent. (Linux only: elsewhere the
    // services outlive a killed `townctl up`.)
    #[cfg(target_os = "linux")]
    {
        let parent = std::env::var(PARENT_PID_ENV).ok().and_then(|pid| pid.parse().ok());
        if nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM).is_err()
            || parent.map(nix::unistd::Pid::from_raw) != Some(nix::unistd::getppid())
        {
            eprintln!("{name}: started by townctl up, whose process is gone; not starting");
            return Some(ExitCode::FAILURE);
        }
    }
    let argv = std::iter::once(OsString::from(name)).chain(args[2..].iter().cloned()).collect();
    Some(main(argv))
}

#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Directory of the registry's SQLite database and of both services' logs; reused on the next start.
    #[arg(long, env = "TOWNCTL_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Where the classifier listens.
    #[arg(long, default_value = "127.0.0.1:50051")]
    classifier_listen: SocketAddr,
    /// Where the registry listens.
    #[arg(long, default_value = "127.0.0.1:50052")]
    registry_listen: SocketAddr,
    /// Seed of the generated demo (same seed, same indicators and institutions).
    #[arg(long, default_value_t = 2023)]
    seed: u64,
    /// Stop both services after the summary instead of serving until Ctrl-C (for scripts and tests).
    #[arg(long)]
    exit_after_summary: bool,
}

struct Service {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Service {
    async fn start(name: &'static str, child_arg: &str, args: &[String], log: PathBuf) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find the townctl executable")?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("cannot open {}", log.display()))?;
        let mut command = Command::new(exe);
        command
            .arg(child_arg)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .env(PARENT_PID_ENV, std::process::id().to_string())
            .kill_on_drop(true);
        // Out of the terminal's process group, so that Ctrl-C reaches only `townctl up`, which then stops the
        // registry before the classifier.
        #[cfg(unix)]
        command.process_group(0);
        let child = command.spawn().with_context(|| format!("cannot start the {name}"))?;
        Ok(Self { name, child, log })
    }

    /// Waits until the service answers SERVING; fails with the end of its log if it exits first.
    async fn wait_until_serving(&mut self, url: &str, service_name: &str, tls: &ClientTls) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            if township_runtime::check_health_with(url, service_name, Duration::from_secs(2), tls).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("the {} exited ({status}) while starting:\n{}", self.name, log_tail(&self.log));
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the {} at {url} did not become ready within 120 s; its log:\n{}",
                self.name,
                log_tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then the grace the service drains in; SIGKILL only if it does not stop. (Without nix, off
    /// Linux, at once: the registry's SQLite survives being killed.)
    async fn stop(mut self) {
        #[cfg(target_os = "linux")]
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid.cast_signed()),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        #[cfg(not(target_os = "linux"))]
        let _ = self.child.start_kill();
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

fn ensure_free(addr: SocketAddr, service: &str, flag: &str) -> anyhow::Result<()> {
    std::net::TcpListener::bind(addr).map(drop).with_context(|| {
        format!(
            "cannot listen on {addr} for the {service}: is another `townctl up` running? Choose another with {flag}"
        )
    })
}

pub(crate) async fn run(args: UpArgs, connection: &Connection, output: Output) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data directory {}", args.data_dir.display()))?;
    ensure_free(args.classifier_listen, "classifier", "--classifier-listen")?;
    ensure_free(args.registry_listen, "registry", "--registry-listen")?;
    let classifier_url = township_runtime::client_url_with(args.classifier_listen, true);
    let registry_url = township_runtime::client_url_with(args.registry_listen, true);
    let database = args.data_dir.join("registry.db");
    let database_url = format!("sqlite://{}", database.display());
    // Both services speak TLS with a development PKI made on first start, and the classifier answers only the
    // registry's (and townctl's) client certificates, as in the compose deployment.
    let pki = DevPki::generate(&args.data_dir.join("pki")).context("making the development PKI")?;
    let path = |path: PathBuf| path.display().to_string();
    let ca = path(pki.ca_cert());
    let (classifier_cert, classifier_key) = pki.cert("classifier");
    let (registry_cert, registry_key) = pki.cert("registry");
    let (registry_client_cert, registry_client_key) = pki.cert("registry-client");
    let (townctl_cert, townctl_key) = pki.cert("townctl-client");
    // People authenticate to the registry with tokens signed by a key kept in the data directory. The tokens are
    // minted anew on every start, so the ones on disk never run out while `up` is in use; any copy lasts 30 days.
    let tokens = TokenDir::new(&args.data_dir.join("auth"));
    let standing = crate::token::mint_standing_tokens(&tokens).context("making the registry's tokens")?;
    let admin_token = township_runtime::auth::token::read_token_file(&standing.admin)?;
    let own_tls = ClientTls {
        ca_cert: Some(pki.ca_cert()),
        client_cert: Some(townctl_cert.clone()),
        client_key: Some(townctl_key.clone()),
    };

    let mut classifier = Service::start(
        "classifier",
        CLASSIFIER_CHILD,
        &[
            "--listen".into(),
            args.classifier_listen.to_string(),
            "--tls-cert".into(),
            path(classifier_cert),
            "--tls-key".into(),
            path(classifier_key),
            "--tls-client-ca".into(),
            ca.clone(),
        ],
        args.data_dir.join("classifier.log"),
    )
    .await?;
    let mut registry_service = Service::start(
        "registry",
        REGISTRY_CHILD,
        &[
            "--listen".into(),
            args.registry_listen.to_string(),
            "--database-url".into(),
            database_url.clone(),
            "--classifier-url".into(),
            classifier_url.clone(),
            "--tls-cert".into(),
            path(registry_cert),
            "--tls-key".into(),
            path(registry_key),
            "--classifier-ca-cert".into(),
            ca.clone(),
            "--classifier-client-cert".into(),
            path(registry_client_cert),
            "--classifier-client-key".into(),
            path(registry_client_key),
            "--auth-jwt-keys".into(),
            path(tokens.public_keys_dir()),
            "--auth-issuer".into(),
            township_runtime::auth::token::LOCAL_ISSUER.into(),
        ],
        args.data_dir.join("registry.log"),
    )
    .await?;
    let outcome = async {
        classifier.wait_until_serving(&classifier_url, township_classifier::SERVICE_NAME, &own_tls).await?;
        registry_service.wait_until_serving(&registry_url, township_registry::service::SERVICE_NAME, &own_tls).await?;
        let connection = Connection {
            registry: registry_url.clone(),
            classifier: classifier_url.clone(),
            ca_cert: Some(pki.ca_cert()),
            client_cert: Some(townctl_cert.clone()),
            client_key: Some(townctl_key.clone()),
            token: Some(Token::new(admin_token)),
            token_file: None,
            ..connection.clone()
        };
        let mut registry = connection.registry().await?;
        if list::cities(&registry).await?.is_empty() {
            eprintln!("First start: loading the Hunan demo (14 cities, 2,008 township-level units) into {}", database.display());
            let progress = crate::output::progress_bar("cities loaded");
            demo::load(&mut registry, args.seed, &progress).await?;
            progress.finish_and_clear();
        } else {
            eprintln!("Reusing the data in {}", database.display());
        }
        for city in wait_until_classified(&mut registry, demo::DATA_YEAR).await? {
            eprintln!(
                "{city} has no indicators for {}, so it is not classified (import them with `townctl import \
                 indicators`; if the first start was interrupted, stop and start again with an empty --data-dir)",
                demo::DATA_YEAR
            );
        }
        let summary = summarise(&mut registry, demo::DATA_YEAR).await?;
        output.print(&summary, || summary.to_text())?;
        eprintln!(
            "\nclassifier: {classifier_url}  (log {})\nregistry:   {registry_url}  (log {}, database {})\nTLS:        \
             development CA {ca} (townctl finds it in data/pki; elsewhere pass --ca-cert)\n{standing}\n            \
             (townctl presents data/auth/admin.token; elsewhere pass --token-file; `townctl token mint` makes others)",
            classifier.log.display(),
            registry_service.log.display(),
            database.display()
        );
        if !args.exit_after_summary {
            eprintln!(
                "\nTry, from another terminal:\n  townctl classes 4301\n  townctl explain 430181110\n  townctl compliance 430181\n  \
                 townctl report 4301 --output changsha.html\n\nServing until Ctrl-C."
            );
            tokio::select! {
                () = township_runtime::shutdown_signal() => {}
                status = classifier.child.wait() => anyhow::bail!("the classifier stopped ({}):\n{}", status?, log_tail(&classifier.log)),
                status = registry_service.child.wait() => anyhow::bail!("the registry stopped ({}):\n{}", status?, log_tail(&registry_service.log)),
            }
        }
        anyhow::Ok(())
    }
    .await;
    // The registry first, so that it never calls a classifier already gone.
    registry_service.stop().await;
    classifier.stop().await;
    outcome.map(|()| ExitCode::SUCCESS)
}

/// Waits until every city's cohort for `data_year` is classified; fails if one is given up on (DEAD_LETTER).
/// Returns the names of the cities without indicators for the year (nothing to classify).
async fn wait_until_classified(registry: &mut Registry, data_year: i32) -> anyhow::Result<Vec<String>> {
    let cities = list::cities(registry).await?;
    let mut empty = Vec::new();
    let progress = crate::output::progress_bar("cities classified");
    progress.set_length(cities.len() as u64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    for city in &cities {
        progress.set_message(city.display_name.clone());
        loop {
            let status = registry
                .get_cohort_status(pb::GetCohortStatusRequest { city: city.name.clone(), data_year })
                .await
                .map_err(call_error(format!("reading the classification state of {}", city.display_name)))?
                .into_inner();
            match pb::CohortState::try_from(status.state).unwrap_or(pb::CohortState::Unspecified) {
                pb::CohortState::Current => break,
                // A city imported without indicators, or a first start interrupted while loading the demo
                // (which records a city's indicators last).
                pb::CohortState::Empty => {
                    empty.push(city.display_name.clone());
                    break;
                }
                pb::CohortState::DeadLetter => anyhow::bail!(
                    "classifying {} failed for good: {} (see the registry's log)",
                    city.display_name,
                    status.last_error
                ),
                _ => {}
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{} is still not classified after 300 s (last error: {})",
                city.display_name,
                status.last_error
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    Ok(empty)
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct CitySummary {
    pub city: String,
    pub name: String,
    pub townships: usize,
    /// Townships of classes 1, 2 and 3.
    pub classes: [usize; 3],
    pub errors: usize,
    pub warnings: usize,
}

#[derive(Debug, serde::Serialize)]
pub(crate) struct Summary {
    pub data_year: i32,
    pub cities: Vec<CitySummary>,
    /// Findings per rule id, over every city.
    pub findings_by_rule: BTreeMap<String, usize>,
    /// Findings an approved deviation covers (reported, but approved), per rule id.
    pub approved_exceptions_by_rule: BTreeMap<String, usize>,
}

impl Summary {
    fn to_text(&self) -> String {
        let mut table =
            crate::output::table(&["city", "", "townships", "class 1", "class 2", "class 3", "errors", "warnings"]);
        for city in &self.cities {
            table.add_row(vec![
                city.city.trim_start_matches("cities/").to_owned(),
                city.name.clone(),
                city.townships.to_string(),
                city.classes[0].to_string(),
                city.classes[1].to_string(),
                city.classes[2].to_string(),
                city.errors.to_string(),
                city.warnings.to_string(),
            ]);
        }
        let mut text =
            format!("Hunan, data year {}: classes and compliance findings per city\n{table}\n", self.data_year);
        text.push_str("\nFindings by rule (townctl compliance CODE lists them):\n");
        for (rule, count) in &self.findings_by_rule {
            let approved = self.approved_exceptions_by_rule.get(rule).copied().unwrap_or(0);
            let approved = match approved {
                0 => String::new(),
                1 => "  (1 approved exception)".to_owned(),
                n => format!("  ({n} approved exceptions)"),
            };
            text.push_str(&format!("  {rule:<45} {count:>6}{approved}\n"));
        }
        text
    }
}

async fn summarise(registry: &mut Registry, data_year: i32) -> anyhow::Result<Summary> {
    let mut summary = Summary {
        data_year,
        cities: Vec::new(),
        findings_by_rule: BTreeMap::new(),
        approved_exceptions_by_rule: BTreeMap::new(),
    };
    for city in list::cities(registry).await? {
        let classes = list::classes(registry, &city.name, data_year).await?;
        let mut counts = [0; 3];
        for class in &classes {
            if let Some(slot) = (class.effective_class as usize).checked_sub(1).and_then(|i| counts.get_mut(i)) {
                *slot += 1;
            }
        }
        let report = registry
            .get_compliance_report(pb::GetComplianceReportRequest { scope: city.name.clone() })
            .await
            .map_err(call_error(format!("the compliance report of {}", city.display_name)))?
            .into_inner();
        let errors = report.findings.iter().filter(|f| f.severity == pb::Severity::Error as i32).count();
        for finding in &report.findings {
            *summary.findings_by_rule.entry(finding.rule.clone()).or_default() += 1;
            if finding.approved_deviation.as_ref().is_some_and(|note| note.approved) {
                *summary.approved_exceptions_by_rule.entry(finding.rule.clone()).or_default() += 1;
            }
        }
        summary.cities.push(CitySummary {
            city: city.name.clone(),
            name: city.display_name.clone(),
            townships: classes.len(),
            classes: counts,
            errors,
            warnings: report.findings.len() - errors,
        });
    }
    Ok(summary)
}
