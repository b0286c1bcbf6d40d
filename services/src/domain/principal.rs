//! Who is calling: the tenant and the kind of token. What each kind may do is the policy's
//! (`domain::policy`).

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
    /// An internal service: users, groups and access checks of one tenant, maybe read-only.
    Service,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Scim => "scim",
            TokenKind::Admin => "admin",
            TokenKind::Operator => "operator",
            TokenKind::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scim" => Some(TokenKind::Scim),
            "admin" => Some(TokenKind::Admin),
            "operator" => Some(TokenKind::Operator),
            "service" => Some(TokenKind::Service),
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
    /// The role of users with no role of their own and no mapped group.
    pub default_role: String,
    pub token_id: String,
    pub kind: TokenKind,
    /// Whether the tenant accepts SCIM tokens.
    pub scim_enabled: bool,
    /// A service token that may only read.
    pub read_only: bool,
    /// An admin token: the user it acts for.
    pub user_id: Option<String>,
    /// An admin token: whether its user is, when the token was checked, an active user whose
    /// effective role is admin. An admin token whose user is not grants nothing.
    pub admin_granted: bool,
    /// When the token stops working, if it does.
    pub expires: Option<time::OffsetDateTime>,
}

impl Principal {
    /// Whether the token may use the API at all: refuses a SCIM token of a tenant whose SCIM
    /// provisioning is turned off, and an admin token whose user is no longer an admin.
    pub fn require_enabled(&self) -> Result<(), DomainError> {
        match self.kind {
            TokenKind::Scim if !self.scim_enabled => Err(DomainError::PermissionDenied(
                "SCIM provisioning is turned off for this tenant".into(),
            )),
            TokenKind::Admin if !self.admin_granted => Err(DomainError::PermissionDenied(
                "this admin token's user is not an active admin".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the token administers tokens and roles: the operator, or an admin token whose
    /// user is an active admin.
    pub fn is_admin(&self) -> bool {
        match self.kind {
            TokenKind::Operator => true,
            TokenKind::Admin => self.admin_granted,
            TokenKind::Scim | TokenKind::Service => false,
        }
    }
}
