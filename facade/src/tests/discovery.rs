//! Router tests of the discovery endpoints, `/Me` and `/Bulk`; and the check that every
//! attribute the User and Group converters render is declared in `/Schemas`.

use super::*;

use crate::scim::group::group_to_scim;
use crate::scim::user::user_to_scim;

const BASE: &str = "https://r.example/scim/v2";
const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const ROSTER_URN: &str = "urn:ietf:params:scim:schemas:extension:roster:2.0:User";

/// Every discovery endpoint, as paths under `/scim/v2`.
const ENDPOINTS: [&str; 7] = [
    "/ServiceProviderConfig",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/ResourceTypes/Group",
    "/Schemas",
    "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group",
];

async fn get(app: &Router, path: &str) -> Reply {
    send(
        app,
        Method::GET,
        &format!("/scim/v2{path}"),
        Some("good"),
        None,
    )
    .await
}

fn assert_scim_ok(reply: &Reply) {
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
}

#[tokio::test]
async fn discovery_needs_a_token_that_whoami_accepts() {
    for path in ENDPOINTS {
        let mock = Mock::default();
        let app = app(&mock);
        let uri = format!("/scim/v2{path}");

        let reply = send(&app, Method::GET, &uri, None, None).await;
        assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
        assert_eq!(
            reply.headers[header::WWW_AUTHENTICATE],
            "Bearer realm=\"roster\", Basic realm=\"roster\""
        );
        assert!(
            mock.calls().is_empty(),
            "{path}: no gRPC call without a token"
        );

        let reply = send(&app, Method::GET, &uri, Some("Bearer bad"), None).await;
        assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
        assert_eq!(only(mock.calls()), Call::WhoAmI, "{path}");

        let mock = Mock::default();
        let reply = send(&super::app(&mock), Method::GET, &uri, Some("good"), None).await;
        assert_scim_ok(&reply);
        assert_eq!(
            only(mock.calls()),
            Call::WhoAmI,
            "{path}: one WhoAmI, nothing else"
        );
        assert_eq!(mock.0.lock().unwrap().authorization, vec!["Bearer good"]);
    }
}

#[tokio::test]
async fn service_provider_config_describes_what_roster_does() {
    let mock = Mock::default();
    let app = app_with(
        &mock,
        FacadeConfig {
            public_base_url: Some(format!("{BASE}/")),
            max_page_size: 250,
            ..FacadeConfig::default()
        },
    );
    let reply = get(&app, "/ServiceProviderConfig").await;
    assert_scim_ok(&reply);
    assert_eq!(
        reply.body,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576},
            "filter": {"supported": true, "maxResults": 250},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": 100,
                "maxPageSize": 250,
                "cursorTimeout": 86400
            },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A Roster API token, sent as `Authorization: Bearer <token>`. The bare token, without the `Bearer` scheme, is accepted too.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            }, {
                "type": "httpbasic",
                "name": "HTTP Basic",
                "description": "Basic credentials minted by Roster (CreateToken with basic_auth), for identity providers configured with Basic authentication.",
                "specUri": "https://www.rfc-editor.org/info/rfc7617",
                "primary": false
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{BASE}/ServiceProviderConfig")
            }
        })
    );
    assert!(reply.body.get("documentationUri").is_none());
}

#[tokio::test]
async fn meta_location_falls_back_to_the_served_address() {
    let mock = Mock::default();
    let app = app_with(&mock, FacadeConfig::default());
    let reply = get(&app, "/ServiceProviderConfig").await;
    assert_eq!(
        reply.body["meta"]["location"],
        "http://127.0.0.1:8080/scim/v2/ServiceProviderConfig"
    );
    assert_eq!(reply.body["filter"]["maxResults"], 1000);
    let reply = get(&app, "/ResourceTypes/Group").await;
    assert_eq!(
        reply.body["meta"]["location"],
        "http://127.0.0.1:8080/scim/v2/ResourceTypes/Group"
    );
}

#[tokio::test]
async fn resource_types_list_and_lookup() {
    let mock = Mock::default();
    let app = app(&mock);
    // Paging parameters are ignored (RFC 7644 §4).
    let reply = get(&app, "/ResourceTypes?startIndex=2&count=1").await;
    assert_scim_ok(&reply);
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(reply.body["totalResults"], 2);
    assert_eq!(reply.body["itemsPerPage"], 2);
    assert_eq!(reply.body["startIndex"], 1);
    let resources = reply.body["Resources"].as_array().unwrap().clone();
    assert_eq!(
        resources[0],
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "User Account",
            "schema": USER_URN,
            "schemaExtensions": [
                {"schema": ENTERPRISE_URN, "required": false},
                {"schema": ROSTER_URN, "required": false}
            ],
            "meta": {"resourceType": "ResourceType", "location": format!("{BASE}/ResourceTypes/User")}
        })
    );
    assert_eq!(
        resources[1],
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "Group",
            "schema": GROUP_URN,
            "meta": {"resourceType": "ResourceType", "location": format!("{BASE}/ResourceTypes/Group")}
        })
    );
    for resource in &resources {
        let id = resource["id"].as_str().unwrap();
        let reply = get(&app, &format!("/ResourceTypes/{id}")).await;
        assert_scim_ok(&reply);
        assert_eq!(&reply.body, resource);
    }
    let reply = get(&app, "/ResourceTypes/Device").await;
    assert_scim_error(&reply, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn schemas_list_and_lookup() {
    let mock = Mock::default();
    let app = app(&mock);
    let reply = get(&app, "/Schemas").await;
    assert_scim_ok(&reply);
    assert_eq!(reply.body["totalResults"], 4);
    let resources = reply.body["Resources"].as_array().unwrap().clone();
    let ids: Vec<&str> = resources
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![USER_URN, ENTERPRISE_URN, ROSTER_URN, GROUP_URN]);
    for schema in &resources {
        let id = schema["id"].as_str().unwrap();
        assert_eq!(
            schema["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:Schema"])
        );
        assert_eq!(
            schema["meta"],
            json!({"resourceType": "Schema", "location": format!("{BASE}/Schemas/{id}")})
        );
        let reply = get(&app, &format!("/Schemas/{id}")).await;
        assert_scim_ok(&reply);
        assert_eq!(&reply.body, schema);
    }
    // A percent-encoded URN is the same URN.
    let reply = get(
        &app,
        "/Schemas/urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Acore%3A2.0%3AGroup",
    )
    .await;
    assert_scim_ok(&reply);
    assert_eq!(reply.body["id"], GROUP_URN);
    for unknown in ["/Schemas/urn:example:nope", "/Schemas/User"] {
        assert_scim_error(&get(&app, unknown).await, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_filter_on_discovery_is_403() {
    let mock = Mock::default();
    let app = app(&mock);
    for path in ENDPOINTS {
        let reply = get(&app, &format!("{path}?filter=id%20eq%20%22User%22")).await;
        assert_scim_error(&reply, StatusCode::FORBIDDEN);
        assert!(reply.body["detail"].as_str().unwrap().contains("filter"));
    }
    // An empty filter is no filter.
    assert_scim_ok(&get(&app, "/Schemas?filter=").await);
}

#[tokio::test]
async fn writes_to_discovery_are_405() {
    let mock = Mock::default();
    let app = app(&mock);
    for path in ENDPOINTS {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let reply = send(
                &app,
                method.clone(),
                &format!("/scim/v2{path}"),
                Some("good"),
                Some(json!({})),
            )
            .await;
            assert_scim_error(&reply, StatusCode::METHOD_NOT_ALLOWED);
            let allow = reply.headers[header::ALLOW].to_str().unwrap();
            assert!(allow.contains("GET"), "{method} {path}: Allow {allow}");
        }
    }
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn me_is_501_and_bulk_is_post_only() {
    let mock = Mock::default();
    let app = app(&mock);
    let methods = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    for method in methods.clone() {
        for path in ["/scim/v2/Me", "/scim/v2/Me/groups"] {
            let reply = send(&app, method.clone(), path, Some("good"), None).await;
            assert_scim_error(&reply, StatusCode::NOT_IMPLEMENTED);
            assert!(
                reply.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("/Me is not supported"),
                "{}",
                reply.body
            );
        }
    }
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let reply = send(&app, method, "/scim/v2/Bulk", Some("good"), None).await;
        assert_scim_error(&reply, StatusCode::METHOD_NOT_ALLOWED);
    }
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn bulk_runs_each_operation_through_the_single_resource_code() {
    let mock = Mock::default();
    let app = app(&mock);
    let body = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            // A forward reference: the POST of "u" runs first.
            {"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "G", "members": [{"value": "bulkId:u"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada"}},
            {"method": "DELETE", "path": "/Users/bulkId:nope"},
            {"method": "POST", "path": "/Users", "bulkId": "bad", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 5}}
        ]
    });
    let reply = send(
        &app,
        Method::POST,
        "/scim/v2/Bulk",
        Some("good"),
        Some(body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
    assert_eq!(
        reply.body,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
            "Operations": [
                {"method": "POST", "bulkId": "g", "location": format!("{BASE}/Groups/g-new"), "status": "201"},
                {"method": "POST", "bulkId": "u", "location": format!("{BASE}/Users/u-new"), "version": "W/\"1\"", "status": "201"},
                {"method": "DELETE", "status": "409", "response": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409",
                    "detail": "\"bulkId:nope\" cannot be resolved: no POST of this request with that bulkId succeeded"}},
                {"method": "POST", "bulkId": "bad", "status": "400", "response": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400",
                    "scimType": "invalidValue", "detail": "'userName' must be a string"}}
            ]
        })
    );
    let calls = mock.calls();
    // WhoAmI once, the user, then the group with the user's id as its member.
    assert!(matches!(calls[0], Call::WhoAmI), "{calls:?}");
    assert!(matches!(calls[1], Call::CreateUser(_)), "{calls:?}");
    let Call::CreateGroup(group) = &calls[2] else {
        panic!("{calls:?}");
    };
    assert_eq!(group.group.as_ref().unwrap().members[0].user_id, "u-new");
    assert_eq!(calls.len(), 3, "{calls:?}");
}

/// What is wrong with a rendered resource against the served schemas: each attribute rendered
/// but not declared (or of another type, or declared `returned: never`).
fn undeclared(doc: &Value, schemas: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let find = |urn: &str| schemas.iter().find(|s| s["id"] == urn);
    let urns: Vec<&str> = doc["schemas"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(core) = urns.first().and_then(|urn| find(urn)) else {
        return vec![format!("no schema for {:?}", doc["schemas"])];
    };
    for (key, value) in doc.as_object().unwrap() {
        // Common attributes (RFC 7643 §3), not declared in schemas.
        if key == "schemas" || key == "meta" {
            continue;
        }
        if key.starts_with("urn:") {
            if !urns.contains(&key.as_str()) {
                problems.push(format!("{key} is rendered but not listed in schemas"));
            }
            let Some(extension) = find(key) else {
                problems.push(format!("{key} has no schema document"));
                continue;
            };
            for (name, v) in value.as_object().into_iter().flatten() {
                let path = format!("{key}:{name}");
                check_attribute(&extension["attributes"], name, v, &path, &mut problems);
            }
        } else {
            check_attribute(&core["attributes"], key, value, key, &mut problems);
        }
    }
    problems
}

fn check_attribute(
    declared: &Value,
    name: &str,
    value: &Value,
    path: &str,
    problems: &mut Vec<String>,
) {
    let Some(decl) = declared
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["name"] == name)
    else {
        problems.push(format!("{path} is rendered but not declared in /Schemas"));
        return;
    };
    if decl["returned"] == "never" {
        problems.push(format!("{path} is rendered but declared returned: never"));
    }
    if decl["multiValued"] == true {
        match value.as_array() {
            Some(items) => {
                for item in items {
                    check_value(decl, item, path, problems);
                }
            }
            None => problems.push(format!("{path} is declared multi-valued: {value}")),
        }
    } else {
        check_value(decl, value, path, problems);
    }
}

fn check_value(decl: &Value, value: &Value, path: &str, problems: &mut Vec<String>) {
    let ok = match decl["type"].as_str().unwrap_or_default() {
        "complex" => match value.as_object() {
            Some(map) => {
                for (name, v) in map {
                    let sub = format!("{path}.{name}");
                    check_attribute(&decl["subAttributes"], name, v, &sub, problems);
                }
                true
            }
            None => false,
        },
        "boolean" => value.is_boolean(),
        "integer" | "decimal" => value.is_number(),
        _ => value.is_string(),
    };
    if !ok {
        problems.push(format!("{path} is declared {}: {value}", decl["type"]));
    }
}

fn timestamp() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: 1_700_000_000,
        nanos: 0,
    })
}

/// A user with every field set, even where the service would leave one empty (no
/// `..Default::default()`: a new proto field breaks this until it is filled in here), and every
/// stored attribute the schemas describe.
fn full_user() -> User {
    let stored = json!({
        "phoneNumbers": [{"value": "+1 555 0100", "display": "work phone", "type": "work", "primary": true}],
        "addresses": [{
            "formatted": "1 Navy Way\nArlington, VA 22204 US", "streetAddress": "1 Navy Way",
            "locality": "Arlington", "region": "VA", "postalCode": "22204", "country": "US",
            "type": "work", "primary": true
        }],
        "ims": [{"value": "grace", "display": "grace", "type": "xmpp", "primary": false}],
        "photos": [{"value": "https://example.com/g.jpg", "display": "Grace", "type": "photo", "primary": true}],
        "entitlements": [{"value": "e", "display": "E", "type": "t", "primary": false}],
        "roles": [{"value": "Admin", "display": "Admin", "type": "WindowsAzureActiveDirectoryRole", "primary": true}],
        "x509Certificates": [{"value": "MIIB", "display": "cert", "type": "signing", "primary": false}],
        (ENTERPRISE_URN): {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Navy",
            "division": "Computing", "department": "Programming",
            "manager": {"value": "u-2", "$ref": format!("{BASE}/Users/u-2"), "displayName": "Boss"}
        }
    });
    User {
        id: "u-1".into(),
        user_name: "grace@example.com".into(),
        external_id: Some("00u9".into()),
        name: Some(PersonName {
            formatted: Some("RADM Grace Brewster Hopper, PhD".into()),
            family_name: Some("Hopper".into()),
            given_name: Some("Grace".into()),
            middle_name: Some("Brewster".into()),
            honorific_prefix: Some("RADM".into()),
            honorific_suffix: Some("PhD".into()),
        }),
        display_name: Some("Grace Hopper".into()),
        nick_name: Some("Amazing Grace".into()),
        profile_url: Some("https://example.com/grace".into()),
        title: Some("Admiral".into()),
        user_type: Some("Employee".into()),
        preferred_language: Some("en-US".into()),
        locale: Some("en-US".into()),
        timezone: Some("America/New_York".into()),
        active: true,
        emails: vec![Email {
            value: "grace@example.com".into(),
            r#type: Some("work".into()),
            primary: Some(true),
            display: Some("Grace (work)".into()),
        }],
        role: Some("admin".into()),
        effective_role: "admin".into(),
        role_source: RoleSource::Group as i32,
        role_group_id: "g-1".into(),
        active_unassigned: false,
        attributes_json: stored.to_string(),
        // Never returned by the service; the converter must not render it either.
        password: Some("s3cret".into()),
        groups: vec![GroupRef {
            id: "g-1".into(),
            display_name: "Engineering".into(),
        }],
        etag: "e1".into(),
        create_time: timestamp(),
        update_time: timestamp(),
    }
}

fn full_group() -> Group {
    Group {
        id: "g-1".into(),
        display_name: "Engineering".into(),
        external_id: Some("okta-g1".into()),
        members: vec![Member {
            user_id: "u-1".into(),
            display: "Grace Hopper".into(),
        }],
        member_count: 1,
        etag: "g1".into(),
        create_time: timestamp(),
        update_time: timestamp(),
    }
}

#[tokio::test]
async fn every_attribute_the_converters_render_is_declared_in_schemas() {
    let mock = Mock::with_user(full_user());
    let app = app(&mock);
    let schemas = get(&app, "/Schemas").await.body["Resources"]
        .as_array()
        .unwrap()
        .clone();

    // Through the router: the user as GET /Users/{id} answers it.
    let user = get(&app, "/Users/u-1").await;
    assert_scim_ok(&user);
    assert_eq!(
        user.body["schemas"],
        json!([USER_URN, ENTERPRISE_URN, ROSTER_URN])
    );
    let problems = undeclared(&user.body, &schemas);
    assert!(problems.is_empty(), "{problems:#?}");
    // The sample exercises every attribute the converter knows (but the password).
    let known = crate::scim::user::MAPPED
        .iter()
        .chain(crate::scim::user::PASSTHROUGH);
    for name in known.filter(|n| **n != "password") {
        assert!(
            user.body.get(*name).is_some(),
            "the sample renders no {name}"
        );
    }

    // The converters directly, with every field set.
    let group = group_to_scim(&full_group(), BASE, GroupView::Full);
    assert_eq!(group.as_object().unwrap().len(), 6, "{group}");
    let problems = undeclared(&group, &schemas);
    assert!(problems.is_empty(), "{problems:#?}");
    let reply = get(&app, "/Groups/g-1").await;
    assert!(undeclared(&reply.body, &schemas).is_empty());

    // And the check catches what it is there for.
    let mut doc = user_to_scim(&full_user(), BASE);
    doc["newThing"] = json!("x");
    doc["emails"][0]["label"] = json!("x");
    doc[ROSTER_URN]["level"] = json!(3);
    doc["password"] = json!("x");
    doc["active"] = json!("true");
    let problems = undeclared(&doc, &schemas);
    assert_eq!(
        problems,
        vec![
            "active is declared \"boolean\": \"true\"",
            "emails.label is rendered but not declared in /Schemas",
            "urn:ietf:params:scim:schemas:extension:roster:2.0:User:level is rendered but not declared in /Schemas",
            "newThing is rendered but not declared in /Schemas",
            "password is rendered but declared returned: never",
        ],
        "{problems:#?}"
    );
}
