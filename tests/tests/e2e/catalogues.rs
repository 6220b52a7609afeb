//! End-to-end: duty catalogues (DESIGN.md §1.3, §4). 长沙县 (430121) publishes a template; its towns inherit the
//! items of a town's duty areas and its sub-districts those of a sub-district's; 黄兴镇 extends and overrides it;
//! the compliance report names uncovered duty areas, a missing list, a power with no responsibility, and items
//! whose responsible institution is gone.

use tonic::{Code, Status};
use tonic_types::StatusExt;
use township_e2e::*;
use township_proto::registry::v1 as pb;

const COUNTY: &str = "cities/4301/counties/430121";
const HUANGXING: &str = "cities/4301/counties/430121/townships/430121102";
const JIANGBEI: &str = "cities/4301/counties/430121/townships/430121104";
const XINGSHA: &str = "cities/4301/counties/430121/townships/430121001";

fn public_service(code: &str, title: &str, area: pb::DutyArea, mode: pb::HandlingMode) -> pb::CatalogueItem {
    pb::CatalogueItem {
        code: code.to_owned(),
        title: title.to_owned(),
        duty_area: area.into(),
        details: Some(pb::catalogue_item::Details::PublicService(pb::PublicServiceDetails {
            service_domain: "社会保障".to_owned(),
            handling_mode: mode.into(),
        })),
        ..Default::default()
    }
}

fn power(code: &str, title: &str, area: pb::DutyArea) -> pb::CatalogueItem {
    pb::CatalogueItem {
        code: code.to_owned(),
        title: title.to_owned(),
        item_type: pb::CatalogueItemType::Power.into(),
        duty_area: area.into(),
        details: Some(pb::catalogue_item::Details::Power(pb::PowerDetails {
            category: pb::PowerCategory::Inspection.into(),
            legal_basis: "《中国共产党支部工作条例(试行)》".to_owned(),
            origin: pb::PowerOrigin::Statutory.into(),
        })),
        ..Default::default()
    }
}

/// A template item, naming its responsible institution by title.
fn titled(item: pb::CatalogueItem, institution_title: &str) -> pb::CatalogueItem {
    pb::CatalogueItem { responsible_institution_title: institution_title.to_owned(), ..item }
}

/// A township item, naming its responsible institution.
fn naming(item: pb::CatalogueItem, institution: &pb::Institution) -> pb::CatalogueItem {
    pb::CatalogueItem { responsible_institution: institution.name.clone(), ..item }
}

async fn create_item(client: &mut Client, parent: &str, item: pb::CatalogueItem) -> Result<pb::CatalogueItem, Status> {
    client
        .create_catalogue_item(as_actor(
            "county-bianban",
            pb::CreateCatalogueItemRequest {
                parent: parent.to_owned(),
                catalogue_item: Some(item),
                ..Default::default()
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Every item of a catalogue, `page_size` at a time.
async fn list_items(
    client: &mut Client,
    parent: &str,
    item_type: pb::CatalogueItemType,
    page_size: i32,
) -> Vec<pb::CatalogueItem> {
    let mut items = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_catalogue_items(pb::ListCatalogueItemsRequest {
                parent: parent.to_owned(),
                item_type: item_type.into(),
                page_size,
                page_token,
            })
            .await
            .expect("list catalogue items")
            .into_inner();
        assert!(page.catalogue_items.len() <= usize::try_from(page_size).unwrap());
        items.extend(page.catalogue_items);
        if page.next_page_token.is_empty() {
            return items;
        }
        page_token = page.next_page_token;
    }
}

fn summary(items: &[pb::CatalogueItem]) -> Vec<(&str, bool)> {
    items.iter().map(|i| (i.code.as_str(), i.inherited)).collect()
}

async fn create_institution(client: &mut Client, township: &str, name: &str, valid_to: &str) -> pb::Institution {
    client
        .create_institution(as_actor(
            "bianban",
            pb::CreateInstitutionRequest {
                parent: township.to_owned(),
                institution: Some(pb::Institution {
                    kind: pb::InstitutionKind::PartyGovernmentOffice.into(),
                    display_name: name.to_owned(),
                    staffing_quota: 6,
                    approving_document: "长县编办发〔2024〕3号".to_owned(),
                    valid_to: valid_to.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("create institution")
        .into_inner()
}

async fn catalogue_findings(client: &mut Client, scope: &str) -> Vec<pb::Finding> {
    let report = client
        .get_compliance_report(pb::GetComplianceReportRequest { scope: scope.to_owned() })
        .await
        .expect("compliance report")
        .into_inner();
    report.findings.into_iter().filter(|f| f.rule.starts_with("catalogue.")).collect()
}

/// Both services with 长沙市 imported, and a client.
async fn started() -> (TestApp, Client) {
    let mut app = TestApp::spawn().await;
    app.import("4301").await;
    let client = app.client.clone();
    (app, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_county_template_is_inherited_by_its_townships_and_extended_and_overridden_by_one() {
    let (app, mut client) = started().await;
    use pb::DutyArea as A;

    let party =
        create_item(&mut client, COUNTY, titled(power("QL-001", "党组织设置审批", A::PartyBuilding), "党政办公室"))
            .await
            .unwrap();
    assert!(party.name.starts_with(&format!("{COUNTY}/catalogueItems/")), "{}", party.name);
    assert_eq!((party.responsible_institution.as_str(), party.inherited), ("", false));
    let pension = titled(
        public_service("GG-001", "城乡居民养老保险参保登记", A::PublicService, pb::HandlingMode::Direct),
        "社会事务办公室",
    );
    create_item(&mut client, COUNTY, pension).await.unwrap();
    let patrol = titled(
        public_service("GG-101", "社区治安巡防", A::MaintainPublicSafety, pb::HandlingMode::Assisted),
        "社会治安和应急管理办公室",
    );
    create_item(&mut client, COUNTY, patrol).await.unwrap();
    let template = list_items(&mut client, COUNTY, pb::CatalogueItemType::Unspecified, 100).await;
    assert_eq!(summary(&template), [("GG-001", false), ("GG-101", false), ("QL-001", false)]);

    let mut offices = Vec::new();
    for township in [HUANGXING, JIANGBEI] {
        offices.push((
            create_institution(&mut client, township, "党政办公室", "").await,
            create_institution(&mut client, township, "社会事务办公室(卫生健康办公室)", "").await,
        ));
    }

    // 江背镇 inherits the items of a town's duty areas, each resolved to its own institutions.
    let jiangbei = list_items(&mut client, JIANGBEI, pb::CatalogueItemType::Unspecified, 100).await;
    assert_eq!(summary(&jiangbei), [("GG-001", true), ("QL-001", true)], "GG-101 is a sub-district area");
    assert_eq!(jiangbei[0].responsible_institution, offices[1].1.name, "the title is contained in the name");
    assert_eq!(jiangbei[1].responsible_institution, offices[1].0.name);
    assert_eq!(jiangbei[1].duty_area_label, "加强基层党建");

    // 黄兴镇 replaces GG-001 with its own and adds a responsibility tied to the county's power item.
    let (huangxing_party_office, huangxing_social_office) = &offices[0];
    let own_pension = naming(
        public_service("GG-001", "养老保险参保登记(村级代办)", A::PublicService, pb::HandlingMode::OnBehalf),
        huangxing_social_office,
    );
    let own_pension = create_item(&mut client, HUANGXING, own_pension).await.unwrap();
    assert_eq!(own_pension.responsible_institution, huangxing_social_office.name);
    assert_eq!(own_pension.responsible_institution_title, "社会事务办公室(卫生健康办公室)");
    let duty = pb::CatalogueItem {
        code: "ZR-001".to_owned(),
        title: "基层党组织建设责任".to_owned(),
        duty_area: A::SocialGovernance.into(),
        details: Some(pb::catalogue_item::Details::Responsibility(pb::ResponsibilityDetails {
            power_item_code: "QL-001".to_owned(),
            duties: "指导村(社区)党组织按期换届".to_owned(),
            accountability_cases: "未按规定审批的".to_owned(),
        })),
        ..Default::default()
    };
    let duty = create_item(&mut client, HUANGXING, naming(duty, huangxing_party_office)).await.unwrap();
    assert_eq!(duty.item_type(), pb::CatalogueItemType::Responsibility);

    let huangxing = list_items(&mut client, HUANGXING, pb::CatalogueItemType::Unspecified, 1).await;
    assert_eq!(summary(&huangxing), [("GG-001", false), ("QL-001", true), ("ZR-001", false)]);
    assert_eq!(huangxing[0], own_pension);
    assert_eq!(huangxing[2], duty);
    let responsibilities = list_items(&mut client, HUANGXING, pb::CatalogueItemType::Responsibility, 10).await;
    assert_eq!(summary(&responsibilities), [("ZR-001", false)]);
    let fetched = client
        .get_catalogue_item(pb::GetCatalogueItemRequest { name: own_pension.name.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, own_pension);

    // The neighbour keeps the template's item; the sub-district gets the sub-district areas in its words.
    let jiangbei = list_items(&mut client, JIANGBEI, pb::CatalogueItemType::Unspecified, 100).await;
    assert_eq!((jiangbei[0].title.as_str(), jiangbei[0].inherited), ("城乡居民养老保险参保登记", true));
    let xingsha = list_items(&mut client, XINGSHA, pb::CatalogueItemType::Unspecified, 100).await;
    assert_eq!(summary(&xingsha), [("GG-101", true), ("QL-001", true)]);
    assert_eq!(xingsha[1].duty_area_label, "加强党的建设");
    assert_eq!(xingsha[1].responsible_institution, "", "星沙街道 has no 党政办公室 yet");

    // Deleting the override brings the template item back; every write is audited.
    client
        .delete_catalogue_item(as_actor(
            "county-bianban",
            pb::DeleteCatalogueItemRequest { name: own_pension.name.clone() },
        ))
        .await
        .unwrap();
    let huangxing = list_items(&mut client, HUANGXING, pb::CatalogueItemType::Unspecified, 100).await;
    assert_eq!(summary(&huangxing), [("GG-001", true), ("QL-001", true), ("ZR-001", false)]);
    let audit = client
        .list_audit_events(pb::ListAuditEventsRequest {
            resource_prefix: COUNTY.to_owned(),
            page_size: 100,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let catalogue_events: Vec<(&str, &str)> = audit
        .events
        .iter()
        .filter(|e| e.action.contains("CatalogueItem"))
        .map(|e| (e.action.as_str(), e.resource.as_str()))
        .collect();
    assert_eq!(catalogue_events.len(), 6, "{catalogue_events:?}");
    assert_eq!(catalogue_events[0], ("DeleteCatalogueItem", own_pension.name.as_str()));
    assert!(
        audit
            .events
            .iter()
            .filter(|e| e.action.contains("CatalogueItem"))
            .all(|e| e.actor.ends_with("; note: county-bianban"))
    );

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliance_names_uncovered_duty_areas_and_items_whose_institution_is_gone() {
    let (app, mut client) = started().await;
    use pb::DutyArea as A;
    create_item(&mut client, COUNTY, titled(power("QL-001", "党组织设置审批", A::PartyBuilding), "党政办公室"))
        .await
        .unwrap();
    let party_office = create_institution(&mut client, HUANGXING, "党政办公室", "").await;
    let economy = create_institution(&mut client, HUANGXING, "经济发展办公室(农业农村工作办公室)", "").await;
    let item = naming(
        public_service("JJ-001", "农业经营主体服务", A::EconomicDevelopment, pb::HandlingMode::Direct),
        &economy,
    );
    let item = create_item(&mut client, HUANGXING, item).await.unwrap();

    let findings = catalogue_findings(&mut client, HUANGXING).await;
    let uncovered: Vec<&str> = findings
        .iter()
        .filter(|f| f.rule == "catalogue.duty_area_uncovered")
        .map(|f| f.message.split(" (").next().unwrap())
        .collect();
    assert_eq!(
        uncovered,
        [
            "no catalogue item covers the duty area 强化公共服务",
            "no catalogue item covers the duty area 加强社会治理",
            "no catalogue item covers the duty area 提升城镇管理水平",
            "no catalogue item covers the duty area 推进基层民主",
        ]
    );
    assert!(findings.iter().all(|f| f.severity() == pb::Severity::Warning && f.township_display_name == "黄兴镇"));
    assert!(findings[0].message.contains("have the county add one to its template"), "{}", findings[0].message);
    // A power list and a public service catalogue, but no responsibility list: the county's power has none.
    let lists: Vec<&str> = findings
        .iter()
        .filter(|f| f.rule == "catalogue.list_missing" || f.rule == "catalogue.power_without_responsibility")
        .map(|f| f.message.split(';').next().unwrap())
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert_eq!(lists[0], "the township's catalogue has no 责任清单 (responsibility) item");
    assert!(lists[1].starts_with("inherited catalogue item QL-001 党组织设置审批 (cities/4301/counties/430121/"));
    assert!(lists[1].ends_with("is a power with no responsibility item linked to it (权责对应)"), "{}", lists[1]);
    let duty = pb::CatalogueItem {
        code: "ZR-001".to_owned(),
        title: "党组织设置审批责任".to_owned(),
        duty_area: A::PartyBuilding.into(),
        details: Some(pb::catalogue_item::Details::Responsibility(pb::ResponsibilityDetails {
            power_item_code: "QL-001".to_owned(),
            duties: "按规定审批党组织设置".to_owned(),
            accountability_cases: "未按规定审批的".to_owned(),
        })),
        ..Default::default()
    };
    create_item(&mut client, HUANGXING, naming(duty, &party_office)).await.unwrap();
    let findings = catalogue_findings(&mut client, HUANGXING).await;
    assert!(
        findings.iter().all(|f| f.rule == "catalogue.duty_area_uncovered"),
        "the responsibility list exists and covers the power: {findings:?}"
    );

    // The institution is abolished: the item stays, and the report names it.
    client.delete_institution(pb::DeleteInstitutionRequest { name: economy.name.clone() }).await.unwrap();
    let findings = catalogue_findings(&mut client, HUANGXING).await;
    let missing: Vec<_> = findings.iter().filter(|f| f.rule == "catalogue.responsible_institution_missing").collect();
    assert_eq!(missing.len(), 1, "{findings:?}");
    assert_eq!(missing[0].severity(), pb::Severity::Error);
    assert_eq!(missing[0].township, HUANGXING);
    let message = &missing[0].message;
    assert!(message.contains(&format!("catalogue item JJ-001 农业经营主体服务 ({})", item.name)), "{message}");
    assert!(
        message.contains(&format!("{} (经济发展办公室(农业农村工作办公室)), which no longer exists", economy.name))
    );
    assert!(message.contains("create it again naming an institution in force"), "{message}");
    assert_eq!(findings.iter().filter(|f| f.rule == "catalogue.duty_area_uncovered").count(), 4, "still covered");

    // 江背镇 inherits QL-001 but has no 党政办公室 for it.
    let findings = catalogue_findings(&mut client, JIANGBEI).await;
    let missing: Vec<_> = findings.iter().filter(|f| f.rule == "catalogue.responsible_institution_missing").collect();
    assert_eq!(missing.len(), 1, "{findings:?}");
    assert!(missing[0].message.starts_with("inherited catalogue item QL-001"), "{}", missing[0].message);
    assert!(missing[0].message.contains("names 党政办公室, and no institution in force"), "{}", missing[0].message);
    assert_eq!(findings.iter().filter(|f| f.rule == "catalogue.duty_area_uncovered").count(), 5);

    // The county's report gathers every township's.
    let county = catalogue_findings(&mut client, COUNTY).await;
    assert!(county.iter().any(|f| f.township == XINGSHA && f.message.contains("维护公共安全")));

    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogue_writes_are_refused_with_the_field_and_the_township_named() {
    let (app, mut client) = started().await;
    use pb::DutyArea as A;
    let office = create_institution(&mut client, HUANGXING, "党政办公室", "").await;

    // A sub-district's duty area for a town.
    let item =
        naming(public_service("X-1", "社区治安巡防", A::MaintainPublicSafety, pb::HandlingMode::Direct), &office);
    let refused = create_item(&mut client, HUANGXING, item).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let violations = refused.get_details_bad_request().expect("field violations").field_violations;
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "catalogue_item.duty_area");
    let description = &violations[0].description;
    assert!(description.contains("township 430121102 (黄兴镇)"), "{description}");
    assert!(description.contains("maintain_public_safety (维护公共安全) is not a duty area of a 镇"), "{description}");
    assert!(description.contains("party_building (加强基层党建)"), "lists the town's areas: {description}");
    // The same area is fine for a county template and for a sub-district.
    let patrol = public_service("X-1", "社区治安巡防", A::MaintainPublicSafety, pb::HandlingMode::Direct);
    create_item(&mut client, COUNTY, titled(patrol.clone(), "社会治安和应急管理办公室")).await.unwrap();
    let street_office = create_institution(&mut client, XINGSHA, "社会治安和应急管理办公室", "").await;
    create_item(&mut client, XINGSHA, naming(patrol, &street_office)).await.unwrap();

    // Every problem at once: a missing title, a template naming an institution, no details.
    let bad = pb::CatalogueItem {
        code: "X-2".to_owned(),
        duty_area: A::PartyBuilding.into(),
        responsible_institution: office.name.clone(),
        ..Default::default()
    };
    let refused = create_item(&mut client, COUNTY, bad).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        refused.get_details_bad_request().unwrap().field_violations.into_iter().map(|v| v.field).collect();
    assert_eq!(
        fields,
        [
            "catalogue_item.title",
            "catalogue_item.details",
            "catalogue_item.responsible_institution",
            "catalogue_item.responsible_institution_title"
        ]
    );
    let mismatched = pb::CatalogueItem {
        item_type: pb::CatalogueItemType::Power.into(),
        ..public_service("X-3", "事项", A::PartyBuilding, pb::HandlingMode::Direct)
    };
    let refused = create_item(&mut client, HUANGXING, naming(mismatched, &office)).await.unwrap_err();
    assert!(refused.message().contains("catalogue_item.item_type"), "{}", refused.message());

    // The responsible institution must exist in the township and be in force.
    let missing = pb::Institution { name: format!("{HUANGXING}/institutions/999"), ..Default::default() };
    let item = public_service("X-4", "事项", A::PartyBuilding, pb::HandlingMode::Direct);
    let refused = create_item(&mut client, HUANGXING, naming(item.clone(), &missing)).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert!(refused.message().contains(&missing.name), "{}", refused.message());
    let ended = create_institution(&mut client, HUANGXING, "撤并前的办公室", "2001-12-31").await;
    let refused = create_item(&mut client, HUANGXING, naming(item.clone(), &ended)).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(refused.message().contains("撤并前的办公室") && refused.message().contains("no longer in force"));
    let refused = create_item(&mut client, JIANGBEI, naming(item.clone(), &office)).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(refused.message().contains("not an institution of this township"), "{}", refused.message());

    // Codes are unique per owner; cities hold no catalogue.
    create_item(&mut client, HUANGXING, naming(item.clone(), &office)).await.unwrap();
    let duplicate = create_item(&mut client, HUANGXING, naming(item.clone(), &office)).await.unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let refused = create_item(&mut client, "cities/4301", titled(item, "党政办公室")).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(refused.get_details_bad_request().unwrap().field_violations[0].field, "parent");

    app.stop().await;
}
