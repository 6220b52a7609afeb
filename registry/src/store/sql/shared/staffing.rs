//! [`StaffingRepo`]: the staffing ledger and the actual headcounts.

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::institutions::find_institution;
use super::rows::{
    STAFFING_APPROVAL_COLUMNS, STAFFING_HEADCOUNT_COLUMNS, staffing_approval_from_row, staffing_headcount_from_row,
};
use super::support::{
    audit, ensure_scope, institution_resource, lock_township, staffing_approval_resource, staffing_headcount_resource,
};
use super::{Conn, DbRow, ThisStore};
use crate::domain::model::{
    Institution, NewStaffingApproval, NewStaffingHeadcount, StaffingApproval, StaffingHeadcount, StaffingType,
    TimestampMs,
};
use crate::domain::names::{Scope, TownshipCode};
use crate::store::sql::{after_id_ascending, json, page_by, page_limit};
use crate::store::{Page, PageRequest, StaffingRepo, StoreError, StoreResult};

#[async_trait]
impl StaffingRepo for ThisStore {
    async fn create_staffing_approval(
        &self,
        approval: &NewStaffingApproval,
        actor: &str,
    ) -> StoreResult<StaffingApproval> {
        let mut tx = self.begin_write().await?;
        let created = insert_staffing_approval(&mut tx, approval, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_staffing_approvals(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<StaffingApproval>> {
        let sql = format!("SELECT {STAFFING_APPROVAL_COLUMNS} FROM staffing_approvals s");
        let records = institution_records(self, &sql, "s", township, institution_id, page).await?;
        let approvals = records.iter().map(staffing_approval_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(approvals, page_limit(page), |approval| approval.id.to_string()))
    }

    async fn set_staffing_headcount(
        &self,
        township: &TownshipCode,
        institution_id: i64,
        staffing_type: StaffingType,
        actual: u32,
        actor: &str,
    ) -> StoreResult<StaffingHeadcount> {
        let mut tx = self.begin_write().await?;
        let headcount =
            set_headcount(&mut tx, &headcount_of(township, institution_id, staffing_type, actual), actor, now_ms())
                .await?;
        tx.commit().await?;
        Ok(headcount)
    }

    async fn list_staffing_headcounts(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<StaffingHeadcount>> {
        let sql = format!("SELECT {STAFFING_HEADCOUNT_COLUMNS} FROM staffing_headcounts h");
        let records = institution_records(self, &sql, "h", township, institution_id, page).await?;
        let headcounts = records.iter().map(staffing_headcount_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(headcounts, page_limit(page), |headcount| headcount.id.to_string()))
    }
}

/// One page (plus one row, to tell whether there is more) of `select`'s records of the township, or of one of its
/// institutions, in id order; an empty page of a missing township or institution is `NotFound`.
async fn institution_records(
    store: &ThisStore,
    select: &str,
    alias: &str,
    township: &TownshipCode,
    institution_id: Option<i64>,
    page: &PageRequest,
) -> StoreResult<Vec<DbRow>> {
    let limit = page_limit(page);
    let after = after_id_ascending(page)?;
    let mut conn = store.read.acquire().await?;
    let sql = format!(
        "{select} WHERE {alias}.township = $1 AND ($2 = 0 OR {alias}.institution_id = $3) AND {alias}.id > $4 \
         ORDER BY {alias}.id LIMIT $5"
    );
    let rows = sqlx::query(&sql)
        .bind(township.as_str())
        .bind(i64::from(institution_id.is_some()))
        .bind(institution_id.unwrap_or_default())
        .bind(after)
        .bind(limit + 1)
        .fetch_all(&mut *conn)
        .await?;
    if rows.is_empty() {
        match institution_id {
            Some(id) => drop(find_institution(&mut conn, township, id).await?),
            None => ensure_scope(&mut conn, &Scope::Township(township.clone())).await?,
        }
    }
    Ok(rows)
}

/// The institution's approved staffing of `staffing_type`: the sum of its ledger.
async fn approved(conn: &mut Conn, institution_id: i64, staffing_type: StaffingType) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(change), 0) AS BIGINT) FROM staffing_approvals \
         WHERE institution_id = $1 AND staffing_type = $2",
    )
    .bind(institution_id)
    .bind(staffing_type.as_str())
    .fetch_one(&mut *conn)
    .await?)
}

pub(super) async fn insert_staffing_approval(
    tx: &mut Conn,
    approval: &NewStaffingApproval,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<StaffingApproval> {
    let township = &approval.township;
    lock_township(tx, township).await?;
    let institution = find_institution(tx, township, approval.institution_id).await?;
    let before = approved(tx, institution.id, approval.staffing_type).await?;
    if before + approval.change < 0 {
        return Err(StoreError::FailedPrecondition(format!(
            "institution {} ({}) has {before} {} approved; a change of {} would leave {}: the approved figure \
             never goes below 0",
            institution_resource(township, institution.id),
            institution.name,
            approval.staffing_type.label_zh(),
            approval.change,
            before + approval.change
        )));
    }
    record_approval(tx, &institution, approval, actor, now).await
}

/// Adds `approval` to the ledger of `institution` (checked by the caller) and its sum to the institution's
/// `staffing_quota`, audited.
pub(super) async fn record_approval(
    tx: &mut Conn,
    institution: &Institution,
    approval: &NewStaffingApproval,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<StaffingApproval> {
    let row = sqlx::query(
        "INSERT INTO staffing_approvals (institution_id, township, document_number, approved_on, staffing_type, \
         funding_type, change, summary, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         RETURNING id",
    )
    .bind(institution.id)
    .bind(institution.township.as_str())
    .bind(&approval.document_number)
    .bind(&approval.approved_on)
    .bind(approval.staffing_type.as_str())
    .bind(approval.funding_type.as_str())
    .bind(approval.change)
    .bind(&approval.summary)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE institutions SET staffing_quota = staffing_quota + $1 WHERE id = $2")
        .bind(approval.change)
        .bind(institution.id)
        .execute(&mut *tx)
        .await?;
    let created = StaffingApproval {
        id: row.try_get("id")?,
        approval: approval.clone(),
        created_at: now,
        created_by: actor.into(),
    };
    let resource = staffing_approval_resource(&institution.township, institution.id, created.id);
    audit(tx, actor, now, "CreateStaffingApproval", &resource, None, Some(json(&created))).await?;
    Ok(created)
}

fn headcount_of(
    township: &TownshipCode,
    institution_id: i64,
    staffing_type: StaffingType,
    actual: u32,
) -> NewStaffingHeadcount {
    NewStaffingHeadcount { township: township.clone(), institution_id, staffing_type, actual }
}

/// Sets one headcount in the caller's transaction; the stored figure again changes nothing and is not audited.
pub(super) async fn set_headcount(
    tx: &mut Conn,
    new: &NewStaffingHeadcount,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<StaffingHeadcount> {
    let NewStaffingHeadcount { township, institution_id, staffing_type, actual } = new;
    let (institution_id, staffing_type, actual) = (*institution_id, *staffing_type, *actual);
    lock_township(tx, township).await?;
    find_institution(&mut *tx, township, institution_id).await?;
    let sql = format!(
        "SELECT {STAFFING_HEADCOUNT_COLUMNS} FROM staffing_headcounts h WHERE h.institution_id = $1 \
         AND h.staffing_type = $2"
    );
    let stored = sqlx::query(&sql)
        .bind(institution_id)
        .bind(staffing_type.as_str())
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| staffing_headcount_from_row(&row))
        .transpose()?;
    if let Some(stored) = &stored
        && stored.actual == actual
    {
        // The figure it already has: nothing changes, nothing to audit.
        return Ok(stored.clone());
    }
    let row = match &stored {
        Some(stored) => {
            sqlx::query(
                "UPDATE staffing_headcounts SET actual = $1, updated_at = $2, updated_by = $3 WHERE id = $4 \
                 RETURNING id",
            )
            .bind(i64::from(actual))
            .bind(now)
            .bind(actor)
            .bind(stored.id)
            .fetch_one(&mut *tx)
            .await?
        }
        None => {
            sqlx::query(
                "INSERT INTO staffing_headcounts (institution_id, township, staffing_type, actual, updated_at, \
                 updated_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(institution_id)
            .bind(township.as_str())
            .bind(staffing_type.as_str())
            .bind(i64::from(actual))
            .bind(now)
            .bind(actor)
            .fetch_one(&mut *tx)
            .await?
        }
    };
    let headcount = StaffingHeadcount {
        id: row.try_get("id")?,
        township: township.clone(),
        institution_id,
        staffing_type,
        actual,
        updated_at: now,
        updated_by: actor.to_owned(),
    };
    let resource = staffing_headcount_resource(township, institution_id, staffing_type);
    let before = stored.as_ref().map(json);
    audit(&mut *tx, actor, now, "SetStaffingHeadcount", &resource, before, Some(json(&headcount))).await?;
    Ok(headcount)
}
