//! End-to-end: the batch creates a spreadsheet import relies on are all or nothing, name the failing request,
//! check the policy's limits against the batch's own earlier records, and keep nothing with validate_only.

use tonic::Code;
use tonic_types::StatusExt;
use township_e2e::*;
use township_proto::registry::v1 as pb;

const WENYILU: &str = "cities/4301/counties/430102/townships/430102001";
const CHAOYANGJIE: &str = "cities/4301/counties/430102/townships/430102002";

fn office(parent: &str, name: &str) -> pb::CreateInstitutionRequest {
    pb::CreateInstitutionRequest {
        parent: parent.to_owned(),
        institution: Some(pb::Institution {
            kind: pb::InstitutionKind::PartyGovernmentOffice.into(),
            display_name: name.to_owned(),
            staffing_quota: 5,
            approving_document: "长编办发〔2024〕1号".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_create_institutions_is_all_or_nothing_and_names_the_failing_request() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let client = &mut app.client;
    let listed = |mut client: Client| async move {
        let mut total = 0;
        for parent in [WENYILU, CHAOYANGJIE] {
            let request = pb::ListInstitutionsRequest { parent: parent.to_owned(), ..Default::default() };
            total += client.list_institutions(request).await.unwrap().into_inner().institutions.len();
        }
        total
    };

    // A field violation in one request: its field is named under requests[i].
    let mut bad = office(CHAOYANGJIE, "党政办公室");
    bad.institution.as_mut().unwrap().kind = 0;
    let status = client
        .batch_create_institutions(pb::BatchCreateInstitutionsRequest {
            requests: vec![office(WENYILU, "党政办公室"), bad],
            validate_only: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let violations = status.get_details_bad_request().expect("field violations").field_violations;
    assert_eq!(violations[0].field, "requests[1].institution.kind", "{violations:?}");
    assert!(violations[0].description.contains("430102002"), "names the township: {violations:?}");

    // Seven offices for one unclassified township: the limit (6, the most any class allows) counts the batch's
    // own earlier records, and the refusal names the 7th.
    let names = [
        "党政办公室",
        "经济发展办公室",
        "社会事务办公室",
        "自然资源办公室",
        "社会治安办公室",
        "党建办公室",
        "第七办公室",
    ];
    let requests: Vec<_> = names.iter().map(|name| office(WENYILU, name)).collect();
    let status = client
        .batch_create_institutions(pb::BatchCreateInstitutionsRequest {
            requests: requests.clone(),
            validate_only: false,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().starts_with("requests[6]: township 430102001 already has 6"), "{}", status.message());
    assert_eq!(listed(client.clone()).await, 0, "nothing of a refused batch is kept");

    // validate_only answers what would be created and keeps nothing.
    let six = requests[..6].to_vec();
    let preview = client
        .batch_create_institutions(pb::BatchCreateInstitutionsRequest {
            requests: six.clone(),
            validate_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(preview.institutions.len(), 6);
    assert_eq!(listed(client.clone()).await, 0, "validate_only keeps nothing");

    let created = client
        .batch_create_institutions(as_actor(
            "编办",
            pb::BatchCreateInstitutionsRequest { requests: six, validate_only: false, ..Default::default() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.institutions.iter().map(|i| i.display_name.as_str()).collect::<Vec<_>>(), &names[..6]);
    assert_eq!(listed(client.clone()).await, 6);
    app.stop().await;
}
