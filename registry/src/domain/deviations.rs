//! Approved deviations (issue 11 §2: 各县市区可以结合实际调整优化机构设置): a county's decision, with its 文号, that
//! one of the policy's rules applies differently to the county's townships or to one township. For a count rule it
//! is a figure (7 offices); for any other rule, a waiver with a description of what is done instead.
//!
//! A deviation permits, never restricts: a count rule's figure counts only where it exceeds the policy's. A
//! finding the deviation covers stays in the report as an approved exception; a count above even the approved
//! figure stays an ordinary finding that names it. A deviation is never deleted: a revocation keeps it with the
//! revocation's 文号.

use serde::{Deserialize, Serialize};

use super::model::TimestampMs;
use super::names::{CountyCode, TownshipCode, county_name, township_name};

/// The rules whose deviation is a figure (`allowed`) rather than a waiver.
pub const COUNT_RULES: [&str; 5] =
    ["offices.count", "public_institutions.max", "law_enforcement.max", "plaques.max", "posts.quota"];

/// Rules no county can waive: `policy.city_deviation` reports the city's own departure from the document, which
/// only the city's document (the policy's `document_number`) answers for.
pub const NOT_DEVIABLE: [&str; 1] = ["policy.city_deviation"];

pub fn is_count_rule(rule: &str) -> bool {
    COUNT_RULES.contains(&rule)
}

/// The collection under a county or township: `{parent}/approvedDeviations/{id}`.
pub const COLLECTION: &str = "approvedDeviations";

/// What a deviation applies to: every township of a county, or one township.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviationScope {
    County(CountyCode),
    Township(TownshipCode),
}

impl DeviationScope {
    pub fn county(&self) -> CountyCode {
        match self {
            DeviationScope::County(county) => county.clone(),
            DeviationScope::Township(township) => township.county(),
        }
    }

    pub fn township(&self) -> Option<&TownshipCode> {
        match self {
            DeviationScope::County(_) => None,
            DeviationScope::Township(township) => Some(township),
        }
    }

    /// The parent's resource name.
    pub fn name(&self) -> String {
        match self {
            DeviationScope::County(county) => county_name(county),
            DeviationScope::Township(township) => township_name(township),
        }
    }

    /// Whether the deviation applies to `township`.
    pub fn covers(&self, township: &TownshipCode) -> bool {
        match self {
            DeviationScope::County(county) => township.county() == *county,
            DeviationScope::Township(own) => own == township,
        }
    }
}

/// A deviation as a county records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewApprovedDeviation {
    pub scope: DeviationScope,
    /// One of [`super::rules::RULE_IDS`].
    pub rule: String,
    /// For a count rule ([`COUNT_RULES`]): the approved figure; None for a waived rule.
    pub allowed: Option<u32>,
    /// What is approved instead: required for a waived rule, optional for a count rule.
    pub allowed_description: String,
    /// The approving document (文号).
    pub document_number: String,
    /// The date of approval (ISO date, YYYY-MM-DD); it applies from that day.
    pub approved_on: String,
    pub reason: String,
    /// The last day it applies (ISO date), if limited.
    pub valid_to: Option<String>,
}

/// The end of a deviation, by another document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviationRevocation {
    /// The revoking document (文号).
    pub document_number: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub document_number: String,
    pub reason: String,
    pub revoked_by: String,
    pub revoked_at: TimestampMs,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovedDeviation {
    pub id: i64,
    pub scope: DeviationScope,
    pub rule: String,
    pub allowed: Option<u32>,
    pub allowed_description: String,
    pub document_number: String,
    pub approved_on: String,
    pub reason: String,
    pub valid_to: Option<String>,
    pub created_by: String,
    pub created_at: TimestampMs,
    pub revocation: Option<Revocation>,
}

impl ApprovedDeviation {
    /// `{county or township}/approvedDeviations/{id}`.
    pub fn name(&self) -> String {
        deviation_name(&self.scope, self.id)
    }

    /// Not revoked, approved on or before `today` and not expired (ISO dates).
    pub fn in_force(&self, today: &str) -> bool {
        self.revocation.is_none()
            && self.approved_on.as_str() <= today
            && self.valid_to.as_deref().is_none_or(|to| to >= today)
    }

    /// `长编发〔2025〕3号 of 2025-03-01 (cities/4301/counties/430102/approvedDeviations/1)`.
    pub fn cited(&self) -> String {
        format!("{} of {} ({})", self.document_number, self.approved_on, self.name())
    }
}

pub fn deviation_name(scope: &DeviationScope, id: i64) -> String {
    format!("{}/{COLLECTION}/{id}", scope.name())
}

/// The deviation of `rule` that applies to `township` among `deviations` (those in force): the township's own
/// over its county's. A county has at most one deviation of a rule in force per parent (the store keeps it so).
pub fn covering<'a>(
    deviations: &'a [ApprovedDeviation],
    township: &TownshipCode,
    rule: &str,
) -> Option<&'a ApprovedDeviation> {
    let applicable = || deviations.iter().filter(|d| d.rule == rule && d.scope.covers(township));
    applicable().find(|d| d.scope.township().is_some()).or_else(|| applicable().next())
}

/// The limit a write obeys: the policy's figure, or the deviation's where it is higher (then named in refusals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub max: u32,
    /// The deviation whose figure `max` is.
    pub by: Option<ApprovedDeviation>,
    /// The policy's figure is inferred (推定值，未经核实), not read from the document; refusals say so.
    pub inferred: bool,
}

impl Limit {
    pub fn new(policy_max: u32, deviation: Option<&ApprovedDeviation>) -> Self {
        match deviation.and_then(|d| d.allowed.map(|allowed| (d, allowed))) {
            Some((deviation, allowed)) if allowed > policy_max => {
                Limit { max: allowed, by: Some(deviation.clone()), inferred: false }
            }
            _ => Limit { max: policy_max, by: None, inferred: false },
        }
    }

    /// The policy's figure marked inferred when `inferred` (a deviation's figure is the county's, never inferred).
    pub fn inferred_if(mut self, inferred: bool) -> Self {
        self.inferred = self.by.is_none() && inferred;
        self
    }

    /// What a refusal adds to say where the figure comes from; None when it is the policy's, read from the
    /// document.
    pub fn note(&self) -> Option<String> {
        match &self.by {
            Some(deviation) => {
                Some(format!(" (the figure {} is the county's approved deviation {})", self.max, deviation.cited()))
            }
            None if self.inferred => Some(super::rules::INFERRED_FIGURE.to_owned()),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deviation(id: i64, scope: DeviationScope, allowed: u32) -> ApprovedDeviation {
        ApprovedDeviation {
            id,
            scope,
            rule: "offices.count".into(),
            allowed: Some(allowed),
            allowed_description: String::new(),
            document_number: format!("长编发〔2025〕{id}号"),
            approved_on: "2025-03-01".into(),
            reason: "山区大镇".into(),
            valid_to: None,
            created_by: "county".into(),
            created_at: 0,
            revocation: None,
        }
    }

    #[test]
    fn a_townships_own_deviation_takes_precedence_over_its_countys() {
        let township = TownshipCode::parse("430102001").unwrap();
        let county = DeviationScope::County(township.county());
        let own = DeviationScope::Township(township.clone());
        let deviations = [deviation(1, county.clone(), 7), deviation(2, own, 8)];
        assert_eq!(covering(&deviations, &township, "offices.count").map(|d| d.id), Some(2));
        assert_eq!(covering(&deviations[..1], &township, "offices.count").map(|d| d.id), Some(1));
        assert!(covering(&deviations, &township, "plaques.max").is_none());
        let elsewhere = TownshipCode::parse("430103001").unwrap();
        assert!(covering(&deviations, &elsewhere, "offices.count").is_none());
    }

    #[test]
    fn a_deviation_applies_from_its_approval_until_revoked_or_expired() {
        let mut d = deviation(1, DeviationScope::County(CountyCode::parse("430102").unwrap()), 7);
        assert!(!d.in_force("2025-02-28"));
        assert!(d.in_force("2025-03-01"));
        d.valid_to = Some("2025-12-31".into());
        assert!(d.in_force("2025-12-31") && !d.in_force("2026-01-01"));
        d.revocation = Some(Revocation {
            document_number: "长编发〔2025〕9号".into(),
            reason: "调整完毕".into(),
            revoked_by: "county".into(),
            revoked_at: 0,
        });
        assert!(!d.in_force("2025-06-01"));
    }

    #[test]
    fn a_deviation_only_raises_a_limit() {
        let d = deviation(1, DeviationScope::County(CountyCode::parse("430102").unwrap()), 7);
        let raised = Limit::new(6, Some(&d));
        assert_eq!(raised.max, 7);
        assert!(raised.note().unwrap().contains("长编发〔2025〕1号"), "{:?}", raised.note());
        assert_eq!(Limit::new(8, Some(&d)), Limit { max: 8, by: None, inferred: false });
        assert_eq!(Limit::new(6, None).note(), None);
        let inferred = Limit::new(13, None).inferred_if(true);
        assert!(inferred.note().is_some_and(|note| note.contains("推定值，未经核实")), "{inferred:?}");
        assert!(!Limit::new(6, Some(&d)).inferred_if(true).inferred, "the county's figure is not inferred");
    }
}
