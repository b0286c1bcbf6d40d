//! Who is calling: the tenant and the kind of token, and what each kind may do.

use super::DomainError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Provisioning from an identity provider: users and groups of one tenant.
    Scim,
    /// Everything in one tenant, including its tokens.
    Admin,
    /// Everything in every tenant.
    Operator,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Scim => "scim",
            TokenKind::Admin => "admin",
            TokenKind::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scim" => Some(TokenKind::Scim),
            "admin" => Some(TokenKind::Admin),
            "operator" => Some(TokenKind::Operator),
            _ => None,
        }
    }
}

/// What happens to a SCIM `password` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PasswordPolicy {
    /// Accepted and dropped: the app signs people in through SSO.
    #[default]
    Ignore,
    /// Stored as an Argon2id hash only.
    Hash,
}

impl PasswordPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordPolicy::Ignore => "ignore",
            PasswordPolicy::Hash => "hash",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ignore" => Some(PasswordPolicy::Ignore),
            "hash" => Some(PasswordPolicy::Hash),
            _ => None,
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: String,
    pub tenant_name: String,
    pub password_policy: PasswordPolicy,
    pub token_id: String,
    pub kind: TokenKind,
    /// Whether the tenant accepts SCIM tokens.
    pub scim_enabled: bool,
    /// When the token stops working, if it does.
    pub expires: Option<time::OffsetDateTime>,
}

impl Principal {
    /// Refuses a SCIM token of a tenant whose SCIM provisioning is turned off.
    pub fn require_enabled(&self) -> Result<(), DomainError> {
        if self.kind == TokenKind::Scim && !self.scim_enabled {
            return Err(DomainError::PermissionDenied(
                "SCIM provisioning is turned off for this tenant".into(),
            ));
        }
        Ok(())
    }

    /// Token administration in the caller's tenant (or, for the operator, any tenant).
    pub fn require_admin(&self) -> Result<(), DomainError> {
        match self.kind {
            TokenKind::Admin | TokenKind::Operator => Ok(()),
            TokenKind::Scim => Err(DomainError::PermissionDenied(
                "only an admin token may manage tokens".into(),
            )),
        }
    }

    /// Tenant administration.
    pub fn require_operator(&self) -> Result<(), DomainError> {
        match self.kind {
            TokenKind::Operator => Ok(()),
            _ => Err(DomainError::PermissionDenied(
                "only the operator token may manage tenants".into(),
            )),
        }
    }
}
