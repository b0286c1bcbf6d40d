//! Router tests against an in-process mock of the gRPC service: what the facade sends, how many
//! calls it makes, and what it answers. (End-to-end tests against the real service live in the
//! workspace's `tests/`.)

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request, StatusCode, header};
use roster_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use roster_proto::v1::group_service_server::{GroupService, GroupServiceServer};
use roster_proto::v1::member_operation::Kind;
use roster_proto::v1::user_service_server::{UserService, UserServiceServer};
use roster_proto::v1::*;
use serde_json::{Value, json};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;

use crate::{FacadeConfig, Transport, router};

mod discovery;
mod search;

#[derive(Debug, Clone, PartialEq)]
enum Call {
    CreateUser(CreateUserRequest),
    GetUser(String),
    ListUsers(ListUsersRequest),
    UpdateUser(UpdateUserRequest),
    DeleteUser(DeleteUserRequest),
    CreateGroup(CreateGroupRequest),
    GetGroup(GetGroupRequest),
    ListGroups(ListGroupsRequest),
    UpdateGroup(UpdateGroupRequest),
    DeleteGroup(DeleteGroupRequest),
    WhoAmI,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    authorization: Vec<String>,
    user: User,
    /// UpdateUser answers ABORTED this many times first.
    aborts: usize,
    /// When set, ListUsers pages over these (honouring `skip` and `page_size`) instead of
    /// answering copies of `user`.
    listed_users: Option<Vec<User>>,
    /// When set, ListGroups pages over these (honouring `skip`, `page_size` and `view`) instead
    /// of answering the one fixed group.
    listed_groups: Option<Vec<Group>>,
}

#[derive(Clone, Default)]
struct Mock(Arc<Mutex<State>>);

impl Mock {
    fn with_user(user: User) -> Self {
        let mock = Self::default();
        mock.0.lock().unwrap().user = user;
        mock
    }

    fn calls(&self) -> Vec<Call> {
        self.0.lock().unwrap().calls.clone()
    }

    fn record<T>(&self, request: &GrpcRequest<T>, call: Call) -> Result<(), Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut state = self.0.lock().unwrap();
        state.authorization.push(auth.clone());
        state.calls.push(call);
        if auth == "Bearer good" {
            Ok(())
        } else {
            Err(Status::unauthenticated("unknown token"))
        }
    }
}

/// The service's answer to a filter it cannot apply: INVALID_ARGUMENT with the `invalidFilter`
/// reason. ListUsers refuses filters naming `members`, ListGroups those naming `userName` (not
/// attributes of theirs); both refuse one containing `nonsense` (a syntax error).
fn refuse_filter(filter: &str, foreign: &str) -> Result<(), Status> {
    if filter.contains(foreign) || filter.contains("nonsense") {
        return Err(<Status as tonic_types::StatusExt>::with_error_details(
            tonic::Code::InvalidArgument,
            format!("cannot filter on {filter}"),
            tonic_types::ErrorDetails::with_error_info(
                "invalidFilter",
                "roster.dev",
                std::collections::HashMap::new(),
            ),
        ));
    }
    Ok(())
}

/// `page_size` items after the first `skip`.
fn page_of<T: Clone>(items: &[T], skip: i32, page_size: i32) -> Vec<T> {
    let skip = usize::try_from(skip).unwrap();
    let size = usize::try_from(page_size).unwrap();
    items.iter().skip(skip).take(size).cloned().collect()
}

fn group(id: &str, view: i32) -> Group {
    Group {
        id: id.into(),
        display_name: "Engineering".into(),
        members: if view == GroupView::Full as i32 {
            vec![Member {
                user_id: "u-1".into(),
                display: "Ada".into(),
            }]
        } else {
            vec![]
        },
        member_count: 1,
        etag: "g1".into(),
        ..Group::default()
    }
}

#[tonic::async_trait]
impl UserService for Mock {
    async fn create_user(
        &self,
        r: GrpcRequest<CreateUserRequest>,
    ) -> Result<GrpcResponse<User>, Status> {
        self.record(&r, Call::CreateUser(r.get_ref().clone()))?;
        let mut user = r.into_inner().user.unwrap_or_default();
        user.id = "u-new".into();
        user.etag = "1".into();
        user.password = None;
        Ok(GrpcResponse::new(user))
    }

    async fn get_user(&self, r: GrpcRequest<GetUserRequest>) -> Result<GrpcResponse<User>, Status> {
        self.record(&r, Call::GetUser(r.get_ref().id.clone()))?;
        let user = self.0.lock().unwrap().user.clone();
        if user.id == r.get_ref().id {
            Ok(GrpcResponse::new(user))
        } else {
            Err(Status::not_found("no such user"))
        }
    }

    async fn list_users(
        &self,
        r: GrpcRequest<ListUsersRequest>,
    ) -> Result<GrpcResponse<ListUsersResponse>, Status> {
        self.record(&r, Call::ListUsers(r.get_ref().clone()))?;
        refuse_filter(&r.get_ref().filter, "members")?;
        if let Some(users) = self.0.lock().unwrap().listed_users.clone() {
            return Ok(GrpcResponse::new(ListUsersResponse {
                users: page_of(&users, r.get_ref().skip, r.get_ref().page_size),
                next_page_token: String::new(),
                total_size: i64::try_from(users.len()).unwrap(),
                ..Default::default()
            }));
        }
        let user = self.0.lock().unwrap().user.clone();
        let n = usize::try_from(r.get_ref().page_size).unwrap().min(3);
        Ok(GrpcResponse::new(ListUsersResponse {
            users: vec![user; n],
            next_page_token: String::new(),
            total_size: 3,
            ..Default::default()
        }))
    }

    async fn update_user(
        &self,
        r: GrpcRequest<UpdateUserRequest>,
    ) -> Result<GrpcResponse<User>, Status> {
        self.record(&r, Call::UpdateUser(r.get_ref().clone()))?;
        let mut state = self.0.lock().unwrap();
        if state.aborts > 0 {
            state.aborts -= 1;
            state.user.etag.push('+');
            return Err(Status::aborted("etag mismatch"));
        }
        let request = r.into_inner();
        if !request.etag.is_empty() && request.etag != state.user.etag {
            return Err(Status::aborted("etag mismatch"));
        }
        let mut user = request.user.unwrap_or_default();
        user.etag = "2".into();
        user.password = None;
        Ok(GrpcResponse::new(user))
    }

    async fn delete_user(
        &self,
        r: GrpcRequest<DeleteUserRequest>,
    ) -> Result<GrpcResponse<()>, Status> {
        self.record(&r, Call::DeleteUser(r.get_ref().clone()))?;
        Ok(GrpcResponse::new(()))
    }
}

#[tonic::async_trait]
impl GroupService for Mock {
    async fn create_group(
        &self,
        r: GrpcRequest<CreateGroupRequest>,
    ) -> Result<GrpcResponse<Group>, Status> {
        self.record(&r, Call::CreateGroup(r.get_ref().clone()))?;
        let view = r.get_ref().view;
        let mut g = r.into_inner().group.unwrap_or_default();
        g.id = "g-new".into();
        if view != GroupView::Full as i32 {
            g.members.clear();
        }
        Ok(GrpcResponse::new(g))
    }

    async fn get_group(
        &self,
        r: GrpcRequest<GetGroupRequest>,
    ) -> Result<GrpcResponse<Group>, Status> {
        self.record(&r, Call::GetGroup(r.get_ref().clone()))?;
        Ok(GrpcResponse::new(group(&r.get_ref().id, r.get_ref().view)))
    }

    async fn list_groups(
        &self,
        r: GrpcRequest<ListGroupsRequest>,
    ) -> Result<GrpcResponse<ListGroupsResponse>, Status> {
        self.record(&r, Call::ListGroups(r.get_ref().clone()))?;
        refuse_filter(&r.get_ref().filter, "userName")?;
        if let Some(groups) = self.0.lock().unwrap().listed_groups.clone() {
            let mut page = page_of(&groups, r.get_ref().skip, r.get_ref().page_size);
            if r.get_ref().view != GroupView::Full as i32 {
                page.iter_mut().for_each(|g| g.members.clear());
            }
            return Ok(GrpcResponse::new(ListGroupsResponse {
                groups: page,
                next_page_token: String::new(),
                total_size: i64::try_from(groups.len()).unwrap(),
                ..Default::default()
            }));
        }
        Ok(GrpcResponse::new(ListGroupsResponse {
            groups: vec![group("g-1", r.get_ref().view)],
            next_page_token: String::new(),
            total_size: 1,
            ..Default::default()
        }))
    }

    async fn update_group(
        &self,
        r: GrpcRequest<UpdateGroupRequest>,
    ) -> Result<GrpcResponse<Group>, Status> {
        self.record(&r, Call::UpdateGroup(r.get_ref().clone()))?;
        let id = r
            .get_ref()
            .group
            .as_ref()
            .map(|g| g.id.clone())
            .unwrap_or_default();
        Ok(GrpcResponse::new(group(&id, r.get_ref().view)))
    }

    async fn delete_group(
        &self,
        r: GrpcRequest<DeleteGroupRequest>,
    ) -> Result<GrpcResponse<()>, Status> {
        self.record(&r, Call::DeleteGroup(r.get_ref().clone()))?;
        Ok(GrpcResponse::new(()))
    }

    async fn add_group_members(
        &self,
        _: GrpcRequest<GroupMembersRequest>,
    ) -> Result<GrpcResponse<Group>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn remove_group_members(
        &self,
        _: GrpcRequest<GroupMembersRequest>,
    ) -> Result<GrpcResponse<Group>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn list_group_members(
        &self,
        _: GrpcRequest<ListGroupMembersRequest>,
    ) -> Result<GrpcResponse<ListGroupMembersResponse>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }
}

#[tonic::async_trait]
impl AdminService for Mock {
    async fn create_tenant(
        &self,
        _: GrpcRequest<CreateTenantRequest>,
    ) -> Result<GrpcResponse<Tenant>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn list_tenants(
        &self,
        _: GrpcRequest<ListTenantsRequest>,
    ) -> Result<GrpcResponse<ListTenantsResponse>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn update_tenant(
        &self,
        _: GrpcRequest<UpdateTenantRequest>,
    ) -> Result<GrpcResponse<Tenant>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn regenerate_token(
        &self,
        _: GrpcRequest<RegenerateTokenRequest>,
    ) -> Result<GrpcResponse<CreateTokenResponse>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn who_am_i(
        &self,
        r: GrpcRequest<WhoAmIRequest>,
    ) -> Result<GrpcResponse<WhoAmIResponse>, Status> {
        self.record(&r, Call::WhoAmI)?;
        Ok(GrpcResponse::new(WhoAmIResponse {
            tenant: Some(Tenant {
                id: "t-1".into(),
                name: "acme".into(),
                ..Tenant::default()
            }),
            kind: TokenKind::Scim as i32,
            token_id: "tok-1".into(),
            ..Default::default()
        }))
    }

    async fn create_token(
        &self,
        _: GrpcRequest<CreateTokenRequest>,
    ) -> Result<GrpcResponse<CreateTokenResponse>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn list_tokens(
        &self,
        _: GrpcRequest<ListTokensRequest>,
    ) -> Result<GrpcResponse<ListTokensResponse>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }

    async fn revoke_token(
        &self,
        _: GrpcRequest<RevokeTokenRequest>,
    ) -> Result<GrpcResponse<()>, Status> {
        Err(Status::unimplemented("not used by the facade"))
    }
}

fn transport(mock: &Mock) -> Transport {
    let routes = tonic::service::Routes::new(UserServiceServer::new(mock.clone()))
        .add_service(GroupServiceServer::new(mock.clone()))
        .add_service(AdminServiceServer::new(mock.clone()));
    let routes = ServiceExt::<http::Request<tonic::body::Body>>::map_err(
        routes,
        |never: std::convert::Infallible| -> Box<dyn std::error::Error + Send + Sync> {
            match never {}
        },
    );
    Transport::new(routes)
}

fn app(mock: &Mock) -> Router {
    app_with(
        mock,
        FacadeConfig {
            public_base_url: Some("https://r.example/scim/v2/".into()),
            ..FacadeConfig::default()
        },
    )
}

fn app_with(mock: &Mock, config: FacadeConfig) -> Router {
    router(transport(mock), config)
}

fn ada() -> User {
    User {
        id: "u-1".into(),
        user_name: "ada@example.com".into(),
        active: true,
        emails: vec![Email {
            value: "ada@home.example".into(),
            r#type: Some("home".into()),
            primary: None,
            display: None,
        }],
        attributes_json: json!({"phoneNumbers": [{"value": "+1"}]}).to_string(),
        effective_role: "member".into(),
        etag: "e1".into(),
        ..User::default()
    }
}

/// The address the test requests were "served" on, and the client's.
const SERVED_AT: &str = "127.0.0.1:8080";
const CLIENT: &str = "192.0.2.10:50000";

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: Option<Value>,
) -> Reply {
    send_raw(app, method, uri, auth, body.map(|b| b.to_string()), &[]).await
}

async fn send_raw(
    app: &Router,
    method: Method,
    uri: &str,
    auth: Option<&str>,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "facade.test");
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = match body {
        Some(b) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b)),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let mut request = request;
    // What `crate::serve` attaches to every request.
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(crate::Connection {
            local: Some(SERVED_AT.parse().unwrap()),
            peer: CLIENT.parse().unwrap(),
        }));
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The one call made.
fn only(calls: Vec<Call>) -> Call {
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls.into_iter().next().unwrap()
}

fn assert_scim_error(reply: &Reply, status: StatusCode) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    assert_eq!(reply.body["status"], json!(status.as_str()));
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

#[tokio::test]
async fn missing_credentials_are_401_without_a_grpc_call() {
    let mock = Mock::with_user(ada());
    let reply = send(&app(&mock), Method::GET, "/scim/v2/Users", None, None).await;
    assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"roster\", Basic realm=\"roster\""
    );
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users/u-1",
        Some("Digest dTpw"),
        None,
    )
    .await;
    assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn okta_bare_tokens_are_forwarded_as_bearer() {
    let mock = Mock::with_user(ada());
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users/u-1",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users/u-1",
        Some("bearer good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        mock.0.lock().unwrap().authorization,
        vec!["Bearer good", "Bearer good"]
    );
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users/u-1",
        Some("Bearer bad"),
        None,
    )
    .await;
    assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers[header::WWW_AUTHENTICATE],
        "Bearer realm=\"roster\", Basic realm=\"roster\""
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_scim_errors() {
    let mock = Mock::default();
    let app = app(&mock);
    assert_scim_error(
        &send(&app, Method::GET, "/scim/v2/Nope", Some("good"), None).await,
        StatusCode::NOT_FOUND,
    );
    assert_scim_error(
        &send(&app, Method::GET, "/elsewhere", None, None).await,
        StatusCode::NOT_FOUND,
    );
    let reply = send(
        &app,
        Method::PUT,
        "/scim/v2/Users",
        Some("good"),
        Some(json!({})),
    )
    .await;
    assert_scim_error(&reply, StatusCode::METHOD_NOT_ALLOWED);
    assert!(reply.headers.contains_key(header::ALLOW));
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let mock = Mock::default();
    let app = app_with(
        &mock,
        FacadeConfig {
            body_limit: 64,
            ..FacadeConfig::default()
        },
    );
    let big = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x".repeat(200)});
    // No Content-Length: the body is cut off while read.
    let reply = send(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some("good"),
        Some(big.clone()),
    )
    .await;
    assert_scim_error(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    // A Content-Length over the limit is refused before the body is read.
    let text = big.to_string();
    let length = text.len().to_string();
    let reply = send_raw(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some("good"),
        Some(text),
        &[("content-length", &length)],
    )
    .await;
    assert_scim_error(&reply, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let mock = Mock::default();
    let app = app(&mock);
    let reply = send_raw(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some("good"),
        Some("{\"userName\":".into()),
        &[],
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "invalidSyntax");
    let body =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ["x"]});
    let reply = send(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some("good"),
        Some(body),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "invalidValue");
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn create_user_returns_201_with_location_and_etag() {
    let mock = Mock::default();
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "new@example.com",
        "password": "pw"
    });
    let reply = send(
        &app(&mock),
        Method::POST,
        "/scim/v2/Users",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        reply.headers[header::LOCATION],
        "https://r.example/scim/v2/Users/u-new"
    );
    assert_eq!(reply.headers[header::ETAG], "W/\"1\"");
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
    assert_eq!(
        reply.body["meta"]["location"],
        "https://r.example/scim/v2/Users/u-new"
    );
    assert_eq!(reply.body["active"], true);
    assert!(reply.body.get("password").is_none());
    let Call::CreateUser(request) = only(mock.calls()) else {
        panic!("expected one CreateUser");
    };
    let user = request.user.unwrap();
    assert!(user.active, "active defaults to true on create");
    assert_eq!(user.password.as_deref(), Some("pw"));
}

#[tokio::test]
async fn base_url_falls_back_to_the_served_address_never_the_host_header() {
    let mock = Mock::with_user(ada());
    let app = app_with(&mock, FacadeConfig::default());
    let reply = send_raw(
        &app,
        Method::GET,
        "/scim/v2/Users/u-1",
        Some("good"),
        None,
        &[("host", "evil.example")],
    )
    .await;
    assert_eq!(
        reply.body["meta"]["location"],
        "http://127.0.0.1:8080/scim/v2/Users/u-1"
    );
    // Not served through `serve` (no connection): the path alone, still not the Host header.
    let request = Request::builder()
        .uri("/scim/v2/Users/u-1")
        .header(header::HOST, "evil.example")
        .header(header::AUTHORIZATION, "good")
        .body(Body::empty())
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["meta"]["location"], "/scim/v2/Users/u-1");
}

#[tokio::test]
async fn oversized_and_deep_bodies_are_refused_without_a_grpc_call() {
    let mock = Mock::with_user(ada());
    let app = app(&mock);
    let values: Vec<Value> = (0..40_000).map(|i| json!(format!("v{i}"))).collect();
    let body = patch_body(json!([{"op": "add", "path": "tags", "value": values}]));
    let reply = send(
        &app,
        Method::PATCH,
        "/scim/v2/Users/u-1",
        Some("good"),
        Some(body),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "tooMany");
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    let reply = send_raw(
        &app,
        Method::POST,
        "/scim/v2/Users",
        Some("good"),
        Some(deep),
        &[],
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "invalidSyntax");
    assert!(mock.calls().is_empty(), "{:?}", mock.calls());
}

#[tokio::test]
async fn repeated_failed_authentication_is_throttled_per_client() {
    let mock = Mock::with_user(ada());
    let app = app_with(
        &mock,
        FacadeConfig {
            auth_failure_limit: 3,
            ..FacadeConfig::default()
        },
    );
    // Successes do not count.
    for _ in 0..5 {
        let reply = send(&app, Method::GET, "/scim/v2/Users/u-1", Some("good"), None).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    // A missing header and a token the service refuses both count.
    let reply = send(&app, Method::GET, "/scim/v2/Users/u-1", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let reply = send(&app, Method::GET, "/scim/v2/Users/u-1", Some("bad"), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let calls = mock.calls().len();
    // "good" succeeded only before the first failure: not remembered (see `crate::throttle`).
    for auth in ["bad", "good"] {
        let reply = send(&app, Method::GET, "/scim/v2/Users/u-1", Some(auth), None).await;
        assert_scim_error(&reply, StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = reply.headers[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    assert_eq!(
        mock.calls().len(),
        calls,
        "a throttled client reaches no RPC"
    );
}

#[tokio::test]
async fn okta_deactivation_is_one_update_without_a_read() {
    let mock = Mock::with_user(ada());
    let body = patch_body(json!([{"op": "replace", "value": {"active": false}}]));
    let reply = send(
        &app(&mock),
        Method::PATCH,
        "/scim/v2/Users/u-1",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::ETAG], "W/\"2\"");
    let Call::UpdateUser(request) = only(mock.calls()) else {
        panic!("expected exactly one UpdateUser");
    };
    assert_eq!(request.update_mask.unwrap().paths, vec!["active"]);
    assert_eq!(request.etag, "");
    let user = request.user.unwrap();
    assert_eq!(user.id, "u-1");
    assert!(!user.active);
}

#[tokio::test]
async fn entra_email_patch_reads_then_writes_conditionally() {
    let mock = Mock::with_user(ada());
    let body = patch_body(json!([
        {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada@work.example"},
        {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42"}
    ]));
    let reply = send(
        &app(&mock),
        Method::PATCH,
        "/scim/v2/Users/u-1",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let calls = mock.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0], Call::GetUser("u-1".into()));
    let Call::UpdateUser(request) = &calls[1] else {
        panic!("expected UpdateUser");
    };
    assert_eq!(request.etag, "e1");
    let mask = &request.update_mask.as_ref().unwrap().paths;
    assert!(mask.contains(&"emails".to_owned()) && mask.contains(&"attributes_json".to_owned()));
    assert!(!mask.contains(&"password".to_owned()));
    // The whole document was read: the role is written back as it was.
    assert!(mask.contains(&"role".to_owned()));
    let user = request.user.as_ref().unwrap();
    assert_eq!(user.emails.len(), 2);
    assert_eq!(user.emails[1].value, "ada@work.example");
    assert_eq!(user.emails[1].r#type.as_deref(), Some("work"));
    let attributes: Value = serde_json::from_str(&user.attributes_json).unwrap();
    assert_eq!(
        attributes,
        json!({"phoneNumbers": [{"value": "+1"}], "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42"}})
    );
}

#[tokio::test]
async fn general_patch_retries_when_another_writer_wins() {
    let mock = Mock::with_user(ada());
    mock.0.lock().unwrap().aborts = 2;
    let body =
        patch_body(json!([{"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]}]));
    let reply = send(
        &app(&mock),
        Method::PATCH,
        "/scim/v2/Users/u-1",
        Some("good"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(mock.calls().len(), 6);

    // With If-Match the client pinned a version: no retry, 412.
    let mock = Mock::with_user(ada());
    let reply = send_raw(
        &app(&mock),
        Method::PATCH,
        "/scim/v2/Users/u-1",
        Some("good"),
        Some(body.to_string()),
        &[("if-match", "W/\"stale\"")],
    )
    .await;
    assert_scim_error(&reply, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn put_sends_if_match_as_etag_and_a_full_mask() {
    let mock = Mock::with_user(ada());
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "ignored",
        "userName": "ada@example.com",
        "active": false
    });
    let reply = send_raw(
        &app(&mock),
        Method::PUT,
        "/scim/v2/Users/u-1",
        Some("good"),
        Some(body.to_string()),
        &[("if-match", "W/\"e1\"")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let Call::UpdateUser(request) = only(mock.calls()) else {
        panic!("expected one UpdateUser");
    };
    assert_eq!(request.etag, "e1");
    assert_eq!(request.user.as_ref().unwrap().id, "u-1");
    let mask = request.update_mask.unwrap().paths;
    assert!(mask.contains(&"active".to_owned()) && mask.contains(&"emails".to_owned()));
    // Not in the body: the stored password hash and the Roster role stay.
    assert!(!mask.contains(&"password".to_owned()) && !mask.contains(&"role".to_owned()));
}

#[tokio::test]
async fn conditional_get_answers_304() {
    let mock = Mock::with_user(ada());
    let reply = send_raw(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users/u-1",
        Some("good"),
        None,
        &[("if-none-match", "W/\"e1\"")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED);
    assert_eq!(reply.headers[header::ETAG], "W/\"e1\"");
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users/u-2",
        Some("good"),
        None,
    )
    .await;
    assert_scim_error(&reply, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn list_users_pages_and_counts() {
    let mock = Mock::with_user(ada());
    let filter = "userName%20eq%20%22ada%40example.com%22";
    let reply = send(
        &app(&mock),
        Method::GET,
        &format!("/scim/v2/Users?filter={filter}&startIndex=2&count=2"),
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
    assert_eq!(reply.body["totalResults"], 3);
    assert_eq!(reply.body["itemsPerPage"], 2);
    assert_eq!(reply.body["startIndex"], 2);
    assert_eq!(reply.body["Resources"].as_array().unwrap().len(), 2);
    assert_eq!(
        reply.body["Resources"][0]["phoneNumbers"],
        json!([{"value": "+1"}])
    );
    let Call::ListUsers(request) = only(mock.calls()) else {
        panic!("expected one ListUsers");
    };
    assert_eq!(request.filter, "userName eq \"ada@example.com\"");
    assert_eq!((request.skip, request.page_size), (1, 2));

    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users?count=0",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.body["totalResults"], 3);
    assert_eq!(reply.body["itemsPerPage"], 0);
    assert_eq!(reply.body["Resources"], json!([]));
    // count=0: the total alone, no user read.
    let calls = mock.calls();
    let Some(Call::ListUsers(request)) = calls.last() else {
        panic!("expected a ListUsers: {calls:?}");
    };
    assert_eq!((request.page_size, request.total_only), (0, true));
}

#[tokio::test]
async fn list_users_sorts_and_pages_by_cursor() {
    let mock = Mock::with_user(ada());
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users?sortBy=name.familyName&sortOrder=descending&cursor=&count=2",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body.get("startIndex").is_none(), "{}", reply.body);
    let Some(Call::ListUsers(request)) = mock.calls().last().cloned() else {
        panic!("expected a ListUsers");
    };
    assert_eq!(
        request,
        ListUsersRequest {
            page_size: 2,
            page_token: String::new(),
            filter: String::new(),
            skip: 0,
            sort_by: "name.familyName".into(),
            descending: true,
            total_only: false,
        }
    );
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users?cursor=tok&count=2",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let Some(Call::ListUsers(request)) = mock.calls().last().cloned() else {
        panic!("expected a ListUsers");
    };
    assert_eq!((request.page_token.as_str(), request.skip), ("tok", 0));
    // Both paging methods at once: refused before any list call.
    let mock = Mock::with_user(ada());
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Users?cursor=tok&startIndex=3",
        Some("good"),
        None,
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "invalidValue");
    assert!(!mock.calls().iter().any(|c| matches!(c, Call::ListUsers(_))));
}

#[tokio::test]
async fn delete_user_is_204() {
    let mock = Mock::with_user(ada());
    let reply = send(
        &app(&mock),
        Method::DELETE,
        "/scim/v2/Users/u-1",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    assert_eq!(
        mock.calls(),
        vec![Call::DeleteUser(DeleteUserRequest {
            id: "u-1".into(),
            etag: String::new()
        })]
    );
}

#[tokio::test]
async fn group_patch_is_one_update_and_204() {
    let mock = Mock::default();
    let body = patch_body(json!([
        {"op": "replace", "value": {"id": "g-1", "displayName": "Eng"}},
        {"op": "remove", "path": "members[value eq \"u-1\"]"},
        {"op": "add", "path": "members", "value": [{"value": "u-2", "display": "b"}]}
    ]));
    let reply = send(
        &app(&mock),
        Method::PATCH,
        "/scim/v2/Groups/g-1",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let Call::UpdateGroup(request) = only(mock.calls()) else {
        panic!("expected one UpdateGroup");
    };
    assert_eq!(request.view, GroupView::Basic as i32);
    assert_eq!(request.update_mask.unwrap().paths, vec!["display_name"]);
    assert_eq!(request.group.unwrap().display_name, "Eng");
    let kinds: Vec<i32> = request.member_operations.iter().map(|o| o.kind).collect();
    assert_eq!(kinds, vec![Kind::Remove as i32, Kind::Add as i32]);
}

#[tokio::test]
async fn group_patch_with_attributes_returns_the_group() {
    let mock = Mock::default();
    let body = patch_body(json!([{"op": "Add", "path": "members", "value": [{"value": "u-2"}]}]));
    let reply = send(
        &app(&mock),
        Method::PATCH,
        "/scim/v2/Groups/g-1?excludedAttributes=members",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.body.get("members").is_none());
    assert_eq!(reply.body["displayName"], "Engineering");
    let Call::UpdateGroup(request) = only(mock.calls()) else {
        panic!("expected one UpdateGroup");
    };
    assert_eq!(request.view, GroupView::Basic as i32);
    assert_eq!(request.update_mask, None);
}

#[tokio::test]
async fn entra_group_lookup_uses_the_basic_view() {
    let mock = Mock::default();
    let reply = send(
        &app(&mock),
        Method::GET,
        "/scim/v2/Groups?excludedAttributes=members&filter=displayName+eq+%22Engineering%22",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["totalResults"], 1);
    assert!(reply.body["Resources"][0].get("members").is_none());
    let Call::ListGroups(request) = only(mock.calls()) else {
        panic!("expected one ListGroups");
    };
    assert_eq!(request.view, GroupView::Basic as i32);
    assert_eq!(request.filter, "displayName eq \"Engineering\"");
}

#[tokio::test]
async fn group_create_get_put_delete() {
    let mock = Mock::default();
    let app = app(&mock);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "displayName": "Engineering",
        "members": [{"value": "u-1"}]
    });
    let reply = send(
        &app,
        Method::POST,
        "/scim/v2/Groups",
        Some("good"),
        Some(body.clone()),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        reply.headers[header::LOCATION],
        "https://r.example/scim/v2/Groups/g-new"
    );

    let reply = send(&app, Method::GET, "/scim/v2/Groups/g-1", Some("good"), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers[header::ETAG], "W/\"g1\"");
    assert_eq!(
        reply.body["members"],
        json!([{"value": "u-1", "display": "Ada", "$ref": "https://r.example/scim/v2/Users/u-1", "type": "User"}])
    );

    let reply = send(
        &app,
        Method::PUT,
        "/scim/v2/Groups/g-1",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let Some(Call::UpdateGroup(request)) = mock.calls().pop() else {
        panic!("expected UpdateGroup");
    };
    assert_eq!(
        request.update_mask.unwrap().paths,
        vec!["display_name", "external_id"]
    );
    assert_eq!(
        request.member_operations,
        vec![MemberOperation {
            kind: Kind::Replace as i32,
            user_ids: vec!["u-1".into()]
        }]
    );

    let reply = send(
        &app,
        Method::DELETE,
        "/scim/v2/Groups/g-1",
        Some("good"),
        None,
    )
    .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
}
