//! `AdminService`: tenants and tokens.

use roster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, TenantRef, convert};
use crate::domain::policy;
use crate::domain::{
    DomainError, MAX_TOKEN_GRACE_SECONDS, MAX_TOKEN_TTL_SECONDS, Principal, Rpc, ScimType,
    TokenKind,
};
use crate::storage::{Db, now, tenants, tokens, users};

impl Api {
    /// A new secret: a bearer token, or Basic credentials (whose Argon2id hash is computed on a
    /// blocking thread, bounded like password hashing).
    async fn mint(&self, basic: bool) -> Result<tokens::Minted, Status> {
        if !basic {
            return tokens::Minted::bearer().map_err(Status::from);
        }
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| Status::from(DomainError::internal(e)))?;
        tokio::task::spawn_blocking(tokens::Minted::basic)
            .await
            .map_err(|e| Status::from(DomainError::internal(e)))?
            .map_err(Status::from)
    }
}

#[tonic::async_trait]
impl pb::admin_service_server::AdminService for Api {
    #[tracing::instrument(skip_all, name = "CreateTenant")]
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let ticket = self.authorize(Rpc::CreateTenant, &request).await?;
        let req = request.into_inner();
        let policy = convert::password_policy_from(req.password_policy);
        let tenant = self
            .call(&ticket, move |db, _| {
                db.write(|c| tenants::create(c, &req.name, policy))
            })
            .await?;
        Ok(Response::new(convert::tenant(tenant, &self.scim_base_url)))
    }

    #[tracing::instrument(skip_all, name = "ListTenants")]
    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Result<Response<pb::ListTenantsResponse>, Status> {
        let ticket = self.authorize(Rpc::ListTenants, &request).await?;
        let all = self
            .call(&ticket, move |db, _| tenants::list(db.conn))
            .await?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: all
                .into_iter()
                .map(|t| convert::tenant(t, &self.scim_base_url))
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "UpdateTenant")]
    async fn update_tenant(
        &self,
        request: Request<pb::UpdateTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let rpc = Rpc::UpdateTenant;
        let named = request
            .get_ref()
            .tenant
            .as_ref()
            .map(|t| t.id.clone())
            .unwrap_or_default();
        let ticket = self
            .authorize_on(rpc, &request, TenantRef::Id(&named))
            .await?;
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
                        ScimType::InvalidPath,
                        format!(
                            "{other:?} is not a writable field of Tenant (name, scim_enabled, password_policy; the default role is AccessService/SetDefaultRole)"
                        ),
                    )));
                }
            }
        }
        if changes.name.is_some() {
            policy::may_rename_tenant(rpc, ticket.caller).map_err(Status::from)?;
        }
        let id = tenant.id;
        let updated = self
            .call(&ticket, move |db, p| {
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
        Ok(Response::new(convert::tenant(updated, &self.scim_base_url)))
    }

    #[tracing::instrument(skip_all, name = "WhoAmI")]
    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let ticket = self.authorize(Rpc::WhoAmI, &request).await?;
        let (tenant, p) = self
            .call(&ticket, move |db, p| {
                Ok((tenants::find(db.conn, &p.tenant_id)?, p.clone()))
            })
            .await?;
        Ok(Response::new(pb::WhoAmIResponse {
            tenant: Some(convert::tenant(tenant, &self.scim_base_url)),
            kind: convert::token_kind(p.kind) as i32,
            admin: p.is_admin(),
            read_only: p.read_only,
            user_id: p.user_id.unwrap_or_default(),
            token_id: p.token_id,
        }))
    }

    #[tracing::instrument(skip_all, name = "CreateToken")]
    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let rpc = Rpc::CreateToken;
        let named = request.get_ref().tenant.clone();
        // Who may mint is checked first (before the request's own errors, and before any
        // slow Basic hash is computed), and again in the transaction.
        let ticket = self
            .authorize_on(rpc, &request, TenantRef::Name(&named))
            .await?;
        let req = request.into_inner();
        let kind = convert::token_kind_from(req.kind).map_err(Status::from)?;
        policy::may_manage_token(rpc, ticket.caller, kind).map_err(Status::from)?;
        if !(0..=MAX_TOKEN_TTL_SECONDS).contains(&req.ttl_seconds) {
            return Err(Status::from(DomainError::invalid(
                ScimType::InvalidValue,
                format!(
                    "ttl_seconds must be between 0 (no expiry) and {MAX_TOKEN_TTL_SECONDS} (3650 days)"
                ),
            )));
        }
        let minted = self.mint(req.basic_auth).await?;
        let secret = minted.secret.clone();
        let created = self
            .call(&ticket, move |db, p| {
                let tenant = target_tenant(db, p, &req.tenant)?;
                let user_id = (!req.user_id.is_empty()).then_some(req.user_id.as_str());
                if kind == TokenKind::Admin
                    && let Some(user_id) = user_id
                {
                    require_active_admin(db, &tenant, user_id)?;
                }
                let expires_at =
                    (req.ttl_seconds > 0).then(|| now() + time::Duration::seconds(req.ttl_seconds));
                let new = tokens::NewToken {
                    kind,
                    description: &req.description,
                    created_by: &p.token_id,
                    expires_at,
                    read_only: req.read_only,
                    user_id,
                };
                db.write(|c| tokens::create(c, &tenant.id, &tenant.name, &new, &minted))
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
        let rpc = Rpc::RegenerateToken;
        let named = request.get_ref().tenant.clone();
        let ticket = self
            .authorize_on(rpc, &request, TenantRef::Name(&named))
            .await?;
        let req = request.into_inner();
        if !(0..=MAX_TOKEN_GRACE_SECONDS).contains(&req.grace_seconds) {
            return Err(Status::from(DomainError::invalid(
                ScimType::InvalidValue,
                format!("grace_seconds must be between 0 and {MAX_TOKEN_GRACE_SECONDS}"),
            )));
        }
        let caller = ticket.caller;
        // The token's kind is checked before a slow Basic hash is minted, and again in the
        // transaction (the new token keeps the old one's kind).
        let (id, name) = (req.id.clone(), req.tenant.clone());
        let basic = self
            .call_read(&ticket, move |db, p| {
                let tenant = target_tenant(db, p, &name)?;
                let old = tokens::find_live(db.conn, &tenant.id, &id)?;
                policy::may_manage_token(rpc, caller, old.kind)?;
                Ok(old.basic)
            })
            .await?;
        let minted = self.mint(basic).await?;
        let secret = minted.secret.clone();
        let created = self
            .call(&ticket, move |db, p| {
                let tenant = target_tenant(db, p, &req.tenant)?;
                db.write(|c| {
                    let old = tokens::find_live(c, &tenant.id, &req.id)?;
                    policy::may_manage_token(rpc, caller, old.kind)?;
                    tokens::regenerate(
                        c,
                        &tenant.id,
                        &tenant.name,
                        &req.id,
                        req.grace_seconds,
                        &p.token_id,
                        &minted,
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
        let rpc = Rpc::ListTokens;
        let named = request.get_ref().tenant.clone();
        let ticket = self
            .authorize_on(rpc, &request, TenantRef::Name(&named))
            .await?;
        let caller = ticket.caller;
        let all = self
            .call(&ticket, move |db, p| {
                let tenant = target_tenant(db, p, &named)?;
                tokens::list(db.conn, &tenant.id, &tenant.name)
            })
            .await?;
        // Only the tokens the caller may act on (an admin never sees operator tokens).
        Ok(Response::new(pb::ListTokensResponse {
            tokens: all
                .into_iter()
                .filter(|t| policy::may_manage_token(rpc, caller, t.kind).is_ok())
                .map(convert::token)
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "RevokeToken")]
    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<()>, Status> {
        let rpc = Rpc::RevokeToken;
        let named = request.get_ref().tenant.clone();
        let ticket = self
            .authorize_on(rpc, &request, TenantRef::Name(&named))
            .await?;
        let caller = ticket.caller;
        let req = request.into_inner();
        self.call(&ticket, move |db, p| {
            let tenant = target_tenant(db, p, &req.tenant)?;
            db.write(|c| {
                let old = tokens::find_live(c, &tenant.id, &req.id)?;
                policy::may_manage_token(rpc, caller, old.kind)?;
                tokens::revoke(c, &tenant.id, &req.id)
            })
        })
        .await?;
        // At once here; other replicas stop trusting it within AUTH_CACHE_TTL.
        self.auth.clear();
        Ok(Response::new(()))
    }
}

/// The tenant a call that names one acts on (the policy has let the caller name it: see
/// [`Api::authorize_on`]): the caller's own when `name` is empty.
fn target_tenant(
    db: &mut Db<'_>,
    p: &Principal,
    name: &str,
) -> Result<crate::domain::Tenant, DomainError> {
    if name.is_empty() || name == p.tenant_name {
        tenants::find(db.conn, &p.tenant_id)
    } else {
        tenants::find_by_name(db.conn, name)
    }
}

/// An admin token acts for an active user of its tenant whose effective role is admin.
fn require_active_admin(
    db: &mut Db<'_>,
    tenant: &crate::domain::Tenant,
    user_id: &str,
) -> Result<(), DomainError> {
    let user = users::get(db.conn, &tenant.id, user_id).map_err(|e| match e {
        DomainError::NotFound { .. } => DomainError::invalid(
            ScimType::InvalidValue,
            format!("user_id: no user {user_id:?} in the tenant"),
        ),
        other => other,
    })?;
    if !user.acts_as_admin(&tenant.default_role) {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!(
                "user_id: an admin token acts for an active user whose effective role is admin; this user is {} with role {}",
                if user.attrs.active {
                    "active"
                } else {
                    "deactivated"
                },
                user.effective_role(&tenant.default_role).role
            ),
        ));
    }
    Ok(())
}
