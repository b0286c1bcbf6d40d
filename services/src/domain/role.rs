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

/// Accepts a role name from the catalog, or answers `invalidValue` naming the allowed ones.
pub fn validate_role(role: &str) -> Result<(), DomainError> {
    if DEFAULT_ROLES.contains(&role) {
        Ok(())
    } else {
        Err(DomainError::invalid(
            ScimType::InvalidValue,
            format!(
                "unknown role {role:?}; allowed roles: {}",
                DEFAULT_ROLES.join(", ")
            ),
        ))
    }
}

/// Whether `role` grants `permission`.
pub fn grants(role: &str, permission: &str) -> bool {
    let Some(def) = CATALOG.iter().find(|r| r.name == role) else {
        return false;
    };
    let manage = permission
        .strip_suffix(".view")
        .map(|object| format!("{object}.manage"));
    def.permissions
        .iter()
        .any(|p| *p == ALL_PERMISSIONS || *p == permission || manage.as_deref() == Some(*p))
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
