//! Duty catalogues (DESIGN.md §1.3, §4): the duty areas of each kind of township, the three catalogues' items
//! (权力清单, 责任清单, 公共服务事项目录), and how a township's effective catalogue is built from its county's
//! template and its own items, with each item's responsible institution resolved among its institutions.
//!
//! A county publishes template items that every township of the county inherits (those of the township's duty
//! areas); a township's own items extend them, and an own item with a template item's `code` replaces it for
//! that township. Template items name their responsible institution by title (e.g. 党政办公室), resolved in
//! each township; own items name an institution of the township by id.

use serde::{Deserialize, Serialize};

use super::model::{Institution, TimestampMs, TownshipKind};
use super::names::{CountyCode, TownshipCode, county_name, township_name};

/// A duty area. Party building is shared by both lists; the other areas belong to one kind of unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DutyArea {
    /// 加强基层党建 (townships) / 加强党的建设 (sub-districts).
    PartyBuilding,
    /// 促进经济发展
    EconomicDevelopment,
    /// 强化公共服务
    PublicService,
    /// 加强社会治理
    SocialGovernance,
    /// 提升城镇管理水平
    TownManagement,
    /// 推进基层民主
    GrassrootsDemocracy,
    /// 服务经济发展
    ServeEconomicDevelopment,
    /// 组织公共服务
    OrganisePublicService,
    /// 实施公共管理
    PublicManagement,
    /// 监督行政执法
    SuperviseLawEnforcement,
    /// 动员社会参与
    MobiliseSocialParticipation,
    /// 指导基层自治
    GuideGrassrootsAutonomy,
    /// 维护公共安全
    MaintainPublicSafety,
}

/// The six duty areas of 镇, 乡, 民族乡 and other township-level units.
pub const TOWNSHIP_DUTY_AREAS: [DutyArea; 6] = [
    DutyArea::PartyBuilding,
    DutyArea::EconomicDevelopment,
    DutyArea::PublicService,
    DutyArea::SocialGovernance,
    DutyArea::TownManagement,
    DutyArea::GrassrootsDemocracy,
];

/// The eight duty areas of 街道 (the policy's section 二).
pub const SUBDISTRICT_DUTY_AREAS: [DutyArea; 8] = [
    DutyArea::PartyBuilding,
    DutyArea::ServeEconomicDevelopment,
    DutyArea::OrganisePublicService,
    DutyArea::PublicManagement,
    DutyArea::SuperviseLawEnforcement,
    DutyArea::MobiliseSocialParticipation,
    DutyArea::GuideGrassrootsAutonomy,
    DutyArea::MaintainPublicSafety,
];

/// The duty areas a township of `kind` carries.
pub fn duty_areas_for(kind: TownshipKind) -> &'static [DutyArea] {
    if kind.is_subdistrict() { &SUBDISTRICT_DUTY_AREAS } else { &TOWNSHIP_DUTY_AREAS }
}

impl DutyArea {
    pub const ALL: [DutyArea; 13] = [
        DutyArea::PartyBuilding,
        DutyArea::EconomicDevelopment,
        DutyArea::PublicService,
        DutyArea::SocialGovernance,
        DutyArea::TownManagement,
        DutyArea::GrassrootsDemocracy,
        DutyArea::ServeEconomicDevelopment,
        DutyArea::OrganisePublicService,
        DutyArea::PublicManagement,
        DutyArea::SuperviseLawEnforcement,
        DutyArea::MobiliseSocialParticipation,
        DutyArea::GuideGrassrootsAutonomy,
        DutyArea::MaintainPublicSafety,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DutyArea::PartyBuilding => "party_building",
            DutyArea::EconomicDevelopment => "economic_development",
            DutyArea::PublicService => "public_service",
            DutyArea::SocialGovernance => "social_governance",
            DutyArea::TownManagement => "town_management",
            DutyArea::GrassrootsDemocracy => "grassroots_democracy",
            DutyArea::ServeEconomicDevelopment => "serve_economic_development",
            DutyArea::OrganisePublicService => "organise_public_service",
            DutyArea::PublicManagement => "public_management",
            DutyArea::SuperviseLawEnforcement => "supervise_law_enforcement",
            DutyArea::MobiliseSocialParticipation => "mobilise_social_participation",
            DutyArea::GuideGrassrootsAutonomy => "guide_grassroots_autonomy",
            DutyArea::MaintainPublicSafety => "maintain_public_safety",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|area| area.as_str() == text)
    }

    /// The policy's words for the area; party building is worded per kind (see [`DutyArea::label_zh_for`]).
    pub fn label_zh(self) -> &'static str {
        match self {
            DutyArea::PartyBuilding => "加强党的建设",
            DutyArea::EconomicDevelopment => "促进经济发展",
            DutyArea::PublicService => "强化公共服务",
            DutyArea::SocialGovernance => "加强社会治理",
            DutyArea::TownManagement => "提升城镇管理水平",
            DutyArea::GrassrootsDemocracy => "推进基层民主",
            DutyArea::ServeEconomicDevelopment => "服务经济发展",
            DutyArea::OrganisePublicService => "组织公共服务",
            DutyArea::PublicManagement => "实施公共管理",
            DutyArea::SuperviseLawEnforcement => "监督行政执法",
            DutyArea::MobiliseSocialParticipation => "动员社会参与",
            DutyArea::GuideGrassrootsAutonomy => "指导基层自治",
            DutyArea::MaintainPublicSafety => "维护公共安全",
        }
    }

    /// The label as the policy words it for a unit of `kind`: townships 加强基层党建, sub-districts 加强党的建设.
    pub fn label_zh_for(self, kind: TownshipKind) -> &'static str {
        match self {
            DutyArea::PartyBuilding if !kind.is_subdistrict() => "加强基层党建",
            _ => self.label_zh(),
        }
    }

    /// Whether a township of `kind` carries this area.
    pub fn applies_to(self, kind: TownshipKind) -> bool {
        duty_areas_for(kind).contains(&self)
    }
}

/// Which of the three catalogues an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogueItemType {
    /// 权力清单
    Power,
    /// 责任清单
    Responsibility,
    /// 公共服务事项目录
    PublicService,
}

impl CatalogueItemType {
    pub const ALL: [CatalogueItemType; 3] =
        [CatalogueItemType::Power, CatalogueItemType::Responsibility, CatalogueItemType::PublicService];

    pub fn as_str(self) -> &'static str {
        match self {
            CatalogueItemType::Power => "power",
            CatalogueItemType::Responsibility => "responsibility",
            CatalogueItemType::PublicService => "public_service",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            CatalogueItemType::Power => "权力清单",
            CatalogueItemType::Responsibility => "责任清单",
            CatalogueItemType::PublicService => "公共服务事项目录",
        }
    }
}

/// Defines a text-coded enum with its Chinese labels.
macro_rules! labelled_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => ($text:literal, $zh:literal)),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $(#[doc = $zh] $variant),*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }

            pub fn label_zh(self) -> &'static str {
                match self {
                    $($name::$variant => $zh),*
                }
            }
        }
    };
}

labelled_enum!(
    /// The kind of power of a power-list item.
    PowerCategory {
        Licensing => ("licensing", "行政许可"),
        Penalty => ("penalty", "行政处罚"),
        Coercion => ("coercion", "行政强制"),
        Levy => ("levy", "行政征收"),
        Benefit => ("benefit", "行政给付"),
        Inspection => ("inspection", "行政检查"),
        Confirmation => ("confirmation", "行政确认"),
        Reward => ("reward", "行政奖励"),
        Adjudication => ("adjudication", "行政裁决"),
        Other => ("other", "其他行政权力"),
    }
);

labelled_enum!(
    /// Where a power comes from.
    PowerOrigin {
        Statutory => ("statutory", "法定"),
        Devolved => ("devolved", "下放"),
        Entrusted => ("entrusted", "委托"),
    }
);

labelled_enum!(
    /// How a public service item is handled.
    HandlingMode {
        Direct => ("direct", "直办"),
        OnBehalf => ("on_behalf", "代办"),
        Assisted => ("assisted", "协办"),
        Notify => ("notify", "告知"),
    }
);

/// What only one type of item carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemDetails {
    Power {
        category: PowerCategory,
        legal_basis: String,
        origin: PowerOrigin,
    },
    Responsibility {
        /// The code of the power item this responsibility belongs to; None for a standalone responsibility.
        power_item_code: Option<String>,
        duties: String,
        accountability_cases: String,
    },
    PublicService {
        service_domain: String,
        handling_mode: HandlingMode,
    },
}

impl ItemDetails {
    pub fn item_type(&self) -> CatalogueItemType {
        match self {
            ItemDetails::Power { .. } => CatalogueItemType::Power,
            ItemDetails::Responsibility { .. } => CatalogueItemType::Responsibility,
            ItemDetails::PublicService { .. } => CatalogueItemType::PublicService,
        }
    }
}

/// Who publishes an item: a county (a template its townships inherit) or one township.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogueOwner {
    County(CountyCode),
    Township(TownshipCode),
}

impl CatalogueOwner {
    pub fn county(&self) -> CountyCode {
        match self {
            CatalogueOwner::County(county) => county.clone(),
            CatalogueOwner::Township(township) => township.county(),
        }
    }

    pub fn township(&self) -> Option<&TownshipCode> {
        match self {
            CatalogueOwner::County(_) => None,
            CatalogueOwner::Township(township) => Some(township),
        }
    }

    /// The owner's code: 6 digits for a county, 9 for a township.
    pub fn code(&self) -> &str {
        match self {
            CatalogueOwner::County(county) => county.as_str(),
            CatalogueOwner::Township(township) => township.as_str(),
        }
    }

    /// The owner's resource name.
    pub fn name(&self) -> String {
        match self {
            CatalogueOwner::County(county) => county_name(county),
            CatalogueOwner::Township(township) => township_name(township),
        }
    }

    /// `county 430121` / `township 430121001`, for messages.
    pub fn describe(&self) -> String {
        match self {
            CatalogueOwner::County(county) => format!("county {county}"),
            CatalogueOwner::Township(township) => format!("township {township}"),
        }
    }
}

/// A catalogue item about to be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewCatalogueItem {
    pub owner: CatalogueOwner,
    /// Unique per owner; a township item with a template item's code replaces it for that township.
    pub code: String,
    pub title: String,
    pub duty_area: DutyArea,
    /// Township items: an institution of the township (it must exist and be in force when the item is created).
    /// Template items: None.
    pub responsible_institution_id: Option<i64>,
    /// Template items: the title resolved in each township (e.g. 党政办公室). Township items: ignored, the store
    /// records the institution's name.
    pub responsible_institution_title: String,
    pub details: ItemDetails,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueItem {
    pub id: i64,
    pub owner: CatalogueOwner,
    pub code: String,
    pub title: String,
    pub duty_area: DutyArea,
    /// Township items: the institution's id, kept without a foreign key so that a later deletion shows up as a
    /// compliance finding rather than being refused or cascading.
    pub responsible_institution_id: Option<i64>,
    /// Template items: the title to resolve. Township items: the institution's name when the item was created.
    pub responsible_institution_title: String,
    pub details: ItemDetails,
    pub created_at: TimestampMs,
    /// Bumped by every update; the etag is made from it.
    pub revision: i64,
    pub updated_at: TimestampMs,
}

impl CatalogueItem {
    pub fn item_type(&self) -> CatalogueItemType {
        self.details.item_type()
    }

    /// The item's resource name: `{owner}/catalogueItems/{id}`.
    pub fn resource_name(&self) -> String {
        catalogue_item_name(&self.owner, self.id)
    }

    pub fn is_template(&self) -> bool {
        matches!(self.owner, CatalogueOwner::County(_))
    }
}

pub fn catalogue_item_name(owner: &CatalogueOwner, id: i64) -> String {
    format!("{}/catalogueItems/{id}", owner.name())
}

/// Who is responsible for an item in one township.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// An institution in force of the township.
    Resolved(Institution),
    /// A township item's institution no longer exists.
    Deleted { institution_id: i64 },
    /// A township item's institution exists but its `valid_to` has passed.
    NotInForce(Institution),
    /// No institution in force of the township is called by the template item's title or contains it.
    Unmatched,
    /// Not resolved: a county's template item outside any township.
    NotApplicable,
}

/// An item of a catalogue listing: for a township, its effective catalogue with each item's institution resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueEntry {
    pub item: CatalogueItem,
    /// True for a county template item in a township's catalogue.
    pub inherited: bool,
    pub resolution: Resolution,
}

/// Whether an institution is in force on `today` (ISO date): no `valid_to`, or `valid_to` today or later, as the
/// write-time limits and compliance count them.
pub fn in_force(institution: &Institution, today: &str) -> bool {
    institution.valid_to.as_deref().is_none_or(|last_day| last_day >= today)
}

/// Resolves an item's responsible institution among `institutions` (every institution of the township, ended
/// ones included). A template item's title matches an institution in force whose name equals it, or else the
/// first (lowest id) whose name contains it.
pub fn resolve(item: &CatalogueItem, institutions: &[Institution], today: &str) -> Resolution {
    match item.responsible_institution_id {
        Some(id) => match institutions.iter().find(|i| i.id == id) {
            None => Resolution::Deleted { institution_id: id },
            Some(institution) if in_force(institution, today) => Resolution::Resolved(institution.clone()),
            Some(institution) => Resolution::NotInForce(institution.clone()),
        },
        None => {
            let title = item.responsible_institution_title.trim();
            let mut candidates: Vec<&Institution> = institutions.iter().filter(|i| in_force(i, today)).collect();
            candidates.sort_by_key(|i| i.id);
            let exact = candidates.iter().find(|i| i.name.trim() == title);
            let containing = || candidates.iter().find(|i| !title.is_empty() && i.name.contains(title));
            match exact.or_else(containing) {
                Some(institution) => Resolution::Resolved((*institution).clone()),
                None => Resolution::Unmatched,
            }
        }
    }
}

/// Whether a township of `kind` inherits a template item: those of its own duty areas only.
pub fn inherits(kind: TownshipKind, template: &CatalogueItem) -> bool {
    template.duty_area.applies_to(kind)
}

/// A township's effective catalogue in code order: its own items, plus the county's template items of its duty
/// areas whose code no own item takes; each with its responsible institution resolved.
pub fn effective_catalogue(
    kind: TownshipKind,
    own: Vec<CatalogueItem>,
    templates: &[CatalogueItem],
    institutions: &[Institution],
    today: &str,
) -> Vec<CatalogueEntry> {
    let own_codes: std::collections::HashSet<&str> = own.iter().map(|item| item.code.as_str()).collect();
    let inherited: Vec<CatalogueItem> = templates
        .iter()
        .filter(|template| inherits(kind, template) && !own_codes.contains(template.code.as_str()))
        .cloned()
        .collect();
    let mut entries: Vec<CatalogueEntry> = own
        .into_iter()
        .map(|item| (item, false))
        .chain(inherited.into_iter().map(|item| (item, true)))
        .map(|(item, inherited)| {
            let resolution = resolve(&item, institutions, today);
            CatalogueEntry { item, inherited, resolution }
        })
        .collect();
    entries.sort_by(|a, b| a.item.code.cmp(&b.item.code));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::InstitutionKind;

    fn township() -> TownshipCode {
        TownshipCode::parse("430121001").unwrap()
    }

    fn institution(id: i64, name: &str, valid_to: Option<&str>) -> Institution {
        Institution {
            id,
            township: township(),
            kind: InstitutionKind::PartyGovernmentOffice,
            name: name.to_owned(),
            staffing_quota: 5,
            approving_document: String::new(),
            valid_from: None,
            valid_to: valid_to.map(str::to_owned),
            created_at: 0,
            revision: 1,
            updated_at: 0,
        }
    }

    fn item(owner: CatalogueOwner, code: &str, area: DutyArea, institution: Option<i64>, title: &str) -> CatalogueItem {
        CatalogueItem {
            id: 0,
            owner,
            code: code.to_owned(),
            title: format!("事项 {code}"),
            duty_area: area,
            responsible_institution_id: institution,
            responsible_institution_title: title.to_owned(),
            details: ItemDetails::PublicService {
                service_domain: "社会保障".to_owned(),
                handling_mode: HandlingMode::Direct,
            },
            created_at: 0,
            revision: 1,
            updated_at: 0,
        }
    }

    fn template(code: &str, area: DutyArea, title: &str) -> CatalogueItem {
        item(CatalogueOwner::County(township().county()), code, area, None, title)
    }

    #[test]
    fn townships_carry_six_areas_and_sub_districts_eight_sharing_party_building() {
        assert_eq!(duty_areas_for(TownshipKind::Town).len(), 6);
        assert_eq!(duty_areas_for(TownshipKind::Other), duty_areas_for(TownshipKind::EthnicTownship));
        assert_eq!(duty_areas_for(TownshipKind::Subdistrict).len(), 8);
        let shared: Vec<_> = TOWNSHIP_DUTY_AREAS.iter().filter(|area| SUBDISTRICT_DUTY_AREAS.contains(area)).collect();
        assert_eq!(shared, [&DutyArea::PartyBuilding]);
        assert_eq!(DutyArea::PartyBuilding.label_zh_for(TownshipKind::Town), "加强基层党建");
        assert_eq!(DutyArea::PartyBuilding.label_zh_for(TownshipKind::Subdistrict), "加强党的建设");
        assert_eq!(DutyArea::MaintainPublicSafety.label_zh(), "维护公共安全");
        for area in DutyArea::ALL {
            assert_eq!(DutyArea::parse(area.as_str()), Some(area));
        }
        assert_eq!(HandlingMode::parse("on_behalf"), Some(HandlingMode::OnBehalf));
        assert_eq!(PowerCategory::Penalty.label_zh(), "行政处罚");
    }

    #[test]
    fn template_titles_resolve_exactly_or_by_containment_among_institutions_in_force() {
        let institutions = [
            institution(1, "党政综合办公室", Some("2001-12-31")),
            institution(2, "社会事务办公室(卫生健康办公室)", None),
            institution(3, "党政办公室", None),
        ];
        let resolved =
            |title: &str| resolve(&template("A", DutyArea::PartyBuilding, title), &institutions, "2024-05-01");
        assert_eq!(resolved("党政办公室"), Resolution::Resolved(institutions[2].clone()));
        assert_eq!(resolved("社会事务办公室"), Resolution::Resolved(institutions[1].clone()));
        assert_eq!(resolved("党政综合办公室"), Resolution::Unmatched, "ended institutions do not count");
        assert_eq!(resolved("综合行政执法大队"), Resolution::Unmatched);
    }

    #[test]
    fn township_items_resolve_by_id_and_report_deleted_or_ended_institutions() {
        let institutions = [institution(1, "旧办公室", Some("2001-12-31")), institution(2, "党政办公室", None)];
        let own = |id| item(CatalogueOwner::Township(township()), "B", DutyArea::PartyBuilding, Some(id), "x");
        assert_eq!(resolve(&own(2), &institutions, "2024-05-01"), Resolution::Resolved(institutions[1].clone()));
        assert_eq!(resolve(&own(1), &institutions, "2024-05-01"), Resolution::NotInForce(institutions[0].clone()));
        assert_eq!(resolve(&own(9), &institutions, "2024-05-01"), Resolution::Deleted { institution_id: 9 });
        assert!(in_force(&institutions[0], "2001-12-31"), "valid_to is the last day in force");
    }

    #[test]
    fn own_items_extend_the_template_and_replace_items_of_the_same_code() {
        let templates = [
            template("T-1", DutyArea::PartyBuilding, "党政办公室"),
            template("T-2", DutyArea::PublicService, "社会事务办公室"),
            template("T-3", DutyArea::MaintainPublicSafety, "社会治安和应急管理办公室"),
        ];
        let own = vec![
            item(CatalogueOwner::Township(township()), "T-2", DutyArea::PublicService, Some(1), "x"),
            item(CatalogueOwner::Township(township()), "O-1", DutyArea::TownManagement, Some(1), "x"),
        ];
        let town = effective_catalogue(TownshipKind::Town, own.clone(), &templates, &[], "2024-05-01");
        let summary: Vec<_> = town.iter().map(|e| (e.item.code.as_str(), e.inherited)).collect();
        assert_eq!(summary, [("O-1", false), ("T-1", true), ("T-2", false)], "T-3 is a sub-district area");
        let street = effective_catalogue(TownshipKind::Subdistrict, Vec::new(), &templates, &[], "2024-05-01");
        let summary: Vec<_> = street.iter().map(|e| e.item.code.as_str()).collect();
        assert_eq!(summary, ["T-1", "T-3"]);
        assert_eq!(street[0].resolution, Resolution::Unmatched);
    }
}
