//! The classification outbox: claims, leases, completed runs and failed attempts (`OutboxRepo`).

use std::collections::HashSet;

use township_registry::domain::model::CohortState;
use township_registry::store::{self, StoreError};
use township_runtime::now_ms;

use crate::{ACTOR, TestDb, cohort, import_fixture, line, new_run, observation};

conformance!(
    outbox_claims_and_generations,
    a_restarted_worker_releases_its_own_leases_only,
    failed_attempts_back_off_then_dead_letter,
    concurrent_claims_never_share_a_cohort,
    indicator_writes_racing_runs_of_their_cohort_all_succeed,
);

async fn outbox_claims_and_generations(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    let before = now_ms();
    store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    let job = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!((job.state, job.generation, job.attempts, job.last_run), (CohortState::Pending, 1, 0, None));
    assert!(job.next_attempt_at >= before && job.next_attempt_at <= now_ms());
    store.record_observations(&[observation("430102002", 2023, 3.0)], ACTOR, false).await.unwrap();
    assert_eq!(store.cohort_job(&cohort(2023)).await.unwrap().unwrap().generation, 2);
    assert!(store.next_due_at().await.unwrap().unwrap() <= now_ms());

    let claimed = store.claim_due_cohort("worker-1", 60_000).await.unwrap().expect("the pending cohort");
    assert_eq!((claimed.cohort.clone(), claimed.generation), (cohort(2023), 2));
    assert_eq!(store.claim_due_cohort("worker-2", 60_000).await.unwrap(), None, "the lease holds");
    // While leased, the cohort is due when the lease runs out.
    assert!(store.next_due_at().await.unwrap().unwrap() > now_ms() + 50_000);

    // A change arrives while classifying: the run is stored but the job stays pending.
    store.record_observations(&[observation("430102003", 2023, 2.0)], ACTOR, false).await.unwrap();
    let lines = vec![line("430102001", 1, 90.0), line("430102002", 2, 60.0)];
    let error = store.complete_run(&new_run(2023, claimed.generation, lines.clone()), "worker-2").await.unwrap_err();
    assert!(matches!(&error, StoreError::Conflict(m) if m.contains("worker-2")), "{error}");
    let stale = store.complete_run(&new_run(2023, claimed.generation, lines), "worker-1").await.unwrap();
    assert!(!stale.job_cleared);
    let job = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!((job.state, job.generation, job.last_run), (CohortState::Pending, 3, Some(stale.run_id)));
    assert!(job.next_attempt_at <= now_ms());

    // The lease was released: the next pass claims it again and clears it.
    let again = store.claim_due_cohort("worker-2", 60_000).await.unwrap().expect("pending again");
    assert_eq!(again.generation, 3);
    let lines = vec![line("430102001", 1, 90.0), line("430102002", 2, 60.0), line("430102003", 3, 30.0)];
    let fresh = store.complete_run(&new_run(2023, 3, lines), "worker-2").await.unwrap();
    assert!(fresh.job_cleared);
    let job = store.cohort_job(&cohort(2023)).await.unwrap().unwrap();
    assert_eq!((job.state, job.attempts, job.last_run), (CohortState::Current, 0, Some(fresh.run_id)));
    assert_eq!(store.claim_due_cohort("worker-1", 60_000).await.unwrap(), None);
    assert_eq!(store.next_due_at().await.unwrap(), None);
    assert_eq!(store.cohort_job(&cohort(2019)).await.unwrap(), None);
}

async fn a_restarted_worker_releases_its_own_leases_only(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    store
        .record_observations(&[observation("430102001", 2023, 5.0), observation("430102002", 2022, 4.0)], ACTOR, false)
        .await
        .unwrap();
    let mine = store.claim_due_cohort("host-a:50052", 60_000).await.unwrap().expect("a due cohort");
    let theirs = store.claim_due_cohort("host-b:50052", 60_000).await.unwrap().expect("the other cohort");
    assert_eq!(store.claim_due_cohort("host-c:50052", 60_000).await.unwrap(), None, "both are leased");

    // host-a crashed and came back under the same id: its lease goes, host-b's stays.
    assert_eq!(store.release_leases("host-a:50052").await.unwrap(), 1);
    let reclaimed = store.claim_due_cohort("host-a:50052", 60_000).await.unwrap().expect("free again");
    assert_eq!(reclaimed.cohort, mine.cohort);
    assert_ne!(reclaimed.cohort, theirs.cohort);
    assert_eq!(store.release_leases("host-z:50052").await.unwrap(), 0);
}

async fn failed_attempts_back_off_then_dead_letter(db: TestDb) {
    let store = &*db.store;
    import_fixture(store).await;
    store.record_observations(&[observation("430102001", 2023, 5.0)], ACTOR, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().unwrap();
    let later = now_ms() + 3_600_000;
    let error = store.fail_attempt(&job.cohort, "worker-2", "boom", later, false).await.unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)));
    store.fail_attempt(&job.cohort, "worker-1", "classifier unavailable", later, false).await.unwrap();
    let failed = store.cohort_job(&job.cohort).await.unwrap().unwrap();
    assert_eq!(
        (failed.state, failed.attempts, failed.last_error.as_str(), failed.next_attempt_at),
        (CohortState::Pending, 1, "classifier unavailable", later)
    );
    assert_eq!(store.claim_due_cohort("worker-1", 60_000).await.unwrap(), None, "not due yet");
    assert_eq!(store.next_due_at().await.unwrap(), Some(later));
    // The lease was released: failing again without claiming is refused.
    assert!(matches!(
        store.fail_attempt(&job.cohort, "worker-1", "x", later, false).await,
        Err(StoreError::Conflict(_))
    ));

    // Due again now (as if the back-off elapsed) …
    store.record_observations(&[observation("430102002", 2023, 3.0)], ACTOR, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().unwrap();
    assert_eq!(job.attempts, 0, "a new change resets the attempts");
    store.fail_attempt(&job.cohort, "worker-1", "first", now_ms() - 1, false).await.unwrap();
    let job = store.claim_due_cohort("worker-1", 60_000).await.unwrap().expect("due again");
    assert_eq!(job.attempts, 1);
    store.fail_attempt(&job.cohort, "worker-1", "gave up", now_ms(), true).await.unwrap();
    let dead = store.cohort_job(&job.cohort).await.unwrap().unwrap();
    assert_eq!((dead.state, dead.attempts, dead.last_error.as_str()), (CohortState::DeadLetter, 2, "gave up"));
    assert_eq!(store.claim_due_cohort("worker-1", 60_000).await.unwrap(), None);
    assert_eq!(store.next_due_at().await.unwrap(), None);

    // A new change revives a dead-lettered cohort.
    store.record_observations(&[observation("430102001", 2023, 5.5)], ACTOR, false).await.unwrap();
    let revived = store.cohort_job(&job.cohort).await.unwrap().unwrap();
    assert_eq!((revived.state, revived.attempts, revived.last_error.as_str()), (CohortState::Pending, 0, ""));
}

/// Several replicas claiming at once never get the same cohort (on SQLite the single writer serialises them;
/// on PostgreSQL it is `FOR UPDATE SKIP LOCKED` and the lease).
async fn concurrent_claims_never_share_a_cohort(db: TestDb) {
    import_fixture(&*db.store).await;
    let years: Vec<i32> = (2010..2022).collect();
    let observations: Vec<_> = years.iter().map(|y| observation("430102001", *y, 5.0)).collect();
    db.store.record_observations(&observations, ACTOR, false).await.unwrap();
    let replica = store::open(&db.url).await.unwrap();
    let stores = [db.store.clone(), replica];
    let claims = (0..24).map(|i| {
        let store = stores[i % 2].clone();
        tokio::spawn(async move { store.claim_due_cohort(&format!("worker-{i}"), 60_000).await.unwrap() })
    });
    let mut claimed = Vec::new();
    for claim in claims.collect::<Vec<_>>() {
        if let Some(job) = claim.await.unwrap() {
            claimed.push(job.cohort.data_year);
        }
    }
    let distinct: HashSet<i32> = claimed.iter().copied().collect();
    assert_eq!(distinct.len(), claimed.len(), "a cohort was claimed twice: {claimed:?}");
    assert_eq!(distinct, years.iter().copied().collect::<HashSet<_>>());
    assert_eq!(stores[0].claim_due_cohort("late", 60_000).await.unwrap(), None);
}

/// An indicator write locks the audit chain and then its cohort's row; a run locks the cohort's row and then
/// the chain. On PostgreSQL that order once answered writes with `deadlock detected`: every write and every run
/// must now succeed however they interleave.
async fn indicator_writes_racing_runs_of_their_cohort_all_succeed(db: TestDb) {
    import_fixture(&*db.store).await;
    let townships = ["430102001", "430102002", "430102003", "430103001", "430103002"];
    let mut writers = Vec::new();
    for (index, township) in (0u8..).zip(townships) {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..20 {
                let population = 1.0 + f64::from(round) + f64::from(index) / 10.0;
                store.record_observations(&[observation(township, 2023, population)], ACTOR, false).await?;
            }
            Ok::<_, StoreError>(())
        }));
    }
    let store = db.store.clone();
    let worker = tokio::spawn(async move {
        let mut runs = 0;
        for _ in 0..200 {
            let Some(job) = store.claim_due_cohort("worker-1", 60_000).await? else {
                tokio::task::yield_now().await;
                continue;
            };
            let lines = townships.iter().map(|t| line(t, 2, 50.0)).collect();
            store.complete_run(&new_run(2023, job.generation, lines), "worker-1").await?;
            runs += 1;
        }
        Ok::<_, StoreError>(runs)
    });
    for writer in writers {
        writer.await.unwrap().expect("every indicator write succeeds");
    }
    let runs = worker.await.unwrap().expect("every run stores");
    assert!(runs > 0, "the worker classified the cohort at least once while the writes ran");
}
