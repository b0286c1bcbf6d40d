//! The role catalog. Every tenant starts with the default set; a user with no role has the
//! tenant's default role (`reporting`).

use super::{DomainError, ScimType};

/// The roles every tenant starts with, most powerful first.
pub const DEFAULT_ROLES: [&str; 4] = ["admin", "developer", "templates", "reporting"];

/// The role of a user that has none.
pub const DEFAULT_ROLE: &str = "reporting";

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
