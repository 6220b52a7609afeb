//! `/metrics` scraped over HTTP as Prometheus scrapes it: per-RPC counts by the code the call really ended with
//! (read from the trailers), latency histograms, the registry's calls to the classifier, and its domain gauges.

use std::sync::Arc;

use tonic::codegen::http;
use township_e2e::{scrape::sample, *};
use township_proto::classifier::v1::{self as cpb, classifier_service_client::ClassifierServiceClient};
use township_proto::registry::v1 as pb;
use township_runtime::{Credential, Principal, Role, auth::Authenticate};

const CHANGSHA: &str = "cities/4301";
const YEAR: i32 = 2023;
const CLASSIFIER: &str = r#"grpc_service="township.classifier.v1.ClassifierService""#;
const CLASSIFY: &str = r#"grpc_method="Classify""#;
const UNARY: &str = r#"grpc_type="unary""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_count_ok_and_invalid_argument_calls_and_show_the_registrys_gauges() {
    scrapes_count_ok_and_invalid_argument_calls_and_show_the_registrys_gauges_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_count_ok_and_invalid_argument_calls_and_show_the_registrys_gauges_on_postgres() {
    scrapes_count_ok_and_invalid_argument_calls_and_show_the_registrys_gauges_on(Backend::Postgres).await;
}

async fn scrapes_count_ok_and_invalid_argument_calls_and_show_the_registrys_gauges_on(backend: Backend) {
    let mut app = TestApp::spawn_on(backend).await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    app.record_generated(&townships, YEAR, 7).await;
    // The registry's worker classifies the cohort: an OK Classify on both sides of the call.
    app.wait_until_current(CHANGSHA, YEAR).await;

    let mut classifier = ClassifierServiceClient::new(
        tonic::transport::Channel::from_shared(app.classifier_url()).unwrap().connect().await.unwrap(),
    );
    let empty = classifier.classify(cpb::ClassifyRequest::default()).await.unwrap_err();
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);

    let text = app.scrape_classifier().await;
    let handled = |code: &str| {
        sample(&text, "grpc_server_handled_total", &[CLASSIFIER, CLASSIFY, UNARY, &format!(r#"grpc_code="{code}""#)])
    };
    assert!(handled("OK").is_some_and(|n| n >= 1.0), "an OK Classify is counted:\n{text}");
    assert_eq!(handled("InvalidArgument"), Some(1.0), "the empty cohort's code is read from the answer:\n{text}");
    let started = sample(&text, "grpc_server_started_total", &[CLASSIFIER, CLASSIFY, UNARY]).unwrap();
    let every_call = sample(&text, "grpc_server_handling_seconds_bucket", &[CLASSIFIER, CLASSIFY, r#"le="+Inf""#]);
    assert_eq!(every_call, Some(started), "every started call is in the histogram:\n{text}");
    assert!(sample(&text, "grpc_server_handling_seconds_bucket", &[CLASSIFIER, CLASSIFY, r#"le="0.005""#]).is_some());

    let text = app.scrape_registry().await;
    let client_ok = sample(&text, "grpc_client_handled_total", &[CLASSIFIER, CLASSIFY, r#"grpc_code="OK""#]);
    assert!(client_ok.is_some_and(|n| n >= 1.0), "the registry's Classify calls are counted:\n{text}");
    assert!(sample(&text, "grpc_client_handling_seconds_count", &[CLASSIFIER, CLASSIFY]).is_some_and(|n| n >= 1.0));
    let imported =
        sample(&text, "grpc_server_handled_total", &[r#"grpc_method="ImportDivisions""#, r#"grpc_code="OK""#, UNARY]);
    assert_eq!(imported, Some(1.0), "{text}");
    assert_eq!(sample(&text, "registry_cohorts", &[r#"state="current""#]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "registry_cohorts", &[r#"state="pending""#]), Some(0.0), "{text}");
    assert_eq!(sample(&text, "registry_cohorts", &[r#"state="dead_letter""#]), Some(0.0), "{text}");
    assert_eq!(sample(&text, "registry_oldest_pending_change_age_seconds", &[]), Some(0.0), "{text}");
    assert!(sample(&text, "registry_audit_head_seq", &[]).is_some_and(|seq| seq > 0.0), "the writes were audited");
    assert_eq!(sample(&text, "registry_authorization_refusals_total", &[]), Some(0.0), "{text}");
    // The test app signs no checkpoints, so there is no age to show.
    assert!(sample(&text, "registry_audit_last_checkpoint_age_seconds", &[]).is_none(), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_stream_is_counted_when_it_starts_and_when_its_caller_leaves() {
    let app = TestApp::spawn().await;
    let mut watcher = app.connect().await;
    let watch = watcher.watch_class_changes(pb::WatchClassChangesRequest { city: CHANGSHA.to_owned() }).await;
    let stream = [r#"grpc_method="WatchClassChanges""#, r#"grpc_type="server_stream""#];
    let text = app.scrape_registry().await;
    assert_eq!(sample(&text, "grpc_server_started_total", &stream), Some(1.0), "{text}");
    assert!(sample(&text, "grpc_server_handled_total", &stream).is_none(), "still open:\n{text}");

    drop(watch);
    drop(watcher);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let text = loop {
        let text = app.scrape_registry().await;
        if sample(&text, "grpc_server_handled_total", &stream).is_some() {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stream's end is never counted:\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let canceled = [stream[0], stream[1], r#"grpc_code="Canceled""#];
    assert_eq!(sample(&text, "grpc_server_handled_total", &canceled), Some(1.0), "{text}");
    app.stop().await;
}

/// Every caller is a viewer of 长沙市 (4301).
struct EveryoneViewsChangsha;

impl Authenticate for EveryoneViewsChangsha {
    fn authenticate(&self, _: &http::HeaderMap, _: &http::Extensions) -> Result<Principal, tonic::Status> {
        Ok(Principal {
            subject: "li.si".to_owned(),
            roles: vec![Role::Viewer],
            jurisdiction: vec!["4301".to_owned()],
            credential: Credential::Token { key_id: "k1".to_owned() },
        })
    }

    fn describe(&self) -> String {
        "every caller views 长沙市".to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_authorization_refuses_is_counted_as_a_refusal_and_as_permission_denied() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    let classifier = TestClassifier::spawn().await;
    let registry =
        TestRegistry::spawn_authenticated(database.url(), &classifier.url(), Arc::new(EveryoneViewsChangsha)).await;
    let elsewhere = "cities/4302/counties/430202/townships/430202001".to_owned();
    let denied = registry.client().await.get_township(pb::GetTownshipRequest { name: elsewhere }).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let text = township_e2e::scrape::metrics(registry.metrics_addr).await;
    assert_eq!(sample(&text, "registry_authorization_refusals_total", &[]), Some(1.0), "{text}");
    let labels = [r#"grpc_method="GetTownship""#, r#"grpc_code="PermissionDenied""#];
    assert_eq!(sample(&text, "grpc_server_handled_total", &labels), Some(1.0), "{text}");
    registry.stop().await;
    classifier.stop().await;
}
