//! The policy's rules (DESIGN.md §4 "Compliance"): limits checked at write time, and the findings of a
//! compliance report. States that arise from a reclassification (a township moved to class 3 that still has 11
//! posts) are findings, not write errors.

use super::count_u32;
use township_policy::{ClassLimits, Policy, TownshipClass};

use super::catalogue::{Resolution, duty_areas_for};
use super::model::{InstitutionKind, MandatedRole, TownshipFacts};
use super::names::township_name;

/// The limits that apply to a township of `class`. An unclassified township gets the most permissive limits
/// of any class, so that nothing is refused before the first classification.
pub fn limits_for(policy: &Policy, class: Option<TownshipClass>) -> ClassLimits {
    if let Some(limits) = class.and_then(|c| policy.limits_for(c)) {
        return *limits;
    }
    let all = &policy.class_limits;
    ClassLimits {
        township_class: 0,
        leadership_posts: all.iter().map(|l| l.leadership_posts).max().unwrap_or(u32::MAX),
        leadership_posts_verified: false,
        min_party_government_offices: all.iter().map(|l| l.min_party_government_offices).min().unwrap_or(0),
        max_party_government_offices: all.iter().map(|l| l.max_party_government_offices).max().unwrap_or(u32::MAX),
        max_public_institutions: all.iter().map(|l| l.max_public_institutions).max().unwrap_or(u32::MAX),
        max_law_enforcement_units: all.iter().map(|l| l.max_law_enforcement_units).max().unwrap_or(u32::MAX),
    }
}

/// The most institutions of `kind` a township of `class` may have.
pub fn institution_limit(policy: &Policy, class: Option<TownshipClass>, kind: InstitutionKind) -> u32 {
    let limits = limits_for(policy, class);
    match kind {
        InstitutionKind::PartyGovernmentOffice => limits.max_party_government_offices,
        InstitutionKind::PublicInstitution => limits.max_public_institutions,
        InstitutionKind::LawEnforcementUnit => limits.max_law_enforcement_units,
    }
}

/// The offices the policy names (section 三(一)), each recognised by a key phrase of its name.
pub const MANDATED_OFFICES: [(&str, &str); 5] = [
    ("党政办", "党政办公室"),
    ("经济发展", "经济发展办公室(农业农村工作办公室)"),
    ("社会事务", "社会事务办公室(卫生健康办公室)"),
    ("自然资源", "自然资源和生态环境办公室"),
    ("社会治安", "社会治安和应急管理办公室"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable id, e.g. `plaques.max`.
    pub rule: &'static str,
    pub severity: Severity,
    /// The township's resource name.
    pub township: String,
    pub township_display_name: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// Every rule `facts` breaks under `policy`, in a stable order.
pub fn findings(policy: &Policy, facts: &TownshipFacts) -> Vec<Finding> {
    let class = facts.class.as_ref().and_then(|c| c.effective_class());
    let limits = limits_for(policy, class);
    let class_text = match class {
        Some(c) => format!("class {c}"),
        None => "an unclassified township".to_owned(),
    };
    let mut found = Vec::new();
    let mut add = |rule: &'static str, severity: Severity, message: String| {
        found.push(Finding {
            rule,
            severity,
            township: township_name(&facts.township.code),
            township_display_name: facts.township.name.clone(),
            message,
        });
    };
    let count = |kind: InstitutionKind| count_u32(facts.institutions.iter().filter(|i| i.kind == kind).count());

    let offices = count(InstitutionKind::PartyGovernmentOffice);
    if offices < limits.min_party_government_offices || offices > limits.max_party_government_offices {
        add(
            "offices.count",
            Severity::Error,
            format!(
                "{offices} party/government offices; {class_text} must have {}–{}: {}",
                limits.min_party_government_offices,
                limits.max_party_government_offices,
                if offices > limits.max_party_government_offices {
                    "merge or abolish offices"
                } else {
                    "set up the missing offices"
                }
            ),
        );
    }
    for (key, full_name) in MANDATED_OFFICES {
        let present =
            facts.institutions.iter().any(|i| i.kind == InstitutionKind::PartyGovernmentOffice && i.name.contains(key));
        if !present {
            add(
                "offices.mandated",
                Severity::Warning,
                format!("no {full_name}; set it up, or record the county's approved adjustment"),
            );
        }
    }
    let public = count(InstitutionKind::PublicInstitution);
    if public > limits.max_public_institutions {
        add(
            "public_institutions.max",
            Severity::Error,
            format!("{public} public institutions; {class_text} may have at most {}", limits.max_public_institutions),
        );
    }
    let enforcement = count(InstitutionKind::LawEnforcementUnit);
    if enforcement > limits.max_law_enforcement_units {
        add(
            "law_enforcement.max",
            Severity::Error,
            format!("{enforcement} law-enforcement units; at most {} allowed", limits.max_law_enforcement_units),
        );
    } else if enforcement == 0 {
        add(
            "law_enforcement.missing",
            Severity::Warning,
            "no comprehensive administrative law-enforcement brigade (综合行政执法大队)".to_owned(),
        );
    }
    let plaques = count_u32(facts.plaques.len());
    if plaques > policy.max_plaques_per_township {
        add(
            "plaques.max",
            Severity::Error,
            format!(
                "{plaques} plaques (加挂牌子); at most {} per township: remove {}",
                policy.max_plaques_per_township,
                plaques - policy.max_plaques_per_township
            ),
        );
    }
    let posts = count_u32(facts.posts.len());
    if posts > limits.leadership_posts {
        add(
            "posts.quota",
            Severity::Error,
            format!(
                "{posts} leadership posts; {class_text} is allowed {}{}: remove {}",
                limits.leadership_posts,
                if limits.leadership_posts_verified { "" } else { " (an inferred figure, unverified)" },
                posts - limits.leadership_posts
            ),
        );
    }
    for role in MandatedRole::ALL {
        let filled = facts.posts.iter().filter(|p| p.mandated_role == Some(role)).count();
        if filled == 0 {
            add("posts.mandated_role", Severity::Error, format!("no post is the {}; designate one", role.label_zh()));
        } else if filled > 1 {
            add(
                "posts.mandated_role",
                Severity::Error,
                format!("{filled} posts are marked {}; the policy asks for exactly one", role.label_zh()),
            );
        }
    }
    let kind = facts.township.kind;
    for area in duty_areas_for(kind) {
        if !facts.catalogue.iter().any(|entry| entry.item.duty_area == *area) {
            add(
                "catalogue.duty_area_uncovered",
                Severity::Warning,
                format!(
                    "no catalogue item covers the duty area {} ({}); add a power, responsibility or public service \
                     item for it to the township's catalogue, or have the county add one to its template",
                    area.label_zh_for(kind),
                    area.as_str()
                ),
            );
        }
    }
    for entry in &facts.catalogue {
        let item = &entry.item;
        let what = format!(
            "{}catalogue item {} {} ({})",
            if entry.inherited { "inherited " } else { "" },
            item.code,
            item.title,
            item.resource_name()
        );
        let problem = match &entry.resolution {
            Resolution::Resolved(_) | Resolution::NotApplicable => continue,
            Resolution::Deleted { institution_id } => format!(
                "{what} names institution {}/institutions/{institution_id} ({}), which no longer exists: delete the \
                 item and create it again naming an institution in force",
                township_name(&facts.township.code),
                item.responsible_institution_title
            ),
            Resolution::NotInForce(institution) => format!(
                "{what} names institution {} ({}/institutions/{}), no longer in force since {}: delete the item and \
                 create it again naming an institution in force",
                institution.name,
                township_name(&institution.township),
                institution.id,
                institution.valid_to.as_deref().unwrap_or("?")
            ),
            Resolution::Unmatched => format!(
                "{what} names {}, and no institution in force of this township is called so or has it in its name: \
                 set the institution up, or override the item with a township item of code {} naming the \
                 responsible institution",
                item.responsible_institution_title, item.code
            ),
        };
        add("catalogue.responsible_institution_missing", Severity::Error, problem);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalogue::{
        CatalogueEntry, CatalogueItem, CatalogueOwner, DutyArea, HandlingMode, ItemDetails, SUBDISTRICT_DUTY_AREAS,
    };
    use crate::domain::model::{ClassRecord, Institution, LeadershipPost, Plaque, Township, TownshipKind};
    use crate::domain::names::TownshipCode;
    use township_policy::PerIndicator;

    fn code() -> TownshipCode {
        TownshipCode::parse("430102001").unwrap()
    }

    fn facts(class: Option<u8>) -> TownshipFacts {
        let office = |id: i64, name: &str, kind| Institution {
            id,
            township: code(),
            kind,
            name: name.to_owned(),
            staffing_quota: 5,
            approving_document: String::new(),
            valid_from: None,
            valid_to: None,
            created_at: 0,
            revision: 1,
            updated_at: 0,
        };
        let mut institutions: Vec<_> = MANDATED_OFFICES
            .iter()
            .enumerate()
            .map(|(i, (_, name))| office(i64::try_from(i).unwrap(), name, InstitutionKind::PartyGovernmentOffice))
            .collect();
        institutions.push(office(10, "综合行政执法大队", InstitutionKind::LawEnforcementUnit));
        // One public service item per duty area of a sub-district, each the responsibility of 党政办公室.
        let catalogue = SUBDISTRICT_DUTY_AREAS
            .iter()
            .enumerate()
            .map(|(i, area)| CatalogueEntry {
                item: CatalogueItem {
                    id: i64::try_from(i).unwrap() + 1,
                    owner: CatalogueOwner::Township(code()),
                    code: format!("GG-{i:03}"),
                    title: format!("{}事项", area.label_zh()),
                    duty_area: *area,
                    responsible_institution_id: Some(0),
                    responsible_institution_title: institutions[0].name.clone(),
                    details: ItemDetails::PublicService {
                        service_domain: "综合".to_owned(),
                        handling_mode: HandlingMode::Direct,
                    },
                    created_at: 0,
                    revision: 1,
                    updated_at: 0,
                },
                inherited: false,
                resolution: Resolution::Resolved(institutions[0].clone()),
            })
            .collect();
        let posts = MandatedRole::ALL
            .iter()
            .enumerate()
            .map(|(i, role)| LeadershipPost {
                id: i64::try_from(i).unwrap(),
                township: code(),
                role: role.label_zh().to_owned(),
                holder: None,
                mandated_role: Some(*role),
                revision: 1,
                updated_at: 0,
            })
            .collect();
        TownshipFacts {
            township: Township {
                code: code(),
                name: "甲街道".to_owned(),
                kind: TownshipKind::Subdistrict,
                flags: vec![],
                valid_from: None,
                valid_to: None,
                revision: 1,
                updated_at: 0,
            },
            class: class.map(|c| ClassRecord {
                township: code(),
                data_year: 2023,
                computed_class: Some(c),
                previous_class: None,
                class_override: None,
                score: 100.0,
                rank: 1,
                indices: PerIndicator::default(),
                run_id: Some(1),
                explanation: String::new(),
            }),
            institutions,
            plaques: vec![],
            posts,
            catalogue,
        }
    }

    fn rules(found: &[Finding]) -> Vec<&'static str> {
        found.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_township_set_up_as_the_policy_says_has_no_findings() {
        assert_eq!(findings(&Policy::builtin_default(), &facts(Some(2))), []);
    }

    #[test]
    fn posts_over_the_class_quota_after_a_downgrade_is_a_finding() {
        let mut facts = facts(Some(3));
        for id in 3..11 {
            let mut post = facts.posts[0].clone();
            post.id = id;
            post.mandated_role = None;
            facts.posts.push(post);
        }
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["posts.quota"]);
        assert!(found[0].message.contains("11 leadership posts; class 3 is allowed 9"), "{}", found[0].message);
    }

    #[test]
    fn more_than_three_plaques_is_a_finding() {
        let mut facts = facts(Some(2));
        facts.plaques = (0..4)
            .map(|id| Plaque {
                id,
                institution_id: 0,
                township: code(),
                name: format!("牌子{id}"),
                approving_document: String::new(),
                created_at: 0,
                revision: 1,
                updated_at: 0,
            })
            .collect();
        assert_eq!(rules(&findings(&Policy::builtin_default(), &facts)), ["plaques.max"]);
    }

    #[test]
    fn a_missing_mandated_office_and_role_are_findings() {
        let mut facts = facts(Some(2));
        facts.institutions.retain(|i| !i.name.contains("社会治安"));
        facts.posts.retain(|p| p.mandated_role != Some(MandatedRole::DisciplineInspectionSecretary));
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["offices.count", "offices.mandated", "posts.mandated_role"]);
        assert!(found[2].message.contains("专职纪委书记"));
    }

    #[test]
    fn catalogue_duty_area_uncovered() {
        let mut facts = facts(Some(2));
        facts.catalogue.retain(|e| e.item.duty_area != DutyArea::MaintainPublicSafety);
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["catalogue.duty_area_uncovered"]);
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(found[0].message.contains("维护公共安全 (maintain_public_safety)"), "{}", found[0].message);
        assert!(found[0].message.contains("add a power, responsibility or public service item"));

        // A town carries the six township areas: the sub-district catalogue covers only party building.
        facts.township.kind = TownshipKind::Town;
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["catalogue.duty_area_uncovered"; 5]);
        assert!(found[0].message.contains("促进经济发展"), "{}", found[0].message);
        facts.catalogue.clear();
        let found = findings(&Policy::builtin_default(), &facts);
        assert!(found[0].message.contains("加强基层党建"), "party building in a town's words: {}", found[0].message);
    }

    #[test]
    fn catalogue_responsible_institution_missing() {
        let mut facts = facts(Some(2));
        let ended = Institution { valid_to: Some("2020-06-30".to_owned()), ..facts.institutions[1].clone() };
        facts.catalogue[0].resolution = Resolution::Deleted { institution_id: 0 };
        facts.catalogue[1].resolution = Resolution::NotInForce(ended);
        facts.catalogue[2].inherited = true;
        facts.catalogue[2].item.owner = CatalogueOwner::County(code().county());
        facts.catalogue[2].item.responsible_institution_id = None;
        facts.catalogue[2].item.responsible_institution_title = "党建办".to_owned();
        facts.catalogue[2].resolution = Resolution::Unmatched;
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["catalogue.responsible_institution_missing"; 3]);
        assert!(found.iter().all(|f| f.severity == Severity::Error));
        let deleted = &found[0].message;
        assert!(deleted.contains("catalogue item GG-000"), "{deleted}");
        assert!(
            deleted.contains("townships/430102001/institutions/0 (党政办公室), which no longer exists"),
            "{deleted}"
        );
        assert!(deleted.contains("naming an institution in force"), "{deleted}");
        assert!(found[1].message.contains("no longer in force since 2020-06-30"), "{}", found[1].message);
        let unmatched = &found[2].message;
        assert!(unmatched.starts_with("inherited catalogue item GG-002"), "{unmatched}");
        assert!(unmatched.contains("counties/430102/catalogueItems/3)"), "{unmatched}");
        assert!(unmatched.contains("names 党建办, and no institution in force"), "{unmatched}");
        assert!(unmatched.contains("override the item with a township item of code GG-002"), "{unmatched}");
    }

    #[test]
    fn unclassified_townships_get_the_most_permissive_limits() {
        let limits = limits_for(&Policy::builtin_default(), None);
        assert_eq!(limits.leadership_posts, 13);
        assert_eq!(limits.max_party_government_offices, 6);
        assert_eq!(limits.min_party_government_offices, 4);
    }
}
