//! Leadership posts (领导职数); creates are checked against the post quota of the township's class.

use tonic::{Request, Response, Status};
use township_policy::FieldViolation;
use township_policy::quoted;
use township_proto::registry::v1 as pb;

use super::convert::*;
use super::error::{invalid, invalid_all, name_error};
use super::idempotency::{check_no_nested_request_id, made, request_key};
use super::request::{
    MAX_NAME_TEXT_CHARS, actor, check_batch_size, check_optional_text, check_text, in_request, next_token, optional,
    page_request, township_child,
};
use super::{RegistryApi, ServiceResult};
use crate::domain::deviations::Limit;
use crate::domain::model::NewPost;
use crate::domain::names;
use crate::store::{Create, Created, CreatedRecord, NewRecord};

impl RegistryApi {
    pub(super) async fn create_leadership_post(
        &self,
        request: Request<pb::CreateLeadershipPostRequest>,
    ) -> ServiceResult<pb::LeadershipPost> {
        let actor = actor(&request);
        let request = request.into_inner();
        let key = request_key("CreateLeadershipPost", &request.request_id, &request)?;
        let (post, limit) = self.prepare_post(request).await?;
        let create = Create::Post { post, quota: limit.max };
        let created = self.create_once_noting(key, create, &actor, &[limit.note()]).await?;
        Ok(Response::new(post_to_proto(made!(created, Created::Post))))
    }

    pub(super) async fn batch_create_leadership_posts(
        &self,
        request: Request<pb::BatchCreateLeadershipPostsRequest>,
    ) -> ServiceResult<pb::BatchCreateLeadershipPostsResponse> {
        let actor = actor(&request);
        let request = request.into_inner();
        check_batch_size(request.requests.len())?;
        let key = request_key("BatchCreateLeadershipPosts", &request.request_id, &request)?;
        let mut records = Vec::with_capacity(request.requests.len());
        let mut notes = Vec::with_capacity(request.requests.len());
        for (index, one) in request.requests.into_iter().enumerate() {
            check_no_nested_request_id(index, &one.request_id)?;
            let (post, limit) = self.prepare_post(one).await.map_err(in_request(index))?;
            notes.push(limit.note());
            records.push(NewRecord::Post { post, quota: limit.max });
        }
        let created = self.batch_create(key, records, &actor, request.validate_only, &notes).await?;
        let posts = created
            .into_iter()
            .filter_map(|record| match record {
                CreatedRecord::Post(post) => Some(post_to_proto(post)),
                _ => None,
            })
            .collect();
        Ok(Response::new(pb::BatchCreateLeadershipPostsResponse { posts }))
    }

    pub(super) async fn list_leadership_posts(
        &self,
        request: Request<pb::ListLeadershipPostsRequest>,
    ) -> ServiceResult<pb::ListLeadershipPostsResponse> {
        let request = request.into_inner();
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let page = self.store().list_posts(&code, &page_request(request.page_size, &request.page_token)?).await?;
        Ok(Response::new(pb::ListLeadershipPostsResponse {
            next_page_token: next_token(&page),
            posts: page.items.into_iter().map(post_to_proto).collect(),
        }))
    }

    pub(super) async fn get_leadership_post(
        &self,
        request: Request<pb::GetLeadershipPostRequest>,
    ) -> ServiceResult<pb::LeadershipPost> {
        let (code, id) = township_child(&request.get_ref().name, "posts")?;
        Ok(Response::new(post_to_proto(self.store().get_post(&code, id).await?)))
    }

    pub(super) async fn update_leadership_post(
        &self,
        request: Request<pb::UpdateLeadershipPostRequest>,
    ) -> ServiceResult<pb::LeadershipPost> {
        let actor = actor(&request);
        let request = request.into_inner();
        let update = request.post.ok_or_else(|| invalid("post", "the post is missing"))?;
        let mask = request.update_mask.ok_or_else(|| invalid("update_mask", "name the fields to update"))?;
        let (code, id) = township_child(&update.name, "posts")?;
        let mut post = self.store().get_post(&code, id).await?;
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
                "holder" => {
                    check_optional_text("post.holder", &update.holder, MAX_NAME_TEXT_CHARS, &mut violations);
                    post.holder = optional(update.holder.clone());
                }
                "mandated_role" => match mandated_role_from_proto(update.mandated_role) {
                    Some(role) => post.mandated_role = role,
                    None => violations.push(FieldViolation::new("post.mandated_role", "unknown mandated role")),
                },
                other => violations.push(FieldViolation::new(
                    "update_mask",
                    format!("{} cannot be updated; updatable: role, holder, mandated_role", quoted(other)),
                )),
            }
        }
        if !violations.is_empty() {
            return Err(invalid_all(violations));
        }
        let updated = self.store().update_post(&post, expected, &actor).await?;
        Ok(Response::new(post_to_proto(updated)))
    }

    pub(super) async fn delete_leadership_post(
        &self,
        request: Request<pb::DeleteLeadershipPostRequest>,
    ) -> ServiceResult<pb::DeleteLeadershipPostResponse> {
        let actor = actor(&request);
        let (code, id) = township_child(&request.get_ref().name, "posts")?;
        self.store().delete_post(&code, id, &actor).await?;
        Ok(Response::new(pb::DeleteLeadershipPostResponse {}))
    }

    /// Validates a create request and computes the township's post quota for its current class.
    async fn prepare_post(&self, request: pb::CreateLeadershipPostRequest) -> Result<(NewPost, Limit), Status> {
        let code = names::parse_township(&request.parent).map_err(name_error("parent"))?;
        let post = request.post.ok_or_else(|| invalid("post", "the post is missing"))?;
        let mut violations = Vec::new();
        check_text("post.role", &post.role, 100, &mut violations);
        check_optional_text("post.holder", &post.holder, MAX_NAME_TEXT_CHARS, &mut violations);
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
        self.store().get_township(&code).await?;
        let quota = self.limits_now(&code).await?.leadership_posts();
        Ok((NewPost { township: code, role: post.role, holder: optional(post.holder), mandated_role }, quota))
    }
}
