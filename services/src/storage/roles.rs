//! Group → role mappings. A user's effective role is resolved when the user is read (its
//! groups come with their mappings in the same query), so a change of membership, mapping or
//! priority takes effect at once, without rewriting any user.

use diesel::prelude::*;

use super::on_backend;
use super::schema::{group_roles, groups};
use super::{DbConnection, TxError, first};
use crate::domain::{DomainError, validate_role};

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
    validate_role(role)?;
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
