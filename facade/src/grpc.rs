//! The gRPC side of a request: clients over the shared transport, and the caller's credential.
//!
//! The clients run over [`Channel`], a thin wrapper of [`Transport`] whose error type has no
//! lifetime inside. Over `Transport` itself (error `Box<dyn Error + Send + Sync>`), rustc cannot
//! prove a tonic call future `Send` inside an axum handler: it erases the trait object's
//! `'static` in the future's witness and then fails `Into<StdError>` ("implementation of `From`
//! is not general enough", rust-lang/rust#110338).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use http::request::Parts;
use roster_proto::v1::admin_service_client::AdminServiceClient;
use roster_proto::v1::group_service_client::GroupServiceClient;
use roster_proto::v1::user_service_client::UserServiceClient;
use roster_proto::v1::{
    CreateGroupRequest, CreateUserRequest, DeleteGroupRequest, DeleteUserRequest, GetGroupRequest,
    GetUserRequest, Group, ListGroupsRequest, ListGroupsResponse, ListUsersRequest,
    ListUsersResponse, UpdateGroupRequest, UpdateUserRequest, User, WhoAmIRequest, WhoAmIResponse,
};
use tonic::metadata::{Ascii, MetadataValue};

use crate::error::ScimError;
use crate::{AppState, Transport, auth};

/// Responses larger than this are refused by the client (a FULL group of ~500k members fits).
const MAX_DECODING_MESSAGE_SIZE: usize = 64 * 1024 * 1024;

/// A transport error, as a type without lifetimes (see the module documentation).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct TransportError(Box<dyn std::error::Error + Send + Sync>);

/// [`Transport`] with [`TransportError`] as its error.
#[derive(Clone)]
pub(crate) struct Channel(Transport);

type GrpcRequest = http::Request<tonic::body::Body>;
type GrpcResponse = http::Response<tonic::body::Body>;

impl tower::Service<GrpcRequest> for Channel {
    type Response = GrpcResponse;
    type Error = TransportError;
    type Future = ChannelFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx).map_err(TransportError)
    }

    fn call(&mut self, request: GrpcRequest) -> Self::Future {
        ChannelFuture(self.0.call(request))
    }
}

/// The response future of [`Channel`].
pub(crate) struct ChannelFuture(<Transport as tower::Service<GrpcRequest>>::Future);

impl Future for ChannelFuture {
    type Output = Result<GrpcResponse, TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map_err(TransportError)
    }
}

/// An authenticated caller. Extracting it answers 401 when the `Authorization` header is
/// missing or malformed, before any gRPC call.
pub(crate) struct Grpc {
    transport: Transport,
    credential: MetadataValue<Ascii>,
}

/// One RPC method per line: `client_fn: name(RequestType) -> ResponseType;`.
macro_rules! rpcs {
    ($($client:ident: $name:ident($req:ty) -> $resp:ty;)*) => {
        $(
            pub(crate) async fn $name(&self, message: $req) -> Result<$resp, tonic::Status> {
                let response = self.$client().$name(self.request(message)).await?;
                Ok(response.into_inner())
            }
        )*
    };
}

impl Grpc {
    rpcs! {
        users: create_user(CreateUserRequest) -> User;
        users: get_user(GetUserRequest) -> User;
        users: list_users(ListUsersRequest) -> ListUsersResponse;
        users: update_user(UpdateUserRequest) -> User;
        users: delete_user(DeleteUserRequest) -> ();
        groups: create_group(CreateGroupRequest) -> Group;
        groups: get_group(GetGroupRequest) -> Group;
        groups: list_groups(ListGroupsRequest) -> ListGroupsResponse;
        groups: update_group(UpdateGroupRequest) -> Group;
        groups: delete_group(DeleteGroupRequest) -> ();
        admin: who_am_i(WhoAmIRequest) -> WhoAmIResponse;
    }

    fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(Channel(self.transport.clone()))
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    fn groups(&self) -> GroupServiceClient<Channel> {
        GroupServiceClient::new(Channel(self.transport.clone()))
            .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE)
    }

    fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(Channel(self.transport.clone()))
    }

    /// A request carrying the caller's `authorization` metadata.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", self.credential.clone());
        request
    }
}

impl FromRequestParts<AppState> for Grpc {
    type Rejection = ScimError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self {
            transport: state.transport.clone(),
            credential: auth::credential(&parts.headers)?,
        })
    }
}
