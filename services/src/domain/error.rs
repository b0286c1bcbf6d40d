//! The one error type of the domain and storage layers, mapped once to gRPC in `grpc::status`.

/// The SCIM `scimType` of a 400/409 error (RFC 7644 §3.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    /// A page token (SCIM cursor) that is not one of ours, or not for this query (RFC 9865).
    InvalidCursor,
}

impl ScimType {
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidCursor => "invalidCursor",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    /// A uniqueness clash on `attribute`.
    #[error("{detail}")]
    Conflict {
        attribute: &'static str,
        detail: String,
    },
    /// Bad input: nothing was changed.
    #[error("{detail}")]
    Invalid { scim_type: ScimType, detail: String },
    /// The caller's etag no longer matches the resource's version.
    #[error("the resource changed since version {expected} was read")]
    PreconditionFailed { expected: String },
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    #[error("{0}")]
    PermissionDenied(String),
    /// The request is valid but the state forbids it (e.g. removing a role still in use).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The database did not finish the request's work within the statement timeout (the
    /// store's `statement_timeout`): nothing was changed, and the request may be tried again
    /// later.
    #[error("the database work of this request ran past the statement timeout")]
    Timeout,
    /// A failure of the store or of the machine: logged, never shown in detail.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    pub fn invalid(scim_type: ScimType, detail: impl Into<String>) -> Self {
        DomainError::Invalid {
            scim_type,
            detail: detail.into(),
        }
    }

    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        DomainError::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        DomainError::Internal(e.into())
    }
}
