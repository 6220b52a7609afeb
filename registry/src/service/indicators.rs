//! Indicator observations: recording them (which queues the cohort's reclassification) and their history.

use tonic::{Request, Response};
use township_policy::FieldViolation;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{made, request_key};
use super::request::{actor, next_token, page_request};
use super::{RegistryApi, ServiceResult};
use crate::domain::model::NewObservation;
use crate::domain::names;
use crate::store::{Create, Created};

/// Largest batch of observations one call may record.
pub(super) const MAX_BATCH: usize = 50_000;

impl RegistryApi {
    pub(super) async fn record_indicators(
        &self,
        request: Request<pb::RecordIndicatorsRequest>,
    ) -> ServiceResult<pb::IndicatorObservation> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("RecordIndicators", &request.request_id, &request)?;
        let observation = request.observation.ok_or_else(|| invalid("observation", "the observation is missing"))?;
        let (parsed, violations) = observation_violations(None, &observation);
        let Some(parsed) = parsed else { return Err(invalid_all(violations)) };
        let mut recorded =
            made!(self.create_once(key, Create::Observations(vec![parsed]), &actor).await?, Created::Observations);
        Ok(Response::new(observation_to_proto(recorded.remove(0).observation)))
    }

    pub(super) async fn batch_record_indicators(
        &self,
        request: Request<pb::BatchRecordIndicatorsRequest>,
    ) -> ServiceResult<pb::BatchRecordIndicatorsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("BatchRecordIndicators", &request.request_id, &request)?;
        let pb::BatchRecordIndicatorsRequest { observations, validate_only, .. } = request;
        if observations.is_empty() {
            return Err(invalid("observations", "the batch is empty"));
        }
        if observations.len() > MAX_BATCH {
            return Err(invalid(
                "observations",
                format!("{} observations; at most {MAX_BATCH} per batch", observations.len()),
            ));
        }
        let mut parsed = Vec::with_capacity(observations.len());
        let mut violations = Vec::new();
        for (index, observation) in observations.iter().enumerate() {
            let (one, problems) = observation_violations(Some(index), observation);
            parsed.extend(one);
            violations.extend(problems);
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let recorded = if validate_only {
            self.store().record_observations(&parsed, &actor, true).await?
        } else {
            made!(self.create_once(key, Create::Observations(parsed), &actor).await?, Created::Observations)
        };
        let unchanged = (0u32..).zip(&recorded).filter(|(_, r)| r.unchanged).map(|(index, _)| index).collect();
        Ok(Response::new(pb::BatchRecordIndicatorsResponse {
            unchanged,
            observations: recorded.into_iter().map(|r| observation_to_proto(r.observation)).collect(),
        }))
    }

    pub(super) async fn list_indicator_observations(
        &self,
        request: Request<pb::ListIndicatorObservationsRequest>,
    ) -> ServiceResult<pb::ListIndicatorObservationsResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let year = (request.data_year != 0).then_some(request.data_year);
        let page =
            self.store().list_observations(&code, year, &page_request(request.page_size, &request.page_token)?).await?;
        Ok(Response::new(pb::ListIndicatorObservationsResponse {
            next_page_token: next_token(&page),
            observations: page.items.into_iter().map(observation_to_proto).collect(),
        }))
    }
}

pub(super) fn observation_violations(
    index: Option<usize>,
    observation: &pb::IndicatorObservation,
) -> (Option<NewObservation>, Vec<FieldViolation>) {
    let prefix = index.map_or("observation".to_owned(), |i| format!("observations[{i}]"));
    let mut violations = Vec::new();
    let township = match names::parse_township(&observation.township) {
        Ok(code) => Some(code),
        Err(error) => {
            violations.push(FieldViolation::new(format!("{prefix}.township"), error.0));
            None
        }
    };
    let who = township.as_ref().map_or_else(|| observation.township.clone(), |c| format!("township {c}"));
    if !(1949..=2200).contains(&observation.data_year) {
        violations.push(FieldViolation::new(
            format!("{prefix}.data_year"),
            format!("{who}: data_year must be a year between 1949 and 2200, got {}", observation.data_year),
        ));
    }
    let values = match &observation.values {
        None => {
            violations.push(FieldViolation::new(
                format!("{prefix}.values"),
                format!("{who}: values are missing; give population, fiscal_revenue and land_area"),
            ));
            None
        }
        Some(values) => {
            let values = values_from_proto(values);
            for indicator in township_policy::Indicator::ALL {
                if let Some(problem) = indicator.value_problem(values.get(indicator)) {
                    violations.push(FieldViolation::new(
                        format!("{prefix}.values.{}", indicator.field_name()),
                        format!("{who}: {problem}"),
                    ));
                }
            }
            Some(values)
        }
    };
    if observation.source.chars().count() > 500 {
        violations.push(FieldViolation::new(
            format!("{prefix}.source"),
            format!("{who}: source must be at most 500 characters"),
        ));
    }
    let parsed = match (township, values) {
        (Some(township), Some(values)) if violations.is_empty() => Some(NewObservation {
            township,
            data_year: observation.data_year,
            values,
            source: observation.source.clone(),
        }),
        _ => None,
    };
    (parsed, violations)
}
