//! Request extractors: the JSON body, the public base URL, conditional headers, query parameters.
//! Every rejection is a SCIM error.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use http::request::Parts;
use http::{HeaderMap, StatusCode, header};
use serde_json::Value;

use crate::error::ScimError;
use crate::limits::{INLINE_PARSE_BYTES, check_json_depth};
use crate::{AppState, Connection};

/// A JSON request body. The content type is not checked: `application/scim+json`,
/// `application/json` (Okta) and a missing one are all read as JSON. Its nesting is checked
/// against [`MAX_JSON_DEPTH`](crate::limits::MAX_JSON_DEPTH) before it is parsed, and a large
/// body is parsed on the blocking pool.
pub(crate) struct JsonBody(pub(crate) Value);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ScimError::invalid_syntax("the request body could not be read")
            }
        })?;
        if bytes.len() <= INLINE_PARSE_BYTES {
            return parse_json(&bytes).map(JsonBody);
        }
        state
            .cpu
            .run(move || parse_json(&bytes))
            .await?
            .map(JsonBody)
    }
}

pub(crate) fn parse_json(bytes: &[u8]) -> Result<Value, ScimError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax("a JSON request body is required"));
    }
    check_json_depth(bytes)?;
    serde_json::from_slice(bytes)
        .map_err(|e| ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

/// The base URL of the SCIM API as clients see it, without a trailing slash: the configured
/// public URL, else the address the client connected to (never the `Host` header, which the
/// client writes), else (a router not served by [`crate::serve`]) the path alone.
pub(crate) struct BaseUrl(pub(crate) String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(base) = &state.config.public_base_url {
            return Ok(Self(base.trim_end_matches('/').to_owned()));
        }
        let local = parts
            .extensions
            .get::<ConnectInfo<Connection>>()
            .and_then(|c| c.0.local);
        Ok(Self(match local {
            Some(addr) => format!("http://{addr}/scim/v2"),
            None => "/scim/v2".to_owned(),
        }))
    }
}

/// The entity tag of a conditional header: the first tag, without `W/` and quotes. `None` when
/// absent or `*` (which any existing resource matches).
fn entity_tag(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    parse_entity_tag(headers.get(name)?.to_str().ok()?)
}

/// The first entity tag of a header value (or a Bulk operation's `version`), without `W/` and
/// quotes. `None` when empty or `*`.
pub(crate) fn parse_entity_tag(raw: &str) -> Option<String> {
    let first = raw.split(',').next()?.trim();
    let tag = first.strip_prefix("W/").unwrap_or(first).trim_matches('"');
    (!tag.is_empty() && tag != "*").then(|| tag.to_owned())
}

/// `If-Match` and `If-None-Match`.
pub(crate) struct Conditions {
    /// Sent to the service as the etag precondition of a write.
    pub(crate) if_match: Option<String>,
    if_none_match: Option<String>,
    if_none_match_any: bool,
}

impl Conditions {
    /// Whether a GET may answer 304 for a resource whose etag is `etag`.
    pub(crate) fn not_modified(&self, etag: &str) -> bool {
        !etag.is_empty() && (self.if_none_match_any || self.if_none_match.as_deref() == Some(etag))
    }

    /// The precondition to send (`""`: unconditional).
    pub(crate) fn etag(&self) -> String {
        self.if_match.clone().unwrap_or_default()
    }

    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        Self {
            if_match: entity_tag(headers, header::IF_MATCH),
            if_none_match: entity_tag(headers, header::IF_NONE_MATCH),
            if_none_match_any: headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() == "*"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Conditions {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::from_headers(&parts.headers))
    }
}

/// The query string as pairs; names are looked up without regard to letter case.
pub(crate) struct Params(Vec<(String, String)>);

impl Params {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ScimError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|_| ScimError::invalid_syntax("the query string could not be decoded"))?;
        Ok(Self(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn entity_tags_lose_weakness_and_quotes() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, HeaderValue::from_static("W/\"abc\""));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"def\", \"x\""),
        );
        let c = Conditions::from_headers(&h);
        assert_eq!(c.if_match.as_deref(), Some("abc"));
        assert!(c.not_modified("def"));
        assert!(!c.not_modified("abc"));
        h.insert(header::IF_MATCH, HeaderValue::from_static("*"));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        let c = Conditions::from_headers(&h);
        assert_eq!(c.etag(), "");
        assert!(c.not_modified("anything"));
    }

    #[test]
    fn bodies_must_be_json() {
        assert_eq!(
            parse_json(b"  ").unwrap_err().scim_type,
            Some(crate::error::ScimType::InvalidSyntax)
        );
        assert_eq!(
            parse_json(b"{").unwrap_err().scim_type,
            Some(crate::error::ScimType::InvalidSyntax)
        );
        assert!(parse_json(b"{}").is_ok());
    }
}
