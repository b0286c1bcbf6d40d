//! `/scim/v2/Groups`: extract → translate → one gRPC call → render.

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use prost_types::FieldMask;
use roster_proto::v1::member_operation::Kind;
use roster_proto::v1::{
    CreateGroupRequest, DeleteGroupRequest, GetGroupRequest, Group, GroupView, ListGroupsRequest,
    MemberOperation, UpdateGroupRequest,
};
use serde_json::Value;

use crate::AppState;
use crate::error::ScimError;
use crate::extract::{BaseUrl, Conditions, JsonBody, Params};
use crate::grpc::Grpc;
use crate::response::{no_content, not_modified, resource, scim_json};
use crate::scim::GROUP_URN;
use crate::scim::group::{GroupChange, group_from_scim, group_to_scim, plan_group_patch};
use crate::scim::list::{ListQuery, Listed, Page};
use crate::scim::patch::parse_group_patch_request;
use crate::scim::project::Projection;
use crate::scim::validate::{Resource, check_resource};

fn projection(params: &Params) -> Projection {
    Projection::from_params(params, GROUP_URN, &[])
}

/// FULL unless the projection leaves `members` out.
fn view(projection: &Projection) -> GroupView {
    if projection.returns("members") {
        GroupView::Full
    } else {
        GroupView::Basic
    }
}

fn render(group: &Group, base: &str, projection: &Projection) -> Value {
    let mut doc = group_to_scim(group, base, view(projection));
    projection.apply(&mut doc);
    doc
}

// The operations, shared by the routes below and `POST /Bulk`: one function each, from the
// request body to the stored group (in `view`).

/// POST: checks and translates `body`, creates the group with its members.
pub(crate) async fn create_group(
    grpc: &Grpc,
    body: &Value,
    view: GroupView,
    strict: bool,
) -> Result<Group, ScimError> {
    check_resource(body, Resource::Group, strict)?;
    let group = group_from_scim(body)?;
    let request = CreateGroupRequest {
        group: Some(group),
        view: view as i32,
    };
    Ok(grpc.create_group(request).await?)
}

/// PUT: rename and REPLACE the membership with the body's members, in one `UpdateGroup`.
pub(crate) async fn replace_group(
    grpc: &Grpc,
    id: &str,
    body: &Value,
    etag: String,
    view: GroupView,
    strict: bool,
) -> Result<Group, ScimError> {
    check_resource(body, Resource::Group, strict)?;
    let group = group_from_scim(body)?;
    let change = GroupChange {
        display_name: Some(group.display_name),
        external_id: Some(group.external_id),
        member_operations: vec![MemberOperation {
            kind: Kind::Replace as i32,
            user_ids: group.members.into_iter().map(|m| m.user_id).collect(),
        }],
    };
    Ok(update_group(grpc, id, &change, etag, view).await?)
}

/// PATCH: one `UpdateGroup` (a `GetGroup` when there is nothing to write, so that a missing
/// group is still 404).
pub(crate) async fn patch_group(
    grpc: &Grpc,
    id: String,
    body: &Value,
    etag: String,
    view: GroupView,
) -> Result<Group, ScimError> {
    let ops = parse_group_patch_request(body)?;
    let change = plan_group_patch(&id, &ops)?;
    let group = if change.is_empty() {
        // Nothing to write (e.g. a rename to the same id only): still 404 for a missing group.
        let request = GetGroupRequest {
            id,
            view: view as i32,
        };
        grpc.get_group(request).await?
    } else {
        update_group(grpc, &id, &change, etag, view).await?
    };
    Ok(group)
}

/// DELETE, on the version `etag` if not empty.
pub(crate) async fn delete_group(grpc: &Grpc, id: String, etag: String) -> Result<(), ScimError> {
    grpc.delete_group(DeleteGroupRequest { id, etag }).await?;
    Ok(())
}

pub(crate) async fn create(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let projection = projection(&params);
    let created = create_group(&grpc, &body, view(&projection), state.config.strict_schema).await?;
    let location = format!("{base}/Groups/{}", created.id);
    let body = render(&created, &base, &projection);
    Ok(resource(
        StatusCode::CREATED,
        &body,
        &created.etag,
        Some(&location),
    ))
}

pub(crate) async fn get(
    grpc: Grpc,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    conditions: Conditions,
    params: Params,
) -> Result<Response, ScimError> {
    let projection = projection(&params);
    let request = GetGroupRequest {
        id,
        view: view(&projection) as i32,
    };
    let group = grpc.get_group(request).await?;
    if conditions.not_modified(&group.etag) {
        return Ok(not_modified(&group.etag));
    }
    Ok(resource(
        StatusCode::OK,
        &render(&group, &base, &projection),
        &group.etag,
        None,
    ))
}

/// `GET /Groups`.
pub(crate) async fn list(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    params: Params,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_params(&params, state.config.max_page_size)?;
    answer(&grpc, &base, &query).await
}

/// `POST /Groups/.search` (RFC 7644 §3.4.3): what `GET /Groups` answers for the same
/// parameters.
pub(crate) async fn search(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_search_request(&body, state.config.max_page_size)?;
    answer(&grpc, &base, &query).await
}

async fn answer(grpc: &Grpc, base: &str, query: &ListQuery) -> Result<Response, ScimError> {
    let listed = find(grpc, base, query).await?;
    Ok(scim_json(StatusCode::OK, &query.response(listed)))
}

/// The groups a list query asks for, rendered and projected (BASIC view when the projection
/// leaves `members` out), and the number of matches.
pub(super) async fn find(
    grpc: &Grpc,
    base: &str,
    query: &ListQuery,
) -> Result<Listed<Value>, tonic::Status> {
    let projection = Projection::new(
        &query.attributes,
        &query.excluded_attributes,
        GROUP_URN,
        &[],
    );
    let view = view(&projection) as i32;
    let groups = query
        .collect(|page_token, page_size| {
            let request = ListGroupsRequest {
                page_size,
                page_token,
                filter: query.filter.clone(),
                skip: query.skip(),
                view,
                sort_by: query.sort_by.clone(),
                descending: query.descending(),
                total_only: page_size == 0,
            };
            async move {
                let page = grpc.list_groups(request).await?;
                Ok(Page {
                    items: page.groups,
                    next_page_token: page.next_page_token,
                    previous_page_token: page.previous_page_token,
                    total_size: page.total_size,
                })
            }
        })
        .await?;
    Ok(groups.map(|g| render(&g, base, &projection)))
}

/// PUT: rename and REPLACE the membership with the body's members, in one `UpdateGroup`.
pub(crate) async fn replace(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    conditions: Conditions,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let projection = projection(&params);
    let updated = replace_group(
        &grpc,
        &id,
        &body,
        conditions.etag(),
        view(&projection),
        state.config.strict_schema,
    )
    .await?;
    Ok(resource(
        StatusCode::OK,
        &render(&updated, &base, &projection),
        &updated.etag,
        None,
    ))
}

/// PATCH: one `UpdateGroup`. 204 unless the client asked for attributes back, so the work never
/// depends on the group's size.
pub(crate) async fn patch(
    grpc: Grpc,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    conditions: Conditions,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let projection = projection(&params);
    let wants_body = !projection.is_empty();
    let view = if wants_body {
        view(&projection)
    } else {
        GroupView::Basic
    };
    let group = patch_group(&grpc, id, &body, conditions.etag(), view).await?;
    if !wants_body {
        return Ok(no_content());
    }
    Ok(resource(
        StatusCode::OK,
        &render(&group, &base, &projection),
        &group.etag,
        None,
    ))
}

pub(crate) async fn delete(
    grpc: Grpc,
    Path(id): Path<String>,
    conditions: Conditions,
) -> Result<Response, ScimError> {
    delete_group(&grpc, id, conditions.etag()).await?;
    Ok(no_content())
}

async fn update_group(
    grpc: &Grpc,
    id: &str,
    change: &GroupChange,
    etag: String,
    view: GroupView,
) -> Result<Group, tonic::Status> {
    let (group, paths) = change.fields(id);
    let request = UpdateGroupRequest {
        group: Some(group),
        update_mask: (!paths.is_empty()).then_some(FieldMask { paths }),
        member_operations: change.member_operations.clone(),
        etag,
        view: view as i32,
    };
    grpc.update_group(request).await
}
