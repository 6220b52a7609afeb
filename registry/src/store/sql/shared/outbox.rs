//! [`OutboxRepo`]: the cohort jobs the classification worker claims, completes and fails.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::classes::insert_history;
use super::rows::{JOB_COLUMNS, job_from_row, optional_class, state_text};
use super::support::{audit, cohort_resource, run_resource};
use super::{Conn, FOR_UPDATE, SKIP_LOCKED, ThisStore};
use crate::domain::model::{ChangeCause, ClassChange, CohortJob, CohortKey, CohortState, NewRun, TimestampMs};
use crate::store::sql::json;
use crate::store::{OutboxRepo, StoreError, StoreResult, StoredRun};

#[async_trait]
impl OutboxRepo for ThisStore {
    async fn claim_due_cohort(&self, worker: &str, lease_ms: i64) -> StoreResult<Option<CohortJob>> {
        let now = now_ms();
        // One statement: the subquery picks (and on PostgreSQL locks, skipping rows another replica is
        // claiming) the most overdue claimable cohort, and the update writes the lease.
        let sql = format!(
            "UPDATE cohort_jobs SET lease_owner = $1, lease_until = $2 \
             WHERE (city, data_year) IN (SELECT city, data_year FROM cohort_jobs \
             WHERE state = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY next_attempt_at, city, data_year LIMIT 1{SKIP_LOCKED}) \
             RETURNING {JOB_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(worker)
            .bind(now.saturating_add(lease_ms.max(0)))
            .bind(now)
            .fetch_optional(&self.write)
            .await?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    async fn release_leases(&self, worker: &str) -> StoreResult<u64> {
        let result =
            sqlx::query("UPDATE cohort_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
                .bind(worker)
                .execute(&self.write)
                .await?;
        Ok(result.rows_affected())
    }

    async fn complete_run(&self, run: &NewRun, worker: &str) -> StoreResult<StoredRun> {
        let now = now_ms();
        let cohort = &run.cohort;
        let mut tx = self.begin_write().await?;
        let (job, holder) = lock_job(&mut tx, cohort).await?;
        check_lease(cohort, holder.as_deref(), worker)?;

        let rows = sqlx::query("SELECT code, name FROM townships WHERE city = $1")
            .bind(cohort.city.as_str())
            .fetch_all(&mut *tx)
            .await?;
        let mut names = HashMap::with_capacity(rows.len());
        for row in rows {
            names.insert(row.try_get::<String, _>("code")?, row.try_get::<String, _>("name")?);
        }
        let rows = sqlx::query(
            "SELECT c.township, c.computed_class FROM township_classes c JOIN townships t ON t.code = c.township \
             WHERE t.city = $1 AND c.data_year = $2",
        )
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .fetch_all(&mut *tx)
        .await?;
        let mut old_classes = HashMap::with_capacity(rows.len());
        for row in rows {
            old_classes.insert(row.try_get::<String, _>("township")?, optional_class(row.try_get("computed_class")?)?);
        }

        let mut seen = HashSet::new();
        let mut moved = Vec::new();
        for line in &run.lines {
            let code = line.township.as_str();
            if line.township.city() != cohort.city || !names.contains_key(code) {
                return Err(StoreError::NotFound(format!(
                    "township {code} (a line of the run of cohort {} {})",
                    cohort.city, cohort.data_year
                )));
            }
            if !seen.insert(code) {
                return Err(StoreError::AlreadyExists(format!("a line for township {code} in the run")));
            }
            let previous = old_classes.get(code).copied().flatten();
            if previous != Some(line.class) {
                moved.push((line, previous));
            }
        }

        let row = sqlx::query(
            "INSERT INTO classification_runs (city, data_year, generation, policy_version, policy_fingerprint, run_at, \
             run_by, classes_changed, lines, response) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .bind(run.generation)
        .bind(run.policy_version)
        .bind(&run.policy_fingerprint)
        .bind(now)
        .bind(worker)
        .bind(i64::try_from(moved.len()).unwrap_or(i64::MAX))
        .bind(json(&run.lines))
        .bind(&run.response)
        .fetch_one(&mut *tx)
        .await?;
        let run_id: i64 = row.try_get("id")?;

        // previous_class is the class before the latest change: a new row starts without one, an existing row
        // keeps its own, and insert_history below sets it for every class that moves.
        for line in &run.lines {
            sqlx::query(
                "INSERT INTO township_classes (township, data_year, computed_class, previous_class, score, class_rank, \
                 index_population, index_fiscal_revenue, index_land_area, run_id, explanation, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (township, data_year) DO UPDATE SET computed_class = excluded.computed_class, \
                 score = excluded.score, class_rank = excluded.class_rank, \
                 index_population = excluded.index_population, index_fiscal_revenue = excluded.index_fiscal_revenue, \
                 index_land_area = excluded.index_land_area, run_id = excluded.run_id, \
                 explanation = excluded.explanation, updated_at = excluded.updated_at",
            )
            .bind(line.township.as_str())
            .bind(i64::from(cohort.data_year))
            .bind(i64::from(line.class))
            .bind(None::<i64>)
            .bind(line.score)
            .bind(i64::from(line.rank))
            .bind(line.indices.population)
            .bind(line.indices.fiscal_revenue)
            .bind(line.indices.land_area)
            .bind(run_id)
            .bind(&line.explanation)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }

        let mut changes = Vec::with_capacity(moved.len());
        for (line, previous) in moved {
            let change = ClassChange {
                township: line.township.clone(),
                township_name: names.get(line.township.as_str()).cloned().unwrap_or_default(),
                data_year: cohort.data_year,
                previous_class: previous,
                new_class: line.class,
                score: line.score,
                cause: ChangeCause::Classification,
                run_id: Some(run_id),
                changed_at: now,
            };
            insert_history(&mut tx, &change).await?;
            changes.push(change);
        }

        let job_cleared = job.generation == run.generation;
        let state = if job_cleared { CohortState::Current } else { CohortState::Pending };
        sqlx::query(
            "UPDATE cohort_jobs SET state = $1, attempts = 0, last_error = '', next_attempt_at = $2, last_run = $3, \
             lease_owner = NULL, lease_until = NULL, updated_at = $2 WHERE city = $4 AND data_year = $5",
        )
        .bind(state_text(state))
        .bind(now)
        .bind(run_id)
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .execute(&mut *tx)
        .await?;

        let after = serde_json::json!({
            "id": run_id,
            "cohort": cohort,
            "generation": run.generation,
            "policy_version": run.policy_version,
            "policy_fingerprint": run.policy_fingerprint,
            "townships": run.lines.len(),
            "classes_changed": changes.len(),
            "job_cleared": job_cleared,
        });
        let resource = run_resource(&cohort.city, run_id);
        audit(&mut tx, worker, now, "ClassifyCohort", &resource, None, Some(after.to_string())).await?;
        tx.commit().await?;
        Ok(StoredRun { run_id, changes, job_cleared })
    }

    async fn fail_attempt(
        &self,
        cohort: &CohortKey,
        worker: &str,
        error: &str,
        next_attempt_at: TimestampMs,
        dead_letter: bool,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let (job, holder) = lock_job(&mut tx, cohort).await?;
        check_lease(cohort, holder.as_deref(), worker)?;
        let state = if dead_letter { CohortState::DeadLetter } else { CohortState::Pending };
        sqlx::query(
            "UPDATE cohort_jobs SET state = $1, attempts = attempts + 1, last_error = $2, next_attempt_at = $3, \
             lease_owner = NULL, lease_until = NULL, updated_at = $4 WHERE city = $5 AND data_year = $6",
        )
        .bind(state_text(state))
        .bind(error)
        .bind(next_attempt_at)
        .bind(now)
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .execute(&mut *tx)
        .await?;
        let after = serde_json::json!({
            "cohort": cohort,
            "state": state_text(state),
            "generation": job.generation,
            "attempts": job.attempts + 1,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
        });
        let action = if dead_letter { "DeadLetterClassification" } else { "FailClassificationAttempt" };
        audit(&mut tx, worker, now, action, &cohort_resource(cohort), None, Some(after.to_string())).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn cohort_job(&self, cohort: &CohortKey) -> StoreResult<Option<CohortJob>> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM cohort_jobs WHERE city = $1 AND data_year = $2");
        sqlx::query(&sql)
            .bind(cohort.city.as_str())
            .bind(i64::from(cohort.data_year))
            .fetch_optional(&self.read)
            .await?
            .map(|row| job_from_row(&row))
            .transpose()
    }

    async fn next_due_at(&self) -> StoreResult<Option<TimestampMs>> {
        // A leased cohort is due again when its lease runs out (if its holder never reports back).
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_until > next_attempt_at THEN lease_until \
             ELSE next_attempt_at END) AS due FROM cohort_jobs WHERE state = 'pending'",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(row.try_get("due")?)
    }
}

/// The cohort's outbox row and its lease holder, locked (PostgreSQL).
async fn lock_job(conn: &mut Conn, cohort: &CohortKey) -> StoreResult<(CohortJob, Option<String>)> {
    let sql =
        format!("SELECT {JOB_COLUMNS}, lease_owner FROM cohort_jobs WHERE city = $1 AND data_year = $2{FOR_UPDATE}");
    let row = sqlx::query(&sql)
        .bind(cohort.city.as_str())
        .bind(i64::from(cohort.data_year))
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!("classification job of cohort {} {}", cohort.city, cohort.data_year))
        })?;
    Ok((job_from_row(&row)?, row.try_get("lease_owner")?))
}

fn check_lease(cohort: &CohortKey, holder: Option<&str>, worker: &str) -> StoreResult<()> {
    if holder == Some(worker) {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "cohort {} {} is not leased to {worker:?} (lease holder: {}); its lease expired and another worker may \
         have claimed it",
        cohort.city,
        cohort.data_year,
        holder.map_or_else(|| "none".to_owned(), |h| format!("{h:?}"))
    )))
}
