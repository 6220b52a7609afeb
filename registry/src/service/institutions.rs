//! Institutions and their plaques (加挂牌子); creates are checked against the limits of the township's class.

use tonic::{Request, Response, Status};
use township_policy::FieldViolation;
use township_policy::quoted;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{check_no_nested_request_id, made, noting_limits, request_key};
use super::request::{
    MAX_NAME_TEXT_CHARS, actor, check_batch_size, check_date, check_optional_text, check_text, expected_revision,
    in_request, mask_paths, next_token, optional, page_request, plaque_ref, township_child,
};
use super::{RegistryApi, ServiceResult};
use crate::domain::deviations::Limit;
use crate::domain::model::{NewInstitution, NewPlaque};
use crate::domain::names::{self, TownshipCode};
use crate::store::{Create, Created, CreatedRecord, NewRecord};

/// Largest staffing quota (编制) of one institution: a large township's whole establishment is a few hundred.
const MAX_STAFFING_QUOTA: u32 = 10_000;

impl RegistryApi {
    pub(super) async fn create_institution(
        &self,
        request: Request<pb::CreateInstitutionRequest>,
    ) -> ServiceResult<pb::Institution> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreateInstitution", &request.request_id, &request)?;
        let (institution, limit) = self.prepare_institution(request).await?;
        let create = Create::Institution { institution, max_of_kind: limit.max };
        let created = self.create_once_noting(key, create, &actor, &[limit.note()]).await?;
        Ok(Response::new(institution_to_proto(made!(created, Created::Institution))))
    }

    pub(super) async fn batch_create_institutions(
        &self,
        request: Request<pb::BatchCreateInstitutionsRequest>,
    ) -> ServiceResult<pb::BatchCreateInstitutionsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let key = request_key("BatchCreateInstitutions", &request.request_id, &request)?;
        let mut records = Vec::with_capacity(request.requests.len());
        let mut notes = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            check_no_nested_request_id(index, &one.request_id)?;
            let (institution, limit) = self.prepare_institution(one).await.map_err(in_request(index))?;
            notes.push(limit.note());
            records.push(NewRecord::Institution { institution, max_of_kind: limit.max });
        }
        let created = self.batch_create(key, records, &actor, request.validate_only, &notes).await?;
        let institutions = created
            .into_iter()
            .filter_map(|record| match record {
                CreatedRecord::Institution(institution) => Some(institution_to_proto(institution)),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchCreateInstitutionsResponse { institutions }))
    }

    pub(super) async fn get_institution(
        &self,
        request: Request<pb::GetInstitutionRequest>,
    ) -> ServiceResult<pb::Institution> {
        let (code, id) = township_child(&request.get_ref().name, "institutions")?;
        let institution = self.store().get_institution(&code, id).await?;
        Ok(Response::new(institution_to_proto(institution)))
    }

    pub(super) async fn list_institutions(
        &self,
        request: Request<pb::ListInstitutionsRequest>,
    ) -> ServiceResult<pb::ListInstitutionsResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let page =
            self.store().list_institutions(&code, &page_request(request.page_size, &request.page_token)?).await?;
        Ok(Response::new(pb::ListInstitutionsResponse {
            next_page_token: next_token(&page),
            institutions: page.items.into_iter().map(institution_to_proto).collect(),
        }))
    }

    pub(super) async fn delete_institution(
        &self,
        request: Request<pb::DeleteInstitutionRequest>,
    ) -> ServiceResult<pb::DeleteInstitutionResponse> {
        let actor = actor(&request);
        let (code, id) = township_child(&request.get_ref().name, "institutions")?;
        self.store().delete_institution(&code, id, &actor).await?;
        Ok(Response::new(pb::DeleteInstitutionResponse {}))
    }

    pub(super) async fn update_institution(
        &self,
        request: Request<pb::UpdateInstitutionRequest>,
    ) -> ServiceResult<pb::Institution> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update = request.institution.ok_or_else(|| invalid("institution", "the institution is missing"))?;
        let paths = mask_paths(request.update_mask)?;
        let (code, id) = township_child(&update.name, "institutions")?;
        let mut institution = self.store().get_institution(&code, id).await?;
        let expected = expected_revision("institution.etag", &update.etag, institution.revision)?;
        let mut violations = Vec::new();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    check_text("institution.display_name", &update.display_name, 100, &mut violations);
                    institution.name = update.display_name.clone();
                }
                "staffing_quota" => violations.push(FieldViolation::new(
                    "update_mask",
                    format!(
                        "township {code}: staffing_quota is the sum of the institution's staffing approvals; record \
                         the change with CreateStaffingApproval (批准文号, 批准时间, 数量)"
                    ),
                )),
                "approving_document" => {
                    check_optional_text(
                        "institution.approving_document",
                        &update.approving_document,
                        MAX_NAME_TEXT_CHARS,
                        &mut violations,
                    );
                    institution.approving_document = update.approving_document.clone();
                }
                "valid_from" => institution.valid_from = optional(update.valid_from.clone()),
                "valid_to" => institution.valid_to = optional(update.valid_to.clone()),
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!(
                        "{} cannot be updated; updatable: display_name, approving_document, valid_from, valid_to",
                        quoted(other)
                    ),
                )),
            }
        }
        check_date("institution.valid_from", &institution.valid_from, &mut violations);
        check_date("institution.valid_to", &institution.valid_to, &mut violations);
        if let (Some(from), Some(to)) = (&institution.valid_from, &institution.valid_to)
            && to < from
        {
            violations.push(FieldViolation::new(
                "institution.valid_to",
                format!("township {code}: valid_to {to} is before valid_from {from}"),
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let limits = self.limits_now(&code).await?;
        let (limit, plaques) = (limits.institutions_of_kind(institution.kind), limits.plaques());
        let updated = self
            .store()
            .update_institution(&institution, expected, limit.max, plaques.max, &actor)
            .await
            .map_err(noting_limits(&[limit.note(), plaques.note()]))?;
        Ok(Response::new(institution_to_proto(updated)))
    }

    pub(super) async fn get_plaque(&self, request: Request<pb::GetPlaqueRequest>) -> ServiceResult<pb::Plaque> {
        let (code, institution_id, id) = plaque_ref(&request.get_ref().name)?;
        Ok(Response::new(plaque_to_proto(self.store().get_plaque(&code, institution_id, id).await?)))
    }

    pub(super) async fn update_plaque(&self, request: Request<pb::UpdatePlaqueRequest>) -> ServiceResult<pb::Plaque> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update = request.plaque.ok_or_else(|| invalid("plaque", "the plaque is missing"))?;
        let paths = mask_paths(request.update_mask)?;
        let (code, institution_id, id) = plaque_ref(&update.name)?;
        let mut plaque = self.store().get_plaque(&code, institution_id, id).await?;
        let expected = expected_revision("plaque.etag", &update.etag, plaque.revision)?;
        let mut violations = Vec::new();
        for path in &paths {
            match path.as_str() {
                "display_name" => {
                    check_text("plaque.display_name", &update.display_name, 100, &mut violations);
                    plaque.name = update.display_name.clone();
                }
                "approving_document" => {
                    check_optional_text(
                        "plaque.approving_document",
                        &update.approving_document,
                        MAX_NAME_TEXT_CHARS,
                        &mut violations,
                    );
                    plaque.approving_document = update.approving_document.clone();
                }
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{} cannot be updated; updatable: display_name, approving_document", quoted(other)),
                )),
            }
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        Ok(Response::new(plaque_to_proto(self.store().update_plaque(&plaque, expected, &actor).await?)))
    }

    pub(super) async fn create_plaque(&self, request: Request<pb::CreatePlaqueRequest>) -> ServiceResult<pb::Plaque> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreatePlaque", &request.request_id, &request)?;
        let (code, institution_id) = township_child(&request.parent, "institutions")?;
        let plaque = request.plaque.ok_or_else(|| invalid("plaque", "the plaque is missing"))?;
        let mut violations = Vec::new();
        check_text("plaque.display_name", &plaque.display_name, 100, &mut violations);
        check_optional_text(
            "plaque.approving_document",
            &plaque.approving_document,
            MAX_NAME_TEXT_CHARS,
            &mut violations,
        );
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let limit = self.limits_now(&code).await?.plaques();
        let new =
            NewPlaque { institution_id, name: plaque.display_name, approving_document: plaque.approving_document };
        let create = Create::Plaque { township: code, plaque: new, max_per_township: limit.max };
        let created = self.create_once_noting(key, create, &actor, &[limit.note()]).await?;
        Ok(Response::new(plaque_to_proto(made!(created, Created::Plaque))))
    }

    pub(super) async fn list_plaques(
        &self,
        request: Request<pb::ListPlaquesRequest>,
    ) -> ServiceResult<pb::ListPlaquesResponse> {
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
            .await?;
        Ok(Response::new(pb::ListPlaquesResponse {
            next_page_token: next_token(&page),
            plaques: page.items.into_iter().map(plaque_to_proto).collect(),
        }))
    }

    pub(super) async fn delete_plaque(
        &self,
        request: Request<pb::DeletePlaqueRequest>,
    ) -> ServiceResult<pb::DeletePlaqueResponse> {
        let actor = actor(&request);
        let (code, institution_id, plaque) = plaque_ref(&request.get_ref().name)?;
        self.store().delete_plaque(&code, institution_id, plaque, &actor).await?;
        Ok(Response::new(pb::DeletePlaqueResponse {}))
    }

    /// Validates a create request and computes the limit of its kind for the township's current class (or its
    /// approved deviation).
    async fn prepare_institution(
        &self,
        request: pb::CreateInstitutionRequest,
    ) -> Result<(NewInstitution, Limit), Status> {
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
        check_optional_text(
            "institution.approving_document",
            &institution.approving_document,
            MAX_NAME_TEXT_CHARS,
            &mut violations,
        );
        check_staffing_quota(&code, institution.staffing_quota, &mut violations);
        if institution.staffing_quota > 0 && institution.approving_document.trim().is_empty() {
            // The quota becomes the ledger's first approval, and an approval has its 批准文号.
            violations.push(FieldViolation::new(
                "institution.approving_document",
                format!(
                    "township {code}: a staffing quota of {} is approved by a document: give its 批准文号, or create \
                     the institution with staffing_quota 0 and record the approval (CreateStaffingApproval)",
                    institution.staffing_quota
                ),
            ));
        }
        let (valid_from, valid_to) = (optional(institution.valid_from), optional(institution.valid_to));
        check_date("institution.valid_from", &valid_from, &mut violations);
        check_date("institution.valid_to", &valid_to, &mut violations);
        let (Some(kind), true) = (kind, violations.is_empty()) else { return Err(invalid_all(violations)) };
        self.store().get_township(&code).await?;
        let limit = self.limits_now(&code).await?.institutions_of_kind(kind);
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
}

fn check_staffing_quota(township: &TownshipCode, quota: u32, violations: &mut Vec<FieldViolation>) {
    if quota > MAX_STAFFING_QUOTA {
        violations.push(FieldViolation::new(
            "institution.staffing_quota",
            format!(
                "township {township}: {quota} exceeds {MAX_STAFFING_QUOTA}, more staff than any township office has"
            ),
        ));
    }
}
