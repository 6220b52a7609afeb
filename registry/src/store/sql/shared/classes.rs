//! [`ClassRepo`]: classes, overrides, class history and runs.

use async_trait::async_trait;
use township_runtime::now_ms;

use super::rows::{CLASS_COLUMNS, HISTORY_COLUMNS, RUN_COLUMNS, change_from_row, class_from_row, run_from_row};
use super::support::{audit, class_resource, ensure_scope, lock_township, run_resource};
use super::{Conn, ThisStore};
use crate::domain::access::Visible;
use crate::domain::model::{ChangeCause, ClassChange, ClassOverride, ClassRecord, ClassificationRun};
use crate::domain::names::{CityCode, Scope, TownshipCode};
use crate::store::sql::{
    after_id_descending, after_text, json, keyed_page, page_by, page_limit, scope_filter, visible_codes,
};
use crate::store::{ClassRepo, Page, PageRequest, StoreError, StoreResult};

#[async_trait]
impl ClassRepo for ThisStore {
    async fn get_class(&self, township: &TownshipCode, data_year: i32) -> StoreResult<Option<ClassRecord>> {
        let mut conn = self.read.acquire().await?;
        let found = find_class(&mut conn, township, data_year).await?;
        if found.is_none() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        Ok(found)
    }

    async fn list_visible_classes(
        &self,
        scope: &Scope,
        data_year: i32,
        page: &PageRequest,
        visible: &Visible,
    ) -> StoreResult<Page<ClassRecord>> {
        let limit = page_limit(page);
        let (column, value) = scope_filter(scope);
        let mut conn = self.read.acquire().await?;
        let (shown, codes) = visible_codes("t.code", visible, 5);
        let sql = format!(
            "SELECT {CLASS_COLUMNS} FROM township_classes c JOIN townships t ON t.code = c.township \
             WHERE t.{column} = $1 AND c.data_year = $2 AND c.township > $3{shown} ORDER BY c.township LIMIT $4"
        );
        let query = sqlx::query(&sql).bind(value).bind(i64::from(data_year)).bind(after_text(page)).bind(limit + 1);
        let rows = codes.into_iter().fold(query, |query, code| query.bind(code)).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, scope).await?;
        }
        let classes = rows.iter().map(class_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(classes, limit, |class| class.township.to_string()))
    }

    async fn class_history(&self, township: &TownshipCode, page: &PageRequest) -> StoreResult<Page<ClassChange>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {HISTORY_COLUMNS} FROM class_history h JOIN townships t ON t.code = h.township \
             WHERE h.township = $1 AND h.id < $2 ORDER BY h.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(township.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::Township(township.clone())).await?;
        }
        let changes = rows
            .iter()
            .map(|row| change_from_row(row).map(|(id, change)| (id.to_string(), change)))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(keyed_page(changes, limit))
    }

    async fn set_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        class_override: &ClassOverride,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored_township = lock_township(&mut tx, township).await?;
        let before = find_class(&mut tx, township, data_year).await?;
        sqlx::query(
            "INSERT INTO township_classes (township, data_year, computed_class, previous_class, override_class, \
             override_reason, override_document_number, override_set_by, override_set_at, score, class_rank, \
             index_population, index_fiscal_revenue, index_land_area, run_id, explanation, updated_at) \
             VALUES ($1, $2, NULL, NULL, $3, $4, $5, $6, $7, 0, 0, 0, 0, 0, NULL, '', $8) \
             ON CONFLICT (township, data_year) DO UPDATE SET override_class = excluded.override_class, \
             override_reason = excluded.override_reason, \
             override_document_number = excluded.override_document_number, \
             override_set_by = excluded.override_set_by, override_set_at = excluded.override_set_at, \
             updated_at = excluded.updated_at",
        )
        .bind(township.as_str())
        .bind(i64::from(data_year))
        .bind(i64::from(class_override.class))
        .bind(&class_override.reason)
        .bind(&class_override.document_number)
        .bind(&class_override.set_by)
        .bind(class_override.set_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let after = find_class(&mut tx, township, data_year)
            .await?
            .ok_or_else(|| StoreError::Internal("the class row just written is missing".to_owned()))?;
        let previous = before.as_ref().and_then(ClassRecord::effective_class);
        let change = if previous == Some(class_override.class) {
            None
        } else {
            let change = ClassChange {
                township: township.clone(),
                township_name: stored_township.name.clone(),
                data_year,
                previous_class: previous,
                new_class: class_override.class,
                score: after.score,
                cause: ChangeCause::Override,
                run_id: None,
                changed_at: now,
            };
            insert_history(&mut tx, &change).await?;
            Some(change)
        };
        let after = ClassRecord {
            previous_class: change.as_ref().map_or(after.previous_class, |change| change.previous_class),
            ..after
        };
        let resource = class_resource(township, data_year);
        audit(&mut tx, actor, now, "SetClassOverride", &resource, before.map(|b| json(&b)), Some(json(&after))).await?;
        tx.commit().await?;
        Ok((after, change))
    }

    async fn clear_override(
        &self,
        township: &TownshipCode,
        data_year: i32,
        actor: &str,
    ) -> StoreResult<(ClassRecord, Option<ClassChange>)> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let stored_township = lock_township(&mut tx, township).await?;
        let before = find_class(&mut tx, township, data_year)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("class of township {township} for data year {data_year}")))?;
        let Some(class_override) = &before.class_override else {
            // Nothing to clear: nothing changes, nothing to audit.
            return Ok((before, None));
        };
        let mut after = ClassRecord { class_override: None, ..before.clone() };
        if after.computed_class.is_none() {
            // The row existed only for the override: without it the township is unclassified that year.
            sqlx::query("DELETE FROM township_classes WHERE township = $1 AND data_year = $2")
                .bind(township.as_str())
                .bind(i64::from(data_year))
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE township_classes SET override_class = NULL, override_reason = NULL, \
                 override_document_number = NULL, override_set_by = NULL, override_set_at = NULL, updated_at = $1 \
                 WHERE township = $2 AND data_year = $3",
            )
            .bind(now)
            .bind(township.as_str())
            .bind(i64::from(data_year))
            .execute(&mut *tx)
            .await?;
        }
        let change = match after.computed_class {
            Some(computed) if computed != class_override.class => {
                let change = ClassChange {
                    township: township.clone(),
                    township_name: stored_township.name.clone(),
                    data_year,
                    previous_class: Some(class_override.class),
                    new_class: computed,
                    score: after.score,
                    cause: ChangeCause::Override,
                    run_id: None,
                    changed_at: now,
                };
                insert_history(&mut tx, &change).await?;
                after.previous_class = change.previous_class;
                Some(change)
            }
            _ => None,
        };
        let resource = class_resource(township, data_year);
        audit(&mut tx, actor, now, "ClearClassOverride", &resource, Some(json(&before)), Some(json(&after))).await?;
        tx.commit().await?;
        Ok((after, change))
    }

    async fn get_run(&self, city: &CityCode, run_id: i64) -> StoreResult<ClassificationRun> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}, r.lines, r.response FROM classification_runs r WHERE r.city = $1 AND r.id = $2"
        );
        match sqlx::query(&sql).bind(city.as_str()).bind(run_id).fetch_optional(&self.read).await? {
            Some(row) => run_from_row(&row, true),
            None => Err(StoreError::NotFound(format!("classification run {}", run_resource(city, run_id)))),
        }
    }

    async fn list_runs(&self, city: &CityCode, page: &PageRequest) -> StoreResult<Page<ClassificationRun>> {
        let limit = page_limit(page);
        let after = after_id_descending(page)?;
        let mut conn = self.read.acquire().await?;
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM classification_runs r WHERE r.city = $1 AND r.id < $2 ORDER BY r.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql).bind(city.as_str()).bind(after).bind(limit + 1).fetch_all(&mut *conn).await?;
        if rows.is_empty() {
            ensure_scope(&mut conn, &Scope::City(city.clone())).await?;
        }
        let runs = rows.iter().map(|row| run_from_row(row, false)).collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(runs, limit, |run| run.id.to_string()))
    }
}

async fn find_class(conn: &mut Conn, township: &TownshipCode, data_year: i32) -> StoreResult<Option<ClassRecord>> {
    let sql = format!("SELECT {CLASS_COLUMNS} FROM township_classes c WHERE c.township = $1 AND c.data_year = $2");
    sqlx::query(&sql)
        .bind(township.as_str())
        .bind(i64::from(data_year))
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| class_from_row(&row))
        .transpose()
}

/// Records a moved class in the history and, on the township's class row of that year, its class before this
/// latest change (`previous_class`, as registry.proto defines it).
pub(super) async fn insert_history(conn: &mut Conn, change: &ClassChange) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO class_history (township, data_year, previous_class, new_class, score, cause, run_id, changed_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(change.township.as_str())
    .bind(i64::from(change.data_year))
    .bind(change.previous_class.map(i64::from))
    .bind(i64::from(change.new_class))
    .bind(change.score)
    .bind(change.cause.as_str())
    .bind(change.run_id)
    .bind(change.changed_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE township_classes SET previous_class = $1 WHERE township = $2 AND data_year = $3")
        .bind(change.previous_class.map(i64::from))
        .bind(change.township.as_str())
        .bind(i64::from(change.data_year))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
