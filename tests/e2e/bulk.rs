//! `POST /Bulk` (RFC 7644 §3.7), and strict input handling: bad values are 400 with the right
//! `scimType` and store nothing, with and without the strict schema mode.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestServer, assert_scim_error, on_both_backends, send};

on_both_backends!(
    bulk_creates_a_user_and_adds_it_to_a_group,
    bulk_references_that_cannot_resolve_are_409,
    bulk_fail_on_errors_stops_processing,
    bulk_limits_are_413,
    bad_input_is_400_and_stores_nothing,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

fn user(name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": name,
        "emails": [{"value": name, "type": "work", "primary": true}],
        "active": true
    })
}

async fn bulk(server: &TestServer, body: Value) -> (reqwest::StatusCode, Value) {
    send(server.scim_req(Method::POST, "/Bulk").json(&body)).await
}

/// A BulkResponse with one result per processed operation: its `Operations`.
async fn bulk_ok(server: &TestServer, body: Value) -> Vec<Value> {
    let (status, response) = bulk(server, body).await;
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["schemas"], json!([BULK_RESPONSE]), "{response}");
    response["Operations"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("no Operations: {response}"))
}

fn request(operations: Value) -> Value {
    json!({"schemas": [BULK_REQUEST], "Operations": operations})
}

/// The id at the end of a result's `location`.
fn id_of(result: &Value) -> String {
    let location = result["location"]
        .as_str()
        .unwrap_or_else(|| panic!("{result}"));
    location.rsplit('/').next().unwrap_or_default().to_owned()
}

/// How many users have this userName.
async fn users_named(server: &TestServer, name: &str) -> i64 {
    let filter = format!("userName eq \"{name}\"");
    let (status, list) = send(
        server
            .scim_req(Method::GET, "/Users")
            .query(&[("filter", filter.as_str())]),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["totalResults"].as_i64().expect("totalResults")
}

async fn groups_named(server: &TestServer, name: &str) -> i64 {
    let filter = format!("displayName eq \"{name}\"");
    let (status, list) = send(
        server
            .scim_req(Method::GET, "/Groups")
            .query(&[("filter", filter.as_str())]),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list["totalResults"].as_i64().expect("totalResults")
}

async fn get(server: &TestServer, path: &str) -> Value {
    let (status, body) = send(server.scim_req(Method::GET, path)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn member_ids(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["value"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn bulk_creates_a_user_and_adds_it_to_a_group(server: &TestServer) {
    let results = bulk_ok(
        server,
        request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "ada", "data": user("ada@example.com")},
            // A forward reference: "bob" is created further down, and runs first.
            {"method": "POST", "path": "/Groups", "bulkId": "eng", "data": {
                "schemas": [GROUP], "displayName": "Engineering",
                "members": [{"value": "bulkId:ada"}, {"value": "bulkId:bob"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "bob", "data": user("bob@example.com")},
            // bulkId in a path, and in an Enterprise manager deep inside data.
            {"method": "PATCH", "path": "/Users/bulkId:bob", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "active", "value": false}]}},
            {"method": "PUT", "path": "/Users/bulkId:ada", "data": {
                "schemas": [USER, ENTERPRISE], "userName": "ada@example.com",
                "displayName": "Ada",
                (ENTERPRISE): {"manager": {"value": "bulkId:bob"}}}},
            {"method": "PATCH", "path": "/Groups/bulkId:eng", "data": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "Eng"}]}}
        ])),
    )
    .await;
    assert_eq!(results.len(), 6, "{results:?}");
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["201", "201", "201", "200", "200", "204"],
        "{results:?}"
    );
    let methods: Vec<&str> = results
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["POST", "POST", "POST", "PATCH", "PUT", "PATCH"]);
    assert_eq!(results[0]["bulkId"], "ada");
    assert!(results[3].get("bulkId").is_none());
    for r in &results {
        assert!(r.get("response").is_none(), "{r}");
        assert!(
            r["version"].as_str().is_some_and(|v| v.starts_with("W/\"")),
            "{r}"
        );
    }
    let (ada, eng, bob) = (id_of(&results[0]), id_of(&results[1]), id_of(&results[2]));
    assert_eq!(
        results[0]["location"],
        format!("{}/Users/{ada}", server.scim)
    );
    assert_eq!(
        results[1]["location"],
        format!("{}/Groups/{eng}", server.scim)
    );
    assert_eq!(
        results[3]["location"],
        format!("{}/Users/{bob}", server.scim)
    );
    assert_eq!(
        results[5]["location"],
        format!("{}/Groups/{eng}", server.scim)
    );

    // The references became ids, everywhere.
    let group = get(server, &format!("/Groups/{eng}")).await;
    assert_eq!(group["displayName"], "Eng");
    assert_eq!(
        member_ids(&group),
        BTreeSet::from([ada.clone(), bob.clone()])
    );
    let got = get(server, &format!("/Users/{ada}")).await;
    assert_eq!(got["displayName"], "Ada");
    assert_eq!(got[ENTERPRISE]["manager"]["value"], bob.as_str());
    assert_eq!(got["groups"][0]["value"], eng.as_str());
    assert_eq!(got["meta"]["version"], results[4]["version"]);
    let got = get(server, &format!("/Users/{bob}")).await;
    assert_eq!(got["active"], false);

    // version is If-Match: a stale one is 412 for that operation only; DELETE answers 204.
    let stale = results[0]["version"].clone();
    let results = bulk_ok(
        server,
        request(json!([
            {"method": "PUT", "path": format!("/Users/{ada}"), "version": stale,
             "data": user("ada@example.com")},
            {"method": "DELETE", "path": format!("/Users/{bob}"), "version": got["meta"]["version"]}
        ])),
    )
    .await;
    assert_eq!(results[0]["status"], "412", "{results:?}");
    assert_scim_error(&results[0]["response"], 412, None);
    assert_eq!(
        results[0]["location"],
        format!("{}/Users/{ada}", server.scim)
    );
    assert_eq!(results[1]["status"], "204", "{results:?}");
    assert!(results[1].get("version").is_none());
    assert_eq!(
        get(server, &format!("/Users/{ada}")).await["displayName"],
        "Ada"
    );
    let (status, _) = send(server.scim_req(Method::GET, &format!("/Users/{bob}"))).await;
    assert_eq!(status, 404);
    assert_eq!(
        member_ids(&get(server, &format!("/Groups/{eng}")).await),
        BTreeSet::from([ada])
    );
}

async fn bulk_references_that_cannot_resolve_are_409(server: &TestServer) {
    let (status, taken) = send(
        server
            .scim_req(Method::POST, "/Users")
            .json(&user("taken@example.com")),
    )
    .await;
    assert_eq!(status, 201, "{taken}");
    let results = bulk_ok(
        server,
        request(json!([
            // Fails (409 uniqueness), so its bulkId resolves to nothing.
            {"method": "POST", "path": "/Users", "bulkId": "dup", "data": user("TAKEN@example.com")},
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
                "schemas": [GROUP], "displayName": "Refers to a failed POST",
                "members": [{"value": "bulkId:dup"}]}},
            {"method": "DELETE", "path": "/Users/bulkId:never-declared"},
            // Two users that name each other as manager: a cycle.
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {
                "schemas": [USER, ENTERPRISE], "userName": "a@example.com",
                (ENTERPRISE): {"manager": {"value": "bulkId:b"}}}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": {
                "schemas": [USER, ENTERPRISE], "userName": "b@example.com",
                (ENTERPRISE): {"manager": {"value": "bulkId:a"}}}},
            // Malformed operations fail alone.
            {"method": "POST", "path": "/Users", "data": user("no-bulk-id@example.com")},
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "/Users", "bulkId": "ok", "data": user("ok@example.com")}
        ])),
    )
    .await;
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["409", "409", "409", "409", "409", "400", "400", "201"],
        "{results:?}"
    );
    assert_scim_error(&results[0]["response"], 409, Some("uniqueness"));
    for r in &results[1..5] {
        assert_scim_error(&r["response"], 409, None);
    }
    assert_scim_error(&results[5]["response"], 400, Some("invalidSyntax"));
    assert_scim_error(&results[6]["response"], 400, Some("invalidSyntax"));
    // A failed POST has no location.
    for r in &results[..2] {
        assert!(r.get("location").is_none(), "{r}");
    }
    assert_eq!(groups_named(server, "Refers to a failed POST").await, 0);
    assert_eq!(users_named(server, "a@example.com").await, 0);
    assert_eq!(users_named(server, "b@example.com").await, 0);
    assert_eq!(users_named(server, "no-bulk-id@example.com").await, 0);
    assert_eq!(users_named(server, "ok@example.com").await, 1);
}

async fn bulk_fail_on_errors_stops_processing(server: &TestServer) {
    let bad = json!({"schemas": [USER]}); // no userName
    let mut body = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "1", "data": bad},
        {"method": "POST", "path": "/Users", "bulkId": "2", "data": user("two@example.com")}
    ]));
    body["failOnErrors"] = json!(1);
    let results = bulk_ok(server, body).await;
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["status"], "400");
    assert_scim_error(&results[0]["response"], 400, Some("invalidValue"));
    assert_eq!(users_named(server, "two@example.com").await, 0);

    // failOnErrors 2: runs up to the second failure.
    let mut body = request(json!([
        {"method": "POST", "path": "/Users", "bulkId": "1", "data": bad},
        {"method": "POST", "path": "/Users", "bulkId": "2", "data": user("two@example.com")},
        {"method": "DELETE", "path": "/Users/no-such-user"},
        {"method": "POST", "path": "/Users", "bulkId": "4", "data": user("four@example.com")}
    ]));
    body["failOnErrors"] = json!(2);
    let results = bulk_ok(server, body).await;
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["400", "201", "404"], "{results:?}");
    assert_eq!(users_named(server, "two@example.com").await, 1);
    assert_eq!(users_named(server, "four@example.com").await, 0);

    // Without failOnErrors every operation runs.
    let results = bulk_ok(
        server,
        request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "1", "data": bad},
            {"method": "DELETE", "path": "/Users/no-such-user"},
            {"method": "POST", "path": "/Users", "bulkId": "4", "data": user("four@example.com")}
        ])),
    )
    .await;
    assert_eq!(results.len(), 3, "{results:?}");
    assert_eq!(users_named(server, "four@example.com").await, 1);

    // A malformed request is one error, and runs nothing.
    for body in [
        json!({"Operations": []}),
        json!({"schemas": [BULK_REQUEST], "Operations": {}}),
        json!({"schemas": [BULK_REQUEST], "failOnErrors": 0, "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "x", "data": user("x@example.com")}]}),
    ] {
        let (status, err) = bulk(server, body).await;
        assert_eq!(status, 400, "{err}");
        assert_scim_error(&err, 400, Some("invalidSyntax"));
    }
    assert_eq!(users_named(server, "x@example.com").await, 0);
}

async fn bulk_limits_are_413(server: &TestServer) {
    let spc = get(server, "/ServiceProviderConfig").await;
    assert_eq!(
        spc["bulk"],
        json!({"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576})
    );
    let (status, kept) = send(
        server
            .scim_req(Method::POST, "/Users")
            .json(&user("kept@example.com")),
    )
    .await;
    assert_eq!(status, 201, "{kept}");
    let id = kept["id"].as_str().unwrap().to_owned();

    // One operation more than maxOperations: 413, and nothing runs (not even the first DELETE).
    let mut ops = vec![json!({"method": "DELETE", "path": format!("/Users/{id}")})];
    ops.extend((1..1001).map(|i| json!({"method": "DELETE", "path": format!("/Users/x{i}")})));
    let (status, err) = bulk(server, request(Value::Array(ops.clone()))).await;
    assert_eq!(status, 413, "{err}");
    assert_scim_error(&err, 413, None);
    assert!(
        err["detail"].as_str().unwrap().contains("maxOperations"),
        "{err}"
    );
    get(server, &format!("/Users/{id}")).await;
    // Exactly maxOperations is accepted.
    ops.truncate(1000);
    let results = bulk_ok(server, request(Value::Array(ops))).await;
    assert_eq!(results.len(), 1000);
    assert_eq!(results[0]["status"], "204");
    assert_eq!(results[1]["status"], "404");

    // Over maxPayloadSize (HTTP/2, as in protocol.rs: over HTTP/1.1 the early 413 closes the
    // connection the client is still writing to).
    let mut big = user("big@example.com");
    big["displayName"] = json!("x".repeat(1024 * 1024));
    let body = request(json!([{"method": "POST", "path": "/Users", "bulkId": "big", "data": big}]));
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let (status, err) = send(
        h2.post(format!("{}/Bulk", server.scim))
            .bearer_auth(&server.scim_token)
            .header("content-type", "application/scim+json")
            .body(body.to_string()),
    )
    .await;
    assert_eq!(status, 413, "{err}");
    assert_scim_error(&err, 413, None);
    assert!(
        err["detail"].as_str().unwrap().contains("maxPayloadSize"),
        "{err}"
    );
    assert_eq!(users_named(server, "big@example.com").await, 0);

    // Bulk needs an accepted token.
    let (status, err) = send(
        server
            .http
            .post(format!("{}/Bulk", server.scim))
            .bearer_auth("rst_not_a_token")
            .json(&request(json!([]))),
    )
    .await;
    assert_eq!(status, 401, "{err}");
}

/// Bodies that every facade refuses with 400 `invalidValue`.
fn bad_users() -> Vec<Value> {
    let with = |key: &str, value: Value| {
        let mut u = user("bad@example.com");
        u[key] = value;
        u
    };
    vec![
        with("active", json!("yes")),
        with("userName", json!(5)),
        with("emails", json!({})),
        with("emails", json!([{"value": "not an address"}])),
        with("emails", json!([{"value": "bad@"}])),
        with(
            "emails",
            json!([{"value": "bad@example.com", "primary": true}, {"value": "b2@example.com", "primary": "True"}]),
        ),
        with(
            "phoneNumbers",
            json!([{"value": "1", "primary": true}, {"value": "2", "primary": true}]),
        ),
        with("phoneNumbers", json!([{"value": 5550100}])),
        with("name", json!({"givenName": ["Ada"]})),
        with("title", json!("x".repeat(1025))),
        with("customThing", json!({"deep": ["x".repeat(1025)]})),
        with(ENTERPRISE, json!({"department": 7})),
    ]
}

async fn bad_input_is_400_and_stores_nothing(server: &TestServer) {
    for body in bad_users() {
        let (status, err) = send(server.scim_req(Method::POST, "/Users").json(&body)).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
    }
    let mut long = user("x@example.com");
    long["userName"] = json!(format!("{}@example.com", "x".repeat(250)));
    let (status, err) = send(server.scim_req(Method::POST, "/Users").json(&long)).await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    let (status, err) = send(
        server
            .scim_req(Method::POST, "/Users")
            .body("{\"userName\": "),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidSyntax"));
    let (status, list) = send(server.scim_req(Method::GET, "/Users")).await;
    assert_eq!(status, 200);
    assert_eq!(list["totalResults"], 0, "nothing was stored: {list}");

    // Entra's string booleans, and custom attributes, are still accepted outside strict mode.
    let (status, created) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": [USER],
        "userName": "entra@example.com",
        "active": "False",
        "emails": [{"value": "entra@example.com", "primary": "True", "type": "work"}],
        "customThing": {"kept": true}
    })))
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["active"], false);
    assert_eq!(created["emails"][0]["primary"], true);
    assert_eq!(created["customThing"], json!({"kept": true}));
    let id = created["id"].as_str().unwrap().to_owned();
    let version = created["meta"]["version"].clone();

    // PUT and PATCH with bad values change nothing.
    for body in bad_users() {
        let (status, err) = send(
            server
                .scim_req(Method::PUT, &format!("/Users/{id}"))
                .json(&body),
        )
        .await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
    }
    for (path, value) in [
        ("emails", json!([{"value": "nope", "type": "work"}])),
        ("userName", json!("x".repeat(257))),
        ("title", json!("x".repeat(1025))),
        (
            "phoneNumbers",
            json!([{"value": "1", "primary": true}, {"value": "2", "primary": true}]),
        ),
    ] {
        let (status, err) = send(
            server
                .scim_req(Method::PATCH, &format!("/Users/{id}"))
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": path, "value": value}]
                })),
        )
        .await;
        assert_eq!(status, 400, "{path}: {err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
    }
    assert_eq!(
        get(server, &format!("/Users/{id}")).await["meta"]["version"],
        version
    );

    // A PATCH that makes another e-mail primary takes it from the old one (RFC 7644 §3.5.2).
    let (status, patched) = send(server.scim_req(Method::PATCH, &format!("/Users/{id}")).json(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "emails", "value": [{"value": "new@example.com", "primary": true}]}]
    })))
    .await;
    assert_eq!(status, 200, "{patched}");
    let primaries: Vec<&str> = patched["emails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["primary"] == true)
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(primaries, ["new@example.com"], "{patched}");

    // Groups: a name over 256 characters, by POST, PUT and PATCH.
    let name = "g".repeat(257);
    let (status, err) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": [GROUP], "displayName": name
    })))
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    assert_eq!(groups_named(server, &name).await, 0);
    let (status, group) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
        "schemas": [GROUP], "displayName": "Short", "members": [{"value": id}]
    })))
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_owned();
    let (status, err) = send(
        server
            .scim_req(Method::PUT, &format!("/Groups/{gid}"))
            .json(&json!({
                "schemas": [GROUP], "displayName": name, "members": []
            })),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    let (status, err) = send(
        server
            .scim_req(Method::PATCH, &format!("/Groups/{gid}"))
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": name}]
            })),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    let got = get(server, &format!("/Groups/{gid}")).await;
    assert_eq!(got["displayName"], "Short");
    assert_eq!(member_ids(&got), BTreeSet::from([id]));
}

/// The same server with `strict_schema` on.
mod strict {
    use super::*;

    on_both_backends!(
        config = roster::FacadeConfig {
            strict_schema: true,
            ..roster::FacadeConfig::default()
        };
        strict_schema_refuses_undeclared_attributes,
    );

    async fn strict_schema_refuses_undeclared_attributes(server: &TestServer) {
        let mut custom = user("custom@example.com");
        custom["customThing"] = json!(1);
        let mut sub = user("custom@example.com");
        sub["name"] = json!({"givenName": "A", "nickname": "x"});
        let mut unlisted = user("custom@example.com");
        unlisted[ENTERPRISE] = json!({"department": "R&D"});
        let mut unknown_urn = user("custom@example.com");
        unknown_urn["schemas"] = json!([USER, "urn:example:custom:2.0:User"]);
        unknown_urn["urn:example:custom:2.0:User"] = json!({"x": "1"});
        for body in [custom.clone(), sub, unlisted, unknown_urn] {
            let (status, err) = send(server.scim_req(Method::POST, "/Users").json(&body)).await;
            assert_eq!(status, 400, "{body}: {err}");
            assert_scim_error(&err, 400, Some("invalidValue"));
        }
        // What every facade refuses, strict refuses too.
        for body in bad_users() {
            let (status, _) = send(server.scim_req(Method::POST, "/Users").json(&body)).await;
            assert_eq!(status, 400, "{body}");
        }
        assert_eq!(users_named(server, "custom@example.com").await, 0);
        assert_eq!(users_named(server, "bad@example.com").await, 0);

        // Okta's and Entra's standard bodies pass.
        let (status, okta) = send(server.scim_req(Method::POST, "/Users").json(&json!({
            "schemas": [USER],
            "userName": "okta@example.com",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": true, "value": "okta@example.com", "type": "work"}],
            "displayName": "Ada Lovelace", "locale": "en-US", "externalId": "00u1",
            "groups": [], "password": "1mz050nq", "active": true
        })))
        .await;
        assert_eq!(status, 201, "{okta}");
        let (status, entra) = send(server.scim_req(Method::POST, "/Users").json(&json!({
            "schemas": [USER, ENTERPRISE],
            "externalId": "e-1", "userName": "entra@example.com", "active": "True",
            "emails": [{"primary": "True", "type": "work", "value": "entra@example.com"}],
            "name": {"formatted": "Ada L", "familyName": "L", "givenName": "Ada"},
            "roles": [],
            (ENTERPRISE): {"employeeNumber": "1", "department": "R&D",
                           "manager": [{"value": okta["id"]}]}
        })))
        .await;
        assert_eq!(status, 201, "{entra}");

        // A PATCH that adds an undeclared attribute; a group with one.
        let id = okta["id"].as_str().unwrap();
        let (status, err) = send(
            server
                .scim_req(Method::PATCH, &format!("/Users/{id}"))
                .json(&json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "value": {"customThing": "x"}}]
                })),
        )
        .await;
        assert_eq!(status, 400, "{err}");
        assert_scim_error(&err, 400, Some("invalidValue"));
        assert!(
            get(server, &format!("/Users/{id}"))
                .await
                .get("customThing")
                .is_none()
        );
        let (status, err) = send(server.scim_req(Method::POST, "/Groups").json(&json!({
            "schemas": [GROUP], "displayName": "G", "description": "undeclared"
        })))
        .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(groups_named(server, "G").await, 0);

        // In a Bulk request: that operation fails, the others run.
        let results = bulk_ok(
            server,
            request(json!([
                {"method": "POST", "path": "/Users", "bulkId": "c", "data": custom},
                {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                    "schemas": [GROUP], "displayName": "G", "members": [{"value": id}]}}
            ])),
        )
        .await;
        assert_eq!(results[0]["status"], "400", "{results:?}");
        assert_scim_error(&results[0]["response"], 400, Some("invalidValue"));
        assert_eq!(results[1]["status"], "201", "{results:?}");
        assert_eq!(users_named(server, "custom@example.com").await, 0);
        assert_eq!(groups_named(server, "G").await, 1);
    }
}
