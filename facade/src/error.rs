//! The one SCIM error type: every failure of the facade ends here, and the one mapping from a
//! gRPC `Status` (RFC 7644 §3.12).

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tonic::Code;
use tonic_types::StatusExt;

use crate::response::scim_json;

/// The SCIM `scimType` values of RFC 7644 §3.12 (Table 9), and those RFC 9865 adds for
/// cursor paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    InvalidCursor,
    InvalidCount,
}

impl ScimType {
    const ALL: [ScimType; 12] = [
        ScimType::InvalidFilter,
        ScimType::TooMany,
        ScimType::Uniqueness,
        ScimType::Mutability,
        ScimType::InvalidSyntax,
        ScimType::InvalidPath,
        ScimType::NoTarget,
        ScimType::InvalidValue,
        ScimType::InvalidVers,
        ScimType::Sensitive,
        ScimType::InvalidCursor,
        ScimType::InvalidCount,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
            ScimType::InvalidCount => "invalidCount",
        }
    }

    /// The scimType named by a `google.rpc.ErrorInfo.reason`, if it is one.
    pub(crate) fn from_reason(reason: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == reason)
    }
}

/// A SCIM error response: HTTP status, optional `scimType` and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {detail}")]
pub(crate) struct ScimError {
    pub(crate) status: StatusCode,
    pub(crate) scim_type: Option<ScimType>,
    pub(crate) detail: String,
    /// Seconds, for `Retry-After` on 429/503.
    pub(crate) retry_after: Option<u64>,
}

impl ScimError {
    pub(crate) fn new(
        status: StatusCode,
        scim_type: Option<ScimType>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 400 with a scimType.
    pub(crate) fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    pub(crate) fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    pub(crate) fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    pub(crate) fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    pub(crate) fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    pub(crate) fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, None, detail)
    }

    /// 429 with `Retry-After: seconds`, for a client with too many failed authentications.
    pub(crate) fn too_many_failed_authentications(seconds: u64) -> Self {
        let mut err = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            format!(
                "too many failed authentications from this address; retry in {seconds} seconds"
            ),
        );
        err.retry_after = Some(seconds);
        err
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, detail)
    }

    pub(crate) fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, None, "internal error")
    }

    /// An error for a status produced outside the handlers (a layer, a rejection, a fallback),
    /// with the status's canonical reason as the detail.
    pub(crate) fn from_status(status: StatusCode) -> Self {
        let detail = match status {
            StatusCode::PAYLOAD_TOO_LARGE => {
                "request body too large: it exceeds the payload limit (bulk.maxPayloadSize in \
                 /ServiceProviderConfig)"
            }
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this resource",
            StatusCode::NOT_FOUND => "no such resource",
            s => s.canonical_reason().unwrap_or("error"),
        };
        Self::new(status, None, detail)
    }
}

impl From<tonic::Status> for ScimError {
    fn from(status: tonic::Status) -> Self {
        let reason = status.get_details_error_info().map(|info| info.reason);
        let scim_type = reason.as_deref().and_then(ScimType::from_reason);
        let message = status.message();
        match status.code() {
            Code::NotFound => Self::not_found(message),
            Code::AlreadyExists => {
                Self::new(StatusCode::CONFLICT, Some(ScimType::Uniqueness), message)
            }
            Code::InvalidArgument => Self::new(StatusCode::BAD_REQUEST, scim_type, message),
            Code::Aborted => Self::new(StatusCode::PRECONDITION_FAILED, None, message),
            Code::Unauthenticated => Self::unauthorized(message),
            Code::PermissionDenied => Self::new(StatusCode::FORBIDDEN, None, message),
            Code::ResourceExhausted => {
                let mut err = Self::new(StatusCode::TOO_MANY_REQUESTS, None, message);
                err.retry_after = retry_after_seconds(&status);
                err
            }
            Code::Unavailable => {
                tracing::warn!(message, "user-management service unavailable");
                let mut err = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    None,
                    "service unavailable, retry later",
                );
                err.retry_after = retry_after_seconds(&status);
                err
            }
            Code::DeadlineExceeded => {
                tracing::warn!(message, "user-management service timed out");
                Self::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    None,
                    "the user-management service did not answer in time; retry later",
                )
            }
            Code::FailedPrecondition => Self::new(StatusCode::CONFLICT, None, message),
            code => {
                tracing::error!(?code, message, reason, "gRPC call failed");
                Self::internal()
            }
        }
    }
}

/// Whether `status` is the service's INVALID_ARGUMENT with the `invalidFilter` reason: the
/// filter does not parse, or names an attribute the resource type does not have.
pub(crate) fn is_invalid_filter(status: &tonic::Status) -> bool {
    status.code() == Code::InvalidArgument
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == ScimType::InvalidFilter.as_str())
}

/// `google.rpc.RetryInfo.retry_delay`, rounded up to whole seconds.
fn retry_after_seconds(status: &tonic::Status) -> Option<u64> {
    let delay = status.get_details_retry_info()?.retry_delay?;
    let secs = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    Some(secs.max(1))
}

impl ScimError {
    /// The `urn:ietf:params:scim:api:messages:2.0:Error` body (also a Bulk operation's
    /// `response`).
    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::Map::new();
        body.insert(
            "schemas".into(),
            serde_json::json!([crate::scim::ERROR_URN]),
        );
        body.insert("status".into(), self.status.as_u16().to_string().into());
        if let Some(t) = self.scim_type {
            body.insert("scimType".into(), t.as_str().into());
        }
        body.insert("detail".into(), self.detail.clone().into());
        serde_json::Value::Object(body)
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut response = scim_json(self.status, &self.body());
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"roster\", Basic realm=\"roster\""),
            );
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::{ErrorDetails, StatusExt};

    fn with_reason(code: Code, reason: &str) -> tonic::Status {
        tonic::Status::with_error_details(
            code,
            "the detail",
            ErrorDetails::with_error_info(reason, "roster.dev", std::collections::HashMap::new()),
        )
    }

    #[test]
    fn status_codes_map_to_http() {
        let cases = [
            (Code::NotFound, StatusCode::NOT_FOUND),
            (Code::AlreadyExists, StatusCode::CONFLICT),
            (Code::InvalidArgument, StatusCode::BAD_REQUEST),
            (Code::Aborted, StatusCode::PRECONDITION_FAILED),
            (Code::Unauthenticated, StatusCode::UNAUTHORIZED),
            (Code::PermissionDenied, StatusCode::FORBIDDEN),
            (Code::ResourceExhausted, StatusCode::TOO_MANY_REQUESTS),
            (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
            (Code::Unknown, StatusCode::INTERNAL_SERVER_ERROR),
            (Code::FailedPrecondition, StatusCode::CONFLICT),
            (Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
            (Code::DataLoss, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, http) in cases {
            assert_eq!(
                ScimError::from(tonic::Status::new(code, "x")).status,
                http,
                "{code:?}"
            );
        }
    }

    #[test]
    fn scim_type_comes_from_error_info_reason() {
        let err = ScimError::from(with_reason(Code::InvalidArgument, "invalidFilter"));
        assert_eq!(err.scim_type, Some(ScimType::InvalidFilter));
        assert_eq!(err.detail, "the detail");
        // A SCREAMING_CASE reason is not a scimType.
        let err = ScimError::from(with_reason(Code::InvalidArgument, "INTERNAL"));
        assert_eq!(err.scim_type, None);
        // No details at all.
        let err = ScimError::from(tonic::Status::invalid_argument("bad"));
        assert_eq!(err.scim_type, None);
        // Uniqueness whatever the reason says.
        let err = ScimError::from(tonic::Status::already_exists("taken"));
        assert_eq!(err.scim_type, Some(ScimType::Uniqueness));
    }

    #[test]
    fn invalid_filter_is_recognised_by_code_and_reason() {
        assert!(is_invalid_filter(&with_reason(
            Code::InvalidArgument,
            "invalidFilter"
        )));
        assert!(!is_invalid_filter(&with_reason(
            Code::InvalidArgument,
            "invalidValue"
        )));
        assert!(!is_invalid_filter(&with_reason(
            Code::FailedPrecondition,
            "invalidFilter"
        )));
        assert!(!is_invalid_filter(&tonic::Status::invalid_argument("bad")));
    }

    #[test]
    fn internal_errors_hide_their_detail() {
        let err = ScimError::from(tonic::Status::internal("db password is hunter2"));
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.detail.contains("hunter2"));
    }

    #[test]
    fn retry_info_becomes_retry_after() {
        let status = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(std::time::Duration::from_millis(1500))),
        );
        let response = ScimError::from(status).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }

    #[tokio::test]
    async fn body_has_string_status_and_scim_content_type() {
        let response = ScimError::bad_request(ScimType::InvalidPath, "nope").into_response();
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/scim+json"
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidPath",
                "detail": "nope"
            })
        );
        let response = ScimError::not_found("gone").into_response();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert!(body.get("scimType").is_none());
        assert_eq!(body["status"], "404");
    }

    #[test]
    fn unauthorized_carries_www_authenticate() {
        let response =
            ScimError::from(tonic::Status::unauthenticated("unknown token")).into_response();
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"roster\", Basic realm=\"roster\""
        );
    }
}
