//! Issue 8's authorization: the whole policy matrix (every RPC of the contract × every kind of
//! token × own tenant / another tenant) over real gRPC against `domain::policy`, one SCIM-side
//! check, and the regressions of findings 1, 7, 8a and 10.

use prost::Message;
use roster_proto::v1 as pb;
use roster_service::domain::policy::{Caller, Rpc, Tenancy};
use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::harness::{TestServer, assert_scim_error, authed, on_both_backends, send};

on_both_backends!(
    every_rpc_by_every_token_on_both_tenants_follows_the_policy,
    scim_routes_follow_the_same_policy,
    admins_never_touch_operator_tokens,
    the_operator_cuts_another_tenants_token,
    an_out_of_range_ttl_is_refused,
    service_tokens_never_change_roles,
);

const ROLE_EXT: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

fn users(c: &Channel) -> pb::user_service_client::UserServiceClient<Channel> {
    pb::user_service_client::UserServiceClient::new(c.clone())
}
fn groups(c: &Channel) -> pb::group_service_client::GroupServiceClient<Channel> {
    pb::group_service_client::GroupServiceClient::new(c.clone())
}
fn access(c: &Channel) -> pb::access_service_client::AccessServiceClient<Channel> {
    pb::access_service_client::AccessServiceClient::new(c.clone())
}
fn admin(c: &Channel) -> pb::admin_service_client::AdminServiceClient<Channel> {
    pb::admin_service_client::AdminServiceClient::new(c.clone())
}

async fn create_user(c: &Channel, token: &str, name: &str, role: Option<&str>) -> pb::User {
    users(c)
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
        .unwrap_or_else(|e| panic!("create user {name}: {e:?}"))
        .into_inner()
}

async fn create_group(c: &Channel, token: &str, name: &str) -> pb::Group {
    groups(c)
        .create_group(authed(
            token,
            pb::CreateGroupRequest {
                group: Some(pb::Group {
                    display_name: name.into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|e| panic!("create group {name}: {e:?}"))
        .into_inner()
}

/// Mints a token with the operator token.
async fn mint(server: &TestServer, req: pb::CreateTokenRequest) -> pb::CreateTokenResponse {
    admin(&server.channel().await)
        .create_token(authed(&server.operator_token, req))
        .await
        .unwrap_or_else(|e| panic!("mint: {e:?}"))
        .into_inner()
}

fn kind_req(kind: pb::TokenKind) -> pb::CreateTokenRequest {
    pb::CreateTokenRequest {
        kind: kind as i32,
        ..Default::default()
    }
}

/// What the matrix's requests aim at in one tenant: real ids, so that a call that passes
/// authorization does (or finds nothing to do) in the tenant it reaches.
struct Target {
    tenant_id: String,
    tenant_name: String,
    user_id: String,
    group_id: String,
    /// A SCIM token: one every caller that may manage tokens may act on.
    token_id: String,
}

async fn target(server: &TestServer, c: &Channel, tenant: &pb::Tenant, tag: &str) -> Target {
    let scim = mint(
        server,
        pb::CreateTokenRequest {
            tenant: tenant.name.clone(),
            kind: pb::TokenKind::Scim as i32,
            description: format!("target in {tag}"),
            ..Default::default()
        },
    )
    .await;
    let user = create_user(c, &scim.secret, &format!("target-{tag}@example.com"), None).await;
    let group = create_group(c, &scim.secret, &format!("Target {tag}")).await;
    Target {
        tenant_id: tenant.id.clone(),
        tenant_name: tenant.name.clone(),
        user_id: user.id,
        group_id: group.id,
        token_id: scim.token.expect("token").id,
    }
}

/// Calls `rpc` with `token`, with a minimal request aimed at `t`. Exhaustive: an RPC the
/// policy knows but this does not fails to compile.
async fn invoke(rpc: Rpc, c: &Channel, token: &str, t: &Target) -> Result<(), Status> {
    let user = || pb::User {
        id: t.user_id.clone(),
        ..Default::default()
    };
    match rpc {
        Rpc::CreateUser => users(c)
            .create_user(authed(token, pb::CreateUserRequest { user: None }))
            .await
            .map(drop),
        Rpc::GetUser => users(c)
            .get_user(authed(
                token,
                pb::GetUserRequest {
                    id: t.user_id.clone(),
                },
            ))
            .await
            .map(drop),
        Rpc::ListUsers => users(c)
            .list_users(authed(token, pb::ListUsersRequest::default()))
            .await
            .map(drop),
        Rpc::UpdateUser => users(c)
            .update_user(authed(
                token,
                pb::UpdateUserRequest {
                    user: Some(user()),
                    update_mask: None,
                    etag: String::new(),
                },
            ))
            .await
            .map(drop),
        Rpc::DeleteUser => users(c)
            .delete_user(authed(
                token,
                pb::DeleteUserRequest {
                    id: t.user_id.clone(),
                    etag: String::new(),
                },
            ))
            .await
            .map(drop),
        Rpc::CreateGroup => groups(c)
            .create_group(authed(token, pb::CreateGroupRequest::default()))
            .await
            .map(drop),
        Rpc::GetGroup => groups(c)
            .get_group(authed(
                token,
                pb::GetGroupRequest {
                    id: t.group_id.clone(),
                    view: 0,
                },
            ))
            .await
            .map(drop),
        Rpc::ListGroups => groups(c)
            .list_groups(authed(token, pb::ListGroupsRequest::default()))
            .await
            .map(drop),
        Rpc::UpdateGroup => groups(c)
            .update_group(authed(
                token,
                pb::UpdateGroupRequest {
                    group: Some(pb::Group {
                        id: t.group_id.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::DeleteGroup => groups(c)
            .delete_group(authed(
                token,
                pb::DeleteGroupRequest {
                    id: t.group_id.clone(),
                    etag: String::new(),
                },
            ))
            .await
            .map(drop),
        Rpc::AddGroupMembers => groups(c)
            .add_group_members(authed(
                token,
                pb::GroupMembersRequest {
                    group_id: t.group_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::RemoveGroupMembers => groups(c)
            .remove_group_members(authed(
                token,
                pb::GroupMembersRequest {
                    group_id: t.group_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::ListGroupMembers => groups(c)
            .list_group_members(authed(
                token,
                pb::ListGroupMembersRequest {
                    group_id: t.group_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::GetEffectiveRole => access(c)
            .get_effective_role(authed(
                token,
                pb::GetEffectiveRoleRequest {
                    user_id: t.user_id.clone(),
                },
            ))
            .await
            .map(drop),
        Rpc::CheckPermission => access(c)
            .check_permission(authed(
                token,
                pb::CheckPermissionRequest {
                    user_id: t.user_id.clone(),
                    permission: String::new(),
                },
            ))
            .await
            .map(drop),
        Rpc::ListRoles => access(c)
            .list_roles(authed(token, pb::ListRolesRequest {}))
            .await
            .map(drop),
        Rpc::CreateRole => access(c)
            .create_role(authed(token, pb::CreateRoleRequest::default()))
            .await
            .map(drop),
        Rpc::UpdateRole => access(c)
            .update_role(authed(token, pb::UpdateRoleRequest::default()))
            .await
            .map(drop),
        Rpc::DeleteRole => access(c)
            .delete_role(authed(
                token,
                pb::DeleteRoleRequest {
                    name: "no-such-role".into(),
                },
            ))
            .await
            .map(drop),
        Rpc::SetDefaultRole => access(c)
            .set_default_role(authed(token, pb::SetDefaultRoleRequest::default()))
            .await
            .map(drop),
        Rpc::SetGroupRole => access(c)
            .set_group_role(authed(
                token,
                pb::SetGroupRoleRequest {
                    group_id: t.group_id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::ListGroupRoles => access(c)
            .list_group_roles(authed(token, pb::ListGroupRolesRequest {}))
            .await
            .map(drop),
        Rpc::RemoveGroupRole => access(c)
            .remove_group_role(authed(
                token,
                pb::RemoveGroupRoleRequest {
                    group_id: t.group_id.clone(),
                },
            ))
            .await
            .map(drop),
        Rpc::CreateTenant => admin(c)
            .create_tenant(authed(token, pb::CreateTenantRequest::default()))
            .await
            .map(drop),
        Rpc::ListTenants => admin(c)
            .list_tenants(authed(token, pb::ListTenantsRequest {}))
            .await
            .map(drop),
        Rpc::UpdateTenant => admin(c)
            .update_tenant(authed(
                token,
                pb::UpdateTenantRequest {
                    tenant: Some(pb::Tenant {
                        id: t.tenant_id.clone(),
                        ..Default::default()
                    }),
                    update_mask: None,
                },
            ))
            .await
            .map(drop),
        Rpc::WhoAmI => admin(c)
            .who_am_i(authed(token, pb::WhoAmIRequest {}))
            .await
            .map(drop),
        Rpc::CreateToken => admin(c)
            .create_token(authed(
                token,
                pb::CreateTokenRequest {
                    tenant: t.tenant_name.clone(),
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        Rpc::ListTokens => admin(c)
            .list_tokens(authed(
                token,
                pb::ListTokensRequest {
                    tenant: t.tenant_name.clone(),
                },
            ))
            .await
            .map(drop),
        Rpc::RevokeToken => admin(c)
            .revoke_token(authed(
                token,
                pb::RevokeTokenRequest {
                    id: t.token_id.clone(),
                    tenant: t.tenant_name.clone(),
                },
            ))
            .await
            .map(drop),
        Rpc::RegenerateToken => admin(c)
            .regenerate_token(authed(
                token,
                pb::RegenerateTokenRequest {
                    id: t.token_id.clone(),
                    grace_seconds: 0,
                    tenant: t.tenant_name.clone(),
                },
            ))
            .await
            .map(drop),
    }
}

/// Every RPC of the wire contract, from its descriptors (each must be in the policy).
fn contract() -> Vec<Rpc> {
    let set = prost_types::FileDescriptorSet::decode(roster_proto::FILE_DESCRIPTOR_SET)
        .expect("descriptor set");
    let mut rpcs = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "roster.v1") {
        for service in &file.service {
            let qualified = format!("roster.v1.{}", service.name());
            for method in &service.method {
                rpcs.push(
                    Rpc::from_name(&qualified, method.name()).unwrap_or_else(|| {
                        panic!("{qualified}/{} is not in the policy", method.name())
                    }),
                );
            }
        }
    }
    assert_eq!(
        rpcs.len(),
        Rpc::ALL.len(),
        "the contract and the policy differ"
    );
    rpcs
}

/// Whether the policy lets `caller` (`None`: an admin token whose user is no longer an active
/// admin) call `rpc` on its own tenant or another.
fn allowed(rpc: Rpc, caller: Option<Caller>, other: bool) -> bool {
    let Some(caller) = caller else {
        return false;
    };
    let rule = rpc.rule();
    rule.callers.contains(&caller)
        && match (other, rule.tenancy) {
            (false, _) | (true, Tenancy::Own | Tenancy::Every) => true,
            (true, Tenancy::Named { other }) => other.contains(&caller),
        }
}

async fn every_rpc_by_every_token_on_both_tenants_follows_the_policy(server: &TestServer) {
    let c = server.channel().await;
    let op = &server.operator_token;
    let home = admin(&c)
        .who_am_i(authed(op, pb::WhoAmIRequest {}))
        .await
        .expect("whoami")
        .into_inner()
        .tenant
        .expect("tenant");
    let acme = admin(&c)
        .create_tenant(authed(
            op,
            pb::CreateTenantRequest {
                name: "acme".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("create acme")
        .into_inner();

    // The callers, all of the operator's tenant.
    let boss = create_user(&c, op, "boss@example.com", Some("admin")).await;
    let admin_token = mint(
        server,
        pb::CreateTokenRequest {
            user_id: boss.id.clone(),
            ..kind_req(pb::TokenKind::Admin)
        },
    )
    .await
    .secret;
    let exboss = create_user(&c, op, "exboss@example.com", Some("admin")).await;
    let demoted = mint(
        server,
        pb::CreateTokenRequest {
            user_id: exboss.id.clone(),
            ..kind_req(pb::TokenKind::Admin)
        },
    )
    .await
    .secret;
    users(&c)
        .update_user(authed(
            op,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: exboss.id.clone(),
                    role: Some("reporting".into()),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["role".into()],
                }),
                etag: String::new(),
            },
        ))
        .await
        .expect("demote exboss");
    let reader = mint(
        server,
        pb::CreateTokenRequest {
            read_only: true,
            ..kind_req(pb::TokenKind::Service)
        },
    )
    .await
    .secret;
    let writer = mint(server, kind_req(pb::TokenKind::Service)).await.secret;
    let callers: [(Option<Caller>, &str); 6] = [
        (Some(Caller::Scim), &server.scim_token),
        (Some(Caller::ServiceReadOnly), &reader),
        (Some(Caller::ServiceReadWrite), &writer),
        (Some(Caller::Admin), &admin_token),
        (Some(Caller::Operator), op),
        (None, &demoted),
    ];

    let own = target(server, &c, &home, "home").await;
    let other = target(server, &c, &acme, "acme").await;

    let rpcs = contract();
    let mut wrong = Vec::new();
    for rpc in &rpcs {
        for (caller, token) in &callers {
            for (is_other, t) in [(false, &own), (true, &other)] {
                let outcome = invoke(*rpc, &c, token, t).await;
                let code = outcome.as_ref().err().map(Status::code);
                let denied = matches!(code, Some(Code::PermissionDenied | Code::Unauthenticated));
                let expected = allowed(*rpc, *caller, is_other);
                let tenant = if is_other {
                    "another tenant"
                } else {
                    "its tenant"
                };
                if denied == expected {
                    wrong.push(format!(
                        "{rpc} by {caller:?} on {tenant}: policy {}, got {outcome:?}",
                        if expected { "allows" } else { "denies" }
                    ));
                }
                // Let through, a minimal request is answered, never with a failure of ours.
                if matches!(code, Some(Code::Internal | Code::Unknown)) {
                    wrong.push(format!("{rpc} by {caller:?} on {tenant}: {outcome:?}"));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} calls disagree with the policy:\n{}",
        wrong.len(),
        rpcs.len() * callers.len() * 2,
        wrong.join("\n")
    );

    // Nothing reached acme but what the operator did there by name (its token, revoked or
    // regenerated): its user and group are untouched.
    let acme_scim = mint(
        server,
        pb::CreateTokenRequest {
            tenant: "acme".into(),
            ..kind_req(pb::TokenKind::Scim)
        },
    )
    .await
    .secret;
    users(&c)
        .get_user(authed(
            &acme_scim,
            pb::GetUserRequest {
                id: other.user_id.clone(),
            },
        ))
        .await
        .expect("acme's user is still there");
    groups(&c)
        .get_group(authed(
            &acme_scim,
            pb::GetGroupRequest {
                id: other.group_id.clone(),
                view: 0,
            },
        ))
        .await
        .expect("acme's group is still there");
}

async fn scim_routes_follow_the_same_policy(server: &TestServer) {
    let c = server.channel().await;
    let reader = mint(
        server,
        pb::CreateTokenRequest {
            read_only: true,
            ..kind_req(pb::TokenKind::Service)
        },
    )
    .await
    .secret;
    let writer = mint(server, kind_req(pb::TokenKind::Service)).await.secret;
    let post = |token: String, name: &str, role: Option<&str>| {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
        });
        if let Some(role) = role {
            body[ROLE_EXT] = json!({ "role": role });
        }
        send(
            server
                .http
                .post(format!("{}/Users", server.scim))
                .bearer_auth(token)
                .json(&body),
        )
    };
    let (status, body) = post(reader.clone(), "ro@example.com", None).await;
    assert_eq!(status, 403, "{body}");
    assert_scim_error(&body, 403, None);
    let (status, body) = post(writer.clone(), "boss@example.com", Some("admin")).await;
    assert_eq!(
        status, 403,
        "a service token granting admin over SCIM: {body}"
    );
    assert_scim_error(&body, 403, None);
    let (status, body) = post(writer.clone(), "plain@example.com", None).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = send(
        server
            .http
            .get(format!("{}/Users", server.scim))
            .bearer_auth(&reader),
    )
    .await;
    assert_eq!(status, 200, "a read-only token reads over SCIM: {body}");
    assert_eq!(body["totalResults"], 1, "only the plain user: {body}");
    // The SCIM token grants roles, as Okta does.
    let (status, body) = post(
        server.scim_token.clone(),
        "okta-admin@example.com",
        Some("admin"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The SCIM token is no admin over gRPC.
    let err = admin(&c)
        .list_tokens(authed(&server.scim_token, pb::ListTokensRequest::default()))
        .await
        .expect_err("a SCIM token listing tokens");
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Finding 1: an admin of the operator's tenant saw the operator token and regenerated it
/// into a new operator secret (or revoked it).
async fn admins_never_touch_operator_tokens(server: &TestServer) {
    let c = server.channel().await;
    let op = &server.operator_token;
    let boss = create_user(&c, op, "boss@example.com", Some("admin")).await;
    let boss_token = mint(
        server,
        pb::CreateTokenRequest {
            user_id: boss.id.clone(),
            ..kind_req(pb::TokenKind::Admin)
        },
    )
    .await
    .secret;
    let op_id = admin(&c)
        .who_am_i(authed(op, pb::WhoAmIRequest {}))
        .await
        .expect("whoami")
        .into_inner()
        .token_id;

    // Not listed to the admin; listed to the operator.
    let listed = admin(&c)
        .list_tokens(authed(&boss_token, pb::ListTokensRequest::default()))
        .await
        .expect("an admin lists tokens")
        .into_inner()
        .tokens;
    assert!(
        listed
            .iter()
            .all(|t| t.kind != pb::TokenKind::Operator as i32),
        "an admin sees operator tokens: {listed:?}"
    );
    assert!(listed.iter().any(|t| t.kind == pb::TokenKind::Admin as i32));
    let all = admin(&c)
        .list_tokens(authed(op, pb::ListTokensRequest::default()))
        .await
        .expect("the operator lists tokens")
        .into_inner()
        .tokens;
    assert!(all.iter().any(|t| t.id == op_id));

    // Neither regenerated nor revoked by the admin.
    let err = admin(&c)
        .regenerate_token(authed(
            &boss_token,
            pb::RegenerateTokenRequest {
                id: op_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("an admin regenerating the operator token");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let err = admin(&c)
        .revoke_token(authed(
            &boss_token,
            pb::RevokeTokenRequest {
                id: op_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("an admin revoking the operator token");
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    admin(&c)
        .list_tenants(authed(op, pb::ListTenantsRequest {}))
        .await
        .expect("the operator token still works");
    let alive = admin(&c)
        .list_tokens(authed(op, pb::ListTokensRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .tokens;
    assert!(
        alive.iter().any(|t| t.id == op_id && !t.revoked),
        "the operator token is live and alone: {alive:?}"
    );
    assert_eq!(
        alive
            .iter()
            .filter(|t| t.kind == pb::TokenKind::Operator as i32)
            .count(),
        1,
        "no new operator token: {alive:?}"
    );

    // The admin still acts on the kinds it may create.
    let scim = mint(server, kind_req(pb::TokenKind::Scim)).await;
    let regenerated = admin(&c)
        .regenerate_token(authed(
            &boss_token,
            pb::RegenerateTokenRequest {
                id: scim.token.expect("token").id,
                ..Default::default()
            },
        ))
        .await
        .expect("an admin regenerates a SCIM token")
        .into_inner();
    let new = regenerated.token.expect("token");
    assert_eq!(new.kind, pb::TokenKind::Scim as i32);
    admin(&c)
        .revoke_token(authed(
            &boss_token,
            pb::RevokeTokenRequest {
                id: new.id,
                ..Default::default()
            },
        ))
        .await
        .expect("an admin revokes a SCIM token");
}

/// Finding 7: the operator could not revoke or regenerate another tenant's token over gRPC.
async fn the_operator_cuts_another_tenants_token(server: &TestServer) {
    let c = server.channel().await;
    let op = &server.operator_token;
    admin(&c)
        .create_tenant(authed(
            op,
            pb::CreateTenantRequest {
                name: "acme".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("create acme");
    let in_acme = || pb::CreateTokenRequest {
        tenant: "acme".into(),
        ..kind_req(pb::TokenKind::Scim)
    };
    let scim_status = |secret: String| async move {
        send(
            server
                .http
                .get(format!("{}/Users", server.scim))
                .bearer_auth(secret),
        )
        .await
        .0
    };

    let leaked = mint(server, in_acme()).await;
    assert_eq!(scim_status(leaked.secret.clone()).await, 200);
    admin(&c)
        .revoke_token(authed(
            op,
            pb::RevokeTokenRequest {
                id: leaked.token.expect("token").id,
                tenant: "acme".into(),
            },
        ))
        .await
        .expect("the operator revokes acme's token");
    assert_eq!(scim_status(leaked.secret).await, 401);

    let old = mint(server, in_acme()).await;
    let old_id = old.token.expect("token").id;
    let new = admin(&c)
        .regenerate_token(authed(
            op,
            pb::RegenerateTokenRequest {
                id: old_id.clone(),
                grace_seconds: 0,
                tenant: "acme".into(),
            },
        ))
        .await
        .expect("the operator regenerates acme's token")
        .into_inner();
    assert_eq!(new.token.as_ref().map(|t| t.tenant.as_str()), Some("acme"));
    assert_eq!(scim_status(old.secret).await, 401);
    assert_eq!(scim_status(new.secret).await, 200);

    // An admin of the operator's tenant may not name acme (nor learn whether it exists).
    let boss = create_user(&c, op, "boss@example.com", Some("admin")).await;
    let boss_token = mint(
        server,
        pb::CreateTokenRequest {
            user_id: boss.id,
            ..kind_req(pb::TokenKind::Admin)
        },
    )
    .await
    .secret;
    for tenant in ["acme", "no-such-tenant"] {
        let err = admin(&c)
            .revoke_token(authed(
                &boss_token,
                pb::RevokeTokenRequest {
                    id: new.token.as_ref().expect("token").id.clone(),
                    tenant: tenant.into(),
                },
            ))
            .await
            .expect_err("an admin revoking in another tenant");
        assert_eq!(err.code(), Code::PermissionDenied, "{tenant}: {err:?}");
    }
}

/// Finding 8a: a `ttl_seconds` near 2^63 panicked the handler.
async fn an_out_of_range_ttl_is_refused(server: &TestServer) {
    let c = server.channel().await;
    let max = roster_service::domain::MAX_TOKEN_TTL_SECONDS;
    for ttl in [i64::MAX, i64::MAX - 1, 1 << 62, max + 1, -1, i64::MIN] {
        let err = admin(&c)
            .create_token(authed(
                &server.operator_token,
                pb::CreateTokenRequest {
                    ttl_seconds: ttl,
                    ..kind_req(pb::TokenKind::Scim)
                },
            ))
            .await
            .expect_err("an out-of-range ttl");
        assert_eq!(err.code(), Code::InvalidArgument, "ttl {ttl}: {err:?}");
    }
    let longest = mint(
        server,
        pb::CreateTokenRequest {
            ttl_seconds: max,
            ..kind_req(pb::TokenKind::Scim)
        },
    )
    .await;
    assert!(longest.token.expect("token").expire_time.is_some());
    // Nothing was minted by the refused requests, and the service still answers.
    let tokens = admin(&c)
        .list_tokens(authed(
            &server.operator_token,
            pb::ListTokensRequest::default(),
        ))
        .await
        .expect("list")
        .into_inner()
        .tokens;
    assert_eq!(
        tokens.len(),
        3,
        "bootstrap SCIM, operator, the longest: {tokens:?}"
    );
}

/// Finding 10: a read-write service token granted admin through CreateUser/UpdateUser. Now a
/// service token never sets or changes a role, directly or through a mapped group's members.
async fn service_tokens_never_change_roles(server: &TestServer) {
    let c = server.channel().await;
    let op = &server.operator_token;
    let svc = mint(server, kind_req(pb::TokenKind::Service)).await.secret;
    let denied = |r: Result<_, Status>, what: &str| match r {
        Err(e) if e.code() == Code::PermissionDenied => {}
        other => panic!("{what}: {other:?}"),
    };

    denied(
        users(&c)
            .create_user(authed(
                &svc,
                pb::CreateUserRequest {
                    user: Some(pb::User {
                        user_name: "mallory@example.com".into(),
                        active: true,
                        role: Some("admin".into()),
                        ..Default::default()
                    }),
                },
            ))
            .await
            .map(drop),
        "a service token creating an admin",
    );
    let found = users(&c)
        .list_users(authed(
            op,
            pb::ListUsersRequest {
                filter: r#"userName eq "mallory@example.com""#.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(found.total_size, 0, "nothing was created");

    let ada = create_user(&c, &svc, "ada@example.com", None).await;
    let update = |role: Option<&str>, paths: &[&str]| pb::UpdateUserRequest {
        user: Some(pb::User {
            id: ada.id.clone(),
            user_name: "ada@example.com".into(),
            active: true,
            role: role.map(str::to_owned),
            display_name: Some("Ada".into()),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
        etag: String::new(),
    };
    for (role, paths) in [
        (Some("admin"), &["role"][..]),
        (Some("admin"), &["*"][..]),
        (Some("developer"), &["display_name", "role"][..]),
    ] {
        denied(
            users(&c)
                .update_user(authed(&svc, update(role, paths)))
                .await
                .map(drop),
            &format!("a service token setting role {role:?} with {paths:?}"),
        );
    }
    // Writes that leave the role as it is pass, the full replace included.
    users(&c)
        .update_user(authed(&svc, update(None, &["*"])))
        .await
        .expect("a full replace that keeps the role");
    users(&c)
        .update_user(authed(&svc, update(None, &["display_name"])))
        .await
        .expect("a service token updates other fields");
    let ada_now = users(&c)
        .get_user(authed(op, pb::GetUserRequest { id: ada.id.clone() }))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        (ada_now.role, ada_now.effective_role.as_str()),
        (None, "reporting")
    );
    // ... and so does one whose role is the stored one (what a GET then full replace sends).
    users(&c)
        .update_user(authed(
            op,
            pb::UpdateUserRequest {
                user: Some(pb::User {
                    id: ada.id.clone(),
                    role: Some("developer".into()),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["role".into()],
                }),
                etag: String::new(),
            },
        ))
        .await
        .expect("the operator sets a role");
    users(&c)
        .update_user(authed(&svc, update(Some("developer"), &["*"])))
        .await
        .expect("a full replace carrying the stored role");
    denied(
        users(&c)
            .update_user(authed(&svc, update(None, &["*"])))
            .await
            .map(drop),
        "a full replace by a service token that would clear the role",
    );

    // A group mapped to admin: its members are not the service token's to change.
    let admins = create_group(&c, op, "App - Admin").await;
    let plain = create_group(&c, &svc, "Readers").await;
    access(&c)
        .set_group_role(authed(
            op,
            pb::SetGroupRoleRequest {
                group_id: admins.id.clone(),
                role: "admin".into(),
                priority: 1,
            },
        ))
        .await
        .expect("map");
    let members = |group: &str| pb::GroupMembersRequest {
        group_id: group.to_owned(),
        user_ids: vec![ada.id.clone()],
        view: 0,
    };
    denied(
        groups(&c)
            .add_group_members(authed(&svc, members(&admins.id)))
            .await
            .map(drop),
        "a service token adding to an admin group",
    );
    denied(
        groups(&c)
            .update_group(authed(
                &svc,
                pb::UpdateGroupRequest {
                    group: Some(pb::Group {
                        id: admins.id.clone(),
                        ..Default::default()
                    }),
                    member_operations: vec![pb::MemberOperation {
                        kind: pb::member_operation::Kind::Add as i32,
                        user_ids: vec![ada.id.clone()],
                    }],
                    ..Default::default()
                },
            ))
            .await
            .map(drop),
        "a service token patching an admin group's members",
    );
    denied(
        groups(&c)
            .delete_group(authed(
                &svc,
                pb::DeleteGroupRequest {
                    id: admins.id.clone(),
                    etag: String::new(),
                },
            ))
            .await
            .map(drop),
        "a service token deleting a mapped group",
    );
    let effective = access(&c)
        .get_effective_role(authed(
            &svc,
            pb::GetEffectiveRoleRequest {
                user_id: ada.id.clone(),
            },
        ))
        .await
        .expect("effective role")
        .into_inner();
    assert_eq!(effective.role, "developer", "{effective:?}");
    // Renaming the mapped group, and the members of an unmapped one, are the service's.
    groups(&c)
        .update_group(authed(
            &svc,
            pb::UpdateGroupRequest {
                group: Some(pb::Group {
                    id: admins.id.clone(),
                    display_name: "App - Administrators".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("a service token renames a mapped group");
    groups(&c)
        .add_group_members(authed(&svc, members(&plain.id)))
        .await
        .expect("a service token fills an unmapped group");
    // The SCIM token (Okta pushing groups) and admins may.
    groups(&c)
        .add_group_members(authed(&server.scim_token, members(&admins.id)))
        .await
        .expect("the SCIM token fills a mapped group");
    users(&c)
        .update_user(authed(
            &server.scim_token,
            update(Some("templates"), &["role"]),
        ))
        .await
        .expect("the SCIM token sets a role");
}
