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

pub use roster_proto::limits;
use roster_proto::limits::Resource;

/// Checks one string of a User or Group against the shared [`limits`]: its length and its
/// control characters. `path` names the attribute in the error.
pub fn check_text(resource: Resource, path: &str, value: &str) -> Result<(), DomainError> {
    match limits::check(resource, path, value) {
        Some(why) => Err(DomainError::invalid(ScimType::InvalidValue, why)),
        None => Ok(()),
    }
}

/// [`check_text`] of an optional value.
pub fn check_opt_text(
    resource: Resource,
    path: &str,
    value: Option<&str>,
) -> Result<(), DomainError> {
    value.map_or(Ok(()), |v| check_text(resource, path, v))
}

/// Validates a group's display name.
pub fn validate_display_name(name: &str) -> Result<(), DomainError> {
    if name.trim().is_empty() {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            "displayName is required",
        ));
    }
    check_text(Resource::Group, "displayName", name)
}

/// Validates a group's external id.
pub fn validate_group_external_id(external_id: Option<&str>) -> Result<(), DomainError> {
    check_opt_text(Resource::Group, "externalId", external_id)
}

/// The key under which a name is unique and looked up: a User's `userName`, a Group's
/// `displayName`, an e-mail address. Two names are the same name when they are equal after
/// trimming white space at both ends, Unicode canonical normalisation (NFC: "é" written as one
/// code point or as "e" and a combining accent) and lower-casing. The name itself is kept as
/// written.
pub fn name_key(name: &str) -> String {
    folded(name.trim())
}

/// `value` normalised (NFC) and lower-cased, not trimmed: what the stored keys of
/// [`name_key`] are compared with by `sw`, `co`, `ew` and ordering filters.
pub fn folded(value: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    if value.is_ascii() {
        return value.to_ascii_lowercase();
    }
    // Lower-cased in decomposed form, then composed: canonically equivalent names get one key.
    let lower = value.nfd().collect::<String>().to_lowercase();
    lower.nfc().collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_same_after_trimming_normalising_and_lower_casing() {
        let nfc = "Jos\u{e9}";
        let nfd = "Jose\u{301}";
        assert_ne!(nfc, nfd);
        assert_eq!(name_key(nfc), name_key(nfd));
        assert_eq!(name_key(nfc), "jos\u{e9}");
        assert_eq!(name_key("ada "), name_key("ada"));
        assert_eq!(name_key("\u{a0}ADA\t"), "ada");
        assert_eq!(name_key("\u{c9}MILE"), name_key("e\u{301}mile"));
        assert_ne!(name_key("ada"), name_key("a da"));
        // Patterns are not trimmed.
        assert_eq!(folded("Ada "), "ada ");
        assert_eq!(folded("JOSE\u{301}"), "jos\u{e9}");
    }

    #[test]
    fn group_values_follow_the_shared_limits() {
        assert!(validate_display_name("Team").is_ok());
        assert!(validate_display_name(" ").is_err());
        assert!(validate_display_name("a\0").is_err());
        assert!(validate_display_name(&"x".repeat(257)).is_err());
        assert!(validate_display_name(&"x".repeat(256)).is_ok());
        assert!(validate_group_external_id(Some(&"x".repeat(1025))).is_err());
        assert!(validate_group_external_id(Some("a\nb")).is_err());
        assert!(validate_group_external_id(Some(&"x".repeat(1024))).is_ok());
        assert!(validate_group_external_id(None).is_ok());
    }
}
