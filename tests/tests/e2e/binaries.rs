//! The `classifier` and `registry` binaries as operators run them: real processes, their `healthcheck`
//! subcommand, a graceful exit on SIGTERM, and a registry killed with SIGKILL while work is pending, then
//! restarted on the same SQLite file.

use std::time::Duration;

use township_e2e::{process::ServiceProcess, *};
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;

mod classifier {
    use super::*;

    #[test]
    fn healthcheck_passes_while_serving_and_sigterm_stops_the_server_cleanly() {
        // The lifecycle, not authentication, is under test here.
        let mut classifier = ServiceProcess::start("classifier", &["--insecure-no-auth"]);
        assert!(classifier.healthcheck(), "healthcheck exits 0 while the server is SERVING");

        classifier.terminate();
        let status = classifier.wait_for_exit(Duration::from_secs(15));
        assert_eq!(status.map(|s| s.code()), Some(Some(0)), "SIGTERM ends the server with exit status 0");
        assert!(!classifier.healthcheck(), "healthcheck fails once nothing serves");
    }

    #[test]
    fn a_bad_policy_file_stops_the_start_with_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("classifier-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("policy.toml");
        let text = include_str!("../../../policy/policies/default.toml")
            .replace("class1_min_score = 120.0", "class1_min_score = 10.0");
        std::fs::write(&path, text).unwrap();

        let output = std::process::Command::new(process::workspace_binary("classifier"))
            .args(["--listen", "127.0.0.1:0", "--insecure-no-auth", "--policy-file"])
            .arg(&path)
            .output()
            .expect("the classifier binary runs");

        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("score_thresholds"), "the error names the field: {stderr}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A log read by a pipe or written to a file is plain text: no colour escapes (issue 14).
    #[test]
    fn logs_to_a_pipe_carry_no_colour_escapes() {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(process::workspace_binary("classifier"))
            .args(["--listen", "127.0.0.1:0", "--insecure-no-auth"])
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the classifier binary runs");
        let stderr = child.stderr.take().unwrap();
        let lines: Vec<String> = BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .take_while(|line| !line.contains("serving"))
            .take(50)
            .collect();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!lines.is_empty(), "the classifier logged its start");
        assert!(lines.iter().all(|line| !line.contains('\u{1b}')), "{lines:?}");
    }

    #[test]
    fn without_a_way_to_authenticate_it_refuses_to_start_naming_the_flags() {
        let output = std::process::Command::new(process::workspace_binary("classifier"))
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .expect("the classifier binary runs");
        assert!(!output.status.success(), "a server without authentication must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for flag in ["--auth-jwt-keys", "--tls-client-ca", "--insecure-no-auth"] {
            assert!(stderr.contains(flag), "the error names {flag}: {stderr}");
        }
    }
}

mod registry {
    use super::*;

    const COUNTY: &str = "cities/4301/counties/430104";

    /// The binary on an OS-chosen port, retrying quickly; open to anyone (the crash and restart are under test,
    /// not authentication).
    fn start_registry(database_url: &str, classifier_url: &str) -> ServiceProcess {
        ServiceProcess::start(
            "registry",
            &[
                "--insecure-no-auth",
                "--max-backoff-seconds",
                "1",
                // The lease of a cohort claimed before the kill expires after twice this.
                "--classify-timeout-seconds",
                "3",
                "--database-url",
                database_url,
                "--classifier-url",
                classifier_url,
            ],
        )
    }

    async fn cohort_state(client: &mut Client) -> pb::CohortState {
        client
            .get_cohort_status(pb::GetCohortStatusRequest { city: "cities/4301".to_owned(), data_year: 2023 })
            .await
            .unwrap()
            .into_inner()
            .state()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_pending_when_the_registry_is_killed_is_finished_after_a_restart() {
        let database = TestDatabase::sqlite();
        // A port nobody serves yet: the classifier comes up there only after the crash.
        let classifier_addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let classifier_url = format!("http://{classifier_addr}");

        let mut registry = start_registry(database.url(), &classifier_url);
        assert!(registry.healthcheck(), "healthcheck exits 0 while the registry is SERVING");
        let mut client = connect(&registry.url).await;
        import(&mut client, "430104").await;
        let townships = all_townships(&mut client, COUNTY).await;
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
            .batch_record_indicators(pb::BatchRecordIndicatorsRequest {
                observations,
                validate_only: false,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(cohort_state(&mut client).await, pb::CohortState::Pending, "the classifier is not up yet");

        registry.kill();
        let classifier = TestClassifier::spawn_on(classifier_addr).await;
        let mut registry = start_registry(database.url(), &classifier_url);
        let mut client = connect(&registry.url).await;
        wait_until_current(&mut client, "cities/4301", 2023).await;
        let classes = all_classes(&mut client, COUNTY, 2023).await;
        assert_eq!(classes.len(), townships.len(), "every township written before the crash is classified");
        assert!(classes.iter().all(|c| (1..=3).contains(&c.effective_class)));

        registry.terminate();
        let status = registry.wait_for_exit(PATIENCE);
        assert!(status.is_some_and(|s| s.success()), "SIGTERM ends the registry with exit status 0");
        classifier.stop().await;
    }

    fn registry_audit(args: &[&str]) -> std::process::Output {
        std::process::Command::new(process::workspace_binary("registry"))
            .arg("audit")
            .args(args)
            .output()
            .expect("the registry binary runs")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signed_audit_log_verifies_offline_until_someone_edits_it() {
        let database = TestDatabase::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("audit.key");
        let key_text = key.to_str().unwrap();
        let checkpoints = dir.path().join("checkpoints.jsonl");
        let checkpoints_text = checkpoints.to_str().unwrap();
        assert!(registry_audit(&["keygen", key_text]).status.success());

        let classifier = TestClassifier::spawn().await;
        let classifier_url = classifier.url();
        let registry = ServiceProcess::start(
            "registry",
            &[
                "--insecure-no-auth",
                "--database-url",
                database.url(),
                "--classifier-url",
                &classifier_url,
                "--audit-signing-key",
                key_text,
                "--audit-checkpoint-file",
                checkpoints_text,
            ],
        );
        let mut client = connect(&registry.url).await;
        import(&mut client, "430104").await;
        let mut registry = registry;
        registry.terminate();
        assert!(registry.wait_for_exit(PATIENCE).is_some_and(|s| s.success()));
        classifier.stop().await;

        let public_key = format!("{key_text}.pub");
        let verify = [
            "verify",
            "--database-url",
            database.url(),
            "--checkpoint-file",
            checkpoints_text,
            "--public-key",
            &public_key,
        ];
        let intact = registry_audit(&verify);
        let stdout = String::from_utf8_lossy(&intact.stdout);
        assert!(intact.status.success(), "{stdout}{}", String::from_utf8_lossy(&intact.stderr));
        assert!(
            stdout.contains("audit log intact") && !stdout.contains("not yet covered"),
            "the stop signed the head: {stdout}"
        );

        // An edit through SQL, with the trigger that refuses it dropped first.
        let pool = sqlx::SqlitePool::connect(database.url()).await.unwrap();
        sqlx::raw_sql("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let broken = registry_audit(&verify);
        let stderr = String::from_utf8_lossy(&broken.stderr);
        assert_eq!(broken.status.code(), Some(1));
        assert!(stderr.contains("broken at seq 1"), "{stderr}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_a_key_directory_it_answers_minted_tokens_and_refuses_anonymous_calls() {
        use township_runtime::auth::token::{Grant, TokenDir};
        let database = TestDatabase::sqlite();
        let dir = tempfile::tempdir().unwrap();
        let auth = TokenDir::new(&dir.path().join("auth"));
        let key = auth.generate().unwrap();
        let viewer =
            key.mint(&Grant::local("li.si", township_runtime::Role::Viewer, Duration::from_secs(600))).unwrap();
        let keys = auth.public_keys_dir();
        let registry = ServiceProcess::start(
            "registry",
            &[
                "--database-url",
                database.url(),
                "--classifier-url",
                "http://127.0.0.1:1",
                "--auth-jwt-keys",
                keys.to_str().unwrap(),
                "--auth-issuer",
                township_runtime::auth::token::LOCAL_ISSUER,
            ],
        );
        assert!(registry.healthcheck(), "health stays open to probes");
        let mut client = connect(&registry.url).await;
        let refused = client.list_cities(pb::ListCitiesRequest::default()).await.expect_err("no token");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
        let mut request = tonic::Request::new(pb::ListCitiesRequest::default());
        request.metadata_mut().insert("authorization", format!("Bearer {viewer}").parse().unwrap());
        client.list_cities(request).await.expect("a token minted with the directory's key");
    }

    #[test]
    fn without_a_way_to_authenticate_it_refuses_to_start_naming_the_flags() {
        let database = TestDatabase::sqlite();
        let output = std::process::Command::new(process::workspace_binary("registry"))
            .args(["--listen", "127.0.0.1:0", "--database-url", database.url()])
            .args(["--classifier-url", "http://127.0.0.1:1"])
            .output()
            .expect("the registry binary runs");
        assert!(!output.status.success(), "a server without authentication must not start");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for flag in ["--auth-jwt-keys", "--tls-client-ca", "--insecure-no-auth"] {
            assert!(stderr.contains(flag), "the error names {flag}: {stderr}");
        }
    }
}
