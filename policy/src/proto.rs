//! `township.classifier.v1.Policy` ⇄ [`Policy`], and the indicator values both messages carry.

use township_proto::classifier::v1 as pb;

use crate::{
    AbsoluteBands, BandingMethod, ClassLimits, FieldViolation, FigureProvenance, IndexCaps, Normalization,
    PerIndicator, Policy, RankQuota, ScoreThresholds, leadership_posts_path,
};

/// A policy from a request. Fields left unset take the default policy's values (see the proto); an enum value
/// this server does not know is a violation, never a silent default.
pub fn policy_from_proto(
    policy: Option<pb::Policy>,
    default: &Policy,
    path: &str,
    violations: &mut Vec<FieldViolation>,
) -> Policy {
    let Some(policy) = policy else { return default.clone() };
    let normalization = match pb::Normalization::try_from(policy.normalization) {
        Ok(pb::Normalization::Unspecified) => default.normalization,
        Ok(pb::Normalization::MeanIndex) => Normalization::MeanIndex,
        Ok(pb::Normalization::MaxIndex) => Normalization::MaxIndex,
        Ok(pb::Normalization::MinMax) => Normalization::MinMax,
        Ok(pb::Normalization::PercentileRank) => Normalization::PercentileRank,
        Err(_) => {
            violations.push(FieldViolation::new(
                format!("{path}.normalization"),
                format!("unknown normalization {}", policy.normalization),
            ));
            default.normalization
        }
    };
    let banding = match pb::Banding::try_from(policy.banding) {
        Ok(pb::Banding::Unspecified) => default.banding,
        Ok(pb::Banding::ScoreThresholds) => BandingMethod::ScoreThresholds,
        Ok(pb::Banding::RankQuota) => BandingMethod::RankQuota,
        Ok(pb::Banding::AbsoluteBands) => BandingMethod::AbsoluteBands,
        Err(_) => {
            violations
                .push(FieldViolation::new(format!("{path}.banding"), format!("unknown banding {}", policy.banding)));
            default.banding
        }
    };
    let sent_provenance: Vec<FigureProvenance> = policy
        .figure_provenance
        .iter()
        .map(|entry| FigureProvenance {
            field: entry.field.clone(),
            verified: entry.verified,
            note: entry.note.clone(),
        })
        .collect();
    let asserted_verified: Vec<_> = policy
        .class_limits
        .iter()
        .filter(|limits| limits.leadership_posts_verified)
        .filter_map(|limits| u8::try_from(limits.township_class).ok())
        .map(leadership_posts_path)
        .collect();
    let mut class_limits = Vec::with_capacity(policy.class_limits.len());
    for (index, limits) in policy.class_limits.iter().enumerate() {
        match u8::try_from(limits.township_class) {
            Ok(township_class) => class_limits.push(ClassLimits {
                township_class,
                leadership_posts: limits.leadership_posts,
                leadership_posts_verified: limits.leadership_posts_verified,
                min_party_government_offices: limits.min_party_government_offices,
                max_party_government_offices: limits.max_party_government_offices,
                max_public_institutions: limits.max_public_institutions,
                max_law_enforcement_units: limits.max_law_enforcement_units,
                administrative_staff: limits.administrative_staff,
                public_institution_staff: limits.public_institution_staff,
            }),
            Err(_) => violations.push(FieldViolation::new(
                format!("{path}.class_limits[{index}].township_class"),
                format!("must be 1, 2 or 3, got {}", limits.township_class),
            )),
        }
    }
    let mut merged = Policy {
        name: if policy.name.is_empty() { "request".to_owned() } else { policy.name },
        version: policy.version,
        normalization,
        banding,
        max_plaques_per_township: policy.max_plaques_per_township.unwrap_or(default.max_plaques_per_township),
        weights: policy.weights.map(values_from_proto).unwrap_or(default.weights),
        index_caps: policy
            .index_caps
            .map(|caps| IndexCaps {
                population: caps.population,
                fiscal_revenue: caps.fiscal_revenue,
                land_area: caps.land_area,
            })
            .unwrap_or(default.index_caps),
        score_thresholds: policy
            .score_thresholds
            .map(|t| ScoreThresholds { class1_min_score: t.class1_min_score, class2_min_score: t.class2_min_score })
            .unwrap_or(default.score_thresholds),
        rank_quota: policy
            .rank_quota
            .map(|q| RankQuota { class1_share: q.class1_share, class2_share: q.class2_share })
            .unwrap_or(default.rank_quota),
        absolute_bands: policy
            .absolute_bands
            .map(|b| AbsoluteBands {
                class1_minimum: b
                    .class1_minimum
                    .map(values_from_proto)
                    .unwrap_or(default.absolute_bands.class1_minimum),
                class2_minimum: b
                    .class2_minimum
                    .map(values_from_proto)
                    .unwrap_or(default.absolute_bands.class2_minimum),
                indicators_required: b.indicators_required,
            })
            .unwrap_or(default.absolute_bands),
        class_limits: if policy.class_limits.is_empty() { default.class_limits.clone() } else { class_limits },
        figure_provenance: Vec::new(),
    };
    merged.figure_provenance = merged_provenance(default, &merged, sent_provenance, &asserted_verified);
    merged.reconcile_leadership_posts_verified();
    merged
}

/// The request's entries first (so that a violation's index is the request's), then the default's entries for
/// figures the request neither names nor changes: a figure the request sets is its own, and so is one whose
/// `leadership_posts_verified` it sets (the v1 way of saying so).
fn merged_provenance(
    default: &Policy,
    merged: &Policy,
    sent: Vec<FigureProvenance>,
    asserted_verified: &[String],
) -> Vec<FigureProvenance> {
    let kept: Vec<_> = default
        .figure_provenance
        .iter()
        .filter(|entry| !sent.iter().any(|own| own.field == entry.field))
        .filter(|entry| !asserted_verified.contains(&entry.field))
        .filter(|entry| default.figure(&entry.field) == merged.figure(&entry.field))
        .cloned()
        .collect();
    sent.into_iter().chain(kept).collect()
}

pub fn policy_to_proto(policy: &Policy) -> pb::Policy {
    pb::Policy {
        name: policy.name.clone(),
        version: policy.version.clone(),
        weights: Some(values_to_proto(policy.weights)),
        normalization: match policy.normalization {
            Normalization::MeanIndex => pb::Normalization::MeanIndex,
            Normalization::MaxIndex => pb::Normalization::MaxIndex,
            Normalization::MinMax => pb::Normalization::MinMax,
            Normalization::PercentileRank => pb::Normalization::PercentileRank,
        }
        .into(),
        index_caps: Some(pb::IndexCaps {
            population: policy.index_caps.population,
            fiscal_revenue: policy.index_caps.fiscal_revenue,
            land_area: policy.index_caps.land_area,
        }),
        banding: match policy.banding {
            BandingMethod::ScoreThresholds => pb::Banding::ScoreThresholds,
            BandingMethod::RankQuota => pb::Banding::RankQuota,
            BandingMethod::AbsoluteBands => pb::Banding::AbsoluteBands,
        }
        .into(),
        score_thresholds: Some(pb::ScoreThresholds {
            class1_min_score: policy.score_thresholds.class1_min_score,
            class2_min_score: policy.score_thresholds.class2_min_score,
        }),
        rank_quota: Some(pb::RankQuota {
            class1_share: policy.rank_quota.class1_share,
            class2_share: policy.rank_quota.class2_share,
        }),
        absolute_bands: Some(pb::AbsoluteBands {
            class1_minimum: Some(values_to_proto(policy.absolute_bands.class1_minimum)),
            class2_minimum: Some(values_to_proto(policy.absolute_bands.class2_minimum)),
            indicators_required: policy.absolute_bands.indicators_required,
        }),
        class_limits: policy
            .class_limits
            .iter()
            .map(|l| pb::ClassLimits {
                township_class: u32::from(l.township_class),
                leadership_posts: l.leadership_posts,
                leadership_posts_verified: l.leadership_posts_verified,
                min_party_government_offices: l.min_party_government_offices,
                max_party_government_offices: l.max_party_government_offices,
                max_public_institutions: l.max_public_institutions,
                max_law_enforcement_units: l.max_law_enforcement_units,
                administrative_staff: l.administrative_staff,
                public_institution_staff: l.public_institution_staff,
            })
            .collect(),
        max_plaques_per_township: Some(policy.max_plaques_per_township),
        figure_provenance: policy
            .figure_provenance
            .iter()
            .map(|entry| pb::FigureProvenance {
                field: entry.field.clone(),
                verified: entry.verified,
                note: entry.note.clone(),
            })
            .collect(),
    }
}

pub fn values_from_proto(values: pb::IndicatorValues) -> PerIndicator<f64> {
    PerIndicator { population: values.population, fiscal_revenue: values.fiscal_revenue, land_area: values.land_area }
}

pub fn values_to_proto(values: PerIndicator<f64>) -> pb::IndicatorValues {
    pb::IndicatorValues {
        population: values.population,
        fiscal_revenue: values.fiscal_revenue,
        land_area: values.land_area,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(request: pb::Policy) -> Policy {
        let mut violations = Vec::new();
        let policy = policy_from_proto(Some(request), &Policy::builtin_default(), "policy", &mut violations);
        assert!(violations.is_empty(), "{violations:?}");
        policy
    }

    #[test]
    fn a_request_keeps_the_defaults_inferred_figures_it_leaves_alone() {
        let default = Policy::builtin_default();
        let policy = round_trip(pb::Policy::default());
        assert_eq!(policy.figure_provenance, default.figure_provenance);
        let back = round_trip(policy_to_proto(&default));
        assert_eq!(back.figure_provenance, default.figure_provenance, "the effective policy sent back is the same");
    }

    #[test]
    fn a_figure_the_city_sets_is_its_own_not_inferred() {
        let mut request = policy_to_proto(&Policy::builtin_default());
        request.figure_provenance.clear();
        request.score_thresholds = Some(pb::ScoreThresholds { class1_min_score: 130.0, class2_min_score: 80.0 });
        let policy = round_trip(request);
        assert!(!policy.is_inferred("score_thresholds.class1_min_score"), "changed by the city");
        assert!(policy.is_inferred("score_thresholds.class2_min_score"), "left at the inferred value");
    }

    #[test]
    fn a_city_adopts_an_inferred_figure_by_listing_it_verified_or_by_leadership_posts_verified() {
        let mut request = policy_to_proto(&Policy::builtin_default());
        request.figure_provenance = vec![pb::FigureProvenance {
            field: "normalization".to_owned(),
            verified: true,
            note: "长编办发〔2024〕12号".to_owned(),
        }];
        request.class_limits[0].leadership_posts_verified = true;
        let policy = round_trip(request);
        assert!(!policy.is_inferred("normalization"));
        assert!(!policy.is_inferred("class_limits[class=1].leadership_posts"));
        assert!(policy.limits_for(1).unwrap().leadership_posts_verified);
        assert!(policy.is_inferred("score_thresholds.class1_min_score"));
    }

    #[test]
    fn a_requests_bad_path_is_named_by_its_own_index() {
        let request = pb::Policy {
            figure_provenance: vec![pb::FigureProvenance {
                field: "score_thresholds.class3".to_owned(),
                verified: false,
                note: "a guess".to_owned(),
            }],
            ..Default::default()
        };
        let policy = round_trip(request);
        let fields: Vec<_> = policy.violations().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["figure_provenance[0].field"]);
    }
}
