//! `township.classifier.v1.Policy` ⇄ [`Policy`], and the indicator values both messages carry.

use township_proto::classifier::v1 as pb;

use crate::{
    AbsoluteBands, BandingMethod, ClassLimits, FieldViolation, IndexCaps, Normalization, PerIndicator, Policy,
    RankQuota, ScoreThresholds,
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
    Policy {
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
    }
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
