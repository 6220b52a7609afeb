//! proto ⇄ domain conversions of the registry's messages.

use township_policy::PerIndicator;
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;

use crate::domain::catalogue::*;
use crate::domain::deviations::ApprovedDeviation;
use crate::domain::model::*;
use crate::domain::names::{city_name, county_name, township_name};
use crate::domain::rules::{Finding, Severity};

pub fn timestamp(ms: TimestampMs) -> Option<prost_types::Timestamp> {
    // rem_euclid(1000) is in 0..1000, so the nanoseconds fit an i32.
    let nanos = i32::try_from(ms.rem_euclid(1000) * 1_000_000).unwrap_or_default();
    Some(prost_types::Timestamp { seconds: ms.div_euclid(1000), nanos })
}

pub fn values_to_proto(values: PerIndicator<f64>) -> cpb::IndicatorValues {
    cpb::IndicatorValues {
        population: values.population,
        fiscal_revenue: values.fiscal_revenue,
        land_area: values.land_area,
    }
}

pub fn values_from_proto(values: &cpb::IndicatorValues) -> PerIndicator<f64> {
    PerIndicator { population: values.population, fiscal_revenue: values.fiscal_revenue, land_area: values.land_area }
}

pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The revision an etag names, if it is one of ours.
pub fn revision_of(etag: &str) -> Option<i64> {
    etag.trim_matches('"').parse().ok()
}

pub fn kind_to_proto(kind: TownshipKind) -> cpb::TownshipKind {
    match kind {
        TownshipKind::Town => cpb::TownshipKind::Town,
        TownshipKind::Township => cpb::TownshipKind::Township,
        TownshipKind::EthnicTownship => cpb::TownshipKind::EthnicTownship,
        TownshipKind::Subdistrict => cpb::TownshipKind::Subdistrict,
        TownshipKind::Other => cpb::TownshipKind::Other,
    }
}

pub fn kind_from_proto(kind: i32) -> Option<TownshipKind> {
    match cpb::TownshipKind::try_from(kind).ok()? {
        cpb::TownshipKind::Unspecified => None,
        cpb::TownshipKind::Town => Some(TownshipKind::Town),
        cpb::TownshipKind::Township => Some(TownshipKind::Township),
        cpb::TownshipKind::EthnicTownship => Some(TownshipKind::EthnicTownship),
        cpb::TownshipKind::Subdistrict => Some(TownshipKind::Subdistrict),
        cpb::TownshipKind::Other => Some(TownshipKind::Other),
    }
}

pub fn city_to_proto(city: City) -> pb::City {
    pb::City {
        name: city_name(&city.code),
        code: city.code.to_string(),
        display_name: city.name,
        province_code: city.province_code,
    }
}

pub fn county_to_proto(county: County) -> pb::County {
    pb::County { name: county_name(&county.code), code: county.code.to_string(), display_name: county.name }
}

pub fn township_to_proto(township: Township) -> pb::Township {
    pb::Township {
        name: township_name(&township.code),
        code: township.code.to_string(),
        display_name: township.name,
        kind: kind_to_proto(township.kind).into(),
        flags: township.flags,
        valid_from: township.valid_from.unwrap_or_default(),
        valid_to: township.valid_to.unwrap_or_default(),
        etag: etag(township.revision),
        update_time: timestamp(township.updated_at),
    }
}

pub fn observation_to_proto(observation: IndicatorObservation) -> pb::IndicatorObservation {
    let township = township_name(&observation.township);
    pb::IndicatorObservation {
        name: format!("{township}/indicators/{}/observations/{}", observation.data_year, observation.id),
        township,
        data_year: observation.data_year,
        values: Some(values_to_proto(observation.values)),
        source: observation.source,
        record_time: timestamp(observation.recorded_at),
        recorded_by: observation.recorded_by,
    }
}

pub fn city_policy_to_proto(policy: CityPolicy) -> pb::CityPolicy {
    let version = if policy.version == 0 { "default".to_owned() } else { policy.version.to_string() };
    pb::CityPolicy {
        name: format!("{}/policies/{version}", city_name(&policy.city)),
        version: policy.version,
        policy: Some(township_policy::proto::policy_to_proto(&policy.policy)),
        policy_fingerprint: policy.fingerprint,
        create_time: timestamp(policy.created_at),
        document_number: policy.document_number,
    }
}

pub fn cohort_state_to_proto(state: Option<CohortState>) -> pb::CohortState {
    match state {
        None => pb::CohortState::Empty,
        Some(CohortState::Current) => pb::CohortState::Current,
        Some(CohortState::Pending) => pb::CohortState::Pending,
        Some(CohortState::DeadLetter) => pb::CohortState::DeadLetter,
    }
}

pub fn run_name(city: &crate::domain::names::CityCode, run_id: i64) -> String {
    format!("{}/classificationRuns/{run_id}", city_name(city))
}

pub fn class_to_proto(record: ClassRecord, display_name: String, state: Option<CohortState>) -> pb::TownshipClass {
    let city = record.township.city();
    pb::TownshipClass {
        township: township_name(&record.township),
        display_name,
        data_year: record.data_year,
        effective_class: record.effective_class().map_or(0, u32::from),
        computed_class: record.computed_class.map_or(0, u32::from),
        r#override: record.class_override.map(|o| pb::ClassOverride {
            township_class: u32::from(o.class),
            reason: o.reason,
            document_number: o.document_number,
            set_by: o.set_by,
            set_time: timestamp(o.set_at),
        }),
        score: record.score,
        rank: record.rank,
        indices: Some(values_to_proto(record.indices)),
        run: record.run_id.map(|id| run_name(&city, id)).unwrap_or_default(),
        cohort_state: cohort_state_to_proto(state).into(),
        explanation: record.explanation,
        previous_class: record.previous_class.map_or(0, u32::from),
    }
}

pub fn change_to_proto(change: ClassChange) -> pb::ClassChange {
    let city = change.township.city();
    pb::ClassChange {
        township: township_name(&change.township),
        display_name: change.township_name,
        data_year: change.data_year,
        previous_class: change.previous_class.map_or(0, u32::from),
        new_class: u32::from(change.new_class),
        score: change.score,
        run: change.run_id.map(|id| run_name(&city, id)).unwrap_or_default(),
        change_time: timestamp(change.changed_at),
    }
}

pub fn history_to_proto(change: ClassChange) -> pb::ClassHistoryEntry {
    let city = change.township.city();
    pb::ClassHistoryEntry {
        data_year: change.data_year,
        previous_class: change.previous_class.map_or(0, u32::from),
        new_class: u32::from(change.new_class),
        cause: change.cause.as_str().to_owned(),
        run: change.run_id.map(|id| run_name(&city, id)).unwrap_or_default(),
        change_time: timestamp(change.changed_at),
    }
}

pub fn institution_kind_from_proto(kind: i32) -> Option<InstitutionKind> {
    match pb::InstitutionKind::try_from(kind).ok()? {
        pb::InstitutionKind::Unspecified => None,
        pb::InstitutionKind::PartyGovernmentOffice => Some(InstitutionKind::PartyGovernmentOffice),
        pb::InstitutionKind::PublicInstitution => Some(InstitutionKind::PublicInstitution),
        pb::InstitutionKind::LawEnforcementUnit => Some(InstitutionKind::LawEnforcementUnit),
    }
}

pub fn institution_name(township: &crate::domain::names::TownshipCode, id: i64) -> String {
    format!("{}/institutions/{id}", township_name(township))
}

pub fn institution_to_proto(institution: Institution) -> pb::Institution {
    pb::Institution {
        name: institution_name(&institution.township, institution.id),
        kind: match institution.kind {
            InstitutionKind::PartyGovernmentOffice => pb::InstitutionKind::PartyGovernmentOffice,
            InstitutionKind::PublicInstitution => pb::InstitutionKind::PublicInstitution,
            InstitutionKind::LawEnforcementUnit => pb::InstitutionKind::LawEnforcementUnit,
        }
        .into(),
        display_name: institution.name,
        staffing_quota: institution.staffing_quota,
        approving_document: institution.approving_document,
        valid_from: institution.valid_from.unwrap_or_default(),
        valid_to: institution.valid_to.unwrap_or_default(),
        create_time: timestamp(institution.created_at),
        etag: etag(institution.revision),
        update_time: timestamp(institution.updated_at),
    }
}

pub fn plaque_to_proto(plaque: Plaque) -> pb::Plaque {
    pb::Plaque {
        name: format!("{}/plaques/{}", institution_name(&plaque.township, plaque.institution_id), plaque.id),
        display_name: plaque.name,
        approving_document: plaque.approving_document,
        create_time: timestamp(plaque.created_at),
        etag: etag(plaque.revision),
        update_time: timestamp(plaque.updated_at),
    }
}

/// `None` for a value this server does not know; `Some(None)` for UNSPECIFIED (no mandated role).
pub fn mandated_role_from_proto(role: i32) -> Option<Option<MandatedRole>> {
    Some(match pb::MandatedRole::try_from(role).ok()? {
        pb::MandatedRole::Unspecified => None,
        pb::MandatedRole::PartyBuildingDeputySecretary => Some(MandatedRole::PartyBuildingDeputySecretary),
        pb::MandatedRole::DisciplineInspectionSecretary => Some(MandatedRole::DisciplineInspectionSecretary),
        pb::MandatedRole::OrganisationCommitteeMember => Some(MandatedRole::OrganisationCommitteeMember),
    })
}

pub fn post_to_proto(post: LeadershipPost) -> pb::LeadershipPost {
    pb::LeadershipPost {
        name: format!("{}/posts/{}", township_name(&post.township), post.id),
        role: post.role,
        holder: post.holder.unwrap_or_default(),
        mandated_role: match post.mandated_role {
            None => pb::MandatedRole::Unspecified,
            Some(MandatedRole::PartyBuildingDeputySecretary) => pb::MandatedRole::PartyBuildingDeputySecretary,
            Some(MandatedRole::DisciplineInspectionSecretary) => pb::MandatedRole::DisciplineInspectionSecretary,
            Some(MandatedRole::OrganisationCommitteeMember) => pb::MandatedRole::OrganisationCommitteeMember,
        }
        .into(),
        etag: etag(post.revision),
        update_time: timestamp(post.updated_at),
    }
}

pub fn finding_to_proto(finding: Finding) -> pb::Finding {
    pb::Finding {
        rule: finding.rule.to_owned(),
        severity: match finding.severity {
            Severity::Warning => pb::Severity::Warning,
            Severity::Error => pb::Severity::Error,
        }
        .into(),
        township: finding.township,
        township_display_name: finding.township_display_name,
        message: finding.message,
        inferred: finding.inferred,
        resource: finding.resource,
        approved_deviation: finding.deviation.map(|note| pb::ApprovedDeviationNote {
            approved_deviation: note.deviation,
            document_number: note.document_number,
            approved_on: note.approved_on,
            allowed: note.allowed.unwrap_or(0),
            approved: note.approved,
        }),
    }
}

/// `today` (ISO date) decides `in_force`.
pub fn deviation_to_proto(deviation: ApprovedDeviation, today: &str) -> pb::ApprovedDeviation {
    let in_force = deviation.in_force(today);
    let name = deviation.name();
    let (revoke_time, revoked_by, revocation_document_number, revocation_reason) = match deviation.revocation {
        Some(revocation) => {
            (timestamp(revocation.revoked_at), revocation.revoked_by, revocation.document_number, revocation.reason)
        }
        None => (None, String::new(), String::new(), String::new()),
    };
    pb::ApprovedDeviation {
        name,
        rule: deviation.rule,
        allowed: deviation.allowed.unwrap_or(0),
        allowed_description: deviation.allowed_description,
        document_number: deviation.document_number,
        approved_on: deviation.approved_on,
        reason: deviation.reason,
        valid_to: deviation.valid_to.unwrap_or_default(),
        created_by: deviation.created_by,
        create_time: timestamp(deviation.created_at),
        revoke_time,
        revoked_by,
        revocation_document_number,
        revocation_reason,
        in_force,
    }
}

pub fn audit_to_proto(event: AuditEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: event.id,
        actor: event.actor,
        event_time: timestamp(event.at),
        action: event.action,
        resource: event.resource,
        before_json: event.before.unwrap_or_default(),
        after_json: event.after.unwrap_or_default(),
    }
}

/// Maps each domain value to its proto value (and back) from one table.
macro_rules! enum_table {
    ($to:ident, $from:ident, $domain:ty, $proto:ty, [$($d:path => $p:path),* $(,)?]) => {
        pub fn $to(value: $domain) -> $proto {
            match value {
                $($d => $p),*
            }
        }

        /// None for UNSPECIFIED and for values this server does not know.
        pub fn $from(value: i32) -> Option<$domain> {
            match <$proto>::try_from(value).ok()? {
                $($p => Some($d),)*
                _ => None,
            }
        }
    };
}

enum_table!(item_type_to_proto, item_type_from_proto, CatalogueItemType, pb::CatalogueItemType, [
    CatalogueItemType::Power => pb::CatalogueItemType::Power,
    CatalogueItemType::Responsibility => pb::CatalogueItemType::Responsibility,
    CatalogueItemType::PublicService => pb::CatalogueItemType::PublicService,
]);

enum_table!(duty_area_to_proto, duty_area_from_proto, DutyArea, pb::DutyArea, [
    DutyArea::PartyBuilding => pb::DutyArea::PartyBuilding,
    DutyArea::EconomicDevelopment => pb::DutyArea::EconomicDevelopment,
    DutyArea::PublicService => pb::DutyArea::PublicService,
    DutyArea::SocialGovernance => pb::DutyArea::SocialGovernance,
    DutyArea::TownManagement => pb::DutyArea::TownManagement,
    DutyArea::GrassrootsDemocracy => pb::DutyArea::GrassrootsDemocracy,
    DutyArea::ServeEconomicDevelopment => pb::DutyArea::ServeEconomicDevelopment,
    DutyArea::OrganisePublicService => pb::DutyArea::OrganisePublicService,
    DutyArea::PublicManagement => pb::DutyArea::PublicManagement,
    DutyArea::SuperviseLawEnforcement => pb::DutyArea::SuperviseLawEnforcement,
    DutyArea::MobiliseSocialParticipation => pb::DutyArea::MobiliseSocialParticipation,
    DutyArea::GuideGrassrootsAutonomy => pb::DutyArea::GuideGrassrootsAutonomy,
    DutyArea::MaintainPublicSafety => pb::DutyArea::MaintainPublicSafety,
]);

enum_table!(power_category_to_proto, power_category_from_proto, PowerCategory, pb::PowerCategory, [
    PowerCategory::Licensing => pb::PowerCategory::Licensing,
    PowerCategory::Penalty => pb::PowerCategory::Penalty,
    PowerCategory::Coercion => pb::PowerCategory::Coercion,
    PowerCategory::Levy => pb::PowerCategory::Levy,
    PowerCategory::Benefit => pb::PowerCategory::Benefit,
    PowerCategory::Inspection => pb::PowerCategory::Inspection,
    PowerCategory::Confirmation => pb::PowerCategory::Confirmation,
    PowerCategory::Reward => pb::PowerCategory::Reward,
    PowerCategory::Adjudication => pb::PowerCategory::Adjudication,
    PowerCategory::Other => pb::PowerCategory::Other,
]);

enum_table!(power_origin_to_proto, power_origin_from_proto, PowerOrigin, pb::PowerOrigin, [
    PowerOrigin::Statutory => pb::PowerOrigin::Statutory,
    PowerOrigin::Devolved => pb::PowerOrigin::Devolved,
    PowerOrigin::Entrusted => pb::PowerOrigin::Entrusted,
]);

enum_table!(handling_mode_to_proto, handling_mode_from_proto, HandlingMode, pb::HandlingMode, [
    HandlingMode::Direct => pb::HandlingMode::Direct,
    HandlingMode::OnBehalf => pb::HandlingMode::OnBehalf,
    HandlingMode::Assisted => pb::HandlingMode::Assisted,
    HandlingMode::Notify => pb::HandlingMode::Notify,
]);

/// A catalogue item as the API shows it. `kind` is the township's whose catalogue it is shown in (for the duty
/// area's wording); None for a county's template. A township item names its institution; a template item in a
/// township's catalogue names the institution its title resolved to, if any.
pub fn catalogue_item_to_proto(entry: CatalogueEntry, kind: Option<TownshipKind>) -> pb::CatalogueItem {
    let CatalogueEntry { item, inherited, resolution } = entry;
    let name = item.resource_name();
    let item_type = item_type_to_proto(item.details.item_type());
    let responsible_institution = match (&item.owner, item.responsible_institution_id, &resolution) {
        (CatalogueOwner::Township(township), Some(id), _) => institution_name(township, id),
        (_, _, Resolution::Resolved(institution)) => institution_name(&institution.township, institution.id),
        _ => String::new(),
    };
    let details = match item.details {
        ItemDetails::Power { category, legal_basis, origin } => pb::catalogue_item::Details::Power(pb::PowerDetails {
            category: power_category_to_proto(category).into(),
            legal_basis,
            origin: power_origin_to_proto(origin).into(),
        }),
        ItemDetails::Responsibility { power_item_code, duties, accountability_cases } => {
            pb::catalogue_item::Details::Responsibility(pb::ResponsibilityDetails {
                power_item_code: power_item_code.unwrap_or_default(),
                duties,
                accountability_cases,
            })
        }
        ItemDetails::PublicService { service_domain, handling_mode } => {
            pb::catalogue_item::Details::PublicService(pb::PublicServiceDetails {
                service_domain,
                handling_mode: handling_mode_to_proto(handling_mode).into(),
            })
        }
    };
    pb::CatalogueItem {
        name,
        item_type: item_type.into(),
        code: item.code,
        title: item.title,
        duty_area: duty_area_to_proto(item.duty_area).into(),
        responsible_institution,
        responsible_institution_title: item.responsible_institution_title,
        inherited,
        create_time: timestamp(item.created_at),
        duty_area_label: kind.map_or(item.duty_area.label_zh(), |kind| item.duty_area.label_zh_for(kind)).to_owned(),
        details: Some(details),
        etag: etag(item.revision),
        update_time: timestamp(item.updated_at),
    }
}

pub fn year_state_to_proto(state: crate::domain::years::YearState) -> pb::DataYearState {
    use crate::domain::years::YearState;
    match state {
        YearState::Current => pb::DataYearState::Current,
        YearState::Adopted => pb::DataYearState::Adopted,
        YearState::Complete => pb::DataYearState::Complete,
        YearState::Provisional => pb::DataYearState::Provisional,
    }
}

pub fn adoption_to_proto(adoption: crate::domain::years::YearAdoption) -> pb::DataYearAdoption {
    pb::DataYearAdoption {
        city: city_name(&adoption.city),
        data_year: adoption.data_year,
        document_number: adoption.document_number,
        adopted_on: adoption.adopted_on,
        reason: adoption.reason,
        townships_without_data: adoption.townships_without_data.iter().map(township_name).collect(),
        townships_in_force: adoption.townships_in_force,
        adopted_by: adoption.adopted_by,
        adopt_time: timestamp(adoption.adopted_at),
    }
}

pub fn data_year_to_proto(year: crate::domain::years::DataYear, current: Option<i32>) -> pb::DataYear {
    pb::DataYear {
        data_year: year.data_year,
        townships_with_data: year.townships_with_data,
        townships_in_force: year.townships_in_force,
        coverage: year.coverage(),
        state: year_state_to_proto(year.state(current)).into(),
        adoption: year.adoption.map(adoption_to_proto),
    }
}

pub fn staffing_type_to_proto(staffing_type: StaffingType) -> pb::StaffingType {
    match staffing_type {
        StaffingType::Administrative => pb::StaffingType::Administrative,
        StaffingType::PublicInstitution => pb::StaffingType::PublicInstitution,
    }
}

/// `None` for UNSPECIFIED or a value this server does not know.
pub fn staffing_type_from_proto(value: i32) -> Option<StaffingType> {
    match pb::StaffingType::try_from(value).ok()? {
        pb::StaffingType::Unspecified => None,
        pb::StaffingType::Administrative => Some(StaffingType::Administrative),
        pb::StaffingType::PublicInstitution => Some(StaffingType::PublicInstitution),
    }
}

/// `None` for UNSPECIFIED or a value this server does not know.
pub fn funding_type_from_proto(value: i32) -> Option<FundingType> {
    match pb::FundingType::try_from(value).ok()? {
        pb::FundingType::Unspecified => None,
        pb::FundingType::Full => Some(FundingType::Full),
        pb::FundingType::Partial => Some(FundingType::Partial),
        pb::FundingType::SelfFunded => Some(FundingType::SelfFunded),
    }
}

pub fn staffing_approval_to_proto(approval: StaffingApproval) -> pb::StaffingApproval {
    let StaffingApproval { id, approval, created_at, created_by } = approval;
    pb::StaffingApproval {
        name: format!("{}/staffingApprovals/{id}", institution_name(&approval.township, approval.institution_id)),
        document_number: approval.document_number,
        approved_on: approval.approved_on,
        staffing_type: staffing_type_to_proto(approval.staffing_type).into(),
        funding_type: match approval.funding_type {
            FundingType::Full => pb::FundingType::Full,
            FundingType::Partial => pb::FundingType::Partial,
            FundingType::SelfFunded => pb::FundingType::SelfFunded,
        }
        .into(),
        // The service accepts changes within i32 only (MAX_STAFFING_CHANGE).
        change: i32::try_from(approval.change).unwrap_or(if approval.change < 0 { i32::MIN } else { i32::MAX }),
        summary: approval.summary,
        create_time: timestamp(created_at),
        created_by,
    }
}

pub fn staffing_headcount_to_proto(headcount: StaffingHeadcount) -> pb::StaffingHeadcount {
    pb::StaffingHeadcount {
        name: format!(
            "{}/staffingHeadcounts/{}",
            institution_name(&headcount.township, headcount.institution_id),
            headcount.staffing_type.as_str()
        ),
        staffing_type: staffing_type_to_proto(headcount.staffing_type).into(),
        actual_headcount: headcount.actual,
        update_time: timestamp(headcount.updated_at),
        updated_by: headcount.updated_by,
    }
}
