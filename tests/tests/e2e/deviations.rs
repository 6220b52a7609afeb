//! Approved deviations end to end (issue 11 §2): a county's approved figure for offices.count raises the
//! write-time limit (the next refusal names its 文号) and turns the compliance finding into an approved exception.

use tonic::Code;
use township_e2e::*;
use township_proto::registry::v1 as pb;

const DOCUMENT: &str = "长编发〔2025〕7号";

async fn create_office(client: &mut Client, township: &str, n: usize) -> Result<pb::Institution, tonic::Status> {
    let institution = pb::Institution {
        kind: pb::InstitutionKind::PartyGovernmentOffice.into(),
        display_name: format!("专项工作办公室{n}"),
        ..Default::default()
    };
    let request = pb::CreateInstitutionRequest {
        parent: township.to_owned(),
        institution: Some(institution),
        ..Default::default()
    };
    client.create_institution(as_actor("bianban", request)).await.map(tonic::Response::into_inner)
}

fn deviation(rule: &str, allowed: u32) -> pb::ApprovedDeviation {
    pb::ApprovedDeviation {
        rule: rule.to_owned(),
        allowed,
        document_number: DOCUMENT.to_owned(),
        approved_on: "2025-03-01".to_owned(),
        reason: "山区大镇，人口多".to_owned(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_countys_approved_office_figure_raises_the_limit_and_approves_the_finding() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let township = app.townships("cities/4301").await[0].name.clone();
    let county = township.split("/townships/").next().unwrap().to_owned();
    let client = &mut app.client;

    // Unclassified: the most permissive limit of any class, 6 offices.
    for n in 0..6 {
        create_office(client, &township, n).await.unwrap();
    }
    let refused = create_office(client, &township, 6).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let unknown = pb::CreateApprovedDeviationRequest {
        parent: county.clone(),
        approved_deviation: Some(deviation("offices.maximum", 7)),
        ..Default::default()
    };
    let status = client.create_approved_deviation(unknown).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("approved_deviation.rule"), "{}", status.message());
    assert!(status.message().contains("offices.count"), "lists the valid rules: {}", status.message());

    // The city's own departure from the document is the city's to answer for, not a county's to waive.
    let waiving_the_city = pb::CreateApprovedDeviationRequest {
        parent: county.clone(),
        approved_deviation: Some(pb::ApprovedDeviation {
            allowed_description: "县里不认".to_owned(),
            ..deviation("policy.city_deviation", 0)
        }),
        ..Default::default()
    };
    let status = client.create_approved_deviation(waiving_the_city).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("policy.city_deviation"), "{}", status.message());
    assert!(status.message().contains("document_number"), "says what answers for it: {}", status.message());

    let request = pb::CreateApprovedDeviationRequest {
        parent: county.clone(),
        approved_deviation: Some(deviation("offices.count", 7)),
        request_id: "deviation-1".to_owned(),
    };
    let created = client.create_approved_deviation(as_actor("county", request.clone())).await.unwrap().into_inner();
    assert!(created.name.starts_with(&format!("{county}/approvedDeviations/")), "{}", created.name);
    assert!(created.in_force);
    let retried = client.create_approved_deviation(as_actor("county", request)).await.unwrap().into_inner();
    assert_eq!(retried, created, "a retry replays");

    create_office(client, &township, 6).await.expect("the 7th office is within the approved figure");
    let refused = create_office(client, &township, 7).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains(DOCUMENT), "the refusal names the 文号: {}", refused.message());

    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: township.clone() })
        .await
        .unwrap()
        .into_inner();
    let offices: Vec<&pb::Finding> = report.findings.iter().filter(|f| f.rule == "offices.count").collect();
    assert_eq!(offices.len(), 1, "{:?}", report.findings);
    let note = offices[0].approved_deviation.as_ref().expect("the finding names the deviation");
    assert!(note.approved, "an approved exception: {:?}", offices[0]);
    assert_eq!((note.document_number.as_str(), note.approved_on.as_str(), note.allowed), (DOCUMENT, "2025-03-01", 7));
    assert_eq!(note.approved_deviation, created.name);

    let listed = client
        .list_approved_deviations(pb::ListApprovedDeviationsRequest { parent: county.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.approved_deviations, std::slice::from_ref(&created));

    let revoke = pb::RevokeApprovedDeviationRequest {
        name: created.name.clone(),
        document_number: "长编发〔2025〕9号".to_owned(),
        reason: "机构调整完毕".to_owned(),
    };
    let revoked = client.revoke_approved_deviation(revoke).await.unwrap().into_inner();
    assert!(!revoked.in_force && revoked.revoke_time.is_some());
    assert_eq!(revoked.revocation_document_number, "长编发〔2025〕9号");
    let got = client
        .get_approved_deviation(pb::GetApprovedDeviationRequest { name: created.name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got, revoked, "a revoked deviation is kept");
    let report =
        client.get_compliance_report(pb::GetComplianceReportRequest { scope: township }).await.unwrap().into_inner();
    let finding = report.findings.iter().find(|f| f.rule == "offices.count").unwrap();
    assert_eq!(finding.approved_deviation, None, "revoked, it no longer applies");
}
