//! Cities, counties and townships, and the import of the statistics bureau's division files.

use crate::domain::count_u32;
use tonic::{Request, Response};
use township_policy::FieldViolation;
use township_policy::quoted;
use township_proto::registry::v1 as pb;
use township_runtime::now_ms;

use super::access::visible;
use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{made, request_key};
use super::request::{actor, check_date, check_flags, check_text, next_token, optional, page_request};
use super::{RegistryApi, ServiceResult};
use crate::domain::model::Township;
use crate::domain::names::{self, Scope};
use crate::store::{Create, Created};

impl RegistryApi {
    pub(super) async fn get_city(&self, request: Request<pb::GetCityRequest>) -> ServiceResult<pb::City> {
        let city = names::parse_city(&request.get_ref().name).map_err(name_error("name"))?;
        let city = self.store().get_city(&city).await?;
        Ok(Response::new(city_to_proto(city)))
    }

    pub(super) async fn list_cities(
        &self,
        request: Request<pb::ListCitiesRequest>,
    ) -> ServiceResult<pb::ListCitiesResponse> {
        let visible = visible(&request);
        let request = request.into_inner();
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_visible_cities(&page, &visible).await?;
        Ok(Response::new(pb::ListCitiesResponse {
            next_page_token: next_token(&page),
            cities: page.items.into_iter().map(city_to_proto).collect(),
        }))
    }

    pub(super) async fn get_county(&self, request: Request<pb::GetCountyRequest>) -> ServiceResult<pb::County> {
        let Scope::County(county) = names::parse_scope(&request.get_ref().name).map_err(name_error("name"))? else {
            return Err(invalid("name", "expected a county name (cities/{city}/counties/{county})"));
        };
        let county = self.store().get_county(&county).await?;
        Ok(Response::new(county_to_proto(county)))
    }

    pub(super) async fn list_counties(
        &self,
        request: Request<pb::ListCountiesRequest>,
    ) -> ServiceResult<pb::ListCountiesResponse> {
        let visible = visible(&request);
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_visible_counties(&city, &page, &visible).await?;
        Ok(Response::new(pb::ListCountiesResponse {
            next_page_token: next_token(&page),
            counties: page.items.into_iter().map(county_to_proto).collect(),
        }))
    }

    pub(super) async fn get_township(&self, request: Request<pb::GetTownshipRequest>) -> ServiceResult<pb::Township> {
        let code = names::parse_township(&request.get_ref().name).map_err(name_error("name"))?;
        let township = self.store().get_township(&code).await?;
        Ok(Response::new(township_to_proto(township)))
    }

    pub(super) async fn list_townships(
        &self,
        request: Request<pb::ListTownshipsRequest>,
    ) -> ServiceResult<pb::ListTownshipsResponse> {
        let visible = visible(&request);
        let request = request.into_inner();
        let scope = names::parse_scope(&request.parent).map_err(name_error("parent"))?;
        if matches!(scope, Scope::Township(_)) {
            return Err(invalid("parent", "expected a city or county name"));
        }
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_visible_townships(&scope, &page, &visible).await?;
        Ok(Response::new(pb::ListTownshipsResponse {
            next_page_token: next_token(&page),
            townships: page.items.into_iter().map(township_to_proto).collect(),
        }))
    }

    pub(super) async fn create_township(
        &self,
        request: Request<pb::CreateTownshipRequest>,
    ) -> ServiceResult<pb::Township> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreateTownship", &request.request_id, &request)?;
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
        check_flags("township.flags", &township.flags, &mut violations);
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
        let created = self.create_once(key, Create::Township(township), &actor).await?;
        Ok(Response::new(township_to_proto(made!(created, Created::Township))))
    }

    pub(super) async fn update_township(
        &self,
        request: Request<pb::UpdateTownshipRequest>,
    ) -> ServiceResult<pb::Township> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update = request.township.ok_or_else(|| invalid("township", "the township is missing"))?;
        let code = names::parse_township(&update.name).map_err(name_error("township.name"))?;
        let mask = request.update_mask.ok_or_else(|| invalid("update_mask", "name the fields to update"))?;
        let mut township = self.store().get_township(&code).await?;
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
                "flags" => {
                    check_flags("township.flags", &update.flags, &mut violations);
                    township.flags = update.flags.clone();
                }
                "valid_from" => township.valid_from = optional(update.valid_from.clone()),
                "valid_to" => township.valid_to = optional(update.valid_to.clone()),
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!(
                        "{} cannot be updated; updatable: display_name, kind, flags, valid_from, valid_to",
                        quoted(other)
                    ),
                )),
            }
        }
        check_date("township.valid_from", &township.valid_from, &mut violations);
        check_date("township.valid_to", &township.valid_to, &mut violations);
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let updated = self.store().update_township(&township, expected, &actor).await?;
        Ok(Response::new(township_to_proto(updated)))
    }

    pub(super) async fn import_divisions(
        &self,
        request: Request<pb::ImportDivisionsRequest>,
    ) -> ServiceResult<pb::ImportDivisionsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        if request.code_prefix.len() > 9 || !request.code_prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "code_prefix",
                format!("{} is not a prefix of a division code (up to 9 digits)", quoted(&request.code_prefix)),
            ));
        }
        let parsed = crate::divisions::parse(
            &request.cities_csv,
            &request.counties_csv,
            &request.townships_csv,
            &request.code_prefix,
        )
        .map_err(invalid_all)?;
        let counts = if request.validate_only {
            crate::store::ImportCounts {
                cities: count_u32(parsed.cities.len()),
                counties: count_u32(parsed.counties.len()),
                townships: count_u32(parsed.townships.len()),
            }
        } else {
            self.store().import_divisions(&parsed.cities, &parsed.counties, &parsed.townships, &actor).await?
        };
        Ok(Response::new(pb::ImportDivisionsResponse {
            cities: counts.cities,
            counties: counts.counties,
            townships: counts.townships,
        }))
    }
}
