//! A city's own policy, manual overrides and what-if previews, end to end.

use tonic::Code;
use tonic_types::StatusExt;
use township_e2e::*;
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;

const CHANGSHA: &str = "cities/4301";
const YEAR: i32 = 2023;

/// Both services with 长沙市 imported and classified (sample indicators, seed 7).
async fn classified_changsha() -> TestApp {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    app.record_generated(&townships, YEAR, 7).await;
    app.wait_until_current(CHANGSHA, YEAR).await;
    app
}

/// 长沙市's classification runs (fewer than a page).
async fn run_count(client: &mut Client) -> usize {
    let request =
        pb::ListClassificationRunsRequest { parent: CHANGSHA.to_owned(), page_size: 100, page_token: String::new() };
    client.list_classification_runs(request).await.unwrap().into_inner().runs.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_policy_is_versioned_and_reclassifies_the_whole_cohort() {
    let mut app = classified_changsha().await;
    let mut client = app.client.clone();

    let effective = client
        .get_effective_policy(pb::GetEffectivePolicyRequest { parent: CHANGSHA.to_owned() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((effective.version, effective.name.as_str()), (0, "cities/4301/policies/default"));

    // The top 10 % class 1 and the next 30 % class 2, by rank.
    let quota = cpb::Policy {
        name: "changsha-quota".to_owned(),
        version: "2024.2".to_owned(),
        banding: cpb::Banding::RankQuota.into(),
        rank_quota: Some(cpb::RankQuota { class1_share: 0.1, class2_share: 0.3 }),
        ..Default::default()
    };
    let stored = client
        .set_city_policy(as_actor(
            "bianban",
            pb::SetCityPolicyRequest { parent: CHANGSHA.to_owned(), policy: Some(quota), ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((stored.version, stored.name.as_str()), (1, "cities/4301/policies/1"));

    let status = app.wait_until_current(CHANGSHA, YEAR).await;
    let run = client
        .get_classification_run(pb::GetClassificationRunRequest { name: status.last_run })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(run.policy_version, 1);
    assert_eq!(run.policy_fingerprint, stored.policy_fingerprint, "the classifier echoed the stored policy");
    let classes = app.classes(CHANGSHA, YEAR).await;
    let count = |class| classes.iter().filter(|c| c.effective_class == class).count();
    // 172 townships: round(17.2) = 17 in class 1, round(68.8) = 69 in classes 1–2.
    assert_eq!((count(1), count(2), count(3)), (17, 52, 103));

    let bad = client
        .set_city_policy(pb::SetCityPolicyRequest {
            parent: CHANGSHA.to_owned(),
            policy: Some(cpb::Policy {
                score_thresholds: Some(cpb::ScoreThresholds { class1_min_score: 80.0, class2_min_score: 120.0 }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(bad.get_details_bad_request().unwrap().field_violations[0].field, "policy.score_thresholds");

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_sets_the_effective_class_and_keeps_the_computed_one_beside_it() {
    let mut app = classified_changsha().await;
    let mut client = app.client.clone();
    let classes = app.classes(CHANGSHA, YEAR).await;
    let township = classes.iter().find(|c| c.computed_class == 3).expect("a class-3 township").township.clone();

    let overridden = client
        .set_class_override(as_actor(
            "bianban",
            pb::SetClassOverrideRequest {
                township: township.clone(),
                data_year: YEAR,
                township_class: 2,
                reason: "重点镇，按二类管理".to_owned(),
                document_number: "长编办发〔2024〕12号".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((overridden.effective_class, overridden.computed_class), (2, 3));
    let override_record = overridden.r#override.expect("the override is returned");
    assert_eq!(
        (override_record.document_number.as_str(), override_record.set_by.as_str()),
        ("长编办发〔2024〕12号", "anonymous (authentication disabled); note: bianban")
    );

    let history = client
        .list_class_history(pb::ListClassHistoryRequest {
            township: township.clone(),
            page_size: 10,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((history.entries[0].cause.as_str(), history.entries[0].new_class), ("override", 2));

    let missing_document = client
        .set_class_override(pb::SetClassOverrideRequest {
            township: township.clone(),
            data_year: YEAR,
            township_class: 1,
            reason: "理由".to_owned(),
            document_number: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing_document.code(), Code::InvalidArgument);
    assert_eq!(missing_document.get_details_bad_request().unwrap().field_violations[0].field, "document_number");

    let cleared = client
        .clear_class_override(pb::ClearClassOverrideRequest { township: township.clone(), data_year: YEAR })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cleared.effective_class, cleared.computed_class), (3, 3));
    assert!(cleared.r#override.is_none());

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_shows_the_moves_a_change_would_make_and_stores_nothing() {
    let mut app = classified_changsha().await;
    let mut client = app.client.clone();
    let classes = app.classes(CHANGSHA, YEAR).await;
    let township = classes.iter().find(|c| c.computed_class == 3).expect("a class-3 township").township.clone();
    let runs_before = run_count(&mut client).await;

    let preview = client
        .preview_classification(pb::PreviewClassificationRequest {
            city: CHANGSHA.to_owned(),
            data_year: YEAR,
            changed_indicators: vec![pb::IndicatorObservation {
                township: township.clone(),
                values: Some(cpb::IndicatorValues { population: 15.0, fiscal_revenue: 50_000.0, land_area: 600.0 }),
                ..Default::default()
            }],
            policy: None,
        })
        .await
        .unwrap()
        .into_inner();

    let moved = preview.changes.iter().find(|c| c.township == township).expect("the changed township moves");
    assert_eq!((moved.previous_class, moved.new_class), (3, 1));
    assert_eq!(preview.result.unwrap().results.len(), classes.len());
    let after = client
        .get_township_class(pb::GetTownshipClassRequest { township: township.clone(), data_year: YEAR })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.effective_class, 3, "a preview changes nothing");
    let runs_after = run_count(&mut client).await;
    assert_eq!(runs_after, runs_before, "a preview stores no run");

    app.stop().await;
}

/// The effective policy of 长沙市 with `change` applied and no provenance of its own (the default's list then
/// applies to every figure left at its value).
async fn changed_policy(client: &mut Client, change: impl FnOnce(&mut cpb::Policy)) -> cpb::Policy {
    let request = pb::GetEffectivePolicyRequest { parent: CHANGSHA.to_owned() };
    let mut policy = client.get_effective_policy(request).await.unwrap().into_inner().policy.unwrap();
    policy.figure_provenance.clear();
    change(&mut policy);
    policy
}

async fn report_of(client: &mut Client, scope: &str) -> Vec<pb::Finding> {
    let request = pb::GetComplianceReportRequest { scope: scope.to_owned() };
    client.get_compliance_report(request).await.unwrap().into_inner().findings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_policy_departing_from_the_document_needs_a_document_number_and_inferred_figures_are_marked() {
    let mut app = classified_changsha().await;
    let mut client = app.client.clone();
    const DOCUMENT: &str = "长编办发〔2024〕12号";

    // 4 plaques per township departs from the document's 3; 15 posts for class 1 replaces an inferred figure.
    let departing = changed_policy(&mut client, |policy| {
        policy.max_plaques_per_township = Some(4);
        policy.class_limits[0].leadership_posts = 15;
    })
    .await;
    let refused = client
        .set_city_policy(pb::SetCityPolicyRequest {
            parent: CHANGSHA.to_owned(),
            policy: Some(departing.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let violation = &refused.get_details_bad_request().unwrap().field_violations[0];
    assert_eq!(violation.field, "document_number");
    assert!(violation.description.contains("4 plaques per township (the document: at most 3)"), "{violation:?}");

    let stored = client
        .set_city_policy(pb::SetCityPolicyRequest {
            parent: CHANGSHA.to_owned(),
            policy: Some(departing),
            document_number: DOCUMENT.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.document_number, DOCUMENT);
    app.wait_until_current(CHANGSHA, YEAR).await;

    // A class 1 township with 14 posts: within the city's 15.
    let classes = app.classes(CHANGSHA, YEAR).await;
    let township = classes.iter().find(|c| c.effective_class == 1).expect("a class-1 township").township.clone();
    for n in 0..14 {
        let post = pb::LeadershipPost { role: format!("副镇长{n}"), ..Default::default() };
        let request =
            pb::CreateLeadershipPostRequest { parent: township.clone(), post: Some(post), ..Default::default() };
        client.create_leadership_post(request).await.unwrap();
    }
    let findings = report_of(&mut client, &township).await;
    let deviations: Vec<_> = findings.iter().filter(|f| f.rule == "policy.city_deviation").collect();
    assert_eq!(deviations.len(), 1, "once per report: {findings:?}");
    assert_eq!((deviations[0].resource.as_str(), deviations[0].township.as_str()), (CHANGSHA, ""));
    assert!(deviations[0].message.contains(DOCUMENT) && deviations[0].message.contains("4 plaques"), "{deviations:?}");
    assert!(!findings.iter().any(|f| f.rule == "posts.quota"), "{findings:?}");
    let city_report = report_of(&mut client, CHANGSHA).await;
    assert_eq!(city_report.iter().filter(|f| f.rule == "policy.city_deviation").count(), 1);

    // Back to the inferred 13: the township's 14 posts are a finding that rests on it.
    let inferred = changed_policy(&mut client, |policy| {
        policy.max_plaques_per_township = Some(4);
        policy.class_limits[0].leadership_posts = 13;
    })
    .await;
    let request = pb::SetCityPolicyRequest {
        parent: CHANGSHA.to_owned(),
        policy: Some(inferred),
        document_number: DOCUMENT.to_owned(),
        ..Default::default()
    };
    let stored = client.set_city_policy(request).await.unwrap().into_inner();
    let listed = &stored.policy.unwrap().figure_provenance;
    assert!(listed.iter().any(|f| f.field == "class_limits[class=1].leadership_posts" && !f.verified), "{listed:?}");
    let findings = report_of(&mut client, &township).await;
    let quota = findings.iter().find(|f| f.rule == "posts.quota").expect("14 posts over class 1's 13");
    assert!(quota.inferred && quota.message.contains("推定值，未经核实"), "{quota:?}");
    let mandated = findings.iter().find(|f| f.rule == "posts.mandated_role").expect("no mandated role is set");
    assert!(!mandated.inferred, "{mandated:?}");

    app.stop().await;
}
