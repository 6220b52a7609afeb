//! The audit log (`AuditRepo`).

use std::path::Path;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use township_registry::audit::{self, CheckpointConfig, Verification};
use township_registry::domain::model::{Institution, InstitutionKind, LeadershipPost, Township};
use township_registry::domain::names::township_name;

use crate::{ACTOR, TestDb, code, import_fixture, new_institution, new_post, next, observation, page};

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

conformance!(
    audit_events_record_every_write,
    the_audit_log_is_a_gap_free_hash_chain_that_verifies,
    the_database_refuses_to_change_or_delete_audit_events,
    verify_names_a_changed_event_by_its_seq,
    verify_names_a_deleted_middle_event_by_its_seq,
    verify_catches_a_cut_tail_from_the_checkpoint_file,
    verify_names_swapped_events_by_the_first_seq,
    verify_refuses_a_checkpoint_signed_with_another_key,
    eight_concurrent_writers_leave_a_gap_free_chain,
    a_write_rolled_back_after_its_audit_event_leaves_no_gap,
);

/// A few audited writes: the fixture's import, then three posts.
async fn audited_writes(db: &TestDb) -> u64 {
    let store = &*db.store;
    import_fixture(store).await;
    for role in ["镇长", "副镇长", "党委书记"] {
        store.create_post(&new_post("430102001", role, None), 10, "dave").await.unwrap();
    }
    store.audit_chain_head().await.unwrap().0
}

fn signing_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn checkpoint_config(dir: &tempfile::TempDir) -> CheckpointConfig {
    CheckpointConfig {
        key: signing_key(),
        file: dir.path().join("checkpoints.jsonl"),
        interval: Duration::from_secs(60),
    }
}

async fn verification(db: &TestDb, file: &Path) -> Verification {
    audit::verify(&*db.store, file, &[signing_key().verifying_key()]).await.unwrap()
}

fn broken_at(verification: Verification) -> u64 {
    match verification {
        Verification::Broken(broken) => broken.seq,
        Verification::Intact(verified) => panic!("a tampered log verified: {verified:?}"),
    }
}

/// Runs `sql` on the test's database over a connection of its own, as an operator (or intruder) with SQL
/// access would.
async fn raw_sql(db: &TestDb, sql: &str) -> Result<(), sqlx::Error> {
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await?;
        sqlx::raw_sql(sql).execute(&pool).await.map(drop)
    } else {
        let pool = sqlx::PgPool::connect(&db.url).await?;
        sqlx::raw_sql(sql).execute(&pool).await.map(drop)
    }
}

/// What an intruder with the table owner's rights does first: switch the append-only triggers off.
async fn disable_append_only_triggers(db: &TestDb) {
    let sql = if db.url.starts_with("sqlite:") {
        "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
         DROP TRIGGER audit_checkpoints_no_delete;"
    } else {
        "ALTER TABLE audit_events DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;"
    };
    raw_sql(db, sql).await.unwrap();
}

async fn the_audit_log_is_a_gap_free_hash_chain_that_verifies(db: TestDb) {
    let head = audited_writes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let config = checkpoint_config(&dir);
    let checkpoint = audit::checkpoint_once(&*db.store, &config).await.unwrap().expect("a first checkpoint");
    assert_eq!(checkpoint.seq, head);
    assert_eq!(audit::checkpoint_once(&*db.store, &config).await.unwrap(), None, "nothing new to sign");

    let chain = db.store.chained_audit_events(0, 10_000).await.unwrap();
    let seqs: Vec<u64> = chain.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=head).collect::<Vec<_>>());
    assert!(chain.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    match verification(&db, &config.file).await {
        Verification::Intact(verified) => assert_eq!((verified.events, verified.covered_to), (head, head)),
        Verification::Broken(broken) => panic!("an untouched log failed to verify: {broken}"),
    }
    assert_eq!(audit::read_checkpoint_file(&config.file).unwrap(), [checkpoint]);
}

async fn the_database_refuses_to_change_or_delete_audit_events(db: TestDb) {
    audited_writes(&db).await;
    for sql in [
        "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 2",
        "INSERT INTO audit_events (actor, at, action, resource) VALUES ('mallory', 0, 'X', 'cities/4301')",
    ] {
        let refused = raw_sql(&db, sql).await.expect_err(sql).to_string();
        assert!(refused.contains("append-only") || refused.contains("must carry"), "{sql}: {refused}");
    }
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(verification(&db, &dir.path().join("none")).await, Verification::Intact(_)));
}

async fn verify_names_a_changed_event_by_its_seq(db: TestDb) {
    audited_writes(&db).await;
    disable_append_only_triggers(&db).await;
    raw_sql(&db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(broken_at(verification(&db, &dir.path().join("none")).await), 3);
}

async fn verify_names_a_deleted_middle_event_by_its_seq(db: TestDb) {
    audited_writes(&db).await;
    disable_append_only_triggers(&db).await;
    raw_sql(&db, "DELETE FROM audit_events WHERE seq = 2").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(broken_at(verification(&db, &dir.path().join("none")).await), 2);
}

async fn verify_catches_a_cut_tail_from_the_checkpoint_file(db: TestDb) {
    let head = audited_writes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let config = checkpoint_config(&dir);
    audit::checkpoint_once(&*db.store, &config).await.unwrap().expect("a checkpoint");
    disable_append_only_triggers(&db).await;
    // The intruder cuts the last two events and the database's checkpoint; the file outside keeps its copy.
    let cut = format!(
        "DELETE FROM audit_events WHERE seq > {}; DELETE FROM audit_checkpoints; UPDATE audit_head SET seq = {}",
        head - 2,
        head - 2
    );
    raw_sql(&db, &cut).await.unwrap();
    assert_eq!(broken_at(verification(&db, &config.file).await), head - 1);
}

async fn verify_names_swapped_events_by_the_first_seq(db: TestDb) {
    audited_writes(&db).await;
    disable_append_only_triggers(&db).await;
    // Each event keeps its own hashes; only their places in the sequence trade.
    raw_sql(
        &db,
        "UPDATE audit_events SET seq = -3 WHERE seq = 3; UPDATE audit_events SET seq = 3 WHERE seq = 2; \
         UPDATE audit_events SET seq = 2 WHERE seq = -3",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(broken_at(verification(&db, &dir.path().join("none")).await), 2);
}

async fn verify_refuses_a_checkpoint_signed_with_another_key(db: TestDb) {
    let head = audited_writes(&db).await;
    let dir = tempfile::tempdir().unwrap();
    // An intruder who rewrote the log signs a checkpoint of it with a key of their own.
    let forged = CheckpointConfig { key: SigningKey::from_bytes(&[7; 32]), ..checkpoint_config(&dir) };
    audit::checkpoint_once(&*db.store, &forged).await.unwrap().expect("a checkpoint");
    assert_eq!(broken_at(verification(&db, &forged.file).await), head);
}

async fn eight_concurrent_writers_leave_a_gap_free_chain(db: TestDb) {
    import_fixture(&*db.store).await;
    let townships =
        ["430102001", "430102002", "430102003", "430103001", "430103002", "430102001", "430102002", "430103001"];
    let mut writers = Vec::new();
    for (writer, township) in (0u8..).zip(townships) {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..10u8 {
                let population = f64::from(writer) + f64::from(round) / 100.0 + 1.0;
                store.record_observations(&[observation(township, 2023, population)], ACTOR, false).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let chain = db.store.chained_audit_events(0, 10_000).await.unwrap();
    let seqs: Vec<u64> = chain.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=db.store.audit_chain_head().await.unwrap().0).collect::<Vec<_>>(), "gap-free");
    assert!(chain.iter().filter(|e| e.event.action == "RecordIndicators").count() >= 80);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(verification(&db, &dir.path().join("none")).await, Verification::Intact(_)));
}

async fn a_write_rolled_back_after_its_audit_event_leaves_no_gap(db: TestDb) {
    let head = audited_writes(&db).await;
    // The first observation is recorded and audited inside the transaction; the second names no township, so
    // the whole transaction rolls back, as a crash before the commit would.
    let failed = db
        .store
        .record_observations(&[observation("430102001", 2023, 7.5), observation("430102999", 2023, 1.0)], ACTOR, false)
        .await;
    assert!(failed.is_err());
    assert_eq!(db.store.audit_chain_head().await.unwrap().0, head, "the head did not move");
    db.store.record_observations(&[observation("430102001", 2023, 7.5)], ACTOR, false).await.unwrap();
    let chain = db.store.chained_audit_events(0, 10_000).await.unwrap();
    let seqs: Vec<u64> = chain.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=head + 1).collect::<Vec<_>>(), "the next event takes the next number");
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(verification(&db, &dir.path().join("none")).await, Verification::Intact(_)));
}
