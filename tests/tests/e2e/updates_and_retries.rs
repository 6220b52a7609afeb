//! End-to-end: the v1 contract's updates (update_mask and etag, ending an institution without orphaning its
//! catalogue items) and retry-safe creates (a request_id makes a retried create a no-op), over real gRPC.

use prost_types::FieldMask;
use tonic::Code;
use township_e2e::*;
use township_proto::registry::v1 as pb;

const JIUCAIYUAN: &str = "cities/4301/counties/430102/townships/430102003";

fn mask(paths: &[&str]) -> Option<FieldMask> {
    Some(FieldMask { paths: paths.iter().map(|p| (*p).to_owned()).collect() })
}

fn centre(request_id: &str) -> pb::CreateInstitutionRequest {
    pb::CreateInstitutionRequest {
        parent: JIUCAIYUAN.to_owned(),
        institution: Some(pb::Institution {
            kind: pb::InstitutionKind::PublicInstitution.into(),
            display_name: "农业综合服务中心".to_owned(),
            staffing_quota: 8,
            approving_document: "长县编委发〔2024〕7号".to_owned(),
            ..Default::default()
        }),
        request_id: request_id.to_owned(),
    }
}

async fn institutions(client: &mut Client) -> Vec<pb::Institution> {
    let request = pb::ListInstitutionsRequest { parent: JIUCAIYUAN.to_owned(), ..Default::default() };
    client.list_institutions(request).await.unwrap().into_inner().institutions
}

#[tokio::test(flavor = "multi_thread")]
async fn a_create_retried_with_its_request_id_makes_one_record() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let client = &mut app.client;

    let first = client.create_institution(centre("9b1f0c2e-7d4a-4c1e-9a53-2f6c1d8e4b70")).await.unwrap().into_inner();
    // The reply was lost on the way; the client sends the very same request again.
    let retried = client.create_institution(centre("9b1f0c2e-7d4a-4c1e-9a53-2f6c1d8e4b70")).await.unwrap().into_inner();
    assert_eq!(retried, first, "a retry answers what the first call answered");
    assert_eq!(institutions(client).await.len(), 1);

    // The same id with a different request is refused, and creates nothing.
    let mut different = centre("9b1f0c2e-7d4a-4c1e-9a53-2f6c1d8e4b70");
    different.institution.as_mut().unwrap().staffing_quota = 9;
    let status = client.create_institution(different).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert!(status.message().contains("request_id"), "{}", status.message());
    assert_eq!(institutions(client).await.len(), 1);

    // Without an id, each call is a new create.
    client.create_institution(centre("")).await.unwrap();
    assert_eq!(institutions(client).await.len(), 2);

    // An id is 1–64 letters, digits, '-' or '_'; a batch's requests carry none of their own.
    let status = client.create_institution(centre("a b")).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_field(&status, "request_id");
    let status = client
        .batch_create_institutions(pb::BatchCreateInstitutionsRequest {
            requests: vec![centre(""), centre("inner")],
            request_id: "outer".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_field(&status, "requests[1].request_id");

    // A retried batch of observations records once and answers the same.
    let observation = pb::IndicatorObservation {
        township: JIUCAIYUAN.to_owned(),
        data_year: 2024,
        values: Some(township_proto::classifier::v1::IndicatorValues {
            population: 3.2,
            fiscal_revenue: 4100.0,
            land_area: 61.0,
        }),
        source: "县统计局年报".to_owned(),
        ..Default::default()
    };
    let batch = pb::BatchRecordIndicatorsRequest {
        observations: vec![observation],
        request_id: "obs-2024-jiucaiyuan".to_owned(),
        ..Default::default()
    };
    let first = client.batch_record_indicators(batch.clone()).await.unwrap().into_inner();
    let retried = client.batch_record_indicators(batch).await.unwrap().into_inner();
    assert_eq!(retried, first);
    assert!(retried.unchanged.is_empty(), "the replay is the first answer, not a second recording");
    let history = pb::ListIndicatorObservationsRequest { parent: JIUCAIYUAN.to_owned(), ..Default::default() };
    assert_eq!(client.list_indicator_observations(history).await.unwrap().into_inner().observations.len(), 1);
    app.stop().await;
}

fn assert_field(status: &tonic::Status, field: &str) {
    use tonic_types::StatusExt as _;
    let violations = status.get_details_bad_request().expect("field violations").field_violations;
    assert_eq!(violations[0].field, field, "{violations:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_take_an_update_mask_and_refuse_a_stale_etag() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let client = &mut app.client;
    let created = client.create_institution(centre("")).await.unwrap().into_inner();
    assert!(!created.etag.is_empty());

    let change = pb::Institution {
        approving_document: "长县编委发〔2025〕1号".into(),
        display_name: "ignored: not in the mask".into(),
        ..created.clone()
    };
    let updated = client
        .update_institution(pb::UpdateInstitutionRequest {
            institution: Some(change.clone()),
            update_mask: mask(&["approving_document"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (updated.approving_document.as_str(), updated.display_name.as_str()),
        ("长县编委发〔2025〕1号", "农业综合服务中心")
    );
    assert_ne!(updated.etag, created.etag);
    let get = pb::GetInstitutionRequest { name: created.name.clone() };
    assert_eq!(client.get_institution(get).await.unwrap().into_inner(), updated);

    // The first etag is stale now: ABORTED, and nothing changes.
    let status = client
        .update_institution(pb::UpdateInstitutionRequest {
            institution: Some(change),
            update_mask: mask(&["approving_document"]),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    // The staffing quota is the sum of the staffing approvals: not updatable, the refusal says what to do.
    let status = client
        .update_institution(pb::UpdateInstitutionRequest {
            institution: Some(updated.clone()),
            update_mask: mask(&["staffing_quota"]),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("CreateStaffingApproval"), "{}", status.message());
    let status = client
        .update_institution(pb::UpdateInstitutionRequest {
            institution: Some(updated.clone()),
            update_mask: mask(&["kind"]),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "kind is not updatable: {status:?}");
    let status = client
        .update_institution(pb::UpdateInstitutionRequest {
            institution: Some(updated.clone()),
            update_mask: mask(&["display_name", "display_name"]),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(status.message().contains("\"display_name\" is named twice"), "{}", status.message());

    // A plaque: created, read by name, its document added.
    let plaque = client
        .create_plaque(pb::CreatePlaqueRequest {
            parent: created.name.clone(),
            plaque: Some(pb::Plaque { display_name: "农业技术推广站".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let read = client.get_plaque(pb::GetPlaqueRequest { name: plaque.name.clone() }).await.unwrap().into_inner();
    assert_eq!(read, plaque);
    let documented = pb::Plaque { approving_document: "县编委〔2024〕3号".into(), ..plaque.clone() };
    let updated_plaque = client
        .update_plaque(pb::UpdatePlaqueRequest {
            plaque: Some(documented.clone()),
            update_mask: mask(&["approving_document"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated_plaque.approving_document, "县编委〔2024〕3号");
    let status = client
        .update_plaque(pb::UpdatePlaqueRequest { plaque: Some(documented), update_mask: mask(&["approving_document"]) })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);

    // A post is read by its name.
    let post = client
        .create_leadership_post(pb::CreateLeadershipPostRequest {
            parent: JIUCAIYUAN.to_owned(),
            post: Some(pb::LeadershipPost { role: "党委书记".into(), ..Default::default() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let read = client.get_leadership_post(pb::GetLeadershipPostRequest { name: post.name.clone() }).await.unwrap();
    assert_eq!(read.into_inner(), post);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ending_an_institution_is_refused_while_catalogue_items_name_it() {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let client = &mut app.client;
    let office = client.create_institution(centre("")).await.unwrap().into_inner();
    let item = client
        .create_catalogue_item(pb::CreateCatalogueItemRequest {
            parent: JIUCAIYUAN.to_owned(),
            catalogue_item: Some(pb::CatalogueItem {
                item_type: pb::CatalogueItemType::PublicService.into(),
                code: "GG-001".into(),
                title: "农业技术咨询".into(),
                duty_area: pb::DutyArea::PartyBuilding.into(),
                responsible_institution: office.name.clone(),
                details: Some(pb::catalogue_item::Details::PublicService(pb::PublicServiceDetails {
                    service_domain: "农业".into(),
                    handling_mode: pb::HandlingMode::Direct.into(),
                })),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let ending = pb::Institution { valid_to: "2025-06-30".into(), ..office.clone() };
    let end = |institution: pb::Institution| pb::UpdateInstitutionRequest {
        institution: Some(institution),
        update_mask: mask(&["valid_to"]),
    };
    let status = client.update_institution(end(ending.clone())).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("GG-001"), "names the item that would be orphaned: {}", status.message());

    // Hand the item to another institution first; then the office can end, and it stays on record.
    let other = client
        .create_institution(pb::CreateInstitutionRequest {
            parent: JIUCAIYUAN.to_owned(),
            institution: Some(pb::Institution {
                kind: pb::InstitutionKind::PublicInstitution.into(),
                display_name: "社会事务综合服务中心".into(),
                staffing_quota: 6,
                approving_document: "长县编委发〔2024〕8号".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let moved = pb::CatalogueItem { responsible_institution: other.name.clone(), ..item };
    let moved = client
        .update_catalogue_item(pb::UpdateCatalogueItemRequest {
            catalogue_item: Some(moved),
            update_mask: mask(&["responsible_institution"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.responsible_institution, other.name);
    let ended = client.update_institution(end(ending)).await.unwrap().into_inner();
    assert_eq!(ended.valid_to, "2025-06-30");
    assert_eq!(institutions(client).await.len(), 2, "an ended institution is kept, not deleted");
    app.stop().await;
}
