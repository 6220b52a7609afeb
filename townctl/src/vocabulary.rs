//! The words of the spreadsheets, which `import` reads and `export` writes: column names with the aliases people
//! give them, and the labels of the registry's enums. One table per concept, read both ways, so that an export
//! always re-imports.

use township_proto::registry::v1 as pb;

use crate::sheet::Field;

pub(crate) const DIVISION_CODE: Field =
    Field::required("code", &["代码", "区划代码", "统计用区划代码", "division code"]);
pub(crate) const DIVISION_NAME: Field = Field::required("name", &["名称", "区划名称", "division name"]);
pub(crate) const DIVISIONS: &[Field] = &[DIVISION_CODE, DIVISION_NAME];

pub(crate) const TOWNSHIP_CODE: Field = Field::required(
    "township_code",
    &["乡镇代码", "乡镇（街道）代码", "乡镇(街道)代码", "township code", "code", "代码", "区划代码"],
);
pub(crate) const DATA_YEAR: Field = Field::optional("data_year", &["年度", "数据年度", "年份", "year"]);
pub(crate) const POPULATION: Field = Field::required("population", &["人口", "户籍人口", "常住人口", "人口数"]);
pub(crate) const FISCAL_REVENUE: Field =
    Field::required("fiscal_revenue", &["财政收入", "一般公共预算收入", "revenue"]);
pub(crate) const LAND_AREA: Field = Field::required("land_area", &["国土面积", "面积", "行政区域面积", "area"]);
pub(crate) const SOURCE: Field = Field::optional("source", &["来源", "数据来源"]);
/// The township's name beside its code: checked against the registry's name for the code.
pub(crate) const TOWNSHIP_NAME: Field = Field::optional(
    "township_name",
    &["名称", "乡镇名称", "乡镇（街道）名称", "乡镇(街道)名称", "乡镇", "township", "township name", "name"],
);
pub(crate) const INDICATORS: &[Field] =
    &[TOWNSHIP_CODE, TOWNSHIP_NAME, DATA_YEAR, POPULATION, FISCAL_REVENUE, LAND_AREA, SOURCE];

pub(crate) const INSTITUTION_KIND: Field = Field::required("kind", &["类别", "机构类别", "类型", "type"]);
pub(crate) const INSTITUTION_NAME: Field = Field::required("name", &["机构名称", "名称", "institution"]);
pub(crate) const STAFFING_QUOTA: Field =
    Field::optional("staffing_quota", &["编制", "编制数", "核定编制", "quota", "staffing"]);
pub(crate) const APPROVING_DOCUMENT: Field = Field::optional("approving_document", &["批准文号", "文号", "document"]);
pub(crate) const VALID_FROM: Field = Field::optional("valid_from", &["设立日期", "起始日期", "from"]);
pub(crate) const VALID_TO: Field = Field::optional("valid_to", &["撤销日期", "终止日期", "to"]);
pub(crate) const INSTITUTIONS: &[Field] =
    &[TOWNSHIP_CODE, INSTITUTION_KIND, INSTITUTION_NAME, STAFFING_QUOTA, APPROVING_DOCUMENT, VALID_FROM, VALID_TO];

pub(crate) const ROLE: Field = Field::required("role", &["职务", "领导职务", "post"]);
pub(crate) const HOLDER: Field = Field::optional("holder", &["姓名", "任职人", "name"]);
pub(crate) const MANDATED_ROLE: Field = Field::optional("mandated_role", &["规定职务", "指定职务", "mandated"]);
pub(crate) const POSTS: &[Field] = &[TOWNSHIP_CODE, ROLE, HOLDER, MANDATED_ROLE];

/// A county (its template) or a township (its own items); catalogue exports call it `township_code`.
pub(crate) const OWNER_CODE: Field =
    Field::required("owner_code", &["所属代码", "县乡代码", "owner", TOWNSHIP_CODE.key, "county_code"]);
pub(crate) const ITEM_CODE: Field = Field::required("code", &["事项编码", "编码", "item code"]);
pub(crate) const TITLE: Field = Field::required("title", &["事项名称", "名称", "item"]);
pub(crate) const ITEM_TYPE: Field = Field::required("type", &["事项类型", "清单类型", "item type"]);
pub(crate) const DUTY_AREA: Field = Field::required("duty_area", &["职责领域", "职能领域", "area"]);
pub(crate) const RESPONSIBLE_INSTITUTION: Field =
    Field::required("responsible_institution", &["责任机构", "承办机构", "institution"]);
pub(crate) const LEGAL_BASIS: Field = Field::optional("legal_basis", &["法律依据", "设定依据", "basis"]);
pub(crate) const POWER_CATEGORY: Field = Field::optional("power_category", &["权力类别", "category"]);
pub(crate) const POWER_ORIGIN: Field = Field::optional("power_origin", &["权力来源", "origin"]);
pub(crate) const POWER_ITEM_CODE: Field = Field::optional("power_item_code", &["对应权力事项编码", "linked power"]);
pub(crate) const DUTIES: Field = Field::optional("duties", &["职责", "具体职责"]);
pub(crate) const ACCOUNTABILITY_CASES: Field = Field::optional("accountability_cases", &["追责情形", "问责情形"]);
pub(crate) const SERVICE_DOMAIN: Field = Field::optional("service_domain", &["服务领域", "domain"]);
pub(crate) const HANDLING_MODE: Field = Field::optional("handling_mode", &["办理方式", "mode"]);
pub(crate) const CATALOGUE: &[Field] = &[
    OWNER_CODE,
    ITEM_CODE,
    TITLE,
    ITEM_TYPE,
    DUTY_AREA,
    RESPONSIBLE_INSTITUTION,
    LEGAL_BASIS,
    POWER_CATEGORY,
    POWER_ORIGIN,
    POWER_ITEM_CODE,
    DUTIES,
    ACCOUNTABILITY_CASES,
    SERVICE_DOMAIN,
    HANDLING_MODE,
];

pub(crate) const DOCUMENT_NUMBER: Field = Field::required("document_number", &["批准文号", "文号", "document"]);
pub(crate) const APPROVED_ON: Field = Field::required("approved_on", &["批准时间", "批准日期", "date"]);
pub(crate) const STAFFING_TYPE: Field = Field::required("staffing_type", &["编制类型", "编制性质", "type"]);
pub(crate) const FUNDING_TYPE: Field = Field::required("funding_type", &["经费类型", "经费形式", "funding"]);
pub(crate) const CHANGE: Field = Field::required("change", &["数量", "编制数量", "变动数", "count"]);
pub(crate) const SUMMARY: Field = Field::optional("summary", &["变动摘要", "摘要", "备注"]);
pub(crate) const ACTUAL_HEADCOUNT: Field = Field::required("actual_headcount", &["实有人数", "在编人数", "headcount"]);
/// An approval of the staffing ledger: the institution by its township and name.
pub(crate) const STAFFING_APPROVALS: &[Field] =
    &[TOWNSHIP_CODE, INSTITUTION_NAME, DOCUMENT_NUMBER, APPROVED_ON, STAFFING_TYPE, FUNDING_TYPE, CHANGE, SUMMARY];

/// An actual headcount: the institution by its township and name, per staffing type.
pub(crate) const STAFFING_HEADCOUNTS: &[Field] = &[TOWNSHIP_CODE, INSTITUTION_NAME, STAFFING_TYPE, ACTUAL_HEADCOUNT];

/// The township's name beside its code in exports, for people; imports ignore it.
pub(crate) const TOWNSHIP: &str = "township";
pub(crate) const CLASS_EXPORT: [&str; 8] =
    ["code", "name", "data_year", "score", "rank", "class", "previous_class", "computed_class"];
/// The columns `import institutions` reads, and the township's name.
pub(crate) const INSTITUTION_EXPORT: [&str; 8] = [
    TOWNSHIP_CODE.key,
    TOWNSHIP,
    INSTITUTION_KIND.key,
    INSTITUTION_NAME.key,
    STAFFING_QUOTA.key,
    APPROVING_DOCUMENT.key,
    VALID_FROM.key,
    VALID_TO.key,
];
/// The columns `import catalogue` reads, the township's name, and whether the item is the county's.
pub(crate) const CATALOGUE_EXPORT: [&str; 8] = [
    TOWNSHIP_CODE.key,
    TOWNSHIP,
    ITEM_CODE.key,
    TITLE.key,
    ITEM_TYPE.key,
    DUTY_AREA.key,
    RESPONSIBLE_INSTITUTION.key,
    "source",
];
/// The columns `import staffing-approvals` reads, and the township's name.
pub(crate) const STAFFING_APPROVAL_EXPORT: [&str; 9] = [
    TOWNSHIP_CODE.key,
    TOWNSHIP,
    INSTITUTION_NAME.key,
    DOCUMENT_NUMBER.key,
    APPROVED_ON.key,
    STAFFING_TYPE.key,
    FUNDING_TYPE.key,
    CHANGE.key,
    SUMMARY.key,
];
pub(crate) const STAFFING_HEADCOUNT_EXPORT: [&str; 5] =
    [TOWNSHIP_CODE.key, TOWNSHIP, INSTITUTION_NAME.key, STAFFING_TYPE.key, ACTUAL_HEADCOUNT.key];
pub(crate) const INHERITED: &str = "县级模板 inherited";
pub(crate) const OWN: &str = "本级 own";

/// One value of an enum: its Chinese label, its English name (`_` for spaces), and other words for it.
#[derive(Debug)]
pub(crate) struct Term<E> {
    value: E,
    zh: &'static str,
    en: &'static str,
    also: &'static [&'static str],
}

const fn term<E>(value: E, zh: &'static str, en: &'static str, also: &'static [&'static str]) -> Term<E> {
    Term { value, zh, en, also }
}

/// The words of one enum. A cell reads as the value its whole text names, or else any word of it names (an
/// export writes "权力 power"); case, spaces and `-` against `_` do not matter, and the proto names
/// (`DUTY_AREA_PARTY_BUILDING`) are read too.
#[derive(Debug)]
pub(crate) struct Vocabulary<E: 'static> {
    proto_name: fn(&str) -> Option<E>,
    terms: &'static [Term<E>],
}

fn fold(word: &str) -> String {
    word.trim().to_lowercase().replace([' ', '-'], "_")
}

impl<E: Copy + Into<i32>> Vocabulary<E> {
    pub(crate) fn parse(&self, text: &str) -> Option<E> {
        let text = text.trim();
        let lookup = |word: &str| {
            let word = fold(word);
            let named = |t: &&Term<E>| [t.zh, t.en].iter().chain(t.also).any(|name| fold(name) == word);
            self.terms.iter().find(named).map(|t| t.value)
        };
        (self.proto_name)(&text.to_uppercase())
            .filter(|value| self.term((*value).into()).is_some())
            .or_else(|| lookup(text))
            .or_else(|| text.split_whitespace().find_map(lookup))
    }

    fn term(&self, value: i32) -> Option<&Term<E>> {
        self.terms.iter().find(|t| t.value.into() == value)
    }

    /// The Chinese label of a proto value; empty for a value without one.
    pub(crate) fn zh(&self, value: i32) -> &'static str {
        self.term(value).map_or("", |t| t.zh)
    }

    /// "权力 power": the Chinese label and the English name.
    pub(crate) fn bilingual(&self, value: i32) -> String {
        self.term(value).map_or_else(String::new, |t| format!("{} {}", t.zh, t.en.replace('_', " ")))
    }

    /// The labels, for a message: "党政机构, 事业单位 or 综合行政执法机构".
    pub(crate) fn expected(&self) -> String {
        let labels: Vec<&str> = self.terms.iter().map(|t| t.zh).filter(|zh| !zh.is_empty()).collect();
        match labels.split_last() {
            Some((last, [])) => (*last).to_owned(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

pub(crate) const STAFFING_TYPES: Vocabulary<pb::StaffingType> = {
    use pb::StaffingType as T;
    Vocabulary {
        proto_name: T::from_str_name,
        terms: &[
            term(T::Administrative, "行政编制", "administrative", &["行政"]),
            term(T::PublicInstitution, "事业编制", "public_institution", &["事业"]),
        ],
    }
};

pub(crate) const FUNDING_TYPES: Vocabulary<pb::FundingType> = {
    use pb::FundingType as F;
    Vocabulary {
        proto_name: F::from_str_name,
        terms: &[
            term(F::Full, "全额拨款", "full", &["全额"]),
            term(F::Partial, "差额拨款", "partial", &["差额"]),
            term(F::SelfFunded, "自收自支", "self_funded", &[]),
        ],
    }
};

pub(crate) const INSTITUTION_KINDS: Vocabulary<pb::InstitutionKind> = {
    use pb::InstitutionKind as K;
    Vocabulary {
        proto_name: K::from_str_name,
        terms: &[
            term(
                K::PartyGovernmentOffice,
                "党政机构",
                "party_government_office",
                &["党政办事机构", "党政综合办事机构", "office"],
            ),
            term(K::PublicInstitution, "事业单位", "public_institution", &["直属事业单位"]),
            term(K::LawEnforcementUnit, "综合行政执法机构", "law_enforcement_unit", &["综合行政执法大队", "执法机构"]),
        ],
    }
};

/// The roles the policy mandates; a post without one is `Unspecified` (an empty cell).
pub(crate) const MANDATED_ROLES: Vocabulary<pb::MandatedRole> = {
    use pb::MandatedRole as M;
    Vocabulary {
        proto_name: M::from_str_name,
        terms: &[
            term(M::Unspecified, "", "none", &["无"]),
            term(M::PartyBuildingDeputySecretary, "抓党建副书记", "party_building_deputy_secretary", &["党建副书记"]),
            term(M::DisciplineInspectionSecretary, "纪委书记", "discipline_inspection_secretary", &["纪检监察负责人"]),
            term(
                M::OrganisationCommitteeMember,
                "组织委员",
                "organisation_committee_member",
                &["organization_committee_member"],
            ),
        ],
    }
};

pub(crate) const ITEM_TYPES: Vocabulary<pb::CatalogueItemType> = {
    use pb::CatalogueItemType as T;
    Vocabulary {
        proto_name: T::from_str_name,
        terms: &[
            term(T::Power, "权力", "power", &["权力清单"]),
            term(T::Responsibility, "责任", "responsibility", &["责任清单"]),
            term(T::PublicService, "公共服务", "public_service", &["公共服务事项"]),
        ],
    }
};

/// Party building is worded 加强基层党建 for townships and 加强党的建设 for sub-districts: both read.
pub(crate) const DUTY_AREAS: Vocabulary<pb::DutyArea> = {
    use pb::DutyArea as A;
    Vocabulary {
        proto_name: A::from_str_name,
        terms: &[
            term(A::PartyBuilding, "加强基层党建", "party_building", &["加强党的建设", "党建"]),
            term(A::EconomicDevelopment, "促进经济发展", "economic_development", &[]),
            term(A::PublicService, "强化公共服务", "public_service", &[]),
            term(A::SocialGovernance, "加强社会治理", "social_governance", &[]),
            term(A::TownManagement, "提升城镇管理水平", "town_management", &[]),
            term(A::GrassrootsDemocracy, "推进基层民主", "grassroots_democracy", &[]),
            term(A::ServeEconomicDevelopment, "服务经济发展", "serve_economic_development", &[]),
            term(A::OrganisePublicService, "组织公共服务", "organise_public_service", &["organize_public_service"]),
            term(A::PublicManagement, "实施公共管理", "public_management", &[]),
            term(A::SuperviseLawEnforcement, "监督行政执法", "supervise_law_enforcement", &[]),
            term(
                A::MobiliseSocialParticipation,
                "动员社会参与",
                "mobilise_social_participation",
                &["mobilize_social_participation"],
            ),
            term(A::GuideGrassrootsAutonomy, "指导基层自治", "guide_grassroots_autonomy", &[]),
            term(A::MaintainPublicSafety, "维护公共安全", "maintain_public_safety", &[]),
        ],
    }
};

pub(crate) const POWER_CATEGORIES: Vocabulary<pb::PowerCategory> = {
    use pb::PowerCategory as P;
    Vocabulary {
        proto_name: P::from_str_name,
        terms: &[
            term(P::Licensing, "行政许可", "licensing", &[]),
            term(P::Penalty, "行政处罚", "penalty", &[]),
            term(P::Coercion, "行政强制", "coercion", &[]),
            term(P::Levy, "行政征收", "levy", &[]),
            term(P::Benefit, "行政给付", "benefit", &[]),
            term(P::Inspection, "行政检查", "inspection", &[]),
            term(P::Confirmation, "行政确认", "confirmation", &[]),
            term(P::Reward, "行政奖励", "reward", &[]),
            term(P::Adjudication, "行政裁决", "adjudication", &[]),
            term(P::Other, "其他", "other", &["其他行政权力"]),
        ],
    }
};

pub(crate) const POWER_ORIGINS: Vocabulary<pb::PowerOrigin> = {
    use pb::PowerOrigin as O;
    Vocabulary {
        proto_name: O::from_str_name,
        terms: &[
            term(O::Statutory, "法定", "statutory", &[]),
            term(O::Devolved, "下放", "devolved", &["赋权"]),
            term(O::Entrusted, "委托", "entrusted", &[]),
        ],
    }
};

pub(crate) const HANDLING_MODES: Vocabulary<pb::HandlingMode> = {
    use pb::HandlingMode as H;
    Vocabulary {
        proto_name: H::from_str_name,
        terms: &[
            term(H::Direct, "直接办理", "direct", &[]),
            term(H::OnBehalf, "代办", "on_behalf", &["代理"]),
            term(H::Assisted, "协助办理", "assisted", &[]),
            term(H::Notify, "告知", "notify", &[]),
        ],
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_written_by_exports_read_back() {
        for t in ITEM_TYPES.terms {
            assert_eq!(ITEM_TYPES.parse(&ITEM_TYPES.bilingual(t.value.into())), Some(t.value));
        }
        for t in INSTITUTION_KINDS.terms {
            assert_eq!(INSTITUTION_KINDS.parse(INSTITUTION_KINDS.zh(t.value.into())), Some(t.value));
        }
        assert_eq!(ITEM_TYPES.bilingual(pb::CatalogueItemType::PublicService.into()), "公共服务 public service");
        assert_eq!(POWER_CATEGORIES.parse("行政许可 licensing"), Some(pb::PowerCategory::Licensing));
        assert_eq!(DUTY_AREAS.parse("duty_area_public_service"), Some(pb::DutyArea::PublicService));
        assert_eq!(DUTY_AREAS.parse("DUTY_AREA_UNSPECIFIED"), None, "only the values the table knows");
        assert_eq!(INSTITUTION_KINDS.expected(), "党政机构, 事业单位 or 综合行政执法机构");
        assert_eq!(
            STAFFING_TYPES.parse(STAFFING_TYPES.bilingual(pb::StaffingType::Administrative.into()).as_str()),
            Some(pb::StaffingType::Administrative)
        );
        assert_eq!(STAFFING_TYPES.parse("事业"), Some(pb::StaffingType::PublicInstitution));
        assert_eq!(FUNDING_TYPES.parse("差额拨款"), Some(pb::FundingType::Partial));
    }

    #[test]
    fn exports_write_the_columns_imports_read() {
        let headers = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let institutions = crate::sheet::map_columns(&headers(&INSTITUTION_EXPORT), INSTITUTIONS).unwrap();
        assert_eq!(institutions.ignored(), [TOWNSHIP]);
        let approvals = crate::sheet::map_columns(&headers(&STAFFING_APPROVAL_EXPORT), STAFFING_APPROVALS).unwrap();
        assert_eq!(approvals.ignored(), [TOWNSHIP]);
        let headcounts = crate::sheet::map_columns(&headers(&STAFFING_HEADCOUNT_EXPORT), STAFFING_HEADCOUNTS).unwrap();
        assert_eq!(headcounts.ignored(), [TOWNSHIP]);
        let catalogue = crate::sheet::map_columns(&headers(&CATALOGUE_EXPORT), CATALOGUE).unwrap();
        assert_eq!(catalogue.ignored(), [TOWNSHIP, "source"]);
    }
}
