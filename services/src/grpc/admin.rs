//! `AdminService`: tenants and tokens.

use roster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, bearer, convert};
use crate::domain::{DomainError, MAX_TOKEN_GRACE_SECONDS, Principal, ScimType, TokenKind};
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
        let token = bearer(&request)?;
        let req = request.into_inner();
        let policy = convert::password_policy_from(req.password_policy);
        let tenant = self
            .call_write(token, move |db, p| {
                p.require_operator()?;
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
        let token = bearer(&request)?;
        let all = self
            .call(token, move |db, p| {
                p.require_operator()?;
                tenants::list(db.conn)
            })
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
                        ScimType::InvalidPath,
                        format!(
                            "{other:?} is not a writable field of Tenant (name, scim_enabled, password_policy; the default role is AccessService/SetDefaultRole)"
                        ),
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
        Ok(Response::new(convert::tenant(updated, &self.scim_base_url)))
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
        let token = bearer(&request)?;
        let req = request.into_inner();
        // Who may mint is checked first (before the request's own errors, and before any
        // slow Basic hash is computed), and again in the transaction.
        self.principal(token.clone())
            .await?
            .require_admin()
            .map_err(Status::from)?;
        let kind = convert::token_kind_from(req.kind).map_err(Status::from)?;
        if req.ttl_seconds < 0 {
            return Err(Status::from(DomainError::invalid(
                ScimType::InvalidValue,
                "ttl_seconds must not be negative",
            )));
        }
        let minted = self.mint(req.basic_auth).await?;
        let secret = minted.secret.clone();
        let created = self
            .call_write(token, move |db, p| {
                p.require_admin()?;
                if kind == TokenKind::Operator {
                    p.require_operator()?;
                }
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
        let token = bearer(&request)?;
        let req = request.into_inner();
        if !(0..=MAX_TOKEN_GRACE_SECONDS).contains(&req.grace_seconds) {
            return Err(Status::from(DomainError::invalid(
                ScimType::InvalidValue,
                format!("grace_seconds must be between 0 and {MAX_TOKEN_GRACE_SECONDS}"),
            )));
        }
        let id = req.id.clone();
        let basic = self
            .call(token.clone(), move |db, p| {
                p.require_admin()?;
                tokens::is_basic(db.conn, &p.tenant_id, &id)
            })
            .await?;
        let minted = self.mint(basic).await?;
        let secret = minted.secret.clone();
        let created = self
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
        let token = bearer(&request)?;
        let req = request.into_inner();
        let all = self
            .call(token, move |db, p| {
                p.require_admin()?;
                let tenant = target_tenant(db, p, &req.tenant)?;
                tokens::list(db.conn, &tenant.id, &tenant.name)
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

/// The tenant an admin call acts on: the caller's own, or, for the operator, any.
fn target_tenant(
    db: &mut Db<'_>,
    p: &Principal,
    name: &str,
) -> Result<crate::domain::Tenant, DomainError> {
    if !name.is_empty() && name != p.tenant_name {
        p.require_operator()?;
    }
    if name.is_empty() {
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
