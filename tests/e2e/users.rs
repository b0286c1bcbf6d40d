//! Okta's SCIM 2.0 flow for users, step by step, with Okta's own payloads.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_scim_error, on_both_backends, send};

on_both_backends!(
    okta_user_lifecycle,
    import_pages_in_a_stable_order,
    entra_user_patches,
    put_replaces_the_whole_user,
    concurrent_creates_each_get_their_own_answer,
    renames_move_the_lookup_keys,
    search_by_post,
);

fn okta_user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

async fn create(server: &TestServer, body: Value) -> Value {
    let (status, created) = send(
        server
            .scim_req(Method::POST, "/Users")
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn okta_user_lifecycle(server: &TestServer) {
    // Test API Credentials: an empty directory still answers a ListResponse.
    let (status, list) = send(server.scim_req(Method::GET, "/Users?startIndex=1&count=2")).await;
    assert_eq!(status, 200);
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(list["totalResults"], 0);
    assert_eq!(list["startIndex"], 1);

    // Okta looks the user up before creating it: no match is 200 with totalResults 0.
    let lookup = "/Users?filter=userName%20eq%20%22ada%40example.com%22&startIndex=1&count=100";
    let (status, list) = send(server.scim_req(Method::GET, lookup)).await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 0);
    assert_eq!(list["Resources"], json!([]));

    // Create, with Okta's Content-Type: application/json.
    let resp = server
        .scim_req(Method::POST, "/Users")
        .header("content-type", "application/json")
        .body(okta_user("ada@example.com").to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(resp.status(), 201);
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("Location header");
    let etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .expect("ETag header");
    let user: Value = resp.json().await.expect("json");
    let id = user["id"].as_str().expect("id").to_owned();
    assert_eq!(user["userName"], "ada@example.com");
    assert_eq!(user["name"]["givenName"], "Ada");
    assert_eq!(user["emails"][0]["value"], "ada@example.com");
    assert_eq!(user["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(user["active"], true);
    assert!(user.get("password").is_none(), "password is never returned");
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(user["meta"]["location"], location);
    assert_eq!(location, format!("{}/Users/{id}", server.scim));
    assert_eq!(user["meta"]["version"], etag);
    assert!(user["meta"]["created"].is_string());
    assert!(user["meta"]["lastModified"].is_string());

    // The same userName in another letter case is a uniqueness conflict.
    let (status, err) = send(
        server
            .scim_req(Method::POST, "/Users")
            .json(&okta_user("ADA@Example.COM")),
    )
    .await;
    assert_eq!(status, 409);
    assert_scim_error(&err, 409, Some("uniqueness"));

    // Read it back, by id and by a filter in another letter case.
    let (status, got) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got["id"], id.as_str());
    let (status, list) = send(server.scim_req(
        Method::GET,
        "/Users?filter=userName%20eq%20%22ADA%40EXAMPLE.COM%22",
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["id"], id.as_str());

    // Profile update: GET then PUT.
    let mut put = got.clone();
    put["name"]["givenName"] = json!("Augusta Ada");
    let (status, updated) = send(
        server
            .scim_req(Method::PUT, &format!("/Users/{id}"))
            .json(&put),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["name"]["givenName"], "Augusta Ada");
    assert_ne!(updated["meta"]["version"], got["meta"]["version"]);

    // Deactivate with Okta's pathless replace; the user stays readable and filterable.
    let (status, patched) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {"active": false}}]
            })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], false);
    let (status, got) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got["active"], false);
    let (_, list) = send(server.scim_req(Method::GET, lookup)).await;
    assert_eq!(list["totalResults"], 1);
    assert_eq!(list["Resources"][0]["active"], false);

    // Reactivate with a path.
    let (status, patched) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": true}]
            })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], true);

    // Password sync and a name part, in one PATCH.
    let (status, patched) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "replace", "path": "password", "value": "n3w-Secret"},
                    {"op": "replace", "path": "name.givenName", "value": "Ada"}
                ]
            })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["name"]["givenName"], "Ada");
    assert_eq!(patched["name"]["familyName"], "Lovelace");
    assert!(patched.get("password").is_none());

    // Delete (Entra does; Okta never), then it is gone.
    let (status, body) = send(server.scim_req(Method::DELETE, &format!("/Users/{id}"))).await;
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let (status, err) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 404);
    assert_scim_error(&err, 404, None);
}

async fn import_pages_in_a_stable_order(server: &TestServer) {
    let mut ids = Vec::new();
    for i in 0..25 {
        let user = create(server, okta_user(&format!("user{i:02}@example.com"))).await;
        ids.push(user["id"].as_str().expect("id").to_owned());
    }
    let mut seen = Vec::new();
    for start in [1, 11, 21] {
        let (status, page) =
            send(server.scim_req(Method::GET, &format!("/Users?startIndex={start}&count=10")))
                .await;
        assert_eq!(status, 200);
        assert_eq!(page["totalResults"], 25);
        assert_eq!(page["startIndex"], start);
        let items = page["Resources"].as_array().expect("Resources");
        assert_eq!(page["itemsPerPage"], items.len());
        assert_eq!(items.len(), if start == 21 { 5 } else { 10 });
        seen.extend(
            items
                .iter()
                .map(|u| u["id"].as_str().unwrap_or_default().to_owned()),
        );
    }
    assert_eq!(
        seen, ids,
        "pages follow creation order, without gaps or repeats"
    );

    // count=0 answers the total alone.
    let (_, page) = send(server.scim_req(Method::GET, "/Users?count=0")).await;
    assert_eq!(page["totalResults"], 25);
    assert_eq!(page["Resources"].as_array().map(Vec::len).unwrap_or(0), 0);

    // Filters on other indexed attributes.
    let (_, page) = send(server.scim_req(
        Method::GET,
        "/Users?filter=emails.value%20eq%20%22USER07%40example.com%22",
    ))
    .await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"][0]["id"], ids[7].as_str());
    let (_, page) = send(server.scim_req(
        Method::GET,
        "/Users?filter=externalId%20eq%20%2200ujl29u0le5T6Aj10h7%22%20and%20userName%20sw%20%22user1%22",
    ))
    .await;
    assert_eq!(page["totalResults"], 10);
}

async fn entra_user_patches(server: &TestServer) {
    let created = create(
        server,
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
            "active": true,
            "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "department": "Sales"}
        }),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(
        created["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Sales"
    );
    // Entra: capitalised ops, "False" as a string, a value-filter path and a URN path.
    let (status, patched) = send(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updated@testuser.com"},
                    {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42"},
                    {"op": "Replace", "path": "active", "value": "False"}
                ]
            })),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["active"], false);
    assert_eq!(patched["emails"][0]["value"], "updated@testuser.com");
    assert_eq!(patched["emails"].as_array().map(Vec::len), Some(1));
    let ext = &patched["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["employeeNumber"], "42");
    assert_eq!(ext["department"], "Sales");
    // The new address is what lookups find.
    let (_, page) = send(server.scim_req(
        Method::GET,
        "/Users?filter=emails.value%20eq%20%22updated%40testuser.com%22",
    ))
    .await;
    assert_eq!(page["totalResults"], 1);
}

async fn put_replaces_the_whole_user(server: &TestServer) {
    let created = create(server, okta_user("grace@example.com")).await;
    let id = created["id"].as_str().expect("id");
    // Omitted attributes are cleared; id/meta in the body are ignored.
    let (status, replaced) = send(server.scim_req(Method::PUT, &format!("/Users/{id}")).json(
        &json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "someone-else",
            "userName": "grace@example.com",
            "active": false,
            "meta": {"resourceType": "User"}
        }),
    ))
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["id"], id);
    assert_eq!(replaced["active"], false);
    assert!(replaced.get("name").is_none(), "{replaced}");
    assert!(replaced.get("displayName").is_none(), "{replaced}");
    assert!(replaced.get("externalId").is_none(), "{replaced}");
    // A PUT that changes nothing keeps the version.
    let (_, again) = send(
        server
            .scim_req(Method::PUT, &format!("/Users/{id}"))
            .json(&replaced),
    )
    .await;
    assert_eq!(again["meta"]["version"], replaced["meta"]["version"]);
    // A stale If-Match is refused with 412 and changes nothing.
    let (status, err) = send(
        server
            .scim_req(Method::PUT, &format!("/Users/{id}"))
            .header("if-match", "W/\"999\"")
            .json(&okta_user("grace@example.com")),
    )
    .await;
    assert_eq!(status, 412, "{err}");
    let (_, after) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(after["active"], false);
}

/// Concurrent creates: of each userName (in any letter case) exactly one wins, and a
/// failure never takes the others down with it (on SQLite they share one group commit).
async fn concurrent_creates_each_get_their_own_answer(server: &TestServer) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let name = if i % 2 == 0 {
            format!("race{}@example.com", i / 4)
        } else {
            format!("RACE{}@EXAMPLE.COM", i / 4)
        };
        let req = server
            .scim_req(Method::POST, "/Users")
            .json(&okta_user(&name));
        tasks.push(tokio::spawn(async move { send(req).await }));
    }
    let mut created = 0;
    let mut conflicts = 0;
    for t in tasks {
        let (status, body) = t.await.expect("task");
        match status.as_u16() {
            201 => created += 1,
            409 => {
                assert_scim_error(&body, 409, Some("uniqueness"));
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((created, conflicts), (10, 30));
    let (_, list) = send(server.scim_req(Method::GET, "/Users?count=0")).await;
    assert_eq!(list["totalResults"], 10);
}

/// A new userName or externalId is what lookups find afterwards; a rename onto a taken
/// userName is a conflict that changes nothing.
async fn renames_move_the_lookup_keys(server: &TestServer) {
    let a = create(server, okta_user("old@example.com")).await;
    create(server, okta_user("taken@example.com")).await;
    let id = a["id"].as_str().expect("id");
    let patch = |ops: Value| {
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .json(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}))
    };
    let (status, body) = send(patch(json!([
        {"op": "replace", "path": "userName", "value": "New@Example.com"},
        {"op": "replace", "path": "externalId", "value": "00u-new"}
    ])))
    .await;
    assert_eq!(status, 200, "{body}");
    let count = |filter: &'static str| async move {
        let (_, list) =
            send(server.scim_req(Method::GET, &format!("/Users?filter={filter}"))).await;
        list["totalResults"].as_i64().unwrap_or(-1)
    };
    assert_eq!(count("userName%20eq%20%22new%40example.com%22").await, 1);
    assert_eq!(count("userName%20eq%20%22old%40example.com%22").await, 0);
    assert_eq!(count("externalId%20eq%20%2200u-new%22").await, 1);
    let (status, err) = send(patch(json!([
        {"op": "replace", "path": "userName", "value": "TAKEN@example.com"}
    ])))
    .await;
    assert_eq!(status, 409, "{err}");
    assert_scim_error(&err, 409, Some("uniqueness"));
    assert_eq!(count("userName%20eq%20%22new%40example.com%22").await, 1);
}

/// `POST /Users/.search` answers as the matching GET does; `POST /.search` spans users and
/// groups.
async fn search_by_post(server: &TestServer) {
    create(server, okta_user("s1@example.com")).await;
    create(server, okta_user("s2@example.com")).await;
    let (status, g) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Searchers"
    })))
    .await;
    assert_eq!(status, 201, "{g}");
    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"s\"",
        "attributes": ["userName"],
        "startIndex": 1,
        "count": 10
    });
    let (status, posted) = send(
        server
            .scim_req(Method::POST, "/Users/.search")
            .json(&search),
    )
    .await;
    assert_eq!(status, 200, "{posted}");
    let (_, got) = send(server.scim_req(
        Method::GET,
        "/Users?filter=userName%20sw%20%22s%22&attributes=userName&startIndex=1&count=10",
    ))
    .await;
    assert_eq!(posted, got);
    assert_eq!(posted["totalResults"], 2);
    assert!(posted["Resources"][0].get("name").is_none(), "{posted}");
    let (status, all) = send(server.scim_req(Method::POST, "/.search").json(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "count": 10
    })))
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["totalResults"], 3);
    let (status, err) = send(
        server
            .scim_req(Method::POST, "/Users/.search")
            .json(&json!({"filter": "x"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_scim_error(&err, 400, Some("invalidValue"));
}
