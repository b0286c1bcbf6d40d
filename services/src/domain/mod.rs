//! Roster's domain: users, groups, tenants, tokens, roles and the rules that bind them.
//! Free of transport (tonic) and storage (diesel).

mod error;
mod listing;
pub mod policy;
mod principal;
mod role;
mod user;

pub use error::{DomainError, ScimType};
pub use listing::{
    GROUP_SORTS, Page, PageRequest, Position, Sort, SortAttr, SortValue, USER_SORTS,
};
pub use policy::{Caller, Guard, Rpc, Rule, Tenancy};
pub use principal::{PasswordPolicy, Principal, TokenKind};
pub use role::{
    ADMIN_ROLE, CATALOG, DEFAULT_ROLE, DEFAULT_ROLES, EffectiveRole, MappedRole, Role, RoleDef,
    RoleSource, built_in, effective_role, grants, validate_new_role, validate_permissions,
};
pub use user::{Email, GroupRef, PersonName, User, UserField, UserInput};

use time::OffsetDateTime;

/// A tenant: the unit of isolation. Every user, group and token belongs to exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub password_policy: PasswordPolicy,
    pub default_role: String,
    pub scim_enabled: bool,
    pub created: OffsetDateTime,
}

/// Tenant names: 1 to 63 lower-case ASCII letters, digits and `-`, starting with a letter.
pub fn validate_tenant_name(name: &str) -> Result<(), DomainError> {
    let ok = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!(
                "tenant name {name:?} must be 1-63 lower-case letters, digits or '-', starting with a letter"
            ),
        ))
    }
}

/// A group and, when asked for, its members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub external_id: Option<String>,
    /// `None` when the members were not loaded (the basic view).
    pub members: Option<Vec<Member>>,
    pub member_count: i64,
    pub version: i64,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
}

/// One member of a group: a user of the same tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    pub display: String,
}

/// A change to a group's membership; applied in order inside one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberOp {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<String>),
}

/// Changes to a group's own attributes (`None`: leave as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupChanges {
    pub display_name: Option<String>,
    /// `Some(None)` clears the external id.
    pub external_id: Option<Option<String>>,
}

/// Longest accepted value of a single string attribute.
pub const MAX_STRING_LEN: usize = 4096;

/// Validates a group's display name.
pub fn validate_display_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            "displayName is required",
        ));
    }
    if name.len() > MAX_STRING_LEN {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            "displayName is too long",
        ));
    }
    Ok(())
}

/// A token as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub tenant_name: String,
    pub kind: TokenKind,
    pub prefix: String,
    pub description: String,
    pub created: OffsetDateTime,
    /// The id of the token that created it (empty: the CLI or the bootstrap).
    pub created_by: String,
    /// When it stops (or stopped) working.
    pub expires: Option<OffsetDateTime>,
    /// When it was revoked or replaced.
    pub revoked_at: Option<OffsetDateTime>,
    /// Whether it no longer works.
    pub revoked: bool,
    /// A service token that may only read.
    pub read_only: bool,
    /// An admin token: the user it acts for.
    pub user_id: Option<String>,
    /// HTTP Basic credentials: the user name (the secret is the password).
    pub basic_username: Option<String>,
    /// When it was last used, to the minute.
    pub last_used: Option<OffsetDateTime>,
}

/// Longest grace period of a regenerated token's old secret.
pub const MAX_TOKEN_GRACE_SECONDS: i64 = 30 * 24 * 3600;

/// Longest lifetime of a new token (`ttl_seconds`): 3650 days.
pub const MAX_TOKEN_TTL_SECONDS: i64 = 3650 * 24 * 3600;
