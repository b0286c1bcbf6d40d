//! Roles: a user's role from its own attribute, from Okta groups mapped to roles (the lowest
//! priority number wins), or the default; and permission checks for internal services.

use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::json;
use tonic::Code;

use crate::harness::{TestServer, assert_scim_error, authed, on_both_backends, send};

on_both_backends!(roles_follow_groups_priorities_and_attributes);

async fn scim_user(
    server: &TestServer,
    name: &str,
    extension: Option<serde_json::Value>,
) -> String {
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "active": true
    });
    if let Some(ext) = extension {
        body["schemas"].as_array_mut().expect("schemas").push(json!(
            "urn:ietf:params:scim:schemas:extension:roster:2.0:User"
        ));
        body["urn:ietf:params:scim:schemas:extension:roster:2.0:User"] = ext;
    }
    let (status, user) = send(server.scim_req(Method::POST, "/Users").json(&body)).await;
    assert_eq!(status, 201, "{user}");
    user["id"].as_str().expect("id").to_owned()
}

async fn scim_group(server: &TestServer, name: &str, members: &[&str]) -> String {
    let members: Vec<_> = members.iter().map(|m| json!({"value": m})).collect();
    let (status, group) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": name,
        "members": members
    })))
    .await;
    assert_eq!(status, 201, "{group}");
    group["id"].as_str().expect("id").to_owned()
}

async fn roles_follow_groups_priorities_and_attributes(server: &TestServer) {
    let channel = server.channel().await;
    let mut access = pb::access_service_client::AccessServiceClient::new(channel);
    let op = &server.operator_token;
    let reader = access.clone();
    let role_of = |user: String| {
        let mut access = reader.clone();
        let token = server.scim_token.clone();
        async move {
            access
                .get_effective_role(authed(
                    &token,
                    pb::GetEffectiveRoleRequest { user_id: user },
                ))
                .await
                .expect("GetEffectiveRole")
                .into_inner()
        }
    };

    let pushed = scim_user(server, "pushed@example.com", None).await;
    let plain = scim_user(server, "plain@example.com", None).await;
    let explicit = scim_user(
        server,
        "explicit@example.com",
        Some(json!({"role": "developer"})),
    )
    .await;
    let admins = scim_group(server, "App - Admin", &[&pushed, &explicit]).await;
    let reporters = scim_group(server, "App - Reporting", &[&pushed]).await;

    // Only an admin may map groups to roles.
    let err = access
        .set_group_role(authed(
            &server.scim_token,
            pb::SetGroupRoleRequest {
                group_id: admins.clone(),
                role: "admin".into(),
                priority: 1,
            },
        ))
        .await
        .expect_err("scim token mapping a group");
    assert_eq!(err.code(), Code::PermissionDenied);
    for (group, role, priority) in [(&admins, "admin", 1), (&reporters, "reporting", 3)] {
        access
            .set_group_role(authed(
                op,
                pb::SetGroupRoleRequest {
                    group_id: group.clone(),
                    role: role.into(),
                    priority,
                },
            ))
            .await
            .expect("SetGroupRole");
    }
    // An unknown role is refused and changes nothing.
    let err = access
        .set_group_role(authed(
            op,
            pb::SetGroupRoleRequest {
                group_id: reporters.clone(),
                role: "superuser".into(),
                priority: 0,
            },
        ))
        .await
        .expect_err("unknown role");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message()
            .contains("admin, developer, templates, reporting"),
        "{}",
        err.message()
    );

    let e = role_of(pushed.clone()).await;
    assert_eq!(
        (e.role.as_str(), e.source()),
        ("admin", pb::RoleSource::Group)
    );
    assert_eq!(e.group_id, admins);
    let e = role_of(plain.clone()).await;
    assert_eq!(
        (e.role.as_str(), e.source()),
        ("reporting", pb::RoleSource::Default)
    );
    let e = role_of(explicit.clone()).await;
    assert_eq!(
        (e.role.as_str(), e.source()),
        ("developer", pb::RoleSource::Attribute),
        "the attribute wins over groups"
    );

    // SCIM shows the same, apart from the assigned role.
    let (_, u) = send(server.scim_req(Method::GET, &format!("/Users/{pushed}"))).await;
    let ext = &u["urn:ietf:params:scim:schemas:extension:roster:2.0:User"];
    assert_eq!(ext["effectiveRole"], "admin", "{u}");
    assert_eq!(ext["roleSource"], "group", "{u}");
    assert!(ext.get("role").is_none_or(|r| r.is_null()), "{u}");

    // And as filters, computed by the database the same way.
    let ids_of = |filter: &'static str| async move {
        let (status, list) = send(
            server
                .scim_req(Method::GET, "/Users")
                .query(&[("filter", filter)]),
        )
        .await;
        assert_eq!(status, 200, "{filter}: {list}");
        list["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|u| u["id"].as_str().expect("id").to_owned())
            .collect::<Vec<_>>()
    };
    let admins_now = ids_of(
        r#"urn:ietf:params:scim:schemas:extension:roster:2.0:User:effectiveRole eq "ADMIN""#,
    )
    .await;
    assert!(admins_now.contains(&pushed), "{admins_now:?}");
    assert!(!admins_now.contains(&explicit) && !admins_now.contains(&plain));
    let by_default = ids_of(
        r#"urn:ietf:params:scim:schemas:extension:roster:2.0:User:roleSource eq "default" and urn:ietf:params:scim:schemas:extension:roster:2.0:User:effectiveRole eq "reporting""#,
    )
    .await;
    assert!(by_default.contains(&plain), "{by_default:?}");
    assert!(!by_default.contains(&pushed) && !by_default.contains(&explicit));
    let from_attribute = ids_of(
        r#"urn:ietf:params:scim:schemas:extension:roster:2.0:User:roleSource eq "attribute""#,
    )
    .await;
    assert!(from_attribute.contains(&explicit) && !from_attribute.contains(&pushed));

    // Changing a priority changes the role at once.
    access
        .set_group_role(authed(
            op,
            pb::SetGroupRoleRequest {
                group_id: reporters.clone(),
                role: "reporting".into(),
                priority: 0,
            },
        ))
        .await
        .expect("reprioritise");
    assert_eq!(role_of(pushed.clone()).await.role, "reporting");
    // Moving the user between groups too (Okta's removal by value filter).
    let (status, _) = send(
        server
            .scim_req(Method::PATCH, &format!("/Groups/{reporters}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": format!("members[value eq \"{pushed}\"]")}]
            })),
    )
    .await;
    assert!(status.is_success());
    assert_eq!(role_of(pushed.clone()).await.role, "admin");
    let mappings = access
        .list_group_roles(authed(op, pb::ListGroupRolesRequest {}))
        .await
        .expect("ListGroupRoles")
        .into_inner()
        .group_roles;
    assert_eq!(
        mappings
            .iter()
            .map(|m| (m.group_display_name.as_str(), m.priority))
            .collect::<Vec<_>>(),
        vec![("App - Reporting", 0), ("App - Admin", 1)]
    );
    access
        .remove_group_role(authed(
            op,
            pb::RemoveGroupRoleRequest {
                group_id: admins.clone(),
            },
        ))
        .await
        .expect("RemoveGroupRole");
    assert_eq!(role_of(pushed.clone()).await.role, "reporting");

    // An unknown role attribute from an IdP is refused, naming the allowed roles.
    let (status, err) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{plain}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:roster:2.0:User:role", "value": "root"}]
            })),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    assert_eq!(
        role_of(plain.clone()).await.source(),
        pb::RoleSource::Default
    );

    // Permissions: the role decides, and deactivation denies everything.
    let checker = access.clone();
    let check = |user: String, permission: &str| {
        let mut access = checker.clone();
        let token = server.scim_token.clone();
        let permission = permission.to_owned();
        async move {
            access
                .check_permission(authed(
                    &token,
                    pb::CheckPermissionRequest {
                        user_id: user,
                        permission,
                    },
                ))
                .await
                .expect("CheckPermission")
                .into_inner()
        }
    };
    assert!(check(explicit.clone(), "api_keys.manage").await.allowed);
    assert!(!check(explicit.clone(), "templates.manage").await.allowed);
    assert!(check(plain.clone(), "reporting.view").await.allowed);
    let (status, _) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{explicit}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": false}}]
            })),
    )
    .await;
    assert_eq!(status, 200);
    let denied = check(explicit.clone(), "api_keys.manage").await;
    assert!(!denied.allowed);
    assert!(denied.reason.contains("deactivated"), "{}", denied.reason);

    let roles = access
        .list_roles(authed(&server.scim_token, pb::ListRolesRequest {}))
        .await
        .expect("ListRoles")
        .into_inner()
        .roles;
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["admin", "developer", "templates", "reporting"]
    );
    assert!(roles.iter().any(|r| r.name == "reporting" && r.is_default));
}
