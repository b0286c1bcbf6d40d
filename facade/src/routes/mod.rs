//! The router and its layers.

mod bulk;
mod discovery;
mod groups;
mod search;
mod users;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request as AxumRequest, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use http::{Request, StatusCode, header};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ScimError;
use crate::response::ensure_scim_errors;
use crate::{AppState, Connection};

pub(crate) fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let scim = Router::new()
        .route("/Users", get(users::list).post(users::create))
        .route("/Users/.search", post(users::search))
        .route(
            "/Users/{id}",
            get(users::get)
                .put(users::replace)
                .patch(users::patch)
                .delete(users::delete),
        )
        .route("/Groups", get(groups::list).post(groups::create))
        .route("/Groups/.search", post(groups::search))
        .route(
            "/Groups/{id}",
            get(groups::get)
                .put(groups::replace)
                .patch(groups::patch)
                .delete(groups::delete),
        )
        .route("/.search", post(search::search))
        .route(
            "/ServiceProviderConfig",
            get(discovery::service_provider_config),
        )
        .route("/ResourceTypes", get(discovery::resource_types))
        .route("/ResourceTypes/{name}", get(discovery::resource_type))
        .route("/Schemas", get(discovery::schemas))
        .route("/Schemas/{urn}", get(discovery::schema))
        .route("/Me", any(discovery::me))
        .route("/Me/{*rest}", any(discovery::me))
        .route("/Bulk", post(bulk::bulk));
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            // Never the headers (credentials) nor the query (filters carry user names).
            tracing::info_span!(
                "scim",
                method = %request.method(),
                path = %request.uri().path(),
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            )
        })
        .on_request(())
        .on_response(|response: &Response<_>, latency: Duration, span: &Span| {
            span.record("status", response.status().as_u16());
            span.record(
                "latency_ms",
                u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            );
            tracing::info!("request finished");
        });
    let throttle = axum::middleware::from_fn_with_state(state.clone(), throttle_failed_auth);
    Router::new()
        .nest("/scim/v2", scim)
        .fallback(not_found)
        .layer(throttle)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(axum::middleware::map_response(ensure_scim_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(trace)
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .with_state(state)
}

/// 429 for a client with too many recent failed authentications (see `crate::throttle`), before
/// anything else is done for it; otherwise the request, whose 401 (from the facade or the
/// service) counts as a failure.
async fn throttle_failed_auth(
    State(state): State<AppState>,
    request: AxumRequest,
    next: Next,
) -> Response {
    let Some(client) = request
        .extensions()
        .get::<ConnectInfo<Connection>>()
        .map(|c| c.0.peer.ip())
    else {
        return next.run(request).await;
    };
    let credential = state.auth_throttle.credential(
        request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes()),
    );
    if let Some(seconds) = state
        .auth_throttle
        .throttled(client, credential, Instant::now())
    {
        tracing::warn!(%client, "throttled after repeated failed authentication");
        return ScimError::too_many_failed_authentications(seconds).into_response();
    }
    let response = next.run(request).await;
    match response.status() {
        StatusCode::UNAUTHORIZED => state.auth_throttle.failed(client, Instant::now()),
        // Authenticated (a 403 too: the token is real, only not allowed this).
        status if status != StatusCode::TOO_MANY_REQUESTS => {
            state.auth_throttle.succeeded(client, credential);
        }
        _ => {}
    }
    response
}

async fn not_found() -> ScimError {
    ScimError::from_status(StatusCode::NOT_FOUND)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ScimError::internal().into_response()
}
