//! End-to-end scenarios: the registry and the classifier on loopback sockets, real gRPC between them, real
//! SQLite files (and, for the `_on_postgres` twins, a PostgreSQL database) — the registry's users' view of
//! DESIGN.md §4–§5.

use std::collections::BTreeMap;

use tonic::Code;
use tonic_types::StatusExt;
use township_e2e::*;
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;

const CHANGSHA: &str = "cities/4301";
const YEAR: i32 = 2023;
/// 长沙市 has 172 township-level rows in the 2023 division codes.
const CHANGSHA_TOWNSHIPS: usize = 172;

/// Both services with 长沙市 imported and classified (sample indicators, seed 7); returns its townships.
async fn changsha_classified() -> (TestApp, Vec<pb::Township>) {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    app.record_generated(&townships, YEAR, 7).await;
    app.wait_until_current(CHANGSHA, YEAR).await;
    (app, townships)
}

fn class_of(classes: &[pb::TownshipClass], township: &str) -> u32 {
    classes.iter().find(|c| c.township == township).map(|c| c.effective_class).expect("township classified")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_changsha_and_recording_indicators_assigns_every_township_a_class() {
    importing_changsha_and_recording_indicators_assigns_every_township_a_class_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_changsha_and_recording_indicators_assigns_every_township_a_class_on_postgres() {
    importing_changsha_and_recording_indicators_assigns_every_township_a_class_on(Backend::Postgres).await;
}

async fn importing_changsha_and_recording_indicators_assigns_every_township_a_class_on(backend: Backend) {
    let mut app = TestApp::spawn_on(backend).await;

    let counts = app.import("4301").await;
    assert_eq!((counts.cities, counts.townships as usize), (1, CHANGSHA_TOWNSHIPS));
    let townships = app.townships(CHANGSHA).await;
    assert_eq!(townships.len(), CHANGSHA_TOWNSHIPS);
    let yuelu = townships.iter().find(|t| t.display_name == "岳麓街道").expect("岳麓街道 imported");
    assert_eq!(yuelu.kind(), cpb::TownshipKind::Subdistrict);

    app.record_generated(&townships, YEAR, 7).await;
    let status = app.wait_until_current(CHANGSHA, YEAR).await;
    assert!(status.last_run.starts_with("cities/4301/classificationRuns/"), "{status:?}");

    let classes = app.classes(CHANGSHA, YEAR).await;
    assert_eq!(classes.len(), CHANGSHA_TOWNSHIPS);
    let mut counts = BTreeMap::new();
    for class in &classes {
        assert!((1..=3).contains(&class.effective_class), "{class:?}");
        assert_eq!(class.effective_class, class.computed_class);
        *counts.entry(class.effective_class).or_insert(0) += 1;
    }
    assert_eq!(counts.len(), 3, "generated indicators spread Changsha over all three classes: {counts:?}");

    let run = app
        .client
        .get_classification_run(pb::GetClassificationRunRequest { name: status.last_run.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.inputs.len(), CHANGSHA_TOWNSHIPS);
    assert_eq!(run.result.unwrap().results.len(), CHANGSHA_TOWNSHIPS);
    assert_eq!(run.policy_version, 0, "the repository's default policy until the city sets its own");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_one_townships_indicators_reclassifies_the_cohort_and_streams_the_moves() {
    let (mut app, townships) = changsha_classified().await;
    let before = app.classes(CHANGSHA, YEAR).await;
    let target = before.iter().find(|c| c.effective_class == 3).expect("a class-3 township").township.clone();

    let mut watcher = app.connect().await;
    let mut changes = watcher
        .watch_class_changes(pb::WatchClassChangesRequest { city: CHANGSHA.to_owned() })
        .await
        .unwrap()
        .into_inner();
    app.client
        .record_indicators(as_actor(
            "statistician",
            pb::RecordIndicatorsRequest {
                observation: Some(pb::IndicatorObservation {
                    township: target.clone(),
                    data_year: YEAR,
                    values: Some(cpb::IndicatorValues { population: 15.0, fiscal_revenue: 50_000.0, land_area: 600.0 }),
                    source: "corrected figures".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap();

    let moved = tokio::time::timeout(PATIENCE, async {
        loop {
            let change = changes.message().await.unwrap().expect("stream open").change.unwrap();
            if change.township == target {
                return change;
            }
        }
    })
    .await
    .expect("the target's move is streamed");
    assert_eq!((moved.previous_class, moved.new_class), (3, 1));
    app.wait_until_current(CHANGSHA, YEAR).await;
    let after = app.classes(CHANGSHA, YEAR).await;
    assert_eq!(class_of(&after, &target), 1);
    assert_eq!(after.len(), townships.len(), "the whole cohort was reclassified, not one township");
    let history = app
        .client
        .list_class_history(pb::ListClassHistoryRequest {
            township: target.clone(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let moves: Vec<_> = history.entries.iter().map(|e| (e.previous_class, e.new_class)).collect();
    assert_eq!(moves, [(3, 1), (0, 3)], "newest first, first classification included");
    let observations = app
        .client
        .list_indicator_observations(pb::ListIndicatorObservationsRequest {
            parent: target.clone(),
            data_year: YEAR,
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(observations.observations.len(), 2, "the earlier observation is kept as history");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_succeed_while_the_classifier_is_down_and_the_backlog_drains_when_it_returns() {
    let (mut app, townships) = changsha_classified().await;

    app.stop_classifier().await;
    for (i, township) in townships.iter().take(20).enumerate() {
        app.client
            .record_indicators(pb::RecordIndicatorsRequest {
                observation: Some(pb::IndicatorObservation {
                    township: township.name.clone(),
                    data_year: YEAR,
                    values: Some(cpb::IndicatorValues {
                        population: 1.0 + i as f64,
                        fiscal_revenue: 1000.0 * (i + 1) as f64,
                        land_area: 30.0,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .expect("writes succeed while the classifier is down");
    }
    let status = app
        .client
        .get_cohort_status(pb::GetCohortStatusRequest { city: CHANGSHA.to_owned(), data_year: YEAR })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state(), pb::CohortState::Pending);

    app.restart_classifier().await;
    app.wait_until_current(CHANGSHA, YEAR).await;
    let run_name = app
        .client
        .get_cohort_status(pb::GetCohortStatusRequest { city: CHANGSHA.to_owned(), data_year: YEAR })
        .await
        .unwrap()
        .into_inner()
        .last_run;
    let run = app
        .client
        .get_classification_run(pb::GetClassificationRunRequest { name: run_name })
        .await
        .unwrap()
        .into_inner();
    let last_written = run.inputs.iter().find(|input| input.id == townships[19].code).expect("in the run");
    assert_eq!(last_written.indicators.unwrap().population, 20.0, "the run used the latest write");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restarted_with_work_pending_finishes_it() {
    a_registry_restarted_with_work_pending_finishes_it_on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_restarted_with_work_pending_finishes_it_on_postgres() {
    a_registry_restarted_with_work_pending_finishes_it_on(Backend::Postgres).await;
}

async fn a_registry_restarted_with_work_pending_finishes_it_on(backend: Backend) {
    let mut app = TestApp::spawn_on(backend).await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;

    app.stop_classifier().await;
    app.record_generated(&townships, YEAR, 11).await;
    app.crash_registry().await;

    app.restart_classifier().await;
    app.restart_registry().await;
    app.wait_until_current(CHANGSHA, YEAR).await;
    assert_eq!(app.classes(CHANGSHA, YEAR).await.len(), CHANGSHA_TOWNSHIPS);

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_indicators_are_refused_with_the_field_and_township_named_and_nothing_is_stored() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    let client = &mut app.client;
    let good = |t: &pb::Township| pb::IndicatorObservation {
        township: t.name.clone(),
        data_year: YEAR,
        values: Some(cpb::IndicatorValues { population: 2.0, fiscal_revenue: 900.0, land_area: 40.0 }),
        ..Default::default()
    };
    let mut bad = good(&townships[1]);
    bad.values.as_mut().unwrap().fiscal_revenue = f64::NAN;

    let status = client
        .batch_record_indicators(pb::BatchRecordIndicatorsRequest {
            observations: vec![good(&townships[0]), bad],
            validate_only: false,
            ..Default::default()
        })
        .await
        .unwrap_err();

    assert_eq!(status.code(), Code::InvalidArgument);
    let violation = &status.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "observations[1].values.fiscal_revenue");
    assert!(violation.description.contains(&townships[1].code), "{}", violation.description);
    let stored = client
        .list_indicator_observations(pb::ListIndicatorObservationsRequest {
            parent: townships[0].name.clone(),
            data_year: 0,
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(stored.observations.is_empty(), "the good half of a refused batch is not stored");

    let unknown = client
        .get_township(pb::GetTownshipRequest { name: "cities/4301/counties/430102/townships/430102999".to_owned() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    app.stop().await;
}

async fn create_office(
    client: &mut Client,
    township: &str,
    name: &str,
    kind: pb::InstitutionKind,
) -> Result<pb::Institution, tonic::Status> {
    client
        .create_institution(as_actor(
            "bianban",
            pb::CreateInstitutionRequest {
                parent: township.to_owned(),
                institution: Some(pb::Institution {
                    kind: kind.into(),
                    display_name: name.to_owned(),
                    staffing_quota: 6,
                    approving_document: "长编办发〔2024〕1号".to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn create_post(
    client: &mut Client,
    township: &str,
    role: &str,
    mandated_role: pb::MandatedRole,
) -> Result<pb::LeadershipPost, tonic::Status> {
    client
        .create_leadership_post(as_actor(
            "bianban",
            pb::CreateLeadershipPostRequest {
                parent: township.to_owned(),
                post: Some(pb::LeadershipPost {
                    role: role.to_owned(),
                    mandated_role: mandated_role.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_rules_refuse_a_fourth_plaque_a_seventh_office_and_a_post_over_the_class_quota() {
    let (mut app, _) = changsha_classified().await;
    let classes = app.classes(CHANGSHA, YEAR).await;
    let township = classes.iter().find(|c| c.effective_class == 3).expect("a class-3 township").township.clone();
    let mut client = app.client.clone();

    // Class 3 allows 4–5 offices (default policy); the 6th is refused.
    let mut offices = Vec::new();
    for name in
        ["党政办公室", "经济发展办公室", "社会事务办公室", "自然资源和生态环境办公室", "社会治安和应急管理办公室"]
    {
        offices.push(
            create_office(&mut client, &township, name, pb::InstitutionKind::PartyGovernmentOffice).await.unwrap(),
        );
    }
    let refused = create_office(&mut client, &township, "综合办公室", pb::InstitutionKind::PartyGovernmentOffice)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains('5'), "names the limit: {}", refused.message());

    for i in 1..=3 {
        client
            .create_plaque(pb::CreatePlaqueRequest {
                parent: offices[0].name.clone(),
                plaque: Some(pb::Plaque { display_name: format!("牌子{i}"), ..Default::default() }),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let fourth = client
        .create_plaque(pb::CreatePlaqueRequest {
            parent: offices[1].name.clone(),
            plaque: Some(pb::Plaque { display_name: "第四块牌子".to_owned(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fourth.code(), Code::FailedPrecondition);
    assert!(fourth.message().contains("牌子1"), "names what exists: {}", fourth.message());

    for i in 0..9 {
        create_post(&mut client, &township, &format!("副镇长{i}"), pb::MandatedRole::Unspecified).await.unwrap();
    }
    let tenth = create_post(&mut client, &township, "副镇长9", pb::MandatedRole::Unspecified).await.unwrap_err();
    assert_eq!(tenth.code(), Code::FailedPrecondition);
    assert!(tenth.message().contains('9'), "names the quota: {}", tenth.message());

    // What the limits accepted, compliance does not call over them; the plaques lack an approving document.
    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: township.clone() })
        .await
        .unwrap()
        .into_inner();
    let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
    for over in ["offices.count", "offices.mandated", "plaques.max", "posts.quota"] {
        assert!(!rules.contains(&over), "{over}: {rules:?}");
    }
    assert_eq!(rules.iter().filter(|r| **r == "plaques.approving_document_missing").count(), 3, "{rules:?}");

    let audit = client
        .list_audit_events(pb::ListAuditEventsRequest {
            resource_prefix: township.clone(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        audit.events.iter().any(|e| e.action == "CreateInstitution" && e.actor.ends_with("; note: bianban")),
        "{:?}",
        audit.events
    );

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_downgrade_leaves_posts_over_the_new_quota_as_a_compliance_finding() {
    let (mut app, _) = changsha_classified().await;
    let classes = app.classes(CHANGSHA, YEAR).await;
    let township = classes.iter().find(|c| c.effective_class == 2).expect("a class-2 township").township.clone();
    let mut client = app.client.clone();
    let roles = [
        ("党委副书记", pb::MandatedRole::PartyBuildingDeputySecretary),
        ("纪委书记", pb::MandatedRole::DisciplineInspectionSecretary),
        ("组织委员", pb::MandatedRole::OrganisationCommitteeMember),
    ];
    for (role, mandated) in roles {
        create_post(&mut client, &township, role, mandated).await.unwrap();
    }
    for i in 0..8 {
        create_post(&mut client, &township, &format!("副职{i}"), pb::MandatedRole::Unspecified).await.unwrap();
    }

    client
        .record_indicators(pb::RecordIndicatorsRequest {
            observation: Some(pb::IndicatorObservation {
                township: township.clone(),
                data_year: YEAR,
                values: Some(cpb::IndicatorValues { population: 0.5, fiscal_revenue: 200.0, land_area: 5.0 }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    app.wait_until_current(CHANGSHA, YEAR).await;
    let class = client
        .get_township_class(pb::GetTownshipClassRequest { township: township.clone(), data_year: YEAR })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((class.previous_class, class.effective_class), (2, 3));

    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: township.clone() })
        .await
        .unwrap()
        .into_inner();
    let quota = report.findings.iter().find(|f| f.rule == "posts.quota").expect("posts.quota finding");
    assert_eq!(quota.severity(), pb::Severity::Error);
    assert!(quota.message.contains("11 leadership posts; class 3 is allowed 9"), "{}", quota.message);
    assert!(!report.findings.iter().any(|f| f.rule == "posts.mandated_role"), "all three mandated roles are filled");

    app.stop().await;
}
