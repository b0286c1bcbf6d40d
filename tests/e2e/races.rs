//! Concurrent writes (RFC 7644 has no lock; Roster relies on none either, since several service
//! replicas share one PostgreSQL): membership PATCHes of one group all take effect, and PATCHes
//! of different attributes of one user never lose an update.

use reqwest::Method;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::harness::{TestServer, on_both_backends, send};

on_both_backends!(
    concurrent_membership_patches_all_take_effect,
    concurrent_attribute_patches_lose_nothing,
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
