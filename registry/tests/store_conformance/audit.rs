//! The audit log (`AuditRepo`).

use township_registry::domain::model::{Institution, InstitutionKind, LeadershipPost, Township};
use township_registry::domain::names::township_name;

use crate::{ACTOR, TestDb, code, import_fixture, new_institution, new_post, next, observation, page};

conformance!(audit_events_record_every_write);

async fn audit_events_record_every_write(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430102001");
    let name = township_name(&township);
    let observed = store.record_observations(&[observation("430102001", 2023, 5.0)], "bob", false).await.unwrap();
    let institution = store
        .create_institution(&new_institution("430102001", InstitutionKind::PublicInstitution, "中心"), 5, "carol")
        .await
        .unwrap();
    let post = store.create_post(&new_post("430102001", "镇长", None), 10, "dave").await.unwrap();
    store.update_post(&LeadershipPost { holder: Some("赵六".into()), ..post.clone() }, 1, "dave").await.unwrap();
    let stored = store.get_township(&township).await.unwrap();
    store.update_township(&Township { name: "文艺路".into(), ..stored }, 1, "erin").await.unwrap();
    store.create_post(&new_post("430102002", "镇长", None), 10, "frank").await.unwrap();

    let events = store.list_audit_events(&name, &page(0)).await.unwrap();
    let summary: Vec<(&str, &str, &str)> =
        events.items.iter().map(|e| (e.action.as_str(), e.actor.as_str(), e.resource.as_str())).collect();
    let institution_name = format!("{name}/institutions/{}", institution.id);
    // Its staffing quota is recorded as the ledger's first approval, audited beside it.
    let approval_name = format!("{institution_name}/staffingApprovals/1");
    let post_name = format!("{name}/posts/{}", post.id);
    let observation_name = format!("{name}/indicators/2023/observations/{}", observed[0].observation.id);
    assert_eq!(
        summary,
        [
            ("UpdateTownship", "erin", name.as_str()),
            ("UpdateLeadershipPost", "dave", post_name.as_str()),
            ("CreateLeadershipPost", "dave", post_name.as_str()),
            ("CreateStaffingApproval", "carol", approval_name.as_str()),
            ("CreateInstitution", "carol", institution_name.as_str()),
            ("RecordIndicators", "bob", observation_name.as_str()),
            ("ImportDivisions", ACTOR, name.as_str()),
        ]
    );
    let update = &events.items[1];
    let before: serde_json::Value = serde_json::from_str(update.before.as_deref().unwrap()).unwrap();
    let after: serde_json::Value = serde_json::from_str(update.after.as_deref().unwrap()).unwrap();
    assert_eq!((before["holder"].clone(), after["holder"].clone()), (serde_json::Value::Null, "赵六".into()));
    assert_eq!((before["revision"].as_i64(), after["revision"].as_i64()), (Some(1), Some(2)));
    let create = &events.items[4];
    assert_eq!(create.before, None);
    let after: Institution = serde_json::from_str(create.after.as_deref().unwrap()).unwrap();
    assert_eq!(after, institution);
    assert!(events.items.windows(2).all(|w| w[0].id > w[1].id && w[0].at >= w[1].at));

    // Paging, and the prefix filter: the whole city sees every event, "…/townships/43010200" none.
    let first = store.list_audit_events(&name, &page(2)).await.unwrap();
    let second = store.list_audit_events(&name, &next(2, &first.next)).await.unwrap();
    assert_eq!(second.items[0], events.items[2]);
    let all = store.list_audit_events("", &page(1000)).await.unwrap();
    let city_wide = store.list_audit_events("cities/4301", &page(1000)).await.unwrap();
    assert_eq!(all.items.len(), city_wide.items.len());
    assert!(all.items.iter().any(|e| e.actor == "frank"));
    assert!(
        store
            .list_audit_events("cities/4301/counties/430102/townships/43010200_", &page(10))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(store.list_audit_events("CITIES/4301", &page(10)).await.unwrap().items.is_empty());
}
