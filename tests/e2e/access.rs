//! Issue 4's access model: admin tokens bound to an admin user, service tokens (read-only or
//! read-write), HTTP Basic credentials, last-use times, the tenant's own roles and default
//! role, and the tenant's SCIM base URL.

use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::json;
use tonic::Code;
use tonic::transport::Channel;

use crate::harness::{TestServer, authed, on_both_backends, send};

on_both_backends!(
    admin_tokens_follow_their_users_role,
    service_tokens_read_or_write_but_never_administer,
    basic_credentials_for_okta,
    tenants_own_roles_and_default_role,
);

async fn create_user(channel: &Channel, token: &str, name: &str, role: Option<&str>) -> pb::User {
    pb::user_service_client::UserServiceClient::new(channel.clone())
        .create_user(authed(
            token,
            pb::CreateUserRequest {
                user: Some(pb::User {
                    user_name: name.into(),
                    active: true,
                    role: role.map(str::to_owned),
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("create user")
        .into_inner()
}

async fn mint(server: &TestServer, req: pb::CreateTokenRequest) -> pb::CreateTokenResponse {
    pb::admin_service_client::AdminServiceClient::new(server.channel().await)
        .create_token(authed(&server.operator_token, req))
        .await
        .expect("create token")
        .into_inner()
}

async fn admin_tokens_follow_their_users_role(server: &TestServer) {
    let channel = server.channel().await;
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    let mut users = pb::user_service_client::UserServiceClient::new(channel.clone());
    let op = &server.operator_token;
    let boss = create_user(&channel, op, "boss@example.com", Some("admin")).await;
    let dev = create_user(&channel, op, "dev@example.com", Some("developer")).await;

    // An admin token needs a user, and that user must be an active admin.
    for (user_id, what) in [("", "no user"), (dev.id.as_str(), "a developer")] {
        let err = admin
            .create_token(authed(
                op,
                pb::CreateTokenRequest {
                    kind: pb::TokenKind::Admin as i32,
                    user_id: user_id.into(),
                    ..Default::default()
                },
            ))
            .await
            .expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
    }
    let secret = mint(
        server,
        pb::CreateTokenRequest {
            kind: pb::TokenKind::Admin as i32,
            user_id: boss.id.clone(),
            description: "boss's console".into(),
            ..Default::default()
        },
    )
    .await
    .secret;
    let who = admin
        .who_am_i(authed(&secret, pb::WhoAmIRequest {}))
        .await
        .expect("whoami")
        .into_inner();
    assert!(who.admin);
    assert_eq!(who.user_id, boss.id);
    admin
        .list_tokens(authed(&secret, pb::ListTokensRequest::default()))
        .await
        .expect("an admin lists tokens");

    // Demote the user (as Okta would, over SCIM): the token stops granting admin at once.
    let (status, body) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{}", boss.id))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:role", "value": "reporting"}]
            })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let err = admin
        .list_tokens(authed(&secret, pb::ListTokensRequest::default()))
        .await
        .expect_err("a demoted admin's token");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = users
        .list_users(authed(&secret, pb::ListUsersRequest::default()))
        .await
        .expect_err("a demoted admin's token reading users");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = admin
        .who_am_i(authed(&secret, pb::WhoAmIRequest {}))
        .await
        .expect_err("a demoted admin's token asking who it is");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Admin again through a group mapped to admin: the token works again.
    let mut groups = pb::group_service_client::GroupServiceClient::new(channel.clone());
    let g = groups
        .create_group(authed(
            op,
            pb::CreateGroupRequest {
                group: Some(pb::Group {
                    display_name: "App - Admin".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("group")
        .into_inner();
    pb::access_service_client::AccessServiceClient::new(channel.clone())
        .set_group_role(authed(
            op,
            pb::SetGroupRoleRequest {
                group_id: g.id.clone(),
                role: "admin".into(),
                priority: 1,
            },
        ))
        .await
        .expect("map");
    users
        .update_user(authed(
            op,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: boss.id.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["role".into()],
                }),
                etag: String::new(),
            },
        ))
        .await
        .expect("clear the role attribute");
    groups
        .add_group_members(authed(
            op,
            pb::GroupMembersRequest {
                group_id: g.id.clone(),
                user_ids: vec![boss.id.clone()],
                view: 0,
            },
        ))
        .await
        .expect("join the admin group");
    admin
        .list_tokens(authed(&secret, pb::ListTokensRequest::default()))
        .await
        .expect("admin again through the group");

    // Deactivated: no longer an admin.
    users
        .update_user(authed(
            op,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: boss.id.clone(),
                    active: false,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["active".into()],
                }),
                etag: String::new(),
            },
        ))
        .await
        .expect("deactivate");
    let err = admin
        .create_token(authed(
            &secret,
            pb::CreateTokenRequest {
                kind: pb::TokenKind::Scim as i32,
                ..Default::default()
            },
        ))
        .await
        .expect_err("a deactivated admin's token");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Listed with its user, and when it was last used.
    let listed = admin
        .list_tokens(authed(op, pb::ListTokensRequest::default()))
        .await
        .expect("list")
        .into_inner();
    let t = listed
        .tokens
        .iter()
        .find(|t| t.description == "boss's console")
        .expect("the admin token is listed");
    assert_eq!(t.user_id, boss.id);
    assert_eq!(t.kind, pb::TokenKind::Admin as i32);
    assert!(t.last_use_time.is_some(), "{t:?}");
    let unused = mint(
        server,
        pb::CreateTokenRequest {
            kind: pb::TokenKind::Scim as i32,
            ..Default::default()
        },
    )
    .await;
    let never = unused.token.expect("token");
    assert!(never.last_use_time.is_none(), "never used: {never:?}");
}

async fn service_tokens_read_or_write_but_never_administer(server: &TestServer) {
    let channel = server.channel().await;
    let mut users = pb::user_service_client::UserServiceClient::new(channel.clone());
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    let mut access = pb::access_service_client::AccessServiceClient::new(channel.clone());
    let ada = create_user(&channel, &server.operator_token, "ada@example.com", None).await;

    // `read_only` belongs to service tokens only.
    let err = admin
        .create_token(authed(
            &server.operator_token,
            pb::CreateTokenRequest {
                kind: pb::TokenKind::Scim as i32,
                read_only: true,
                ..Default::default()
            },
        ))
        .await
        .expect_err("a read-only SCIM token");
    assert_eq!(err.code(), Code::InvalidArgument);

    let reader = mint(
        server,
        pb::CreateTokenRequest {
            kind: pb::TokenKind::Service as i32,
            read_only: true,
            description: "billing service".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(reader.token.as_ref().is_some_and(|t| t.read_only));
    let reader = reader.secret;
    let found = users
        .get_user(authed(&reader, pb::GetUserRequest { id: ada.id.clone() }))
        .await
        .expect("a read-only token reads")
        .into_inner();
    assert_eq!(found.user_name, "ada@example.com");
    let allowed = access
        .check_permission(authed(
            &reader,
            pb::CheckPermissionRequest {
                user_id: ada.id.clone(),
                permission: "reporting.view".into(),
            },
        ))
        .await
        .expect("a read-only token checks permissions")
        .into_inner();
    assert!(allowed.allowed);
    let err = users
        .create_user(authed(
            &reader,
            pb::CreateUserRequest {
                user: Some(pb::User {
                    user_name: "nope@example.com".into(),
                    active: true,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect_err("a read-only token writing");
    assert_eq!(err.code(), Code::PermissionDenied);
    let (status, body) = send(
        server
            .http
            .get(format!(
                "{}/Users?filter=userName eq \"nope@example.com\"",
                server.scim
            ))
            .bearer_auth(&server.scim_token),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["totalResults"].as_i64()),
        (200, Some(0))
    );

    let writer = mint(
        server,
        pb::CreateTokenRequest {
            kind: pb::TokenKind::Service as i32,
            description: "signup service".into(),
            ..Default::default()
        },
    )
    .await
    .secret;
    create_user(&channel, &writer, "grace@example.com", None).await;
    for secret in [&reader, &writer] {
        let err = admin
            .create_token(authed(
                secret,
                pb::CreateTokenRequest {
                    kind: pb::TokenKind::Scim as i32,
                    ..Default::default()
                },
            ))
            .await
            .expect_err("a service token minting");
        assert_eq!(err.code(), Code::PermissionDenied);
        let err = access
            .create_role(authed(
                secret,
                pb::CreateRoleRequest {
                    name: "x".into(),
                    permissions: vec!["x.view".into()],
                    ..Default::default()
                },
            ))
            .await
            .expect_err("a service token adding a role");
        assert_eq!(err.code(), Code::PermissionDenied);
    }
}

async fn basic_credentials_for_okta(server: &TestServer) {
    let channel = server.channel().await;
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel);
    let err = admin
        .create_token(authed(
            &server.operator_token,
            pb::CreateTokenRequest {
                kind: pb::TokenKind::Service as i32,
                basic_auth: true,
                ..Default::default()
            },
        ))
        .await
        .expect_err("Basic credentials for a service token");
    assert_eq!(err.code(), Code::InvalidArgument);
    let created = mint(
        server,
        pb::CreateTokenRequest {
            kind: pb::TokenKind::Scim as i32,
            basic_auth: true,
            description: "okta basic".into(),
            ..Default::default()
        },
    )
    .await;
    let token = created.token.expect("token");
    assert!(!token.basic_username.is_empty());
    let get = |user: String, password: String| async move {
        let (status, body) = send(
            server
                .http
                .get(format!("{}/Users", server.scim))
                .basic_auth(user, Some(password)),
        )
        .await;
        (status.as_u16(), body)
    };
    let (status, body) = get(token.basic_username.clone(), created.secret.clone()).await;
    assert_eq!(status, 200, "{body}");
    // Again: served from what this replica verified, with the same answer.
    assert_eq!(
        get(token.basic_username.clone(), created.secret.clone())
            .await
            .0,
        200
    );
    let (status, body) = get(token.basic_username.clone(), format!("{}x", created.secret)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        get("roster-unknown".into(), created.secret.clone()).await.0,
        401
    );
    // The password is not a bearer token.
    let (status, _) = send(
        server
            .http
            .get(format!("{}/Users", server.scim))
            .bearer_auth(&created.secret),
    )
    .await;
    assert_eq!(status, 401);
    // Only a hash is stored: the listing shows the user name and prefix, never the secret.
    let listed = admin
        .list_tokens(authed(
            &server.operator_token,
            pb::ListTokensRequest::default(),
        ))
        .await
        .expect("list")
        .into_inner();
    let t = listed
        .tokens
        .iter()
        .find(|t| t.id == token.id)
        .expect("listed");
    assert_eq!(t.basic_username, token.basic_username);
    assert!(format!("{listed:?}").find(&created.secret).is_none());

    // Regenerated: new credentials; the old ones stop at once.
    let new = admin
        .regenerate_token(authed(
            &server.operator_token,
            pb::RegenerateTokenRequest {
                id: token.id.clone(),
                grace_seconds: 0,
                ..Default::default()
            },
        ))
        .await
        .expect("regenerate")
        .into_inner();
    let new_token = new.token.expect("token");
    assert!(!new_token.basic_username.is_empty());
    assert_eq!(
        get(new_token.basic_username.clone(), new.secret.clone())
            .await
            .0,
        200
    );
    assert_eq!(get(token.basic_username, created.secret).await.0, 401);
    admin
        .revoke_token(authed(
            &server.operator_token,
            pb::RevokeTokenRequest {
                id: new_token.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("revoke");
    assert_eq!(get(new_token.basic_username, new.secret).await.0, 401);
}

async fn tenants_own_roles_and_default_role(server: &TestServer) {
    let channel = server.channel().await;
    let mut access = pb::access_service_client::AccessServiceClient::new(channel.clone());
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    let op = &server.operator_token;

    // The tenant reports its SCIM base URL and default role.
    let who = admin
        .who_am_i(authed(op, pb::WhoAmIRequest {}))
        .await
        .expect("whoami")
        .into_inner();
    let tenant = who.tenant.expect("tenant");
    assert_eq!(tenant.scim_base_url, server.scim);
    assert_eq!(tenant.default_role, "reporting");

    // A role of the tenant's own, usable from SCIM like the built-in ones.
    let err = access
        .create_role(authed(
            &server.scim_token,
            pb::CreateRoleRequest {
                name: "billing".into(),
                permissions: vec!["billing.manage".into()],
                ..Default::default()
            },
        ))
        .await
        .expect_err("a SCIM token adding a role");
    assert_eq!(err.code(), Code::PermissionDenied);
    for (name, permissions) in [
        ("Billing", vec!["billing.manage"]),
        ("billing", vec!["billing manage"]),
        ("admin", vec!["x.view"]),
    ] {
        let err = access
            .create_role(authed(
                op,
                pb::CreateRoleRequest {
                    name: name.into(),
                    permissions: permissions.into_iter().map(str::to_owned).collect(),
                    ..Default::default()
                },
            ))
            .await
            .expect_err(name);
        assert!(
            matches!(err.code(), Code::InvalidArgument | Code::AlreadyExists),
            "{name}: {err:?}"
        );
    }
    let billing = access
        .create_role(authed(
            op,
            pb::CreateRoleRequest {
                name: "billing".into(),
                description: "Invoices".into(),
                permissions: vec!["billing.manage".into(), "reporting.view".into()],
            },
        ))
        .await
        .expect("create role")
        .into_inner();
    assert!(!billing.built_in);
    let (status, user) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:roster:2.0:User"],
        "userName": "payer@example.com",
        "urn:ietf:params:scim:schemas:extension:roster:2.0:User": {"role": "billing"}
    })))
    .await;
    assert_eq!(status, 201, "{user}");
    let payer = user["id"].as_str().expect("id").to_owned();
    let checker = access.clone();
    let check = |user: String, permission: &'static str| {
        let mut access = checker.clone();
        async move {
            access
                .check_permission(authed(
                    op,
                    pb::CheckPermissionRequest {
                        user_id: user,
                        permission: permission.into(),
                    },
                ))
                .await
                .expect("check")
                .into_inner()
                .allowed
        }
    };
    assert!(
        check(payer.clone(), "billing.view").await,
        "manage implies view"
    );
    assert!(!check(payer.clone(), "templates.manage").await);
    // An unknown role is refused, naming the tenant's roles too.
    let (status, body) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:roster:2.0:User"],
        "userName": "nobody@example.com",
        "urn:ietf:params:scim:schemas:extension:roster:2.0:User": {"role": "auditor"}
    })))
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("billing")),
        "{body}"
    );

    // In use: cannot go. Built-in: cannot change.
    let err = access
        .delete_role(authed(
            op,
            pb::DeleteRoleRequest {
                name: "billing".into(),
            },
        ))
        .await
        .expect_err("a role in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = access
        .update_role(authed(
            op,
            pb::UpdateRoleRequest {
                name: "reporting".into(),
                permissions: vec!["*".into()],
                ..Default::default()
            },
        ))
        .await
        .expect_err("a built-in role");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let updated = access
        .update_role(authed(
            op,
            pb::UpdateRoleRequest {
                name: "billing".into(),
                description: "Invoices and templates".into(),
                permissions: vec!["billing.manage".into(), "templates.manage".into()],
            },
        ))
        .await
        .expect("update role")
        .into_inner();
    assert_eq!(updated.permissions.len(), 2);
    assert!(check(payer.clone(), "templates.manage").await);

    // The default role: a user with no role and no group takes it, at once.
    let (status, plain) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "plain@example.com"
    })))
    .await;
    assert_eq!(status, 201, "{plain}");
    let plain = plain["id"].as_str().expect("id").to_owned();
    assert!(!check(plain.clone(), "api_keys.manage").await);
    let err = access
        .set_default_role(authed(
            op,
            pb::SetDefaultRoleRequest {
                role: "nope".into(),
            },
        ))
        .await
        .expect_err("an unknown default");
    assert_eq!(err.code(), Code::InvalidArgument);
    let role = access
        .set_default_role(authed(
            op,
            pb::SetDefaultRoleRequest {
                role: "developer".into(),
            },
        ))
        .await
        .expect("default role")
        .into_inner();
    assert!(role.is_default);
    assert!(check(plain.clone(), "api_keys.manage").await);
    let (status, body) = send(server.scim_req(Method::GET, &format!("/Users/{plain}"))).await;
    assert_eq!(status, 200);
    let ext = &body["urn:ietf:params:scim:schemas:extension:roster:2.0:User"];
    assert_eq!(
        (ext["effectiveRole"].as_str(), ext["roleSource"].as_str()),
        (Some("developer"), Some("default")),
        "{body}"
    );
    let roles = access
        .list_roles(authed(&server.scim_token, pb::ListRolesRequest {}))
        .await
        .expect("list roles")
        .into_inner()
        .roles;
    let names: Vec<_> = roles
        .iter()
        .map(|r| (r.name.as_str(), r.is_default, r.built_in))
        .collect();
    assert_eq!(
        names,
        vec![
            ("admin", false, true),
            ("developer", true, true),
            ("templates", false, true),
            ("reporting", false, true),
            ("billing", false, false),
        ]
    );
    // Free again, then removed.
    send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{payer}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:role"}]
            })),
    )
    .await;
    access
        .delete_role(authed(
            op,
            pb::DeleteRoleRequest {
                name: "billing".into(),
            },
        ))
        .await
        .expect("delete an unused role");
    assert!(!check(payer, "billing.view").await);
}
