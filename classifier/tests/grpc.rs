//! The classifier over a real loopback socket: classification, errors with their details, health, reflection.

use std::{net::SocketAddr, time::Duration};

use tokio::sync::oneshot;
use tonic::{Code, transport::Channel};
use tonic_types::StatusExt;
use township_classifier::{ClassifierApi, SERVICE_NAME, domain::Policy};
use township_proto::classifier::v1::{self as pb, classifier_service_client::ClassifierServiceClient};
use township_runtime::{Credential, GrpcServer, Principal, Role, auth::Authenticate};

const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A classifier serving on 127.0.0.1:0; dropping it shuts the server down.
struct TestClassifier {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestClassifier {
    async fn spawn() -> Self {
        Self::spawn_authenticating(None).await
    }

    /// With `authenticator` in front of the routes instead of the default (authentication disabled).
    async fn spawn_authenticating(authenticator: Option<std::sync::Arc<dyn Authenticate>>) -> Self {
        if std::env::var_os("TEST_LOG").is_some() {
            township_runtime::init_tracing(township_runtime::LogFormat::Text, "debug");
        }
        let mut server = GrpcServer::bind("127.0.0.1:0".parse().unwrap(), SERVICE_NAME).await.unwrap();
        if let Some(authenticator) = authenticator {
            server = server.authenticate_with(authenticator);
        }
        let addr = server.local_addr();
        let routes = tonic::service::Routes::new(
            ClassifierApi::new(Policy::builtin_default(), 100_000).into_server(MAX_MESSAGE_BYTES),
        );
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(
            routes,
            async {
                let _ = signal.await;
            },
            Duration::from_secs(5),
        ));
        Self { addr, shutdown: Some(shutdown), task: Some(task) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.url()).unwrap().connect().await.unwrap()
    }

    async fn client(&self) -> ClassifierServiceClient<Channel> {
        ClassifierServiceClient::new(self.channel().await)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

fn township(id: &str, name: &str, population: f64, fiscal_revenue: f64, land_area: f64) -> pb::TownshipInput {
    pb::TownshipInput {
        id: id.to_owned(),
        name: name.to_owned(),
        kind: pb::TownshipKind::Town.into(),
        indicators: Some(pb::IndicatorValues { population, fiscal_revenue, land_area }),
    }
}

/// Three townships whose means are population 4, revenue 2,000, area 100.
fn small_cohort() -> Vec<pb::TownshipInput> {
    vec![
        township("430102001", "甲镇", 2.0, 1000.0, 50.0),
        township("430102002", "乙镇", 4.0, 2000.0, 100.0),
        township("430102003", "丙镇", 6.0, 3000.0, 150.0),
    ]
}

#[tokio::test]
async fn classify_returns_every_township_ranked_with_classes_and_the_default_policy_fingerprint() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;

    let response = client
        .classify(pb::ClassifyRequest { policy: None, townships: small_cohort(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();

    // Each indicator is 0.5, 1 and 1.5 times its mean, so the scores are 50, 100 and 150.
    let summary: Vec<_> = response.results.iter().map(|r| (r.id.as_str(), r.rank, r.township_class)).collect();
    assert_eq!(summary, [("430102003", 1, 1), ("430102002", 2, 2), ("430102001", 3, 3)]);
    let scores: Vec<_> = response.results.iter().map(|r| r.score).collect();
    for (score, expected) in scores.iter().zip([150.0, 100.0, 50.0]) {
        assert!((score - expected).abs() < 1e-9, "score {score}, expected {expected}");
    }
    let middle = &response.results[1];
    assert_eq!(middle.points_to_next_class_up, Some(20.0));
    assert_eq!(middle.points_above_next_class_down, Some(20.0));
    let contributions = middle.contributions.unwrap();
    assert!((contributions.population - 50.0).abs() < 1e-9, "5/10 of an index of 100");
    assert!(middle.explanation.contains("二类"), "{}", middle.explanation);

    let statistics = response.statistics.unwrap();
    assert_eq!(statistics.township_count, 3);
    let counts: Vec<_> = statistics.class_counts.iter().map(|c| (c.township_class, c.count)).collect();
    assert_eq!(counts, [(1, 1), (2, 1), (3, 1)]);
    assert_eq!(response.policy_fingerprint, Policy::builtin_default().fingerprint());
    server.stop().await;
}

#[tokio::test]
async fn a_policy_in_the_request_overrides_the_default_and_unset_fields_keep_default_values() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;
    let policy = pb::Policy {
        name: "quota-test".to_owned(),
        banding: pb::Banding::RankQuota.into(),
        rank_quota: Some(pb::RankQuota { class1_share: 0.0, class2_share: 1.0 }),
        ..Default::default()
    };

    let response = client
        .classify(pb::ClassifyRequest { policy: Some(policy), townships: small_cohort(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();

    assert!(response.results.iter().all(|r| r.township_class == 2), "a class-2 share of 100 % puts all in class 2");
    let applied = response.policy.unwrap();
    assert_eq!(applied.name, "quota-test");
    assert_eq!(applied.weights, Some(pb::IndicatorValues { population: 5.0, fiscal_revenue: 3.0, land_area: 2.0 }));
    assert_ne!(response.policy_fingerprint, Policy::builtin_default().fingerprint());
    server.stop().await;
}

#[tokio::test]
async fn bad_townships_are_invalid_argument_with_a_field_violation_naming_each_township() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;
    let mut townships = small_cohort();
    townships[1].indicators.as_mut().unwrap().population = f64::NAN;
    townships[2].indicators.as_mut().unwrap().land_area = -3.0;
    townships.push(township("430102001", "重复镇", 1.0, 1.0, 1.0));

    let status =
        client.classify(pb::ClassifyRequest { policy: None, townships, ..Default::default() }).await.unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("430102002"), "the message names the township: {}", status.message());
    let details = status.get_details_bad_request().expect("BadRequest details");
    let fields: Vec<_> = details.field_violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["townships[1].indicators.population", "townships[2].indicators.land_area", "townships[3].id"]);
    assert!(details.field_violations[1].description.contains("430102003"));
    assert!(details.field_violations[2].description.contains("appears more than once"));
    server.stop().await;
}

#[tokio::test]
async fn an_empty_cohort_and_a_missing_kind_are_invalid_argument() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;

    let empty = client.classify(pb::ClassifyRequest::default()).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    assert_eq!(empty.get_details_bad_request().unwrap().field_violations[0].field, "townships");

    let mut townships = small_cohort();
    townships[0].kind = pb::TownshipKind::Unspecified.into();
    let no_kind =
        client.classify(pb::ClassifyRequest { policy: None, townships, ..Default::default() }).await.unwrap_err();
    assert_eq!(no_kind.code(), Code::InvalidArgument);
    let violation = &no_kind.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "townships[0].kind");
    assert!(violation.description.contains("430102001"));
    server.stop().await;
}

#[tokio::test]
async fn validate_policy_lists_every_problem_without_failing_the_call() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;
    let policy = pb::Policy {
        weights: Some(pb::IndicatorValues { population: 0.0, fiscal_revenue: 0.0, land_area: 0.0 }),
        score_thresholds: Some(pb::ScoreThresholds { class1_min_score: 80.0, class2_min_score: 120.0 }),
        ..Default::default()
    };

    let answer = client.validate_policy(pb::ValidatePolicyRequest { policy: Some(policy) }).await.unwrap().into_inner();

    assert!(!answer.valid);
    let fields: Vec<_> = answer.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["policy.weights", "policy.score_thresholds"]);
    assert!(answer.policy.is_none());

    let default = client.get_default_policy(pb::GetDefaultPolicyRequest {}).await.unwrap().into_inner();
    let check =
        client.validate_policy(pb::ValidatePolicyRequest { policy: default.policy }).await.unwrap().into_inner();
    assert!(check.valid, "{:?}", check.violations);
    assert_eq!(check.policy_fingerprint, default.policy_fingerprint);
    server.stop().await;
}

#[tokio::test]
async fn a_whole_country_cohort_fits_in_one_call() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;
    let townships: Vec<_> = (0..41_352u32)
        .map(|i| {
            let x = f64::from(i % 997 + 1);
            township(&format!("{:09}", 100_000_000 + i), "某镇", x / 100.0, x * 7.0, x / 3.0)
        })
        .collect();

    let response = client
        .classify(pb::ClassifyRequest { policy: None, townships, ..Default::default() })
        .await
        .unwrap()
        .into_inner();

    assert_eq!(response.results.len(), 41_352);
    let ranks: Vec<u32> = response.results.iter().map(|r| r.rank).collect();
    assert!(ranks.iter().copied().eq(1..=41_352), "results come in rank order with unique ranks");
    server.stop().await;
}

#[tokio::test]
async fn health_reports_serving_for_the_service_and_the_server() {
    let server = TestClassifier::spawn().await;
    let url = server.url();

    township_runtime::check_health(&url, SERVICE_NAME, Duration::from_secs(5)).await.unwrap();
    township_runtime::check_health(&url, "", Duration::from_secs(5)).await.unwrap();
    let unknown = township_runtime::check_health(&url, "no.such.Service", Duration::from_secs(5)).await;
    assert!(unknown.is_err(), "an unknown service is not reported healthy");
    server.stop().await;
}

#[tokio::test]
async fn reflection_lists_the_classifier_and_describes_its_file() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let server = TestClassifier::spawn().await;
    let mut client = ServerReflectionClient::new(server.channel().await);
    let requests =
        [MessageRequest::ListServices(String::new()), MessageRequest::FileContainingSymbol(SERVICE_NAME.to_owned())]
            .map(|message| ServerReflectionRequest { host: String::new(), message_request: Some(message) });

    let mut answers = client.server_reflection_info(tokio_stream::iter(requests)).await.unwrap().into_inner();

    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list first");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&SERVICE_NAME), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
    let Some(MessageResponse::FileDescriptorResponse(files)) =
        answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected the file descriptor of the classifier");
    };
    assert!(!files.file_descriptor_proto.is_empty());
    server.stop().await;
}

/// Every caller is the auditor `wang.wu`.
struct EveryoneIsAnAuditor;

impl Authenticate for EveryoneIsAnAuditor {
    fn authenticate(
        &self,
        _: &tonic::codegen::http::HeaderMap,
        _: &tonic::codegen::http::Extensions,
    ) -> Result<Principal, tonic::Status> {
        Ok(Principal {
            subject: "wang.wu".to_owned(),
            roles: vec![Role::Auditor],
            jurisdiction: vec!["4301".to_owned()],
            credential: Credential::Token { key_id: "k1".to_owned() },
        })
    }

    fn describe(&self) -> String {
        "every caller is an auditor".to_owned()
    }
}

#[tokio::test]
async fn an_auditor_may_call_none_of_the_classifier_rpcs() {
    let classifier = TestClassifier::spawn_authenticating(Some(std::sync::Arc::new(EveryoneIsAnAuditor))).await;
    let mut client = classifier.client().await;
    let refusals = [
        ("Classify", client.classify(pb::ClassifyRequest::default()).await.map(drop)),
        ("ValidatePolicy", client.validate_policy(pb::ValidatePolicyRequest::default()).await.map(drop)),
        ("GetDefaultPolicy", client.get_default_policy(pb::GetDefaultPolicyRequest {}).await.map(drop)),
    ];
    for (method, outcome) in refusals {
        let status = outcome.expect_err(method);
        assert_eq!(status.code(), Code::PermissionDenied, "{method}: {status:?}");
        assert!(status.message().contains(&format!("wang.wu (roles: auditor) may not call {method}")), "{status:?}");
    }
    classifier.stop().await;
}

/// AIP-157: the BASIC view carries the FULL view's numbers, in the request's order, without names or text;
/// unset is FULL; an unknown view is INVALID_ARGUMENT naming the field; the same request gives the same bytes.
#[tokio::test]
async fn the_basic_view_carries_the_full_views_numbers_in_request_order_without_text() {
    let server = TestClassifier::spawn().await;
    let mut client = server.client().await;
    // Out of id and rank order, so that request order is not an accident of either.
    let mut townships = small_cohort();
    townships.swap(0, 2);
    townships.push(township("430102004", "丁镇", 3.0, 2500.0, 60.0));
    let ask = |view: pb::ClassificationView| pb::ClassifyRequest {
        policy: None,
        townships: townships.clone(),
        view: view.into(),
    };
    let full = client.classify(ask(pb::ClassificationView::Full)).await.unwrap().into_inner();
    let unset = client.classify(ask(pb::ClassificationView::Unspecified)).await.unwrap().into_inner();
    assert_eq!(full, unset, "unset is FULL");
    assert!(full.columns.is_none() && full.results.iter().all(|r| !r.explanation.is_empty()));

    let basic = client.classify(ask(pb::ClassificationView::Basic)).await.unwrap().into_inner();
    assert!(basic.results.is_empty(), "no names, no explanations");
    let columns = basic.columns.clone().expect("BASIC answers in columns");
    for (position, input) in townships.iter().enumerate() {
        let result = full.results.iter().find(|r| r.id == input.id).unwrap();
        let indices = result.indices.unwrap();
        assert_eq!(columns.score[position].to_bits(), result.score.to_bits(), "{}", input.id);
        assert_eq!(columns.rank[position], result.rank);
        assert_eq!(columns.township_class[position], result.township_class);
        assert_eq!(
            [
                columns.index_population[position],
                columns.index_fiscal_revenue[position],
                columns.index_land_area[position]
            ],
            [indices.population, indices.fiscal_revenue, indices.land_area]
        );
    }
    assert_eq!((&basic.statistics, &basic.policy_fingerprint), (&full.statistics, &full.policy_fingerprint));
    let again = client.classify(ask(pb::ClassificationView::Basic)).await.unwrap().into_inner();
    assert_eq!(prost::Message::encode_to_vec(&again), prost::Message::encode_to_vec(&basic), "byte-identical");

    let status =
        client.classify(pb::ClassifyRequest { policy: None, townships: small_cohort(), view: 7 }).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        status.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["view"]);
    server.stop().await;
}
