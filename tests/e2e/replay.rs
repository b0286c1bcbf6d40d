//! Replays of the provisioning sequences Okta and Microsoft Entra ID run against a SCIM
//! server, with the request bodies of their documentation (Okta's SCIM 2.0 reference, Entra's
//! SCIM request examples and its known-issues page; see /work/shared/IDP-BEHAVIOUR.md §1f).
//! Every status code and every part of the answers the IdP relies on is asserted: the
//! ListResponse shape (`totalResults` an integer, `Resources`, `startIndex`), `Location` on
//! create, 200 with the resource for User PATCH, 204 without a body for Group PATCH.

use std::collections::BTreeSet;

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use roster_proto::v1 as pb;

use crate::harness::{TestServer, assert_scim_error, authed, on_both_backends};

on_both_backends!(
    okta_provisioning_replay,
    entra_provisioning_replay,
    removing_active_leaves_the_user_inactive,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ENTRA_GROUP: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// Status, headers and JSON body (Null when empty); a body is always `application/scim+json`.
async fn call(req: RequestBuilder) -> (StatusCode, HeaderMap, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    if bytes.is_empty() {
        return (status, headers, Value::Null);
    }
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok());
    assert_eq!(ctype, Some("application/scim+json"), "{status}");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: body is not JSON ({e}): {bytes:?}"));
    (status, headers, body)
}

/// A request with a JSON body sent as IdPs send it (`Content-Type: application/json`).
fn with_json(req: RequestBuilder, body: &Value) -> RequestBuilder {
    req.header("content-type", "application/json")
        .body(body.to_string())
}

fn patch_body(ops: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": ops})
}

/// `GET {path}?filter=…[&extra]`: asserts a well-formed ListResponse and returns it.
async fn list(server: &TestServer, path: &str, query: &[(&str, &str)]) -> Value {
    let (status, _, body) = call(server.scim_req(Method::GET, path).query(query)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schemas"], json!([LIST]), "{body}");
    let total = body["totalResults"].as_u64().expect("integer totalResults");
    let resources = body["Resources"].as_array().expect("Resources");
    assert!(resources.len() as u64 <= total, "{body}");
    assert_eq!(body["itemsPerPage"], resources.len(), "{body}");
    assert!(body["startIndex"].as_u64().is_some(), "{body}");
    body
}

/// POST a resource: 201, `Location` = `meta.location` = `{base}/{kind}/{id}`, and the body.
async fn create(server: &TestServer, kind: &str, body: &Value) -> Value {
    let req = with_json(server.scim_req(Method::POST, &format!("/{kind}")), body);
    let (status, headers, created) = call(req).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id");
    let location = headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location header");
    assert_eq!(location, format!("{}/{kind}/{id}", server.scim));
    assert_eq!(created["meta"]["location"], location);
    assert!(headers.get("etag").is_some(), "ETag header");
    created
}

/// A User PATCH: 200 with the whole resource (RFC 7644 §3.5.2).
async fn patch_user(server: &TestServer, id: &str, ops: Value) -> Value {
    let req = with_json(
        server.scim_req(Method::PATCH, &format!("/Users/{id}")),
        &patch_body(ops),
    );
    let (status, _, body) = call(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id);
    assert!(
        body["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!(USER))
    );
    assert!(body["userName"].is_string(), "{body}");
    body
}

/// A Group PATCH as the IdPs send it: 204 and no body, whatever the group's size.
async fn patch_group(server: &TestServer, id: &str, ops: Value) {
    let req = with_json(
        server.scim_req(Method::PATCH, &format!("/Groups/{id}")),
        &patch_body(ops),
    );
    let (status, _, body) = call(req).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null);
}

async fn get(server: &TestServer, path: &str) -> Value {
    let (status, _, body) = call(server.scim_req(Method::GET, path)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn delete(server: &TestServer, path: &str) {
    let (status, _, body) = call(server.scim_req(Method::DELETE, path)).await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(body, Value::Null);
    let (status, _, err) = call(server.scim_req(Method::GET, path)).await;
    assert_eq!(status, 404, "{err}");
    assert_scim_error(&err, 404, None);
}

async fn members(server: &TestServer, group_id: &str) -> BTreeSet<String> {
    let group = get(server, &format!("/Groups/{group_id}")).await;
    group["members"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|x| x["value"].as_str().expect("member value").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn ids<const N: usize>(ids: [&str; N]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

fn okta_user(user_name: &str, external_id: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": external_id,
        "groups": [],
        "password": "1mz050nq",
        "active": true
    })
}

async fn okta_provisioning_replay(server: &TestServer) {
    // Test API Credentials: a lookup of a user that cannot exist, then the first page.
    let random = format!("{}@okta.local", uuid::Uuid::new_v4());
    let probe = format!("userName eq \"{random}\"");
    let page = list(
        server,
        "/Users",
        &[("filter", &probe), ("startIndex", "1"), ("count", "1")],
    )
    .await;
    assert_eq!(
        (page["totalResults"].clone(), page["startIndex"].clone()),
        (json!(0), json!(1))
    );
    let page = list(server, "/Users", &[("startIndex", "1"), ("count", "2")]).await;
    assert_eq!(page["totalResults"], 0);

    // Create: the lookup by userName finds nothing, then POST with Okta's body.
    let lookup = "userName eq \"test.user@okta.local\"";
    let query = [("filter", lookup), ("startIndex", "1"), ("count", "100")];
    assert_eq!(list(server, "/Users", &query).await["totalResults"], 0);
    let created = create(
        server,
        "Users",
        &okta_user("test.user@okta.local", "00ujl29u0le5T6Aj10h7"),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["userName"], "test.user@okta.local");
    assert_eq!(created["active"], true);
    assert_eq!(created["externalId"], "00ujl29u0le5T6Aj10h7");
    assert_eq!(
        created["emails"],
        json!([{"value": "test.user@okta.local", "type": "work", "primary": true}])
    );
    assert!(created.get("password").is_none(), "{created}");
    let page = list(server, "/Users", &query).await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"][0]["id"], id.as_str());
    // Assigned again (a retry): 409 uniqueness, and nothing changes.
    let req = with_json(
        server.scim_req(Method::POST, "/Users"),
        &okta_user("test.user@okta.local", "00ujl29u0le5T6Aj10h7"),
    );
    let (status, _, err) = call(req).await;
    assert_eq!(status, 409, "{err}");
    assert_scim_error(&err, 409, Some("uniqueness"));

    // Profile update: GET the user, then PUT it back whole with the changes.
    let mut user = get(server, &format!("/Users/{id}")).await;
    user["name"]["familyName"] = json!("Updated");
    user["emails"][0]["value"] = json!("test.user@example.com");
    let req = with_json(server.scim_req(Method::PUT, &format!("/Users/{id}")), &user);
    let (status, _, updated) = call(req).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["name"],
        json!({"givenName": "Test", "familyName": "Updated"})
    );
    assert_eq!(updated["emails"][0]["value"], "test.user@example.com");
    assert_eq!(updated["active"], true);
    assert_ne!(updated["meta"]["version"], user["meta"]["version"]);
    assert_eq!(get(server, &format!("/Users/{id}")).await, updated);

    // Deactivate, then reactivate: pathless replace of `active`, 200 with the user.
    let body = patch_user(
        server,
        &id,
        json!([{"op": "replace", "value": {"active": false}}]),
    )
    .await;
    assert_eq!(body["active"], false);
    assert_eq!(body["name"]["familyName"], "Updated", "the whole resource");
    assert_eq!(get(server, &format!("/Users/{id}")).await["active"], false);
    let page = list(server, "/Users", &query).await;
    assert_eq!(
        page["Resources"][0]["active"], false,
        "still found while inactive"
    );
    let body = patch_user(
        server,
        &id,
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .await;
    assert_eq!(body["active"], true);
    // A PATCH answer honours attributes/excludedAttributes like a GET.
    let req = with_json(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .query(&[("attributes", "active")]),
        &patch_body(json!([{"op": "replace", "path": "active", "value": true}])),
    );
    let (status, _, body) = call(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    assert_eq!(body["id"], id.as_str(), "id is always returned");
    assert!(
        body.get("name").is_none() && body.get("emails").is_none(),
        "{body}"
    );
    let req = with_json(
        server
            .scim_req(Method::PATCH, &format!("/Users/{id}"))
            .query(&[("excludedAttributes", "emails,name")]),
        &patch_body(json!([{"op": "replace", "path": "displayName", "value": "T. User"}])),
    );
    let (status, _, body) = call(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["displayName"], "T. User");
    assert!(
        body.get("name").is_none() && body.get("emails").is_none(),
        "{body}"
    );
    assert_eq!(body["userName"], "test.user@okta.local");

    // Import: pages of `count` from startIndex 1 until totalResults, each user once.
    let mut all = vec![id.clone()];
    for i in 0..4 {
        let user = okta_user(&format!("import{i}@okta.local"), &format!("00uimport{i}"));
        all.push(
            create(server, "Users", &user).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let start_text = start.to_string();
        let page = list(
            server,
            "/Users",
            &[("startIndex", start_text.as_str()), ("count", "2")],
        )
        .await;
        assert_eq!(page["totalResults"], 5);
        assert_eq!(page["startIndex"], start);
        let items = page["Resources"].as_array().expect("Resources");
        seen.extend(
            items
                .iter()
                .map(|u| u["id"].as_str().expect("id").to_owned()),
        );
        start += 2;
        if start > 5 {
            break;
        }
    }
    assert_eq!(seen, all, "every user once, in a stable order");

    // Push Groups: create empty.
    let group = create(
        server,
        "Groups",
        &json!({"schemas": [GROUP], "displayName": "Test SCIMv2", "members": []}),
    )
    .await;
    let gid = group["id"].as_str().expect("id").to_owned();
    assert_eq!(group["displayName"], "Test SCIMv2");
    assert!(
        group.get("members").is_none_or(|m| m == &json!([])),
        "{group}"
    );
    // Rename: pathless replace with the id.
    patch_group(
        server,
        &gid,
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 Renamed"}}]),
    )
    .await;
    assert_eq!(
        get(server, &format!("/Groups/{gid}")).await["displayName"],
        "Test SCIMv2 Renamed"
    );
    // Membership: add with display, remove with a value filter.
    let (u1, u2, u3) = (all[1].as_str(), all[2].as_str(), all[3].as_str());
    patch_group(
        server,
        &gid,
        json!([{"op": "add", "path": "members", "value": [
            {"value": id, "display": "test.user@okta.local"},
            {"value": u1, "display": "import0@okta.local"}
        ]}]),
    )
    .await;
    assert_eq!(members(server, &gid).await, ids([id.as_str(), u1]));
    patch_group(
        server,
        &gid,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{id}\"]")},
            {"op": "add", "path": "members", "value": [{"value": u2, "display": "import1@okta.local"}]}
        ]),
    )
    .await;
    assert_eq!(members(server, &gid).await, ids([u1, u2]));
    // The rename Okta sends with every membership push.
    patch_group(
        server,
        &gid,
        json!([{"op": "replace", "value": {"id": gid, "displayName": "Test SCIMv2 Renamed"}}]),
    )
    .await;
    assert_eq!(members(server, &gid).await, ids([u1, u2]));
    // Full push: replace members with the whole list, then with an empty group.
    patch_group(
        server,
        &gid,
        json!([{"op": "replace", "path": "members", "value": [
            {"value": u2, "display": "import1@okta.local"},
            {"value": u3, "display": "import2@okta.local"}
        ]}]),
    )
    .await;
    assert_eq!(members(server, &gid).await, ids([u2, u3]));
    let user3 = get(server, &format!("/Users/{u3}")).await;
    assert_eq!(user3["groups"][0]["value"], gid.as_str());
    patch_group(
        server,
        &gid,
        json!([{"op": "replace", "path": "members", "value": []}]),
    )
    .await;
    assert!(members(server, &gid).await.is_empty());
    // A member that is no user is refused with invalidValue, and changes nothing.
    let req = with_json(
        server.scim_req(Method::PATCH, &format!("/Groups/{gid}")),
        &patch_body(
            json!([{"op": "add", "path": "members", "value": [{"value": "00u-no-such-user"}]}]),
        ),
    );
    let (status, _, err) = call(req).await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    assert!(members(server, &gid).await.is_empty());
    // Unlink and delete.
    delete(server, &format!("/Groups/{gid}")).await;
}

async fn entra_provisioning_replay(server: &TestServer) {
    // Test connection: a random GUID on the matching attribute, and a random group.
    let guid = uuid::Uuid::new_v4().to_string();
    let page = list(
        server,
        "/Users",
        &[("filter", &format!("userName eq \"{guid}\""))],
    )
    .await;
    assert_eq!(page["totalResults"], 0);
    assert_eq!(page["Resources"], json!([]));
    let filter = format!("displayName eq \"{guid}\"");
    let page = list(
        server,
        "/Groups",
        &[("excludedAttributes", "members"), ("filter", &filter)],
    )
    .await;
    assert_eq!(page["totalResults"], 0);

    // Create: query by the matching attributes first, then POST.
    let user_name = "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1";
    let external_id = "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef";
    let by_name = format!("userName eq \"{user_name}\"");
    let by_external_id = format!("externalId eq \"{external_id}\"");
    assert_eq!(
        list(server, "/Users", &[("filter", &by_name)]).await["totalResults"],
        0
    );
    assert_eq!(
        list(server, "/Users", &[("filter", &by_external_id)]).await["totalResults"],
        0
    );
    let created = create(
        server,
        "Users",
        &json!({
            "schemas": [USER, ENTERPRISE],
            "externalId": external_id,
            "userName": user_name,
            "active": true,
            "emails": [{
                "primary": true,
                "type": "work",
                "value": "Test_User_fd0ea19b-0777-472c-9f96-4f70d2226f2e@testuser.com"
            }],
            "meta": {"resourceType": "User"},
            "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"},
            "roles": [],
            (ENTERPRISE): {"employeeNumber": "701984", "department": "Sales"}
        }),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_owned();
    assert!(
        created["schemas"]
            .as_array()
            .expect("schemas")
            .contains(&json!(ENTERPRISE))
    );
    assert_eq!(created[ENTERPRISE]["employeeNumber"], "701984");
    assert_eq!(created["name"]["formatted"], "givenName familyName");
    for filter in [&by_name, &by_external_id] {
        let page = list(server, "/Users", &[("filter", filter)]).await;
        assert_eq!(page["totalResults"], 1, "{filter}");
        assert_eq!(page["Resources"][0]["id"], id.as_str());
    }

    // Update, multi-valued and single-valued, with Entra's capitalised ops.
    let body = patch_user(
        server,
        &id,
        json!([
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}
        ]),
    )
    .await;
    assert_eq!(
        body["emails"],
        json!([{"value": "updatedEmail@microsoft.com", "type": "work", "primary": true}])
    );
    assert_eq!(body["name"]["familyName"], "updatedFamilyName");
    assert_eq!(body["name"]["givenName"], "givenName");
    let renamed = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com";
    let body = patch_user(
        server,
        &id,
        json!([{"op": "Replace", "path": "userName", "value": renamed}]),
    )
    .await;
    assert_eq!(body["userName"], renamed);
    let page = list(
        server,
        "/Users",
        &[("filter", &format!("userName eq \"{renamed}\""))],
    )
    .await;
    assert_eq!(page["totalResults"], 1);

    // Pathless replace whose keys are paths: dotted and URN-qualified.
    let body = patch_user(
        server,
        &id,
        json!([{"op": "replace", "value": {
            "displayName": "Entra Display",
            "name.givenName": "updatedGivenName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42",
            "urn:ietf:params:scim:schemas:core:2.0:User:title": "Engineer"
        }}]),
    )
    .await;
    assert_eq!(body["displayName"], "Entra Display");
    assert_eq!(body["name"]["givenName"], "updatedGivenName");
    assert_eq!(body["name"]["familyName"], "updatedFamilyName");
    assert_eq!(body["title"], "Engineer");
    assert_eq!(
        body[ENTERPRISE],
        json!({"employeeNumber": "42", "department": "Sales"})
    );

    // `add` on a value filter that matches nothing creates the value (Entra's validator).
    let bare = create(
        server,
        "Users",
        &json!({"schemas": [USER], "userName": "no.email@contoso.com", "active": true}),
    )
    .await;
    let bare_id = bare["id"].as_str().expect("id").to_owned();
    assert!(bare.get("emails").is_none(), "{bare}");
    let body = patch_user(
        server,
        &bare_id,
        json!([{"op": "Add", "path": "emails[type eq \"work\"].value", "value": "no.email@contoso.com"}]),
    )
    .await;
    assert_eq!(
        body["emails"],
        json!([{"value": "no.email@contoso.com", "type": "work"}])
    );
    let page = list(
        server,
        "/Users",
        &[("filter", "emails.value eq \"no.email@contoso.com\"")],
    )
    .await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"][0]["id"], bare_id.as_str());

    // Disable with the string "False"; the user stays readable and findable. Then "True".
    let body = patch_user(
        server,
        &id,
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
    )
    .await;
    assert_eq!(body["active"], false);
    assert_eq!(get(server, &format!("/Users/{id}")).await["active"], false);
    let page = list(server, "/Users", &[("filter", &by_external_id)]).await;
    assert_eq!(page["Resources"][0]["active"], false);
    let body = patch_user(
        server,
        &id,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    )
    .await;
    assert_eq!(body["active"], true);

    // Groups: create with Entra's extra schema (members come back as a list).
    let group = create(
        server,
        "Groups",
        &json!({
            "schemas": [GROUP, ENTRA_GROUP],
            "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
            "displayName": "displayName",
            "meta": {"resourceType": "Group"}
        }),
    )
    .await;
    let gid = group["id"].as_str().expect("id").to_owned();
    assert_eq!(group["externalId"], "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159");
    assert!(
        group.get("members").is_none_or(|m| m == &json!([])),
        "{group}"
    );
    let page = list(
        server,
        "/Groups",
        &[
            ("excludedAttributes", "members"),
            ("filter", "displayName eq \"displayName\""),
        ],
    )
    .await;
    assert_eq!(page["totalResults"], 1);
    assert_eq!(page["Resources"][0]["id"], gid.as_str());
    assert!(page["Resources"][0].get("members").is_none(), "{page}");
    let basic = get(server, &format!("/Groups/{gid}?excludedAttributes=members")).await;
    assert_eq!(basic["displayName"], "displayName");
    assert!(basic.get("members").is_none(), "{basic}");

    // Non-member attributes, then members added and removed with value lists.
    let new_name = "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName";
    patch_group(
        server,
        &gid,
        json!([{"op": "Replace", "path": "displayName", "value": new_name}]),
    )
    .await;
    patch_group(
        server,
        &gid,
        json!([{"op": "Add", "path": "members", "value": [
            {"$ref": null, "value": id},
            {"$ref": null, "value": bare_id}
        ]}]),
    )
    .await;
    assert_eq!(
        members(server, &gid).await,
        ids([id.as_str(), bare_id.as_str()])
    );
    patch_group(
        server,
        &gid,
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": bare_id}]}]),
    )
    .await;
    assert_eq!(
        members(server, &gid).await,
        ids([id.as_str()]),
        "only the listed member goes"
    );
    let page = list(
        server,
        "/Groups",
        &[
            ("excludedAttributes", "members"),
            ("filter", &format!("displayName eq \"{new_name}\"")),
        ],
    )
    .await;
    assert_eq!(page["totalResults"], 1);
    // With a projection, a Group PATCH answers 200 and the group.
    let req = with_json(
        server
            .scim_req(Method::PATCH, &format!("/Groups/{gid}"))
            .query(&[("excludedAttributes", "members")]),
        &patch_body(json!([{"op": "Replace", "path": "externalId", "value": "ext-2"}])),
    );
    let (status, _, body) = call(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["externalId"], "ext-2");
    assert_eq!(body["displayName"], new_name);
    assert!(body.get("members").is_none(), "{body}");

    // Hard delete of the user, then of the group.
    delete(server, &format!("/Users/{bare_id}")).await;
    delete(server, &format!("/Groups/{gid}")).await;
    assert_eq!(
        get(server, &format!("/Users/{id}")).await["groups"],
        Value::Null
    );
}

/// `remove` of `active` (RFC 7644 §3.5.2.2) leaves the user inactive, on the fast path and on
/// the general one; a PUT that leaves `active` out keeps it (RFC 7644 §3.5.1: not asserted).
async fn removing_active_leaves_the_user_inactive(server: &TestServer) {
    let user = create(
        server,
        "Users",
        &okta_user("active@okta.local", "00uactive"),
    )
    .await;
    let id = user["id"].as_str().expect("id").to_owned();
    // RFC 7644 §3.5.2.2: the attribute is removed and unassigned: not shown, not `pr`, not
    // `eq false`; the user is denied like an inactive one.
    let body = patch_user(server, &id, json!([{"op": "remove", "path": "active"}])).await;
    assert!(body.get("active").is_none(), "{body}");
    assert!(
        get(server, &format!("/Users/{id}"))
            .await
            .get("active")
            .is_none()
    );
    let matching = |filter: &'static str| async move {
        let (status, _, list) = call(
            server
                .scim_req(Method::GET, "/Users")
                .query(&[("filter", filter)]),
        )
        .await;
        assert_eq!(status, 200, "{list}");
        list["totalResults"].as_i64().expect("totalResults")
    };
    assert_eq!(matching("active pr").await, 0);
    assert_eq!(matching("active eq false").await, 0);
    assert_eq!(matching("active eq true").await, 0);
    assert_eq!(matching("not (active pr)").await, 1);
    let channel = server.channel().await;
    let check = pb::access_service_client::AccessServiceClient::new(channel)
        .check_permission(authed(
            &server.scim_token,
            pb::CheckPermissionRequest {
                user_id: id.clone(),
                permission: "reporting.view".into(),
            },
        ))
        .await
        .expect("check")
        .into_inner();
    assert!(!check.allowed, "an unassigned status denies: {check:?}");

    // A later PATCH of another attribute (the general path) keeps it unassigned.
    let body = patch_user(
        server,
        &id,
        json!([
            {"op": "add", "path": "phoneNumbers", "value": [{"value": "+1 555 0100", "type": "work"}]}
        ]),
    )
    .await;
    assert!(body.get("active").is_none(), "{body}");
    assert_eq!(body["phoneNumbers"][0]["value"], "+1 555 0100");

    // Assigned again, by PATCH, then kept by a PUT that leaves it out.
    let body = patch_user(
        server,
        &id,
        json!([{"op": "replace", "value": {"active": true}}]),
    )
    .await;
    assert_eq!(body["active"], true);
    let req = with_json(
        server.scim_req(Method::PUT, &format!("/Users/{id}")),
        &json!({"schemas": [USER], "userName": "active@okta.local"}),
    );
    let (status, _, body) = call(req).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"], true);
    // Removed together with another change (the general path).
    let body = patch_user(
        server,
        &id,
        json!([
            {"op": "remove", "path": "active"},
            {"op": "replace", "path": "title", "value": "Engineer"}
        ]),
    )
    .await;
    assert!(body.get("active").is_none(), "{body}");
    assert_eq!(body["title"], "Engineer");
}
