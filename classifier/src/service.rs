//! The gRPC adapter: converts `township.classifier.v1` messages to domain types and back, and maps domain
//! errors to statuses. No classification logic lives here.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use township_proto::classifier::v1 as pb;
use township_runtime::{ErrorKind, ServiceError};

use crate::domain::{
    self, AbsoluteBands, BandingMethod, ClassLimits, FieldViolation, IndexCaps, Normalization, PerIndicator, Policy,
    RankQuota, ScoreThresholds, TownshipInput, TownshipKind,
};

/// Fully-qualified name of the service, as health checks name it.
pub const SERVICE_NAME: &str = "township.classifier.v1.ClassifierService";

/// The classifier's gRPC handlers.
#[derive(Debug, Clone)]
pub struct ClassifierApi {
    default_policy: Arc<Policy>,
    max_cohort_size: usize,
}

impl ClassifierApi {
    pub fn new(default_policy: Policy, max_cohort_size: usize) -> Self {
        Self { default_policy: Arc::new(default_policy), max_cohort_size }
    }

    /// The tonic service, accepting and sending messages up to `max_message_bytes`.
    pub fn into_server(self, max_message_bytes: usize) -> pb::classifier_service_server::ClassifierServiceServer<Self> {
        pb::classifier_service_server::ClassifierServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }
}

#[tonic::async_trait]
impl pb::classifier_service_server::ClassifierService for ClassifierApi {
    async fn classify(&self, request: Request<pb::ClassifyRequest>) -> Result<Response<pb::ClassifyResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Vec::new();
        let policy = policy_from_proto(request.policy, &self.default_policy, "policy", &mut violations);
        let townships: Vec<TownshipInput> = request
            .townships
            .into_iter()
            .enumerate()
            .filter_map(|(position, township)| township_from_proto(position, township, &mut violations))
            .collect();
        if !violations.is_empty() {
            return Err(invalid(violations).into());
        }
        tracing::debug!(townships = townships.len(), policy = %policy.name, "classifying");
        let max_cohort_size = self.max_cohort_size;
        // Whole-country cohorts take milliseconds of CPU: keep them off the async workers.
        let (policy, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = domain::classify(&policy, &townships, max_cohort_size);
            (policy, outcome)
        })
        .await
        .map_err(|error| ServiceError::new(ErrorKind::Internal, format!("classification task failed: {error}")))?;
        let classification = outcome.map_err(|error| invalid(error.violations))?;
        Ok(Response::new(pb::ClassifyResponse {
            results: classification.results.into_iter().map(result_to_proto).collect(),
            statistics: Some(statistics_to_proto(&classification.statistics)),
            policy: Some(policy_to_proto(&policy)),
            policy_fingerprint: classification.policy_fingerprint,
        }))
    }

    async fn get_default_policy(
        &self,
        _request: Request<pb::GetDefaultPolicyRequest>,
    ) -> Result<Response<pb::GetDefaultPolicyResponse>, Status> {
        Ok(Response::new(pb::GetDefaultPolicyResponse {
            policy: Some(policy_to_proto(&self.default_policy)),
            policy_fingerprint: self.default_policy.fingerprint(),
        }))
    }

    async fn validate_policy(
        &self,
        request: Request<pb::ValidatePolicyRequest>,
    ) -> Result<Response<pb::ValidatePolicyResponse>, Status> {
        let mut violations = Vec::new();
        let policy = policy_from_proto(request.into_inner().policy, &self.default_policy, "policy", &mut violations);
        violations.extend(
            policy.violations().into_iter().map(|v| FieldViolation::new(format!("policy.{}", v.field), v.description)),
        );
        let valid = violations.is_empty();
        Ok(Response::new(pb::ValidatePolicyResponse {
            valid,
            violations: violations
                .into_iter()
                .map(|v| pb::PolicyViolation { field: v.field, description: v.description })
                .collect(),
            policy: valid.then(|| policy_to_proto(&policy)),
            policy_fingerprint: if valid { policy.fingerprint() } else { String::new() },
        }))
    }
}

fn invalid(violations: Vec<FieldViolation>) -> ServiceError {
    ServiceError::invalid_arguments(violations.into_iter().map(|v| (v.field, v.description)))
}

fn township_from_proto(
    position: usize,
    township: pb::TownshipInput,
    violations: &mut Vec<FieldViolation>,
) -> Option<TownshipInput> {
    let who =
        format!("township {} ({})", township.id, if township.name.is_empty() { "unnamed" } else { &township.name });
    let kind = match pb::TownshipKind::try_from(township.kind) {
        Ok(pb::TownshipKind::Town) => Some(TownshipKind::Town),
        Ok(pb::TownshipKind::Township) => Some(TownshipKind::Township),
        Ok(pb::TownshipKind::EthnicTownship) => Some(TownshipKind::EthnicTownship),
        Ok(pb::TownshipKind::Subdistrict) => Some(TownshipKind::Subdistrict),
        Ok(pb::TownshipKind::Other) => Some(TownshipKind::Other),
        Ok(pb::TownshipKind::Unspecified) | Err(_) => {
            violations.push(FieldViolation::new(
                format!("townships[{position}].kind"),
                format!("{who}: kind must be one of TOWN, TOWNSHIP, ETHNIC_TOWNSHIP, SUBDISTRICT, OTHER"),
            ));
            None
        }
    };
    let Some(indicators) = township.indicators else {
        violations.push(FieldViolation::new(
            format!("townships[{position}].indicators"),
            format!("{who}: indicators are missing; give population, fiscal_revenue and land_area"),
        ));
        return None;
    };
    Some(TownshipInput { id: township.id, name: township.name, kind: kind?, indicators: values_from_proto(indicators) })
}

fn values_from_proto(values: pb::IndicatorValues) -> PerIndicator<f64> {
    PerIndicator { population: values.population, fiscal_revenue: values.fiscal_revenue, land_area: values.land_area }
}

fn values_to_proto(values: PerIndicator<f64>) -> pb::IndicatorValues {
    pb::IndicatorValues {
        population: values.population,
        fiscal_revenue: values.fiscal_revenue,
        land_area: values.land_area,
    }
}

fn kind_to_proto(kind: TownshipKind) -> pb::TownshipKind {
    match kind {
        TownshipKind::Town => pb::TownshipKind::Town,
        TownshipKind::Township => pb::TownshipKind::Township,
        TownshipKind::EthnicTownship => pb::TownshipKind::EthnicTownship,
        TownshipKind::Subdistrict => pb::TownshipKind::Subdistrict,
        TownshipKind::Other => pb::TownshipKind::Other,
    }
}

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
            })
            .collect(),
        max_plaques_per_township: Some(policy.max_plaques_per_township),
    }
}

fn result_to_proto(result: domain::TownshipResult) -> pb::TownshipResult {
    pb::TownshipResult {
        kind: kind_to_proto(result.kind).into(),
        id: result.id,
        name: result.name,
        indices: Some(values_to_proto(result.indices)),
        contributions: Some(values_to_proto(result.contributions)),
        score: result.score,
        rank: result.rank,
        township_class: u32::from(result.class),
        points_to_next_class_up: result.points_to_next_class_up,
        points_above_next_class_down: result.points_above_next_class_down,
        explanation: result.explanation,
    }
}

fn distribution_to_proto(d: &domain::Distribution) -> pb::Distribution {
    pb::Distribution { min: d.min, max: d.max, mean: d.mean, median: d.median }
}

fn statistics_to_proto(statistics: &domain::CohortStatistics) -> pb::CohortStatistics {
    pb::CohortStatistics {
        township_count: statistics.township_count,
        population: Some(distribution_to_proto(&statistics.indicators.population)),
        fiscal_revenue: Some(distribution_to_proto(&statistics.indicators.fiscal_revenue)),
        land_area: Some(distribution_to_proto(&statistics.indicators.land_area)),
        score: Some(distribution_to_proto(&statistics.score)),
        class_counts: (1..=3u32)
            .zip(statistics.class_counts)
            .map(|(township_class, count)| pb::ClassCount { township_class, count })
            .collect(),
    }
}
