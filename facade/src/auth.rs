//! The caller's credential: read from `Authorization`, forwarded to gRPC as `Bearer <token>`
//! or, for HTTP Basic credentials (Okta's "Basic Auth" mode), as `Basic <credentials>`.
//!
//! Okta's "HTTP Header" mode sends the bare token without a scheme; `bearer` may come in any
//! letter case. The facade checks only the shape; the service decides whether the token is good.

use http::{HeaderMap, header};
use tonic::metadata::{Ascii, MetadataValue};

use crate::error::ScimError;

/// `Bearer <token>` from an `Authorization` value: `Bearer t`, `bearer t`, `BEARER t` or a bare
/// `t`; `Basic <credentials>` for HTTP Basic. `None` for an empty value, another scheme or a
/// token with whitespace.
pub(crate) fn normalise_authorization(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (scheme, token) = match raw.split_once(char::is_whitespace) {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => ("Bearer", rest.trim()),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => ("Basic", rest.trim()),
        Some(_) => return None,
        None => ("Bearer", raw),
    };
    if token.is_empty()
        || token.contains(char::is_whitespace)
        || token.eq_ignore_ascii_case("bearer")
    {
        return None;
    }
    Some(format!("{scheme} {token}"))
}

/// The gRPC `authorization` metadata for this request, or 401.
pub(crate) fn credential(headers: &HeaderMap) -> Result<MetadataValue<Ascii>, ScimError> {
    let raw = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ScimError::unauthorized("an Authorization header with a bearer token is required")
    })?;
    raw.to_str()
        .ok()
        .and_then(normalise_authorization)
        .and_then(|v| MetadataValue::try_from(v).ok())
        .ok_or_else(|| {
            ScimError::unauthorized(
                "the Authorization header must be a bearer token or Basic credentials",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn accepts_bearer_in_any_case_and_bare_tokens() {
        for raw in [
            "Bearer abc123",
            "bearer abc123",
            "BEARER abc123",
            "abc123",
            "  Bearer   abc123  ",
        ] {
            assert_eq!(
                normalise_authorization(raw).as_deref(),
                Some("Bearer abc123"),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn forwards_basic_credentials() {
        assert_eq!(
            normalise_authorization("basic dXNlcjpwYXNz").as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
    }

    #[test]
    fn rejects_other_shapes() {
        for raw in [
            "",
            "   ",
            "Bearer",
            "Bearer ",
            "Digest abc",
            "Bearer a b",
            "bearer",
        ] {
            assert_eq!(normalise_authorization(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn missing_header_is_401() {
        let err = credential(&HeaderMap::new()).unwrap_err();
        assert_eq!(err.status, http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn header_becomes_metadata() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("tok-1"));
        assert_eq!(credential(&headers).unwrap(), "Bearer tok-1");
    }
}
