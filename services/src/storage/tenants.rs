//! Tenants.

use diesel::prelude::*;

use super::schema::tenants;
use super::{DbConnection, TxError, first, new_id, now, unique_violation, utc};
use crate::domain::{DEFAULT_ROLE, DomainError, PasswordPolicy, Tenant, validate_tenant_name};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub(crate) struct TenantRow {
    pub id: String,
    pub name: String,
    pub password_policy: String,
    pub default_role: String,
    pub scim_enabled: bool,
    pub created_at: time::PrimitiveDateTime,
}

impl TenantRow {
    pub(crate) fn into_domain(self) -> Tenant {
        Tenant {
            id: self.id,
            name: self.name,
            password_policy: PasswordPolicy::parse(&self.password_policy).unwrap_or_default(),
            default_role: self.default_role,
            scim_enabled: self.scim_enabled,
            created: utc(self.created_at),
        }
    }
}

/// Creates a tenant; `uniqueness` if the name is taken.
pub fn create(
    conn: &mut DbConnection,
    name: &str,
    policy: PasswordPolicy,
) -> Result<Tenant, TxError> {
    validate_tenant_name(name)?;
    let row = TenantRow {
        id: new_id(),
        name: name.to_owned(),
        password_policy: policy.as_str().to_owned(),
        default_role: DEFAULT_ROLE.to_owned(),
        scim_enabled: true,
        created_at: now(),
    };
    diesel::insert_into(tenants::table)
        .values(&row)
        .execute(conn)
        .map_err(|e| unique_violation(e, "name", name))?;
    Ok(row.into_domain())
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Tenant>, DomainError> {
    let rows: Vec<TenantRow> = tenants::table
        .select(TenantRow::as_select())
        .order(tenants::name.asc())
        .load(conn)?;
    Ok(rows.into_iter().map(TenantRow::into_domain).collect())
}

pub fn find_by_name(conn: &mut DbConnection, name: &str) -> Result<Tenant, DomainError> {
    tenants::table
        .filter(tenants::name.eq(name))
        .select(TenantRow::as_select())
        .load(conn)
        .map(first)?
        .map(TenantRow::into_domain)
        .ok_or_else(|| DomainError::not_found("tenant", name))
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Tenant, DomainError> {
    tenants::table
        .filter(tenants::id.eq(id))
        .select(TenantRow::as_select())
        .load(conn)
        .map(first)?
        .map(TenantRow::into_domain)
        .ok_or_else(|| DomainError::not_found("tenant", id))
}

pub fn count(conn: &mut DbConnection) -> Result<i64, DomainError> {
    Ok(tenants::table.count().get_result(conn)?)
}

/// Changes to a tenant (`None`: leave as it is).
#[derive(Debug, Clone, Default)]
pub struct TenantChanges {
    pub name: Option<String>,
    pub scim_enabled: Option<bool>,
    pub password_policy: Option<PasswordPolicy>,
}

pub fn update(
    conn: &mut DbConnection,
    id: &str,
    changes: &TenantChanges,
) -> Result<Tenant, TxError> {
    let row: Option<TenantRow> = tenants::table
        .filter(tenants::id.eq(id))
        .select(TenantRow::as_select())
        .load(conn)
        .map(first)?;
    let Some(mut row) = row else {
        return Err(DomainError::not_found("tenant", id).into());
    };
    if let Some(name) = &changes.name {
        validate_tenant_name(name)?;
        row.name.clone_from(name);
    }
    if let Some(enabled) = changes.scim_enabled {
        row.scim_enabled = enabled;
    }
    if let Some(policy) = changes.password_policy {
        row.password_policy = policy.as_str().to_owned();
    }
    diesel::update(tenants::table.filter(tenants::id.eq(id)))
        .set((
            tenants::name.eq(&row.name),
            tenants::scim_enabled.eq(row.scim_enabled),
            tenants::password_policy.eq(&row.password_policy),
        ))
        .execute(conn)
        .map_err(|e| unique_violation(e, "name", &row.name))?;
    Ok(row.into_domain())
}
