//! Rows: the columns the queries select, and the decoding of a selected row into its domain record (a stored value
//! that does not decode is `corrupt`); and the other way, the type-specific columns of a catalogue item.

use sqlx::Row;
use township_policy::{PerIndicator, Policy, TownshipClass};

use super::DbRow;
use crate::domain::catalogue::{
    CatalogueItem, CatalogueItemType, CatalogueOwner, DutyArea, HandlingMode, ItemDetails, PowerCategory, PowerOrigin,
};
use crate::domain::deviations::{ApprovedDeviation, DeviationScope, Revocation};
use crate::domain::model::{
    AuditEvent, ChangeCause, City, CityPolicy, ClassChange, ClassOverride, ClassRecord, ClassificationRun, CohortJob,
    CohortKey, CohortState, County, FundingType, IndicatorObservation, Institution, InstitutionKind, LeadershipPost,
    MandatedRole, NewStaffingApproval, Plaque, RunLine, StaffingApproval, StaffingHeadcount, StaffingType, Township,
    TownshipKind,
};
use crate::domain::names::{CityCode, CountyCode, TownshipCode};
use crate::store::StoreResult;
use crate::store::sql::corrupt;

// ------------------------------------------------------------------------------------------------------------
// Columns

pub(super) const CITY_COLUMNS: &str = "c.code, c.name, c.province_code";
pub(super) const COUNTY_COLUMNS: &str = "k.code, k.name";
pub(super) const TOWNSHIP_COLUMNS: &str =
    "t.code, t.name, t.kind, t.flags, t.valid_from, t.valid_to, t.revision, t.updated_at";
pub(super) const OBSERVATION_COLUMNS: &str = "o.id, o.township, o.data_year, o.population, o.fiscal_revenue, \
     o.land_area, o.source, o.recorded_at, o.recorded_by";
pub(super) const POLICY_COLUMNS: &str =
    "p.city, p.version, p.policy_toml, p.fingerprint, p.created_at, p.document_number";
pub(super) const JOB_COLUMNS: &str =
    "city, data_year, state, generation, attempts, last_error, next_attempt_at, last_run";
pub(super) const CLASS_COLUMNS: &str = "c.township, c.data_year, c.computed_class, c.previous_class, c.override_class, \
     c.override_reason, c.override_document_number, c.override_set_by, c.override_set_at, c.score, c.class_rank, \
     c.index_population, c.index_fiscal_revenue, c.index_land_area, c.run_id, c.explanation";
pub(super) const HISTORY_COLUMNS: &str = "h.id, h.township, t.name AS township_name, h.data_year, h.previous_class, \
     h.new_class, h.score, h.cause, h.run_id, h.changed_at";
pub(super) const RUN_COLUMNS: &str =
    "r.id, r.city, r.data_year, r.policy_version, r.policy_fingerprint, r.run_at, r.classes_changed";
pub(super) const INSTITUTION_COLUMNS: &str = "i.id, i.township, i.kind, i.name, i.staffing_quota, \
     i.approving_document, i.valid_from, i.valid_to, i.created_at, i.revision, i.updated_at";
pub(super) const PLAQUE_COLUMNS: &str =
    "p.id, p.institution_id, p.township, p.name, p.approving_document, p.created_at, p.revision, p.updated_at";
pub(super) const STAFFING_APPROVAL_COLUMNS: &str = "s.id, s.institution_id, s.township, s.document_number, \
     s.approved_on, s.staffing_type, s.funding_type, s.change, s.summary, s.created_at, s.created_by";
pub(super) const STAFFING_HEADCOUNT_COLUMNS: &str =
    "h.id, h.institution_id, h.township, h.staffing_type, h.actual, h.updated_at, h.updated_by";
pub(super) const POST_COLUMNS: &str = "p.id, p.township, p.role, p.holder, p.mandated_role, p.revision, p.updated_at";
pub(super) const CATALOGUE_COLUMNS: &str = "c.id, c.owner, c.code, c.title, c.item_type, c.duty_area, \
     c.responsible_institution_id, c.responsible_institution_title, c.power_category, c.legal_basis, c.power_origin, \
     c.power_item_code, c.duties, c.accountability_cases, c.service_domain, c.handling_mode, c.created_at, c.revision, \
     c.updated_at";
pub(super) const AUDIT_COLUMNS: &str = "a.id, a.actor, a.at, a.action, a.resource, a.before_json, a.after_json";

// ------------------------------------------------------------------------------------------------------------
// Row decoding

fn city_code(text: &str) -> StoreResult<CityCode> {
    CityCode::parse(text).map_err(|e| corrupt(e.0))
}

fn county_code(text: &str) -> StoreResult<CountyCode> {
    CountyCode::parse(text).map_err(|e| corrupt(e.0))
}

pub(super) fn township_code(text: &str) -> StoreResult<TownshipCode> {
    TownshipCode::parse(text).map_err(|e| corrupt(e.0))
}

fn class_value(value: i64) -> StoreResult<TownshipClass> {
    TownshipClass::try_from(value).map_err(|_| corrupt(format!("township class {value}")))
}

pub(super) fn optional_class(value: Option<i64>) -> StoreResult<Option<TownshipClass>> {
    value.map(class_value).transpose()
}

pub(super) fn unsigned(value: i64, what: &str) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt(format!("{what} {value}")))
}

pub(super) fn year(value: i64) -> StoreResult<i32> {
    i32::try_from(value).map_err(|_| corrupt(format!("data year {value}")))
}

pub(super) fn city_from_row(row: &DbRow) -> StoreResult<City> {
    Ok(City {
        code: city_code(row.try_get("code")?)?,
        name: row.try_get("name")?,
        province_code: row.try_get("province_code")?,
    })
}

pub(super) fn county_from_row(row: &DbRow) -> StoreResult<County> {
    Ok(County { code: county_code(row.try_get("code")?)?, name: row.try_get("name")? })
}

pub(super) fn township_from_row(row: &DbRow) -> StoreResult<Township> {
    let kind: &str = row.try_get("kind")?;
    let flags: &str = row.try_get("flags")?;
    Ok(Township {
        code: township_code(row.try_get("code")?)?,
        name: row.try_get("name")?,
        kind: TownshipKind::parse(kind).ok_or_else(|| corrupt(format!("township kind {kind:?}")))?,
        flags: serde_json::from_str(flags).map_err(|e| corrupt(format!("township flags {flags:?}: {e}")))?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn observation_from_row(row: &DbRow) -> StoreResult<IndicatorObservation> {
    Ok(IndicatorObservation {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        data_year: year(row.try_get("data_year")?)?,
        values: PerIndicator {
            population: row.try_get("population")?,
            fiscal_revenue: row.try_get("fiscal_revenue")?,
            land_area: row.try_get("land_area")?,
        },
        source: row.try_get("source")?,
        recorded_at: row.try_get("recorded_at")?,
        recorded_by: row.try_get("recorded_by")?,
    })
}

pub(super) fn policy_from_row(row: &DbRow) -> StoreResult<CityPolicy> {
    let toml: &str = row.try_get("policy_toml")?;
    Ok(CityPolicy {
        city: city_code(row.try_get("city")?)?,
        version: row.try_get("version")?,
        policy: Policy::from_toml(toml).map_err(|e| corrupt(format!("stored policy: {e}")))?,
        fingerprint: row.try_get("fingerprint")?,
        created_at: row.try_get("created_at")?,
        document_number: row.try_get("document_number")?,
    })
}

pub(super) fn state_text(state: CohortState) -> &'static str {
    match state {
        CohortState::Current => "current",
        CohortState::Pending => "pending",
        CohortState::DeadLetter => "dead_letter",
    }
}

pub(super) fn job_from_row(row: &DbRow) -> StoreResult<CohortJob> {
    let state: &str = row.try_get("state")?;
    let state = [CohortState::Current, CohortState::Pending, CohortState::DeadLetter]
        .into_iter()
        .find(|s| state_text(*s) == state)
        .ok_or_else(|| corrupt(format!("cohort state {state:?}")))?;
    Ok(CohortJob {
        cohort: CohortKey { city: city_code(row.try_get("city")?)?, data_year: year(row.try_get("data_year")?)? },
        state,
        generation: row.try_get("generation")?,
        attempts: unsigned(row.try_get("attempts")?, "attempt count")?,
        last_error: row.try_get("last_error")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_run: row.try_get("last_run")?,
    })
}

pub(super) fn class_from_row(row: &DbRow) -> StoreResult<ClassRecord> {
    let class_override = match optional_class(row.try_get("override_class")?)? {
        None => None,
        Some(class) => Some(ClassOverride {
            class,
            reason: row.try_get::<Option<String>, _>("override_reason")?.unwrap_or_default(),
            document_number: row.try_get::<Option<String>, _>("override_document_number")?.unwrap_or_default(),
            set_by: row.try_get::<Option<String>, _>("override_set_by")?.unwrap_or_default(),
            set_at: row.try_get::<Option<i64>, _>("override_set_at")?.unwrap_or_default(),
        }),
    };
    Ok(ClassRecord {
        township: township_code(row.try_get("township")?)?,
        data_year: year(row.try_get("data_year")?)?,
        computed_class: optional_class(row.try_get("computed_class")?)?,
        previous_class: optional_class(row.try_get("previous_class")?)?,
        class_override,
        score: row.try_get("score")?,
        rank: unsigned(row.try_get("class_rank")?, "rank")?,
        indices: PerIndicator {
            population: row.try_get("index_population")?,
            fiscal_revenue: row.try_get("index_fiscal_revenue")?,
            land_area: row.try_get("index_land_area")?,
        },
        run_id: row.try_get("run_id")?,
        explanation: row.try_get("explanation")?,
    })
}

/// A history line and its id (the listing's key).
pub(super) fn change_from_row(row: &DbRow) -> StoreResult<(i64, ClassChange)> {
    let cause: &str = row.try_get("cause")?;
    let cause = [ChangeCause::Classification, ChangeCause::Override]
        .into_iter()
        .find(|c| c.as_str() == cause)
        .ok_or_else(|| corrupt(format!("change cause {cause:?}")))?;
    Ok((
        row.try_get("id")?,
        ClassChange {
            township: township_code(row.try_get("township")?)?,
            township_name: row.try_get("township_name")?,
            data_year: year(row.try_get("data_year")?)?,
            previous_class: optional_class(row.try_get("previous_class")?)?,
            new_class: class_value(row.try_get("new_class")?)?,
            score: row.try_get("score")?,
            cause,
            run_id: row.try_get("run_id")?,
            changed_at: row.try_get("changed_at")?,
        },
    ))
}

/// A run; its lines and response only when the row has them (`get_run`), empty otherwise (listings).
pub(super) fn run_from_row(row: &DbRow, with_body: bool) -> StoreResult<ClassificationRun> {
    let (lines, response) = if with_body {
        let lines: &str = row.try_get("lines")?;
        let lines: Vec<RunLine> =
            serde_json::from_str(lines).map_err(|e| corrupt(format!("classification run lines: {e}")))?;
        (lines, row.try_get::<Vec<u8>, _>("response")?)
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(ClassificationRun {
        id: row.try_get("id")?,
        cohort: CohortKey { city: city_code(row.try_get("city")?)?, data_year: year(row.try_get("data_year")?)? },
        policy_version: row.try_get("policy_version")?,
        policy_fingerprint: row.try_get("policy_fingerprint")?,
        run_at: row.try_get("run_at")?,
        classes_changed: unsigned(row.try_get("classes_changed")?, "classes changed")?,
        lines,
        response,
    })
}

fn staffing_type(text: &str) -> StoreResult<StaffingType> {
    StaffingType::parse(text).ok_or_else(|| corrupt(format!("staffing type {text:?}")))
}

pub(super) fn staffing_approval_from_row(row: &DbRow) -> StoreResult<StaffingApproval> {
    let funding: &str = row.try_get("funding_type")?;
    Ok(StaffingApproval {
        id: row.try_get("id")?,
        approval: NewStaffingApproval {
            township: township_code(row.try_get("township")?)?,
            institution_id: row.try_get("institution_id")?,
            document_number: row.try_get("document_number")?,
            approved_on: row.try_get("approved_on")?,
            staffing_type: staffing_type(row.try_get("staffing_type")?)?,
            funding_type: FundingType::parse(funding).ok_or_else(|| corrupt(format!("funding type {funding:?}")))?,
            change: row.try_get("change")?,
            summary: row.try_get("summary")?,
        },
        created_at: row.try_get("created_at")?,
        created_by: row.try_get("created_by")?,
    })
}

pub(super) fn staffing_headcount_from_row(row: &DbRow) -> StoreResult<StaffingHeadcount> {
    Ok(StaffingHeadcount {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        institution_id: row.try_get("institution_id")?,
        staffing_type: staffing_type(row.try_get("staffing_type")?)?,
        actual: unsigned(row.try_get("actual")?, "actual headcount")?,
        updated_at: row.try_get("updated_at")?,
        updated_by: row.try_get("updated_by")?,
    })
}

pub(super) fn institution_from_row(row: &DbRow) -> StoreResult<Institution> {
    let kind: &str = row.try_get("kind")?;
    Ok(Institution {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        kind: InstitutionKind::parse(kind).ok_or_else(|| corrupt(format!("institution kind {kind:?}")))?,
        name: row.try_get("name")?,
        staffing_quota: unsigned(row.try_get("staffing_quota")?, "staffing quota")?,
        approving_document: row.try_get("approving_document")?,
        valid_from: row.try_get("valid_from")?,
        valid_to: row.try_get("valid_to")?,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn plaque_from_row(row: &DbRow) -> StoreResult<Plaque> {
    Ok(Plaque {
        id: row.try_get("id")?,
        institution_id: row.try_get("institution_id")?,
        township: township_code(row.try_get("township")?)?,
        name: row.try_get("name")?,
        approving_document: row.try_get("approving_document")?,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn post_from_row(row: &DbRow) -> StoreResult<LeadershipPost> {
    let mandated_role = match row.try_get::<Option<&str>, _>("mandated_role")? {
        None => None,
        Some(role) => Some(MandatedRole::parse(role).ok_or_else(|| corrupt(format!("mandated role {role:?}")))?),
    };
    Ok(LeadershipPost {
        id: row.try_get("id")?,
        township: township_code(row.try_get("township")?)?,
        role: row.try_get("role")?,
        holder: row.try_get("holder")?,
        mandated_role,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// A stored enum value, decoded with its `parse`.
fn decode<T>(text: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> StoreResult<T> {
    parse(text).ok_or_else(|| corrupt(format!("{what} {text:?}")))
}

pub(super) fn catalogue_item_from_row(row: &DbRow) -> StoreResult<CatalogueItem> {
    let owner: &str = row.try_get("owner")?;
    let owner = if owner.len() == 6 {
        CatalogueOwner::County(county_code(owner)?)
    } else {
        CatalogueOwner::Township(township_code(owner)?)
    };
    // A column the item's type requires.
    let required = |column: &str| -> StoreResult<String> {
        row.try_get::<Option<String>, _>(column)?.ok_or_else(|| corrupt(format!("catalogue item without {column}")))
    };
    let item_type: &str = row.try_get("item_type")?;
    let details = match decode(item_type, CatalogueItemType::parse, "catalogue item type")? {
        CatalogueItemType::Power => ItemDetails::Power {
            category: decode(&required("power_category")?, PowerCategory::parse, "power category")?,
            legal_basis: required("legal_basis")?,
            origin: decode(&required("power_origin")?, PowerOrigin::parse, "power origin")?,
        },
        CatalogueItemType::Responsibility => ItemDetails::Responsibility {
            power_item_code: row.try_get("power_item_code")?,
            duties: required("duties")?,
            accountability_cases: required("accountability_cases")?,
        },
        CatalogueItemType::PublicService => ItemDetails::PublicService {
            service_domain: required("service_domain")?,
            handling_mode: decode(&required("handling_mode")?, HandlingMode::parse, "handling mode")?,
        },
    };
    Ok(CatalogueItem {
        id: row.try_get("id")?,
        owner,
        code: row.try_get("code")?,
        title: row.try_get("title")?,
        duty_area: decode(row.try_get("duty_area")?, DutyArea::parse, "duty area")?,
        responsible_institution_id: row.try_get("responsible_institution_id")?,
        responsible_institution_title: row.try_get("responsible_institution_title")?,
        details,
        created_at: row.try_get("created_at")?,
        revision: row.try_get("revision")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(super) fn audit_from_row(row: &DbRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        actor: row.try_get("actor")?,
        at: row.try_get("at")?,
        action: row.try_get("action")?,
        resource: row.try_get("resource")?,
        before: row.try_get("before_json")?,
        after: row.try_get("after_json")?,
    })
}

// ------------------------------------------------------------------------------------------------------------
// Row encoding

/// The type-specific columns of a catalogue item: those of the other types are NULL.
#[derive(Default)]
pub(super) struct DetailColumns {
    pub(super) power_category: Option<String>,
    pub(super) legal_basis: Option<String>,
    pub(super) power_origin: Option<String>,
    pub(super) power_item_code: Option<String>,
    pub(super) duties: Option<String>,
    pub(super) accountability_cases: Option<String>,
    pub(super) service_domain: Option<String>,
    pub(super) handling_mode: Option<String>,
}

impl DetailColumns {
    pub(super) fn of(details: &ItemDetails) -> Self {
        let text = |value: &str| Some(value.to_owned());
        match details {
            ItemDetails::Power { category, legal_basis, origin } => Self {
                power_category: text(category.as_str()),
                legal_basis: text(legal_basis),
                power_origin: text(origin.as_str()),
                ..Self::default()
            },
            ItemDetails::Responsibility { power_item_code, duties, accountability_cases } => Self {
                power_item_code: power_item_code.clone(),
                duties: text(duties),
                accountability_cases: text(accountability_cases),
                ..Self::default()
            },
            ItemDetails::PublicService { service_domain, handling_mode } => Self {
                service_domain: text(service_domain),
                handling_mode: text(handling_mode.as_str()),
                ..Self::default()
            },
        }
    }
}

pub(super) const DEVIATION_COLUMNS: &str = "d.id, d.county, d.township, d.rule, d.allowed, d.allowed_description, \
     d.document_number, d.approved_on, d.reason, d.valid_to, d.created_by, d.created_at, d.revoked_at, d.revoked_by, \
     d.revocation_document_number, d.revocation_reason";

pub(super) fn deviation_from_row(row: &DbRow) -> StoreResult<ApprovedDeviation> {
    let county = county_code(row.try_get("county")?)?;
    let scope = match row.try_get::<Option<&str>, _>("township")? {
        Some(township) => DeviationScope::Township(township_code(township)?),
        None => DeviationScope::County(county),
    };
    let allowed = row.try_get::<Option<i64>, _>("allowed")?.map(|n| unsigned(n, "allowed figure")).transpose()?;
    let revocation = match row.try_get::<Option<i64>, _>("revoked_at")? {
        Some(revoked_at) => Some(Revocation {
            document_number: row.try_get::<Option<String>, _>("revocation_document_number")?.unwrap_or_default(),
            reason: row.try_get::<Option<String>, _>("revocation_reason")?.unwrap_or_default(),
            revoked_by: row.try_get::<Option<String>, _>("revoked_by")?.unwrap_or_default(),
            revoked_at,
        }),
        None => None,
    };
    Ok(ApprovedDeviation {
        id: row.try_get("id")?,
        scope,
        rule: row.try_get("rule")?,
        allowed,
        allowed_description: row.try_get("allowed_description")?,
        document_number: row.try_get("document_number")?,
        approved_on: row.try_get("approved_on")?,
        reason: row.try_get("reason")?,
        valid_to: row.try_get("valid_to")?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        revocation,
    })
}
