//! Institutions and their plaques (加挂牌子); creates are checked against the limits of the township's class.

use tonic::{Request, Response, Status};
use township_policy::FieldViolation;
use township_policy::quoted;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::request::{
    MAX_NAME_TEXT_CHARS, actor, check_batch_size, check_date, check_optional_text, check_text, in_request, next_token,
    optional, page_request, township_child,
};
use super::{RegistryApi, ServiceResult};
use crate::domain::model::{NewInstitution, NewPlaque};
use crate::domain::names;
use crate::store::{CreatedRecord, NewRecord};

/// Largest staffing quota (编制) of one institution: a large township's whole establishment is a few hundred.
const MAX_STAFFING_QUOTA: u32 = 10_000;

impl RegistryApi {
    pub(super) async fn create_institution(
        &self,
        request: Request<pb::CreateInstitutionRequest>,
    ) -> ServiceResult<pb::Institution> {
        let actor = actor(&request);
        let (new, limit) = self.prepare_institution(request.into_inner()).await?;
        let created = self.store().create_institution(&new, limit, &actor).await?;
        Ok(Response::new(institution_to_proto(created)))
    }

    pub(super) async fn batch_create_institutions(
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
        let created = self.store().batch_create(&records, &actor, request.validate_only).await?;
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

    pub(super) async fn create_plaque(&self, request: Request<pb::CreatePlaqueRequest>) -> ServiceResult<pb::Plaque> {
        let actor = actor(&request);
        let request = request.into_inner();
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
        let max_plaques = self.limits_now(&code).await?.plaques();
        let new =
            NewPlaque { institution_id, name: plaque.display_name, approving_document: plaque.approving_document };
        let created = self.store().create_plaque(&code, &new, max_plaques, &actor).await?;
        Ok(Response::new(plaque_to_proto(created)))
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
        let name = &request.get_ref().name;
        let bad = || invalid("name", format!("{} is not a plaque name ({{institution}}/plaques/{{id}})", quoted(name)));
        let (institution, plaque) = name.rsplit_once("/plaques/").ok_or_else(bad)?;
        let plaque: i64 = plaque.parse().map_err(|_| bad())?;
        let (code, institution_id) = township_child(institution, "institutions")?;
        self.store().delete_plaque(&code, institution_id, plaque, &actor).await?;
        Ok(Response::new(pb::DeletePlaqueResponse {}))
    }

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
        check_optional_text(
            "institution.approving_document",
            &institution.approving_document,
            MAX_NAME_TEXT_CHARS,
            &mut violations,
        );
        if institution.staffing_quota > MAX_STAFFING_QUOTA {
            violations.push(FieldViolation::new(
                "institution.staffing_quota",
                format!(
                    "township {code}: {} exceeds {MAX_STAFFING_QUOTA}, more staff than any township office has",
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
