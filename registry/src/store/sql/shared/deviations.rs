//! [`DeviationRepo`]: approved deviations, created and revoked, never deleted.

use async_trait::async_trait;
use township_runtime::now_ms;

use super::rows::{DEVIATION_COLUMNS, deviation_from_row};
use super::support::{audit, county_exists, ensure_scope, find_township};
use super::{Conn, ThisStore};
use crate::domain::deviations::{
    ApprovedDeviation, DeviationRevocation, DeviationScope, NewApprovedDeviation, deviation_name,
};
use crate::domain::model::TimestampMs;
use crate::domain::names::{Scope, TownshipCode};
use crate::store::sql::{after_id_ascending, iso_date, json, page_by, page_limit};
use crate::store::{DeviationRepo, Page, PageRequest, StoreError, StoreResult};

#[async_trait]
impl DeviationRepo for ThisStore {
    async fn create_deviation(&self, deviation: &NewApprovedDeviation, actor: &str) -> StoreResult<ApprovedDeviation> {
        let mut tx = self.begin_write().await?;
        let created = insert_deviation(&mut tx, deviation, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get_deviation(&self, scope: &DeviationScope, id: i64) -> StoreResult<ApprovedDeviation> {
        let mut conn = self.read.acquire().await?;
        find_deviation(&mut conn, scope, id).await
    }

    async fn list_deviations(
        &self,
        scope: &DeviationScope,
        page: &PageRequest,
    ) -> StoreResult<Page<ApprovedDeviation>> {
        let limit = page_limit(page);
        let after = after_id_ascending(page)?;
        let mut conn = self.read.acquire().await?;
        // A county's: all it recorded (its own and its townships'); a township's: those that apply to it.
        let rows = match scope {
            DeviationScope::County(county) => {
                let sql = format!(
                    "SELECT {DEVIATION_COLUMNS} FROM approved_deviations d WHERE d.county = $1 AND d.id > $2 \
                     ORDER BY d.id LIMIT $3"
                );
                sqlx::query(&sql).bind(county.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?
            }
            DeviationScope::Township(township) => {
                let sql = format!(
                    "SELECT {DEVIATION_COLUMNS} FROM approved_deviations d WHERE d.county = $1 \
                     AND (d.township IS NULL OR d.township = $2) AND d.id > $3 ORDER BY d.id LIMIT $4"
                );
                sqlx::query(&sql)
                    .bind(township.county().as_str())
                    .bind(township.as_str())
                    .bind(after)
                    .bind(limit + 1)
                    .fetch_all(&mut *conn)
                    .await?
            }
        };
        if rows.is_empty() {
            ensure_scope(&mut conn, &parent_scope(scope)).await?;
        }
        let deviations = rows.iter().map(deviation_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(deviations, limit, |deviation| deviation.id.to_string()))
    }

    async fn revoke_deviation(
        &self,
        scope: &DeviationScope,
        id: i64,
        revocation: &DeviationRevocation,
        actor: &str,
    ) -> StoreResult<ApprovedDeviation> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored = find_deviation(&mut tx, scope, id).await?;
        if let Some(earlier) = &stored.revocation {
            return Err(StoreError::FailedPrecondition(format!(
                "approved deviation {} was revoked before, by {}",
                stored.name(),
                earlier.document_number
            )));
        }
        sqlx::query(
            "UPDATE approved_deviations SET revoked_at = $1, revoked_by = $2, revocation_document_number = $3, \
             revocation_reason = $4 WHERE id = $5 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(actor)
        .bind(&revocation.document_number)
        .bind(&revocation.reason)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let revoked = find_deviation(&mut tx, scope, id).await?;
        audit(
            &mut tx,
            actor,
            now,
            "RevokeApprovedDeviation",
            &revoked.name(),
            Some(json(&stored)),
            Some(json(&revoked)),
        )
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn deviations_in_force(&self, township: &TownshipCode) -> StoreResult<Vec<ApprovedDeviation>> {
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {DEVIATION_COLUMNS} FROM approved_deviations d WHERE d.county = $1 \
             AND (d.township IS NULL OR d.township = $2) AND d.revoked_at IS NULL ORDER BY d.id"
        );
        let rows =
            sqlx::query(&sql).bind(township.county().as_str()).bind(township.as_str()).fetch_all(&mut *conn).await?;
        let unrevoked = rows.iter().map(deviation_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(in_force_on(unrevoked, &iso_date(now_ms())))
    }
}

/// The deviations among `unrevoked` that apply on `today` ([`ApprovedDeviation::in_force`], the one definition).
pub(super) fn in_force_on(unrevoked: Vec<ApprovedDeviation>, today: &str) -> Vec<ApprovedDeviation> {
    unrevoked.into_iter().filter(|deviation| deviation.in_force(today)).collect()
}

fn parent_scope(scope: &DeviationScope) -> Scope {
    match scope {
        DeviationScope::County(county) => Scope::County(county.clone()),
        DeviationScope::Township(township) => Scope::Township(township.clone()),
    }
}

async fn find_deviation(conn: &mut Conn, scope: &DeviationScope, id: i64) -> StoreResult<ApprovedDeviation> {
    let sql = format!("SELECT {DEVIATION_COLUMNS} FROM approved_deviations d WHERE d.id = $1");
    let found = sqlx::query(&sql).bind(id).fetch_optional(&mut *conn).await?;
    match found.map(|row| deviation_from_row(&row)).transpose()? {
        Some(deviation) if deviation.scope == *scope => Ok(deviation),
        _ => Err(StoreError::NotFound(format!("approved deviation {}", deviation_name(scope, id)))),
    }
}

pub(super) async fn insert_deviation(
    tx: &mut Conn,
    deviation: &NewApprovedDeviation,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<ApprovedDeviation> {
    let scope = &deviation.scope;
    let county = scope.county();
    let exists = match scope {
        DeviationScope::County(county) => county_exists(tx, county).await?,
        DeviationScope::Township(township) => find_township(tx, township).await?.is_some(),
    };
    if !exists {
        return Err(StoreError::NotFound(match scope {
            DeviationScope::County(county) => format!("county {county}"),
            DeviationScope::Township(township) => format!("township {township}"),
        }));
    }
    let township = scope.township().map(TownshipCode::as_str);
    let sql = format!(
        "SELECT {DEVIATION_COLUMNS} FROM approved_deviations d WHERE d.county = $1 \
         AND COALESCE(d.township, '') = $2 AND d.rule = $3 AND d.revoked_at IS NULL"
    );
    let unrevoked = sqlx::query(&sql)
        .bind(county.as_str())
        .bind(township.unwrap_or(""))
        .bind(&deviation.rule)
        .fetch_optional(&mut *tx)
        .await?;
    if let Some(row) = unrevoked {
        let earlier = deviation_from_row(&row)?;
        return Err(already_recorded(&deviation.rule, scope, Some(&earlier)));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO approved_deviations (county, township, rule, allowed, allowed_description, document_number, \
         approved_on, reason, valid_to, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         RETURNING id",
    )
    .bind(county.as_str())
    .bind(township)
    .bind(&deviation.rule)
    .bind(deviation.allowed.map(i64::from))
    .bind(&deviation.allowed_description)
    .bind(&deviation.document_number)
    .bind(&deviation.approved_on)
    .bind(&deviation.reason)
    .bind(&deviation.valid_to)
    .bind(actor)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|error| match error {
        // Recorded concurrently by another writer since the check above.
        sqlx::Error::Database(e) if e.is_unique_violation() => already_recorded(&deviation.rule, scope, None),
        other => other.into(),
    })?;
    let created = ApprovedDeviation {
        id,
        scope: scope.clone(),
        rule: deviation.rule.clone(),
        allowed: deviation.allowed,
        allowed_description: deviation.allowed_description.clone(),
        document_number: deviation.document_number.clone(),
        approved_on: deviation.approved_on.clone(),
        reason: deviation.reason.clone(),
        valid_to: deviation.valid_to.clone(),
        created_by: actor.to_owned(),
        created_at: now,
        revocation: None,
    };
    audit(tx, actor, now, "CreateApprovedDeviation", &created.name(), None, Some(json(&created))).await?;
    Ok(created)
}

fn already_recorded(rule: &str, scope: &DeviationScope, earlier: Option<&ApprovedDeviation>) -> StoreError {
    let which = earlier.map(|d| format!(" ({})", d.cited())).unwrap_or_default();
    StoreError::AlreadyExists(format!(
        "an unrevoked approved deviation of rule {rule} for {}{which}; revoke it before recording another",
        scope.name()
    ))
}
