//! The staffing ledger and the headcounts (`StaffingRepo`), and what compliance reads of them.

use township_registry::domain::model::{
    FundingType, InstitutionKind, NewStaffingApproval, StaffingFigure, StaffingType,
};
use township_registry::domain::names::Scope;
use township_registry::store::{Create, Created, RequestKey, StoreError};

use crate::{ACTOR, TestDb, code, import_fixture, new_institution, page};

conformance!(
    the_approved_figure_is_the_sum_of_the_ledger_per_type,
    a_reduction_below_zero_is_refused_naming_the_institution,
    a_retried_approval_with_its_request_id_is_recorded_once,
    headcounts_are_set_audited_and_read_with_the_approvals,
);

const TOWNSHIP: &str = "430102003";

fn approval(institution_id: i64, staffing_type: StaffingType, change: i64) -> NewStaffingApproval {
    NewStaffingApproval {
        township: code(TOWNSHIP),
        institution_id,
        document_number: "长县编委发〔2025〕2号".into(),
        approved_on: "2025-03-01".into(),
        staffing_type,
        funding_type: FundingType::Full,
        change,
        summary: "核增".into(),
    }
}

async fn the_approved_figure_is_the_sum_of_the_ledger_per_type(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code(TOWNSHIP);
    let office = new_institution(TOWNSHIP, InstitutionKind::PartyGovernmentOffice, "党政办公室");
    let office = store.create_institution(&office, 6, ACTOR).await.unwrap();
    // Its quota of 5 is the ledger's first approval, by its approving document and from its valid_from.
    let first = store.list_staffing_approvals(&township, Some(office.id), &page(10)).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let first = &first[0].approval;
    assert_eq!(
        (first.document_number.as_str(), first.approved_on.as_str(), first.staffing_type, first.change),
        ("编委〔2024〕1号", "2024-01-01", StaffingType::Administrative, 5)
    );
    for (staffing_type, change) in
        [(StaffingType::Administrative, 3), (StaffingType::Administrative, -2), (StaffingType::PublicInstitution, 4)]
    {
        store.create_staffing_approval(&approval(office.id, staffing_type, change), ACTOR).await.unwrap();
    }
    assert_eq!(store.get_institution(&township, office.id).await.unwrap().staffing_quota, 10);
    // An update does not touch the quota: it is the ledger's.
    let renamed = township_registry::domain::model::Institution {
        name: "党政综合办公室".into(),
        staffing_quota: 99,
        ..store.get_institution(&township, office.id).await.unwrap()
    };
    let updated = store.update_institution(&renamed, renamed.revision, 6, 3, ACTOR).await.unwrap();
    assert_eq!(updated.staffing_quota, 10);

    // Listed in the order recorded, a page at a time, by institution or by township.
    let first_page = store.list_staffing_approvals(&township, None, &page(3)).await.unwrap();
    assert_eq!(first_page.items.iter().map(|a| a.approval.change).collect::<Vec<_>>(), [5, 3, -2]);
    let rest = store.list_staffing_approvals(&township, None, &crate::next(3, &first_page.next)).await.unwrap();
    assert_eq!((rest.items.len(), rest.next), (1, None));
    assert!(store.list_staffing_approvals(&code("430102001"), None, &page(10)).await.unwrap().items.is_empty());

    let facts = store.township_facts(&Scope::Township(township)).await.unwrap();
    assert_eq!(
        facts[0].staffing,
        [
            StaffingFigure {
                institution_id: office.id,
                staffing_type: StaffingType::Administrative,
                approved: 6,
                actual: None
            },
            StaffingFigure {
                institution_id: office.id,
                staffing_type: StaffingType::PublicInstitution,
                approved: 4,
                actual: None
            },
        ]
    );
}

async fn a_reduction_below_zero_is_refused_naming_the_institution(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code(TOWNSHIP);
    let centre = new_institution(TOWNSHIP, InstitutionKind::PublicInstitution, "农业综合服务中心");
    let centre = store.create_institution(&centre, 3, ACTOR).await.unwrap();
    match store.create_staffing_approval(&approval(centre.id, StaffingType::PublicInstitution, -6), ACTOR).await {
        Err(StoreError::FailedPrecondition(message)) => {
            assert!(message.contains(&format!("townships/{TOWNSHIP}/institutions/{}", centre.id)), "{message}");
            assert!(message.contains("农业综合服务中心"), "{message}");
            assert!(message.contains("has 5 事业编制 approved"), "{message}");
        }
        other => panic!("expected FailedPrecondition, got {other:?}"),
    }
    // A type it has no approval of cannot be reduced either; the whole figure can.
    assert!(matches!(
        store.create_staffing_approval(&approval(centre.id, StaffingType::Administrative, -1), ACTOR).await,
        Err(StoreError::FailedPrecondition(_))
    ));
    store.create_staffing_approval(&approval(centre.id, StaffingType::PublicInstitution, -5), ACTOR).await.unwrap();
    let ledger = store.list_staffing_approvals(&township, Some(centre.id), &page(10)).await.unwrap().items;
    assert_eq!(ledger.iter().map(|a| a.approval.change).collect::<Vec<_>>(), [5, -5]);
    assert_eq!(store.get_institution(&township, centre.id).await.unwrap().staffing_quota, 0);
    assert!(matches!(
        store.create_staffing_approval(&approval(centre.id + 100, StaffingType::Administrative, 1), ACTOR).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_retried_approval_with_its_request_id_is_recorded_once(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code(TOWNSHIP);
    let office = new_institution(TOWNSHIP, InstitutionKind::PartyGovernmentOffice, "党政办公室");
    let office = store.create_institution(&office, 6, ACTOR).await.unwrap();
    let key = |fingerprint: &str| RequestKey {
        request_id: "approval-1".into(),
        method: "CreateStaffingApproval".into(),
        fingerprint: fingerprint.into(),
    };
    let create = Create::StaffingApproval(approval(office.id, StaffingType::Administrative, 2));
    let (first, replayed) = store.create_once(Some(&key("a")), &create, ACTOR).await.unwrap();
    assert!(!replayed);
    let (again, replayed) = store.create_once(Some(&key("a")), &create, ACTOR).await.unwrap();
    assert!(replayed);
    assert_eq!(first, again);
    let Created::StaffingApproval(first) = first else { panic!("not an approval: {first:?}") };
    assert!(matches!(store.create_once(Some(&key("b")), &create, ACTOR).await, Err(StoreError::AlreadyExists(_))));
    let ledger = store.list_staffing_approvals(&township, Some(office.id), &page(10)).await.unwrap().items;
    assert_eq!(ledger.iter().map(|a| a.id).collect::<Vec<_>>(), [ledger[0].id, first.id]);
    assert_eq!(store.get_institution(&township, office.id).await.unwrap().staffing_quota, 7);
}

async fn headcounts_are_set_audited_and_read_with_the_approvals(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code(TOWNSHIP);
    let office = new_institution(TOWNSHIP, InstitutionKind::PartyGovernmentOffice, "党政办公室");
    let office = store.create_institution(&office, 6, ACTOR).await.unwrap();
    let resource =
        format!("cities/4301/counties/430102/townships/{TOWNSHIP}/institutions/{}/staffingHeadcounts", office.id);
    let events = || async { store.list_audit_events(&resource, &page(100)).await.unwrap().items.len() };
    let admin = StaffingType::Administrative;
    store.set_staffing_headcount(&township, office.id, admin, 7, ACTOR).await.unwrap();
    // The same figure again changes nothing and is not audited again.
    store.set_staffing_headcount(&township, office.id, admin, 7, ACTOR).await.unwrap();
    assert_eq!(events().await, 1);
    let set = store.set_staffing_headcount(&township, office.id, admin, 4, "bob").await.unwrap();
    assert_eq!((set.actual, set.updated_by.as_str()), (4, "bob"));
    assert_eq!(events().await, 2);
    store.set_staffing_headcount(&township, office.id, StaffingType::PublicInstitution, 1, ACTOR).await.unwrap();
    let listed = store.list_staffing_headcounts(&township, Some(office.id), &page(10)).await.unwrap().items;
    assert_eq!(
        listed.iter().map(|h| (h.staffing_type, h.actual)).collect::<Vec<_>>(),
        [(admin, 4), (StaffingType::PublicInstitution, 1)]
    );
    assert!(matches!(
        store.set_staffing_headcount(&township, office.id + 100, admin, 1, ACTOR).await,
        Err(StoreError::NotFound(_))
    ));
    // Compliance sees the approved figure beside the headcount, a headcount without approvals included.
    let facts = store.township_facts(&Scope::Township(township)).await.unwrap();
    let figures: Vec<_> = facts[0].staffing.iter().map(|f| (f.staffing_type, f.approved, f.actual)).collect();
    assert_eq!(figures, [(admin, 5, Some(4)), (StaffingType::PublicInstitution, 0, Some(1))]);
}
