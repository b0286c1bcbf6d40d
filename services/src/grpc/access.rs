//! `AccessService`: the role logic, for internal services and admins.

use roster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, bearer, convert};
use crate::domain::{CATALOG, DEFAULT_ROLE, DomainError, grants};
use crate::storage::{roles, users};

fn group_role(g: roles::GroupRole) -> pb::GroupRole {
    pb::GroupRole {
        group_id: g.group_id,
        group_display_name: g.group_display_name,
        role: g.role,
        priority: g.priority,
    }
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for Api {
    #[tracing::instrument(skip_all, name = "GetEffectiveRole")]
    async fn get_effective_role(
        &self,
        request: Request<pb::GetEffectiveRoleRequest>,
    ) -> Result<Response<pb::EffectiveRole>, Status> {
        let token = bearer(&request)?;
        let id = request.into_inner().user_id;
        let user = self
            .call(token, move |db, p| users::get(db.conn, &p.tenant_id, &id))
            .await?;
        let effective = user.effective_role();
        Ok(Response::new(convert::effective_role(
            user.id,
            user.attrs.active,
            effective,
        )))
    }

    #[tracing::instrument(skip_all, name = "CheckPermission")]
    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Result<Response<pb::CheckPermissionResponse>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        if req.permission.trim().is_empty() {
            return Err(Status::from(DomainError::invalid(
                crate::domain::ScimType::InvalidValue,
                "permission is required",
            )));
        }
        let id = req.user_id;
        let user = self
            .call(token, move |db, p| users::get(db.conn, &p.tenant_id, &id))
            .await?;
        let effective = user.effective_role();
        let (allowed, reason) = if !user.attrs.active {
            (false, "the user is deactivated".to_owned())
        } else if grants(&effective.role, &req.permission) {
            (
                true,
                format!("role {} grants {}", effective.role, req.permission),
            )
        } else {
            (
                false,
                format!("role {} does not grant {}", effective.role, req.permission),
            )
        };
        Ok(Response::new(pb::CheckPermissionResponse {
            allowed,
            effective_role: Some(convert::effective_role(
                user.id,
                user.attrs.active,
                effective,
            )),
            reason,
        }))
    }

    #[tracing::instrument(skip_all, name = "ListRoles")]
    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Result<Response<pb::ListRolesResponse>, Status> {
        let token = bearer(&request)?;
        // Authenticates the caller; the catalog is the same for every tenant today.
        self.call(token, |_, _| Ok(())).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: CATALOG
                .iter()
                .map(|r| pb::Role {
                    name: r.name.to_owned(),
                    description: r.description.to_owned(),
                    permissions: r.permissions.iter().map(|p| (*p).to_owned()).collect(),
                    is_default: r.name == DEFAULT_ROLE,
                    built_in: true,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "SetGroupRole")]
    async fn set_group_role(
        &self,
        request: Request<pb::SetGroupRoleRequest>,
    ) -> Result<Response<pb::GroupRole>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        let mapping = self
            .call_write(token, move |db, p| {
                p.require_admin()?;
                db.write(|c| roles::set(c, &p.tenant_id, &req.group_id, &req.role, req.priority))
            })
            .await?;
        Ok(Response::new(group_role(mapping)))
    }

    #[tracing::instrument(skip_all, name = "ListGroupRoles")]
    async fn list_group_roles(
        &self,
        request: Request<pb::ListGroupRolesRequest>,
    ) -> Result<Response<pb::ListGroupRolesResponse>, Status> {
        let token = bearer(&request)?;
        let all = self
            .call(token, move |db, p| roles::list(db.conn, &p.tenant_id))
            .await?;
        Ok(Response::new(pb::ListGroupRolesResponse {
            group_roles: all.into_iter().map(group_role).collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "RemoveGroupRole")]
    async fn remove_group_role(
        &self,
        request: Request<pb::RemoveGroupRoleRequest>,
    ) -> Result<Response<()>, Status> {
        let token = bearer(&request)?;
        let req = request.into_inner();
        self.call_write(token, move |db, p| {
            p.require_admin()?;
            db.write(|c| roles::remove(c, &p.tenant_id, &req.group_id))
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn create_role(
        &self,
        _request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        Err(Status::unimplemented("CreateRole"))
    }

    async fn update_role(
        &self,
        _request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        Err(Status::unimplemented("UpdateRole"))
    }

    async fn delete_role(
        &self,
        _request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<()>, Status> {
        Err(Status::unimplemented("DeleteRole"))
    }

    async fn set_default_role(
        &self,
        _request: Request<pb::SetDefaultRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        Err(Status::unimplemented("SetDefaultRole"))
    }
}
