//! The gRPC adapter: converts `township.classifier.v1` messages to domain types and back, and maps domain
//! errors to statuses. No classification logic lives here.

use std::sync::Arc;

use tonic::{Request, Response, Status};
use township_proto::classifier::v1 as pb;
use township_runtime::{ErrorKind, ServiceError};

use township_policy::proto::{policy_from_proto, policy_to_proto, values_from_proto, values_to_proto};

use crate::domain::{self, FieldViolation, Policy, TownshipInput, TownshipKind};

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
        crate::access::authorize(&request, "Classify")?;
        let request = request.into_inner();
        let view = match pb::ClassificationView::try_from(request.view) {
            Ok(pb::ClassificationView::Basic) => domain::Detail::Numbers,
            Ok(pb::ClassificationView::Full | pb::ClassificationView::Unspecified) => domain::Detail::Explained,
            Err(_) => {
                let description = format!("{} is not a ClassificationView (BASIC = 1, FULL = 2)", request.view);
                return Err(invalid(vec![FieldViolation::new("view", description)]).into());
            }
        };
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
            let outcome = domain::classify_with(&policy, &townships, max_cohort_size, view);
            (policy, outcome)
        })
        .await
        .map_err(|error| ServiceError::new(ErrorKind::Internal, format!("classification task failed: {error}")))?;
        let classification = outcome.map_err(|error| invalid(error.violations))?;
        let (results, columns) = match view {
            domain::Detail::Numbers => (Vec::new(), classification.numbers.map(columns)),
            domain::Detail::Explained => (classification.results.into_iter().map(result_to_proto).collect(), None),
        };
        Ok(Response::new(pb::ClassifyResponse {
            results,
            columns,
            statistics: Some(statistics_to_proto(&classification.statistics)),
            policy: Some(policy_to_proto(&policy)),
            policy_fingerprint: classification.policy_fingerprint,
        }))
    }

    async fn get_default_policy(
        &self,
        request: Request<pb::GetDefaultPolicyRequest>,
    ) -> Result<Response<pb::GetDefaultPolicyResponse>, Status> {
        crate::access::authorize(&request, "GetDefaultPolicy")?;
        Ok(Response::new(pb::GetDefaultPolicyResponse {
            policy: Some(policy_to_proto(&self.default_policy)),
            policy_fingerprint: self.default_policy.fingerprint(),
        }))
    }

    async fn validate_policy(
        &self,
        request: Request<pb::ValidatePolicyRequest>,
    ) -> Result<Response<pb::ValidatePolicyResponse>, Status> {
        crate::access::authorize(&request, "ValidatePolicy")?;
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

fn kind_to_proto(kind: TownshipKind) -> pb::TownshipKind {
    match kind {
        TownshipKind::Town => pb::TownshipKind::Town,
        TownshipKind::Township => pb::TownshipKind::Township,
        TownshipKind::EthnicTownship => pb::TownshipKind::EthnicTownship,
        TownshipKind::Subdistrict => pb::TownshipKind::Subdistrict,
        TownshipKind::Other => pb::TownshipKind::Other,
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

/// The BASIC view's columns, from the numbers in input order.
fn columns(numbers: domain::Numbers) -> pb::ResultColumns {
    let per_index = |index: fn(&domain::PerIndicator<f64>) -> f64| numbers.indices.iter().map(index).collect();
    pb::ResultColumns {
        index_population: per_index(|i| i.population),
        index_fiscal_revenue: per_index(|i| i.fiscal_revenue),
        index_land_area: per_index(|i| i.land_area),
        township_class: numbers.class.iter().map(|&class| u32::from(class)).collect(),
        score: numbers.score,
        rank: numbers.rank,
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
