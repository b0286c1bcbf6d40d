//! Okta Push Groups and Entra group provisioning, with their payloads.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_scim_error, on_both_backends, send};

on_both_backends!(okta_push_groups, entra_group_membership, group_errors);

async fn user(server: &TestServer, name: &str) -> String {
    let (status, body) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "displayName": format!("User {name}"),
        "active": true
    })))
    .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_owned()
}

async fn member_ids(server: &TestServer, group_id: &str) -> BTreeSet<String> {
    let (status, group) = send(server.scim_req(Method::GET, &format!("/Groups/{group_id}"))).await;
    assert_eq!(status, 200, "{group}");
    group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| x["value"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn set(ids: &[&String]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

async fn patch(server: &TestServer, group_id: &str, ops: Value) -> (reqwest::StatusCode, Value) {
    send(
        server
            .scim_req(Method::PATCH, &format!("/Groups/{group_id}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": ops
            })),
    )
    .await
}

async fn okta_push_groups(server: &TestServer) {
    let a = user(server, "a@example.com").await;
    let b = user(server, "b@example.com").await;
    let c = user(server, "c@example.com").await;

    // Okta creates the group empty.
    let (status, group) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Test SCIMv2",
        "members": []
    })))
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().expect("id").to_owned();
    assert_eq!(group["displayName"], "Test SCIMv2");
    assert_eq!(group["meta"]["resourceType"], "Group");
    assert_eq!(
        group["meta"]["location"],
        format!("{}/Groups/{gid}", server.scim)
    );

    // Lookup by displayName, case-insensitively.
    let (_, list) = send(server.scim_req(
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22test%20scimv2%22&startIndex=1&count=100",
    ))
    .await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], gid.as_str());

    // Rename (pathless, with the id) and add members in one PATCH.
    let (status, _) = patch(
        server,
        &gid,
        json!([
            {"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 renamed"}},
            {"op": "add", "path": "members", "value": [
                {"value": a, "display": "a@example.com"},
                {"value": b, "display": "b@example.com"}
            ]}
        ]),
    )
    .await;
    assert!(status == 204 || status == 200, "{status}");
    let (_, got) = send(server.scim_req(Method::GET, &format!("/Groups/{gid}"))).await;
    assert_eq!(got["displayName"], "Test SCIMv2 renamed");
    assert_eq!(member_ids(server, &gid).await, set(&[&a, &b]));
    let member = got["members"]
        .as_array()
        .and_then(|m| m.iter().find(|x| x["value"] == a.as_str()))
        .cloned()
        .expect("member a");
    assert_eq!(member["display"], "User a@example.com");

    // Okta's removal: a value filter in the path.
    let (status, _) = patch(
        server,
        &gid,
        json!([{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(member_ids(server, &gid).await, set(&[&b]));

    // Full push: replace members with a list, then with [].
    let (status, _) = patch(
        server,
        &gid,
        json!([{"op": "replace", "path": "members", "value": [{"value": a}, {"value": c}]}]),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(member_ids(server, &gid).await, set(&[&a, &c]));
    let (status, _) = patch(
        server,
        &gid,
        json!([{"op": "replace", "path": "members", "value": []}]),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert!(member_ids(server, &gid).await.is_empty());

    // A user's groups show on the user.
    patch(
        server,
        &gid,
        json!([{"op": "add", "path": "members", "value": [{"value": b}]}]),
    )
    .await;
    let (_, ub) = send(server.scim_req(Method::GET, &format!("/Users/{b}"))).await;
    assert_eq!(ub["groups"][0]["value"], gid.as_str());
    assert_eq!(ub["groups"][0]["display"], "Test SCIMv2 renamed");

    // PUT replaces name and members.
    let (status, put) = send(
        server
            .scim_req(Method::PUT, &format!("/Groups/{gid}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Put Name",
                "members": [{"value": c}]
            })),
    )
    .await;
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["displayName"], "Put Name");
    assert_eq!(member_ids(server, &gid).await, set(&[&c]));

    // excludedAttributes=members leaves members out.
    let (_, basic) = send(server.scim_req(
        Method::GET,
        &format!("/Groups/{gid}?excludedAttributes=members"),
    ))
    .await;
    assert!(basic.get("members").is_none(), "{basic}");

    // Unlink + delete.
    let (status, _) = send(server.scim_req(Method::DELETE, &format!("/Groups/{gid}"))).await;
    assert_eq!(status, 204);
    let (status, err) = send(server.scim_req(Method::GET, &format!("/Groups/{gid}"))).await;
    assert_eq!(status, 404);
    assert_scim_error(&err, 404, None);
    // The user no longer lists it.
    let (_, uc) = send(server.scim_req(Method::GET, &format!("/Users/{c}"))).await;
    assert!(uc.get("groups").is_none_or(|g| g == &json!([])), "{uc}");
}

async fn entra_group_membership(server: &TestServer) {
    let a = user(server, "ea@example.com").await;
    let b = user(server, "eb@example.com").await;
    let c = user(server, "ec@example.com").await;
    let (status, group) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:Group",
            "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
        ],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "Group1DisplayName",
        "members": [{"value": a}, {"value": b}, {"value": c}]
    })))
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().expect("id").to_owned();
    assert_eq!(member_ids(server, &gid).await, set(&[&a, &b, &c]));

    // Entra's lookup before an update.
    let (_, list) = send(server.scim_req(
        Method::GET,
        "/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Group1DisplayName%22",
    ))
    .await;
    assert_eq!(list["totalResults"], 1);
    assert!(list["Resources"][0].get("members").is_none());

    // Entra removes members with a value list: only those go, never all.
    let (status, _) = patch(
        server,
        &gid,
        json!([{"op": "Remove", "path": "members", "value": [{"value": a}]}]),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(member_ids(server, &gid).await, set(&[&b, &c]));

    // Entra's Add with a capital A; adding a present member again is harmless.
    let (status, _) = patch(
        server,
        &gid,
        json!([{"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}]}]),
    )
    .await;
    assert!(status.is_success(), "{status}");
    assert_eq!(member_ids(server, &gid).await, set(&[&a, &b, &c]));

    // Filter users by group membership and groups by member.
    let (_, groups) = send(server.scim_req(
        Method::GET,
        &format!("/Groups?filter=members.value%20eq%20%22{a}%22&excludedAttributes=members"),
    ))
    .await;
    assert_eq!(groups["totalResults"], 1);
}

async fn group_errors(server: &TestServer) {
    let (status, _) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Dup"
    })))
    .await;
    assert_eq!(status, 201);
    let (status, err) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "DUP"
    })))
    .await;
    assert_eq!(status, 409);
    assert_scim_error(&err, 409, Some("uniqueness"));

    // An unknown member is refused and nothing is created.
    let (status, err) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Ghosts",
        "members": [{"value": "no-such-user"}]
    })))
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    let (_, list) = send(server.scim_req(
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22Ghosts%22",
    ))
    .await;
    assert_eq!(list["totalResults"], 0);

    let (status, err) = patch(
        server,
        "no-such-group",
        json!([{"op": "add", "path": "members", "value": []}]),
    )
    .await;
    assert_eq!(status, 404, "{err}");
}
