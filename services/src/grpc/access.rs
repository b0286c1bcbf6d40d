//! `AccessService`: the role logic, for internal services and admins.

use roster_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Api, convert};
use crate::domain::{DomainError, Role, Rpc, ScimType};
use crate::storage::{roles, users};

fn group_role(g: roles::GroupRole) -> pb::GroupRole {
    pb::GroupRole {
        group_id: g.group_id,
        group_display_name: g.group_display_name,
        role: g.role,
        priority: g.priority,
    }
}

fn role_input(name: String, description: String, permissions: Vec<String>) -> Role {
    Role {
        name,
        description,
        permissions,
        built_in: false,
    }
}

#[tonic::async_trait]
impl pb::access_service_server::AccessService for Api {
    #[tracing::instrument(skip_all, name = "GetEffectiveRole")]
    async fn get_effective_role(
        &self,
        request: Request<pb::GetEffectiveRoleRequest>,
    ) -> Result<Response<pb::EffectiveRole>, Status> {
        let ticket = self.authorize(Rpc::GetEffectiveRole, &request).await?;
        let id = request.into_inner().user_id;
        let (user, default_role) = self
            .call(&ticket, move |db, p| {
                Ok((
                    users::get(db.conn, &p.tenant_id, &id)?,
                    p.default_role.clone(),
                ))
            })
            .await?;
        let effective = user.effective_role(&default_role);
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
        let ticket = self.authorize(Rpc::CheckPermission, &request).await?;
        let req = request.into_inner();
        if req.permission.trim().is_empty() {
            return Err(Status::from(DomainError::invalid(
                ScimType::InvalidValue,
                "permission is required",
            )));
        }
        let id = req.user_id;
        let (user, effective, role) = self
            .call(&ticket, move |db, p| {
                let user = users::get(db.conn, &p.tenant_id, &id)?;
                let effective = user.effective_role(&p.default_role);
                // A role removed from the catalog while still named somewhere grants nothing.
                let role = roles::find(db.conn, &p.tenant_id, &effective.role)?;
                Ok((user, effective, role))
            })
            .await?;
        let permission = &req.permission;
        let (allowed, reason) = if !user.attrs.active {
            (false, "the user is deactivated".to_owned())
        } else if role.is_some_and(|r| r.grants(permission)) {
            (true, format!("role {} grants {permission}", effective.role))
        } else {
            (
                false,
                format!("role {} does not grant {permission}", effective.role),
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
        let ticket = self.authorize(Rpc::ListRoles, &request).await?;
        let (catalog, default_role) = self
            .call(&ticket, |db, p| {
                Ok((
                    roles::catalog(db.conn, &p.tenant_id)?,
                    p.default_role.clone(),
                ))
            })
            .await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: catalog
                .into_iter()
                .map(|r| convert::role(r, &default_role))
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, name = "CreateRole")]
    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ticket = self.authorize(Rpc::CreateRole, &request).await?;
        let req = request.into_inner();
        let role = role_input(req.name, req.description, req.permissions);
        let (created, default_role) = self
            .call(&ticket, move |db, p| {
                let created = db.write(|c| roles::create_role(c, &p.tenant_id, &role))?;
                Ok((created, p.default_role.clone()))
            })
            .await?;
        Ok(Response::new(convert::role(created, &default_role)))
    }

    #[tracing::instrument(skip_all, name = "UpdateRole")]
    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ticket = self.authorize(Rpc::UpdateRole, &request).await?;
        let req = request.into_inner();
        let role = role_input(req.name, req.description, req.permissions);
        let (updated, default_role) = self
            .call(&ticket, move |db, p| {
                let updated = db.write(|c| roles::update_role(c, &p.tenant_id, &role))?;
                Ok((updated, p.default_role.clone()))
            })
            .await?;
        Ok(Response::new(convert::role(updated, &default_role)))
    }

    #[tracing::instrument(skip_all, name = "DeleteRole")]
    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Result<Response<()>, Status> {
        let ticket = self.authorize(Rpc::DeleteRole, &request).await?;
        let name = request.into_inner().name;
        self.call(&ticket, move |db, p| {
            db.write(|c| roles::delete_role(c, &p.tenant_id, &name))
        })
        .await?;
        Ok(Response::new(()))
    }

    #[tracing::instrument(skip_all, name = "SetDefaultRole")]
    async fn set_default_role(
        &self,
        request: Request<pb::SetDefaultRoleRequest>,
    ) -> Result<Response<pb::Role>, Status> {
        let ticket = self.authorize(Rpc::SetDefaultRole, &request).await?;
        let name = request.into_inner().role;
        let role = self
            .call(&ticket, move |db, p| {
                db.write(|c| roles::set_default(c, &p.tenant_id, &name))
            })
            .await?;
        // Callers carry their tenant's default: here at once, elsewhere within AUTH_CACHE_TTL.
        self.auth.clear();
        let name = role.name.clone();
        Ok(Response::new(convert::role(role, &name)))
    }

    #[tracing::instrument(skip_all, name = "SetGroupRole")]
    async fn set_group_role(
        &self,
        request: Request<pb::SetGroupRoleRequest>,
    ) -> Result<Response<pb::GroupRole>, Status> {
        let ticket = self.authorize(Rpc::SetGroupRole, &request).await?;
        let req = request.into_inner();
        let mapping = self
            .call(&ticket, move |db, p| {
                db.write(|c| roles::set(c, &p.tenant_id, &req.group_id, &req.role, req.priority))
            })
            .await?;
        self.auth.forget_admins(None);
        Ok(Response::new(group_role(mapping)))
    }

    #[tracing::instrument(skip_all, name = "ListGroupRoles")]
    async fn list_group_roles(
        &self,
        request: Request<pb::ListGroupRolesRequest>,
    ) -> Result<Response<pb::ListGroupRolesResponse>, Status> {
        let ticket = self.authorize(Rpc::ListGroupRoles, &request).await?;
        let all = self
            .call(&ticket, move |db, p| roles::list(db.conn, &p.tenant_id))
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
        let ticket = self.authorize(Rpc::RemoveGroupRole, &request).await?;
        let req = request.into_inner();
        self.call(&ticket, move |db, p| {
            db.write(|c| roles::remove(c, &p.tenant_id, &req.group_id))
        })
        .await?;
        self.auth.forget_admins(None);
        Ok(Response::new(()))
    }
}
