//! Duty catalogues: a county's template items and a township's own items.

use tonic::{Request, Response, Status};
use township_policy::FieldViolation;
use township_policy::quoted;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{check_no_nested_request_id, made, request_key};
use super::request::{
    actor, check_batch_size, expected_revision, in_request, mask_paths, next_token, optional, page_request,
};
use super::{RegistryApi, ServiceResult};
use crate::domain::catalogue::{
    CatalogueEntry, CatalogueItem, CatalogueOwner, ItemDetails, NewCatalogueItem, Resolution, duty_areas_for,
};
use crate::domain::model::{Township, TownshipKind};
use crate::domain::names::{self, Scope};
use crate::store::{Create, Created, CreatedRecord, NewRecord};

impl RegistryApi {
    pub(super) async fn create_catalogue_item(
        &self,
        request: Request<pb::CreateCatalogueItemRequest>,
    ) -> ServiceResult<pb::CatalogueItem> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreateCatalogueItem", &request.request_id, &request)?;
        let (new, kind) = self.prepare_catalogue_item(request).await?;
        let created = made!(self.create_once(key, Create::CatalogueItem(new), &actor).await?, Created::CatalogueItem);
        let entry = CatalogueEntry { item: created, inherited: false, resolution: Resolution::NotApplicable };
        Ok(Response::new(catalogue_item_to_proto(entry, kind)))
    }

    pub(super) async fn batch_create_catalogue_items(
        &self,
        request: Request<pb::BatchCreateCatalogueItemsRequest>,
    ) -> ServiceResult<pb::BatchCreateCatalogueItemsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let key = request_key("BatchCreateCatalogueItems", &request.request_id, &request)?;
        let mut records = Vec::with_capacity(request.requests.len());
        let mut kinds = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            check_no_nested_request_id(index, &one.request_id)?;
            let (item, kind) = self.prepare_catalogue_item(one).await.map_err(in_request(index))?;
            records.push(NewRecord::CatalogueItem(item));
            kinds.push(kind);
        }
        let created = self.batch_create(key, records, &actor, request.validate_only, &[]).await?;
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

    pub(super) async fn update_catalogue_item(
        &self,
        request: Request<pb::UpdateCatalogueItemRequest>,
    ) -> ServiceResult<pb::CatalogueItem> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update =
            request.catalogue_item.ok_or_else(|| invalid("catalogue_item", "the catalogue item is missing"))?;
        let paths = mask_paths(request.update_mask)?;
        let (owner, id) = catalogue_item_ref(&update.name)?;
        let stored = self.store().get_catalogue_item(&owner, id).await?;
        let expected = expected_revision("catalogue_item.etag", &update.etag, stored.revision)?;
        let township = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await?),
            CatalogueOwner::County(_) => None,
        };
        let kind = township.as_ref().map(|t| t.kind);
        // The stored item as a request, the masked fields laid over it, checked as a create is.
        let entry = CatalogueEntry { item: stored.clone(), inherited: false, resolution: Resolution::NotApplicable };
        let mut merged = catalogue_item_to_proto(entry, kind);
        let mut violations = Vec::new();
        for path in &paths {
            match path.as_str() {
                "title" => merged.title = update.title.clone(),
                "duty_area" => merged.duty_area = update.duty_area,
                "responsible_institution" => merged.responsible_institution = update.responsible_institution.clone(),
                "responsible_institution_title" => {
                    merged.responsible_institution_title = update.responsible_institution_title.clone();
                }
                detail @ ("power" | "responsibility" | "public_service") => {
                    let given = update.details.as_ref().map(|d| details_type(d).as_str());
                    if given == Some(detail) && detail == stored.item_type().as_str() {
                        merged.details = update.details.clone();
                    } else {
                        violations.push(FieldViolation::new(
                            format!("catalogue_item.{detail}"),
                            format!(
                                "{}: the item is a {} item; give its {} details (its type cannot change)",
                                stored.resource_name(),
                                stored.item_type().as_str(),
                                stored.item_type().as_str()
                            ),
                        ));
                    }
                }
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!(
                        "{} cannot be updated; updatable: title, duty_area, responsible_institution, \
                         responsible_institution_title, power, responsibility, public_service",
                        quoted(other)
                    ),
                )),
            }
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        if matches!(owner, CatalogueOwner::Township(_)) {
            // A township item's title is output only: the store sets it from the responsible institution.
            merged.responsible_institution_title.clear();
        }
        let (new, violations) = catalogue_item_violations(&owner, township.as_ref(), merged);
        let Some(new) = new else { return Err(invalid_all(violations)) };
        let item = CatalogueItem {
            title: new.title,
            duty_area: new.duty_area,
            responsible_institution_id: new.responsible_institution_id,
            responsible_institution_title: new.responsible_institution_title,
            details: new.details,
            ..stored
        };
        let updated = self.store().update_catalogue_item(&item, expected, &actor).await?;
        let entry = CatalogueEntry { item: updated, inherited: false, resolution: Resolution::NotApplicable };
        Ok(Response::new(catalogue_item_to_proto(entry, kind)))
    }

    pub(super) async fn get_catalogue_item(
        &self,
        request: Request<pb::GetCatalogueItemRequest>,
    ) -> ServiceResult<pb::CatalogueItem> {
        let (owner, id) = catalogue_item_ref(&request.get_ref().name)?;
        let item = self.store().get_catalogue_item(&owner, id).await?;
        let kind = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await?.kind),
            CatalogueOwner::County(_) => None,
        };
        let entry = CatalogueEntry { item, inherited: false, resolution: Resolution::NotApplicable };
        Ok(Response::new(catalogue_item_to_proto(entry, kind)))
    }

    pub(super) async fn list_catalogue_items(
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
            .await?;
        let kind = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await?.kind),
            CatalogueOwner::County(_) => None,
        };
        Ok(Response::new(pb::ListCatalogueItemsResponse {
            next_page_token: next_token(&page),
            catalogue_items: page.items.into_iter().map(|entry| catalogue_item_to_proto(entry, kind)).collect(),
        }))
    }

    pub(super) async fn delete_catalogue_item(
        &self,
        request: Request<pb::DeleteCatalogueItemRequest>,
    ) -> ServiceResult<pb::DeleteCatalogueItemResponse> {
        let actor = actor(&request);
        let (owner, id) = catalogue_item_ref(&request.get_ref().name)?;
        self.store().delete_catalogue_item(&owner, id, &actor).await?;
        Ok(Response::new(pb::DeleteCatalogueItemResponse {}))
    }
}

/// The owner a catalogue parent names: a county (its template) or a township.
fn catalogue_owner(name: &str, field: &str) -> Result<CatalogueOwner, Status> {
    match names::parse_scope(name).map_err(name_error(field))? {
        Scope::County(county) => Ok(CatalogueOwner::County(county)),
        Scope::Township(township) => Ok(CatalogueOwner::Township(township)),
        Scope::City(_) => Err(invalid(
            field,
            format!("{} is a city; catalogues belong to a county (its template) or to a township", quoted(name)),
        )),
    }
}

/// Parses `{county}/catalogueItems/{id}` or `{township}/catalogueItems/{id}`.
fn catalogue_item_ref(name: &str) -> Result<(CatalogueOwner, i64), Status> {
    match names::parse_child(name, "catalogueItems").map_err(name_error("name"))? {
        (Scope::County(county), id) => Ok((CatalogueOwner::County(county), id)),
        (Scope::Township(township), id) => Ok((CatalogueOwner::Township(township), id)),
        (Scope::City(_), _) => Err(invalid(
            "name",
            format!("{} is not of the form {{county or township}}/catalogueItems/{{id}}", quoted(name)),
        )),
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
                    found.add(
                        "responsible_institution",
                        format!("{} is not an institution of this township", quoted(name)),
                    );
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

impl RegistryApi {
    /// Validates a create request; also returns the township's kind (none for a county template item).
    async fn prepare_catalogue_item(
        &self,
        request: pb::CreateCatalogueItemRequest,
    ) -> Result<(NewCatalogueItem, Option<TownshipKind>), Status> {
        let owner = catalogue_owner(&request.parent, "parent")?;
        let item = request.catalogue_item.ok_or_else(|| invalid("catalogue_item", "the catalogue item is missing"))?;
        let township = match &owner {
            CatalogueOwner::Township(code) => Some(self.store().get_township(code).await?),
            CatalogueOwner::County(_) => None,
        };
        let (new, violations) = catalogue_item_violations(&owner, township.as_ref(), item);
        let Some(new) = new else { return Err(invalid_all(violations)) };
        Ok((new, township.map(|t| t.kind)))
    }
}
