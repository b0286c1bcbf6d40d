//! The tonic handlers: authenticate, convert, one storage call, convert back. Every error
//! leaves through `status::From<DomainError>`.

mod access;
mod admin;
pub mod convert;
pub mod status;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use roster_proto::v1 as pb;
use tokio::sync::Semaphore;
use tonic::{Request, Response, Status};

use crate::domain::policy::{self, Caller, Guard, Rpc};
use crate::domain::{
    DomainError, GROUP_SORTS, GroupChanges, Page, PageRequest, PasswordPolicy, Position, Principal,
    Sort, SortAttr, TokenKind, USER_SORTS, UserField,
};
use crate::password;
use crate::storage::paging::{HintKey, PageHints};
use crate::storage::{Db, Store, filter, groups, roles, tokens, users};

/// How long a replica trusts a token it has checked before asking the database again: the
/// bound on how late a revocation made on another replica takes effect here.
pub const AUTH_CACHE_TTL: Duration = Duration::from_secs(1);
const AUTH_CACHE_MAX: usize = 10_000;

/// How long an authorized call may wait before its work without being checked again.
const TICKET_FRESH: Duration = Duration::from_millis(5);

/// Tokens this replica checked in the last [`AUTH_CACHE_TTL`], by the hash of their secret.
/// Only successful checks are kept; a revocation made here clears it at once.
#[derive(Default)]
struct AuthCache {
    entries: Mutex<HashMap<String, (Principal, Instant)>>,
    /// HTTP Basic credentials (by digest) already verified against a stored Argon2id hash.
    verified: Mutex<HashMap<String, String>>,
    /// Whether an admin token may be among `entries` (so that writes need not look, mostly).
    has_admins: AtomicBool,
}

impl AuthCache {
    /// Whether the credentials of digest `key` were verified against exactly `phc`.
    fn verified(&self, key: &str, phc: &str) -> bool {
        self.verified
            .lock()
            .is_ok_and(|v| v.get(key).is_some_and(|known| known == phc))
    }

    fn remember_verified(&self, key: String, phc: String) {
        if let Ok(mut v) = self.verified.lock() {
            if v.len() >= AUTH_CACHE_MAX {
                v.clear();
            }
            v.insert(key, phc);
        }
    }

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
            if principal.kind == TokenKind::Admin {
                self.has_admins.store(true, Ordering::Relaxed);
            }
            entries.insert(key, (principal, Instant::now()));
        }
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Forgets the admin tokens acting for `user_id` (any user: `None`), whose grant may have
    /// changed with that user's role, so that a demotion made here takes effect at once.
    fn forget_admins(&self, user_id: Option<&str>) {
        if !self.has_admins.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, (p, _)| {
                p.kind != TokenKind::Admin
                    || user_id.is_some_and(|id| p.user_id.as_deref() != Some(id))
            });
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
    /// Reported as each tenant's SCIM base URL (empty: unknown).
    scim_base_url: Arc<str>,
}

impl Api {
    pub fn new(store: Store, hashing_threads: usize) -> Api {
        Api {
            store,
            hashing: Arc::new(Semaphore::new(hashing_threads.max(1))),
            auth: Arc::new(AuthCache::default()),
            hints: Arc::new(PageHints::default()),
            scim_base_url: Arc::from(""),
        }
    }

    /// Where identity providers send SCIM requests (e.g. `https://roster.example.com/scim/v2`),
    /// reported with each tenant.
    pub fn with_scim_base_url(mut self, url: &str) -> Api {
        self.scim_base_url = Arc::from(url.trim_end_matches('/'));
        self
    }

    /// Authenticates the caller of `rpc` and asks the policy whether it may call it (see
    /// `domain::policy`): the first thing every handler does, before it reads its request.
    async fn authorize<R>(&self, rpc: Rpc, request: &Request<R>) -> Result<Ticket, Status> {
        let cred = bearer(request)?;
        let principal = self.authenticate(&cred).await?;
        let caller = policy::authorize(rpc, &principal).map_err(Status::from)?;
        Ok(Ticket {
            rpc,
            cred,
            principal,
            caller,
            issued: Instant::now(),
        })
    }

    /// [`Api::authorize`] for an RPC whose request names the tenant it acts on
    /// (`Tenancy::Named`): another tenant than the caller's needs what the policy says.
    async fn authorize_on<R>(
        &self,
        rpc: Rpc,
        request: &Request<R>,
        tenant: TenantRef<'_>,
    ) -> Result<Ticket, Status> {
        let ticket = self.authorize(rpc, request).await?;
        policy::authorize_tenant(rpc, ticket.caller, tenant.is_other(&ticket.principal))
            .map_err(Status::from)?;
        Ok(ticket)
    }

    /// Runs `f` for an authorized call on a database thread: through the store's write path if
    /// the RPC writes. The caller is authenticated and authorized again first (from this
    /// replica's cache, mostly), so that a token revoked or demoted since the ticket was made
    /// does not go on.
    async fn call<T, F>(&self, ticket: &Ticket, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>, &Principal) -> Result<T, DomainError> + Send + 'static,
    {
        self.run_call(ticket, ticket.rpc.rule().writes, f).await
    }

    /// [`Api::call`] for a step of a call that only reads (e.g. before a slow mint), on the
    /// read path whatever the RPC.
    async fn call_read<T, F>(&self, ticket: &Ticket, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>, &Principal) -> Result<T, DomainError> + Send + 'static,
    {
        self.run_call(ticket, false, f).await
    }

    async fn run_call<T, F>(&self, ticket: &Ticket, write: bool, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut Db<'_>, &Principal) -> Result<T, DomainError> + Send + 'static,
    {
        // A ticket that has waited (for a slow password hash, say) is checked again, so that
        // a token revoked or demoted meanwhile does not go on; a fresh one is used as it is.
        let principal = if ticket.issued.elapsed() < TICKET_FRESH {
            ticket.principal.clone()
        } else {
            let principal = self.authenticate(&ticket.cred).await?;
            policy::authorize(ticket.rpc, &principal).map_err(Status::from)?;
            principal
        };
        // In the tenant's own lane of the database threads (fairness between tenants).
        let tenant = principal.tenant_id.clone();
        let job = move |db: &mut Db<'_>| f(db, &principal);
        let result = if write {
            self.store.run_write_for(&tenant, job).await
        } else {
            self.store.run_for(&tenant, job).await
        };
        result.map_err(Status::from)
    }

    /// The principal a credential stands for (checked in the last [`AUTH_CACHE_TTL`] on this
    /// replica, or now).
    async fn authenticate(&self, cred: &Credential) -> Result<Principal, Status> {
        let secret = match cred {
            Credential::Local(p) => return Ok(p.as_ref().clone()),
            Credential::Basic { .. } => return self.basic_principal(cred).await,
            Credential::Bearer(secret) => secret.clone(),
        };
        let key = tokens::hash_secret(&secret);
        if let Some(p) = self.auth.get(&key) {
            return Ok(p);
        }
        let found = self
            .store
            .run(move |db| tokens::authenticate(db.conn, &secret))
            .await
            .map_err(Status::from)?;
        self.touch(&found);
        self.auth.put(key, found.principal.clone());
        Ok(found.principal)
    }

    /// Records, at most once a minute per token, when it was used; off the request's path.
    fn touch(&self, found: &tokens::Authenticated) {
        if !tokens::needs_touch(found.last_used) {
            return;
        }
        let store = self.store.clone();
        let (tenant_id, id) = (
            found.principal.tenant_id.clone(),
            found.principal.token_id.clone(),
        );
        tokio::spawn(async move {
            let lane = tenant_id.clone();
            let touched = store
                .run_write_for(&lane, move |db| {
                    db.write(|c| tokens::touch(c, &tenant_id, &id))
                })
                .await;
            if let Err(e) = touched {
                tracing::warn!(error = %e, "could not record a token's last use");
            }
        });
    }

    /// HTTP Basic credentials: the stored Argon2id hash is checked once per credentials and
    /// stored hash (then remembered by digest), so that a request costs no hashing after the
    /// first; the token's row is still read at least every [`AUTH_CACHE_TTL`].
    async fn basic_principal(&self, cred: &Credential) -> Result<Principal, Status> {
        let Credential::Basic { username, password } = cred else {
            return Err(Status::from(DomainError::Unauthenticated));
        };
        let key = tokens::hash_secret(&format!("basic\0{username}\0{password}"));
        if let Some(p) = self.auth.get(&key) {
            return Ok(p);
        }
        let name = username.clone();
        let (found, phc) = self
            .store
            .run(move |db| tokens::find_basic(db.conn, &name))
            .await
            .map_err(Status::from)?;
        if !self.auth.verified(&key, &phc) {
            let _permit = self
                .hashing
                .acquire()
                .await
                .map_err(|e| Status::from(DomainError::internal(e)))?;
            let (password, stored) = (password.clone(), phc.clone());
            let ok = tokio::task::spawn_blocking(move || password::verify(&password, &stored))
                .await
                .map_err(|e| Status::from(DomainError::internal(e)))?;
            if !ok {
                return Err(Status::from(DomainError::Unauthenticated));
            }
            self.auth.remember_verified(key.clone(), phc);
        }
        self.touch(&found);
        self.auth.put(key, found.principal.clone());
        Ok(found.principal)
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

/// A call the policy let through ([`Api::authorize`]): the only way to [`Api::call`].
struct Ticket {
    rpc: Rpc,
    cred: Credential,
    /// The caller, as authorized.
    principal: Principal,
    caller: Caller,
    /// When it was authorized.
    issued: Instant,
}

/// How a request names the tenant it acts on (empty: the caller's).
#[derive(Clone, Copy)]
enum TenantRef<'a> {
    Name(&'a str),
    Id(&'a str),
}

impl TenantRef<'_> {
    /// Whether it names another tenant than `p`'s.
    fn is_other(self, p: &Principal) -> bool {
        match self {
            TenantRef::Name(n) => !n.is_empty() && n != p.tenant_name,
            TenantRef::Id(id) => !id.is_empty() && id != p.tenant_id,
        }
    }
}

/// How a call authenticates.
#[derive(Clone)]
pub(crate) enum Credential {
    /// `authorization: Bearer <token>` (or the bare token).
    Bearer(String),
    /// `authorization: Basic <base64(user:password)>` (Okta's "Basic Auth" mode).
    Basic { username: String, password: String },
    /// A caller inside this process (the operator's CLI), set as a request extension: never
    /// from the network.
    Local(Arc<Principal>),
}

/// Marks a request made inside the process on behalf of `0` (see [`Credential::Local`]).
#[derive(Clone)]
pub struct LocalCaller(pub Arc<Principal>);

/// The credentials of a call.
fn bearer<T>(req: &Request<T>) -> Result<Credential, Status> {
    if let Some(LocalCaller(p)) = req.extensions().get::<LocalCaller>() {
        return Ok(Credential::Local(Arc::clone(p)));
    }
    let value = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Status::from(DomainError::Unauthenticated))?;
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => {
            Ok(Credential::Bearer(rest.trim().to_owned()))
        }
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Status::from(DomainError::Unauthenticated))?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| Status::from(DomainError::Unauthenticated))?;
            Ok(Credential::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            })
        }
        _ => Ok(Credential::Bearer(value.to_owned())),
    }
}

#[tonic::async_trait]
impl pb::user_service_server::UserService for Api {
    #[tracing::instrument(skip_all, name = "CreateUser")]
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let rpc = Rpc::CreateUser;
        let ticket = self.authorize(rpc, &request).await?;
        let mut user = request
            .into_inner()
            .user
            .ok_or_else(|| Status::invalid_argument("user is required"))?;
        let password = user.password.take();
        let input = convert::user_input(user);
        if input.role.is_some()
            && !policy::may_change_roles(rpc, Guard::UserRole, ticket.caller)
                .map_err(Status::from)?
        {
            return Err(Status::from(policy::roles_denied(
                Guard::UserRole,
                ticket.caller,
            )));
        }
        let hash = match password {
            None => None,
            Some(password) => self.password_hash(&ticket.principal, password).await?,
        };
        let created = self
            .call(&ticket, move |db, p| {
                let user = db.write(|c| users::create(c, &p.tenant_id, &input, hash.clone()))?;
                Ok((user, p.default_role.clone()))
            })
            .await?;
        Ok(Response::new(convert::user(created.0, &created.1)))
    }

    #[tracing::instrument(skip_all, name = "GetUser")]
    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let ticket = self.authorize(Rpc::GetUser, &request).await?;
        let id = request.into_inner().id;
        let (user, default_role) = self
            .call(&ticket, move |db, p| {
                Ok((
                    users::get(db.conn, &p.tenant_id, &id)?,
                    p.default_role.clone(),
                ))
            })
            .await?;
        Ok(Response::new(convert::user(user, &default_role)))
    }

    #[tracing::instrument(skip_all, name = "ListUsers")]
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let ticket = self.authorize(Rpc::ListUsers, &request).await?;
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
        let ((found, scope), default_role) = self
            .call(&ticket, move |db, p| {
                let found = paged(&hints, p, query, |page, total| {
                    users::list(db.conn, &p.tenant_id, filter.as_ref(), page, total)
                })?;
                Ok((found, p.default_role.clone()))
            })
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            next_page_token: page_token(&scope, found.next.as_ref(), false),
            previous_page_token: page_token(&scope, found.previous.as_ref(), true),
            users: found
                .items
                .into_iter()
                .map(|u| convert::user(u, &default_role))
                .collect(),
            total_size: found.total,
        }))
    }

    #[tracing::instrument(skip_all, name = "UpdateUser")]
    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let rpc = Rpc::UpdateUser;
        let ticket = self.authorize(rpc, &request).await?;
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
            (true, Some(pw)) => Some(self.password_hash(&ticket.principal, pw).await?),
            // Named in the mask without a value: clear the stored hash.
            (true, None) if !full_replace => Some(None),
            _ => None,
        };
        // A caller that may not change roles may still write `role` as it is stored (a full
        // replace that carries the role it read): only a change is refused.
        let role_guarded = fields.contains(&UserField::Role)
            && !policy::may_change_roles(rpc, Guard::UserRole, ticket.caller)
                .map_err(Status::from)?;
        let caller = ticket.caller;
        let input = convert::user_input(user);
        let updated = self
            .call(&ticket, move |db, p| {
                let upd = users::UserUpdate {
                    id: &id,
                    input: &input,
                    fields: &fields,
                    password_hash: password_hash.clone(),
                    expected_version: expected,
                };
                let user = db.write(|c| {
                    if role_guarded && users::get(c, &p.tenant_id, &id)?.attrs.role != input.role {
                        return Err(policy::roles_denied(Guard::UserRole, caller).into());
                    }
                    users::update(c, &p.tenant_id, &upd)
                })?;
                Ok((user, p.default_role.clone()))
            })
            .await?;
        self.auth.forget_admins(Some(&updated.0.id));
        Ok(Response::new(convert::user(updated.0, &updated.1)))
    }

    #[tracing::instrument(skip_all, name = "DeleteUser")]
    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<()>, Status> {
        let ticket = self.authorize(Rpc::DeleteUser, &request).await?;
        let req = request.into_inner();
        let expected = convert::expected_version(&req.etag).map_err(Status::from)?;
        let id = req.id.clone();
        self.call(&ticket, move |db, p| {
            db.write(|c| users::delete(c, &p.tenant_id, &req.id, expected))
        })
        .await?;
        self.auth.forget_admins(Some(&id));
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
        let ticket = self.authorize(Rpc::CreateGroup, &request).await?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let group = req
            .group
            .ok_or_else(|| Status::invalid_argument("group is required"))?;
        let members: Vec<String> = group.members.into_iter().map(|m| m.user_id).collect();
        let created = self
            .call(&ticket, move |db, p| {
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
        let ticket = self.authorize(Rpc::GetGroup, &request).await?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let group = self
            .call(&ticket, move |db, p| {
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
        let ticket = self.authorize(Rpc::ListGroups, &request).await?;
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
            .call(&ticket, move |db, p| {
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
        let ticket = self.authorize(Rpc::UpdateGroup, &request).await?;
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
        let guard = MappedGroupGuard::new(&ticket, !ops.is_empty())?;
        let updated = self
            .call(&ticket, move |db, p| {
                db.write(|c| {
                    guard.check(c, &p.tenant_id, &id)?;
                    groups::update(c, &p.tenant_id, &id, &changes, &ops, expected)
                })?;
                groups::get(db.conn, &p.tenant_id, &id, full)
            })
            .await?;
        // Memberships decide group-derived roles.
        self.auth.forget_admins(None);
        Ok(Response::new(convert::group(updated)))
    }

    #[tracing::instrument(skip_all, name = "DeleteGroup")]
    async fn delete_group(
        &self,
        request: Request<pb::DeleteGroupRequest>,
    ) -> Result<Response<()>, Status> {
        let ticket = self.authorize(Rpc::DeleteGroup, &request).await?;
        let req = request.into_inner();
        let expected = convert::expected_version(&req.etag).map_err(Status::from)?;
        let guard = MappedGroupGuard::new(&ticket, true)?;
        self.call(&ticket, move |db, p| {
            db.write(|c| {
                guard.check(c, &p.tenant_id, &req.id)?;
                groups::delete(c, &p.tenant_id, &req.id, expected)
            })
        })
        .await?;
        self.auth.forget_admins(None);
        Ok(Response::new(()))
    }

    #[tracing::instrument(skip_all, name = "AddGroupMembers")]
    async fn add_group_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        self.change_members(Rpc::AddGroupMembers, request, crate::domain::MemberOp::Add)
            .await
    }

    #[tracing::instrument(skip_all, name = "RemoveGroupMembers")]
    async fn remove_group_members(
        &self,
        request: Request<pb::GroupMembersRequest>,
    ) -> Result<Response<pb::Group>, Status> {
        self.change_members(
            Rpc::RemoveGroupMembers,
            request,
            crate::domain::MemberOp::Remove,
        )
        .await
    }

    #[tracing::instrument(skip_all, name = "ListGroupMembers")]
    async fn list_group_members(
        &self,
        request: Request<pb::ListGroupMembersRequest>,
    ) -> Result<Response<pb::ListGroupMembersResponse>, Status> {
        let ticket = self.authorize(Rpc::ListGroupMembers, &request).await?;
        let req = request.into_inner();
        let size = convert::page_size(req.page_size).map_err(Status::from)?;
        let after = convert::parse_page_token(&req.page_token).map_err(Status::from)?;
        let (members, next) = self
            .call(&ticket, move |db, p| {
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
        rpc: Rpc,
        request: Request<pb::GroupMembersRequest>,
        op: fn(Vec<String>) -> crate::domain::MemberOp,
    ) -> Result<Response<pb::Group>, Status> {
        let ticket = self.authorize(rpc, &request).await?;
        let req = request.into_inner();
        let full = convert::with_members(req.view);
        let ops = [op(req.user_ids)];
        let id = req.group_id;
        let guard = MappedGroupGuard::new(&ticket, true)?;
        let group = self
            .call(&ticket, move |db, p| {
                db.write(|c| {
                    guard.check(c, &p.tenant_id, &id)?;
                    groups::update(c, &p.tenant_id, &id, &GroupChanges::default(), &ops, None)
                })?;
                groups::get(db.conn, &p.tenant_id, &id, full)
            })
            .await?;
        self.auth.forget_admins(None);
        Ok(Response::new(convert::group(group)))
    }
}

/// [`Guard::MappedGroup`] for one call: a caller that may not change roles may not change the
/// members of a group mapped to a role (nor delete it), checked in the write's transaction.
#[derive(Clone, Copy)]
struct MappedGroupGuard {
    /// The caller, when the call changes members and the caller may not change roles.
    refused: Option<Caller>,
}

impl MappedGroupGuard {
    /// For `ticket`'s call, which changes members if `changes_members`.
    fn new(ticket: &Ticket, changes_members: bool) -> Result<MappedGroupGuard, Status> {
        let may = policy::may_change_roles(ticket.rpc, Guard::MappedGroup, ticket.caller)
            .map_err(Status::from)?;
        Ok(MappedGroupGuard {
            refused: (changes_members && !may).then_some(ticket.caller),
        })
    }

    fn check(
        self,
        c: &mut crate::storage::DbConnection,
        tenant_id: &str,
        group_id: &str,
    ) -> Result<(), DomainError> {
        let Some(caller) = self.refused else {
            return Ok(());
        };
        if roles::list(c, tenant_id)?
            .iter()
            .any(|m| m.group_id == group_id)
        {
            return Err(policy::roles_denied(Guard::MappedGroup, caller));
        }
        Ok(())
    }
}
