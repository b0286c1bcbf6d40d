//! The tonic handlers: authenticate, convert, one storage call, convert back. Every error
//! leaves through `status::From<DomainError>`.

mod access;
pub mod convert;
pub mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roster_proto::v1 as pb;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::domain::{
    DomainError, GROUP_SORTS, GroupChanges, Page, PageRequest, PasswordPolicy, Position, Principal,
    Sort, SortAttr, TokenKind, USER_SORTS, UserField,
};
use crate::password;
use crate::storage::paging::{HintKey, PageHints};
use crate::storage::{Db, Store, filter, groups, tenants, tokens, users};

/// How long a replica trusts a token it has checked before asking the database again: the
/// bound on how late a revocation made on another replica takes effect here.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(1);
const AUTH_CACHE_MAX: usize = 10_000;

/// Tokens this replica checked in the last [`AUTH_CACHE_TTL`], by the hash of their secret.
/// Only successful checks are kept; a revocation made here clears it at once.
#[derive(Default)]
struct AuthCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
}

impl AuthCache {
    fn get(&self, key: &str) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((p, at))
                if at.elapsed() < AUTH_CACHE_TTL
                    && p.expires
                        .is_none_or(|e| e > time::OffsetDateTime::now_utc()) =>
            {
                Some(p.clone())
            }
            _ => None,
        }
    }

    fn put(&self, key: String, principal: Principal) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= AUTH_CACHE_MAX {
                entries.retain(|_, (_, at)| at.elapsed() < AUTH_CACHE_TTL);
                if entries.len() >= AUTH_CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(key, (principal, Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// The gRPC API over one store. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    store: Store,
    /// Bounds concurrent Argon2 hashing so that it never starves other requests.
    hashing: Arc<Semaphore>,
    auth: Arc<AuthCache>,
    hints: Arc<PageHints>,
}

impl Api {
    pub fn new(store: Store, hashing_threads: usize) -> Api {
        Api {
            store,
            hashing: Arc::new(Semaphore::new(hashing_threads.max(1))),
            auth: Arc::new(AuthCache::default()),
            hints: Arc::new(PageHints::default()),
        }
    }

    /// Authenticates the caller and runs `f` (which only reads) on a database thread.
    async fn call<T, F>(&self, token: String, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>, &Principal) -> Result<T, DomainError> + Send + 'static,
    {
        self.call_as(false, token, f).await
    }

    /// Authenticates the caller and runs `f`, which writes, through the store's write path.
    async fn call_write<T, F>(&self, token: String, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>, &Principal) -> Result<T, DomainError> + Send + 'static,
    {
        self.call_as(true, token, f).await
    }

    async fn call_as<T, F>(&self, write: bool, token: String, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>, &Principal) -> Result<T, DomainError> + Send + 'static,
    {
        let key = tokens::hash_secret(&token);
        if let Some(principal) = self.auth.get(&key) {
            principal.require_enabled().map_err(Status::from)?;
            let job = move |db: &mut Db<'_>| f(db, &principal);
            let result = if write {
                self.store.run_write(job).await
            } else {
                self.store.run(job).await
            };
            return result.map_err(Status::from);
        }
        let job = move |db: &mut Db<'_>| {
            let principal = tokens::authenticate(db.conn, &token)?;
            let result = principal.require_enabled().and_then(|()| f(db, &principal));
            Ok((principal, result))
        };
        let (principal, result) = if write {
            self.store.run_write(job).await
        } else {
            self.store.run(job).await
        }
        .map_err(Status::from)?;
        self.auth.put(key, principal);
        result.map_err(Status::from)
    }

    async fn principal(&self, token: String) -> Result<Principal, Status> {
        self.call(token, |_, p| Ok(p.clone())).await
    }

    /// The Argon2id hash of `password` under the caller's policy (`None`: not kept).
    async fn password_hash(
        &self,
        principal: &Principal,
        password: String,
    ) -> Result<Option<String>, Status> {
        if principal.password_policy == PasswordPolicy::Ignore {
            return Ok(None);
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| Status::from(DomainError::internal(e)))?;
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|e| Status::from(DomainError::internal(e)))?
            .map(Some)
            .map_err(Status::from)
    }
}

/// The bearer token of a call: `authorization: Bearer <token>` (or the bare token).
fn bearer<T>(req: &Request<T>) -> Result<String, Status> {
    let value = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Status::from(DomainError::Unauthenticated))?;
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => value,
    };
    Ok(token.to_owned())
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for Api {
    #[tracing::instrument(skip_all, name = "CreateUser")]
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let token = bearer(&request)?;
        let mut user = request
            .into_inner()
            .user
            .ok_or_else(|| Status::invalid_argument("user is required"))?;
        let password = user.password.take();
        let input = convert::user_input(user);
        let created = match password {
            None => {
                self.call_write(token, move |db, p| {
                    db.write(|c| users::create(c, &p.tenant_id, &input, None))
                })
                .await?
            }
            Some(password) => {
                let principal = self.principal(token.clone()).await?;
                let hash = self.password_hash(&principal, password).await?;
                self.call_write(token, move |db, p| {
                    db.write(|c| users::create(c, &p.tenant_id, &input, hash.clone()))
                })
                .await?
            }
        };
        Ok(Response::new(convert::user(created)))
    }

    #[tracing::instrument(skip_all, name = "GetUser")]
    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let token = bearer(&request)?;
        let id = request.into_inner().id;
        let user = self
            .call(token, move |db, p| users::get(db.conn, &p.tenant_id, &id))
            .await?;
        Ok(Response::new(convert::user(user)))
    }

    #[tracing::instrument(skip_all, name = "ListUsers")]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let query = ListQuery {
            resource: "users",
            sorts: USER_SORTS,
            page_size: req.page_size,
            page_token: req.page_token,
            filter: req.filter,
            skip: req.skip,
            sort_by: req.sort_by,
            descending: req.descending,
            total_only: req.total_only,
        };
        let filter = filter::parse(&query.filter).map_err(Status::from)?;
        let hints = Arc::clone(&self.hints);
        let (found, scope) = self
            .call(token, move |db, p| {
                paged(&hints, p, query, |page, total| {
                    users::list(db.conn, &p.tenant_id, filter.as_ref(), page, total)
                })
            })
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            next_page_token: page_token(&scope, found.next.as_ref(), false),
            previous_page_token: page_token(&scope, found.previous.as_ref(), true),
            users: found.items.into_iter().map(convert::user).collect(),
            total_size: found.total,
        }))
    }

    #[tracing::instrument(skip_all, name = "UpdateUser")]
    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let mut user = req
            .user
            .ok_or_else(|| Status::invalid_argument("user is required"))?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let fields = UserField::parse_mask(&paths).map_err(Status::from)?;
        let expected = convert::expected_version(&req.etag).map_err(Status::from)?;
        let id = std::mem::take(&mut user.id);
        let password = user.password.take();
        let full_replace = paths.len() == 1 && paths[0] == "*";
        let sets_password = fields.contains(&UserField::Password) || full_replace;
        let password_hash = match (sets_password, password) {
            (true, Some(pw)) => {
                let principal = self.principal(token.clone()).await?;
                Some(self.password_hash(&principal, pw).await?)
            }
            // Named in the mask without a value: clear the stored hash.
            (true, None) if !full_replace => Some(None),
            _ => None,
        };
        let input = convert::user_input(user);
        let updated = self
            .call_write(token, move |db, p| {
                let upd = users::UserUpdate {
                    id: &id,
                    input: &input,
                    fields: &fields,
                    password_hash: password_hash.clone(),
                    expected_version: expected,
                };
                db.write(|c| users::update(c, &p.tenant_id, &upd))
            })
            .await?;
        Ok(Response::new(convert::user(updated)))
    }

    #[tracing::instrument(skip_all, name = "DeleteUser")]
    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<()>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let expected = convert::expected_version(&req.etag).map_err(Status::from)?;
        self.call_write(token, move |db, p| {
            db.write(|c| users::delete(c, &p.tenant_id, &req.id, expected))
        })
        .await?;
        Ok(Response::new(()))
    }
}

/// A ListUsers or ListGroups request.
struct ListQuery {
    resource: &'static str,
    sorts: &'static [(&'static str, SortAttr)],
    page_size: i32,
    page_token: String,
    filter: String,
    skip: i32,
    sort_by: String,
    descending: bool,
    total_only: bool,
}

/// Runs a list query: from its page token, or else from `skip`, continuing an index-paged
/// listing from where this replica saw the previous page end (see `storage::paging`; the
/// continuation is a keyset position in the query's sort), and remembers where this page ends.
/// Returns the page and the scope its page tokens are bound to.
fn paged<T>(
    hints: &PageHints,
    p: &Principal,
    q: ListQuery,
    list: impl FnOnce(&PageRequest, Option<i64>) -> Result<Page<T>, DomainError>,
) -> Result<(Page<T>, String), DomainError> {
    let (sort, sort_name) = Sort::parse(&q.sort_by, q.descending, q.sorts)?;
    let scope = convert::token_scope(&p.tenant_id, q.resource, &q.filter, sort);
    let cursor = convert::parse_list_token(&q.page_token, &scope, sort)?;
    let mut page = PageRequest {
        size: convert::page_size(q.page_size)?,
        sort,
        backward: cursor.as_ref().is_some_and(|(_, backward)| *backward),
        cursor: cursor.map(|(at, _)| at),
        skip: i64::from(q.skip.max(0)),
        total_only: q.total_only,
    };
    let key = HintKey {
        tenant_id: p.tenant_id.clone(),
        resource: q.resource,
        filter: format!("{}\0{sort_name}\0{}", q.filter.trim(), sort.descending),
        position: page.skip,
    };
    let indexed = page.cursor.is_none() && !page.total_only;
    let mut known = None;
    if indexed
        && page.skip > 0
        && let Some(c) = hints.get(&key)
    {
        page.cursor = Some(c.after);
        page.skip = 0;
        known = c.total;
    }
    let counted = known.map_or_else(Instant::now, |(_, at)| at);
    let found = list(&page, known.map(|(total, _)| total))?;
    if indexed && let Some(end) = &found.end {
        hints.record(key, found.items.len(), end, found.total, counted);
    }
    Ok((found, scope))
}

/// The page token for `position` (empty when there is none).
fn page_token(scope: &str, position: Option<&Position>, backward: bool) -> String {
    position
        .map(|at| convert::list_token(scope, at, backward))
        .unwrap_or_default()
}

#[tonic::async_trait]
impl pb::group_service_server::GroupService for Api {
    #[tracing::instrument(skip_all, name = "CreateGroup")]
    async fn create_group(
        &self,
        request: Request<pb::CreateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let group = req
            .group
            .ok_or_else(|| Status::invalid_argument("group is required"))?;
        let members: Vec<String> = group.members.into_iter().map(|m| m.user_id).collect();
        let created = self
            .call_write(token, move |db, p| {
                let id = db.write(|c| {
                    groups::create(
                        c,
                        &p.tenant_id,
                        &group.display_name,
                        group.external_id.as_deref(),
                        &members,
                    )
                })?;
                groups::get(db.conn, &p.tenant_id, &id, full)
            })
            .await?;
        Ok(Response::new(convert::group(created)))
    }

    #[tracing::instrument(skip_all, name = "GetGroup")]
    async fn get_group(
        &self,
        request: Request<pb::GetGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let group = self
            .call(token, move |db, p| {
                groups::get(db.conn, &p.tenant_id, &req.id, full)
            })
            .await?;
        Ok(Response::new(convert::group(group)))
    }

    #[tracing::instrument(skip_all, name = "ListGroups")]
    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let query = ListQuery {
            resource: "groups",
            sorts: GROUP_SORTS,
            page_size: req.page_size,
            page_token: req.page_token,
            filter: req.filter,
            skip: req.skip,
            sort_by: req.sort_by,
            descending: req.descending,
            total_only: req.total_only,
        };
        let filter = filter::parse(&query.filter).map_err(Status::from)?;
        let hints = Arc::clone(&self.hints);
        let (found, scope) = self
            .call(token, move |db, p| {
                paged(&hints, p, query, |page, total| {
                    groups::list(db.conn, &p.tenant_id, filter.as_ref(), page, full, total)
                })
            })
            .await?;
        Ok(Response::new(pb::ListGroupsResponse {
            next_page_token: page_token(&scope, found.next.as_ref(), false),
            previous_page_token: page_token(&scope, found.previous.as_ref(), true),
            groups: found.items.into_iter().map(convert::group).collect(),
            total_size: found.total,
        }))
    }

    #[tracing::instrument(skip_all, name = "UpdateGroup")]
    async fn update_group(
        &self,
        request: Request<pb::UpdateGroupRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let group = req
            .group
            .ok_or_else(|| Status::invalid_argument("group is required"))?;
        let mut changes = GroupChanges::default();
        for path in req.update_mask.map(|m| m.paths).unwrap_or_default() {
            match path.as_str() {
                "display_name" | "displayName" => {
                    changes.display_name = Some(group.display_name.clone())
                }
                "external_id" | "externalId" => {
                    changes.external_id = Some(group.external_id.clone())
                }
                other => {
                    return Err(Status::from(DomainError::invalid(
                        crate::domain::ScimType::InvalidPath,
                        format!("{other:?} is not a writable field of Group"),
                    )));
                }
            }
        }
        let ops = req
            .member_operations
            .into_iter()
            .map(convert::member_op)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Status::from)?;
        let expected = convert::expected_version(&req.etag).map_err(Status::from)?;
        let id = group.id;
        let updated = self
            .call_write(token, move |db, p| {
                db.write(|c| groups::update(c, &p.tenant_id, &id, &changes, &ops, expected))?;
                groups::get(db.conn, &p.tenant_id, &id, full)
            })
            .await?;
        Ok(Response::new(convert::group(updated)))
    }

    #[tracing::instrument(skip_all, name = "DeleteGroup")]
    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<()>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let expected = convert::expected_version(&req.etag).map_err(Status::from)?;
        self.call_write(token, move |db, p| {
            db.write(|c| groups::delete(c, &p.tenant_id, &req.id, expected))
        })
        .await?;
        Ok(Response::new(()))
    }

    #[tracing::instrument(skip_all, name = "AddGroupMembers")]
    async fn add_group_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        self.change_members(request, crate::domain::MemberOp::Add)
            .await
    }

    #[tracing::instrument(skip_all, name = "RemoveGroupMembers")]
    async fn remove_group_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        self.change_members(request, crate::domain::MemberOp::Remove)
            .await
    }

    #[tracing::instrument(skip_all, name = "ListGroupMembers")]
    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let size = convert::page_size(req.page_size).map_err(Status::from)?;
        let after = convert::parse_page_token(&req.page_token).map_err(Status::from)?;
        let (members, next) = self
            .call(token, move |db, p| {
                groups::list_members(db.conn, &p.tenant_id, &req.group_id, size, after.as_deref())
            })
            .await?;
        Ok(Response::new(pb::ListGroupMembersResponse {
            members: members.into_iter().map(convert::member).collect(),
            next_page_token: convert::page_token(next),
        }))
    }
}

impl Api {
    async fn change_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
        op: fn(Vec<String>) -> crate::domain::MemberOp,
    ) -> Result<Response<pb::Group>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let ops = [op(req.user_ids)];
        let id = req.group_id;
        let group = self
            .call_write(token, move |db, p| {
                db.write(|c| {
                    groups::update(c, &p.tenant_id, &id, &GroupChanges::default(), &ops, None)
                })?;
                groups::get(db.conn, &p.tenant_id, &id, full)
            })
            .await?;
        Ok(Response::new(convert::group(group)))
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for Api {
    #[tracing::instrument(skip_all, name = "CreateTenant")]
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let policy = convert::password_policy_from(req.password_policy);
        let tenant = self
            .call_write(token, move |db, p| {
                p.require_operator()?;
                db.write(|c| tenants::create(c, &req.name, policy))
            })
            .await?;
        Ok(Response::new(convert::tenant(tenant)))
    }

    #[tracing::instrument(skip_all, name = "ListTenants")]
    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let token = bearer(&request)?;
        let all = self
            .call(token, move |db, p| {
                p.require_operator()?;
                tenants::list(db.conn)
            })
            .await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: all.into_iter().map(convert::tenant).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "UpdateTenant")]
    async fn update_tenant(
        &self,
        request: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let tenant = req.tenant.unwrap_or_default();
        let mut changes = tenants::TenantChanges::default();
        for path in req.update_mask.map(|m| m.paths).unwrap_or_default() {
            match path.as_str() {
                "name" => changes.name = Some(tenant.name.clone()),
                "scim_enabled" | "scimEnabled" => changes.scim_enabled = Some(tenant.scim_enabled),
                "password_policy" | "passwordPolicy" => {
                    changes.password_policy =
                        Some(convert::password_policy_from(tenant.password_policy));
                }
                other => {
                    return Err(Status::from(DomainError::invalid(
                        crate::domain::ScimType::InvalidPath,
                        format!("{other:?} is not a writable field of Tenant"),
                    )));
                }
            }
        }
        let id = tenant.id;
        let updated = self
            .call_write(token, move |db, p| {
                p.require_admin()?;
                if changes.name.is_some() || (!id.is_empty() && id != p.tenant_id) {
                    p.require_operator()?;
                }
                let id = if id.is_empty() {
                    p.tenant_id.clone()
                } else {
                    id
                };
                db.write(|c| tenants::update(c, &id, &changes))
            })
            .await?;
        // At once here; other replicas follow within AUTH_CACHE_TTL.
        self.auth.clear();
        Ok(Response::new(convert::tenant(updated)))
    }

    #[tracing::instrument(skip_all, name = "WhoAmI")]
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let token = bearer(&request)?;
        let (tenant, p) = self
            .call(token, move |db, p| {
                Ok((tenants::find(db.conn, &p.tenant_id)?, p.clone()))
            })
            .await?;
        Ok(Response::new(pb::WhoAmIResponse {
            tenant: Some(convert::tenant(tenant)),
            kind: convert::token_kind(p.kind) as i32,
            token_id: p.token_id,
            ..Default::default()
        }))
    }

    #[tracing::instrument(skip_all, name = "CreateToken")]
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let kind = convert::token_kind_from(req.kind);
        let (created, secret) = self
            .call_write(token, move |db, p| {
                p.require_admin()?;
                if kind == TokenKind::Operator {
                    p.require_operator()?;
                }
                if req.ttl_seconds < 0 {
                    return Err(DomainError::invalid(
                        crate::domain::ScimType::InvalidValue,
                        "ttl_seconds must not be negative",
                    ));
                }
                let tenant = target_tenant(db, p, &req.tenant)?;
                let expires_at = (req.ttl_seconds > 0)
                    .then(|| crate::storage::now() + time::Duration::seconds(req.ttl_seconds));
                let new = tokens::NewToken {
                    kind,
                    description: &req.description,
                    created_by: &p.token_id,
                    expires_at,
                };
                db.write(|c| tokens::create(c, &tenant.0, &tenant.1, &new))
            })
            .await?;
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(convert::token(created)),
            secret,
        }))
    }

    #[tracing::instrument(skip_all, name = "RegenerateToken")]
    async fn regenerate_token(
        &self,
        request: Request<pb::RegenerateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        if !(0..=crate::domain::MAX_TOKEN_GRACE_SECONDS).contains(&req.grace_seconds) {
            return Err(Status::from(DomainError::invalid(
                crate::domain::ScimType::InvalidValue,
                format!(
                    "grace_seconds must be between 0 and {}",
                    crate::domain::MAX_TOKEN_GRACE_SECONDS
                ),
            )));
        }
        let (created, secret) = self
            .call_write(token, move |db, p| {
                p.require_admin()?;
                db.write(|c| {
                    tokens::regenerate(
                        c,
                        &p.tenant_id,
                        &p.tenant_name,
                        &req.id,
                        req.grace_seconds,
                        &p.token_id,
                    )
                })
            })
            .await?;
        // The old secret's new end takes effect here at once; other replicas within a second.
        self.auth.clear();
        Ok(Response::new(pb::CreateTokenResponse {
            token: Some(convert::token(created)),
            secret,
        }))
    }

    #[tracing::instrument(skip_all, name = "ListTokens")]
    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let all = self
            .call(token, move |db, p| {
                p.require_admin()?;
                let tenant = target_tenant(db, p, &req.tenant)?;
                tokens::list(db.conn, &tenant.0, &tenant.1)
            })
            .await?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: all.into_iter().map(convert::token).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "RevokeToken")]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<()>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        self.call_write(token, move |db, p| {
            p.require_admin()?;
            db.write(|c| tokens::revoke(c, &p.tenant_id, &req.id))
        })
        .await?;
        // At once here; other replicas stop trusting it within AUTH_CACHE_TTL.
        self.auth.clear();
        Ok(Response::new(()))
    }
}

/// The tenant (id, name) an admin call acts on: the caller's own, or, for the operator, any.
fn target_tenant(
    db: &mut Db<'_>,
    p: &Principal,
    name: &str,
) -> Result<(String, String), DomainError> {
    if name.is_empty() || name == p.tenant_name {
        return Ok((p.tenant_id.clone(), p.tenant_name.clone()));
    }
    p.require_operator()?;
    let t = tenants::find_by_name(db.conn, name)?;
    Ok((t.id, t.name))
}
