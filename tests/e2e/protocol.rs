//! Authentication, tenancy and bad input over SCIM: exact error bodies, and nothing changed.

use reqwest::Method;
use roster_proto::v1 as pb;
use serde_json::json;

use crate::harness::{TestServer, assert_scim_error, authed, on_both_backends, send};

on_both_backends!(
    authentication,
    tenants_never_see_each_other,
    bad_input_changes_nothing,
    discovery,
    tenant_switches,
);

async fn user_count(server: &TestServer) -> i64 {
    let (status, list) = send(server.scim_req(Method::GET, "/Users?count=0")).await;
    assert_eq!(status, 200);
    list["totalResults"].as_i64().expect("totalResults")
}

async fn authentication(server: &TestServer) {
    let url = format!("{}/Users", server.scim);
    // No credential.
    let (status, err) = send(server.http.get(&url)).await;
    assert_eq!(status, 401);
    assert_scim_error(&err, 401, None);
    // A wrong token, and a POST with one: nothing is created.
    let (status, err) = send(server.http.get(&url).bearer_auth("rst_nope")).await;
    assert_eq!(status, 401);
    assert_scim_error(&err, 401, None);
    let (status, _) = send(
        server
            .http
            .post(&url)
            .bearer_auth("not-a-roster-token")
            .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"})),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(user_count(server).await, 0);
    // Okta's "HTTP Header" mode: the token alone.
    let (status, _) = send(
        server
            .http
            .get(&url)
            .header("authorization", server.scim_token.as_str()),
    )
    .await;
    assert_eq!(status, 200);
}

async fn tenants_never_see_each_other(server: &TestServer) {
    let other = server.scim_tenant("acme").await;

    let (status, mine) = send(server.scim_req(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "shared@example.com"
    })))
    .await;
    assert_eq!(status, 201);
    let id = mine["id"].as_str().expect("id");

    let as_other = |m: Method, p: &str| {
        server
            .http
            .request(m, format!("{}{p}", server.scim))
            .bearer_auth(&other)
    };
    let (status, _) = send(as_other(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 404);
    let (_, list) = send(as_other(Method::GET, "/Users")).await;
    assert_eq!(list["totalResults"], 0);
    let (status, _) = send(as_other(Method::DELETE, &format!("/Users/{id}"))).await;
    assert_eq!(status, 404);
    // The same userName is free in the other tenant.
    let (status, _) = send(as_other(Method::POST, "/Users").json(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "shared@example.com"
    })))
    .await;
    assert_eq!(status, 201);
    let (status, _) = send(server.scim_req(Method::GET, &format!("/Users/{id}"))).await;
    assert_eq!(status, 200);
}

async fn bad_input_changes_nothing(server: &TestServer) {
    let post = |body: String| {
        server
            .scim_req(Method::POST, "/Users")
            .header("content-type", "application/scim+json")
            .body(body)
    };
    let (status, err) = send(post("{\"userName\": ".into())).await;
    assert_eq!(status, 400);
    assert_scim_error(&err, 400, Some("invalidSyntax"));

    let (status, err) = send(post(
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "No Name"})
            .to_string(),
    ))
    .await;
    assert_eq!(status, 400);
    assert_scim_error(&err, 400, Some("invalidValue"));

    let (status, err) = send(post(
        json!({"schemas": ["urn:example:not:a:schema"], "userName": "x@example.com"}).to_string(),
    ))
    .await;
    assert_eq!(status, 400);
    assert!(
        err["scimType"] == "invalidValue" || err["scimType"] == "invalidSyntax",
        "{err}"
    );

    let (status, err) =
        send(server.scim_req(Method::GET, "/Users?filter=userName%20zz%20%22x%22")).await;
    assert_eq!(status, 400);
    assert_scim_error(&err, 400, Some("invalidFilter"));
    let (status, err) =
        send(server.scim_req(Method::GET, "/Users?filter=noSuchAttribute%20eq%20%22x%22")).await;
    assert_eq!(status, 400);
    assert_scim_error(&err, 400, Some("invalidFilter"));

    // Over the 1 MiB body limit.
    let huge = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "big@example.com",
        "displayName": "x".repeat(1024 * 1024 + 10)
    });
    // Over HTTP/2: the server answers 413 before reading the body, and HTTP/1.1 then closes a
    // connection the client is still writing to (a broken pipe instead of the answer).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let (status, err) = send(
        h2.post(format!("{}/Users", server.scim))
            .bearer_auth(&server.scim_token)
            .header("content-type", "application/scim+json")
            .body(huge.to_string()),
    )
    .await;
    assert_eq!(status, 413);
    assert_scim_error(&err, 413, None);

    // An unknown role, and an invalid PATCH: nothing changes.
    let (status, err) = send(post(
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:roster:2.0:User"],
            "userName": "role@example.com",
            "urn:ietf:params:scim:schemas:extension:roster:2.0:User": {"role": "superuser"}
        })
        .to_string(),
    ))
    .await;
    assert_eq!(status, 400, "{err}");
    assert_scim_error(&err, 400, Some("invalidValue"));
    assert_eq!(user_count(server).await, 0);

    let (status, err) = send(server.scim_req(Method::GET, "/Users/does-not-exist")).await;
    assert_eq!(status, 404);
    assert_scim_error(&err, 404, None);
    let (status, err) = send(server.scim_req(Method::GET, "/NoSuchEndpoint")).await;
    assert_eq!(status, 404);
    assert_scim_error(&err, 404, None);
}

async fn discovery(server: &TestServer) {
    let (status, spc) = send(server.scim_req(Method::GET, "/ServiceProviderConfig")).await;
    assert_eq!(status, 200, "{spc}");
    assert_eq!(spc["patch"]["supported"], true);
    assert_eq!(spc["bulk"]["supported"], true);
    assert_eq!(spc["etag"]["supported"], true);
    let (status, schemas) = send(server.scim_req(Method::GET, "/Schemas")).await;
    assert_eq!(status, 200);
    assert_eq!(schemas["totalResults"], 4, "{schemas}");
    let (status, user_schema) = send(server.scim_req(
        Method::GET,
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        user_schema["id"],
        "urn:ietf:params:scim:schemas:core:2.0:User"
    );
    let (status, types) = send(server.scim_req(Method::GET, "/ResourceTypes")).await;
    assert_eq!(status, 200);
    assert_eq!(types["totalResults"], 2);
    let (status, err) = send(server.scim_req(Method::GET, "/Schemas?filter=id%20pr")).await;
    assert_eq!(status, 403);
    assert_scim_error(&err, 403, None);
    let (status, err) = send(server.scim_req(Method::POST, "/Schemas").json(&json!({}))).await;
    assert_eq!(status, 405);
    assert_scim_error(&err, 405, None);
    let (status, err) = send(server.scim_req(Method::GET, "/Me")).await;
    assert_eq!(status, 501);
    assert_scim_error(&err, 501, None);
    let (status, _) = send(server.http.get(format!("{}/Schemas", server.scim))).await;
    assert_eq!(status, 401);
    let (status, _) = send(
        server
            .http
            .get(format!("{}/ServiceProviderConfig", server.scim))
            .bearer_auth("rst_unknown"),
    )
    .await;
    assert_eq!(status, 401);
}

async fn tenant_switches(server: &TestServer) {
    let channel = server.channel().await;
    let mut admin = pb::admin_service_client::AdminServiceClient::new(channel.clone());
    let mask = |paths: &[&str]| {
        Some(prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        })
    };
    // A SCIM token may not turn SCIM off.
    let err = admin
        .update_tenant(authed(
            &server.scim_token,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    scim_enabled: false,
                    ..Default::default()
                }),
                update_mask: mask(&["scim_enabled"]),
            },
        ))
        .await
        .expect_err("scim token");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let off = admin
        .update_tenant(authed(
            &server.operator_token,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    scim_enabled: false,
                    ..Default::default()
                }),
                update_mask: mask(&["scim_enabled"]),
            },
        ))
        .await
        .expect("turn SCIM off")
        .into_inner();
    assert!(!off.scim_enabled);
    assert_eq!(off.name, "default");
    // SCIM answers 403 with a SCIM error; gRPC with the operator token still works.
    let (status, err) = send(server.scim_req(Method::GET, "/Users")).await;
    assert_eq!(status, 403, "{err}");
    assert_scim_error(&err, 403, None);
    let mut users = pb::user_service_client::UserServiceClient::new(channel);
    users
        .list_users(authed(
            &server.operator_token,
            pb::ListUsersRequest::default(),
        ))
        .await
        .expect("gRPC still works");
    // Back on, and a rename (operator only) shows in WhoAmI.
    let renamed = admin
        .update_tenant(authed(
            &server.operator_token,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: "acme-prod".into(),
                    scim_enabled: true,
                    ..Default::default()
                }),
                update_mask: mask(&["scim_enabled", "name"]),
            },
        ))
        .await
        .expect("rename")
        .into_inner();
    assert_eq!(renamed.name, "acme-prod");
    let (status, _) = send(server.scim_req(Method::GET, "/Users")).await;
    assert_eq!(status, 200);
    let me = admin
        .who_am_i(authed(&server.scim_token, pb::WhoAmIRequest {}))
        .await
        .expect("WhoAmI")
        .into_inner();
    assert_eq!(me.tenant.map(|t| t.name).as_deref(), Some("acme-prod"));
    let err = admin
        .update_tenant(authed(
            &server.operator_token,
            pb::UpdateTenantRequest {
                tenant: Some(pb::Tenant {
                    name: "Not Valid".into(),
                    ..Default::default()
                }),
                update_mask: mask(&["name"]),
            },
        ))
        .await
        .expect_err("bad name");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
