use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{FieldViolation, Indicator, PerIndicator};

/// The default policy shipped with the service (DESIGN.md §3), embedded so the binary runs anywhere.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../policies/default.toml");

/// Largest weight accepted: weights are relative, so any ratio fits, and the score stays finite.
pub const MAX_WEIGHT: f64 = 1e6;

/// A township class: 1 (largest), 2 or 3.
pub type TownshipClass = u8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Normalization {
    /// `x / mean × 100`.
    MeanIndex,
    /// `x / max × 100`.
    MaxIndex,
    /// `(x − min) / (max − min) × 100`.
    MinMax,
    /// Percentile rank in the cohort, 0–100, ties sharing the average rank.
    PercentileRank,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BandingMethod {
    ScoreThresholds,
    RankQuota,
    AbsoluteBands,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreThresholds {
    pub class1_min_score: f64,
    pub class2_min_score: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankQuota {
    pub class1_share: f64,
    pub class2_share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsoluteBands {
    pub class1_minimum: PerIndicator<f64>,
    pub class2_minimum: PerIndicator<f64>,
    pub indicators_required: u32,
}

/// Optional upper bound per index.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexCaps {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fiscal_revenue: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub land_area: Option<f64>,
}

impl IndexCaps {
    pub fn get(&self, indicator: Indicator) -> Option<f64> {
        match indicator {
            Indicator::Population => self.population,
            Indicator::FiscalRevenue => self.fiscal_revenue,
            Indicator::LandArea => self.land_area,
        }
    }
}

/// What the policy allows a township of one class; enforced by the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassLimits {
    pub township_class: TownshipClass,
    pub leadership_posts: u32,
    pub leadership_posts_verified: bool,
    pub min_party_government_offices: u32,
    pub max_party_government_offices: u32,
    pub max_public_institutions: u32,
    pub max_law_enforcement_units: u32,
    /// Staffing norm (编制) per township of the class: 行政编制 across its party/government bodies and offices.
    /// None: the policy sets no norm and nothing is checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub administrative_staff: Option<u32>,
    /// Staffing norm per township of the class: 事业编制 across its public institutions and law-enforcement unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_institution_staff: Option<u32>,
}

/// A classification policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    pub version: String,
    pub normalization: Normalization,
    pub banding: BandingMethod,
    pub max_plaques_per_township: u32,
    pub weights: PerIndicator<f64>,
    #[serde(default)]
    pub index_caps: IndexCaps,
    pub score_thresholds: ScoreThresholds,
    pub rank_quota: RankQuota,
    pub absolute_bands: AbsoluteBands,
    pub class_limits: Vec<ClassLimits>,
    /// Where figures came from (see [`FigureProvenance`]); those listed unverified are inferred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figure_provenance: Vec<FigureProvenance>,
}

/// The provenance of one figure of a policy, by its path (`score_thresholds.class1_min_score`,
/// `class_limits[class=1].leadership_posts`, or a section such as `absolute_bands`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureProvenance {
    pub field: String,
    /// False: inferred (推定值，未经核实), not read from the policy document.
    pub verified: bool,
    pub note: String,
}

/// A policy document that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("the policy is not valid TOML of the expected shape: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("the policy breaks {} rule(s): {}", .0.len(), join(.0))]
    Invalid(Vec<FieldViolation>),
}

fn join(violations: &[FieldViolation]) -> String {
    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl Policy {
    /// The policy shipped in `policies/default.toml`.
    pub fn builtin_default() -> Self {
        Self::from_toml(DEFAULT_POLICY_TOML).expect("the embedded default policy is valid (checked by a unit test)")
    }

    /// Parses and validates a policy document.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let mut policy: Policy = toml::from_str(text)?;
        policy.reconcile_leadership_posts_verified();
        let violations = policy.violations();
        if violations.is_empty() { Ok(policy) } else { Err(PolicyError::Invalid(violations)) }
    }

    /// The TOML form, as stored and shipped.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("a policy always serialises to TOML")
    }

    /// `sha256:` and the hex digest of the policy's canonical JSON form (fields in declaration order).
    /// Two policies with equal values have equal fingerprints, whatever document they came from.
    /// The provenance list is left out: it says where figures came from, not what they are, so a policy stored
    /// before the list existed keeps its fingerprint.
    pub fn fingerprint(&self) -> String {
        let figures = Policy { figure_provenance: Vec::new(), ..self.clone() };
        let canonical = serde_json::to_vec(&figures).expect("a policy always serialises to JSON");
        format!("sha256:{}", hex::encode(Sha256::digest(canonical)))
    }

    /// The limits of `class`, if the policy has them.
    pub fn limits_for(&self, class: TownshipClass) -> Option<&ClassLimits> {
        self.class_limits.iter().find(|limits| limits.township_class == class)
    }

    /// Every rule of a usable policy that this one breaks; empty when the policy can be used.
    /// Field paths are relative to the policy (`weights.population`).
    pub fn violations(&self) -> Vec<FieldViolation> {
        let mut found = Vec::new();
        let mut check = |ok: bool, field: &str, description: String| {
            if !ok {
                found.push(FieldViolation::new(field, description));
            }
        };

        for indicator in Indicator::ALL {
            let weight = self.weights.get(indicator);
            check(
                (0.0..=MAX_WEIGHT).contains(&weight),
                &format!("weights.{}", indicator.field_name()),
                format!("weight must be a number from 0 to {MAX_WEIGHT}, got {weight}"),
            );
            if let Some(cap) = self.index_caps.get(indicator) {
                check(
                    cap.is_finite() && cap > 0.0,
                    &format!("index_caps.{}", indicator.field_name()),
                    format!("index cap must be a finite number > 0, got {cap}"),
                );
            }
        }
        let weight_sum: f64 = Indicator::ALL.iter().map(|&i| self.weights.get(i)).sum();
        check(
            weight_sum > 0.0 || !weight_sum.is_finite(),
            "weights",
            "at least one weight must be greater than 0".to_owned(),
        );

        let ScoreThresholds { class1_min_score, class2_min_score } = self.score_thresholds;
        check(
            class1_min_score.is_finite(),
            "score_thresholds.class1_min_score",
            format!("must be a finite number, got {class1_min_score}"),
        );
        check(
            class2_min_score.is_finite(),
            "score_thresholds.class2_min_score",
            format!("must be a finite number, got {class2_min_score}"),
        );
        check(
            class1_min_score > class2_min_score || class1_min_score.is_nan() || class2_min_score.is_nan(),
            "score_thresholds",
            format!("class1_min_score ({class1_min_score}) must be greater than class2_min_score ({class2_min_score})"),
        );

        let RankQuota { class1_share, class2_share } = self.rank_quota;
        for (field, share) in [("class1_share", class1_share), ("class2_share", class2_share)] {
            check(
                (0.0..=1.0).contains(&share),
                &format!("rank_quota.{field}"),
                format!("share must be between 0 and 1, got {share}"),
            );
        }
        check(
            class1_share + class2_share <= 1.0 + 1e-9 || class1_share.is_nan() || class2_share.is_nan(),
            "rank_quota",
            format!("class1_share + class2_share must not exceed 1, got {}", class1_share + class2_share),
        );

        let bands = &self.absolute_bands;
        for indicator in Indicator::ALL {
            let (first, second) = (bands.class1_minimum.get(indicator), bands.class2_minimum.get(indicator));
            for (class, minimum) in [(1, first), (2, second)] {
                check(
                    minimum.is_finite() && minimum >= 0.0,
                    &format!("absolute_bands.class{class}_minimum.{}", indicator.field_name()),
                    format!("minimum must be a finite number ≥ 0, got {minimum}"),
                );
            }
            check(
                second <= first || second.is_nan() || first.is_nan(),
                &format!("absolute_bands.class2_minimum.{}", indicator.field_name()),
                format!("class 2 minimum ({second}) must not exceed the class 1 minimum ({first})"),
            );
        }
        check(
            (1..=3).contains(&bands.indicators_required),
            "absolute_bands.indicators_required",
            format!("must be 1, 2 or 3, got {}", bands.indicators_required),
        );

        for class in 1..=3u8 {
            let count = self.class_limits.iter().filter(|l| l.township_class == class).count();
            check(count == 1, "class_limits", format!("class {class} must have exactly one entry, found {count}"));
        }
        for (index, limits) in self.class_limits.iter().enumerate() {
            check(
                (1..=3).contains(&limits.township_class),
                &format!("class_limits[{index}].township_class"),
                format!("must be 1, 2 or 3, got {}", limits.township_class),
            );
            check(
                limits.min_party_government_offices <= limits.max_party_government_offices,
                &format!("class_limits[{index}].min_party_government_offices"),
                format!(
                    "minimum ({}) must not exceed the maximum ({})",
                    limits.min_party_government_offices, limits.max_party_government_offices
                ),
            );
        }
        found.extend(self.provenance_violations());
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid_and_carries_the_policy_figures() {
        let policy = Policy::from_toml(DEFAULT_POLICY_TOML).unwrap();
        assert_eq!(policy.weights, PerIndicator { population: 5.0, fiscal_revenue: 3.0, land_area: 2.0 });
        assert_eq!(policy.normalization, Normalization::MeanIndex);
        assert_eq!(policy.banding, BandingMethod::ScoreThresholds);
        assert_eq!(policy.score_thresholds, ScoreThresholds { class1_min_score: 120.0, class2_min_score: 80.0 });
        assert_eq!(policy.max_plaques_per_township, 3);
        let posts: Vec<_> = (1..=3).map(|c| policy.limits_for(c).unwrap().leadership_posts).collect();
        assert_eq!(posts, [13, 11, 9]);
        assert!(!policy.limits_for(1).unwrap().leadership_posts_verified, "class 1's 13 posts is inferred");
        assert!(policy.limits_for(2).unwrap().leadership_posts_verified);
    }

    #[test]
    fn fingerprint_is_stable_across_a_toml_round_trip_and_changes_with_any_value() {
        let policy = Policy::builtin_default();
        let reparsed = Policy::from_toml(&policy.to_toml()).unwrap();
        assert_eq!(reparsed.fingerprint(), policy.fingerprint());
        let mut changed = policy.clone();
        changed.weights.land_area = 2.5;
        assert_ne!(changed.fingerprint(), policy.fingerprint());
        assert!(policy.fingerprint().starts_with("sha256:"));
    }

    #[test]
    fn all_zero_weights_are_refused() {
        let mut policy = Policy::builtin_default();
        policy.weights = PerIndicator { population: 0.0, fiscal_revenue: 0.0, land_area: 0.0 };
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["weights"]);
    }

    #[test]
    fn negative_and_nan_weights_are_refused_by_field() {
        let mut policy = Policy::builtin_default();
        policy.weights.population = -1.0;
        policy.weights.land_area = f64::NAN;
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["weights.population", "weights.land_area"]);
    }

    #[test]
    fn thresholds_out_of_order_are_refused() {
        let mut policy = Policy::builtin_default();
        policy.score_thresholds = ScoreThresholds { class1_min_score: 80.0, class2_min_score: 80.0 };
        let violations = policy.violations();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "score_thresholds");
        assert!(violations[0].description.contains("greater than class2_min_score"));
    }

    #[test]
    fn quotas_over_one_in_total_are_refused() {
        let mut policy = Policy::builtin_default();
        policy.rank_quota = RankQuota { class1_share: 0.6, class2_share: 0.5 };
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["rank_quota"]);
        policy.rank_quota = RankQuota { class1_share: -0.1, class2_share: 0.5 };
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["rank_quota.class1_share"]);
    }

    #[test]
    fn absolute_bands_out_of_order_are_refused() {
        let mut policy = Policy::builtin_default();
        policy.absolute_bands.class2_minimum.population = 99.0;
        policy.absolute_bands.indicators_required = 4;
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["absolute_bands.class2_minimum.population", "absolute_bands.indicators_required"]);
    }

    #[test]
    fn class_limits_must_cover_each_class_once() {
        let mut policy = Policy::builtin_default();
        policy.class_limits.pop();
        let descriptions: Vec<_> = policy.violations().into_iter().map(|v| v.description).collect();
        assert_eq!(descriptions, ["class 3 must have exactly one entry, found 0"]);
    }

    #[test]
    fn unknown_fields_in_a_policy_document_are_refused() {
        let text = DEFAULT_POLICY_TOML.replace("[weights]", "[weights]\npopulaton = 1.0");
        assert!(matches!(Policy::from_toml(&text), Err(PolicyError::Parse(_))));
    }
}
