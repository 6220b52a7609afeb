//! The gRPC adapter of `township.registry.v1`: validates requests, converts them, calls the store, and maps
//! errors to statuses in one place ([`store_error`]).

pub mod convert;

use std::pin::Pin;

use base64::Engine as _;
use tokio_stream::{Stream, StreamExt, wrappers::BroadcastStream};
use tonic::{Request, Response, Status};
use township_policy::{FieldViolation, PerIndicator, TownshipClass};
use township_proto::classifier::v1 as cpb;
use township_proto::classifier::v1::classifier_service_client::ClassifierServiceClient;
use township_proto::registry::v1 as pb;
use township_runtime::{ErrorKind, ServiceError};

use crate::classification::classify_request;
use crate::domain::catalogue::{
    CatalogueEntry, CatalogueOwner, ItemDetails, NewCatalogueItem, Resolution, duty_areas_for,
};
use crate::domain::model::*;
use crate::domain::names::{self, CityCode, NameError, Scope, TownshipCode};
use crate::domain::rules;
use crate::store::{CreatedRecord, NewRecord, Page, PageRequest, StoreError};
use crate::worker::Reclassifier;
use convert::*;
use township_runtime::now_ms;

/// Fully-qualified name of the service, as health checks name it.
pub const SERVICE_NAME: &str = "township.registry.v1.RegistryService";

/// Largest page a list returns.
const MAX_PAGE_SIZE: i32 = 1000;
/// Largest batch of observations one call may record.
const MAX_BATCH: usize = 50_000;

type ServiceResult<T> = Result<Response<T>, Status>;

/// The registry's gRPC handlers.
#[derive(Debug, Clone)]
pub struct RegistryApi {
    reclassifier: Reclassifier,
    classifier: ClassifierServiceClient<tonic::transport::Channel>,
}

impl RegistryApi {
    pub fn new(reclassifier: Reclassifier, classifier: ClassifierServiceClient<tonic::transport::Channel>) -> Self {
        Self { reclassifier, classifier }
    }

    pub fn into_server(self, max_message_bytes: usize) -> pb::registry_service_server::RegistryServiceServer<Self> {
        pb::registry_service_server::RegistryServiceServer::new(self)
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(max_message_bytes)
    }

    fn store(&self) -> &dyn crate::store::Store {
        self.reclassifier.store.as_ref()
    }

    /// The data year a request means: the given one, or the city's latest with observations.
    async fn data_year(&self, city: &CityCode, requested: i32) -> Result<Option<i32>, Status> {
        if requested < 0 {
            return Err(invalid(
                "data_year",
                format!("must be a year such as 2023 or 0 for the latest, got {requested}"),
            ));
        }
        if requested > 0 {
            return Ok(Some(requested));
        }
        self.store().latest_data_year(city).await.map_err(store_error)
    }

    /// The class that governs a township's limits: its effective class in the latest data year.
    async fn current_class(&self, township: &TownshipCode) -> Result<Option<TownshipClass>, Status> {
        let Some(year) = self.data_year(&township.city(), 0).await? else { return Ok(None) };
        let record = self.store().get_class(township, year).await.map_err(store_error)?;
        Ok(record.and_then(|r| r.effective_class()))
    }

    async fn cohort_state(&self, city: &CityCode, data_year: i32) -> Result<Option<CohortState>, Status> {
        let cohort = CohortKey { city: city.clone(), data_year };
        Ok(self.store().cohort_job(&cohort).await.map_err(store_error)?.map(|job| job.state))
    }

    /// Wakes the worker after a write that queued work; the outbox row is already committed.
    fn wake_worker(&self) {
        self.reclassifier.wake.notify_one();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Errors, names, pages, actors

/// The one place store errors become statuses.
fn store_error(error: StoreError) -> Status {
    let kind = match &error {
        StoreError::NotFound(_) => ErrorKind::NotFound,
        StoreError::AlreadyExists(_) => ErrorKind::AlreadyExists,
        StoreError::LimitExceeded(_) => ErrorKind::FailedPrecondition,
        StoreError::Conflict(_) => ErrorKind::Aborted,
        StoreError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
        StoreError::Unavailable(_) => ErrorKind::Unavailable,
        StoreError::Internal(_) => ErrorKind::Internal,
    };
    ServiceError::new(kind, error.to_string()).into()
}

fn invalid(field: &str, description: impl Into<String>) -> Status {
    ServiceError::invalid_arguments([(field.to_owned(), description.into())]).into()
}

fn invalid_all(violations: Vec<FieldViolation>) -> Status {
    ServiceError::invalid_arguments(violations.into_iter().map(|v| (v.field, v.description))).into()
}

fn name_error(field: &str) -> impl Fn(NameError) -> Status + '_ {
    move |error| invalid(field, error.0)
}

fn page_request(page_size: i32, page_token: &str) -> Result<PageRequest, Status> {
    if page_size < 0 {
        return Err(invalid("page_size", format!("must be ≥ 0, got {page_size}")));
    }
    let after = if page_token.is_empty() {
        None
    } else {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(page_token)
            .map_err(|_| invalid("page_token", "not a token this service issued; pass next_page_token as given"))?;
        Some(String::from_utf8(bytes).map_err(|_| invalid("page_token", "not a token this service issued"))?)
    };
    Ok(PageRequest { size: page_size.min(MAX_PAGE_SIZE) as u32, after })
}

fn next_token<T>(page: &Page<T>) -> String {
    page.next.as_ref().map(|key| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)).unwrap_or_default()
}

/// The caller, from the `x-actor` header; "anonymous" when absent.
fn actor<T>(request: &Request<T>) -> String {
    request
        .metadata()
        .get("x-actor")
        .and_then(|value| value.to_str().ok())
        // Headers are ASCII: clients send a Chinese name percent-encoded (UTF-8).
        .map(|value| percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned())
        // Decoding can yield control characters (%0A…): the audit log keeps a name on one clean line.
        .map(|actor| actor.chars().filter(|c| !c.is_control()).take(200).collect::<String>().trim().to_owned())
        .filter(|actor| !actor.is_empty())
        .unwrap_or_else(|| "anonymous".to_owned())
}

fn optional(text: String) -> Option<String> {
    if text.trim().is_empty() { None } else { Some(text) }
}

fn check_date(field: &str, date: &Option<String>, violations: &mut Vec<FieldViolation>) {
    if let Some(date) = date {
        let ok = date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !ok {
            violations.push(FieldViolation::new(field, format!("{date:?} is not a date of the form YYYY-MM-DD")));
        }
    }
}

fn check_text(field: &str, text: &str, max_chars: usize, violations: &mut Vec<FieldViolation>) {
    if text.trim().is_empty() {
        violations.push(FieldViolation::new(field, "must not be empty"));
    } else if text.chars().count() > max_chars {
        violations.push(FieldViolation::new(field, format!("must be at most {max_chars} characters")));
    }
}

fn observation_violations(
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

// ---------------------------------------------------------------------------------------------------------
// Handlers

type ChangeStream = Pin<Box<dyn Stream<Item = Result<pb::WatchClassChangesResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl pb::registry_service_server::RegistryService for RegistryApi {
    async fn get_city(&self, request: Request<pb::GetCityRequest>) -> ServiceResult<pb::City> {
        let city = names::parse_city(&request.get_ref().name).map_err(name_error("name"))?;
        let city = self.store().get_city(&city).await.map_err(store_error)?;
        Ok(Response::new(city_to_proto(city)))
    }

    async fn list_cities(&self, request: Request<pb::ListCitiesRequest>) -> ServiceResult<pb::ListCitiesResponse> {
        let request = request.into_inner();
        let page = self
            .store()
            .list_cities(&page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListCitiesResponse {
            next_page_token: next_token(&page),
            cities: page.items.into_iter().map(city_to_proto).collect(),
        }))
    }

    async fn get_county(&self, request: Request<pb::GetCountyRequest>) -> ServiceResult<pb::County> {
        let Scope::County(county) = names::parse_scope(&request.get_ref().name).map_err(name_error("name"))? else {
            return Err(invalid("name", "expected a county name (cities/{city}/counties/{county})"));
        };
        let county = self.store().get_county(&county).await.map_err(store_error)?;
        Ok(Response::new(county_to_proto(county)))
    }

    async fn list_counties(
        &self,
        request: Request<pb::ListCountiesRequest>,
    ) -> ServiceResult<pb::ListCountiesResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page = self
            .store()
            .list_counties(&city, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListCountiesResponse {
            next_page_token: next_token(&page),
            counties: page.items.into_iter().map(county_to_proto).collect(),
        }))
    }

    async fn get_township(&self, request: Request<pb::GetTownshipRequest>) -> ServiceResult<pb::Township> {
        let code = names::parse_township(&request.get_ref().name).map_err(name_error("name"))?;
        let township = self.store().get_township(&code).await.map_err(store_error)?;
        Ok(Response::new(township_to_proto(township)))
    }

    async fn list_townships(
        &self,
        request: Request<pb::ListTownshipsRequest>,
    ) -> ServiceResult<pb::ListTownshipsResponse> {
        let request = request.into_inner();
        let scope = names::parse_scope(&request.parent).map_err(name_error("parent"))?;
        if matches!(scope, Scope::Township(_)) {
            return Err(invalid("parent", "expected a city or county name"));
        }
        let page = self
            .store()
            .list_townships(&scope, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListTownshipsResponse {
            next_page_token: next_token(&page),
            townships: page.items.into_iter().map(township_to_proto).collect(),
        }))
    }

    async fn create_township(&self, request: Request<pb::CreateTownshipRequest>) -> ServiceResult<pb::Township> {
        let actor = actor(&request);
        let request = request.into_inner();
        let Scope::County(county) = names::parse_scope(&request.parent).map_err(name_error("parent"))? else {
            return Err(invalid("parent", "expected a county name (cities/{city}/counties/{county})"));
        };
        let township = request.township.ok_or_else(|| invalid("township", "the township is missing"))?;
        let mut violations = Vec::new();
        let code = match names::TownshipCode::parse(&township.code) {
            Ok(code) if code.county() == county => Some(code),
            Ok(code) => {
                violations
                    .push(FieldViolation::new("township.code", format!("township {code} is not in county {county}")));
                None
            }
            Err(error) => {
                violations.push(FieldViolation::new("township.code", error.0));
                None
            }
        };
        check_text("township.display_name", &township.display_name, 100, &mut violations);
        let kind = kind_from_proto(township.kind);
        if kind.is_none() {
            violations.push(FieldViolation::new(
                "township.kind",
                "must be TOWN, TOWNSHIP, ETHNIC_TOWNSHIP, SUBDISTRICT or OTHER",
            ));
        }
        let (valid_from, valid_to) = (optional(township.valid_from), optional(township.valid_to));
        check_date("township.valid_from", &valid_from, &mut violations);
        check_date("township.valid_to", &valid_to, &mut violations);
        let (Some(code), Some(kind), true) = (code, kind, violations.is_empty()) else {
            return Err(invalid_all(violations));
        };
        let township = Township {
            code,
            name: township.display_name,
            kind,
            flags: township.flags,
            valid_from,
            valid_to,
            revision: 1,
            updated_at: now_ms(),
        };
        let created = self.store().create_township(&township, &actor).await.map_err(store_error)?;
        Ok(Response::new(township_to_proto(created)))
    }

    async fn update_township(&self, request: Request<pb::UpdateTownshipRequest>) -> ServiceResult<pb::Township> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update = request.township.ok_or_else(|| invalid("township", "the township is missing"))?;
        let code = names::parse_township(&update.name).map_err(name_error("township.name"))?;
        let mask = request.update_mask.ok_or_else(|| invalid("update_mask", "name the fields to update"))?;
        let mut township = self.store().get_township(&code).await.map_err(store_error)?;
        let expected = if update.etag.is_empty() {
            township.revision
        } else {
            revision_of(&update.etag).ok_or_else(|| invalid("township.etag", "not an etag this service issued"))?
        };
        let mut violations = Vec::new();
        for path in &mask.paths {
            match path.as_str() {
                "display_name" => {
                    check_text("township.display_name", &update.display_name, 100, &mut violations);
                    township.name = update.display_name.clone();
                }
                "kind" => match kind_from_proto(update.kind) {
                    Some(kind) => township.kind = kind,
                    None => violations.push(FieldViolation::new("township.kind", "must be a known kind")),
                },
                "flags" => township.flags = update.flags.clone(),
                "valid_from" => township.valid_from = optional(update.valid_from.clone()),
                "valid_to" => township.valid_to = optional(update.valid_to.clone()),
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{other:?} cannot be updated; updatable: display_name, kind, flags, valid_from, valid_to"),
                )),
            }
        }
        check_date("township.valid_from", &township.valid_from, &mut violations);
        check_date("township.valid_to", &township.valid_to, &mut violations);
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let updated = self.store().update_township(&township, expected, &actor).await.map_err(store_error)?;
        Ok(Response::new(township_to_proto(updated)))
    }

    async fn import_divisions(
        &self,
        request: Request<pb::ImportDivisionsRequest>,
    ) -> ServiceResult<pb::ImportDivisionsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        let parsed = crate::divisions::parse(
            &request.cities_csv,
            &request.counties_csv,
            &request.townships_csv,
            &request.code_prefix,
        )
        .map_err(invalid_all)?;
        let counts = if request.validate_only {
            crate::store::ImportCounts {
                cities: parsed.cities.len() as u32,
                counties: parsed.counties.len() as u32,
                townships: parsed.townships.len() as u32,
            }
        } else {
            self.store()
                .import_divisions(&parsed.cities, &parsed.counties, &parsed.townships, &actor)
                .await
                .map_err(store_error)?
        };
        Ok(Response::new(pb::ImportDivisionsResponse {
            cities: counts.cities,
            counties: counts.counties,
            townships: counts.townships,
        }))
    }

    async fn record_indicators(
        &self,
        request: Request<pb::RecordIndicatorsRequest>,
    ) -> ServiceResult<pb::IndicatorObservation> {
        let actor = actor(&request);
        let observation =
            request.into_inner().observation.ok_or_else(|| invalid("observation", "the observation is missing"))?;
        let (parsed, violations) = observation_violations(None, &observation);
        let Some(parsed) = parsed else { return Err(invalid_all(violations)) };
        let mut recorded = self.store().record_observations(&[parsed], &actor, false).await.map_err(store_error)?;
        self.wake_worker();
        Ok(Response::new(observation_to_proto(recorded.remove(0).observation)))
    }

    async fn batch_record_indicators(
        &self,
        request: Request<pb::BatchRecordIndicatorsRequest>,
    ) -> ServiceResult<pb::BatchRecordIndicatorsResponse> {
        let actor = actor(&request);
        let pb::BatchRecordIndicatorsRequest { observations, validate_only } = request.into_inner();
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
        let recorded = self.store().record_observations(&parsed, &actor, validate_only).await.map_err(store_error)?;
        if !validate_only {
            self.wake_worker();
        }
        let unchanged = (0u32..).zip(&recorded).filter(|(_, r)| r.unchanged).map(|(index, _)| index).collect();
        Ok(Response::new(pb::BatchRecordIndicatorsResponse {
            unchanged,
            observations: recorded.into_iter().map(|r| observation_to_proto(r.observation)).collect(),
        }))
    }

    async fn list_indicator_observations(
        &self,
        request: Request<pb::ListIndicatorObservationsRequest>,
    ) -> ServiceResult<pb::ListIndicatorObservationsResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let year = (request.data_year != 0).then_some(request.data_year);
        let page = self
            .store()
            .list_observations(&code, year, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListIndicatorObservationsResponse {
            next_page_token: next_token(&page),
            observations: page.items.into_iter().map(observation_to_proto).collect(),
        }))
    }

    async fn set_city_policy(&self, request: Request<pb::SetCityPolicyRequest>) -> ServiceResult<pb::CityPolicy> {
        let actor = actor(&request);
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let proto = request.policy.ok_or_else(|| invalid("policy", "the policy is missing"))?;
        let mut violations = Vec::new();
        let policy = township_policy::proto::policy_from_proto(
            Some(proto),
            &self.reclassifier.default_policy,
            "policy",
            &mut violations,
        );
        violations.extend(
            policy.violations().into_iter().map(|v| FieldViolation::new(format!("policy.{}", v.field), v.description)),
        );
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        self.store().get_city(&city).await.map_err(store_error)?;
        let stored = self.store().insert_city_policy(&city, &policy, &actor).await.map_err(store_error)?;
        self.wake_worker();
        Ok(Response::new(city_policy_to_proto(stored)))
    }

    async fn get_effective_policy(
        &self,
        request: Request<pb::GetEffectivePolicyRequest>,
    ) -> ServiceResult<pb::CityPolicy> {
        let city = names::parse_city(&request.get_ref().parent).map_err(name_error("parent"))?;
        self.store().get_city(&city).await.map_err(store_error)?;
        let stored = match self.store().latest_city_policy(&city).await.map_err(store_error)? {
            Some(stored) => stored,
            None => CityPolicy {
                city,
                version: 0,
                fingerprint: self.reclassifier.default_policy.fingerprint(),
                policy: (*self.reclassifier.default_policy).clone(),
                created_at: 0,
            },
        };
        Ok(Response::new(city_policy_to_proto(stored)))
    }

    async fn list_city_policies(
        &self,
        request: Request<pb::ListCityPoliciesRequest>,
    ) -> ServiceResult<pb::ListCityPoliciesResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page = self
            .store()
            .list_city_policies(&city, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListCityPoliciesResponse {
            next_page_token: next_token(&page),
            policies: page.items.into_iter().map(city_policy_to_proto).collect(),
        }))
    }

    async fn get_township_class(
        &self,
        request: Request<pb::GetTownshipClassRequest>,
    ) -> ServiceResult<pb::TownshipClass> {
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let township = self.store().get_township(&code).await.map_err(store_error)?;
        let Some(year) = self.data_year(&code.city(), request.data_year).await? else {
            return Err(Status::not_found(format!("township {code} has no indicators yet, so no class")));
        };
        let state = self.cohort_state(&code.city(), year).await?;
        let record = self.store().get_class(&code, year).await.map_err(store_error)?;
        let record = record.unwrap_or_else(|| ClassRecord {
            township: code.clone(),
            data_year: year,
            computed_class: None,
            previous_class: None,
            class_override: None,
            score: 0.0,
            rank: 0,
            indices: PerIndicator::default(),
            run_id: None,
            explanation: String::new(),
        });
        Ok(Response::new(class_to_proto(record, township.name, state)))
    }

    async fn list_township_classes(
        &self,
        request: Request<pb::ListTownshipClassesRequest>,
    ) -> ServiceResult<pb::ListTownshipClassesResponse> {
        let request = request.into_inner();
        let scope = names::parse_scope(&request.parent).map_err(name_error("parent"))?;
        let city = scope.city();
        let Some(year) = self.data_year(&city, request.data_year).await? else {
            return Ok(Response::new(pb::ListTownshipClassesResponse::default()));
        };
        let state = self.cohort_state(&city, year).await?;
        let page = self
            .store()
            .list_classes(&scope, year, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        let next_page_token = next_token(&page);
        let mut classes = Vec::with_capacity(page.items.len());
        for record in page.items {
            // Names come from the hierarchy; a page is at most 1000 townships.
            let name = self.store().get_township(&record.township).await.map(|t| t.name).unwrap_or_default();
            classes.push(class_to_proto(record, name, state));
        }
        Ok(Response::new(pb::ListTownshipClassesResponse { classes, next_page_token, data_year: year }))
    }

    async fn list_class_history(
        &self,
        request: Request<pb::ListClassHistoryRequest>,
    ) -> ServiceResult<pb::ListClassHistoryResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let page = self
            .store()
            .class_history(&code, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListClassHistoryResponse {
            next_page_token: next_token(&page),
            entries: page.items.into_iter().map(history_to_proto).collect(),
        }))
    }

    async fn get_cohort_status(&self, request: Request<pb::GetCohortStatusRequest>) -> ServiceResult<pb::CohortStatus> {
        let request = request.into_inner();
        let city = names::parse_city(&request.city).map_err(name_error("city"))?;
        self.store().get_city(&city).await.map_err(store_error)?;
        let Some(year) = self.data_year(&city, request.data_year).await? else {
            return Ok(Response::new(pb::CohortStatus {
                city: request.city,
                state: pb::CohortState::Empty.into(),
                ..Default::default()
            }));
        };
        let job =
            self.store().cohort_job(&CohortKey { city: city.clone(), data_year: year }).await.map_err(store_error)?;
        Ok(Response::new(match job {
            None => pb::CohortStatus {
                city: request.city,
                data_year: year,
                state: pb::CohortState::Empty.into(),
                ..Default::default()
            },
            Some(job) => pb::CohortStatus {
                city: request.city,
                data_year: year,
                state: cohort_state_to_proto(Some(job.state)).into(),
                attempts: job.attempts,
                last_error: job.last_error,
                last_run: job.last_run.map(|id| run_name(&city, id)).unwrap_or_default(),
                next_attempt_time: (job.state == CohortState::Pending)
                    .then(|| timestamp(job.next_attempt_at))
                    .flatten(),
            },
        }))
    }

    async fn get_classification_run(
        &self,
        request: Request<pb::GetClassificationRunRequest>,
    ) -> ServiceResult<pb::ClassificationRun> {
        let (scope, id) =
            names::parse_child(&request.get_ref().name, "classificationRuns").map_err(name_error("name"))?;
        let Scope::City(city) = scope else {
            return Err(invalid("name", "expected cities/{city}/classificationRuns/{id}"));
        };
        let run = self.store().get_run(&city, id).await.map_err(store_error)?;
        Ok(Response::new(run_to_proto(run, true)))
    }

    async fn list_classification_runs(
        &self,
        request: Request<pb::ListClassificationRunsRequest>,
    ) -> ServiceResult<pb::ListClassificationRunsResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page = self
            .store()
            .list_runs(&city, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListClassificationRunsResponse {
            next_page_token: next_token(&page),
            runs: page.items.into_iter().map(|run| run_to_proto(run, false)).collect(),
        }))
    }

    async fn set_class_override(
        &self,
        request: Request<pb::SetClassOverrideRequest>,
    ) -> ServiceResult<pb::TownshipClass> {
        let actor = actor(&request);
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let mut violations = Vec::new();
        if !(1..=3).contains(&request.township_class) {
            violations.push(FieldViolation::new(
                "township_class",
                format!("township {code}: class must be 1, 2 or 3, got {}", request.township_class),
            ));
        }
        check_text("reason", &request.reason, 1000, &mut violations);
        check_text("document_number", &request.document_number, 100, &mut violations);
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let township = self.store().get_township(&code).await.map_err(store_error)?;
        let Some(year) = self.data_year(&code.city(), request.data_year).await? else {
            return Err(ServiceError::new(
                ErrorKind::FailedPrecondition,
                format!("township {code}: record indicators before overriding its class"),
            )
            .into());
        };
        let class_override = ClassOverride {
            class: request.township_class as u8,
            reason: request.reason,
            document_number: request.document_number,
            set_by: actor.clone(),
            set_at: now_ms(),
        };
        let (record, change) =
            self.store().set_override(&code, year, &class_override, &actor).await.map_err(store_error)?;
        if let Some(change) = change {
            let _ = self.reclassifier.changes.send(change);
        }
        let state = self.cohort_state(&code.city(), year).await?;
        Ok(Response::new(class_to_proto(record, township.name, state)))
    }

    async fn clear_class_override(
        &self,
        request: Request<pb::ClearClassOverrideRequest>,
    ) -> ServiceResult<pb::TownshipClass> {
        let actor = actor(&request);
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let township = self.store().get_township(&code).await.map_err(store_error)?;
        let Some(year) = self.data_year(&code.city(), request.data_year).await? else {
            return Err(Status::not_found(format!("township {code} has no class to clear")));
        };
        let (record, change) = self.store().clear_override(&code, year, &actor).await.map_err(store_error)?;
        if let Some(change) = change {
            let _ = self.reclassifier.changes.send(change);
        }
        let state = self.cohort_state(&code.city(), year).await?;
        Ok(Response::new(class_to_proto(record, township.name, state)))
    }

    async fn preview_classification(
        &self,
        request: Request<pb::PreviewClassificationRequest>,
    ) -> ServiceResult<pb::PreviewClassificationResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.city).map_err(name_error("city"))?;
        self.store().get_city(&city).await.map_err(store_error)?;
        let Some(year) = self.data_year(&city, request.data_year).await? else {
            return Err(ServiceError::new(
                ErrorKind::FailedPrecondition,
                format!("city {city} has no indicators to preview"),
            )
            .into());
        };
        let cohort = CohortKey { city: city.clone(), data_year: year };
        let mut inputs = self.store().cohort_inputs(&cohort).await.map_err(store_error)?;
        let mut violations = Vec::new();
        for (index, changed) in request.changed_indicators.iter().enumerate() {
            let mut changed = changed.clone();
            changed.data_year = year;
            let (parsed, problems) = observation_violations(Some(index), &changed);
            violations.extend(
                problems
                    .into_iter()
                    .map(|v| FieldViolation::new(v.field.replace("observations", "changed_indicators"), v.description)),
            );
            let Some(parsed) = parsed else { continue };
            if parsed.township.city() != city {
                violations.push(FieldViolation::new(
                    format!("changed_indicators[{index}].township"),
                    format!("township {} is not in city {city}", parsed.township),
                ));
                continue;
            }
            let observation = IndicatorObservation {
                id: 0,
                township: parsed.township.clone(),
                data_year: year,
                values: parsed.values,
                source: parsed.source,
                recorded_at: now_ms(),
                recorded_by: String::new(),
            };
            match inputs.iter_mut().find(|(township, _)| township.code == parsed.township) {
                Some(entry) => entry.1 = observation,
                None => {
                    let township = self.store().get_township(&parsed.township).await.map_err(store_error)?;
                    inputs.push((township, observation));
                }
            }
        }
        let (effective, _) = self.reclassifier.effective_policy(&city).await.map_err(store_error)?;
        let policy = match request.policy {
            None => effective,
            Some(proto) => {
                let policy =
                    township_policy::proto::policy_from_proto(Some(proto), &effective, "policy", &mut violations);
                violations.extend(
                    policy
                        .violations()
                        .into_iter()
                        .map(|v| FieldViolation::new(format!("policy.{}", v.field), v.description)),
                );
                policy
            }
        };
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let answer = self
            .classifier
            .clone()
            .classify(classify_request(&policy, &inputs))
            .await
            .map_err(|status| {
                let kind = if status.code() == tonic::Code::InvalidArgument {
                    ErrorKind::FailedPrecondition
                } else {
                    ErrorKind::Unavailable
                };
                Status::from(ServiceError::new(
                    kind,
                    format!("the classifier could not classify city {city}'s {year} cohort: {}", status.message()),
                ))
            })?
            .into_inner();
        let mut changes = Vec::new();
        for result in &answer.results {
            let Ok(code) = TownshipCode::parse(&result.id) else { continue };
            let current =
                self.store().get_class(&code, year).await.map_err(store_error)?.and_then(|r| r.computed_class);
            if current != Some(result.township_class as u8) {
                changes.push(pb::ClassChange {
                    township: names::township_name(&code),
                    display_name: result.name.clone(),
                    data_year: year,
                    previous_class: current.map_or(0, u32::from),
                    new_class: result.township_class,
                    score: result.score,
                    run: String::new(),
                    change_time: None,
                });
            }
        }
        Ok(Response::new(pb::PreviewClassificationResponse { result: Some(answer), changes }))
    }

    type WatchClassChangesStream = ChangeStream;

    async fn watch_class_changes(
        &self,
        request: Request<pb::WatchClassChangesRequest>,
    ) -> ServiceResult<Self::WatchClassChangesStream> {
        let filter = request.into_inner().city;
        let city = if filter.is_empty() { None } else { Some(names::parse_city(&filter).map_err(name_error("city"))?) };
        let stream = BroadcastStream::new(self.reclassifier.changes.subscribe()).filter_map(move |item| match item {
            Ok(change) if city.as_ref().is_none_or(|c| change.township.city() == *c) => {
                Some(Ok(pb::WatchClassChangesResponse { change: Some(change_to_proto(change)) }))
            }
            Ok(_) => None,
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => Some(Err(Status::data_loss(
                format!("this subscriber fell behind and missed {missed} changes; re-read ListTownshipClasses and watch again"),
            ))),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create_institution(
        &self,
        request: Request<pb::CreateInstitutionRequest>,
    ) -> ServiceResult<pb::Institution> {
        let actor = actor(&request);
        let (new, limit) = self.prepare_institution(request.into_inner()).await?;
        let created = self.store().create_institution(&new, limit, &actor).await.map_err(store_error)?;
        Ok(Response::new(institution_to_proto(created)))
    }

    async fn batch_create_institutions(
        &self,
        request: Request<pb::BatchCreateInstitutionsRequest>,
    ) -> ServiceResult<pb::BatchCreateInstitutionsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let mut records = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            let (institution, max_of_kind) = self.prepare_institution(one).await.map_err(in_request(index))?;
            records.push(NewRecord::Institution { institution, max_of_kind });
        }
        let created = self.store().batch_create(&records, &actor, request.validate_only).await.map_err(store_error)?;
        let institutions = created
            .into_iter()
            .filter_map(|record| match record {
                CreatedRecord::Institution(institution) => Some(institution_to_proto(institution)),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchCreateInstitutionsResponse { institutions }))
    }

    async fn get_institution(&self, request: Request<pb::GetInstitutionRequest>) -> ServiceResult<pb::Institution> {
        let (code, id) = township_child(&request.get_ref().name, "institutions")?;
        let institution = self.store().get_institution(&code, id).await.map_err(store_error)?;
        Ok(Response::new(institution_to_proto(institution)))
    }

    async fn list_institutions(
        &self,
        request: Request<pb::ListInstitutionsRequest>,
    ) -> ServiceResult<pb::ListInstitutionsResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let page = self
            .store()
            .list_institutions(&code, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListInstitutionsResponse {
            next_page_token: next_token(&page),
            institutions: page.items.into_iter().map(institution_to_proto).collect(),
        }))
    }

    async fn delete_institution(
        &self,
        request: Request<pb::DeleteInstitutionRequest>,
    ) -> ServiceResult<pb::DeleteInstitutionResponse> {
        let actor = actor(&request);
        let (code, id) = township_child(&request.get_ref().name, "institutions")?;
        self.store().delete_institution(&code, id, &actor).await.map_err(store_error)?;
        Ok(Response::new(pb::DeleteInstitutionResponse {}))
    }

    async fn create_plaque(&self, request: Request<pb::CreatePlaqueRequest>) -> ServiceResult<pb::Plaque> {
        let actor = actor(&request);
        let request = request.into_inner();
        let (code, institution_id) = township_child(&request.parent, "institutions")?;
        let plaque = request.plaque.ok_or_else(|| invalid("plaque", "the plaque is missing"))?;
        let mut violations = Vec::new();
        check_text("plaque.display_name", &plaque.display_name, 100, &mut violations);
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let (policy, _) = self.reclassifier.effective_policy(&code.city()).await.map_err(store_error)?;
        let new =
            NewPlaque { institution_id, name: plaque.display_name, approving_document: plaque.approving_document };
        let created = self
            .store()
            .create_plaque(&code, &new, policy.max_plaques_per_township, &actor)
            .await
            .map_err(store_error)?;
        Ok(Response::new(plaque_to_proto(created)))
    }

    async fn list_plaques(&self, request: Request<pb::ListPlaquesRequest>) -> ServiceResult<pb::ListPlaquesResponse> {
        let request = request.into_inner();
        let (code, institution) = match names::parse_township(&request.parent) {
            Ok(code) => (code, None),
            Err(_) => {
                let (code, id) = township_child(&request.parent, "institutions")?;
                (code, Some(id))
            }
        };
        let page = self
            .store()
            .list_plaques(&code, institution, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListPlaquesResponse {
            next_page_token: next_token(&page),
            plaques: page.items.into_iter().map(plaque_to_proto).collect(),
        }))
    }

    async fn delete_plaque(
        &self,
        request: Request<pb::DeletePlaqueRequest>,
    ) -> ServiceResult<pb::DeletePlaqueResponse> {
        let actor = actor(&request);
        let name = &request.get_ref().name;
        let bad = || invalid("name", format!("{name:?} is not a plaque name ({{institution}}/plaques/{{id}})"));
        let (institution, plaque) = name.rsplit_once("/plaques/").ok_or_else(bad)?;
        let plaque: i64 = plaque.parse().map_err(|_| bad())?;
        let (code, institution_id) = township_child(institution, "institutions")?;
        self.store().delete_plaque(&code, institution_id, plaque, &actor).await.map_err(store_error)?;
        Ok(Response::new(pb::DeletePlaqueResponse {}))
    }

    async fn create_leadership_post(
        &self,
        request: Request<pb::CreateLeadershipPostRequest>,
    ) -> ServiceResult<pb::LeadershipPost> {
        let actor = actor(&request);
        let (new, quota) = self.prepare_post(request.into_inner()).await?;
        let created = self.store().create_post(&new, quota, &actor).await.map_err(store_error)?;
        Ok(Response::new(post_to_proto(created)))
    }

    async fn batch_create_leadership_posts(
        &self,
        request: Request<pb::BatchCreateLeadershipPostsRequest>,
    ) -> ServiceResult<pb::BatchCreateLeadershipPostsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let mut records = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            let (post, quota) = self.prepare_post(one).await.map_err(in_request(index))?;
            records.push(NewRecord::Post { post, quota });
        }
        let created = self.store().batch_create(&records, &actor, request.validate_only).await.map_err(store_error)?;
        let posts = created
            .into_iter()
            .filter_map(|record| match record {
                CreatedRecord::Post(post) => Some(post_to_proto(post)),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchCreateLeadershipPostsResponse { posts }))
    }

    async fn list_leadership_posts(
        &self,
        request: Request<pb::ListLeadershipPostsRequest>,
    ) -> ServiceResult<pb::ListLeadershipPostsResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let page = self
            .store()
            .list_posts(&code, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListLeadershipPostsResponse {
            next_page_token: next_token(&page),
            posts: page.items.into_iter().map(post_to_proto).collect(),
        }))
    }

    async fn update_leadership_post(
        &self,
        request: Request<pb::UpdateLeadershipPostRequest>,
    ) -> ServiceResult<pb::LeadershipPost> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update = request.post.ok_or_else(|| invalid("post", "the post is missing"))?;
        let mask = request.update_mask.ok_or_else(|| invalid("update_mask", "name the fields to update"))?;
        let (code, id) = township_child(&update.name, "posts")?;
        let mut post = self.store().get_post(&code, id).await.map_err(store_error)?;
        let expected = if update.etag.is_empty() {
            post.revision
        } else {
            revision_of(&update.etag).ok_or_else(|| invalid("post.etag", "not an etag this service issued"))?
        };
        let mut violations = Vec::new();
        for path in &mask.paths {
            match path.as_str() {
                "role" => {
                    check_text("post.role", &update.role, 100, &mut violations);
                    post.role = update.role.clone();
                }
                "holder" => post.holder = optional(update.holder.clone()),
                "mandated_role" => match mandated_role_from_proto(update.mandated_role) {
                    Some(role) => post.mandated_role = role,
                    None => violations.push(FieldViolation::new("post.mandated_role", "unknown mandated role")),
                },
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{other:?} cannot be updated; updatable: role, holder, mandated_role"),
                )),
            }
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let updated = self.store().update_post(&post, expected, &actor).await.map_err(store_error)?;
        Ok(Response::new(post_to_proto(updated)))
    }

    async fn delete_leadership_post(
        &self,
        request: Request<pb::DeleteLeadershipPostRequest>,
    ) -> ServiceResult<pb::DeleteLeadershipPostResponse> {
        let actor = actor(&request);
        let (code, id) = township_child(&request.get_ref().name, "posts")?;
        self.store().delete_post(&code, id, &actor).await.map_err(store_error)?;
        Ok(Response::new(pb::DeleteLeadershipPostResponse {}))
    }

    async fn create_catalogue_item(
        &self,
        request: Request<pb::CreateCatalogueItemRequest>,
    ) -> ServiceResult<pb::CatalogueItem> {
        let actor = actor(&request);
        let (new, kind) = self.prepare_catalogue_item(request.into_inner()).await?;
        let created = self.store().create_catalogue_item(&new, &actor).await.map_err(store_error)?;
        let entry = CatalogueEntry { item: created, inherited: false, resolution: Resolution::NotApplicable };
        Ok(Response::new(catalogue_item_to_proto(entry, kind)))
    }

    async fn batch_create_catalogue_items(
        &self,
        request: Request<pb::BatchCreateCatalogueItemsRequest>,
    ) -> ServiceResult<pb::BatchCreateCatalogueItemsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let mut records = Vec::with_capacity(request.requests.len());
        let mut kinds = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            let (item, kind) = self.prepare_catalogue_item(one).await.map_err(in_request(index))?;
            records.push(NewRecord::CatalogueItem(item));
            kinds.push(kind);
        }
        let created = self.store().batch_create(&records, &actor, request.validate_only).await.map_err(store_error)?;
        let catalogue_items = created
            .into_iter()
            .zip(kinds)
            .filter_map(|(record, kind)| match record {
                CreatedRecord::CatalogueItem(item) => Some(catalogue_item_to_proto(
                    CatalogueEntry { item, inherited: false, resolution: Resolution::NotApplicable },
                    kind,
                )),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchCreateCatalogueItemsResponse { catalogue_items }))
    }

    async fn get_catalogue_item(
        &self,
        request: Request<pb::GetCatalogueItemRequest>,
    ) -> ServiceResult<pb::CatalogueItem> {
        let (owner, id) = catalogue_item_ref(&request.get_ref().name)?;
        let item = self.store().get_catalogue_item(&owner, id).await.map_err(store_error)?;
        let kind = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await.map_err(store_error)?.kind),
            CatalogueOwner::County(_) => None,
        };
        let entry = CatalogueEntry { item, inherited: false, resolution: Resolution::NotApplicable };
        Ok(Response::new(catalogue_item_to_proto(entry, kind)))
    }

    async fn list_catalogue_items(
        &self,
        request: Request<pb::ListCatalogueItemsRequest>,
    ) -> ServiceResult<pb::ListCatalogueItemsResponse> {
        let request = request.into_inner();
        let owner = catalogue_owner(&request.parent, "parent")?;
        let item_type = match request.item_type {
            0 => None,
            value => Some(item_type_from_proto(value).ok_or_else(|| {
                invalid("item_type", format!("unknown item type {value}; use POWER, RESPONSIBILITY or PUBLIC_SERVICE"))
            })?),
        };
        let page = self
            .store()
            .list_catalogue_items(&owner, item_type, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        let kind = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await.map_err(store_error)?.kind),
            CatalogueOwner::County(_) => None,
        };
        Ok(Response::new(pb::ListCatalogueItemsResponse {
            next_page_token: next_token(&page),
            catalogue_items: page.items.into_iter().map(|entry| catalogue_item_to_proto(entry, kind)).collect(),
        }))
    }

    async fn delete_catalogue_item(
        &self,
        request: Request<pb::DeleteCatalogueItemRequest>,
    ) -> ServiceResult<pb::DeleteCatalogueItemResponse> {
        let actor = actor(&request);
        let (owner, id) = catalogue_item_ref(&request.get_ref().name)?;
        self.store().delete_catalogue_item(&owner, id, &actor).await.map_err(store_error)?;
        Ok(Response::new(pb::DeleteCatalogueItemResponse {}))
    }

    async fn get_compliance_report(
        &self,
        request: Request<pb::GetComplianceReportRequest>,
    ) -> ServiceResult<pb::ComplianceReport> {
        let scope_name = request.into_inner().scope;
        let scope = names::parse_scope(&scope_name).map_err(name_error("scope"))?;
        let (policy, _) = self.reclassifier.effective_policy(&scope.city()).await.map_err(store_error)?;
        let facts = self.store().township_facts(&scope).await.map_err(store_error)?;
        if facts.is_empty() {
            return Err(Status::not_found(format!("no townships in {scope_name}")));
        }
        let findings = facts.iter().flat_map(|facts| rules::findings(&policy, facts)).map(finding_to_proto).collect();
        Ok(Response::new(pb::ComplianceReport { scope: scope.name(), townships: facts.len() as u32, findings }))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> ServiceResult<pb::ListAuditEventsResponse> {
        let request = request.into_inner();
        let page = self
            .store()
            .list_audit_events(&request.resource_prefix, &page_request(request.page_size, &request.page_token)?)
            .await
            .map_err(store_error)?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            next_page_token: next_token(&page),
            events: page.items.into_iter().map(audit_to_proto).collect(),
        }))
    }
}

/// Parses `{township}/{collection}/{id}`.
fn township_child(name: &str, collection: &str) -> Result<(TownshipCode, i64), Status> {
    match names::parse_child(name, collection).map_err(name_error("name"))? {
        (Scope::Township(code), id) => Ok((code, id)),
        _ => Err(invalid("name", format!("{name:?} is not of the form {{township}}/{collection}/{{id}}"))),
    }
}

/// The owner a catalogue parent names: a county (its template) or a township.
fn catalogue_owner(name: &str, field: &str) -> Result<CatalogueOwner, Status> {
    match names::parse_scope(name).map_err(name_error(field))? {
        Scope::County(county) => Ok(CatalogueOwner::County(county)),
        Scope::Township(township) => Ok(CatalogueOwner::Township(township)),
        Scope::City(_) => Err(invalid(
            field,
            format!("{name:?} is a city; catalogues belong to a county (its template) or to a township"),
        )),
    }
}

/// Parses `{county}/catalogueItems/{id}` or `{township}/catalogueItems/{id}`.
fn catalogue_item_ref(name: &str) -> Result<(CatalogueOwner, i64), Status> {
    match names::parse_child(name, "catalogueItems").map_err(name_error("name"))? {
        (Scope::County(county), id) => Ok((CatalogueOwner::County(county), id)),
        (Scope::Township(township), id) => Ok((CatalogueOwner::Township(township), id)),
        (Scope::City(_), _) => {
            Err(invalid("name", format!("{name:?} is not of the form {{county or township}}/catalogueItems/{{id}}")))
        }
    }
}

/// Checks a catalogue item to create under `owner` (`township` is the owner when it is one), naming the field
/// and the owner in every violation.
fn catalogue_item_violations(
    owner: &CatalogueOwner,
    township: Option<&Township>,
    item: pb::CatalogueItem,
) -> (Option<NewCatalogueItem>, Vec<FieldViolation>) {
    let who = match township {
        Some(t) => format!("township {} ({})", t.code, t.name),
        None => owner.describe(),
    };
    let mut found = OwnerViolations { who, violations: Vec::new() };
    found.text("code", &item.code, 50, true);
    found.text("title", &item.title, 200, true);
    let details = match &item.details {
        None => None,
        Some(pb::catalogue_item::Details::Power(power)) => {
            found.text("power.legal_basis", &power.legal_basis, 2000, true);
            match (power_category_from_proto(power.category), power_origin_from_proto(power.origin)) {
                (Some(category), Some(origin)) => {
                    Some(ItemDetails::Power { category, legal_basis: power.legal_basis.clone(), origin })
                }
                (category, origin) => {
                    if category.is_none() {
                        found.add(
                            "power.category",
                            "must be LICENSING (许可), PENALTY (处罚), COERCION (强制), LEVY (征收), BENEFIT (给付), \
                             INSPECTION (检查), CONFIRMATION (确认), REWARD (奖励), ADJUDICATION (裁决) or OTHER (其他)"
                                .to_owned(),
                        );
                    }
                    if origin.is_none() {
                        found.add(
                            "power.origin",
                            "must be STATUTORY (法定), DEVOLVED (下放) or ENTRUSTED (委托)".to_owned(),
                        );
                    }
                    None
                }
            }
        }
        Some(pb::catalogue_item::Details::Responsibility(responsibility)) => {
            found.text("responsibility.power_item_code", &responsibility.power_item_code, 50, false);
            found.text("responsibility.duties", &responsibility.duties, 2000, true);
            found.text("responsibility.accountability_cases", &responsibility.accountability_cases, 2000, false);
            Some(ItemDetails::Responsibility {
                power_item_code: optional(responsibility.power_item_code.clone()),
                duties: responsibility.duties.clone(),
                accountability_cases: responsibility.accountability_cases.clone(),
            })
        }
        Some(pb::catalogue_item::Details::PublicService(service)) => {
            found.text("public_service.service_domain", &service.service_domain, 100, true);
            match handling_mode_from_proto(service.handling_mode) {
                Some(handling_mode) => {
                    Some(ItemDetails::PublicService { service_domain: service.service_domain.clone(), handling_mode })
                }
                None => {
                    found.add(
                        "public_service.handling_mode",
                        "must be DIRECT (直办), ON_BEHALF (代办), ASSISTED (协办) or NOTIFY (告知)".to_owned(),
                    );
                    None
                }
            }
        }
    };
    if item.details.is_none() {
        found.add("details", "set one of power, responsibility or public_service".to_owned());
    }
    match (item.item_type, item.details.as_ref().map(details_type)) {
        (0, _) => {}
        (value, Some(given)) if item_type_from_proto(value) == Some(given) => {}
        (value, given) => found.add(
            "item_type",
            match (item_type_from_proto(value), given) {
                (None, _) => format!("unknown item type {value}"),
                (Some(declared), Some(given)) => format!(
                    "item_type is {} but the details are of a {} item",
                    declared.as_str().to_uppercase(),
                    given.as_str()
                ),
                (Some(_), None) => "the details of the item type are missing".to_owned(),
            },
        ),
    }
    let duty_area = match duty_area_from_proto(item.duty_area) {
        None => {
            found.add("duty_area", format!("unknown or missing duty area {}", item.duty_area));
            None
        }
        Some(area) => match township {
            Some(t) if !area.applies_to(t.kind) => {
                found.add(
                    "duty_area",
                    format!(
                        "{} ({}) is not a duty area of a {}; a {}'s areas are {}",
                        area.as_str(),
                        area.label_zh(),
                        t.kind.label_zh(),
                        t.kind.label_zh(),
                        duty_areas_for(t.kind)
                            .iter()
                            .map(|a| format!("{} ({})", a.as_str(), a.label_zh_for(t.kind)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                None
            }
            _ => Some(area),
        },
    };
    let responsible_institution_id = match owner {
        CatalogueOwner::Township(code) => {
            let name = &item.responsible_institution;
            match names::parse_child(name, "institutions") {
                _ if name.trim().is_empty() => {
                    found.add(
                        "responsible_institution",
                        "must name the responsible institution ({township}/institutions/{id})".to_owned(),
                    );
                    None
                }
                Ok((Scope::Township(of), id)) if of == *code => Some(id),
                Ok(_) => {
                    found.add("responsible_institution", format!("{name:?} is not an institution of this township"));
                    None
                }
                Err(error) => {
                    found.add("responsible_institution", error.0);
                    None
                }
            }
        }
        CatalogueOwner::County(_) => {
            if !item.responsible_institution.is_empty() {
                found.add(
                    "responsible_institution",
                    "a template item names its responsible institution by title (responsible_institution_title), \
                     resolved in each township; leave responsible_institution empty"
                        .to_owned(),
                );
            }
            found.text("responsible_institution_title", &item.responsible_institution_title, 100, true);
            None
        }
    };
    let new = match (details, duty_area) {
        (Some(details), Some(duty_area)) if found.violations.is_empty() => Some(NewCatalogueItem {
            owner: owner.clone(),
            code: item.code.trim().to_owned(),
            title: item.title,
            duty_area,
            responsible_institution_id,
            responsible_institution_title: item.responsible_institution_title,
            details,
        }),
        _ => None,
    };
    (new, found.violations)
}

/// Violations of one request, each description starting with the township or county it concerns.
struct OwnerViolations {
    who: String,
    violations: Vec<FieldViolation>,
}

impl OwnerViolations {
    fn add(&mut self, field: &str, description: String) {
        let description = format!("{}: {description}", self.who);
        self.violations.push(FieldViolation::new(format!("catalogue_item.{field}"), description));
    }

    fn text(&mut self, field: &str, value: &str, max_chars: usize, required: bool) {
        if required && value.trim().is_empty() {
            self.add(field, "must not be empty".to_owned());
        } else if value.chars().count() > max_chars {
            self.add(field, format!("must be at most {max_chars} characters"));
        }
    }
}

fn details_type(details: &pb::catalogue_item::Details) -> crate::domain::catalogue::CatalogueItemType {
    use crate::domain::catalogue::CatalogueItemType;
    match details {
        pb::catalogue_item::Details::Power(_) => CatalogueItemType::Power,
        pb::catalogue_item::Details::Responsibility(_) => CatalogueItemType::Responsibility,
        pb::catalogue_item::Details::PublicService(_) => CatalogueItemType::PublicService,
    }
}

fn run_to_proto(run: ClassificationRun, full: bool) -> pb::ClassificationRun {
    let (result, inputs) = if full {
        let result: Option<cpb::ClassifyResponse> = prost::Message::decode(run.response.as_slice()).ok();
        let answered: std::collections::HashMap<&str, &cpb::TownshipResult> =
            result.iter().flat_map(|r| &r.results).map(|t| (t.id.as_str(), t)).collect();
        let inputs = run
            .lines
            .iter()
            .map(|line| {
                let answer = answered.get(line.township.as_str());
                cpb::TownshipInput {
                    id: line.township.to_string(),
                    name: answer.map(|t| t.name.clone()).unwrap_or_default(),
                    kind: answer.map_or(0, |t| t.kind),
                    indicators: Some(values_to_proto(line.inputs)),
                }
            })
            .collect();
        (result, inputs)
    } else {
        (None, Vec::new())
    };
    pb::ClassificationRun {
        name: run_name(&run.cohort.city, run.id),
        data_year: run.cohort.data_year,
        policy_version: run.policy_version,
        policy_fingerprint: run.policy_fingerprint,
        run_time: timestamp(run.run_at),
        result,
        inputs,
        classes_changed: run.classes_changed,
    }
}

/// The most records one batch create carries: a county's institutions are a few hundred, a city's a few thousand.
const MAX_BATCH_CREATE: usize = 10_000;

fn check_batch_size(count: usize) -> Result<(), Status> {
    if count > MAX_BATCH_CREATE {
        return Err(invalid("requests", format!("{count} requests; at most {MAX_BATCH_CREATE} per batch")));
    }
    Ok(())
}

/// The status of the `index`th request of a batch: field violations become `requests[index].field`, other
/// messages are prefixed with `requests[index]`.
fn in_request(index: usize) -> impl Fn(Status) -> Status {
    move |status| {
        use tonic_types::StatusExt as _;
        match status.get_details_bad_request() {
            Some(bad_request) if status.code() == tonic::Code::InvalidArgument => invalid_all(
                bad_request
                    .field_violations
                    .into_iter()
                    .map(|v| FieldViolation::new(format!("requests[{index}].{}", v.field), v.description))
                    .collect(),
            ),
            _ => Status::new(status.code(), format!("requests[{index}]: {}", status.message())),
        }
    }
}

impl RegistryApi {
    /// Validates a create request and computes the limit of its kind for the township's current class.
    async fn prepare_institution(
        &self,
        request: pb::CreateInstitutionRequest,
    ) -> Result<(NewInstitution, u32), Status> {
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let institution = request.institution.ok_or_else(|| invalid("institution", "the institution is missing"))?;
        let mut violations = Vec::new();
        let kind = institution_kind_from_proto(institution.kind);
        if kind.is_none() {
            violations.push(FieldViolation::new(
                "institution.kind",
                format!(
                    "township {code}: kind must be PARTY_GOVERNMENT_OFFICE, PUBLIC_INSTITUTION or LAW_ENFORCEMENT_UNIT"
                ),
            ));
        }
        check_text("institution.display_name", &institution.display_name, 100, &mut violations);
        let (valid_from, valid_to) = (optional(institution.valid_from), optional(institution.valid_to));
        check_date("institution.valid_from", &valid_from, &mut violations);
        check_date("institution.valid_to", &valid_to, &mut violations);
        let (Some(kind), true) = (kind, violations.is_empty()) else { return Err(invalid_all(violations)) };
        self.store().get_township(&code).await.map_err(store_error)?;
        let class = self.current_class(&code).await?;
        let (policy, _) = self.reclassifier.effective_policy(&code.city()).await.map_err(store_error)?;
        let limit = rules::institution_limit(&policy, class, kind);
        let new = NewInstitution {
            township: code,
            kind,
            name: institution.display_name,
            staffing_quota: institution.staffing_quota,
            approving_document: institution.approving_document,
            valid_from,
            valid_to,
        };
        Ok((new, limit))
    }

    /// Validates a create request and computes the township's post quota for its current class.
    async fn prepare_post(&self, request: pb::CreateLeadershipPostRequest) -> Result<(NewPost, u32), Status> {
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let post = request.post.ok_or_else(|| invalid("post", "the post is missing"))?;
        let mut violations = Vec::new();
        check_text("post.role", &post.role, 100, &mut violations);
        let mandated_role = mandated_role_from_proto(post.mandated_role).unwrap_or_else(|| {
            violations.push(FieldViolation::new(
                "post.mandated_role",
                format!("unknown mandated role {}", post.mandated_role),
            ));
            None
        });
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        self.store().get_township(&code).await.map_err(store_error)?;
        let class = self.current_class(&code).await?;
        let (policy, _) = self.reclassifier.effective_policy(&code.city()).await.map_err(store_error)?;
        let quota = rules::limits_for(&policy, class).leadership_posts;
        Ok((NewPost { township: code, role: post.role, holder: optional(post.holder), mandated_role }, quota))
    }

    /// Validates a create request; also returns the township's kind (none for a county template item).
    async fn prepare_catalogue_item(
        &self,
        request: pb::CreateCatalogueItemRequest,
    ) -> Result<(NewCatalogueItem, Option<TownshipKind>), Status> {
        let owner = catalogue_owner(&request.parent, "parent")?;
        let item = request.catalogue_item.ok_or_else(|| invalid("catalogue_item", "the catalogue item is missing"))?;
        let township = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await.map_err(store_error)?),
            CatalogueOwner::County(_) => None,
        };
        let (new, violations) = catalogue_item_violations(&owner, township.as_ref(), item);
        let Some(new) = new else { return Err(invalid_all(violations)) };
        Ok((new, township.map(|t| t.kind)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor_of(header: &str) -> String {
        let mut request = Request::new(());
        request.metadata_mut().insert("x-actor", header.parse().unwrap());
        actor(&request)
    }

    #[test]
    fn the_actor_header_is_decoded_to_one_clean_line() {
        assert_eq!(actor_of("%E7%BC%96%E5%8A%9E%20tester"), "编办 tester");
        assert_eq!(actor_of("mallory%0Aactor%3A%20admin%00"), "malloryactor: admin");
        assert_eq!(actor_of("%0A%0D"), "anonymous");
        assert_eq!(actor_of(&"a".repeat(300)).len(), 200);
        assert_eq!(actor(&Request::new(())), "anonymous");
    }
}
