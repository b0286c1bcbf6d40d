//! Discovery (RFC 7644 §4): `/ServiceProviderConfig`, `/ResourceTypes` and `/Schemas`; and the
//! endpoint Roster does not implement, `/Me` (501).
//!
//! Discovery needs the same token as the rest of the API: it is checked with one `WhoAmI` call.
//! Query parameters are ignored (RFC 7644 §4), except `filter`, which is refused with 403 so that
//! a client cannot take its conditions for met. Other methods than GET answer 405 (the router's
//! method routing).

use axum::extract::{FromRequestParts, Path, State};
use axum::response::Response;
use http::StatusCode;
use http::request::Parts;
use roster_proto::v1::WhoAmIRequest;

use crate::AppState;
use crate::error::ScimError;
use crate::extract::{BaseUrl, Params};
use crate::grpc::Grpc;
use crate::response::scim_json;
use crate::scim::discovery::{CATALOG, with_meta};
use crate::scim::list::list_response;

/// A caller whose token the service accepts (401 otherwise).
pub(crate) struct Authenticated;

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let grpc = Grpc::from_request_parts(parts, state).await?;
        grpc.who_am_i(WhoAmIRequest {}).await?;
        Ok(Self)
    }
}

/// 403 for a `filter` (RFC 7644 §4); every other query parameter is ignored.
fn refuse_filter(params: &Params) -> Result<(), ScimError> {
    match params.get("filter") {
        Some(filter) if !filter.trim().is_empty() => Err(ScimError::new(
            StatusCode::FORBIDDEN,
            None,
            "filtering is not supported on discovery endpoints",
        )),
        _ => Ok(()),
    }
}

fn list(resources: Vec<serde_json::Value>) -> Response {
    let total = i64::try_from(resources.len()).unwrap_or(i64::MAX);
    scim_json(StatusCode::OK, &list_response(total, 1, resources))
}

pub(crate) async fn service_provider_config(
    _: Authenticated,
    State(state): State<AppState>,
    BaseUrl(base): BaseUrl,
    params: Params,
) -> Result<Response, ScimError> {
    refuse_filter(&params)?;
    let doc = with_meta(
        &state.service_provider_config,
        "ServiceProviderConfig",
        &format!("{base}/ServiceProviderConfig"),
    );
    Ok(scim_json(StatusCode::OK, &doc))
}

pub(crate) async fn resource_types(
    _: Authenticated,
    BaseUrl(base): BaseUrl,
    params: Params,
) -> Result<Response, ScimError> {
    refuse_filter(&params)?;
    Ok(list(CATALOG.resource_types(&base)))
}

pub(crate) async fn resource_type(
    _: Authenticated,
    BaseUrl(base): BaseUrl,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ScimError> {
    refuse_filter(&params)?;
    let doc = CATALOG
        .resource_type(&name, &base)
        .ok_or_else(|| ScimError::not_found(format!("no resource type named \"{name}\"")))?;
    Ok(scim_json(StatusCode::OK, &doc))
}

pub(crate) async fn schemas(
    _: Authenticated,
    BaseUrl(base): BaseUrl,
    params: Params,
) -> Result<Response, ScimError> {
    refuse_filter(&params)?;
    Ok(list(CATALOG.schemas(&base)))
}

pub(crate) async fn schema(
    _: Authenticated,
    BaseUrl(base): BaseUrl,
    Path(urn): Path<String>,
    params: Params,
) -> Result<Response, ScimError> {
    refuse_filter(&params)?;
    let doc = CATALOG
        .schema(&urn, &base)
        .ok_or_else(|| ScimError::not_found(format!("no schema \"{urn}\"")))?;
    Ok(scim_json(StatusCode::OK, &doc))
}

/// `/Me` (RFC 7644 §3.11), whatever the method: Roster tokens belong to provisioning clients,
/// not to users, so there is no "me" to resolve.
pub(crate) async fn me() -> ScimError {
    ScimError::new(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "/Me is not supported: Roster's tokens authenticate provisioning clients, not users",
    )
}
