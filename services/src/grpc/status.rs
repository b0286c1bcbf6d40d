//! The one mapping of domain errors to gRPC statuses, with `google.rpc.ErrorInfo` details.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::DomainError;

/// The `ErrorInfo.domain` of every Roster error.
pub const ERROR_DOMAIN: &str = "roster.dev";

/// How long a caller is asked to wait before trying a timed-out request again
/// (`google.rpc.RetryInfo`, the SCIM facade's `Retry-After`): about one default statement
/// timeout, so that the retry does not land on the load that made it time out.
pub const TIMEOUT_RETRY_AFTER: Duration = Duration::from_secs(5);

fn with_reason(code: Code, message: String, reason: &str) -> Status {
    let details = ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Status {
        match e {
            DomainError::NotFound { resource, id } => with_reason(
                Code::NotFound,
                format!("{resource} {id:?} not found"),
                "NOT_FOUND",
            ),
            DomainError::Conflict { detail, .. } => {
                with_reason(Code::AlreadyExists, detail, "uniqueness")
            }
            DomainError::Invalid { scim_type, detail } => {
                with_reason(Code::InvalidArgument, detail, scim_type.as_str())
            }
            e @ DomainError::PreconditionFailed { .. } => {
                with_reason(Code::Aborted, e.to_string(), "ETAG_MISMATCH")
            }
            DomainError::Unauthenticated => with_reason(
                Code::Unauthenticated,
                "missing or unknown bearer token".to_owned(),
                "UNAUTHENTICATED",
            ),
            DomainError::PermissionDenied(detail) => {
                with_reason(Code::PermissionDenied, detail, "PERMISSION_DENIED")
            }
            DomainError::FailedPrecondition(detail) => {
                with_reason(Code::FailedPrecondition, detail, "FAILED_PRECONDITION")
            }
            // 503 + Retry-After in SCIM, not 400: a filter the cost model let through is the
            // client's business only if it always fails, and a timeout says the database is
            // busy or the tenant large, which a later retry may well get past. A filter that
            // is too costly on its face is refused earlier, with 400 invalidFilter.
            e @ DomainError::Timeout => {
                let mut details = ErrorDetails::with_error_info(
                    "STATEMENT_TIMEOUT",
                    ERROR_DOMAIN,
                    HashMap::new(),
                );
                details.set_retry_info(Some(TIMEOUT_RETRY_AFTER));
                Status::with_error_details(
                    Code::Unavailable,
                    format!("{e}; retry later, or narrow the filter"),
                    details,
                )
            }
            DomainError::Internal(source) => {
                tracing::error!(error = %source, "internal error");
                with_reason(Code::Internal, "internal error".to_owned(), "INTERNAL")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ScimType;

    fn reason(s: &Status) -> Option<String> {
        s.get_error_details().error_info().map(|i| i.reason.clone())
    }

    #[test]
    fn every_domain_error_has_its_code_and_reason() {
        let cases: Vec<(DomainError, Code, &str)> = vec![
            (
                DomainError::not_found("user", "u1"),
                Code::NotFound,
                "NOT_FOUND",
            ),
            (
                DomainError::Conflict {
                    attribute: "userName",
                    detail: "taken".into(),
                },
                Code::AlreadyExists,
                "uniqueness",
            ),
            (
                DomainError::invalid(ScimType::InvalidFilter, "bad"),
                Code::InvalidArgument,
                "invalidFilter",
            ),
            (
                DomainError::PreconditionFailed {
                    expected: "1".into(),
                },
                Code::Aborted,
                "ETAG_MISMATCH",
            ),
            (
                DomainError::Unauthenticated,
                Code::Unauthenticated,
                "UNAUTHENTICATED",
            ),
            (
                DomainError::PermissionDenied("no".into()),
                Code::PermissionDenied,
                "PERMISSION_DENIED",
            ),
            (DomainError::Timeout, Code::Unavailable, "STATEMENT_TIMEOUT"),
            (
                DomainError::internal("disk on fire"),
                Code::Internal,
                "INTERNAL",
            ),
        ];
        for (err, code, want) in cases {
            let status = Status::from(err);
            assert_eq!(status.code(), code);
            assert_eq!(reason(&status).as_deref(), Some(want));
        }
    }

    #[test]
    fn a_timeout_asks_to_retry_later() {
        let status = Status::from(DomainError::Timeout);
        let retry = status.get_error_details().retry_info().cloned();
        assert_eq!(retry.and_then(|r| r.retry_delay), Some(TIMEOUT_RETRY_AFTER));
        assert!(status.message().contains("statement timeout"), "{status:?}");
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let status = Status::from(DomainError::internal("password=hunter2"));
        assert_eq!(status.message(), "internal error");
    }
}
