//! A city's data years: their coverage and state, and the adoption of a year as the current one.

use tonic::{Request, Response};
use township_policy::FieldViolation;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid_all, name_error};
use super::idempotency::{made, request_key};
use super::request::{actor, check_date, check_text, next_token, page_request};
use super::{RegistryApi, ServiceResult};
use crate::domain::names;
use crate::domain::years::{NewYearAdoption, current_year};
use crate::store::{Create, Created, Page};

/// The largest data year accepted.
const MAX_YEAR: i32 = 9999;

impl RegistryApi {
    pub(super) async fn adopt_data_year(
        &self,
        request: Request<pb::AdoptDataYearRequest>,
    ) -> ServiceResult<pb::DataYearAdoption> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("AdoptDataYear", &request.request_id, &request)?;
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let mut violations = Vec::new();
        if !(1..=MAX_YEAR).contains(&request.data_year) {
            violations.push(FieldViolation::new(
                "data_year",
                format!("city {city}: must be a year such as 2024, got {}", request.data_year),
            ));
        }
        check_text("document_number", &request.document_number, 100, &mut violations);
        check_text("reason", &request.reason, 1000, &mut violations);
        if request.adopted_on.is_empty() {
            violations
                .push(FieldViolation::new("adopted_on", format!("city {city}: the date of the adoption is missing")));
        } else {
            check_date("adopted_on", &Some(request.adopted_on.clone()), &mut violations);
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let adoption = NewYearAdoption {
            city,
            data_year: request.data_year,
            document_number: request.document_number,
            adopted_on: request.adopted_on,
            reason: request.reason,
        };
        let stored = made!(self.create_once(key, Create::YearAdoption(adoption), &actor).await?, Created::YearAdoption);
        Ok(Response::new(adoption_to_proto(stored)))
    }

    pub(super) async fn list_data_years(
        &self,
        request: Request<pb::ListDataYearsRequest>,
    ) -> ServiceResult<pb::ListDataYearsResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page = page_request(request.page_size, &request.page_token)?;
        let years = self.store().data_years(&city).await?;
        let current = current_year(&years);
        // Newest first; a page continues after the year its token names. A city has one entry per year.
        let after = page.after.as_deref().and_then(|key| key.parse::<i32>().ok()).unwrap_or(i32::MAX);
        let size = if page.size == 0 { 100 } else { usize::try_from(page.size).unwrap_or(usize::MAX) };
        let mut newest: Vec<_> = years.into_iter().rev().filter(|year| year.data_year < after).collect();
        let more = newest.len() > size;
        newest.truncate(size);
        let next = if more { newest.last().map(|year| year.data_year.to_string()) } else { None };
        let next_page_token = next_token(&Page { items: Vec::<()>::new(), next });
        Ok(Response::new(pb::ListDataYearsResponse {
            years: newest.into_iter().map(|year| data_year_to_proto(year, current)).collect(),
            next_page_token,
            current_year: current.unwrap_or(0),
        }))
    }
}
