//! Roster's user-management service: the gRPC API (`roster.v1`), and the only owner of storage,
//! tenancy, authentication of callers and role logic.

pub mod domain;
pub mod grpc;
pub mod password;
pub mod storage;

use std::future::Future;

use roster_proto::v1::{
    access_service_server::AccessServiceServer, admin_service_server::AdminServiceServer,
    group_service_server::GroupServiceServer, user_service_server::UserServiceServer,
};
use tokio_stream::wrappers::TcpListenerStream;

pub use grpc::Api;
pub use storage::{Store, StoreError};

use domain::{DomainError, PasswordPolicy, TokenKind};
use storage::{tenants, tokens};

/// Largest gRPC message the service accepts or sends (a group's full member list is the
/// largest thing it sends).
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// The service's gRPC routes: the three Roster services, reflection (v1 and v1alpha) and
/// `grpc.health.v1`. Serve them with [`serve`], or hand them to the facade in-process.
pub fn routes(api: Api) -> Result<tonic::service::Routes, tonic_reflection::server::Error> {
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(roster_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let (health_reporter, health) = tonic_health::server::health_reporter();
    // The reporter only records statuses: dropping it keeps them.
    drop(health_reporter);
    Ok(tonic::service::Routes::new(
        UserServiceServer::new(api.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
    )
    .add_service(
        GroupServiceServer::new(api.clone())
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE),
    )
    .add_service(AccessServiceServer::new(api.clone()))
    .add_service(AdminServiceServer::new(api))
    .add_service(health)
    .add_service(reflection().build_v1()?)
    .add_service(reflection().build_v1alpha()?))
}

/// Serves `routes` over HTTP/2 on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: tonic::service::Routes,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .trace_fn(|req| tracing::info_span!("grpc", path = %req.uri().path()))
        .add_routes(routes)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}

/// The secrets minted for a new, empty database. Printed once; only their hashes are kept.
#[derive(Debug)]
pub struct Bootstrap {
    pub tenant: String,
    pub scim_token: String,
    pub operator_token: String,
}

/// On an empty database, creates the tenant `default` with a SCIM token and an operator token.
/// Returns `None` when the database already has a tenant.
pub fn bootstrap(store: &Store) -> Result<Option<Bootstrap>, DomainError> {
    let scim = tokens::Minted::bearer()?;
    let operator = tokens::Minted::bearer()?;
    store.run_blocking(move |db| {
        if tenants::count(db.conn)? > 0 {
            return Ok(None);
        }
        db.write(|c| {
            let tenant = tenants::create(c, "default", PasswordPolicy::Ignore)?;
            let new = |kind, description| tokens::NewToken::plain(kind, description);
            tokens::create(
                c,
                &tenant.id,
                &tenant.name,
                &new(TokenKind::Scim, "bootstrap SCIM token"),
                &scim,
            )?;
            tokens::create(
                c,
                &tenant.id,
                &tenant.name,
                &new(TokenKind::Operator, "bootstrap operator token"),
                &operator,
            )?;
            Ok(Some(Bootstrap {
                tenant: tenant.name,
                scim_token: scim.secret.clone(),
                operator_token: operator.secret.clone(),
            }))
        })
    })
}

/// The operator acting inside this process on the tenant `tenant` (the CLI's path): attach it
/// to a request with [`local_request`] and call the [`Api`] directly. Nothing on the network
/// can carry it.
pub fn local_operator(store: &Store, tenant: &str) -> Result<grpc::LocalCaller, DomainError> {
    let name = tenant.to_owned();
    let t = store.run_blocking(move |db| tenants::find_by_name(db.conn, &name))?;
    Ok(grpc::LocalCaller(std::sync::Arc::new(domain::Principal {
        tenant_id: t.id,
        tenant_name: t.name,
        password_policy: t.password_policy,
        default_role: t.default_role,
        token_id: String::new(),
        kind: TokenKind::Operator,
        scim_enabled: t.scim_enabled,
        read_only: false,
        user_id: None,
        admin_granted: false,
        expires: None,
    })))
}

/// A request made by `caller` inside the process.
pub fn local_request<T>(caller: &grpc::LocalCaller, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.extensions_mut().insert(caller.clone());
    request
}

/// Creates a tenant directly in the store (the operator's CLI path: the first tenant has no
/// operator to act as).
pub fn create_tenant(
    store: &Store,
    name: &str,
    policy: PasswordPolicy,
) -> Result<domain::Tenant, DomainError> {
    store.run_blocking(|db| db.write(|c| tenants::create(c, name, policy)))
}
