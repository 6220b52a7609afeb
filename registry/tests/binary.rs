//! The `registry` binary as operators run it: a real process that is killed with SIGKILL while work is pending
//! and restarted on the same SQLite file, and its `healthcheck` subcommand.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use township_classifier::{ClassifierApi, domain::Policy};
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;
use township_proto::registry::v1::registry_service_client::RegistryServiceClient;

const BINARY: &str = env!("CARGO_BIN_EXE_registry");

/// Starts the binary on an OS-chosen port; returns it with the URL it serves, read from its JSON log.
fn start_registry(database_url: &str, classifier_url: &str) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json", "--max-backoff-seconds", "1"])
        // The lease of a cohort claimed before the kill expires after twice this.
        .args(["--classify-timeout-seconds", "3"])
        .args(["--database-url", database_url, "--classifier-url", classifier_url])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the registry binary starts");
    let stderr = child.stderr.take().unwrap();
    let (found, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("{line}");
            }
            let _ = found.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
        if event["message"] == "serving" {
            let addr = event["local_addr"].as_str().expect("the serving event names the address");
            return (child, format!("http://{addr}"));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the registry did not log that it was serving within 60 s");
}

async fn start_classifier(addr: SocketAddr) -> tokio::sync::oneshot::Sender<()> {
    let server = township_runtime::GrpcServer::bind(addr, township_classifier::SERVICE_NAME).await.unwrap();
    let routes = tonic::service::Routes::new(
        ClassifierApi::new(Policy::builtin_default(), 100_000).into_server(64 * 1024 * 1024),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(
        routes,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    stop
}

fn fixture(file: &str) -> String {
    std::fs::read_to_string(format!("{}/../fixtures/divisions/hunan/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn cohort_state(client: &mut RegistryServiceClient<tonic::transport::Channel>) -> pb::CohortState {
    client
        .get_cohort_status(pb::GetCohortStatusRequest { city: "cities/4301".to_owned(), data_year: 2023 })
        .await
        .unwrap()
        .into_inner()
        .state()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_pending_when_the_registry_is_killed_is_finished_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("registry.db").display());
    // A port nobody serves yet: the classifier comes up there only after the crash.
    let classifier_addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let classifier_url = format!("http://{classifier_addr}");

    let (mut registry, url) = start_registry(&database_url, &classifier_url);
    let healthy = Command::new(BINARY).args(["healthcheck", "--url", &url]).status().unwrap();
    assert!(healthy.success(), "healthcheck exits 0 while the registry is SERVING");
    let mut client = RegistryServiceClient::connect(url).await.unwrap();
    client
        .import_divisions(pb::ImportDivisionsRequest {
            cities_csv: fixture("cities.csv"),
            counties_csv: fixture("areas.csv"),
            townships_csv: fixture("streets.csv"),
            code_prefix: "430104".to_owned(),
            validate_only: false,
        })
        .await
        .unwrap();
    let townships = client
        .list_townships(pb::ListTownshipsRequest {
            parent: "cities/4301/counties/430104".to_owned(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .townships;
    let observations = townships
        .iter()
        .enumerate()
        .map(|(i, t)| pb::IndicatorObservation {
            township: t.name.clone(),
            data_year: 2023,
            values: Some(cpb::IndicatorValues {
                population: 1.0 + i as f64,
                fiscal_revenue: 500.0 * (i + 1) as f64,
                land_area: 10.0 + i as f64,
            }),
            ..Default::default()
        })
        .collect();
    client
        .batch_record_indicators(pb::BatchRecordIndicatorsRequest { observations, validate_only: false })
        .await
        .unwrap();
    assert_eq!(cohort_state(&mut client).await, pb::CohortState::Pending, "the classifier is not up yet");

    registry.kill().unwrap();
    registry.wait().unwrap();
    let _classifier = start_classifier(classifier_addr).await;
    let (mut registry, url) = start_registry(&database_url, &classifier_url);
    let mut client = RegistryServiceClient::connect(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cohort_state(&mut client).await != pb::CohortState::Current {
        assert!(Instant::now() < deadline, "the pending cohort was not classified after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let classes = client
        .list_township_classes(pb::ListTownshipClassesRequest {
            parent: "cities/4301/counties/430104".to_owned(),
            data_year: 2023,
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .classes;
    assert_eq!(classes.len(), townships.len(), "every township written before the crash is classified");
    assert!(classes.iter().all(|c| (1..=3).contains(&c.effective_class)));

    let terminated = Command::new("kill").args(["-TERM", &registry.id().to_string()]).status().unwrap();
    assert!(terminated.success());
    assert!(registry.wait().unwrap().success(), "SIGTERM ends the registry with exit status 0");
}
