//! The policy's rules (DESIGN.md §4 "Compliance"): limits checked at write time, and the findings of a
//! compliance report. States that arise from a reclassification (a township moved to class 3 that still has 11
//! posts) are findings, not write errors.

use township_classifier::domain::{ClassLimits, Policy, TownshipClass};

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
    let count = |kind: InstitutionKind| facts.institutions.iter().filter(|i| i.kind == kind).count() as u32;

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
    let plaques = facts.plaques.len() as u32;
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
    let posts = facts.posts.len() as u32;
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
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::model::{ClassRecord, Institution, LeadershipPost, Plaque, Township, TownshipKind};
    use crate::domain::names::TownshipCode;
    use township_classifier::domain::PerIndicator;

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
        };
        let mut institutions: Vec<_> = MANDATED_OFFICES
            .iter()
            .enumerate()
            .map(|(i, (_, name))| office(i as i64, name, InstitutionKind::PartyGovernmentOffice))
            .collect();
        institutions.push(office(10, "综合行政执法大队", InstitutionKind::LawEnforcementUnit));
        let posts = MandatedRole::ALL
            .iter()
            .enumerate()
            .map(|(i, role)| LeadershipPost {
                id: i as i64,
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
    fn unclassified_townships_get_the_most_permissive_limits() {
        let limits = limits_for(&Policy::builtin_default(), None);
        assert_eq!(limits.leadership_posts, 13);
        assert_eq!(limits.max_party_government_offices, 6);
        assert_eq!(limits.min_party_government_offices, 4);
    }
}
