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
    store.run_blocking(|db| {
        if tenants::count(db.conn)? > 0 {
            return Ok(None);
        }
        db.write(|c| {
            let tenant = tenants::create(c, "default", PasswordPolicy::Ignore)?;
            let (_, scim) = tokens::create(
                c,
                &tenant.id,
                &tenant.name,
                &tokens::NewToken {
                    kind: TokenKind::Scim,
                    description: "bootstrap SCIM token",
                    created_by: "",
                    expires_at: None,
                },
            )?;
            let (_, operator) = tokens::create(
                c,
                &tenant.id,
                &tenant.name,
                &tokens::NewToken {
                    kind: TokenKind::Operator,
                    description: "bootstrap operator token",
                    created_by: "",
                    expires_at: None,
                },
            )?;
            Ok(Some(Bootstrap {
                tenant: tenant.name,
                scim_token: scim,
                operator_token: operator,
            }))
        })
    })
}

/// Mints a token for the tenant `tenant` directly in the store (the operator's CLI path).
pub fn create_token(
    store: &Store,
    tenant: &str,
    kind: TokenKind,
    description: &str,
) -> Result<String, DomainError> {
    store.run_blocking(|db| {
        let t = tenants::find_by_name(db.conn, tenant)?;
        let new = tokens::NewToken {
            kind,
            description,
            created_by: "",
            expires_at: None,
        };
        db.write(|c| tokens::create(c, &t.id, &t.name, &new))
            .map(|(_, secret)| secret)
    })
}

/// Creates a tenant directly in the store (the operator's CLI path).
pub fn create_tenant(store: &Store, name: &str) -> Result<domain::Tenant, DomainError> {
    store.run_blocking(|db| db.write(|c| tenants::create(c, name, PasswordPolicy::Ignore)))
}
