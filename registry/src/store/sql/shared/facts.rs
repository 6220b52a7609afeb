//! [`FactsRepo`]: the facts of a scope's townships, gathered in one snapshot.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use sqlx::Row;
use township_runtime::now_ms;

use super::deviations::in_force_on;
use super::rows::{
    CATALOGUE_COLUMNS, CLASS_COLUMNS, DEVIATION_COLUMNS, INSTITUTION_COLUMNS, PLAQUE_COLUMNS, POST_COLUMNS,
    STAFFING_HEADCOUNT_COLUMNS, TOWNSHIP_COLUMNS, catalogue_item_from_row, class_from_row, deviation_from_row,
    institution_from_row, plaque_from_row, post_from_row, staffing_headcount_from_row, township_code,
    township_from_row,
};
use super::support::ensure_scope;
use super::years::current_year_in;
use super::{DbRow, ThisStore};
use crate::domain::access::Visible;
use crate::domain::catalogue::{CatalogueItem, effective_catalogue};
use crate::domain::deviations::ApprovedDeviation;
use crate::domain::model::{Institution, StaffingFigure, StaffingType, TownshipFacts};
use crate::domain::names::{CountyCode, Scope, TownshipCode};
use crate::store::sql::{corrupt, iso_date, scope_filter, visible_codes};
use crate::store::{FactsRepo, StoreResult};

#[async_trait]
impl FactsRepo for ThisStore {
    async fn visible_township_facts(&self, scope: &Scope, visible: &Visible) -> StoreResult<Vec<TownshipFacts>> {
        let (column, value) = scope_filter(scope);
        // A few queries for the whole scope, in one snapshot; the townships `visible` hides are not read, and
        // the rows of the later queries that belong to them are dropped by `slot`.
        let mut tx = self.begin_snapshot().await?;
        let (shown, codes) = visible_codes("t.code", visible, 2);
        let sql = format!("SELECT {TOWNSHIP_COLUMNS} FROM townships t WHERE t.{column} = $1{shown} ORDER BY t.code");
        let query = sqlx::query(&sql).bind(value);
        let rows = codes.into_iter().fold(query, |query, code| query.bind(code)).fetch_all(&mut *tx).await?;
        if rows.is_empty() {
            ensure_scope(&mut tx, scope).await?;
            return Ok(Vec::new());
        }
        let mut facts = Vec::with_capacity(rows.len());
        let mut index = HashMap::with_capacity(rows.len());
        for row in &rows {
            let township = township_from_row(row)?;
            index.insert(township.code.clone(), facts.len());
            facts.push(TownshipFacts {
                township,
                class: None,
                institutions: Vec::new(),
                plaques: Vec::new(),
                posts: Vec::new(),
                catalogue: Vec::new(),
                staffing: Vec::new(),
                deviations: Vec::new(),
            });
        }
        let slot = |code: &TownshipCode| index.get(code).copied();

        // The official class: the one of the city's current year (the same function the write-time limits use),
        // decided in this snapshot.
        let today = iso_date(now_ms());
        if let Some(current) = current_year_in(&mut tx, &scope.city(), &today).await? {
            let sql = format!(
                "SELECT {CLASS_COLUMNS} FROM township_classes c JOIN townships t ON t.code = c.township \
                 WHERE t.{column} = $1 AND c.data_year = $2 \
                 AND (c.computed_class IS NOT NULL OR c.override_class IS NOT NULL)"
            );
            for row in sqlx::query(&sql).bind(value).bind(i64::from(current)).fetch_all(&mut *tx).await? {
                let class = class_from_row(&row)?;
                if let Some(i) = slot(&class.township) {
                    facts[i].class = Some(class);
                }
            }
        }
        // Only institutions still in force count, as they do for the write-time limits.
        let sql = format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions i JOIN townships t ON t.code = i.township \
             WHERE t.{column} = $1 AND (i.valid_to IS NULL OR i.valid_to >= $2) ORDER BY i.township, i.id"
        );
        for row in sqlx::query(&sql).bind(value).bind(&today).fetch_all(&mut *tx).await? {
            let institution = institution_from_row(&row)?;
            if let Some(i) = slot(&institution.township) {
                facts[i].institutions.push(institution);
            }
        }
        let sql = format!(
            "SELECT {PLAQUE_COLUMNS} FROM plaques p JOIN townships t ON t.code = p.township \
             WHERE t.{column} = $1 ORDER BY p.township, p.id"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let plaque = plaque_from_row(&row)?;
            if let Some(i) = slot(&plaque.township) {
                facts[i].plaques.push(plaque);
            }
        }
        let sql = format!(
            "SELECT {POST_COLUMNS} FROM leadership_posts p JOIN townships t ON t.code = p.township \
             WHERE t.{column} = $1 ORDER BY p.township, p.id"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let post = post_from_row(&row)?;
            if let Some(i) = slot(&post.township) {
                facts[i].posts.push(post);
            }
        }

        // Staffing: each institution's approved figure per type (the ledger's sum) beside its actual headcount;
        // the rules count the institutions in force among them.
        let sql = "SELECT s.township, s.institution_id, s.staffing_type, CAST(SUM(s.change) AS BIGINT) AS approved \
                   FROM staffing_approvals s JOIN townships t ON t.code = s.township WHERE t.{column} = $1 \
                   GROUP BY s.township, s.institution_id, s.staffing_type";
        let mut figures: BTreeMap<(TownshipCode, i64, StaffingType), (i64, Option<u32>)> = BTreeMap::new();
        for row in sqlx::query(&sql.replace("{column}", column)).bind(value).fetch_all(&mut *tx).await? {
            let key = staffing_key(&row)?;
            figures.entry(key).or_default().0 = row.try_get("approved")?;
        }
        let sql = format!(
            "SELECT {STAFFING_HEADCOUNT_COLUMNS} FROM staffing_headcounts h JOIN townships t ON t.code = h.township \
             WHERE t.{column} = $1"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let headcount = staffing_headcount_from_row(&row)?;
            let key = (headcount.township, headcount.institution_id, headcount.staffing_type);
            figures.entry(key).or_default().1 = Some(headcount.actual);
        }
        for ((township, institution_id, staffing_type), (approved, actual)) in figures {
            if let Some(i) = slot(&township) {
                facts[i].staffing.push(StaffingFigure { institution_id, staffing_type, approved, actual });
            }
        }

        // The effective catalogues: own items, the counties' templates, and the ended institutions that own
        // items may still name (resolved as "no longer in force").
        let mut own: Vec<Vec<CatalogueItem>> = vec![Vec::new(); facts.len()];
        let sql = format!(
            "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c JOIN townships t ON t.code = c.township \
             WHERE t.{column} = $1 ORDER BY c.township, c.code"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let item = catalogue_item_from_row(&row)?;
            if let Some(i) = item.owner.township().and_then(&slot) {
                own[i].push(item);
            }
        }
        let mut templates: HashMap<CountyCode, Vec<CatalogueItem>> = HashMap::new();
        let sql = format!(
            "SELECT {CATALOGUE_COLUMNS} FROM catalogue_items c WHERE c.township IS NULL \
             AND c.county IN (SELECT t.county FROM townships t WHERE t.{column} = $1) ORDER BY c.county, c.code"
        );
        for row in sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await? {
            let item = catalogue_item_from_row(&row)?;
            templates.entry(item.owner.county()).or_default().push(item);
        }
        let mut ended: Vec<Vec<Institution>> = vec![Vec::new(); facts.len()];
        let sql = format!(
            "SELECT {INSTITUTION_COLUMNS} FROM institutions i JOIN townships t ON t.code = i.township \
             WHERE t.{column} = $1 AND i.valid_to IS NOT NULL AND i.valid_to < $2 ORDER BY i.township, i.id"
        );
        for row in sqlx::query(&sql).bind(value).bind(&today).fetch_all(&mut *tx).await? {
            let institution = institution_from_row(&row)?;
            if let Some(i) = slot(&institution.township) {
                ended[i].push(institution);
            }
        }
        // The approved deviations of the scope's counties (county-wide and per township), in one query.
        let sql = format!(
            "SELECT {DEVIATION_COLUMNS} FROM approved_deviations d WHERE d.revoked_at IS NULL \
             AND d.county IN (SELECT t.county FROM townships t WHERE t.{column} = $1) ORDER BY d.id"
        );
        let rows = sqlx::query(&sql).bind(value).fetch_all(&mut *tx).await?;
        let mut deviations: HashMap<CountyCode, Vec<ApprovedDeviation>> = HashMap::new();
        for deviation in in_force_on(rows.iter().map(deviation_from_row).collect::<StoreResult<_>>()?, &today) {
            deviations.entry(deviation.scope.county()).or_default().push(deviation);
        }
        tx.commit().await?;
        for facts in &mut facts {
            let code = &facts.township.code;
            let of_county = deviations.get(&code.county()).map_or(&[][..], Vec::as_slice);
            facts.deviations = of_county.iter().filter(|d| d.scope.covers(code)).cloned().collect();
        }
        for ((facts, own), ended) in facts.iter_mut().zip(own).zip(ended) {
            let institutions: Vec<Institution> = facts.institutions.iter().cloned().chain(ended).collect();
            let templates = templates.get(&facts.township.code.county()).map_or(&[][..], Vec::as_slice);
            facts.catalogue = effective_catalogue(facts.township.kind, own, templates, &institutions, &today);
        }
        Ok(facts)
    }
}

/// The (township, institution, type) a grouped staffing row is about.
fn staffing_key(row: &DbRow) -> StoreResult<(TownshipCode, i64, StaffingType)> {
    let text: &str = row.try_get("staffing_type")?;
    let staffing_type = StaffingType::parse(text).ok_or_else(|| corrupt(format!("staffing type {text:?}")))?;
    Ok((township_code(row.try_get("township")?)?, row.try_get("institution_id")?, staffing_type))
}
