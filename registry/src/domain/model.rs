//! The registry's records (DESIGN.md §4). Plain data: the store persists them, the service converts them.

use serde::{Deserialize, Serialize};
use township_policy::{PerIndicator, Policy, TownshipClass};

use super::names::{CityCode, CountyCode, TownshipCode};

/// Milliseconds since the Unix epoch, UTC.
pub type TimestampMs = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct City {
    pub code: CityCode,
    pub name: String,
    pub province_code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct County {
    pub code: CountyCode,
    pub name: String,
}

/// 镇 / 乡 / 民族乡 / 街道 / other township-level units (development zones, farms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TownshipKind {
    Town,
    Township,
    EthnicTownship,
    Subdistrict,
    Other,
}

impl TownshipKind {
    /// The kind a division file's name implies: 街道 → sub-district, 民族乡 (…族乡) → ethnic township,
    /// 镇 → town, 乡 → township, anything else (开发区, 农场, 管委会 …) → other.
    pub fn from_division_name(name: &str) -> Self {
        if name.ends_with("街道") || name.ends_with("街道办事处") {
            TownshipKind::Subdistrict
        } else if name.ends_with("族乡") {
            TownshipKind::EthnicTownship
        } else if name.ends_with('镇') {
            TownshipKind::Town
        } else if name.ends_with('乡') {
            TownshipKind::Township
        } else {
            TownshipKind::Other
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TownshipKind::Town => "town",
            TownshipKind::Township => "township",
            TownshipKind::EthnicTownship => "ethnic_township",
            TownshipKind::Subdistrict => "subdistrict",
            TownshipKind::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Town, Self::Township, Self::EthnicTownship, Self::Subdistrict, Self::Other]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// 镇, 乡, 民族乡, 街道, or 其他 (other township-level units).
    pub fn label_zh(self) -> &'static str {
        match self {
            TownshipKind::Town => "镇",
            TownshipKind::Township => "乡",
            TownshipKind::EthnicTownship => "民族乡",
            TownshipKind::Subdistrict => "街道",
            TownshipKind::Other => "其他乡级单位",
        }
    }

    /// Sub-districts carry eight duty areas, townships six (DESIGN.md §1.3).
    pub fn is_subdistrict(self) -> bool {
        self == TownshipKind::Subdistrict
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Township {
    pub code: TownshipCode,
    pub name: String,
    pub kind: TownshipKind,
    pub flags: Vec<String>,
    /// ISO dates (YYYY-MM-DD).
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// Incremented on every change; the etag is derived from it.
    pub revision: i64,
    pub updated_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewObservation {
    pub township: TownshipCode,
    pub data_year: i32,
    /// Population (万人), fiscal revenue (万元), land area (km²).
    pub values: PerIndicator<f64>,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndicatorObservation {
    pub id: i64,
    pub township: TownshipCode,
    pub data_year: i32,
    pub values: PerIndicator<f64>,
    pub source: String,
    pub recorded_at: TimestampMs,
    pub recorded_by: String,
}

/// A policy a city set. Version 0 stands for the repository's default policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CityPolicy {
    pub city: CityCode,
    pub version: i64,
    pub policy: Policy,
    pub fingerprint: String,
    pub created_at: TimestampMs,
    /// The 文号 adopting a policy that departs from the policy document; empty otherwise.
    pub document_number: String,
}

/// A (city, data year): the townships compared with each other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CohortKey {
    pub city: CityCode,
    pub data_year: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CohortState {
    Current,
    Pending,
    DeadLetter,
}

/// The outbox row of a cohort: "this cohort needs classifying".
#[derive(Debug, Clone, PartialEq)]
pub struct CohortJob {
    pub cohort: CohortKey,
    pub state: CohortState,
    /// Bumped by every change to the cohort; a run only clears the job if no change arrived meanwhile.
    pub generation: i64,
    /// Failed attempts since the last success.
    pub attempts: u32,
    pub last_error: String,
    pub next_attempt_at: TimestampMs,
    pub last_run: Option<i64>,
}

/// One township's line of a classification run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLine {
    pub township: TownshipCode,
    pub inputs: PerIndicator<f64>,
    pub indices: PerIndicator<f64>,
    pub score: f64,
    pub rank: u32,
    pub class: TownshipClass,
    pub explanation: String,
}

/// A classification run about to be stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    pub cohort: CohortKey,
    /// The job generation the run was computed from.
    pub generation: i64,
    pub policy_version: i64,
    pub policy_fingerprint: String,
    pub lines: Vec<RunLine>,
    /// The classifier's whole answer (encoded `ClassifyResponse`), kept for audit.
    pub response: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationRun {
    pub id: i64,
    pub cohort: CohortKey,
    pub policy_version: i64,
    pub policy_fingerprint: String,
    pub run_at: TimestampMs,
    pub classes_changed: u32,
    /// Empty in listings.
    pub lines: Vec<RunLine>,
    /// Empty in listings.
    pub response: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassOverride {
    pub class: TownshipClass,
    pub reason: String,
    pub document_number: String,
    pub set_by: String,
    pub set_at: TimestampMs,
}

/// A township's class in one data year.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRecord {
    pub township: TownshipCode,
    pub data_year: i32,
    pub computed_class: Option<TownshipClass>,
    pub previous_class: Option<TownshipClass>,
    pub class_override: Option<ClassOverride>,
    pub score: f64,
    pub rank: u32,
    pub indices: PerIndicator<f64>,
    pub run_id: Option<i64>,
    pub explanation: String,
}

impl ClassRecord {
    /// The override's class when there is one, otherwise the computed class.
    pub fn effective_class(&self) -> Option<TownshipClass> {
        self.class_override.as_ref().map(|o| o.class).or(self.computed_class)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeCause {
    Classification,
    Override,
}

impl ChangeCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeCause::Classification => "classification",
            ChangeCause::Override => "override",
        }
    }
}

/// A moved class: one line of a township's history, and what `WatchClassChanges` streams.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassChange {
    pub township: TownshipCode,
    pub township_name: String,
    pub data_year: i32,
    pub previous_class: Option<TownshipClass>,
    pub new_class: TownshipClass,
    pub score: f64,
    pub cause: ChangeCause,
    pub run_id: Option<i64>,
    pub changed_at: TimestampMs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstitutionKind {
    /// 党政机构
    PartyGovernmentOffice,
    /// 事业单位
    PublicInstitution,
    /// 综合行政执法机构
    LawEnforcementUnit,
}

impl InstitutionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InstitutionKind::PartyGovernmentOffice => "party_government_office",
            InstitutionKind::PublicInstitution => "public_institution",
            InstitutionKind::LawEnforcementUnit => "law_enforcement_unit",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::PartyGovernmentOffice, Self::PublicInstitution, Self::LawEnforcementUnit]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            InstitutionKind::PartyGovernmentOffice => "党政机构",
            InstitutionKind::PublicInstitution => "事业单位",
            InstitutionKind::LawEnforcementUnit => "综合行政执法机构",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewInstitution {
    pub township: TownshipCode,
    pub kind: InstitutionKind,
    pub name: String,
    pub staffing_quota: u32,
    pub approving_document: String,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    pub id: i64,
    pub township: TownshipCode,
    pub kind: InstitutionKind,
    pub name: String,
    pub staffing_quota: u32,
    pub approving_document: String,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub created_at: TimestampMs,
    /// Bumped by every update; the etag is made from it.
    pub revision: i64,
    pub updated_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPlaque {
    pub institution_id: i64,
    pub name: String,
    pub approving_document: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plaque {
    pub id: i64,
    pub institution_id: i64,
    pub township: TownshipCode,
    pub name: String,
    pub approving_document: String,
    pub created_at: TimestampMs,
    /// Bumped by every update; the etag is made from it.
    pub revision: i64,
    pub updated_at: TimestampMs,
}

/// 编制类型: 行政编制 or 事业编制, the two figures the policy's staffing norms count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffingType {
    /// 行政编制
    Administrative,
    /// 事业编制
    PublicInstitution,
}

impl StaffingType {
    pub const ALL: [StaffingType; 2] = [StaffingType::Administrative, StaffingType::PublicInstitution];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffingType::Administrative => "administrative",
            StaffingType::PublicInstitution => "public_institution",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            StaffingType::Administrative => "行政编制",
            StaffingType::PublicInstitution => "事业编制",
        }
    }

    /// The type an institution's staff usually hold: a party/government office's are 行政编制, a public
    /// institution's and a law-enforcement unit's 事业编制 (the split the policy's norms use).
    pub fn usual_for(kind: InstitutionKind) -> Self {
        match kind {
            InstitutionKind::PartyGovernmentOffice => StaffingType::Administrative,
            InstitutionKind::PublicInstitution | InstitutionKind::LawEnforcementUnit => StaffingType::PublicInstitution,
        }
    }
}

/// 经费类型 of approved staffing: 全额拨款, 差额拨款 or 自收自支.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundingType {
    /// 全额拨款
    Full,
    /// 差额拨款
    Partial,
    /// 自收自支
    SelfFunded,
}

impl FundingType {
    pub const ALL: [FundingType; 3] = [FundingType::Full, FundingType::Partial, FundingType::SelfFunded];

    pub fn as_str(self) -> &'static str {
        match self {
            FundingType::Full => "full",
            FundingType::Partial => "partial",
            FundingType::SelfFunded => "self_funded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            FundingType::Full => "全额拨款",
            FundingType::Partial => "差额拨款",
            FundingType::SelfFunded => "自收自支",
        }
    }
}

/// One approval of an institution's staffing ledger: never changed once recorded. A reduction is a negative
/// `change`; the approved figure of a type is the sum of its approvals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStaffingApproval {
    pub township: TownshipCode,
    pub institution_id: i64,
    /// 批准文号
    pub document_number: String,
    /// 批准时间, ISO date (YYYY-MM-DD).
    pub approved_on: String,
    pub staffing_type: StaffingType,
    pub funding_type: FundingType,
    pub change: i64,
    /// 变动摘要
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffingApproval {
    pub id: i64,
    #[serde(flatten)]
    pub approval: NewStaffingApproval,
    pub created_at: TimestampMs,
    pub created_by: String,
}

/// An actual headcount to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStaffingHeadcount {
    pub township: TownshipCode,
    pub institution_id: i64,
    pub staffing_type: StaffingType,
    pub actual: u32,
}

/// An institution's actual headcount (实有人数) of one staffing type, as last set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffingHeadcount {
    pub id: i64,
    pub township: TownshipCode,
    pub institution_id: i64,
    pub staffing_type: StaffingType,
    pub actual: u32,
    pub updated_at: TimestampMs,
    pub updated_by: String,
}

/// One institution's staffing of one type as compliance sees it: the approved figure (the ledger's sum) and the
/// actual headcount, if set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffingFigure {
    pub institution_id: i64,
    pub staffing_type: StaffingType,
    pub approved: i64,
    pub actual: Option<u32>,
}

/// The three roles the policy mandates in every township's party committee (DESIGN.md §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MandatedRole {
    /// 不担任政府正职的党委副书记, for party building.
    PartyBuildingDeputySecretary,
    /// 专职纪委书记
    DisciplineInspectionSecretary,
    /// 专职组织委员
    OrganisationCommitteeMember,
}

impl MandatedRole {
    pub const ALL: [MandatedRole; 3] = [
        MandatedRole::PartyBuildingDeputySecretary,
        MandatedRole::DisciplineInspectionSecretary,
        MandatedRole::OrganisationCommitteeMember,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MandatedRole::PartyBuildingDeputySecretary => "party_building_deputy_secretary",
            MandatedRole::DisciplineInspectionSecretary => "discipline_inspection_secretary",
            MandatedRole::OrganisationCommitteeMember => "organisation_committee_member",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            MandatedRole::PartyBuildingDeputySecretary => "不担任政府正职的党委副书记",
            MandatedRole::DisciplineInspectionSecretary => "专职纪委书记",
            MandatedRole::OrganisationCommitteeMember => "专职组织委员",
        }
    }

    /// The label in the words of a unit of `kind`: a 街道's bodies are the 党工委 (with its 纪工委) and the
    /// 办事处, 派出机关 of the county's party committee and government (policy section 二), not a 党委 and a 政府.
    pub fn label_zh_for(self, kind: TownshipKind) -> &'static str {
        match self {
            _ if !kind.is_subdistrict() => self.label_zh(),
            MandatedRole::PartyBuildingDeputySecretary => "不担任办事处主任的党工委副书记",
            MandatedRole::DisciplineInspectionSecretary => "专职纪工委书记",
            MandatedRole::OrganisationCommitteeMember => "党工委专职组织委员",
        }
    }

    /// 纪委书记 and 组织委员 are 专职专岗 (policy section 一(二)): their holder holds no other post. The
    /// party-building deputy secretary is only barred from the government head's post.
    pub fn is_dedicated(self) -> bool {
        matches!(self, MandatedRole::DisciplineInspectionSecretary | MandatedRole::OrganisationCommitteeMember)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPost {
    pub township: TownshipCode,
    pub role: String,
    /// None while vacant.
    pub holder: Option<String>,
    pub mandated_role: Option<MandatedRole>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadershipPost {
    pub id: i64,
    pub township: TownshipCode,
    pub role: String,
    pub holder: Option<String>,
    pub mandated_role: Option<MandatedRole>,
    pub revision: i64,
    pub updated_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub actor: String,
    pub at: TimestampMs,
    pub action: String,
    pub resource: String,
    /// JSON; None when the resource did not exist before (or no longer exists after).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// Everything the compliance rules look at for one township.
#[derive(Debug, Clone, PartialEq)]
pub struct TownshipFacts {
    pub township: Township,
    /// The township's class in its city's current year ([`super::years::current_year`]), if classified: the
    /// official class the rules judge by. None when the city has no current year.
    pub class: Option<ClassRecord>,
    pub institutions: Vec<Institution>,
    pub plaques: Vec<Plaque>,
    pub posts: Vec<LeadershipPost>,
    /// The township's effective catalogue (its own items and the county template items it inherits), in code
    /// order, each with its responsible institution resolved.
    pub catalogue: Vec<super::catalogue::CatalogueEntry>,
    /// Approved staffing and actual headcounts per institution and type, for every institution with either, in
    /// (institution, type) order; the rules count those of institutions in force only.
    pub staffing: Vec<StaffingFigure>,
    /// The approved deviations in force that apply to the township: its county's and its own.
    pub deviations: Vec<super::deviations::ApprovedDeviation>,
}
