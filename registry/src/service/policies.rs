//! A city's policy versions; setting one queues the reclassification of every cohort of the city.

use tonic::{Request, Response};
use township_policy::FieldViolation;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{made, request_key};
use super::request::{actor, check_optional_text, next_token, page_request};
use super::{RegistryApi, ServiceResult};
use crate::domain::model::CityPolicy;
use crate::domain::{names, rules};
use crate::store::{Create, Created};

impl RegistryApi {
    pub(super) async fn set_city_policy(
        &self,
        request: Request<pb::SetCityPolicyRequest>,
    ) -> ServiceResult<pb::CityPolicy> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("SetCityPolicy", &request.request_id, &request)?;
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let proto = request.policy.ok_or_else(|| invalid("policy", "the policy is missing"))?;
        let mut violations = Vec::new();
        let policy = township_policy::proto::policy_from_proto(
            Some(proto),
            &self.outbox.default_policy,
            "policy",
            &mut violations,
        );
        violations.extend(
            policy.violations().into_iter().map(|v| FieldViolation::new(format!("policy.{}", v.field), v.description)),
        );
        let document_number = request.document_number.trim().to_owned();
        check_optional_text("document_number", &document_number, 100, &mut violations);
        let departures = rules::city_policy_departures(&policy);
        if !departures.is_empty() && document_number.is_empty() {
            violations.push(FieldViolation::new(
                "document_number",
                format!(
                    "the policy for {} departs from the policy document ({}); give the 文号 of the city's document \
                     adopting it",
                    request.parent,
                    departures.join("; ")
                ),
            ));
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        self.store().get_city(&city).await?;
        let create = Create::Policy { city, policy, document_number };
        let stored = made!(self.create_once(key, create, &actor).await?, Created::Policy);
        Ok(Response::new(city_policy_to_proto(stored)))
    }

    pub(super) async fn get_effective_policy(
        &self,
        request: Request<pb::GetEffectivePolicyRequest>,
    ) -> ServiceResult<pb::CityPolicy> {
        let city = names::parse_city(&request.get_ref().parent).map_err(name_error("parent"))?;
        self.store().get_city(&city).await?;
        let stored = match self.store().latest_city_policy(&city).await? {
            Some(stored) => stored,
            None => CityPolicy {
                city,
                version: 0,
                fingerprint: self.outbox.default_policy.fingerprint(),
                policy: (*self.outbox.default_policy).clone(),
                created_at: 0,
                document_number: String::new(),
            },
        };
        Ok(Response::new(city_policy_to_proto(stored)))
    }

    pub(super) async fn list_city_policies(
        &self,
        request: Request<pb::ListCityPoliciesRequest>,
    ) -> ServiceResult<pb::ListCityPoliciesResponse> {
        let request = request.into_inner();
        let city = names::parse_city(&request.parent).map_err(name_error("parent"))?;
        let page =
            self.store().list_city_policies(&city, &page_request(request.page_size, &request.page_token)?).await?;
        Ok(Response::new(pb::ListCityPoliciesResponse {
            next_page_token: next_token(&page),
            policies: page.items.into_iter().map(city_policy_to_proto).collect(),
        }))
    }
}
