//! The audit log.

use tonic::{Request, Response};
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::request::{next_token, page_request};
use super::{RegistryApi, ServiceResult};

impl RegistryApi {
    pub(super) async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> ServiceResult<pb::ListAuditEventsResponse> {
        let request = request.into_inner();
        let page = self
            .store()
            .list_audit_events(&request.resource_prefix, &page_request(request.page_size, &request.page_token)?)
            .await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            next_page_token: next_token(&page),
            events: page.items.into_iter().map(audit_to_proto).collect(),
        }))
    }
}
