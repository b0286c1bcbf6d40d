//! `/scim/v2/Users`: extract → translate → gRPC → render.

use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use prost_types::FieldMask;
use roster_proto::v1::{
    CreateUserRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest, UpdateUserRequest, User,
};
use serde_json::Value;
use tonic::Code;

use std::sync::Arc;

use crate::AppState;
use crate::cpu::CpuPool;
use crate::error::ScimError;
use crate::extract::{BaseUrl, Conditions, JsonBody, Params};
use crate::grpc::Grpc;
use crate::limits::{INLINE_PATCH_VALUES, check_multi_valued};
use crate::response::{no_content, not_modified, resource, scim_json};
use crate::scim::list::{ListQuery, Listed, Page};
use crate::scim::patch::{
    PatchOperation, ResourceSchema, apply_patch, parse_patch_request, patch_values,
};
use crate::scim::project::Projection;
use crate::scim::user::{user_from_scim, user_to_scim};
use crate::scim::user_patch::{UserPatchPlan, plan_user_patch};
use crate::scim::validate::{
    Resource, check_attributes_of, check_resource, demote_replaced_primaries,
};
use crate::scim::{ENTERPRISE_USER_URN, ROSTER_USER_URN, USER_URN};

/// What the PATCH engine needs to know about User documents.
const USER_PATCH_SCHEMA: ResourceSchema = ResourceSchema {
    core: USER_URN,
    extensions: &[ENTERPRISE_USER_URN, ROSTER_USER_URN],
    read_only: &["id", "meta", "groups", "schemas"],
};

/// Read-modify-write attempts of a general PATCH lost to concurrent writers before giving up
/// (with 409: the client sent no precondition, so 412 would not fit).
const PATCH_RETRIES: usize = 20;

fn projection(params: &Params) -> Projection {
    Projection::from_params(params, USER_URN, USER_PATCH_SCHEMA.extensions)
}

fn render(user: &User, base: &str, projection: &Projection) -> Value {
    let mut doc = user_to_scim(user, base);
    projection.apply(&mut doc);
    doc
}

fn ok(user: &User, base: &str, params: &Params) -> Response {
    resource(
        StatusCode::OK,
        &render(user, base, &projection(params)),
        &user.etag,
        None,
    )
}

// The operations, shared by the routes below and `POST /Bulk`: one function each, from the
// request body to the stored user.

/// POST: checks and translates `body`, creates the user (active unless the body says not).
pub(crate) async fn create_user(
    grpc: &Grpc,
    body: &Value,
    strict: bool,
) -> Result<User, ScimError> {
    check_resource(body, Resource::User, strict)?;
    check_body_multi_valued(body)?;
    let parsed = user_from_scim(body)?;
    let mut user = parsed.user;
    if !parsed.active_given {
        user.active = true;
    }
    Ok(grpc
        .create_user(CreateUserRequest { user: Some(user) })
        .await?)
}

/// PUT: a full replace of user `id` by `body`, on the version `if_match` if given.
pub(crate) async fn replace_user(
    grpc: &Grpc,
    id: String,
    body: &Value,
    if_match: Option<String>,
    strict: bool,
) -> Result<User, ScimError> {
    check_resource(body, Resource::User, strict)?;
    check_body_multi_valued(body)?;
    let parsed = user_from_scim(body)?;
    let mask = parsed.replace_mask();
    let mut user = parsed.user;
    user.id = id;
    Ok(update_user(grpc, user, mask, if_match.unwrap_or_default()).await?)
}

/// PATCH: the fast path (one `UpdateUser`) when it applies, else read-modify-write.
pub(crate) async fn patch_user(
    grpc: &Grpc,
    cpu: &CpuPool,
    id: String,
    body: &Value,
    if_match: Option<String>,
    strict: bool,
) -> Result<User, ScimError> {
    let ops = parse_patch_request(body)?;
    match plan_user_patch(&ops)? {
        UserPatchPlan::Fast { mut user, mask } => {
            // The fields the operations set, rendered, against the same limits as a body.
            check_resource(&user_to_scim(&user, ""), Resource::User, false)?;
            user.id = id;
            Ok(update_user(grpc, *user, mask, if_match.unwrap_or_default()).await?)
        }
        UserPatchPlan::General => {
            patch_general(grpc, cpu, &id, ops, if_match.as_deref(), strict).await
        }
    }
}

/// [`check_multi_valued`] for a POST or PUT body: its lists and the width of its objects.
fn check_body_multi_valued(body: &Value) -> Result<(), ScimError> {
    check_multi_valued("the User", body)
}

/// DELETE, on the version `if_match` if given.
pub(crate) async fn delete_user(
    grpc: &Grpc,
    id: String,
    if_match: Option<String>,
) -> Result<(), ScimError> {
    grpc.delete_user(DeleteUserRequest {
        id,
        etag: if_match.unwrap_or_default(),
    })
    .await?;
    Ok(())
}

pub(crate) async fn create(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let created = create_user(&grpc, &body, state.config.strict_schema).await?;
    let location = format!("{base}/Users/{}", created.id);
    let body = render(&created, &base, &projection(&params));
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
    let user = grpc.get_user(GetUserRequest { id }).await?;
    if conditions.not_modified(&user.etag) {
        return Ok(not_modified(&user.etag));
    }
    Ok(ok(&user, &base, &params))
}

/// `GET /Users`.
pub(crate) async fn list(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    params: Params,
) -> Result<Response, ScimError> {
    let query = ListQuery::from_params(&params, state.config.max_page_size)?;
    answer(&grpc, &base, &query).await
}

/// `POST /Users/.search` (RFC 7644 §3.4.3): what `GET /Users` answers for the same parameters.
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

/// The users a list query asks for, rendered and projected, and the number of matches.
pub(super) async fn find(
    grpc: &Grpc,
    base: &str,
    query: &ListQuery,
) -> Result<Listed<Value>, tonic::Status> {
    let users = query
        .collect(|page_token, page_size| {
            let request = ListUsersRequest {
                page_size,
                page_token,
                filter: query.filter.clone(),
                skip: query.skip(),
                sort_by: query.sort_by.clone(),
                descending: query.descending(),
                total_only: page_size == 0,
            };
            async move {
                let page = grpc.list_users(request).await?;
                Ok(Page {
                    items: page.users,
                    next_page_token: page.next_page_token,
                    previous_page_token: page.previous_page_token,
                    total_size: page.total_size,
                })
            }
        })
        .await?;
    let projection = Projection::new(
        &query.attributes,
        &query.excluded_attributes,
        USER_URN,
        USER_PATCH_SCHEMA.extensions,
    );
    Ok(users.map(|u| render(&u, base, &projection)))
}

pub(crate) async fn replace(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    conditions: Conditions,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let updated = replace_user(
        &grpc,
        id,
        &body,
        conditions.if_match,
        state.config.strict_schema,
    )
    .await?;
    Ok(ok(&updated, &base, &params))
}

pub(crate) async fn patch(
    grpc: Grpc,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    Path(id): Path<String>,
    conditions: Conditions,
    params: Params,
    JsonBody(body): JsonBody,
) -> Result<Response, ScimError> {
    let updated = patch_user(
        &grpc,
        &state.cpu,
        id,
        &body,
        conditions.if_match,
        state.config.strict_schema,
    )
    .await?;
    Ok(ok(&updated, &base, &params))
}

/// Read, apply the operations to the SCIM document, write it back on the etag read; retried
/// when another writer came in between (unless the client pinned a version with If-Match).
/// A PATCH with many values is applied on the blocking pool (see `crate::cpu`).
async fn patch_general(
    grpc: &Grpc,
    cpu: &CpuPool,
    id: &str,
    ops: Vec<PatchOperation>,
    if_match: Option<&str>,
    strict: bool,
) -> Result<User, ScimError> {
    let inline = patch_values(&ops) <= INLINE_PATCH_VALUES;
    let ops = Arc::new(ops);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = grpc.get_user(GetUserRequest { id: id.to_owned() }).await?;
        if if_match.is_some_and(|tag| tag != current.etag) {
            return Err(ScimError::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                "the user has changed since the version in If-Match",
            ));
        }
        let etag = current.etag.clone();
        let (mut user, mask) = if inline {
            apply_to_user(&current, &ops, strict)?
        } else {
            let ops = Arc::clone(&ops);
            cpu.run(move || apply_to_user(&current, &ops, strict))
                .await??
        };
        user.id = id.to_owned();
        match update_user(grpc, user, mask, etag).await {
            Err(status)
                if status.code() == Code::Aborted
                    && if_match.is_none()
                    && attempt <= PATCH_RETRIES =>
            {
                tracing::debug!(attempt, "PATCH lost a race with another writer; retrying");
            }
            Err(status) if status.code() == Code::Aborted && if_match.is_none() => {
                return Err(ScimError::new(
                    StatusCode::CONFLICT,
                    None,
                    "the user kept changing while this PATCH applied; try again",
                ));
            }
            result => return result.map_err(ScimError::from),
        }
    }
}

/// The user `ops` make of `current`, and the field mask of the whole-document write.
///
/// Only the attributes the operations changed are checked (so that values stored before a
/// check existed, or before strict mode was turned on, do not block other changes); a value
/// made primary takes `primary` from the value that had it (RFC 7644 §3.5.2).
fn apply_to_user(
    current: &User,
    ops: &[PatchOperation],
    strict: bool,
) -> Result<(User, Vec<String>), ScimError> {
    // The base URL does not matter here: `meta` and `$ref`s are ignored on the way back.
    let Value::Object(mut doc) = user_to_scim(current, "") else {
        return Err(ScimError::internal());
    };
    let before = doc.clone();
    apply_patch(&mut doc, ops, &USER_PATCH_SCHEMA)?;
    demote_replaced_primaries(&before, &mut doc);
    let changed: serde_json::Map<String, Value> = doc
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    check_multi_valued_attributes(&changed)?;
    check_attributes_of(&changed, Resource::User, strict, &[])?;
    let mut parsed = user_from_scim(&Value::Object(doc))?;
    // The document was complete: an extension the operations removed clears the role, and
    // a removed `active` is unassigned (which denies like `active: false`).
    parsed.role_given = true;
    if !parsed.active_given {
        parsed.user.active = false;
        parsed.user.active_unassigned = true;
        parsed.active_given = true;
    }
    let mask = parsed.replace_mask();
    Ok((parsed.user, mask))
}

/// [`check_multi_valued`] for each attribute of a User body (or of the attributes a PATCH
/// changed).
fn check_multi_valued_attributes(
    attributes: &serde_json::Map<String, Value>,
) -> Result<(), ScimError> {
    attributes
        .iter()
        .try_for_each(|(name, value)| check_multi_valued(name, value))
}

pub(crate) async fn delete(
    grpc: Grpc,
    Path(id): Path<String>,
    conditions: Conditions,
) -> Result<Response, ScimError> {
    delete_user(&grpc, id, conditions.if_match).await?;
    Ok(no_content())
}

async fn update_user(
    grpc: &Grpc,
    user: User,
    mask: Vec<String>,
    etag: String,
) -> Result<User, tonic::Status> {
    let request = UpdateUserRequest {
        user: Some(user),
        update_mask: Some(FieldMask { paths: mask }),
        etag,
    };
    grpc.update_user(request).await
}
