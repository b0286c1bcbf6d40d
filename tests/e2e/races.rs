//! Concurrent writes (RFC 7644 has no lock; Roster relies on none either, since several service
//! replicas share one PostgreSQL): membership PATCHes of one group all take effect, and PATCHes
//! of different attributes of one user never lose an update, and deleting users while their
//! groups' members change keeps every member count equal to the members.

use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{TestServer, authed, on_both_backends, send};

on_both_backends!(
    concurrent_membership_patches_all_take_effect,
    concurrent_attribute_patches_lose_nothing,
    deleting_users_races_with_membership_patches,
);

async fn create(server: &TestServer, path: &str, body: Value) -> String {
    let (status, created) = send(server.scim_req(Method::POST, path).json(&body)).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

fn patch(ops: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops})
}

/// Sends every request at once and asserts each answered `want`.
async fn all_at_once(server: &TestServer, requests: Vec<(String, Value)>, want: u16) {
    let mut set = JoinSet::new();
    for (path, body) in requests {
        let req = server.scim_req(Method::PATCH, &path).json(&body);
        set.spawn(async move { send(req).await });
    }
    while let Some(done) = set.join_next().await {
        let (status, body) = done.expect("task");
        assert_eq!(status.as_u16(), want, "{body}");
    }
}

async fn concurrent_membership_patches_all_take_effect(server: &TestServer) {
    let mut users = Vec::new();
    for i in 0..24 {
        users.push(
            create(
                server,
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("m{i}@example.com")}),
            )
            .await,
        );
    }
    // The first 8 start as members.
    let initial: Vec<_> = users[..8].iter().map(|u| json!({"value": u})).collect();
    let group = create(
        server,
        "/Groups",
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Racers", "members": initial}),
    )
    .await;
    let path = format!("/Groups/{group}");
    // At once: Okta-style adds of 16 users (one each), and Entra-style removals of 4 members.
    let mut requests: Vec<(String, Value)> = users[8..]
        .iter()
        .map(|u| {
            (
                path.clone(),
                patch(json!([{"op": "add", "path": "members", "value": [{"value": u}]}])),
            )
        })
        .collect();
    requests.extend(users[..4].iter().map(|u| {
        (
            path.clone(),
            patch(json!([{"op": "Remove", "path": "members", "value": [{"value": u}]}])),
        )
    }));
    all_at_once(server, requests, 204).await;
    let (status, body) = send(server.scim_req(Method::GET, &path)).await;
    assert_eq!(status, 200);
    let mut got: Vec<&str> = body["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["value"].as_str().expect("value"))
        .collect();
    got.sort_unstable();
    let mut want: Vec<&str> = users[4..].iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want, "every concurrent change took effect");
}

async fn concurrent_attribute_patches_lose_nothing(server: &TestServer) {
    let user = create(
        server,
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "many@example.com",
            "emails": [{"value": "old@example.com", "type": "work"}]
        }),
    )
    .await;
    let path = format!("/Users/{user}");
    let simple = [
        ("title", "Engineer"),
        ("nickName", "Ada"),
        ("displayName", "Ada Lovelace"),
        ("userType", "Employee"),
        ("locale", "en-GB"),
        ("preferredLanguage", "en"),
        ("timezone", "Europe/London"),
        ("profileUrl", "https://example.com/ada"),
        ("name.givenName", "Ada"),
        ("name.familyName", "Lovelace"),
    ];
    let mut requests: Vec<(String, Value)> = simple
        .iter()
        .map(|(attr, value)| {
            (
                path.clone(),
                patch(json!([{"op": "replace", "path": attr, "value": value}])),
            )
        })
        .collect();
    // Read-modify-write paths, racing with the rest: a value filter, and the enterprise
    // extension.
    requests.push((
        path.clone(),
        patch(
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada@example.com"}]),
        ),
    ));
    requests.push((
        path.clone(),
        patch(json!([{
            "op": "add",
            "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "value": "Analytical Engines"
        }])),
    ));
    all_at_once(server, requests, 200).await;
    let (status, body) = send(server.scim_req(Method::GET, &path)).await;
    assert_eq!(status, 200);
    for (attr, value) in simple {
        let got = match attr.split_once('.') {
            Some((outer, inner)) => &body[outer][inner],
            None => &body[attr],
        };
        assert_eq!(got, value, "{attr} was lost: {body}");
    }
    assert_eq!(body["emails"][0]["value"], "ada@example.com", "{body}");
    assert_eq!(
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Analytical Engines",
        "{body}"
    );
}

/// Issue 8, finding 4: 200 pairs of `DELETE /Users/u` and a PATCH of one of u's groups adding
/// or removing u, all at once. No 5xx (a foreign key violation was a 500), and afterwards
/// every group's member count equals its member list (it ended at -2 with no members).
async fn deleting_users_races_with_membership_patches(server: &TestServer) {
    const PAIRS: usize = 200;
    const GROUPS: usize = 4;
    let mut users = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        users.push(
            create(
                server,
                "/Users",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("d{i}@example.com")}),
            )
            .await,
        );
    }
    // User i is a member of group (i + 1) % GROUPS; an odd i of group i % GROUPS too.
    let mut groups = Vec::with_capacity(GROUPS);
    for g in 0..GROUPS {
        let members: Vec<Value> = users
            .iter()
            .enumerate()
            .filter(|(i, _)| (i + 1) % GROUPS == g || (i % 2 == 1 && i % GROUPS == g))
            .map(|(_, u)| json!({"value": u}))
            .collect();
        groups.push(
            create(
                server,
                "/Groups",
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": format!("G{g}"), "members": members}),
            )
            .await,
        );
    }
    // Pair i: delete user i; PATCH group i % GROUPS adding it (even i) or removing it (odd i).
    let mut set = JoinSet::new();
    for (i, user) in users.iter().enumerate() {
        let delete = server.scim_req(Method::DELETE, &format!("/Users/{user}"));
        let op = if i % 2 == 0 {
            json!([{"op": "add", "path": "members", "value": [{"value": user}]}])
        } else {
            json!([{"op": "Remove", "path": "members", "value": [{"value": user}]}])
        };
        let change = server
            .scim_req(Method::PATCH, &format!("/Groups/{}", groups[i % GROUPS]))
            .json(&patch(op));
        set.spawn(async move { ("DELETE", i, send(delete).await) });
        set.spawn(async move { ("PATCH", i, send(change).await) });
    }
    while let Some(done) = set.join_next().await {
        let (what, i, (status, body)) = done.expect("task");
        match (what, status.as_u16()) {
            ("DELETE", 204) | ("PATCH", 204 | 200) => {}
            // The add came after the deletion: the user is unknown, as any unknown member.
            ("PATCH", 400) if i % 2 == 0 => {
                assert_eq!(body["scimType"], "invalidValue", "{body}");
            }
            _ => panic!("{what} of pair {i}: {status} {body}"),
        }
    }
    // Every user is gone, so every group is empty, and says so.
    let mut client = pb::group_service_client::GroupServiceClient::new(server.channel().await);
    for group in &groups {
        let got = client
            .get_group(authed(
                &server.scim_token,
                pb::GetGroupRequest {
                    id: group.clone(),
                    view: pb::GroupView::Full as i32,
                },
            ))
            .await
            .expect("GetGroup")
            .into_inner();
        assert_eq!(
            got.member_count,
            got.members.len() as i64,
            "{}: member count {} for members {:?}",
            got.display_name,
            got.member_count,
            got.members
        );
        assert!(got.members.is_empty(), "{:?}", got.members);
    }
}
