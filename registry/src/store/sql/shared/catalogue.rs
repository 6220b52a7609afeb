//! [`CatalogueRepo`]: county templates and township catalogue items, and the links they check.

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::institutions::find_institution;
use super::rows::{
    CATALOGUE_COLUMNS, DetailColumns, INSTITUTION_COLUMNS, catalogue_item_from_row, institution_from_row,
};
use super::support::{
    audit, check_revision, ensure_scope, find_township, institution_resource, lock_township, township_not_found,
};
use super::{Conn, FOR_UPDATE, ThisStore};
use crate::domain::catalogue::{
    CatalogueEntry, CatalogueItem, CatalogueItemType, CatalogueOwner, ItemDetails, NewCatalogueItem, Resolution,
    catalogue_item_name, duty_areas_for, in_force, resolve,
};
use crate::domain::model::{Institution, TimestampMs, TownshipKind};
use crate::domain::names::{CountyCode, Scope, TownshipCode};
use crate::store::sql::{after_text, iso_date, json, page_by, page_limit};
use crate::store::{CatalogueRepo, Page, PageRequest, StoreError, StoreResult};

#[async_trait]
impl CatalogueRepo for ThisStore {
    async fn create_catalogue_item(&self, item: &NewCatalogueItem, actor: &str) -> StoreResult<CatalogueItem> {
        let mut tx = self.begin_write().await?;
        let created = insert_catalogue_item(&mut tx, item, actor, now_ms()).await?;
        tx.commit().await?;
        Ok(created)
    }

    async fn get_catalogue_item(&self, owner: &CatalogueOwner, id: i64) -> StoreResult<CatalogueItem> {
        let mut conn = self.read.acquire().await?;
        find_catalogue_item(&mut conn, owner, id).await
    }

    async fn list_catalogue_items(
        &self,
        owner: &CatalogueOwner,
        item_type: Option<CatalogueItemType>,
        page: &PageRequest,
    ) -> StoreResult<Page<CatalogueEntry>> {
        let limit = page_limit(page);
        let item_type = item_type.map_or("", CatalogueItemType::as_str);
        // One snapshot: the items and the institutions they resolve among.
        let mut tx = self.begin_snapshot().await?;
        let entries = match owner {
            CatalogueOwner::County(county) => {
                let sql = format!(
                    "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.owner = $1 AND c.code > $2 \
                     AND ($3 = '' OR c.item_type = $3) ORDER BY c.code LIMIT $4"
                );
                let rows = sqlx::query(&sql)
                    .bind(county.as_str())
                    .bind(after_text(page))
                    .bind(item_type)
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                if rows.is_empty() {
                    ensure_scope(&mut tx, &Scope::County(county.clone())).await?;
                }
                rows.iter()
                    .map(|row| {
                        let item = catalogue_item_from_row(row)?;
                        Ok(CatalogueEntry { item, inherited: false, resolution: Resolution::NotApplicable })
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
            CatalogueOwner::Township(code) => {
                let township = find_township(&mut tx, code).await?.ok_or_else(|| township_not_found(code))?;
                // The same merge as domain::catalogue::effective_catalogue, done in SQL so that pages are exact.
                let sql = format!(
                    "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE (c.owner = $1 OR (c.owner = $2 \
                     AND c.duty_area IN ({areas}) AND NOT EXISTS (SELECT 1 FROM catalogue_items o \
                     WHERE o.owner = $1 AND o.code = c.code))) AND c.code > $3 AND ($4 = '' OR c.item_type = $4) \
                     ORDER BY c.code LIMIT $5",
                    areas = duty_area_list(township.kind)
                );
                let rows = sqlx::query(&sql)
                    .bind(code.as_str())
                    .bind(code.county().as_str())
                    .bind(after_text(page))
                    .bind(item_type)
                    .bind(limit + 1)
                    .fetch_all(&mut *tx)
                    .await?;
                let institutions = all_institutions(&mut tx, code).await?;
                let today = iso_date(now_ms());
                rows.iter()
                    .map(|row| {
                        let item = catalogue_item_from_row(row)?;
                        let resolution = resolve(&item, &institutions, &today);
                        Ok(CatalogueEntry { inherited: item.is_template(), item, resolution })
                    })
                    .collect::<StoreResult<Vec<_>>>()?
            }
        };
        tx.commit().await?;
        Ok(page_by(entries, limit, |entry| entry.item.code.clone()))
    }

    async fn update_catalogue_item(
        &self,
        item: &CatalogueItem,
        expected_revision: i64,
        actor: &str,
    ) -> StoreResult<CatalogueItem> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        lock_owner(&mut tx, &item.owner).await?;
        let stored = find_catalogue_item(&mut tx, &item.owner, item.id).await?;
        let resource = stored.resource_name();
        check_revision(&resource, expected_revision, stored.revision)?;
        if item.details.item_type() != stored.item_type() {
            return Err(StoreError::FailedPrecondition(format!(
                "catalogue item {resource} is a {} item; its type cannot change (create a new item instead)",
                stored.item_type().as_str()
            )));
        }
        let institution_title = responsible_title(
            &mut tx,
            &item.owner,
            &stored.code,
            item.responsible_institution_id,
            &item.responsible_institution_title,
            now,
        )
        .await?;
        check_power_link(&mut tx, &item.owner, &stored.code, &item.details).await?;
        let updated = CatalogueItem {
            title: item.title.clone(),
            duty_area: item.duty_area,
            responsible_institution_id: item.responsible_institution_id,
            responsible_institution_title: institution_title,
            details: item.details.clone(),
            revision: stored.revision + 1,
            updated_at: now,
            ..stored.clone()
        };
        let columns = DetailColumns::of(&updated.details);
        sqlx::query(
            "UPDATE catalogue_items SET title = $1, duty_area = $2, responsible_institution_id = $3, \
             responsible_institution_title = $4, power_category = $5, legal_basis = $6, power_origin = $7, \
             power_item_code = $8, duties = $9, accountability_cases = $10, service_domain = $11, \
             handling_mode = $12, revision = $13, updated_at = $14 WHERE id = $15 AND revision = $16",
        )
        .bind(&updated.title)
        .bind(updated.duty_area.as_str())
        .bind(updated.responsible_institution_id)
        .bind(&updated.responsible_institution_title)
        .bind(columns.power_category)
        .bind(columns.legal_basis)
        .bind(columns.power_origin)
        .bind(columns.power_item_code)
        .bind(columns.duties)
        .bind(columns.accountability_cases)
        .bind(columns.service_domain)
        .bind(columns.handling_mode)
        .bind(updated.revision)
        .bind(now)
        .bind(updated.id)
        .bind(stored.revision)
        .execute(&mut *tx)
        .await?;
        audit(&mut tx, actor, now, "UpdateCatalogueItem", &resource, Some(json(&stored)), Some(json(&updated))).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn delete_catalogue_item(&self, owner: &CatalogueOwner, id: i64, actor: &str) -> StoreResult<()> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        match owner {
            CatalogueOwner::County(county) => lock_county(&mut tx, county).await?,
            CatalogueOwner::Township(township) => drop(lock_township(&mut tx, township).await?),
        }
        let item = find_catalogue_item(&mut tx, owner, id).await?;
        sqlx::query("DELETE FROM catalogue_items WHERE id = $1").bind(id).execute(&mut *tx).await?;
        audit(&mut tx, actor, now, "DeleteCatalogueItem", &item.resource_name(), Some(json(&item)), None).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The county, its row locked until the transaction ends (PostgreSQL), so that two template items of one code
/// cannot both pass the duplicate check. NotFound when it does not exist.
async fn lock_county(conn: &mut Conn, county: &CountyCode) -> StoreResult<()> {
    let sql = format!("SELECT code FROM counties WHERE code = $1{FOR_UPDATE}");
    match sqlx::query(&sql).bind(county.as_str()).fetch_optional(&mut *conn).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound(format!("county {county}"))),
    }
}

async fn find_catalogue_item(conn: &mut Conn, owner: &CatalogueOwner, id: i64) -> StoreResult<CatalogueItem> {
    let sql = format!("SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.owner = $1 AND c.id = $2");
    match sqlx::query(&sql).bind(owner.code()).bind(id).fetch_optional(&mut *conn).await? {
        Some(row) => catalogue_item_from_row(&row),
        None => Err(StoreError::NotFound(format!("catalogue item {}", catalogue_item_name(owner, id)))),
    }
}

/// Every institution of a township, ended ones included, in id order: what its catalogue items resolve among.
async fn all_institutions(conn: &mut Conn, township: &TownshipCode) -> StoreResult<Vec<Institution>> {
    let sql = format!("SELECT {INSTITUTION_COLUMNS} FROM institutions i WHERE i.township = $1 ORDER BY i.id");
    let rows = sqlx::query(&sql).bind(township.as_str()).fetch_all(&mut *conn).await?;
    rows.iter().map(institution_from_row).collect()
}

/// The SQL list of the duty areas a township of `kind` inherits template items of (constants, not input).
fn duty_area_list(kind: TownshipKind) -> String {
    duty_areas_for(kind).iter().map(|area| format!("'{}'", area.as_str())).collect::<Vec<_>>().join(", ")
}

pub(super) async fn insert_catalogue_item(
    tx: &mut Conn,
    item: &NewCatalogueItem,
    actor: &str,
    now: TimestampMs,
) -> StoreResult<CatalogueItem> {
    let owner = &item.owner;
    lock_owner(tx, owner).await?;
    let institution_title = responsible_title(
        tx,
        owner,
        &item.code,
        item.responsible_institution_id,
        &item.responsible_institution_title,
        now,
    )
    .await?;
    let sql = format!("SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.owner = $1 AND c.code = $2");
    if let Some(row) = sqlx::query(&sql).bind(owner.code()).bind(&item.code).fetch_optional(&mut *tx).await? {
        let existing = catalogue_item_from_row(&row)?;
        return Err(StoreError::AlreadyExists(format!(
            "catalogue item of code {:?} of {} ({} {})",
            item.code,
            owner.describe(),
            existing.resource_name(),
            existing.title
        )));
    }
    check_power_link(tx, owner, &item.code, &item.details).await?;
    let DetailColumns {
        power_category,
        legal_basis,
        power_origin,
        power_item_code,
        duties,
        accountability_cases,
        service_domain,
        handling_mode,
    } = DetailColumns::of(&item.details);
    let row = sqlx::query(
        "INSERT INTO catalogue_items (owner, county, township, code, title, item_type, duty_area, \
         responsible_institution_id, responsible_institution_title, power_category, legal_basis, power_origin, \
         power_item_code, duties, accountability_cases, service_domain, handling_mode, created_at, revision, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, 1, $18) \
         RETURNING id",
    )
    .bind(owner.code())
    .bind(owner.county().as_str())
    .bind(owner.township().map(TownshipCode::as_str))
    .bind(&item.code)
    .bind(&item.title)
    .bind(item.details.item_type().as_str())
    .bind(item.duty_area.as_str())
    .bind(item.responsible_institution_id)
    .bind(&institution_title)
    .bind(power_category)
    .bind(legal_basis)
    .bind(power_origin)
    .bind(power_item_code)
    .bind(duties)
    .bind(accountability_cases)
    .bind(service_domain)
    .bind(handling_mode)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?;
    let created = CatalogueItem {
        id: row.try_get("id")?,
        owner: owner.clone(),
        code: item.code.clone(),
        title: item.title.clone(),
        duty_area: item.duty_area,
        responsible_institution_id: item.responsible_institution_id,
        responsible_institution_title: institution_title,
        details: item.details.clone(),
        created_at: now,
        revision: 1,
        updated_at: now,
    };
    audit(tx, actor, now, "CreateCatalogueItem", &created.resource_name(), None, Some(json(&created))).await?;
    Ok(created)
}

/// Locks the catalogue's owner (its county or township row), so that concurrent writes to one catalogue queue.
async fn lock_owner(tx: &mut Conn, owner: &CatalogueOwner) -> StoreResult<()> {
    match owner {
        CatalogueOwner::County(county) => lock_county(tx, county).await,
        CatalogueOwner::Township(township) => lock_township(tx, township).await.map(|_| ()),
    }
}

/// The responsible institution's title of a catalogue item of `owner`: a template item's own title; a township
/// item's institution, which must be of the township and in force.
async fn responsible_title(
    tx: &mut Conn,
    owner: &CatalogueOwner,
    code: &str,
    responsible_institution_id: Option<i64>,
    responsible_institution_title: &str,
    now: TimestampMs,
) -> StoreResult<String> {
    let institution_title = match owner {
        CatalogueOwner::County(county) => {
            if responsible_institution_id.is_some() {
                return Err(StoreError::FailedPrecondition(format!(
                    "template item {} of county {county} names its responsible institution by title, not by \
                     an institution of one township",
                    code
                )));
            }
            responsible_institution_title.to_owned()
        }
        CatalogueOwner::Township(township) => {
            let Some(id) = responsible_institution_id else {
                return Err(StoreError::FailedPrecondition(format!(
                    "catalogue item {} of township {township} must name its responsible institution",
                    code
                )));
            };
            let institution = match find_institution(tx, township, id).await {
                Ok(institution) => institution,
                Err(StoreError::NotFound(_)) => {
                    return Err(StoreError::NotFound(format!(
                        "institution {} (the responsible institution of catalogue item {} of township \
                         {township})",
                        institution_resource(township, id),
                        code
                    )));
                }
                Err(other) => return Err(other),
            };
            if !in_force(&institution, &iso_date(now)) {
                return Err(StoreError::FailedPrecondition(format!(
                    "institution {} ({}) is no longer in force (valid to {}); catalogue item {} of township \
                     {township} must name an institution in force",
                    institution_resource(township, id),
                    institution.name,
                    institution.valid_to.as_deref().unwrap_or_default(),
                    code
                )));
            }
            institution.name
        }
    };
    Ok(institution_title)
}

/// A responsibility item's power item must exist in the owner's catalogue (a township's includes its county's
/// template).
async fn check_power_link(tx: &mut Conn, owner: &CatalogueOwner, code: &str, details: &ItemDetails) -> StoreResult<()> {
    if let ItemDetails::Responsibility { power_item_code: Some(linked), .. } = details {
        // A township's items may link its own power items or its county's template ones.
        let found = sqlx::query(
            "SELECT 1 FROM catalogue_items WHERE code = $1 AND item_type = 'power' AND (owner = $2 OR owner = $3)",
        )
        .bind(linked)
        .bind(owner.code())
        .bind(owner.county().as_str())
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!(
                "power item of code {linked:?} (linked by responsibility item {}) in the catalogue of {}",
                code,
                owner.describe()
            )));
        }
    }
    Ok(())
}
