//! Roster's SCIM 2.0 facade (RFC 7643/7644).
//!
//! An axum application that translates SCIM REST calls into gRPC calls to the user-management
//! service (`roster.v1`). It has no storage of its own: every request is extract → translate →
//! one gRPC call (a read and a conditional write for the general PATCH path) → render.
//!
//! The caller's credential is forwarded as the gRPC metadata `authorization: Bearer <token>`;
//! the service decides the tenant and what the token may do.

mod auth;
mod cpu;
mod error;
mod extract;
mod grpc;
pub mod limits;
mod response;
mod routes;
mod scim;
mod throttle;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;

/// The gRPC transport the facade calls the service through: a `tonic::transport::Channel` in a
/// split deployment, or the service's in-process `tonic::service::Routes`, boxed.
pub type Transport = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Box<dyn std::error::Error + Send + Sync>,
>;

/// How the facade presents itself and what it accepts.
#[derive(Debug, Clone)]
pub struct FacadeConfig {
    /// The public base URL of the SCIM API, e.g. `https://roster.example.com/scim/v2`, used in
    /// `meta.location`, `Location` and `$ref`. `None`: `http://<the address the client
    /// connected to>/scim/v2` (e.g. `http://127.0.0.1:8080/scim/v2`); never the request's
    /// `Host` header, which the client chooses.
    pub public_base_url: Option<String>,
    /// The largest request body accepted, in bytes (413 above it).
    pub body_limit: usize,
    /// The largest SCIM `count` honoured on list requests; larger values are clamped.
    pub max_page_size: i32,
    /// The most operations one `POST /Bulk` may carry (413 above it). Its payload limit is
    /// `body_limit`.
    pub bulk_max_operations: usize,
    /// Refuse attributes that no served schema declares (400 `invalidValue`) instead of keeping
    /// them as written. Off by default: Okta and Entra send custom attributes.
    pub strict_schema: bool,
    /// Failed authentications (401 answers) one client IP address may have within
    /// `auth_failure_window` before every further request from it answers 429 until that window
    /// passes. 0: no throttling (e.g. behind a proxy that throttles).
    pub auth_failure_limit: u32,
    /// The window of `auth_failure_limit`, starting at a client's first failure.
    pub auth_failure_window: Duration,
}

impl Default for FacadeConfig {
    fn default() -> Self {
        Self {
            public_base_url: None,
            body_limit: 1024 * 1024,
            max_page_size: roster_proto::MAX_PAGE_SIZE,
            bulk_max_operations: 1000,
            strict_schema: false,
            auth_failure_limit: 20,
            auth_failure_window: Duration::from_secs(60),
        }
    }
}

/// Shared by every handler: the transport to clone per request and the configuration.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) transport: Transport,
    pub(crate) config: Arc<FacadeConfig>,
    /// `/ServiceProviderConfig` without `meta`, built once from the configuration.
    pub(crate) service_provider_config: Arc<serde_json::Value>,
    /// Where CPU-heavy steps run.
    pub(crate) cpu: cpu::CpuPool,
    /// Failed authentications per client.
    pub(crate) auth_throttle: Arc<throttle::AuthThrottle>,
}

/// The TCP connection a request came on: the address the client connected to (the base URL's
/// authority when no public URL is configured) and the client's address (the key of the
/// failed-authentication throttle). Present when the router is served by [`serve`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peer: SocketAddr,
}

impl Connected<IncomingStream<'_, tokio::net::TcpListener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        Self {
            local: stream.io().local_addr().ok(),
            peer: *stream.remote_addr(),
        }
    }
}

/// The SCIM application: `/scim/v2/Users` and `/scim/v2/Groups` (with their `/.search`), the
/// root `/scim/v2/.search`, and the discovery endpoints (`/ServiceProviderConfig`,
/// `/ResourceTypes`, `/Schemas`), with tracing, the body limit, panic catching and SCIM error
/// bodies on every failure.
pub fn router(transport: Transport, config: FacadeConfig) -> axum::Router {
    let service_provider_config = scim::discovery::service_provider_config(
        config.max_page_size,
        scim::discovery::BulkLimits {
            max_operations: config.bulk_max_operations,
            max_payload_size: config.body_limit,
        },
    );
    let auth_throttle =
        throttle::AuthThrottle::new(config.auth_failure_limit, config.auth_failure_window);
    routes::router(AppState {
        transport,
        config: Arc::new(config),
        service_provider_config: Arc::new(service_provider_config),
        cpu: cpu::CpuPool::new(),
        auth_throttle: Arc::new(auth_throttle),
    })
}

/// Serves `router` on `listener` until `shutdown` completes, then drains open connections.
/// Each request learns its connection's addresses (see [`Connection`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<Connection>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests;
