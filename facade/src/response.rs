//! Building responses: every body is `application/scim+json`.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::Value;

use crate::error::ScimError;

pub(crate) const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A JSON body with `Content-Type: application/scim+json`.
pub(crate) fn scim_json(status: StatusCode, body: &Value) -> Response {
    let bytes = match serde_json::to_vec(body) {
        Ok(bytes) => bytes,
        Err(e) => {
            // Serialising a `Value` cannot fail in practice (string keys only).
            tracing::error!(error = %e, "failed to serialise a response body");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    response
}

/// A weak entity tag as sent in `ETag` and `meta.version`: `W/"<etag>"`.
pub(crate) fn weak_etag(etag: &str) -> String {
    format!("W/\"{etag}\"")
}

/// One resource: the body, its `ETag`, and for a creation its `Location`.
pub(crate) fn resource(
    status: StatusCode,
    body: &Value,
    etag: &str,
    location: Option<&str>,
) -> Response {
    let mut response = scim_json(status, body);
    let headers = response.headers_mut();
    if !etag.is_empty()
        && let Ok(v) = HeaderValue::from_str(&weak_etag(etag))
    {
        headers.insert(header::ETAG, v);
    }
    if let Some(location) = location
        && let Ok(v) = HeaderValue::from_str(location)
    {
        headers.insert(header::LOCATION, v);
    }
    response
}

/// 304 Not Modified for a conditional GET whose `If-None-Match` still holds.
pub(crate) fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    if let Ok(v) = HeaderValue::from_str(&weak_etag(etag)) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// 204 No Content.
pub(crate) fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Turns an error response produced outside the handlers (axum's default 405, the body-limit
/// layer's 413, a rejection) into a SCIM error body; keeps its status and other headers
/// (e.g. `Allow`).
pub(crate) async fn ensure_scim_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_scim = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(SCIM_CONTENT_TYPE.as_bytes()));
    if is_scim {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let replacement = ScimError::from_status(status).into_response();
    let (new_parts, body) = replacement.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in &new_parts.headers {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, body)
}
