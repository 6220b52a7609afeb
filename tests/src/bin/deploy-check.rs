//! `deploy-check`: the client `scripts/compose-proof.sh` uses to check a deployed registry and classifier from
//! outside the containers — seeding a city, writing while services are killed or stopped, and verifying that
//! every acknowledged write is still there.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tonic::transport::Channel;
use township_e2e::{Bearer, Client, MAX_MESSAGE_BYTES, as_actor, hunan_divisions};
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;
use township_proto::registry::v1::registry_service_client::RegistryServiceClient;

#[derive(Debug, Parser)]
#[command(about = "Checks a deployed township registry from the outside")]
struct Cli {
    /// The registry's gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    registry: String,
    /// PEM CA certificate to trust for an `https://` registry.
    #[arg(long)]
    ca_cert: Option<std::path::PathBuf>,
    /// The JWT every call presents (`authorization: Bearer …`).
    #[arg(long, env = "DEPLOY_CHECK_TOKEN", hide_env_values = true, conflicts_with = "token_file")]
    token: Option<String>,
    /// A file whose first line is the JWT every call presents.
    #[arg(long, env = "DEPLOY_CHECK_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Imports a city (or county) from the shipped Hunan division files, records seeded indicators for all its
    /// townships, waits until they are classified and prints the class counts.
    Seed {
        #[arg(long, default_value = "4301")]
        code_prefix: String,
        #[arg(long, default_value_t = 2023)]
        year: i32,
    },
    /// Records indicators one at a time, printing `acked TAG-i TOWNSHIP` after each acknowledged write; stops
    /// at the first failure (e.g. the registry was killed) or after `count` writes.
    WriteLoop {
        #[arg(long, default_value = "cities/4301")]
        city: String,
        #[arg(long, default_value_t = 2023)]
        year: i32,
        #[arg(long)]
        tag: String,
        #[arg(long, default_value_t = 200)]
        count: usize,
    },
    /// Reads `acked …` lines from a file and checks each write is stored; exits non-zero if any is missing.
    Verify {
        #[arg(long)]
        acked_file: std::path::PathBuf,
    },
    /// Waits until the city's cohort is CURRENT (classified with every change) and prints the class counts.
    WaitCurrent {
        #[arg(long, default_value = "cities/4301")]
        city: String,
        #[arg(long, default_value_t = 2023)]
        year: i32,
        #[arg(long, default_value_t = 120)]
        timeout_seconds: u64,
    },
    /// Calls the registry without a token; exits 0 only if it answers UNAUTHENTICATED.
    ExpectUnauthenticated,
    /// Prints the state of the city's cohort (CURRENT, PENDING, …).
    CohortState {
        #[arg(long, default_value = "cities/4301")]
        city: String,
        #[arg(long, default_value_t = 2023)]
        year: i32,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let tls = township_runtime::tls::ClientTls { ca_cert: cli.ca_cert.clone(), ..Default::default() };
    let channel: Channel = tls
        .endpoint(&cli.registry)?
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("cannot reach the registry at {}", cli.registry))?;
    let token = match (&cli.token, &cli.token_file) {
        (Some(token), _) => Some(token.trim().to_owned()),
        (None, Some(path)) => Some(township_runtime::auth::token::read_token_file(path)?),
        (None, None) => None,
    };
    let mut anonymous = RegistryServiceClient::new(channel.clone());
    let bearer = token.as_deref().map(Bearer::new).unwrap_or_default();
    let mut client = RegistryServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    match cli.command {
        Command::Seed { code_prefix, year } => {
            let (cities_csv, counties_csv, townships_csv) = hunan_divisions();
            let imported = client
                .import_divisions(as_actor(
                    "deploy-check",
                    pb::ImportDivisionsRequest {
                        cities_csv,
                        counties_csv,
                        townships_csv,
                        code_prefix: code_prefix.clone(),
                        validate_only: false,
                    },
                ))
                .await?
                .into_inner();
            let city = format!("cities/{}", &code_prefix[..4]);
            let townships = township_e2e::all_townships(&mut client, &city).await;
            township_e2e::record_generated(&mut client, &townships, year, 7).await;
            println!("imported {} townships; indicators recorded for {}", imported.townships, townships.len());
            wait_current(&mut client, &city, year, Duration::from_secs(120)).await?;
        }
        Command::WriteLoop { city, year, tag, count } => {
            let townships = township_e2e::all_townships(&mut client, &city).await;
            anyhow::ensure!(!townships.is_empty(), "no townships in {city}; run seed first");
            for i in 0..count {
                let township = &townships[i % townships.len()];
                let request = pb::RecordIndicatorsRequest {
                    observation: Some(pb::IndicatorObservation {
                        township: township.name.clone(),
                        data_year: year,
                        values: Some(cpb::IndicatorValues {
                            population: 1.0 + (i % 10) as f64,
                            fiscal_revenue: 500.0 + 100.0 * (i % 50) as f64,
                            land_area: 20.0 + (i % 30) as f64,
                        }),
                        source: format!("{tag}-{i}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                match client.record_indicators(as_actor("deploy-check", request)).await {
                    Ok(_) => println!("acked {tag}-{i} {}", township.name),
                    Err(status) => {
                        eprintln!("write {tag}-{i} failed: {:?} {}", status.code(), status.message());
                        break;
                    }
                }
            }
        }
        Command::Verify { acked_file } => {
            let text = std::fs::read_to_string(&acked_file)?;
            let (mut found, mut missing) = (0, Vec::new());
            for line in text.lines().filter(|l| l.starts_with("acked ")) {
                let mut parts = line.split_whitespace().skip(1);
                let (Some(source), Some(township)) = (parts.next(), parts.next()) else { bail!("bad line {line:?}") };
                if stored_sources(&mut client, township).await?.iter().any(|s| s == source) {
                    found += 1;
                } else {
                    missing.push(source.to_owned());
                }
            }
            println!("acked writes found: {found} of {}", found + missing.len());
            anyhow::ensure!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
        }
        Command::WaitCurrent { city, year, timeout_seconds } => {
            wait_current(&mut client, &city, year, Duration::from_secs(timeout_seconds)).await?;
        }
        Command::ExpectUnauthenticated => match anonymous.list_cities(pb::ListCitiesRequest::default()).await {
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                println!("an anonymous call is refused: UNAUTHENTICATED ({})", status.message());
            }
            Err(status) => bail!("an anonymous call was refused, but not as UNAUTHENTICATED: {status:?}"),
            Ok(_) => bail!("the registry answered a call that presented no token"),
        },
        Command::CohortState { city, year } => {
            let status =
                client.get_cohort_status(pb::GetCohortStatusRequest { city, data_year: year }).await?.into_inner();
            println!("{}", status.state().as_str_name());
        }
    }
    Ok(())
}

async fn stored_sources(client: &mut Client, township: &str) -> anyhow::Result<Vec<String>> {
    let mut sources = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_indicator_observations(pb::ListIndicatorObservationsRequest {
                parent: township.to_owned(),
                data_year: 0,
                page_size: 1000,
                page_token,
            })
            .await?
            .into_inner();
        sources.extend(page.observations.into_iter().map(|o| o.source));
        if page.next_page_token.is_empty() {
            return Ok(sources);
        }
        page_token = page.next_page_token;
    }
}

async fn wait_current(client: &mut Client, city: &str, year: i32, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let status = client
            .get_cohort_status(pb::GetCohortStatusRequest { city: city.to_owned(), data_year: year })
            .await?
            .into_inner();
        if status.state() == pb::CohortState::Current {
            break;
        }
        if started.elapsed() > timeout {
            bail!("{city}/{year} is still {} after {timeout:?}: {}", status.state().as_str_name(), status.last_error);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let classes = township_e2e::all_classes(client, city, year).await;
    let count = |class| classes.iter().filter(|c| c.effective_class == class).count();
    println!(
        "{city}/{year} CURRENT after {:.1} s: {} townships, class 1: {}, class 2: {}, class 3: {}",
        started.elapsed().as_secs_f64(),
        classes.len(),
        count(1),
        count(2),
        count(3)
    );
    Ok(())
}
