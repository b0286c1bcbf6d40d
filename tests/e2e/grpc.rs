//! The gRPC API: the generated clients, reflection (v1 and v1alpha), health, and token rules.

use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::json;
use tokio_stream::StreamExt;
use tonic::Code;

use crate::harness::{TestServer, authed, on_both_backends, send};

on_both_backends!(
    grpc_and_scim_share_one_directory,
    reflection_and_health,
    token_rules
);

async fn grpc_and_scim_share_one_directory(server: &TestServer) {
    let channel = server.channel().await;
    let mut users = pb::user_service_client::UserServiceClient::new(channel.clone());
    let token = &server.scim_token;
    let created = users
        .create_user(authed(
            token,
            pb::CreateUserRequest {
                user: Some(pb::User {
                    user_name: "grpc@example.com".into(),
                    active: true,
                    emails: vec![pb::Email {
                        value: "grpc@example.com".into(),
                        r#type: Some("work".into()),
                        primary: Some(true),
                        display: None,
                    }],
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("CreateUser")
        .into_inner();
    assert_eq!(
        created.effective_role, "reporting",
        "no role means reporting"
    );

    // Seen over SCIM.
    let (status, got) = send(server.scim_req(Method::GET, &format!("/Users/{}", created.id))).await;
    assert_eq!(status, 200);
    assert_eq!(got["userName"], "grpc@example.com");

    // A SCIM-created user is seen over gRPC, with the same filter syntax.
    let (status, _) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "scim@example.com",
        "urn:ietf:params:scim:schemas:extension:roster:2.0:User": {"role": "developer"}
    })))
    .await;
    assert_eq!(status, 201);
    let list = users
        .list_users(authed(
            token,
            pb::ListUsersRequest {
                filter: r#"userName eq "SCIM@example.com""#.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("ListUsers")
        .into_inner();
    assert_eq!(list.total_size, 1);
    assert_eq!(list.users[0].role.as_deref(), Some("developer"));
    assert_eq!(list.users[0].effective_role, "developer");

    // Keyset paging over gRPC.
    let first = users
        .list_users(authed(
            token,
            pb::ListUsersRequest {
                page_size: 1,
                ..Default::default()
            },
        ))
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.users.len(), 1);
    assert!(!first.next_page_token.is_empty());
    let second = users
        .list_users(authed(
            token,
            pb::ListUsersRequest {
                page_size: 1,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.users.len(), 1);
    assert_ne!(second.users[0].id, first.users[0].id);
    assert!(second.next_page_token.is_empty());

    // Field-mask update with an etag precondition.
    let stale = created.etag.clone();
    let updated = users
        .update_user(authed(
            token,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: created.id.clone(),
                    active: false,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["active".into()],
                }),
                etag: stale.clone(),
            },
        ))
        .await
        .expect("UpdateUser")
        .into_inner();
    assert!(!updated.active);
    assert_eq!(
        updated.user_name, "grpc@example.com",
        "unmasked fields are kept"
    );
    let err = users
        .update_user(authed(
            token,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: created.id.clone(),
                    active: true,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["active".into()],
                }),
                etag: stale,
            },
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);

    // Groups: membership RPCs.
    let mut groups = pb::group_service_client::GroupServiceClient::new(channel);
    let g = groups
        .create_group(authed(
            token,
            pb::CreateGroupRequest {
                group: Some(pb::Group {
                    display_name: "Engineering".into(),
                    ..Default::default()
                }),
                view: 0,
            },
        ))
        .await
        .expect("CreateGroup")
        .into_inner();
    let g = groups
        .add_group_members(authed(
            token,
            pb::GroupMembersRequest {
                group_id: g.id.clone(),
                user_ids: vec![created.id.clone()],
                view: pb::GroupView::Full as i32,
            },
        ))
        .await
        .expect("AddGroupMembers")
        .into_inner();
    assert_eq!(g.member_count, 1);
    assert_eq!(g.members[0].user_id, created.id);
    let err = users
        .get_user(authed(
            token,
            pb::GetUserRequest {
                id: "missing".into(),
            },
        ))
        .await
        .expect_err("missing user");
    assert_eq!(err.code(), Code::NotFound);
}

async fn reflection_and_health(server: &TestServer) {
    let channel = server.channel().await;
    // v1alpha: what the grpcurl most people have speaks.
    let mut alpha =
        tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient::new(
            channel.clone(),
        );
    let req = tonic_reflection::pb::v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut stream = alpha
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let resp = stream.next().await.expect("a response").expect("ok");
    let names: Vec<String> = match resp.message_response {
        Some(tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(l)) => {
            l.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer {other:?}"),
    };
    for svc in [
        "roster.v1.UserService",
        "roster.v1.GroupService",
        "roster.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == svc),
            "{svc} missing from {names:?}"
        );
    }
    // v1 too.
    let mut v1 = tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(
        channel.clone(),
    );
    let req = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::FileContainingSymbol(
                "roster.v1.UserService".into(),
            ),
        ),
    };
    let mut stream = v1
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection v1")
        .into_inner();
    let resp = stream.next().await.expect("a response").expect("ok");
    assert!(matches!(
        resp.message_response,
        Some(tonic_reflection::pb::v1::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
    // Health.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

async fn token_rules(server: &TestServer) {
    let channel = server.channel().await;
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    // A SCIM token may not mint tokens, nor create tenants.
    let err = admin
        .create_token(authed(
            &server.scim_token,
            pb::CreateTokenRequest::default(),
        ))
        .await
        .expect_err("scim token minting");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = admin
        .create_tenant(authed(
            &server.scim_token,
            pb::CreateTenantRequest {
                name: "x".into(),
                password_policy: 0,
            },
        ))
        .await
        .expect_err("scim token creating a tenant");
    assert_eq!(err.code(), Code::PermissionDenied);
    // No token, and an unknown one.
    let err = admin
        .who_am_i(tonic::Request::new(pb::WhoAmIRequest {}))
        .await
        .expect_err("anonymous");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = admin
        .who_am_i(authed("rst_unknown", pb::WhoAmIRequest {}))
        .await
        .expect_err("unknown token");
    assert_eq!(err.code(), Code::Unauthenticated);

    // The operator mints an admin token for an admin user; the admin mints and revokes a
    // SCIM token.
    let admin_user = pb::user_service_client::UserServiceClient::new(channel.clone())
        .create_user(authed(
            &server.operator_token,
            pb::CreateUserRequest {
                user: Some(pb::User {
                    user_name: "ops@example.com".into(),
                    active: true,
                    role: Some("admin".into()),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("admin user")
        .into_inner();
    let admin_secret = admin
        .create_token(authed(
            &server.operator_token,
            pb::CreateTokenRequest {
                tenant: String::new(),
                kind: pb::TokenKind::Admin as i32,
                description: "ops".into(),
                user_id: admin_user.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("admin token")
        .into_inner()
        .secret;
    let minted = admin
        .create_token(authed(
            &admin_secret,
            pb::CreateTokenRequest {
                tenant: String::new(),
                kind: pb::TokenKind::Scim as i32,
                description: "okta".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("scim token")
        .into_inner();
    let token = minted.token.expect("token");
    assert!(minted.secret.starts_with(&token.prefix));
    // An admin of one tenant may not mint operator tokens.
    let err = admin
        .create_token(authed(
            &admin_secret,
            pb::CreateTokenRequest {
                tenant: String::new(),
                kind: pb::TokenKind::Operator as i32,
                description: String::new(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("operator minting by an admin");
    assert_eq!(err.code(), Code::PermissionDenied);
    let listed = admin
        .list_tokens(authed(&admin_secret, pb::ListTokensRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.tokens.iter().any(|t| t.id == token.id && !t.revoked));
    let (status, _) = send(
        server
            .http
            .get(format!("{}/Users", server.scim))
            .bearer_auth(&minted.secret),
    )
    .await;
    assert_eq!(status, 200);
    admin
        .revoke_token(authed(
            &admin_secret,
            pb::RevokeTokenRequest {
                id: token.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("revoke");
    let (status, _) = send(
        server
            .http
            .get(format!("{}/Users", server.scim))
            .bearer_auth(&minted.secret),
    )
    .await;
    assert_eq!(status, 401);
    let mut users = pb::user_service_client::UserServiceClient::new(channel);
    let err = users
        .list_users(authed(&minted.secret, pb::ListUsersRequest::default()))
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::Unauthenticated);

    // Regenerate: at once, or with a grace period during which both secrets work.
    let scim_ok = |secret: String| async move {
        let (status, _) = send(
            server
                .http
                .get(format!("{}/Users", server.scim))
                .bearer_auth(secret),
        )
        .await;
        status.as_u16()
    };
    let first = admin
        .create_token(authed(
            &admin_secret,
            pb::CreateTokenRequest {
                kind: pb::TokenKind::Scim as i32,
                description: "okta".into(),
                ttl_seconds: 3600,
                ..Default::default()
            },
        ))
        .await
        .expect("token with a ttl")
        .into_inner();
    let first_token = first.token.expect("token");
    assert!(first_token.expire_time.is_some());
    assert!(!first_token.created_by.is_empty());
    let second = admin
        .regenerate_token(authed(
            &admin_secret,
            pb::RegenerateTokenRequest {
                id: first_token.id.clone(),
                grace_seconds: 600,
                ..Default::default()
            },
        ))
        .await
        .expect("regenerate with grace")
        .into_inner();
    assert_eq!(
        scim_ok(first.secret.clone()).await,
        200,
        "the old secret works during the grace"
    );
    assert_eq!(scim_ok(second.secret.clone()).await, 200);
    let second_token = second.token.expect("token");
    assert_eq!(second_token.description, "okta");
    let third = admin
        .regenerate_token(authed(
            &admin_secret,
            pb::RegenerateTokenRequest {
                id: second_token.id.clone(),
                grace_seconds: 0,
                ..Default::default()
            },
        ))
        .await
        .expect("regenerate at once")
        .into_inner();
    assert_eq!(
        scim_ok(second.secret.clone()).await,
        401,
        "replaced without grace"
    );
    assert_eq!(scim_ok(third.secret.clone()).await, 200);
    // Revoking the one in its grace period cuts it at once.
    admin
        .revoke_token(authed(
            &admin_secret,
            pb::RevokeTokenRequest {
                id: first_token.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("revoke during grace");
    assert_eq!(scim_ok(first.secret.clone()).await, 401);
    let err = admin
        .regenerate_token(authed(
            &admin_secret,
            pb::RegenerateTokenRequest {
                id: second_token.id.clone(),
                grace_seconds: 0,
                ..Default::default()
            },
        ))
        .await
        .expect_err("a dead token");
    assert_eq!(err.code(), Code::NotFound);
    let err = admin
        .regenerate_token(authed(
            &server.scim_token,
            pb::RegenerateTokenRequest {
                id: third.token.map(|t| t.id).unwrap_or_default(),
                grace_seconds: 0,
                ..Default::default()
            },
        ))
        .await
        .expect_err("a SCIM token regenerating");
    assert_eq!(err.code(), Code::PermissionDenied);
}
