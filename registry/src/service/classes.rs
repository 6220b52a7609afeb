//! Classes, their history, cohort status and runs, overrides, the what-if preview and the change stream.

use tokio_stream::{StreamExt, wrappers::BroadcastStream};
use tonic::{Request, Response, Status};
use township_policy::{FieldViolation, PerIndicator};
use township_proto::classifier::v1 as cpb;
use township_proto::registry::v1 as pb;
use township_runtime::now_ms;

use super::access::visible;
use super::convert::*;
use super::error::{failed_precondition, invalid, invalid_all, name_error};
use super::indicators::{MAX_BATCH, observation_violations};
use super::request::{actor, check_text, next_token, page_request};
use super::{ChangeStream, RegistryApi, ServiceResult};
use crate::domain::model::*;
use crate::domain::names::{self, CityCode, Scope};
use crate::preview::{self, PreviewError};

impl RegistryApi {
    /// The data year a request means: the given one, or the city's latest with observations.
    async fn data_year(&self, city: &CityCode, requested: i32) -> Result<Option<i32>, Status> {
        if requested < 0 {
            return Err(invalid(
                "data_year",
                format!("must be a year such as 2023 or 0 for the latest, got {requested}"),
            ));
        }
        Ok(crate::limits::data_year(self.store(), city, requested).await?)
    }

    /// The data year a class read or override means: the given one, or the city's current year.
    async fn class_year(&self, city: &CityCode, requested: i32) -> Result<Option<i32>, Status> {
        if requested < 0 {
            return Err(invalid(
                "data_year",
                format!("must be a year such as 2023 or 0 for the current year, got {requested}"),
            ));
        }
        Ok(crate::limits::class_year(self.store(), city, requested).await?)
    }

    async fn cohort_state(&self, city: &CityCode, data_year: i32) -> Result<Option<CohortState>, Status> {
        let cohort = CohortKey { city: city.clone(), data_year };
        Ok(self.store().cohort_job(&cohort).await?.map(|job| job.state))
    }
}

impl RegistryApi {
    pub(super) async fn get_township_class(
        &self,
        request: Request<pb::GetTownshipClassRequest>,
    ) -> ServiceResult<pb::TownshipClass> {
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let township = self.store().get_township(&code).await?;
        let Some(year) = self.class_year(&code.city(), request.data_year).await? else {
            return Err(Status::not_found(format!(
                "township {code}: city {} has no current year (no data year covers every township in force and \
                 none was adopted), so no official class; name a data_year, or see ListDataYears",
                code.city()
            )));
        };
        let state = self.cohort_state(&code.city(), year).await?;
        let record = self.store().get_class(&code, year).await?;
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

    pub(super) async fn list_township_classes(
        &self,
        request: Request<pb::ListTownshipClassesRequest>,
    ) -> ServiceResult<pb::ListTownshipClassesResponse> {
        let visible = visible(&request);
        let request = request.into_inner();
        let scope = names::parse_scope(&request.parent).map_err(name_error("parent"))?;
        let city = scope.city();
        let Some(year) = self.class_year(&city, request.data_year).await? else {
            return Ok(Response::new(pb::ListTownshipClassesResponse::default()));
        };
        let state = self.cohort_state(&city, year).await?;
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_visible_classes(&scope, year, &page, &visible).await?;
        let next_page_token = next_token(&page);
        let mut classes = Vec::with_capacity(page.items.len());
        for record in page.items {
            // Names come from the hierarchy; a page is at most 1000 townships.
            let name = self.store().get_township(&record.township).await.map(|t| t.name).unwrap_or_default();
            classes.push(class_to_proto(record, name, state));
        }
        Ok(Response::new(pb::ListTownshipClassesResponse { classes, next_page_token, data_year: year }))
    }

    pub(super) async fn list_class_history(
        &self,
        request: Request<pb::ListClassHistoryRequest>,
    ) -> ServiceResult<pb::ListClassHistoryResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let page = self.store().class_history(&code, &page_request(request.page_size, &request.page_token)?).await?;
        Ok(Response::new(pb::ListClassHistoryResponse {
            next_page_token: next_token(&page),
            entries: page.items.into_iter().map(history_to_proto).collect(),
        }))
    }

    pub(super) async fn get_cohort_status(
        &self,
        request: Request<pb::GetCohortStatusRequest>,
    ) -> ServiceResult<pb::CohortStatus> {
        let request = request.into_inner();
        let city = names::parse_city(&request.city).map_err(name_error("city"))?;
        self.store().get_city(&city).await?;
        let Some(year) = self.data_year(&city, request.data_year).await? else {
            return Ok(Response::new(pb::CohortStatus {
                city: request.city,
                state: pb::CohortState::Empty.into(),
                ..Default::default()
            }));
        };
        let job = self.store().cohort_job(&CohortKey { city: city.clone(), data_year: year }).await?;
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

    pub(super) async fn get_classification_run(
        &self,
        request: Request<pb::GetClassificationRunRequest>,
    ) -> ServiceResult<pb::ClassificationRun> {
        let (scope, id) =
            names::parse_child(&request.get_ref().name, "classificationRuns").map_err(name_error("name"))?;
        let Scope::City(city) = scope else {
            return Err(invalid("name", "expected cities/{city}/classificationRuns/{id}"));
        };
        let run = self.store().get_run(&city, id).await?;
        Ok(Response::new(run_to_proto(run, true)))
    }

    pub(super) async fn list_classification_runs(
        &self,
        request: Request<pb::ListClassificationRunsRequest>,
    ) -> ServiceResult<pb::ListClassificationRunsResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page = self.store().list_runs(&city, &page_request(request.page_size, &request.page_token)?).await?;
        Ok(Response::new(pb::ListClassificationRunsResponse {
            next_page_token: next_token(&page),
            runs: page.items.into_iter().map(|run| run_to_proto(run, false)).collect(),
        }))
    }

    pub(super) async fn set_class_override(
        &self,
        request: Request<pb::SetClassOverrideRequest>,
    ) -> ServiceResult<pb::TownshipClass> {
        let actor = actor(&request);
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let mut violations = Vec::new();
        let class = u8::try_from(request.township_class).ok().filter(|class| (1..=3).contains(class));
        if class.is_none() {
            violations.push(FieldViolation::new(
                "township_class",
                format!("township {code}: class must be 1, 2 or 3, got {}", request.township_class),
            ));
        }
        check_text("reason", &request.reason, 1000, &mut violations);
        check_text("document_number", &request.document_number, 100, &mut violations);
        let (Some(class), true) = (class, violations.is_empty()) else {
            return Err(invalid_all(violations));
        };
        let township = self.store().get_township(&code).await?;
        let Some(year) = self.class_year(&code.city(), request.data_year).await? else {
            return Err(failed_precondition(format!(
                "township {code}: city {} has no current year to override the class in; name a data_year",
                code.city()
            )));
        };
        let class_override = ClassOverride {
            class,
            reason: request.reason,
            document_number: request.document_number,
            set_by: actor.clone(),
            set_at: now_ms(),
        };
        let (record, change) = self.store().set_override(&code, year, &class_override, &actor).await?;
        if let Some(change) = change {
            self.outbox.publish(change);
        }
        let state = self.cohort_state(&code.city(), year).await?;
        Ok(Response::new(class_to_proto(record, township.name, state)))
    }

    pub(super) async fn clear_class_override(
        &self,
        request: Request<pb::ClearClassOverrideRequest>,
    ) -> ServiceResult<pb::TownshipClass> {
        let actor = actor(&request);
        let request = request.into_inner();
        let code = names::parse_township(&request.township).map_err(name_error("township"))?;
        let township = self.store().get_township(&code).await?;
        let Some(year) = self.class_year(&code.city(), request.data_year).await? else {
            return Err(Status::not_found(format!("township {code} has no class to clear in a current year")));
        };
        let (record, change) = self.store().clear_override(&code, year, &actor).await?;
        if let Some(change) = change {
            self.outbox.publish(change);
        }
        let state = self.cohort_state(&code.city(), year).await?;
        Ok(Response::new(class_to_proto(record, township.name, state)))
    }

    pub(super) async fn preview_classification(
        &self,
        request: Request<pb::PreviewClassificationRequest>,
    ) -> ServiceResult<pb::PreviewClassificationResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.city).map_err(name_error("city"))?;
        self.store().get_city(&city).await?;
        let Some(year) = self.data_year(&city, request.data_year).await? else {
            return Err(failed_precondition(format!("city {city} has no indicators to preview")));
        };
        if request.changed_indicators.len() > MAX_BATCH {
            return Err(invalid(
                "changed_indicators",
                format!("{} observations; at most {MAX_BATCH} per preview", request.changed_indicators.len()),
            ));
        }
        let mut violations = Vec::new();
        let mut changed = Vec::with_capacity(request.changed_indicators.len());
        for (index, observation) in request.changed_indicators.iter().enumerate() {
            let mut observation = observation.clone();
            observation.data_year = year;
            let (parsed, problems) = observation_violations(Some(index), &observation);
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
            changed.push(parsed);
        }
        let (effective, _) = self.outbox.effective_policy(&city).await?;
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
        let cohort = CohortKey { city: city.clone(), data_year: year };
        let preview =
            preview::what_if(self.store(), &self.classifier, self.preview_deadline, &cohort, changed, &policy)
                .await
                .map_err(|error| match error {
                    PreviewError::Store(error) => Status::from(error),
                    PreviewError::Classifier(error) => {
                        let message = format!("the classifier could not classify city {city}'s {year} cohort: {error}");
                        // A refused cohort is the request's state (e.g. an indicator all zero), not an outage.
                        if error.is_permanent() { failed_precondition(message) } else { Status::unavailable(message) }
                    }
                })?;
        let changes = preview
            .changes
            .into_iter()
            .map(|change| pb::ClassChange {
                township: names::township_name(&change.township),
                display_name: change.display_name,
                data_year: year,
                previous_class: change.previous_class.map_or(0, u32::from),
                new_class: change.new_class,
                score: change.score,
                run: String::new(),
                change_time: None,
            })
            .collect();
        Ok(Response::new(pb::PreviewClassificationResponse { result: Some(preview.answer), changes }))
    }

    pub(super) async fn watch_class_changes(
        &self,
        request: Request<pb::WatchClassChangesRequest>,
    ) -> ServiceResult<ChangeStream> {
        let visible = visible(&request);
        let filter = request.into_inner().city;
        let city = if filter.is_empty() { None } else { Some(names::parse_city(&filter).map_err(name_error("city"))?) };
        let shown = move |township: &crate::domain::names::TownshipCode| {
            city.as_ref().is_none_or(|c| township.city() == *c) && visible.shows(township.as_str())
        };
        let stream = BroadcastStream::new(self.outbox.changes.subscribe()).filter_map(move |item| match item {
            Ok(change) if shown(&change.township) => {
                Some(Ok(pb::WatchClassChangesResponse { change: Some(change_to_proto(change)) }))
            }
            Ok(_) => None,
            Err(tokio_stream::wrappers::errors::BroadcastStreamRecvError::Lagged(missed)) => Some(Err(Status::data_loss(
                format!("this subscriber fell behind and missed {missed} changes; re-read ListTownshipClasses and watch again"),
            ))),
        });
        Ok(Response::new(Box::pin(stream)))
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
