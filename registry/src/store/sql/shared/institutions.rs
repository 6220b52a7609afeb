//! [`InstitutionRepo`]: institutions and their plaques.

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::rows::{INSTITUTION_COLUMNS, PLAQUE_COLUMNS, institution_from_row, plaque_from_row};
use super::staffing::record_approval;
use super::support::{
    audit, check_revision, ensure_scope, institution_resource, lock_township, plaque_resource, township_records,
};
use super::{Conn, ThisStore};
use crate::domain::catalogue::in_force;
use crate::domain::model::{
    FundingType, Institution, InstitutionKind, NewInstitution, NewPlaque, NewStaffingApproval, Plaque, StaffingType,
    TimestampMs,
};
use crate::domain::names::{Scope, TownshipCode};
use crate::store::sql::{after_id_ascending, iso_date, json, list_or_none, page_by, page_limit};
use crate::store::{InstitutionRepo, Page, PageRequest, StoreError, StoreResult};

/// 变动摘要 of the approval a create with a staffing quota records.
const FIRST_APPROVAL_SUMMARY: &str = "机构设立时核定编制";

#[async_trait]
impl InstitutionRepo for ThisStore {
    async fn create_institution(
        &self,
        institution: &NewInstitution,
        max_of_kind: u32,
        actor: &str,
    ) -> StoreResult<Institution> {
        let mut tx = self.begin_write().await?;
        let created = insert_institution(&mut tx, institution, max_of_kind, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get_institution(&self, township: &TownshipCode, id: i64) -> StoreResult<Institution> {
        let mut conn = self.read.acquire().await?;
        find_institution(&mut conn, township, id).await
    }

    async fn list_institutions(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<Institution>> {
        let sql = format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions i WHERE i.township = $1 AND i.id > $2 ORDER BY i.id LIMIT $3"
        );
        township_records(self, &sql, township, page, institution_from_row, |institution| institution.id).await
    }

    async fn update_institution(
        &self,
        institution: &Institution,
        expected_revision: i64,
        max_of_kind: u32,
        max_plaques: u32,
        actor: &str,
    ) -> StoreResult<Institution> {
        let now = now_ms();
        let today = iso_date(now);
        let township = &institution.township;
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let stored = find_institution(&mut tx, township, institution.id).await?;
        let resource = institution_resource(township, institution.id);
        check_revision(&resource, expected_revision, stored.revision)?;
        if institution.valid_to.is_some() && stored.valid_to != institution.valid_to {
            // Ending it would leave the duties it is responsible for with no one: they must move first.
            let codes = sqlx::query(
                "SELECT code FROM catalogue_items WHERE owner = $1 AND responsible_institution_id = $2 ORDER BY code",
            )
            .bind(township.as_str())
            .bind(institution.id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| row.try_get("code"))
            .collect::<Result<Vec<String>, _>>()?;
            if !codes.is_empty() {
                return Err(StoreError::FailedPrecondition(format!(
                    "institution {resource} ({}) is the responsible institution of {} catalogue item(s) ({}); \
                     make another institution responsible for them (UpdateCatalogueItem) before ending it",
                    stored.name,
                    codes.len(),
                    list_or_none(&codes)
                )));
            }
        }
        if !in_force(&stored, &today) && in_force(institution, &today) {
            // Brought back into force: it counts against the limit of its kind again.
            let others: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM institutions WHERE township = $1 AND kind = $2 AND id <> $3 \
                 AND (valid_to IS NULL OR valid_to >= $4)",
            )
            .bind(township.as_str())
            .bind(stored.kind.as_str())
            .bind(stored.id)
            .bind(&today)
            .fetch_one(&mut *tx)
            .await?;
            if others >= i64::from(max_of_kind) {
                return Err(StoreError::LimitExceeded(format!(
                    "township {township} already has {others} active {} ({}); the policy allows at most \
                     {max_of_kind}, so {resource} cannot come back into force",
                    stored.kind.label_zh(),
                    stored.kind.as_str()
                )));
            }
            // Its plaques count again too (compliance counts the plaques of institutions in force).
            let (own, others): (i64, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN p.institution_id = $2 THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN p.institution_id <> $2 AND (i.valid_to IS NULL OR i.valid_to >= $3) \
                 THEN 1 ELSE 0 END), 0) FROM plaques p JOIN institutions i ON i.id = p.institution_id \
                 WHERE p.township = $1",
            )
            .bind(township.as_str())
            .bind(stored.id)
            .bind(&today)
            .fetch_one(&mut *tx)
            .await?;
            if own > 0 && own + others > i64::from(max_plaques) {
                return Err(StoreError::LimitExceeded(format!(
                    "township {township} has {others} plaques on institutions in force; {resource} would bring back \
                     its {own}, and the policy allows at most {max_plaques} plaques, so it cannot come back into force"
                )));
            }
        }
        let updated = Institution {
            name: institution.name.clone(),
            approving_document: institution.approving_document.clone(),
            valid_from: institution.valid_from.clone(),
            valid_to: institution.valid_to.clone(),
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        sqlx::query(
            "UPDATE institutions SET name = $1, approving_document = $2, valid_from = $3, valid_to = $4, \
             revision = $5, updated_at = $6 WHERE id = $7 AND revision = $8",
        )
        .bind(&updated.name)
        .bind(&updated.approving_document)
        .bind(&updated.valid_from)
        .bind(&updated.valid_to)
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, actor, now, "UpdateInstitution", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_institution(&self, township: &TownshipCode, id: i64, actor: &str) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let institution = find_institution(&mut tx, township, id).await?;
        let sql = format!("SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.institution_id = $1 ORDER BY p.id");
        let plaques = sqlx::query(&sql).bind(id).fetch_all(&mut *tx).await?;
        let plaques = plaques.iter().map(plaque_from_row).collect::<StoreResult<Vec<_>>>()?;
        // The plaques go with it (ON DELETE CASCADE).
        sqlx::query("DELETE FROM institutions WHERE id = $1").bind(id).execute(&mut *tx).await?;
        for plaque in &plaques {
            let resource = plaque_resource(township, id, plaque.id);
            audit(&mut tx, actor, now, "DeletePlaque", &resource, Some(json(plaque)), None).await?;
        }
        let resource = institution_resource(township, id);
        audit(&mut tx, actor, now, "DeleteInstitution", &resource, Some(json(&institution)), None).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn create_plaque(
        &self,
        township: &TownshipCode,
        plaque: &NewPlaque,
        max_per_township: u32,
        actor: &str,
    ) -> StoreResult<Plaque> {
        let mut tx = self.begin_write().await?;
        let created = insert_plaque(&mut tx, township, plaque, max_per_township, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn list_plaques(
        &self,
        township: &TownshipCode,
        institution_id: Option<i64>,
        page: &PageRequest,
    ) -> StoreResult<Page<Plaque>> {
        let limit = page_limit(page);
        let after = after_id_ascending(page)?;
        let mut conn = self.read.acquire().await?;
        let rows = match institution_id {
            Some(institution_id) => {
                let sql = format!(
                    "SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.institution_id = $2 \
                     AND p.id > $3 ORDER BY p.id LIMIT $4"
                );
                sqlx::query(&sql)
                    .bind(township.as_str())
                    .bind(institution_id)
                    .bind(after)
                    .bind(limit + 1)
                    .fetch_all(&mut *conn)
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.id > $2 ORDER BY p.id LIMIT $3"
                );
                sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?
            }
        };
        if rows.is_empty() {
            match institution_id {
                Some(institution_id) => drop(find_institution(&mut conn, township, institution_id).await?),
                None => ensure_scope(&mut conn, &Scope::Township(township.clone())).await?,
            }
        }
        let plaques = rows.iter().map(plaque_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(plaques, limit, |plaque| plaque.id.to_string()))
    }

    async fn get_plaque(&self, township: &TownshipCode, institution_id: i64, id: i64) -> StoreResult<Plaque> {
        let mut conn = self.read.acquire().await?;
        find_plaque(&mut conn, township, institution_id, id).await
    }

    async fn update_plaque(&self, plaque: &Plaque, expected_revision: i64, actor: &str) -> StoreResult<Plaque> {
        let now = now_ms();
        let township = &plaque.township;
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let stored = find_plaque(&mut tx, township, plaque.institution_id, plaque.id).await?;
        let resource = plaque_resource(township, plaque.institution_id, plaque.id);
        check_revision(&resource, expected_revision, stored.revision)?;
        let updated = Plaque {
            name: plaque.name.clone(),
            approving_document: plaque.approving_document.clone(),
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        sqlx::query(
            "UPDATE plaques SET name = $1, approving_document = $2, revision = $3, updated_at = $4 \
             WHERE id = $5 AND revision = $6",
        )
        .bind(&updated.name)
        .bind(&updated.approving_document)
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, actor, now, "UpdatePlaque", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_plaque(
        &self,
        township: &TownshipCode,
        institution_id: i64,
        id: i64,
        actor: &str,
    ) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_township(&mut tx, township).await?;
        let sql = format!(
            "SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.institution_id = $2 AND p.id = $3"
        );
        let resource = plaque_resource(township, institution_id, id);
        let plaque = match sqlx::query(&sql)
            .bind(township.as_str())
            .bind(institution_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => plaque_from_row(&row)?,
            None => return Err(StoreError::NotFound(format!("plaque {resource}"))),
        };
        sqlx::query("DELETE FROM plaques WHERE id = $1").bind(id).execute(&mut *tx).await?;
        audit(&mut tx, actor, now, "DeletePlaque", &resource, Some(json(&plaque)), None).await?;
        tx.commit().await?;
        Ok(())
    }
}

pub(super) async fn find_institution(conn: &mut Conn, township: &TownshipCode, id: i64) -> StoreResult<Institution> {
    let sql = format!("SELECT {INSTITUTION_COLUMNS} FROM institutions i WHERE i.township = $1 AND i.id = $2");
    match sqlx::query(&sql).bind(township.as_str()).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => institution_from_row(&row),
        None => Err(StoreError::NotFound(format!("institution {}", institution_resource(township, id)))),
    }
}

async fn find_plaque(conn: &mut Conn, township: &TownshipCode, institution_id: i64, id: i64) -> StoreResult<Plaque> {
    let sql =
        format!("SELECT {PLAQUE_COLUMNS} FROM plaques p WHERE p.township = $1 AND p.institution_id = $2 AND p.id = $3");
    match sqlx::query(&sql).bind(township.as_str()).bind(institution_id).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => plaque_from_row(&row),
        None => Err(StoreError::NotFound(format!("plaque {}", plaque_resource(township, institution_id, id)))),
    }
}

pub(super) async fn insert_institution(
    tx: &mut Conn,
    institution: &NewInstitution,
    max_of_kind: u32,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<Institution> {
    let township = &institution.township;
    lock_township(tx, township).await?;
    // Active: not ended before today (valid_to is the last day, inclusive).
    let rows = sqlx::query(
        "SELECT name FROM institutions WHERE township = $1 AND kind = $2 AND (valid_to IS NULL OR valid_to >= $3) \
         ORDER BY id",
    )
    .bind(township.as_str())
    .bind(institution.kind.as_str())
    .bind(iso_date(now))
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() as u64 >= u64::from(max_of_kind) {
        let names = rows.iter().map(|row| row.try_get("name")).collect::<Result<Vec<String>, _>>()?;
        return Err(StoreError::LimitExceeded(format!(
            "township {township} already has {} active {} ({}) ({}); the policy allows at most {max_of_kind}",
            names.len(),
            institution.kind.label_zh(),
            institution.kind.as_str(),
            list_or_none(&names)
        )));
    }
    let row = sqlx::query(
        "INSERT INTO institutions (township, kind, name, staffing_quota, approving_document, valid_from, valid_to, \
         created_at, revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $8) RETURNING id",
    )
    .bind(township.as_str())
    .bind(institution.kind.as_str())
    .bind(&institution.name)
    // The ledger's first approval below brings it to the quota.
    .bind(0_i64)
    .bind(&institution.approving_document)
    .bind(&institution.valid_from)
    .bind(&institution.valid_to)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = Institution {
        id: row.try_get("id")?,
        township: township.clone(),
        kind: institution.kind,
        name: institution.name.clone(),
        staffing_quota: institution.staffing_quota,
        approving_document: institution.approving_document.clone(),
        valid_from: institution.valid_from.clone(),
        valid_to: institution.valid_to.clone(),
        created_at: now,
        revision: 1,
        updated_at: now,
    };
    let resource = institution_resource(township, created.id);
    audit(tx, actor, now, "CreateInstitution", &resource, None, Some(json(&created))).await?;
    if institution.staffing_quota > 0 {
        // The quota it is created with is the ledger's first approval, by its approving document.
        let first = NewStaffingApproval {
            township: township.clone(),
            institution_id: created.id,
            document_number: institution.approving_document.clone(),
            approved_on: institution.valid_from.clone().unwrap_or_else(|| iso_date(now)),
            staffing_type: StaffingType::usual_for(institution.kind),
            funding_type: FundingType::Full,
            change: i64::from(institution.staffing_quota),
            summary: FIRST_APPROVAL_SUMMARY.to_owned(),
        };
        record_approval(tx, &created, &first, actor, now).await?;
    }
    Ok(created)
}

pub(super) async fn insert_plaque(
    tx: &mut Conn,
    township: &TownshipCode,
    plaque: &NewPlaque,
    max_per_township: u32,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<Plaque> {
    lock_township(tx, township).await?;
    let institution = find_institution(tx, township, plaque.institution_id).await?;
    let today = iso_date(now);
    // 党政机构和事业单位可加挂牌子: a plaque hangs on an office or a public institution still in force.
    if !matches!(institution.kind, InstitutionKind::PartyGovernmentOffice | InstitutionKind::PublicInstitution) {
        return Err(StoreError::FailedPrecondition(format!(
            "township {township}: {} is a {} ({}); only 党政机构 and 事业单位 may carry plaques (加挂牌子)",
            institution.name,
            institution.kind.label_zh(),
            institution.kind.as_str()
        )));
    }
    if !in_force(&institution, &today) {
        return Err(StoreError::FailedPrecondition(format!(
            "township {township}: {} is no longer in force (ended {}); a plaque hangs on an institution in force",
            institution.name,
            institution.valid_to.as_deref().unwrap_or_default()
        )));
    }
    // The plaques of ended institutions are history: they do not count, as compliance does not count them.
    let rows = sqlx::query(
        "SELECT p.name FROM plaques p JOIN institutions i ON i.id = p.institution_id WHERE p.township = $1 \
         AND (i.valid_to IS NULL OR i.valid_to >= $2) ORDER BY p.id",
    )
    .bind(township.as_str())
    .bind(&today)
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() as u64 >= u64::from(max_per_township) {
        let names = rows.iter().map(|row| row.try_get("name")).collect::<Result<Vec<String>, _>>()?;
        return Err(StoreError::LimitExceeded(format!(
            "township {township} already has {} plaques ({}); the policy allows at most {max_per_township}",
            names.len(),
            list_or_none(&names)
        )));
    }
    let row = sqlx::query(
        "INSERT INTO plaques (institution_id, township, name, approving_document, created_at, revision, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $5) RETURNING id",
    )
    .bind(plaque.institution_id)
    .bind(township.as_str())
    .bind(&plaque.name)
    .bind(&plaque.approving_document)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = Plaque {
        id: row.try_get("id")?,
        institution_id: plaque.institution_id,
        township: township.clone(),
        name: plaque.name.clone(),
        approving_document: plaque.approving_document.clone(),
        created_at: now,
        revision: 1,
        updated_at: now,
    };
    let resource = plaque_resource(township, plaque.institution_id, created.id);
    audit(tx, actor, now, "CreatePlaque", &resource, None, Some(json(&created))).await?;
    Ok(created)
}
