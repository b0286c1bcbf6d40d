//! The tenant's role catalog (the built-in roles and its own), and group → role mappings. A user's effective role is resolved when the user is read (its
//! groups come with their mappings in the same query), so a change of membership, mapping or
//! priority takes effect at once, without rewriting any user.

use diesel::prelude::*;

use super::on_backend;
use super::schema::{group_roles, groups, roles, tenants, users};
use super::{DbConnection, TxError, first, now};
use crate::domain::{
    CATALOG, DomainError, Role, ScimType, built_in, validate_new_role, validate_permissions,
};

/// The tenant's catalog: the built-in roles, then its own by name.
pub fn catalog(conn: &mut DbConnection, tenant_id: &str) -> Result<Vec<Role>, DomainError> {
    let own: Vec<(String, String, String)> = roles::table
        .filter(roles::tenant_id.eq(tenant_id))
        .select((roles::name, roles::description, roles::permissions))
        .order(roles::name.asc())
        .load(conn)?;
    Ok(CATALOG
        .iter()
        .map(Role::from)
        .chain(
            own.into_iter()
                .map(|(name, description, permissions)| Role {
                    name,
                    description,
                    permissions: permissions.split_whitespace().map(str::to_owned).collect(),
                    built_in: false,
                }),
        )
        .collect())
}

/// The role called `name` in the tenant's catalog.
pub fn find(
    conn: &mut DbConnection,
    tenant_id: &str,
    name: &str,
) -> Result<Option<Role>, DomainError> {
    if let Some(role) = built_in(name) {
        return Ok(Some(role));
    }
    let row: Option<(String, String)> = on_backend!(conn, |c| roles::table
        .filter(roles::tenant_id.eq(tenant_id))
        .filter(roles::name.eq(name))
        .select((roles::description, roles::permissions))
        .load(c))
    .map(first)?;
    Ok(row.map(|(description, permissions)| Role {
        name: name.to_owned(),
        description,
        permissions: permissions.split_whitespace().map(str::to_owned).collect(),
        built_in: false,
    }))
}

/// Accepts a role of the tenant's catalog, or answers `invalidValue` naming the allowed ones.
/// A built-in role costs no query.
pub fn require(conn: &mut DbConnection, tenant_id: &str, name: &str) -> Result<Role, DomainError> {
    if let Some(role) = find(conn, tenant_id, name)? {
        return Ok(role);
    }
    let allowed: Vec<String> = catalog(conn, tenant_id)?
        .into_iter()
        .map(|r| r.name)
        .collect();
    Err(DomainError::invalid(
        ScimType::InvalidValue,
        format!(
            "unknown role {name:?}; allowed roles: {}",
            allowed.join(", ")
        ),
    ))
}

/// Adds a role to the tenant's catalog; `uniqueness` if the name is taken.
pub fn create_role(conn: &mut DbConnection, tenant_id: &str, role: &Role) -> Result<Role, TxError> {
    validate_new_role(role)?;
    if find(conn, tenant_id, &role.name)?.is_some() {
        return Err(DomainError::Conflict {
            attribute: "name",
            detail: format!("the role {:?} already exists", role.name),
        }
        .into());
    }
    diesel::insert_into(roles::table)
        .values((
            roles::tenant_id.eq(tenant_id),
            roles::name.eq(&role.name),
            roles::description.eq(&role.description),
            roles::permissions.eq(role.permissions.join(" ")),
            roles::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(Role {
        built_in: false,
        ..role.clone()
    })
}

/// A tenant role by name, refusing the built-in ones (which cannot change).
fn own_role(conn: &mut DbConnection, tenant_id: &str, name: &str) -> Result<Role, TxError> {
    match find(conn, tenant_id, name)? {
        Some(r) if r.built_in => Err(DomainError::FailedPrecondition(format!(
            "{name:?} is a built-in role: it cannot be changed or removed"
        ))
        .into()),
        Some(r) => Ok(r),
        None => Err(DomainError::not_found("role", name).into()),
    }
}

/// Replaces a tenant role's description and permissions.
pub fn update_role(conn: &mut DbConnection, tenant_id: &str, role: &Role) -> Result<Role, TxError> {
    own_role(conn, tenant_id, &role.name)?;
    validate_permissions(&role.permissions)?;
    diesel::update(
        roles::table
            .filter(roles::tenant_id.eq(tenant_id))
            .filter(roles::name.eq(&role.name)),
    )
    .set((
        roles::description.eq(&role.description),
        roles::permissions.eq(role.permissions.join(" ")),
    ))
    .execute(conn)?;
    Ok(Role {
        built_in: false,
        ..role.clone()
    })
}

/// Removes a tenant role that nothing uses: no user's own role, no group mapping, not the
/// default.
pub fn delete_role(conn: &mut DbConnection, tenant_id: &str, name: &str) -> Result<(), TxError> {
    own_role(conn, tenant_id, name)?;
    let holders: i64 = users::table
        .filter(users::tenant_id.eq(tenant_id))
        .filter(users::role.eq(name))
        .count()
        .get_result(conn)?;
    let mappings: i64 = group_roles::table
        .filter(group_roles::tenant_id.eq(tenant_id))
        .filter(group_roles::role.eq(name))
        .count()
        .get_result(conn)?;
    let default: String = tenants::table
        .filter(tenants::id.eq(tenant_id))
        .select(tenants::default_role)
        .first(conn)?;
    if holders > 0 || mappings > 0 || default == name {
        return Err(DomainError::FailedPrecondition(format!(
            "the role {name:?} is in use ({holders} users, {mappings} group mappings{}); reassign them first",
            if default == name { ", the default role" } else { "" }
        ))
        .into());
    }
    diesel::delete(
        roles::table
            .filter(roles::tenant_id.eq(tenant_id))
            .filter(roles::name.eq(name)),
    )
    .execute(conn)?;
    Ok(())
}

/// Makes `name` the role of users with no role of their own and no mapped group.
pub fn set_default(conn: &mut DbConnection, tenant_id: &str, name: &str) -> Result<Role, TxError> {
    let role = require(conn, tenant_id, name)?;
    diesel::update(tenants::table.filter(tenants::id.eq(tenant_id)))
        .set(tenants::default_role.eq(name))
        .execute(conn)?;
    Ok(role)
}

/// A mapping, with its group's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRole {
    pub group_id: String,
    pub group_display_name: String,
    pub role: String,
    pub priority: i64,
}

/// Maps a group to a role (replacing its mapping, if any).
pub fn set(
    conn: &mut DbConnection,
    tenant_id: &str,
    group_id: &str,
    role: &str,
    priority: i64,
) -> Result<GroupRole, TxError> {
    require(conn, tenant_id, role)?;
    let name: Option<String> = on_backend!(conn, |c| groups::table
        .filter(groups::tenant_id.eq(tenant_id))
        .filter(groups::id.eq(group_id))
        .select(groups::display_name)
        .load(c))
    .map(first)?;
    let Some(group_display_name) = name else {
        return Err(DomainError::not_found("group", group_id).into());
    };
    let key = group_roles::table
        .filter(group_roles::tenant_id.eq(tenant_id))
        .filter(group_roles::group_id.eq(group_id));
    let updated = on_backend!(conn, |c| diesel::update(key)
        .set((
            group_roles::role.eq(role),
            group_roles::priority.eq(priority)
        ))
        .execute(c))?;
    if updated == 0 {
        on_backend!(conn, |c| diesel::insert_into(group_roles::table)
            .values((
                group_roles::tenant_id.eq(tenant_id),
                group_roles::group_id.eq(group_id),
                group_roles::role.eq(role),
                group_roles::priority.eq(priority),
            ))
            .execute(c))?;
    }
    Ok(GroupRole {
        group_id: group_id.to_owned(),
        group_display_name,
        role: role.to_owned(),
        priority,
    })
}

/// Every mapping of the tenant, by priority.
pub fn list(conn: &mut DbConnection, tenant_id: &str) -> Result<Vec<GroupRole>, DomainError> {
    let rows: Vec<(String, String, String, i64)> = group_roles::table
        .inner_join(
            groups::table.on(groups::tenant_id
                .eq(group_roles::tenant_id)
                .and(groups::id.eq(group_roles::group_id))),
        )
        .filter(group_roles::tenant_id.eq(tenant_id))
        .select((
            group_roles::group_id,
            groups::display_name,
            group_roles::role,
            group_roles::priority,
        ))
        .order((group_roles::priority, group_roles::group_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(group_id, group_display_name, role, priority)| GroupRole {
            group_id,
            group_display_name,
            role,
            priority,
        })
        .collect())
}

/// Removes a group's mapping; NOT_FOUND if it has none.
pub fn remove(conn: &mut DbConnection, tenant_id: &str, group_id: &str) -> Result<(), TxError> {
    let n = diesel::delete(
        group_roles::table
            .filter(group_roles::tenant_id.eq(tenant_id))
            .filter(group_roles::group_id.eq(group_id)),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(DomainError::not_found("group role mapping", group_id).into());
    }
    Ok(())
}
