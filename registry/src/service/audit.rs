//! The audit log.

use tonic::{Request, Response};
use township_proto::registry::v1 as pb;

use super::access::visible;
use super::convert::*;
use super::error::invalid;
use super::request::{next_token, page_request};
use super::{RegistryApi, ServiceResult};
use crate::domain::names::MAX_NAME_CHARS;

impl RegistryApi {
    pub(super) async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> ServiceResult<pb::ListAuditEventsResponse> {
        let visible = visible(&request);
        let request = request.into_inner();
        if request.resource_prefix.len() > MAX_NAME_CHARS {
            return Err(invalid(
                "resource_prefix",
                format!(
                    "{} characters; a prefix of a resource name has at most {MAX_NAME_CHARS}",
                    request.resource_prefix.chars().count()
                ),
            ));
        }
        let page = page_request(request.page_size, &request.page_token)?;
        let page = self.store().list_visible_audit_events(&request.resource_prefix, &page, &visible).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            next_page_token: next_token(&page),
            events: page.items.into_iter().map(audit_to_proto).collect(),
        }))
    }
}
