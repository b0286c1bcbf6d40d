//! Roles: the catalog, where a user's role comes from, and what each role may do.
//!
//! A user's role is, in this order: its own role attribute; else the role of the mapped group
//! with the lowest priority number among its groups (ties: the lowest group id); else the
//! tenant's default (`reporting`).

use super::{DomainError, ScimType};

/// The roles every tenant starts with, most powerful first.
pub const DEFAULT_ROLES: [&str; 4] = ["admin", "developer", "templates", "reporting"];

/// The role of a user that has none.
pub const DEFAULT_ROLE: &str = "reporting";

/// Grants every permission.
pub const ALL_PERMISSIONS: &str = "*";

/// A role of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleDef {
    pub name: &'static str,
    pub description: &'static str,
    /// Permission names; `x.manage` implies `x.view`.
    pub permissions: &'static [&'static str],
}

/// The default catalog (SparkPost's model).
pub const CATALOG: [RoleDef; 4] = [
    RoleDef {
        name: "admin",
        description: "Everything, including users, security, billing and tokens",
        permissions: &[ALL_PERMISSIONS],
    },
    RoleDef {
        name: "developer",
        description: "API keys and email settings",
        permissions: &["api_keys.manage", "email_settings.manage"],
    },
    RoleDef {
        name: "templates",
        description: "Templates, A/B tests, recipient lists and suppressions; views domains, subaccounts, IP pools and reporting",
        permissions: &[
            "templates.manage",
            "ab_tests.manage",
            "recipient_lists.manage",
            "suppressions.manage",
            "domains.view",
            "subaccounts.view",
            "ip_pools.view",
            "reporting.view",
        ],
    },
    RoleDef {
        name: "reporting",
        description: "Reporting; views domains, subaccounts and IP pools",
        permissions: &[
            "reporting.view",
            "domains.view",
            "subaccounts.view",
            "ip_pools.view",
        ],
    },
];

/// A role of a tenant's catalog: one of [`CATALOG`], or one the tenant added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub description: String,
    /// Permission names; `x.manage` implies `x.view`; `*` grants everything.
    pub permissions: Vec<String>,
    pub built_in: bool,
}

impl Role {
    /// Whether this role grants `permission`.
    pub fn grants(&self, permission: &str) -> bool {
        let manage = permission
            .strip_suffix(".view")
            .map(|object| format!("{object}.manage"));
        self.permissions
            .iter()
            .any(|p| p == ALL_PERMISSIONS || p == permission || manage.as_deref() == Some(p))
    }
}

impl From<&RoleDef> for Role {
    fn from(def: &RoleDef) -> Role {
        Role {
            name: def.name.to_owned(),
            description: def.description.to_owned(),
            permissions: def.permissions.iter().map(|p| (*p).to_owned()).collect(),
            built_in: true,
        }
    }
}

/// The built-in role called `name`, if there is one.
pub fn built_in(name: &str) -> Option<Role> {
    CATALOG.iter().find(|r| r.name == name).map(Role::from)
}

/// Whether `role` is a built-in role granting `permission`.
pub fn grants(role: &str, permission: &str) -> bool {
    built_in(role).is_some_and(|r| r.grants(permission))
}

/// The role that makes a user an admin (and the user's admin tokens work as such).
pub const ADMIN_ROLE: &str = "admin";

const MAX_ROLE_NAME: usize = 64;
const MAX_PERMISSION: usize = 128;
const MAX_PERMISSIONS: usize = 100;

/// Checks a new role: its name (lower-case letters, digits, `-`, `_`; not a built-in one)
/// and its permission names.
pub fn validate_new_role(role: &Role) -> Result<(), DomainError> {
    let name_ok = (1..=MAX_ROLE_NAME).contains(&role.name.len())
        && role.name.starts_with(|c: char| c.is_ascii_lowercase())
        && role
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !name_ok {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!(
                "a role name is 1 to {MAX_ROLE_NAME} lower-case letters, digits, `-` and `_`, starting with a letter; not {:?}",
                role.name
            ),
        ));
    }
    validate_permissions(&role.permissions)?;
    if role.description.len() > 1024 {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            "a role description is at most 1024 bytes",
        ));
    }
    Ok(())
}

/// Permission names: `*`, or `object.action` made of lower-case letters, digits and `_`.
pub fn validate_permissions(permissions: &[String]) -> Result<(), DomainError> {
    if permissions.len() > MAX_PERMISSIONS {
        return Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!("a role has at most {MAX_PERMISSIONS} permissions"),
        ));
    }
    for p in permissions {
        let ok = p == ALL_PERMISSIONS
            || (p.len() <= MAX_PERMISSION
                && p.split('.').count() >= 2
                && p.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                }));
        if !ok {
            return Err(DomainError::invalid(
                ScimType::InvalidValue,
                format!(
                    "invalid permission {p:?}: use `*` or names such as `templates.manage`, `reporting.view`"
                ),
            ));
        }
    }
    Ok(())
}

/// Where a user's role comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSource {
    Attribute,
    Group,
    Default,
}

/// The role in force for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveRole {
    pub role: String,
    pub source: RoleSource,
    /// With [`RoleSource::Group`], the group that decided.
    pub group_id: Option<String>,
}

/// A group's role mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedRole {
    pub role: String,
    pub priority: i64,
}

/// Resolves a user's role from its own attribute, its groups' mappings (`(group id,
/// mapping)`), and the tenant's default.
pub fn effective_role<'a>(
    assigned: Option<&str>,
    groups: impl IntoIterator<Item = (&'a str, &'a MappedRole)>,
    default: &str,
) -> EffectiveRole {
    if let Some(role) = assigned {
        return EffectiveRole {
            role: role.to_owned(),
            source: RoleSource::Attribute,
            group_id: None,
        };
    }
    let best = groups
        .into_iter()
        .min_by(|(ga, a), (gb, b)| a.priority.cmp(&b.priority).then_with(|| ga.cmp(gb)));
    match best {
        Some((group_id, mapped)) => EffectiveRole {
            role: mapped.role.clone(),
            source: RoleSource::Group,
            group_id: Some(group_id.to_owned()),
        },
        None => EffectiveRole {
            role: default.to_owned(),
            source: RoleSource::Default,
            group_id: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(role: &str, priority: i64) -> MappedRole {
        MappedRole {
            role: role.into(),
            priority,
        }
    }

    #[test]
    fn the_lowest_priority_number_wins_and_the_attribute_wins_over_groups() {
        let admin = mapped("admin", 1);
        let reporting = mapped("reporting", 3);
        let groups = [("g-rep", &reporting), ("g-adm", &admin)];
        let e = effective_role(None, groups, DEFAULT_ROLE);
        assert_eq!(e.role, "admin");
        assert_eq!(e.source, RoleSource::Group);
        assert_eq!(e.group_id.as_deref(), Some("g-adm"));
        let e = effective_role(Some("developer"), groups, DEFAULT_ROLE);
        assert_eq!(
            (e.role.as_str(), e.source),
            ("developer", RoleSource::Attribute)
        );
        let e = effective_role(None, [], DEFAULT_ROLE);
        assert_eq!(
            (e.role.as_str(), e.source),
            ("reporting", RoleSource::Default)
        );
    }

    #[test]
    fn equal_priorities_break_ties_by_group_id() {
        let a = mapped("templates", 2);
        let b = mapped("developer", 2);
        let e = effective_role(None, [("g-b", &b), ("g-a", &a)], DEFAULT_ROLE);
        assert_eq!(e.role, "templates");
    }

    #[test]
    fn permissions_follow_the_catalog() {
        assert!(grants("admin", "billing.manage"));
        assert!(grants("developer", "api_keys.manage"));
        assert!(!grants("developer", "templates.manage"));
        assert!(grants("templates", "templates.view"), "manage implies view");
        assert!(grants("templates", "domains.view"));
        assert!(!grants("templates", "domains.manage"));
        assert!(grants("reporting", "reporting.view"));
        assert!(!grants("reporting", "users.manage"));
        assert!(!grants("nobody", "reporting.view"));
    }
}
