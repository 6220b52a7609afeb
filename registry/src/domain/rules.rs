//! The policy's rules (DESIGN.md §4 "Compliance"): limits checked at write time, and the findings of a
//! compliance report. States that arise from a reclassification (a township moved to class 3 that still has 11
//! posts) are findings, not write errors.
//!
//! Every rule has a stable id (`offices.count`, `posts.dedicated_role` …). Where the policy document gives no
//! figure or list and one is inferred, the code says 推定值，未经核实 and so does the finding's message.

use super::count_u32;
use std::collections::HashMap;

use township_policy::{ClassLimits, INFERRED, Policy, TownshipClass};

use super::catalogue::{CatalogueEntry, CatalogueItemType, ItemDetails, Resolution, duty_areas_for};
use super::deviations::{ApprovedDeviation, covering, is_count_rule};
use super::model::{
    Institution, InstitutionKind, LeadershipPost, MandatedRole, Plaque, StaffingType, TownshipFacts, TownshipKind,
};
use super::names::township_name;

/// Every rule id a finding may carry, the ids an approved deviation may name.
pub const RULE_IDS: &[&str] = &[
    "offices.count",
    "offices.mandated",
    "public_institutions.max",
    "public_institutions.mandated",
    "law_enforcement.max",
    "law_enforcement.missing",
    "plaques.max",
    "plaques.institution_kind",
    "plaques.approving_document_missing",
    "posts.quota",
    "posts.mandated_role",
    "posts.deputy_secretary_not_government_head",
    "posts.dedicated_role",
    "catalogue.duty_area_uncovered",
    "catalogue.list_missing",
    "catalogue.power_without_responsibility",
    "catalogue.responsible_institution_missing",
    "staffing.township_over_norm",
    "staffing.institution_over_approved",
    "policy.city_deviation",
];

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
        administrative_staff: all.iter().filter_map(|l| l.administrative_staff).max(),
        public_institution_staff: all.iter().filter_map(|l| l.public_institution_staff).max(),
    }
}

/// The most institutions of `kind` a township of `class` may have. Compliance flags a township over the same
/// figure (`offices.count`, `public_institutions.max`, `law_enforcement.max`), both counting institutions in
/// force only.
pub fn institution_limit(policy: &Policy, class: Option<TownshipClass>, kind: InstitutionKind) -> u32 {
    let limits = limits_for(policy, class);
    match kind {
        InstitutionKind::PartyGovernmentOffice => limits.max_party_government_offices,
        InstitutionKind::PublicInstitution => limits.max_public_institutions,
        InstitutionKind::LawEnforcementUnit => limits.max_law_enforcement_units,
    }
}

/// An office or public institution the policy names (section 三(一)), recognised by fragments of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedUnit {
    /// As the policy names it for a 乡镇.
    pub name: &'static str,
    /// As a 街道 names it, or None when a 街道 need not set it up. The document lists the units of a 乡镇 only
    /// and says of a 街道 just 街道机构也应进一步调整优化: every 街道 entry is inferred (推定值，未经核实).
    pub subdistrict_name: Option<&'static str>,
    /// Any of these in a name (brackets and spaces ignored) marks the unit, so that the bracketed alternative
    /// (卫生健康办公室), a merged name (经济发展和自然资源办公室) and usual variants (党政综合办公室) count.
    pub fragments: &'static [&'static str],
    /// The named office a small township may fold this one into (规模较小乡镇要适当精简压缩机构). The document
    /// names no such pair: inferred (推定值，未经核实).
    pub small_township_merges_into: Option<&'static str>,
}

impl NamedUnit {
    /// The unit's name for a township of `kind`, or None when that kind need not have it.
    pub fn name_for(&self, kind: TownshipKind) -> Option<&'static str> {
        if kind.is_subdistrict() { self.subdistrict_name } else { Some(self.name) }
    }

    pub fn recognises(&self, name: &str) -> bool {
        let plain: String =
            name.chars().filter(|c| !matches!(c, '(' | ')' | '（' | '）') && !c.is_whitespace()).collect();
        self.fragments.iter().any(|fragment| plain.contains(fragment))
    }
}

/// The party/government offices the policy names (section 三(一): 党政办公室 … 等5一6个党政机构).
pub const NAMED_OFFICES: [NamedUnit; 5] = [
    NamedUnit {
        name: "党政办公室",
        subdistrict_name: Some("党政办公室"),
        fragments: &["党政办", "党政综合办"],
        small_township_merges_into: None,
    },
    NamedUnit {
        name: "经济发展办公室(农业农村工作办公室)",
        // A 街道 serves economic development (服务经济发展) but has no farming to run.
        subdistrict_name: Some("经济发展办公室"),
        fragments: &["经济发展", "农业农村工作"],
        small_township_merges_into: None,
    },
    NamedUnit {
        name: "社会事务办公室(卫生健康办公室)",
        subdistrict_name: Some("社会事务办公室(卫生健康办公室)"),
        fragments: &["社会事务", "卫生健康"],
        small_township_merges_into: None,
    },
    NamedUnit {
        name: "自然资源和生态环境办公室",
        // Land and ecology are rural work: a 街道 may leave them to the county's departments.
        subdistrict_name: None,
        fragments: &["自然资源", "生态环境"],
        // Land use and ecology sit closest to rural economic work.
        small_township_merges_into: Some("经济发展办公室(农业农村工作办公室)"),
    },
    NamedUnit {
        name: "社会治安和应急管理办公室",
        subdistrict_name: Some("社会治安和应急管理办公室"),
        fragments: &["社会治安", "应急管理"],
        small_township_merges_into: None,
    },
];

/// The three directly-affiliated public institutions the policy names (section 三(一): … 等3个直属事业单位).
pub const NAMED_PUBLIC_INSTITUTIONS: [NamedUnit; 3] = [
    NamedUnit {
        name: "社会事务综合服务中心(文化综合服务站)",
        // 街道 organise public services, culture included (组织公共服务 … 文化体育).
        subdistrict_name: Some("社会事务综合服务中心(文化综合服务站)"),
        fragments: &["社会事务综合服务", "文化综合服务"],
        small_township_merges_into: None,
    },
    NamedUnit {
        name: "农业综合服务中心",
        subdistrict_name: None,
        fragments: &["农业综合服务", "农业农村综合服务"],
        small_township_merges_into: None,
    },
    NamedUnit {
        name: "政务(便民)服务中心",
        subdistrict_name: Some("政务(便民)服务中心"),
        fragments: &["政务服务", "便民服务"],
        small_township_merges_into: None,
    },
];

/// The named offices a township of `kind` must have under `limits`, each with its name for that kind.
/// A class whose minimum is below the number of named offices is one whose small townships streamline: it may
/// fold as many mergeable offices into others as the gap, so that a class-3 township with its 4 offices breaks
/// no rule. An unclassified township gets the most permissive minimum, as it does at write time.
pub fn mandated_offices(kind: TownshipKind, limits: &ClassLimits) -> Vec<(&'static NamedUnit, &'static str)> {
    let mut wanted: Vec<_> =
        NAMED_OFFICES.iter().filter_map(|office| office.name_for(kind).map(|name| (office, name))).collect();
    let mut may_merge = wanted.len().saturating_sub(limits.min_party_government_offices as usize);
    wanted.retain(|(office, _)| {
        let merged = may_merge > 0 && office.small_township_merges_into.is_some();
        may_merge -= usize::from(merged);
        !merged
    });
    wanted
}

/// The named public institutions a township of `kind` must have: a 街道 has no agriculture centre.
pub fn mandated_public_institutions(kind: TownshipKind) -> Vec<(&'static NamedUnit, &'static str)> {
    NAMED_PUBLIC_INSTITUTIONS.iter().filter_map(|unit| unit.name_for(kind).map(|name| (unit, name))).collect()
}

/// The titles of the government head's post: 镇长, 乡长 (民族乡 too), 街道办事处主任.
const GOVERNMENT_HEAD_TITLES: [&str; 3] = ["镇长", "乡长", "办事处主任"];

/// Whether a post's role text is the government head's post (政府正职): one of [`GOVERNMENT_HEAD_TITLES`] at
/// the end of the role or of one part of a combined role (党委副书记、镇长), acting heads (代镇长) and longer
/// forms (XX镇人民政府镇长, 街道办事处主任) included. A part with 副 is a deputy's (副镇长, 办事处副主任), and
/// bracketed remarks are ignored (镇长（兼）).
pub fn is_government_head(role: &str) -> bool {
    without_brackets(role)
        .split(|c: char| matches!(c, '、' | ',' | '，' | '/' | '／' | ';' | '；' | '兼') || c.is_whitespace())
        .any(|part| !part.contains('副') && GOVERNMENT_HEAD_TITLES.iter().any(|title| part.ends_with(title)))
}

/// `text` without its bracketed remarks, ASCII or full-width.
fn without_brackets(text: &str) -> String {
    let mut depth = 0usize;
    let mut kept = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '(' | '（' => depth += 1,
            ')' | '）' => depth = depth.saturating_sub(1),
            _ if depth == 0 => kept.push(c),
            _ => {}
        }
    }
    kept
}

/// A post's holder, trimmed; None while vacant.
fn holder(post: &LeadershipPost) -> Option<&str> {
    post.holder.as_deref().map(str::trim).filter(|holder| !holder.is_empty())
}

/// How messages name a unit's party/government offices: a 街道's belong to its 党工委 and 办事处, 派出机关.
fn offices_phrase(kind: TownshipKind) -> &'static str {
    if kind.is_subdistrict() {
        "offices of the 党工委 and 办事处 (派出机关)"
    } else {
        "party/government offices"
    }
}

/// How messages name the government head's post of a unit of `kind`.
fn head_phrase(kind: TownshipKind) -> &'static str {
    match kind {
        TownshipKind::Town => "镇长",
        TownshipKind::Township | TownshipKind::EthnicTownship => "乡长",
        TownshipKind::Subdistrict => "办事处主任 (head of the 办事处, 派出机关)",
        TownshipKind::Other => "government head (政府正职)",
    }
}

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
    /// The county's approved deviation of this rule that applies to the township, if any.
    pub deviation: Option<DeviationNote>,
    /// The finding rests on an inferred figure (推定值，未经核实), and its message says so.
    pub inferred: bool,
    /// The resource a finding not about one township is about (the city, for `policy.city_deviation`); empty
    /// otherwise, and the township fields are empty when it is set.
    pub resource: String,
}

impl Finding {
    /// The finding is covered by an approved deviation: reported, but approved.
    pub fn is_approved_exception(&self) -> bool {
        self.deviation.as_ref().is_some_and(|note| note.approved)
    }
}

/// The approved deviation a finding meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviationNote {
    /// The deviation's resource name.
    pub deviation: String,
    pub document_number: String,
    pub approved_on: String,
    /// The approved figure of a count rule; None for a waived rule.
    pub allowed: Option<u32>,
    /// True when the deviation covers the finding (an approved exception); false when the count exceeds even
    /// the approved figure.
    pub approved: bool,
}

impl DeviationNote {
    fn of(deviation: &ApprovedDeviation, approved: bool) -> Self {
        DeviationNote {
            deviation: deviation.name(),
            document_number: deviation.document_number.clone(),
            approved_on: deviation.approved_on.clone(),
            allowed: deviation.allowed,
            approved,
        }
    }
}

/// The findings of one township as the rules add them.
struct Report<'a> {
    facts: &'a TownshipFacts,
    township: String,
    found: Vec<Finding>,
}

impl Report<'_> {
    /// A finding of a rule that is not a count rule: an approved exception when a deviation waives the rule.
    fn add(&mut self, rule: &'static str, severity: Severity, message: String) {
        self.add_resting(rule, severity, message, false);
    }

    /// A finding of a rule that is not a count rule, resting on an inferred figure when `inferred` (its message
    /// then says 推定值，未经核实): an approved exception when a deviation waives the rule.
    fn add_resting(&mut self, rule: &'static str, severity: Severity, message: String, inferred: bool) {
        debug_assert!(RULE_IDS.contains(&rule) && !is_count_rule(rule), "{rule} is not a listed, uncounted rule");
        let deviation = covering(&self.facts.deviations, &self.facts.township.code, rule);
        let (message, note) = match deviation {
            Some(d) => (
                format!("{message} — approved exception: waived by {} ({})", d.cited(), d.allowed_description),
                Some(DeviationNote::of(d, true)),
            ),
            None => (message, None),
        };
        self.push(rule, severity, message, note, inferred);
    }

    /// A finding of a count rule over `count`: an approved exception when a deviation's figure covers the count
    /// (and, for `offices.count`, the count is not below both the class's minimum and the figure).
    fn add_count(
        &mut self,
        rule: &'static str,
        severity: Severity,
        count: u32,
        min: u32,
        message: String,
        inferred: bool,
    ) {
        debug_assert!(is_count_rule(rule), "{rule} is not a count rule");
        let deviation = covering(&self.facts.deviations, &self.facts.township.code, rule);
        let (message, note) = match deviation.and_then(|d| d.allowed.map(|allowed| (d, allowed))) {
            Some((d, allowed)) if count <= allowed && count >= min.min(allowed) => (
                format!("{message} — approved exception: {} allows {allowed}", d.cited()),
                Some(DeviationNote::of(d, true)),
            ),
            Some((d, allowed)) => (
                format!("{message}; {count} is outside even the {allowed} the approved deviation {} allows", d.cited()),
                Some(DeviationNote::of(d, false)),
            ),
            None => (message, None),
        };
        self.push(rule, severity, message, note, inferred);
    }

    fn push(
        &mut self,
        rule: &'static str,
        severity: Severity,
        message: String,
        deviation: Option<DeviationNote>,
        inferred: bool,
    ) {
        debug_assert!(!inferred || message.contains(INFERRED), "{rule}: {message}");
        self.found.push(Finding {
            rule,
            severity,
            township: self.township.clone(),
            township_display_name: self.facts.township.name.clone(),
            message,
            deviation,
            inferred,
            resource: String::new(),
        });
    }

    fn kind(&self) -> TownshipKind {
        self.facts.township.kind
    }

    fn of_kind(&self, kind: InstitutionKind) -> impl Iterator<Item = &Institution> {
        self.facts.institutions.iter().filter(move |institution| institution.kind == kind)
    }

    fn post(&self, post: &LeadershipPost) -> String {
        format!("{} ({}/posts/{})", post.role.trim(), self.township, post.id)
    }

    fn plaque(&self, plaque: &Plaque, institution: &Institution) -> String {
        format!(
            "plaque {} ({}/institutions/{}/plaques/{}) on {}",
            plaque.name, self.township, institution.id, plaque.id, institution.name
        )
    }
}

/// Whether the class limit `field` (`leadership_posts` …) that `limits` applies is an inferred figure of `policy`.
/// An unclassified township's limits are the most permissive of any class: inferred if a class giving that
/// value has it inferred.
pub fn limit_is_inferred(policy: &Policy, limits: &ClassLimits, field: &str, value: u32) -> bool {
    let path = |class: TownshipClass| format!("class_limits[class={class}].{field}");
    if limits.township_class != 0 {
        return policy.is_inferred(&path(limits.township_class));
    }
    policy.class_limits.iter().any(|class_limits| {
        policy.figure(&path(class_limits.township_class)) == Some(serde_json::Value::from(value))
            && policy.is_inferred(&path(class_limits.township_class))
    })
}

/// What a message citing an inferred figure of the policy adds.
pub const INFERRED_FIGURE: &str = " (the policy's figure, 推定值，未经核实)";

fn inferred_text(inferred: bool) -> &'static str {
    if inferred { INFERRED_FIGURE } else { "" }
}

/// The policy document's own figures a city policy may depart from only by a document of its own (文号):
/// the weights 5 : 3 : 2 (section 一(一)), 11 and 9 leadership posts for classes 2 and 3 (一(二)), and at most
/// 3 plaques per township (三(一)). Each departure is described, figure and document value; empty when the
/// policy keeps them all. (Inferred figures are the city's to set and are no departure.)
pub fn city_policy_departures(policy: &Policy) -> Vec<String> {
    let mut departures = Vec::new();
    let w = policy.weights;
    // Compared as ratios, so that 50 : 30 : 20 keeps the document's weighting.
    let unit = w.population / 5.0;
    let in_ratio = [(w.fiscal_revenue, 3.0), (w.land_area, 2.0)]
        .iter()
        .all(|&(weight, parts)| (weight - unit * parts).abs() <= 1e-9 * unit.abs().max(1.0));
    if !in_ratio || unit <= 0.0 {
        departures.push(format!(
            "weights {} : {} : {} (the document: 5 : 3 : 2)",
            w.population, w.fiscal_revenue, w.land_area
        ));
    }
    for (class, posts) in [(2, 11), (3, 9)] {
        if let Some(limits) = policy.limits_for(class).filter(|limits| limits.leadership_posts != posts) {
            departures
                .push(format!("class {class}: {} leadership posts (the document: {posts})", limits.leadership_posts));
        }
    }
    if policy.max_plaques_per_township > 3 {
        departures.push(format!("{} plaques per township (the document: at most 3)", policy.max_plaques_per_township));
    }
    departures
}

/// `policy.city_deviation`: the city's policy departs from the policy document under its own 文号. A
/// city-level finding (`resource` the city), listed once on every report whose scope is in the city.
pub fn city_deviation_finding(city: &str, departures: &[String], document_number: &str) -> Finding {
    Finding {
        rule: "policy.city_deviation",
        severity: Severity::Warning,
        township: String::new(),
        township_display_name: String::new(),
        message: format!(
            "the city's policy departs from the policy document under {document_number}: {}; every finding of \
             this report applies the city's figures",
            departures.join("; ")
        ),
        inferred: false,
        resource: city.to_owned(),
        deviation: None,
    }
}

/// Every rule `facts` breaks under `policy`, in a stable order.
///
/// `facts.institutions` holds the institutions in force only (`Store::township_facts`), as the write-time
/// limits count them; a plaque of an ended institution is therefore not among the counted ones.
pub fn findings(policy: &Policy, facts: &TownshipFacts) -> Vec<Finding> {
    let class = facts.class.as_ref().and_then(|c| c.effective_class());
    let limits = limits_for(policy, class);
    let class_text = match class {
        Some(c) => format!("class {c}"),
        None => "an unclassified township".to_owned(),
    };
    let mut report = Report { facts, township: township_name(&facts.township.code), found: Vec::new() };
    institutions(&mut report, policy, &limits, &class_text);
    plaques(&mut report, policy);
    posts(&mut report, policy, &limits, &class_text);
    catalogue(&mut report);
    staffing(&mut report, policy, &limits, &class_text);
    report.found
}

/// The staffing norm (编制) of `staffing_type` for a township under `limits`; None: the policy sets none.
pub fn staffing_norm(limits: &ClassLimits, staffing_type: StaffingType) -> Option<u32> {
    match staffing_type {
        StaffingType::Administrative => limits.administrative_staff,
        StaffingType::PublicInstitution => limits.public_institution_staff,
    }
}

/// The approved staffing of `staffing_type` summed over the township's institutions in force.
pub fn approved_staffing(facts: &TownshipFacts, staffing_type: StaffingType) -> i64 {
    let in_force: Vec<i64> = facts.institutions.iter().map(|i| i.id).collect();
    facts
        .staffing
        .iter()
        .filter(|figure| figure.staffing_type == staffing_type && in_force.contains(&figure.institution_id))
        .map(|figure| figure.approved)
        .sum()
}

/// A township's staffing as the rules count it: approved and actual figures over its institutions in force, beside
/// its class's norms (None: the policy sets none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffingSummary {
    pub class: Option<TownshipClass>,
    pub approved: [i64; 2],
    pub actual: [i64; 2],
    pub norm: [Option<u32>; 2],
}

/// The summary the report's 编制 section shows, from the same facts and norms as the staffing rules; None for a
/// township with no approval and no headcount.
pub fn staffing_summary(policy: &Policy, facts: &TownshipFacts) -> Option<StaffingSummary> {
    if facts.staffing.is_empty() {
        return None;
    }
    let class = facts.class.as_ref().and_then(|c| c.effective_class());
    let limits = limits_for(policy, class);
    let in_force: Vec<i64> = facts.institutions.iter().map(|i| i.id).collect();
    let actual = |staffing_type| {
        facts
            .staffing
            .iter()
            .filter(|f| f.staffing_type == staffing_type && in_force.contains(&f.institution_id))
            .filter_map(|f| f.actual)
            .map(i64::from)
            .sum()
    };
    Some(StaffingSummary {
        class,
        approved: StaffingType::ALL.map(|t| approved_staffing(facts, t)),
        actual: StaffingType::ALL.map(actual),
        norm: StaffingType::ALL.map(|t| staffing_norm(&limits, t)),
    })
}

/// 对不同类别乡镇的机构设置、编制核定等实行分类管理: the township's approved 行政/事业编制 within its class's
/// norm (which the document does not give: inferred), and no institution staffed beyond its approval (超编).
fn staffing(report: &mut Report, policy: &Policy, limits: &ClassLimits, class_text: &str) {
    let facts = report.facts;
    for staffing_type in StaffingType::ALL {
        let Some(norm) = staffing_norm(limits, staffing_type) else { continue };
        let approved = approved_staffing(facts, staffing_type);
        if approved > i64::from(norm) {
            let field = match staffing_type {
                StaffingType::Administrative => "administrative_staff",
                StaffingType::PublicInstitution => "public_institution_staff",
            };
            let figure_inferred = limit_is_inferred(policy, limits, field, norm);
            report.add_resting(
                "staffing.township_over_norm",
                Severity::Warning,
                format!(
                    "{approved} {} approved across the institutions in force; {class_text}'s norm is {norm}{}: \
                     reduce the approvals by {}, or have the city set its norm",
                    staffing_type.label_zh(),
                    inferred_text(figure_inferred),
                    approved - i64::from(norm)
                ),
                figure_inferred,
            );
        }
    }
    let institutions: HashMap<i64, &Institution> = facts.institutions.iter().map(|i| (i.id, i)).collect();
    for figure in &facts.staffing {
        let (Some(institution), Some(actual)) = (institutions.get(&figure.institution_id), figure.actual) else {
            continue;
        };
        if i64::from(actual) > figure.approved {
            report.add(
                "staffing.institution_over_approved",
                Severity::Error,
                format!(
                    "{} ({}/institutions/{}) has {actual} staff on {} but {} approved (超编 by {}): reduce the \
                     headcount, or record the approval (批准文号) that allows it",
                    institution.name,
                    report.township,
                    institution.id,
                    figure.staffing_type.label_zh(),
                    figure.approved,
                    i64::from(actual) - figure.approved
                ),
            );
        }
    }
}

fn institutions(report: &mut Report, policy: &Policy, limits: &ClassLimits, class_text: &str) {
    let kind = report.kind();
    let offices = count_u32(report.of_kind(InstitutionKind::PartyGovernmentOffice).count());
    let (min, max) = (limits.min_party_government_offices, limits.max_party_government_offices);
    if offices < min || offices > max {
        // The document's only figure is 5–6 offices for a 乡镇 (section 三(一)); the list says which are not.
        let bound =
            if offices > max { ("max_party_government_offices", max) } else { ("min_party_government_offices", min) };
        let figure_inferred = limit_is_inferred(policy, limits, bound.0, bound.1);
        let source = if kind.is_subdistrict() {
            " (the document gives a 街道 no figure; the class's is applied, 推定值，未经核实)"
        } else {
            inferred_text(figure_inferred)
        };
        let todo = if offices > max { "merge or abolish offices" } else { "set up the missing offices" };
        report.add_count(
            "offices.count",
            Severity::Error,
            offices,
            min,
            format!("{offices} {}; {class_text} must have {min}–{max}{source}: {todo}", offices_phrase(kind)),
            kind.is_subdistrict() || figure_inferred,
        );
    }
    let inferred = if kind.is_subdistrict() { " (a 街道's set is inferred, 推定值，未经核实)" } else { "" };
    for (office, name) in mandated_offices(kind, limits) {
        if !report.of_kind(InstitutionKind::PartyGovernmentOffice).any(|i| office.recognises(&i.name)) {
            report.add_resting(
                "offices.mandated",
                Severity::Warning,
                format!("no {name}{inferred}; set it up, or record the county's approved adjustment"),
                kind.is_subdistrict(),
            );
        }
    }

    let public = count_u32(report.of_kind(InstitutionKind::PublicInstitution).count());
    if public > limits.max_public_institutions {
        let figure_inferred =
            limit_is_inferred(policy, limits, "max_public_institutions", limits.max_public_institutions);
        report.add_count(
            "public_institutions.max",
            Severity::Error,
            public,
            0,
            format!(
                "{public} public institutions; {class_text} may have at most {}{}",
                limits.max_public_institutions,
                inferred_text(figure_inferred)
            ),
            figure_inferred,
        );
    }
    let mandated = mandated_public_institutions(kind);
    let which = if kind.is_subdistrict() { "a 街道 needs" } else { "the policy names" };
    for (unit, name) in &mandated {
        if !report.of_kind(InstitutionKind::PublicInstitution).any(|i| unit.recognises(&i.name)) {
            report.add_resting(
                "public_institutions.mandated",
                Severity::Warning,
                format!(
                    "no {name}, one of the {} directly-affiliated public institutions (直属事业单位) {which}{inferred}; \
                     set it up, or record the county's approved adjustment",
                    mandated.len()
                ),
                kind.is_subdistrict(),
            );
        }
    }

    let enforcement = count_u32(report.of_kind(InstitutionKind::LawEnforcementUnit).count());
    if enforcement > limits.max_law_enforcement_units {
        let figure_inferred =
            limit_is_inferred(policy, limits, "max_law_enforcement_units", limits.max_law_enforcement_units);
        report.add_count(
            "law_enforcement.max",
            Severity::Error,
            enforcement,
            0,
            format!(
                "{enforcement} law-enforcement units; at most {} allowed{}",
                limits.max_law_enforcement_units,
                inferred_text(figure_inferred)
            ),
            figure_inferred,
        );
    } else if enforcement == 0 {
        report.add(
            "law_enforcement.missing",
            Severity::Warning,
            "no comprehensive administrative law-enforcement brigade (综合行政执法大队)".to_owned(),
        );
    }
}

fn plaques(report: &mut Report, policy: &Policy) {
    let facts = report.facts;
    let institutions: HashMap<i64, &Institution> = facts.institutions.iter().map(|i| (i.id, i)).collect();
    // A plaque hangs on an institution in force; one of an ended institution is history, neither counted nor
    // judged.
    let hanging: Vec<(&Plaque, &Institution)> = facts
        .plaques
        .iter()
        .filter_map(|plaque| institutions.get(&plaque.institution_id).map(|institution| (plaque, *institution)))
        .collect();
    let count = count_u32(hanging.len());
    let max = policy.max_plaques_per_township;
    if count > max {
        let figure_inferred = policy.is_inferred("max_plaques_per_township");
        report.add_count(
            "plaques.max",
            Severity::Error,
            count,
            0,
            format!(
                "{count} plaques (加挂牌子) on institutions in force; at most {max} per township{}: remove {}",
                inferred_text(figure_inferred),
                count - max
            ),
            figure_inferred,
        );
    }
    // 党政机构和事业单位可加挂牌子 (section 三(一)): no other kind.
    for (plaque, institution) in &hanging {
        if !matches!(institution.kind, InstitutionKind::PartyGovernmentOffice | InstitutionKind::PublicInstitution) {
            let message = format!(
                "{}, a {}: only 党政机构 and 事业单位 may carry plaques (加挂牌子); remove it or hang it on one of them",
                report.plaque(plaque, institution),
                institution.kind.label_zh()
            );
            report.add("plaques.institution_kind", Severity::Error, message);
        }
    }
    for (plaque, institution) in &hanging {
        if plaque.approving_document.trim().is_empty() {
            let message = format!(
                "{} has no approving document (批准文号); a plaque is hung only when the work needs it and it is \
                 approved: record the document, or remove the plaque",
                report.plaque(plaque, institution)
            );
            report.add("plaques.approving_document_missing", Severity::Warning, message);
        }
    }
}

fn posts(report: &mut Report, policy: &Policy, limits: &ClassLimits, class_text: &str) {
    let kind = report.kind();
    let facts = report.facts;
    let posts = &facts.posts;
    let count = count_u32(posts.len());
    if count > limits.leadership_posts {
        let figure_inferred = limit_is_inferred(policy, limits, "leadership_posts", limits.leadership_posts);
        report.add_count(
            "posts.quota",
            Severity::Error,
            count,
            0,
            format!(
                "{count} leadership posts; {class_text} is allowed {}{}: remove {}",
                limits.leadership_posts,
                inferred_text(figure_inferred),
                count - limits.leadership_posts
            ),
            figure_inferred,
        );
    }
    for role in MandatedRole::ALL {
        let label = role.label_zh_for(kind);
        let filled = posts.iter().filter(|p| p.mandated_role == Some(role)).count();
        if filled == 0 {
            report.add("posts.mandated_role", Severity::Error, format!("no post is the {label}; designate one"));
        } else if filled > 1 {
            report.add(
                "posts.mandated_role",
                Severity::Error,
                format!("{filled} posts are marked {label}; the policy asks for exactly one"),
            );
        }
    }

    // 不担任政府正职的副书记: neither the post itself nor its holder may be the government head's.
    let head = head_phrase(kind);
    let deputy_label = MandatedRole::PartyBuildingDeputySecretary.label_zh_for(kind);
    for deputy in posts.iter().filter(|p| p.mandated_role == Some(MandatedRole::PartyBuildingDeputySecretary)) {
        let problem = if is_government_head(&deputy.role) {
            Some(format!(
                "post {} is marked the {deputy_label}, and its role is the {head}'s post: the party-building deputy \
                 secretary must not be the {head}; mark another deputy secretary's post",
                report.post(deputy)
            ))
        } else {
            let held_by = holder(deputy);
            posts
                .iter()
                .find(|p| p.id != deputy.id && held_by.is_some() && holder(p) == held_by && is_government_head(&p.role))
                .map(|head_post| {
                    format!(
                        "{} holds both the {deputy_label} post {} and the {head} post {}: the party-building deputy \
                         secretary must not be the {head}; give one of the posts another holder",
                        held_by.unwrap_or_default(),
                        report.post(deputy),
                        report.post(head_post)
                    )
                })
        };
        if let Some(message) = problem {
            report.add("posts.deputy_secretary_not_government_head", Severity::Error, message);
        }
    }

    // 配强纪委书记和组织委员，做到专职专岗: a holder of either holds no other post, and nobody holds two
    // mandated roles. Vacant posts have no holder to compare.
    let mut holders: Vec<(&str, Vec<&LeadershipPost>)> = Vec::new();
    for post in posts {
        let Some(name) = holder(post) else { continue };
        match holders.iter_mut().find(|(held_by, _)| *held_by == name) {
            Some((_, held)) => held.push(post),
            None => holders.push((name, vec![post])),
        }
    }
    for (name, held) in holders.iter().filter(|(_, held)| held.len() > 1) {
        let mandated: Vec<MandatedRole> = held.iter().filter_map(|p| p.mandated_role).collect();
        if !mandated.iter().any(|role| role.is_dedicated()) && mandated.len() < 2 {
            continue;
        }
        let roles: Vec<&str> = mandated.iter().map(|role| role.label_zh_for(kind)).collect();
        let listed: Vec<String> = held.iter().map(|p| report.post(p)).collect();
        let message = format!(
            "{name} holds {} posts, {}: the {} must be held by someone with no other post (专职专岗); give the \
             other posts other holders",
            held.len(),
            listed.join(", "),
            roles.join(" and the ")
        );
        report.add("posts.dedicated_role", Severity::Error, message);
    }
}

fn catalogue(report: &mut Report) {
    let facts = report.facts;
    let kind = facts.township.kind;
    for area in duty_areas_for(kind) {
        if !facts.catalogue.iter().any(|entry| entry.item.duty_area == *area) {
            report.add(
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
    // 完善乡镇(街道)权力清单、责任清单及其公共服务事项目录 (section 二): all three, for every township.
    for item_type in CatalogueItemType::ALL {
        if !facts.catalogue.iter().any(|entry| entry.item.item_type() == item_type) {
            report.add(
                "catalogue.list_missing",
                Severity::Warning,
                format!(
                    "the township's catalogue has no {} ({}) item; every township needs a 权力清单, a 责任清单 and a \
                     公共服务事项目录: add its items to the township's catalogue, or have the county add them to its \
                     template",
                    item_type.label_zh(),
                    item_type.as_str()
                ),
            );
        }
    }
    // 权责对应: each power comes with the responsibility for exercising it.
    for entry in facts.catalogue.iter().filter(|entry| entry.item.item_type() == CatalogueItemType::Power) {
        let code = entry.item.code.trim();
        let linked = facts.catalogue.iter().any(|other| {
            matches!(&other.item.details, ItemDetails::Responsibility { power_item_code: Some(linked), .. }
                if linked.trim() == code)
        });
        if !linked {
            report.add(
                "catalogue.power_without_responsibility",
                Severity::Warning,
                format!(
                    "{} is a power with no responsibility item linked to it (权责对应); add a responsibility item \
                     with power_item_code {code} to the township's catalogue, or have the county add one to its \
                     template",
                    describe_entry(entry)
                ),
            );
        }
    }
    for entry in &facts.catalogue {
        let item = &entry.item;
        let what = describe_entry(entry);
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
        report.add("catalogue.responsible_institution_missing", Severity::Error, problem);
    }
}

/// `inherited catalogue item GG-001 养老保险参保登记 (counties/430121/catalogueItems/3)`.
fn describe_entry(entry: &CatalogueEntry) -> String {
    let item = &entry.item;
    format!(
        "{}catalogue item {} {} ({})",
        if entry.inherited { "inherited " } else { "" },
        item.code,
        item.title,
        item.resource_name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalogue::{
        CatalogueEntry, CatalogueItem, CatalogueOwner, DutyArea, HandlingMode, ItemDetails, PowerCategory, PowerOrigin,
        SUBDISTRICT_DUTY_AREAS, TOWNSHIP_DUTY_AREAS,
    };
    use crate::domain::model::{
        ClassRecord, Institution, LeadershipPost, Plaque, StaffingFigure, StaffingType, Township, TownshipKind,
    };
    use crate::domain::names::TownshipCode;
    use township_policy::PerIndicator;

    fn code() -> TownshipCode {
        TownshipCode::parse("430102001").unwrap()
    }

    fn institution(id: i64, name: &str, kind: InstitutionKind) -> Institution {
        Institution {
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
        }
    }

    fn plaque(id: i64, institution_id: i64, approving_document: &str) -> Plaque {
        Plaque {
            id,
            institution_id,
            township: code(),
            name: format!("牌子{id}"),
            approving_document: approving_document.to_owned(),
            created_at: 0,
            revision: 1,
            updated_at: 0,
        }
    }

    fn post(id: i64, role: &str, holder: Option<&str>, mandated_role: Option<MandatedRole>) -> LeadershipPost {
        LeadershipPost {
            id,
            township: code(),
            role: role.to_owned(),
            holder: holder.map(str::to_owned),
            mandated_role,
            revision: 1,
            updated_at: 0,
        }
    }

    /// One item per duty area of `areas`, each the responsibility of institution 0 (党政办公室): the first a
    /// power, the second the responsibility linked to it, the rest public services.
    fn catalogue(areas: &[DutyArea], responsible: &Institution) -> Vec<CatalogueEntry> {
        areas
            .iter()
            .enumerate()
            .map(|(i, area)| {
                let details = match i {
                    0 => ItemDetails::Power {
                        category: PowerCategory::Inspection,
                        legal_basis: "《中国共产党支部工作条例(试行)》".to_owned(),
                        origin: PowerOrigin::Statutory,
                    },
                    1 => ItemDetails::Responsibility {
                        power_item_code: Some("GG-000".to_owned()),
                        duties: "负责检查".to_owned(),
                        accountability_cases: "未按规定检查的".to_owned(),
                    },
                    _ => ItemDetails::PublicService {
                        service_domain: "综合".to_owned(),
                        handling_mode: HandlingMode::Direct,
                    },
                };
                CatalogueEntry {
                    item: CatalogueItem {
                        id: i64::try_from(i).unwrap() + 1,
                        owner: CatalogueOwner::Township(code()),
                        code: format!("GG-{i:03}"),
                        title: format!("{}事项", area.label_zh()),
                        duty_area: *area,
                        responsible_institution_id: Some(responsible.id),
                        responsible_institution_title: responsible.name.clone(),
                        details,
                        created_at: 0,
                        revision: 1,
                        updated_at: 0,
                    },
                    inherited: false,
                    resolution: Resolution::Resolved(responsible.clone()),
                }
            })
            .collect()
    }

    /// A 街道 of `class` set up as the policy says: the five named offices, the two public institutions a
    /// 街道 needs, the brigade, the three mandated posts, and a catalogue covering its eight duty areas.
    fn facts(class: Option<u8>) -> TownshipFacts {
        let mut institutions: Vec<_> = NAMED_OFFICES
            .iter()
            .enumerate()
            .map(|(i, office)| {
                institution(i64::try_from(i).unwrap(), office.name, InstitutionKind::PartyGovernmentOffice)
            })
            .collect();
        institutions.push(institution(10, "综合行政执法大队", InstitutionKind::LawEnforcementUnit));
        institutions.push(institution(11, "社会事务综合服务中心(文化综合服务站)", InstitutionKind::PublicInstitution));
        institutions.push(institution(12, "政务(便民)服务中心", InstitutionKind::PublicInstitution));
        let catalogue = catalogue(&SUBDISTRICT_DUTY_AREAS, &institutions[0]);
        let posts = MandatedRole::ALL
            .iter()
            .enumerate()
            .map(|(i, role)| post(i64::try_from(i).unwrap(), role.label_zh(), None, Some(*role)))
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
            staffing: vec![],
            deviations: vec![],
        }
    }

    /// The county's deviation of `rule`: `allowed` for a count rule, else a waiver.
    fn county_deviation(rule: &str, allowed: Option<u32>) -> ApprovedDeviation {
        use crate::domain::deviations::DeviationScope;
        ApprovedDeviation {
            id: 1,
            scope: DeviationScope::County(code().county()),
            rule: rule.to_owned(),
            allowed,
            allowed_description: if allowed.is_none() { "由党政办公室兼管".to_owned() } else { String::new() },
            document_number: "长编发〔2025〕7号".to_owned(),
            approved_on: "2025-03-01".to_owned(),
            reason: "山区大镇，人口多".to_owned(),
            valid_to: None,
            created_by: "county".to_owned(),
            created_at: 0,
            revocation: None,
        }
    }

    fn with_offices(count: i64) -> TownshipFacts {
        let mut facts = town_facts(Some(1));
        for id in 5..count {
            facts.institutions.push(institution(200 + id, "专项工作办公室", InstitutionKind::PartyGovernmentOffice));
        }
        facts
    }

    /// The same set up for a 镇: the agriculture centre and a catalogue of the six township duty areas.
    fn town_facts(class: Option<u8>) -> TownshipFacts {
        let mut facts = facts(class);
        facts.township.name = "甲镇".to_owned();
        facts.township.kind = TownshipKind::Town;
        facts.institutions.push(institution(13, "农业综合服务中心", InstitutionKind::PublicInstitution));
        facts.catalogue = catalogue(&TOWNSHIP_DUTY_AREAS, &facts.institutions[0]);
        facts
    }

    /// A 镇 of `class` with `count` posts, the mandated ones among them.
    fn facts_with_posts(class: u8, count: i64) -> TownshipFacts {
        let mut facts = town_facts(Some(class));
        for id in 3..count {
            facts.posts.push(post(100 + id, "副镇长", None, None));
        }
        facts
    }

    fn rules(found: &[Finding]) -> Vec<&'static str> {
        found.iter().map(|f| f.rule).collect()
    }

    /// The findings of the rules whose id starts with `prefix`.
    fn found_of(facts: &TownshipFacts, prefix: &str) -> Vec<Finding> {
        findings(&Policy::builtin_default(), facts).into_iter().filter(|f| f.rule.starts_with(prefix)).collect()
    }

    fn without_office(facts: &mut TownshipFacts, fragment: &str) {
        facts.institutions.retain(|i| !(i.kind == InstitutionKind::PartyGovernmentOffice && i.name.contains(fragment)));
    }

    #[test]
    fn a_township_set_up_as_the_policy_says_has_no_findings() {
        for class in [None, Some(1), Some(2), Some(3)] {
            assert_eq!(findings(&Policy::builtin_default(), &facts(class)), [], "街道 of {class:?}");
            assert_eq!(findings(&Policy::builtin_default(), &town_facts(class)), [], "镇 of {class:?}");
        }
    }

    #[test]
    fn rule_posts_quota_after_a_downgrade_is_a_finding() {
        let mut facts = facts(Some(3));
        for id in 3..11 {
            facts.posts.push(post(id, "副主任", None, None));
        }
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["posts.quota"]);
        assert!(found[0].message.contains("11 leadership posts; class 3 is allowed 9"), "{}", found[0].message);
    }

    #[test]
    fn rule_public_institutions_max() {
        let mut facts = town_facts(Some(2));
        facts.institutions.push(institution(20, "文化站", InstitutionKind::PublicInstitution));
        let found = found_of(&facts, "public_institutions.");
        assert_eq!(rules(&found), ["public_institutions.max"]);
        assert!(found[0].message.contains("4 public institutions; class 2 may have at most 3"), "{}", found[0].message);
        assert!(!found[0].inferred, "3 is the document's figure");
    }

    #[test]
    fn rule_law_enforcement_max() {
        let mut facts = town_facts(Some(3));
        facts.institutions.push(institution(21, "第二执法中队", InstitutionKind::LawEnforcementUnit));
        let found = found_of(&facts, "law_enforcement.");
        assert_eq!(rules(&found), ["law_enforcement.max"]);
        assert!(found[0].message.contains("2 law-enforcement units; at most 1 allowed"), "{}", found[0].message);
    }

    #[test]
    fn rule_law_enforcement_missing() {
        let mut facts = town_facts(Some(1));
        facts.institutions.retain(|i| i.kind != InstitutionKind::LawEnforcementUnit);
        let found = found_of(&facts, "law_enforcement.");
        assert_eq!(rules(&found), ["law_enforcement.missing"]);
        assert!(found[0].message.contains("综合行政执法大队"), "{}", found[0].message);
    }

    #[test]
    fn rule_plaques_max_more_than_three_is_a_finding() {
        let mut facts = facts(Some(2));
        facts.plaques = (0..4).map(|id| plaque(id, 0, "长编办发〔2024〕1号")).collect();
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["plaques.max"]);
        assert!(found[0].message.contains("4 plaques (加挂牌子) on institutions in force; at most 3"));
    }

    #[test]
    fn rule_posts_mandated_role_missing_is_a_finding() {
        let mut facts = facts(Some(2));
        without_office(&mut facts, "社会治安");
        facts.posts.retain(|p| p.mandated_role != Some(MandatedRole::DisciplineInspectionSecretary));
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["offices.count", "offices.mandated", "posts.mandated_role"]);
        assert!(found[2].message.contains("专职纪工委书记"), "a 街道's words: {}", found[2].message);
    }

    #[test]
    fn rule_offices_mandated_by_class_and_kind() {
        // A small (class-3) township may fold 自然资源和生态环境办公室 into the economic office: 4 offices suffice.
        let mut small = town_facts(Some(3));
        without_office(&mut small, "自然资源");
        assert_eq!(found_of(&small, "offices."), []);
        // So may an unclassified one, as the write-time limits allow it the lowest minimum of any class.
        small.class = None;
        assert_eq!(found_of(&small, "offices."), []);

        // Class 1 and 2 keep all five named offices.
        let mut large = town_facts(Some(2));
        without_office(&mut large, "自然资源");
        let found = found_of(&large, "offices.");
        assert_eq!(rules(&found), ["offices.count", "offices.mandated"]);
        assert!(found[0].message.starts_with("4 party/government offices; class 2 must have 5–6: set up"));
        assert_eq!(
            found[1].message,
            "no 自然资源和生态环境办公室; set it up, or record the county's approved adjustment"
        );
        assert_eq!(found[1].severity, Severity::Warning);

        // A class-3 township can merge only the mergeable office; it keeps the others.
        let mut small = town_facts(Some(3));
        without_office(&mut small, "社会治安");
        let found = found_of(&small, "offices.");
        assert_eq!(rules(&found), ["offices.mandated"]);
        assert!(found[0].message.starts_with("no 社会治安和应急管理办公室;"), "{}", found[0].message);

        // A 街道 needs no 自然资源和生态环境办公室 and no agriculture office: a fifth office of its own is fine.
        let mut street = facts(Some(2));
        without_office(&mut street, "自然资源");
        street.institutions.push(institution(20, "城市管理办公室", InstitutionKind::PartyGovernmentOffice));
        assert_eq!(found_of(&street, "offices."), []);
        without_office(&mut street, "经济发展");
        let found = found_of(&street, "offices.");
        assert_eq!(rules(&found), ["offices.count", "offices.mandated"]);
        assert!(found[0].message.contains("offices of the 党工委 and 办事处 (派出机关)"), "{}", found[0].message);
        assert!(found[0].message.contains("the document gives a 街道 no figure"), "{}", found[0].message);
        assert!(found[1].message.starts_with("no 经济发展办公室 (a 街道's set is inferred, 推定值，未经核实);"));
    }

    #[test]
    fn rule_offices_mandated_recognises_usual_variants_of_the_names() {
        let mut facts = town_facts(Some(2));
        let renamed =
            ["党政综合办公室", "农业农村工作办公室", "卫生健康办公室", "经济发展和自然资源办公室", "应急管理办公室"];
        for (office, name) in facts.institutions.iter_mut().zip(renamed) {
            office.name = name.to_owned();
        }
        assert_eq!(found_of(&facts, "offices."), []);
        // 党建工作办公室 is no 党政办公室.
        facts.institutions[0].name = "党建工作办公室".to_owned();
        assert_eq!(rules(&found_of(&facts, "offices.")), ["offices.mandated"]);
    }

    #[test]
    fn rule_offices_count_follows_the_class_and_flags_a_streamlined_figure_as_inferred() {
        let mut facts = town_facts(Some(3));
        facts.institutions.push(institution(20, "党建工作办公室", InstitutionKind::PartyGovernmentOffice));
        let found = found_of(&facts, "offices.");
        assert_eq!(rules(&found), ["offices.count"]);
        let message = &found[0].message;
        assert!(message.starts_with("6 party/government offices; class 3 must have 4–5"), "{message}");
        assert!(message.contains("推定值，未经核实") && message.ends_with("merge or abolish offices"), "{message}");
        facts.class = None;
        assert_eq!(found_of(&facts, "offices."), [], "6 is the most any class allows");
    }

    #[test]
    fn rule_public_institutions_mandated() {
        let mut town = town_facts(Some(2));
        town.institutions.retain(|i| !i.name.starts_with("社会事务综合"));
        let found = found_of(&town, "public_institutions.");
        assert_eq!(rules(&found), ["public_institutions.mandated"]);
        assert_eq!(found[0].severity, Severity::Warning);
        let message = &found[0].message;
        assert!(
            message.starts_with("no 社会事务综合服务中心(文化综合服务站), one of the 3 directly-affiliated public institutions (直属事业单位) the policy names;"),
            "{message}"
        );
        assert!(!message.contains("推定值"), "the 乡镇 set is the document's: {message}");

        // Every missing one is named; a 党群服务中心 is none of them.
        town.institutions.retain(|i| i.kind != InstitutionKind::PublicInstitution);
        town.institutions.push(institution(20, "党群服务中心", InstitutionKind::PublicInstitution));
        assert_eq!(rules(&found_of(&town, "public_institutions.")), ["public_institutions.mandated"; 3]);

        // The bracketed and short forms count.
        for (i, name) in ["文化综合服务站", "农业农村综合服务中心", "政务（便民）服务中心"].into_iter().enumerate()
        {
            town.institutions.push(institution(
                21 + i64::try_from(i).unwrap(),
                name,
                InstitutionKind::PublicInstitution,
            ));
        }
        town.institutions.retain(|i| i.name != "党群服务中心");
        assert_eq!(found_of(&town, "public_institutions."), []);
        town.institutions.last_mut().unwrap().name = "便民服务中心".to_owned();
        assert_eq!(found_of(&town, "public_institutions."), []);
        // An office of the right name is not a public institution.
        town.institutions.last_mut().unwrap().kind = InstitutionKind::PartyGovernmentOffice;
        assert_eq!(rules(&found_of(&town, "public_institutions.")), ["public_institutions.mandated"]);

        // A 街道 needs no agriculture centre; its set is inferred and says so.
        let mut street = facts(Some(2));
        assert_eq!(found_of(&street, "public_institutions."), []);
        street.institutions.retain(|i| !i.name.starts_with("政务"));
        let found = found_of(&street, "public_institutions.");
        assert_eq!(rules(&found), ["public_institutions.mandated"]);
        let message = &found[0].message;
        assert!(message.contains("one of the 2 directly-affiliated public institutions (直属事业单位) a 街道 needs"));
        assert!(message.contains("推定值，未经核实"), "{message}");
    }

    #[test]
    fn rule_plaques_institution_kind() {
        let mut facts = facts(Some(2));
        // Offices and public institutions may carry plaques; the brigade (id 10) may not.
        facts.plaques = vec![plaque(1, 0, "文号1"), plaque(2, 11, "文号2"), plaque(3, 10, "文号3")];
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["plaques.institution_kind"]);
        assert_eq!(found[0].severity, Severity::Error);
        let message = &found[0].message;
        assert!(
            message.starts_with(
                "plaque 牌子3 (cities/4301/counties/430102/townships/430102001/institutions/10/plaques/3) on \
                 综合行政执法大队, a 综合行政执法机构: only 党政机构 and 事业单位"
            ),
            "{message}"
        );
    }

    #[test]
    fn rule_plaques_approving_document_missing() {
        let mut facts = facts(Some(2));
        facts.plaques = vec![plaque(1, 0, "长编办发〔2024〕1号"), plaque(2, 0, "  ")];
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["plaques.approving_document_missing"]);
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(found[0].message.contains("plaques/2) on 党政办公室 has no approving document (批准文号)"));
    }

    #[test]
    fn rule_plaques_max_counts_no_plaque_of_an_ended_institution() {
        let mut facts = facts(Some(2));
        // Institution 30 ended (valid_to in the past): the store leaves it out of the institutions in force,
        // and its plaques (one with no document) raise nothing and leave room for three in force.
        facts.plaques = (0..3).map(|id| plaque(id, 0, "文号")).collect();
        facts.plaques.extend([plaque(7, 30, ""), plaque(8, 30, "文号")]);
        assert_eq!(findings(&Policy::builtin_default(), &facts), []);
        facts.plaques.push(plaque(9, 11, "文号"));
        assert_eq!(rules(&findings(&Policy::builtin_default(), &facts)), ["plaques.max"]);
    }

    #[test]
    fn government_head_is_recognised_from_the_role_text() {
        for head in [
            "镇长",
            "乡长",
            "街道办事处主任",
            "办事处主任",
            "党委副书记、镇长",
            "代镇长",
            "甲镇人民政府镇长",
            "镇长（兼）",
            "党委副书记 乡长",
        ] {
            assert!(is_government_head(head), "{head}");
        }
        for other in [
            "副镇长",
            "副镇长（副主任）",
            "办事处副主任",
            "常务副乡长",
            "镇长助理",
            "党委副书记（抓党建）",
            "人大主席",
            "人大工委主任",
            "武装部长",
            "",
        ] {
            assert!(!is_government_head(other), "{other}");
        }
    }

    #[test]
    fn rule_posts_deputy_secretary_not_government_head() {
        let mut town = town_facts(Some(2));
        town.posts.push(post(5, "镇长", Some(" 李四 "), None));
        town.posts.push(post(6, "副镇长", Some("王五"), None));
        // The deputy secretary held by the 镇长's holder (names compared trimmed).
        town.posts[0].holder = Some("李四".to_owned());
        let found = findings(&Policy::builtin_default(), &town);
        assert_eq!(rules(&found), ["posts.deputy_secretary_not_government_head"]);
        assert_eq!(found[0].severity, Severity::Error);
        let message = &found[0].message;
        assert!(message.starts_with("李四 holds both the 不担任政府正职的党委副书记 post"), "{message}");
        assert!(message.contains("and the 镇长 post 镇长 (cities/4301/counties/430102/townships/430102001/posts/5)"));
        // Held by a deputy 镇长 instead: fine.
        town.posts[0].holder = Some("王五".to_owned());
        assert_eq!(findings(&Policy::builtin_default(), &town), []);
        // The post itself is the head's.
        town.posts[0].holder = None;
        town.posts[0].role = "党委副书记、镇长".to_owned();
        let found = findings(&Policy::builtin_default(), &town);
        assert_eq!(rules(&found), ["posts.deputy_secretary_not_government_head"]);
        assert!(found[0].message.contains("and its role is the 镇长's post"), "{}", found[0].message);

        // A 街道 in its own words: the 党工委's deputy secretary and the 办事处's head.
        let mut street = facts(Some(2));
        street.posts[0].role = "党工委副书记、街道办事处主任".to_owned();
        let found = findings(&Policy::builtin_default(), &street);
        assert_eq!(rules(&found), ["posts.deputy_secretary_not_government_head"]);
        let message = &found[0].message;
        assert!(message.contains("marked the 不担任办事处主任的党工委副书记"), "{message}");
        assert!(message.contains("办事处主任 (head of the 办事处, 派出机关)"), "{message}");
    }

    #[test]
    fn rule_posts_dedicated_role() {
        let mut town = town_facts(Some(2));
        town.posts.push(post(5, "宣传委员", Some("赵六"), None));
        town.posts.push(post(6, "人大主席", Some("孙七"), None));
        town.posts.push(post(7, "武装部长", Some("孙七"), None));
        // Two posts without a dedicated role, vacant posts: fine.
        assert_eq!(findings(&Policy::builtin_default(), &town), []);

        // The 纪委书记 also holds another post.
        town.posts[1].holder = Some("赵六 ".to_owned());
        let found = findings(&Policy::builtin_default(), &town);
        assert_eq!(rules(&found), ["posts.dedicated_role"]);
        assert_eq!(found[0].severity, Severity::Error);
        let message = &found[0].message;
        assert!(message.starts_with("赵六 holds 2 posts, 专职纪委书记 ("), "{message}");
        assert!(
            message.contains("the 专职纪委书记 must be held by someone with no other post (专职专岗)"),
            "{message}"
        );

        // One holder of two mandated roles, the deputy secretary's and the 组织委员's.
        town.posts[1].holder = None;
        town.posts[0].holder = Some("周八".to_owned());
        town.posts[2].holder = Some("周八".to_owned());
        let found = findings(&Policy::builtin_default(), &town);
        assert_eq!(rules(&found), ["posts.dedicated_role"]);
        assert!(found[0].message.contains("the 不担任政府正职的党委副书记 and the 专职组织委员 must be held"));

        // The deputy secretary may hold another post that is not the head's.
        town.posts[2].holder = None;
        town.posts[5].holder = Some("周八".to_owned());
        assert_eq!(findings(&Policy::builtin_default(), &town), []);
    }

    #[test]
    fn rule_catalogue_duty_area_uncovered() {
        let mut facts = facts(Some(2));
        facts.catalogue.retain(|e| e.item.duty_area != DutyArea::MaintainPublicSafety);
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["catalogue.duty_area_uncovered"]);
        assert_eq!(found[0].severity, Severity::Warning);
        assert!(found[0].message.contains("维护公共安全 (maintain_public_safety)"), "{}", found[0].message);
        assert!(found[0].message.contains("add a power, responsibility or public service item"));

        // A town carries the six township areas: the sub-district catalogue covers only party building.
        facts.township.kind = TownshipKind::Town;
        facts.institutions.push(institution(13, "农业综合服务中心", InstitutionKind::PublicInstitution));
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["catalogue.duty_area_uncovered"; 5]);
        assert!(found[0].message.contains("促进经济发展"), "{}", found[0].message);
        facts.catalogue.clear();
        let found = findings(&Policy::builtin_default(), &facts);
        assert!(found[0].message.contains("加强基层党建"), "party building in a town's words: {}", found[0].message);
    }

    #[test]
    fn rule_catalogue_list_missing() {
        let mut facts = facts(Some(2));
        facts.catalogue.retain(|e| e.item.item_type() != CatalogueItemType::Responsibility);
        facts.catalogue.retain(|e| e.item.item_type() != CatalogueItemType::Power);
        let found = findings(&Policy::builtin_default(), &facts);
        // The power and responsibility items covered party building and serving economic development.
        assert_eq!(
            rules(&found),
            [
                "catalogue.duty_area_uncovered",
                "catalogue.duty_area_uncovered",
                "catalogue.list_missing",
                "catalogue.list_missing"
            ]
        );
        assert!(found[2..].iter().all(|f| f.severity == Severity::Warning));
        assert!(found[2].message.starts_with("the township's catalogue has no 权力清单 (power) item;"));
        assert!(found[3].message.starts_with("the township's catalogue has no 责任清单 (responsibility) item;"));
        facts.catalogue.clear();
        let found = found_of(&facts, "catalogue.list_missing");
        assert_eq!(found.len(), 3);
        assert!(found[2].message.contains("公共服务事项目录 (public_service)"), "{}", found[2].message);
    }

    #[test]
    fn rule_catalogue_power_without_responsibility() {
        let mut facts = facts(Some(2));
        // The responsibility names another power: GG-000 is left without one.
        let ItemDetails::Responsibility { power_item_code, .. } = &mut facts.catalogue[1].item.details else {
            panic!("item 1 is the responsibility")
        };
        *power_item_code = Some("QL-999".to_owned());
        facts.catalogue[0].inherited = true;
        let found = findings(&Policy::builtin_default(), &facts);
        assert_eq!(rules(&found), ["catalogue.power_without_responsibility"]);
        assert_eq!(found[0].severity, Severity::Warning);
        let message = &found[0].message;
        assert!(message.starts_with("inherited catalogue item GG-000 加强党的建设事项 ("), "{message}");
        assert!(message.contains("no responsibility item linked to it (权责对应)"), "{message}");
        assert!(message.contains("with power_item_code GG-000"), "{message}");
        // A standalone responsibility links no power either.
        let ItemDetails::Responsibility { power_item_code, .. } = &mut facts.catalogue[1].item.details else {
            unreachable!()
        };
        *power_item_code = None;
        assert_eq!(rules(&findings(&Policy::builtin_default(), &facts)), ["catalogue.power_without_responsibility"]);
    }

    #[test]
    fn rule_catalogue_responsible_institution_missing() {
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

    fn figure(institution_id: i64, staffing_type: StaffingType, approved: i64, actual: Option<u32>) -> StaffingFigure {
        StaffingFigure { institution_id, staffing_type, approved, actual }
    }

    #[test]
    fn rule_staffing_township_over_norm() {
        let policy = Policy::builtin_default();
        // Class 2's inferred norms are 32 行政编制 and 40 事业编制: at the norm nothing is flagged.
        let mut facts = town_facts(Some(2));
        facts.staffing = vec![
            figure(0, StaffingType::Administrative, 20, None),
            figure(1, StaffingType::Administrative, 12, None),
            figure(11, StaffingType::PublicInstitution, 40, None),
        ];
        assert_eq!(findings(&policy, &facts), []);
        facts.staffing.push(figure(2, StaffingType::Administrative, 3, None));
        let found = found_of(&facts, "staffing.");
        assert_eq!(rules(&found), ["staffing.township_over_norm"]);
        assert!(found[0].message.contains("35 行政编制 approved"), "{}", found[0].message);
        assert!(
            found[0].message.contains("class 2's norm is 32 (the policy's figure, 推定值，未经核实)"),
            "{}",
            found[0].message
        );
        assert!(found[0].inferred, "the norm is an inferred figure");
        // An ended institution's approvals are history: they do not count.
        facts.institutions.retain(|i| i.id != 2);
        assert_eq!(found_of(&facts, "staffing."), []);
        // A class-3 township's norm is smaller; a policy without norms checks nothing.
        let mut small = town_facts(Some(3));
        small.staffing = vec![figure(0, StaffingType::Administrative, 32, None)];
        assert_eq!(rules(&found_of(&small, "staffing.")), ["staffing.township_over_norm"]);
        let mut without_norms = policy.clone();
        for limits in &mut without_norms.class_limits {
            limits.administrative_staff = None;
        }
        assert_eq!(findings(&without_norms, &small), []);
    }

    #[test]
    fn rule_staffing_institution_over_approved() {
        let mut facts = town_facts(Some(1));
        facts.staffing = vec![
            figure(0, StaffingType::Administrative, 8, Some(8)),
            figure(11, StaffingType::PublicInstitution, 10, Some(12)),
            // Staff on a type with no approval at all are all over it.
            figure(11, StaffingType::Administrative, 0, Some(1)),
        ];
        let found = found_of(&facts, "staffing.");
        assert_eq!(rules(&found), ["staffing.institution_over_approved", "staffing.institution_over_approved"]);
        assert!(
            found[0].message.contains("has 12 staff on 事业编制 but 10 approved (超编 by 2)"),
            "{}",
            found[0].message
        );
        assert!(found[0].message.contains("/institutions/11"), "{}", found[0].message);
        assert!(found[1].message.contains("1 staff on 行政编制 but 0 approved"), "{}", found[1].message);
        // Headcounts of an ended institution are not judged.
        facts.institutions.retain(|i| i.id != 11);
        assert_eq!(found_of(&facts, "staffing."), []);
    }

    #[test]
    fn unclassified_townships_get_the_most_permissive_limits() {
        let limits = limits_for(&Policy::builtin_default(), None);
        assert_eq!(limits.leadership_posts, 13);
        assert_eq!(limits.max_party_government_offices, 6);
        assert_eq!(limits.min_party_government_offices, 4);
    }

    /// What the write-time limits accept compliance does not flag as over the limit, and one more is both
    /// refused and flagged: for every class, unclassified included, and every kind of institution.
    #[test]
    fn approved_deviation_turns_a_finding_into_an_approved_exception() {
        let policy = Policy::builtin_default();
        let mut facts = with_offices(7);
        assert_eq!(rules(&findings(&policy, &facts)), ["offices.count"]);
        assert!(!findings(&policy, &facts)[0].is_approved_exception());
        facts.deviations.push(county_deviation("offices.count", Some(7)));
        let found = findings(&policy, &facts);
        assert_eq!(rules(&found), ["offices.count"], "the exception stays in the report");
        assert!(found[0].is_approved_exception());
        let note = found[0].deviation.as_ref().unwrap();
        assert_eq!(
            (note.document_number.as_str(), note.approved_on.as_str(), note.allowed),
            ("长编发〔2025〕7号", "2025-03-01", Some(7))
        );
        assert_eq!(note.deviation, "cities/4301/counties/430102/approvedDeviations/1");
        assert!(found[0].message.contains("approved exception: 长编发〔2025〕7号"), "{}", found[0].message);
        assert_eq!(found[0].severity, Severity::Error, "the severity stays visible");

        // A waived rule: every finding of it in the county's townships is approved, others are not.
        let mut facts = town_facts(Some(2));
        without_office(&mut facts, "社会治安");
        facts.posts.retain(|p| p.mandated_role != Some(MandatedRole::DisciplineInspectionSecretary));
        facts.deviations.push(county_deviation("offices.mandated", None));
        let found = findings(&policy, &facts);
        let approved: Vec<_> = found.iter().map(|f| (f.rule, f.is_approved_exception())).collect();
        assert_eq!(approved, [("offices.count", false), ("offices.mandated", true), ("posts.mandated_role", false)]);
        assert!(found[1].message.contains("由党政办公室兼管"), "{}", found[1].message);
    }

    #[test]
    fn a_count_above_the_allowed_figure_stays_a_finding() {
        let policy = Policy::builtin_default();
        let mut facts = with_offices(8);
        facts.deviations.push(county_deviation("offices.count", Some(7)));
        let found = findings(&policy, &facts);
        assert_eq!(rules(&found), ["offices.count"]);
        assert!(!found[0].is_approved_exception());
        assert_eq!(found[0].deviation.as_ref().map(|note| (note.allowed, note.approved)), Some((Some(7), false)));
        assert!(
            found[0].message.contains("outside even the 7 the approved deviation 长编发〔2025〕7号"),
            "{}",
            found[0].message
        );
        // A deviation of another township, or of another rule, changes nothing.
        let mut other = county_deviation("offices.count", Some(8));
        other.scope = crate::domain::deviations::DeviationScope::Township(TownshipCode::parse("430102002").unwrap());
        facts.deviations = vec![other, county_deviation("posts.quota", Some(12))];
        assert_eq!(findings(&policy, &facts)[0].deviation, None);
    }

    #[test]
    fn every_rule_id_is_listed_once() {
        let mut ids = RULE_IDS.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULE_IDS.len());
        for rule in crate::domain::deviations::COUNT_RULES {
            assert!(RULE_IDS.contains(&rule), "{rule}");
        }
    }

    #[test]
    fn the_write_time_limits_and_the_findings_agree() {
        let policy = Policy::builtin_default();
        let over_limit =
            ["offices.count", "public_institutions.max", "law_enforcement.max", "plaques.max", "posts.quota"];
        let kinds = [
            (InstitutionKind::PartyGovernmentOffice, "offices.count"),
            (InstitutionKind::PublicInstitution, "public_institutions.max"),
            (InstitutionKind::LawEnforcementUnit, "law_enforcement.max"),
        ];
        for class in [None, Some(1), Some(2), Some(3)] {
            for (kind, rule) in kinds {
                let limit = i64::from(institution_limit(&policy, class, kind));
                let mut facts = town_facts(class);
                let existing = facts.institutions.iter().filter(|i| i.kind == kind).count();
                let existing = i64::try_from(existing).unwrap();
                for id in existing..limit {
                    facts.institutions.push(institution(100 + id, "办公室", kind));
                }
                let flagged = |facts: &TownshipFacts| {
                    findings(&policy, facts)
                        .into_iter()
                        .map(|f| f.rule)
                        .filter(|r| over_limit.contains(r))
                        .collect::<Vec<_>>()
                };
                assert_eq!(flagged(&facts), Vec::<&str>::new(), "{class:?} {kind:?} at its limit {limit}");
                facts.institutions.push(institution(99, "办公室", kind));
                assert_eq!(flagged(&facts), [rule], "{class:?} {kind:?} over its limit {limit}");
            }
            let mut facts = town_facts(class);
            let plaques = i64::from(policy.max_plaques_per_township);
            facts.plaques = (0..plaques).map(|id| plaque(id, 0, "文号")).collect();
            assert_eq!(findings(&policy, &facts), []);
            facts.plaques.push(plaque(plaques, 0, "文号"));
            assert_eq!(rules(&findings(&policy, &facts)), ["plaques.max"]);

            let mut facts = town_facts(class);
            let quota = i64::from(limits_for(&policy, class).leadership_posts);
            for id in 3..quota {
                facts.posts.push(post(id, "副镇长", None, None));
            }
            assert_eq!(findings(&policy, &facts), []);
            facts.posts.push(post(quota, "副镇长", None, None));
            assert_eq!(rules(&findings(&policy, &facts)), ["posts.quota"]);
        }
    }

    #[test]
    fn rule_policy_city_deviation() {
        let mut policy = Policy::builtin_default();
        assert_eq!(city_policy_departures(&policy), Vec::<String>::new());
        policy.weights = township_policy::PerIndicator { population: 50.0, fiscal_revenue: 30.0, land_area: 20.0 };
        assert_eq!(city_policy_departures(&policy), Vec::<String>::new(), "the same ratio");
        policy.class_limits[0].leadership_posts = 15;
        policy.score_thresholds.class1_min_score = 130.0;
        assert_eq!(city_policy_departures(&policy), Vec::<String>::new(), "inferred figures are the city's to set");

        policy.weights.land_area = 30.0;
        policy.class_limits[1].leadership_posts = 12;
        policy.max_plaques_per_township = 4;
        let departures = city_policy_departures(&policy);
        assert_eq!(
            departures,
            [
                "weights 50 : 30 : 30 (the document: 5 : 3 : 2)",
                "class 2: 12 leadership posts (the document: 11)",
                "4 plaques per township (the document: at most 3)",
            ]
        );
        let finding = city_deviation_finding("cities/4301", &departures, "长编办发〔2024〕12号");
        assert_eq!(
            (finding.rule, finding.resource.as_str(), finding.township.as_str()),
            ("policy.city_deviation", "cities/4301", "")
        );
        assert!(
            finding.message.contains("长编办发〔2024〕12号") && finding.message.contains("class 2: 12"),
            "{}",
            finding.message
        );
    }

    #[test]
    fn a_finding_resting_on_an_inferred_figure_says_so_and_is_marked() {
        let policy = Policy::builtin_default();
        let mut facts = facts_with_posts(1, 14);
        let found: Vec<_> = findings(&policy, &facts).into_iter().filter(|f| f.rule == "posts.quota").collect();
        assert!(found[0].inferred && found[0].message.contains(INFERRED), "class 1's 13: {:?}", found[0]);
        facts = facts_with_posts(2, 12);
        let found: Vec<_> = findings(&policy, &facts).into_iter().filter(|f| f.rule == "posts.quota").collect();
        assert!(!found[0].inferred && !found[0].message.contains(INFERRED), "class 2's 11: {:?}", found[0]);
        // A city that sets class 1's figure makes it its own.
        let mut own = policy.clone();
        own.figure_provenance.retain(|entry| entry.field != "class_limits[class=1].leadership_posts");
        let found: Vec<_> =
            findings(&own, &facts_with_posts(1, 14)).into_iter().filter(|f| f.rule == "posts.quota").collect();
        assert!(!found[0].inferred, "{:?}", found[0]);
    }
}
