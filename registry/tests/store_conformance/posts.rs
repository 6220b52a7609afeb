//! Leadership posts (`PostRepo`).

use township_registry::domain::model::{LeadershipPost, MandatedRole};
use township_registry::store::StoreError;

use crate::{ACTOR, TestDb, code, import_fixture, new_post, next, page};

conformance!(post_quota_and_post_revisions);

async fn post_quota_and_post_revisions(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let township = code("430103002");
    let secretary = store.create_post(&new_post("430103002", "党委书记", Some("张三")), 2, ACTOR).await.unwrap();
    let mayor = store.create_post(&new_post("430103002", "乡长", None), 2, ACTOR).await.unwrap();
    assert_eq!((secretary.revision, mayor.holder.clone()), (1, None));
    match store.create_post(&new_post("430103002", "副乡长", Some("李四")), 2, ACTOR).await.unwrap_err() {
        StoreError::LimitExceeded(message) => {
            assert!(message.contains("township 430103002 already has 2 leadership posts"), "{message}");
            assert!(message.contains("党委书记 张三"), "{message}");
            assert!(message.contains("乡长 (vacant)"), "{message}");
            assert!(message.contains("at most 2"), "{message}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }

    let change = LeadershipPost {
        holder: Some("王五".into()),
        mandated_role: Some(MandatedRole::DisciplineInspectionSecretary),
        ..mayor.clone()
    };
    let updated = store.update_post(&change, 1, ACTOR).await.unwrap();
    assert_eq!((updated.revision, updated.holder.as_deref()), (2, Some("王五")));
    assert_eq!(store.get_post(&township, mayor.id).await.unwrap(), updated);
    match store.update_post(&change, 1, ACTOR).await.unwrap_err() {
        StoreError::Conflict(message) => {
            assert!(message.contains("expected revision 1") && message.contains("stored revision 2"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let posts = store.list_posts(&township, &page(1)).await.unwrap();
    assert_eq!(posts.items, std::slice::from_ref(&secretary));
    let rest = store.list_posts(&township, &next(1, &posts.next)).await.unwrap();
    assert_eq!((rest.items.clone(), rest.next.clone()), (vec![updated], None));

    store.delete_post(&township, secretary.id, ACTOR).await.unwrap();
    assert!(matches!(store.get_post(&township, secretary.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_post(&township, secretary.id, ACTOR).await, Err(StoreError::NotFound(_))));
    store.create_post(&new_post("430103002", "副乡长", Some("李四")), 2, ACTOR).await.unwrap();
}
