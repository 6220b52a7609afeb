//! End-to-end: staffing by class (编制): an institution's approvals ledger and its actual headcount, and the
//! compliance findings on both, over real gRPC.

use tonic::Code;
use township_e2e::*;
use township_proto::registry::v1 as pb;

const CHANGSHA: &str = "cities/4301";

/// The default policy's 行政编制 norm per township of each class (推定值，未经核实).
fn administrative_norm(class: u32) -> i32 {
    match class {
        1 => 40,
        2 => 32,
        _ => 25,
    }
}

async fn create_institution(
    client: &mut Client,
    township: &str,
    kind: pb::InstitutionKind,
    name: &str,
    quota: u32,
) -> pb::Institution {
    let institution = pb::Institution {
        kind: kind.into(),
        display_name: name.to_owned(),
        staffing_quota: quota,
        approving_document: "长县编委发〔2024〕3号".to_owned(),
        valid_from: "2024-01-01".to_owned(),
        ..Default::default()
    };
    let request = pb::CreateInstitutionRequest {
        parent: township.to_owned(),
        institution: Some(institution),
        ..Default::default()
    };
    client.create_institution(as_actor("bianban", request)).await.expect("create institution").into_inner()
}

fn approval(
    parent: &str,
    staffing_type: pb::StaffingType,
    change: i32,
    request_id: &str,
) -> pb::CreateStaffingApprovalRequest {
    pb::CreateStaffingApprovalRequest {
        parent: parent.to_owned(),
        staffing_approval: Some(pb::StaffingApproval {
            document_number: "长县编委发〔2025〕9号".to_owned(),
            approved_on: "2025-04-01".to_owned(),
            staffing_type: staffing_type.into(),
            funding_type: pb::FundingType::Full.into(),
            change,
            summary: "核增编制".to_owned(),
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    }
}

async fn staffing_findings(client: &mut Client, township: &str) -> Vec<pb::Finding> {
    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: township.to_owned() })
        .await
        .expect("compliance report")
        .into_inner();
    report.findings.into_iter().filter(|f| f.rule.starts_with("staffing.")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_over_the_class_norm_and_a_headcount_over_the_approval_are_findings() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let townships = app.townships(CHANGSHA).await;
    app.record_generated(&townships, 2023, 7).await;
    app.wait_until_current(CHANGSHA, 2023).await;
    let client = &mut app.client;
    let township = townships.iter().find(|t| t.display_name.ends_with('镇')).expect("a 镇 in 长沙市").name.clone();
    let class = client
        .get_township_class(pb::GetTownshipClassRequest { township: township.clone(), data_year: 0 })
        .await
        .unwrap()
        .into_inner()
        .effective_class;
    let norm = administrative_norm(class);

    // The office's quota of 10 is its first approval; approvals up to the norm are no finding.
    let office =
        create_institution(client, &township, pb::InstitutionKind::PartyGovernmentOffice, "党政办公室", 10).await;
    client
        .create_staffing_approval(approval(&office.name, pb::StaffingType::Administrative, norm - 10, ""))
        .await
        .unwrap();
    assert_eq!(staffing_findings(client, &township).await, []);

    // One over the norm: a finding that says the norm is inferred.
    client.create_staffing_approval(approval(&office.name, pb::StaffingType::Administrative, 1, "")).await.unwrap();
    let found = staffing_findings(client, &township).await;
    assert_eq!(found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(), ["staffing.township_over_norm"]);
    assert!(found[0].message.contains(&format!("{} 行政编制 approved", norm + 1)), "{}", found[0].message);
    assert!(found[0].message.contains("推定值，未经核实"), "{}", found[0].message);
    let office =
        client.get_institution(pb::GetInstitutionRequest { name: office.name.clone() }).await.unwrap().into_inner();
    assert_eq!(i64::from(office.staffing_quota), i64::from(norm) + 1, "the quota is the ledger's sum");

    // A retried approval is recorded once; a reduction below 0 is refused, naming the institution.
    let centre =
        create_institution(client, &township, pb::InstitutionKind::PublicInstitution, "农业综合服务中心", 0).await;
    let first = client
        .create_staffing_approval(approval(&centre.name, pb::StaffingType::PublicInstitution, 5, "centre-1"))
        .await
        .unwrap()
        .into_inner();
    let again = client
        .create_staffing_approval(approval(&centre.name, pb::StaffingType::PublicInstitution, 5, "centre-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, first);
    assert!(first.name.starts_with(&format!("{}/staffingApprovals/", centre.name)), "{}", first.name);
    let status = client
        .create_staffing_approval(approval(&centre.name, pb::StaffingType::PublicInstitution, -6, ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(&centre.name) && status.message().contains("农业综合服务中心"),
        "{}",
        status.message()
    );
    let listed = client
        .list_staffing_approvals(pb::ListStaffingApprovalsRequest { parent: township.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .staffing_approvals;
    assert_eq!(listed.iter().map(|a| a.change).collect::<Vec<_>>(), [10, norm - 10, 1, 5]);

    // 7 staff on the centre's 5 事业编制: 超编.
    let set = pb::SetStaffingHeadcountRequest {
        parent: centre.name.clone(),
        staffing_type: pb::StaffingType::PublicInstitution.into(),
        actual_headcount: 7,
    };
    let headcount = client.set_staffing_headcount(as_actor("bianban", set)).await.unwrap().into_inner();
    assert_eq!(
        (headcount.name, headcount.updated_by.as_str()),
        (
            format!("{}/staffingHeadcounts/public_institution", centre.name),
            "anonymous (authentication disabled); note: bianban"
        )
    );
    let found = staffing_findings(client, &township).await;
    assert_eq!(
        found.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>(),
        ["staffing.township_over_norm", "staffing.institution_over_approved"]
    );
    assert!(found[1].message.contains("has 7 staff on 事业编制 but 5 approved (超编 by 2)"), "{}", found[1].message);

    // The city's report sums the same figures for its 编制 section, in one answer: only this township has any.
    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: CHANGSHA.to_owned() })
        .await
        .unwrap()
        .into_inner();
    let [summary] = report.staffing.as_slice() else { panic!("one township with staffing: {:?}", report.staffing) };
    assert_eq!(summary.township, township);
    assert_eq!(summary.township_class, class);
    assert_eq!((summary.approved_administrative, summary.approved_public_institution), (i64::from(norm) + 1, 5));
    assert_eq!((summary.actual_administrative, summary.actual_public_institution), (0, 7));
    assert_eq!(summary.administrative_norm, u32::try_from(norm).ok());
    app.stop().await;
}
