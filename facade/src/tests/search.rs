//! Router tests of the search-by-POST endpoints (RFC 7644 §3.4.3): `/Users/.search` and
//! `/Groups/.search` answer as their GET lists do, and the root `/.search` pages over the users
//! then the groups.

use super::*;

const SEARCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// A SearchRequest: `schemas` and the members of `rest`.
fn search_body(rest: Value) -> Value {
    let mut body = json!({"schemas": [SEARCH_URN]});
    for (k, v) in rest.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn post(app: &Router, path: &str, body: Value) -> Reply {
    send(
        app,
        Method::POST,
        &format!("/scim/v2{path}"),
        Some("good"),
        Some(body),
    )
    .await
}

async fn get(app: &Router, path_and_query: &str) -> Reply {
    send(
        app,
        Method::GET,
        &format!("/scim/v2{path_and_query}"),
        Some("good"),
        None,
    )
    .await
}

fn user(n: usize) -> User {
    User {
        id: format!("u-{n}"),
        user_name: format!("user{n}@example.com"),
        etag: format!("e{n}"),
        ..ada()
    }
}

fn listed_group(n: usize) -> Group {
    Group {
        display_name: format!("Group {n}"),
        ..group(&format!("g-{n}"), GroupView::Full as i32)
    }
}

/// A mock whose ListUsers pages over 3 users and ListGroups over 2 groups.
fn three_users_two_groups() -> Mock {
    let mock = Mock::default();
    {
        let mut state = mock.0.lock().unwrap();
        state.listed_users = Some((1..=3).map(user).collect());
        state.listed_groups = Some((1..=2).map(listed_group).collect());
    }
    mock
}

fn ids(reply: &Reply) -> Vec<String> {
    reply.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn take_calls(mock: &Mock) -> Vec<Call> {
    std::mem::take(&mut mock.0.lock().unwrap().calls)
}

#[tokio::test]
async fn users_search_answers_as_get_users_does() {
    let mock = Mock::with_user(ada());
    let app = app(&mock);
    let reply = post(
        &app,
        "/Users/.search",
        search_body(json!({
            "filter": "userName eq \"ada@example.com\"",
            "startIndex": 2,
            "count": 2,
            "attributes": ["userName", "emails.value"],
            "sortBy": "userName",
            "sortOrder": "descending"
        })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
    assert_eq!(
        reply.body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(reply.body["totalResults"], 3);
    assert_eq!(reply.body["itemsPerPage"], 2);
    assert_eq!(reply.body["startIndex"], 2);
    // The projection is applied: only what was asked for, and id and schemas.
    assert_eq!(
        reply.body["Resources"][0],
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:roster:2.0:User"
            ],
            "id": "u-1",
            "userName": "ada@example.com",
            "emails": [{"value": "ada@home.example"}]
        })
    );
    let Call::ListUsers(request) = only(take_calls(&mock)) else {
        panic!("expected one ListUsers");
    };
    assert_eq!(
        request,
        ListUsersRequest {
            page_size: 2,
            page_token: String::new(),
            filter: "userName eq \"ada@example.com\"".into(),
            skip: 1,
            sort_by: "userName".into(),
            descending: true,
            total_only: false,
        }
    );

    // The same query as GET: the same request, the same answer.
    let got = get(
        &app,
        "/Users?filter=userName+eq+%22ada%40example.com%22&startIndex=2&count=2\
         &attributes=userName,emails.value&sortBy=userName&sortOrder=descending",
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, reply.body);
    assert_eq!(only(take_calls(&mock)), Call::ListUsers(request));
}

#[tokio::test]
async fn users_search_defaults_and_excluded_attributes() {
    let mock = Mock::with_user(ada());
    let app = app(&mock);
    // Nothing but `schemas`: the GET defaults (startIndex 1, count 100, no filter).
    let reply = post(&app, "/Users/.search", search_body(json!({}))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["startIndex"], 1);
    assert_eq!(reply.body["itemsPerPage"], 3);
    let Call::ListUsers(request) = only(take_calls(&mock)) else {
        panic!("expected one ListUsers");
    };
    assert_eq!(
        (request.filter.as_str(), request.skip, request.page_size),
        ("", 0, 100)
    );

    // `null` members are absent; names match without regard to case.
    let body = json!({
        "SCHEMAS": [SEARCH_URN.to_uppercase()],
        "Filter": null,
        "excludedattributes": ["emails", "meta"],
        "COUNT": 0
    });
    let reply = post(&app, "/Users/.search", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], 3);
    assert_eq!(reply.body["Resources"], json!([]));
    let reply = post(
        &app,
        "/Users/.search",
        search_body(json!({"excludedAttributes": ["emails", "meta"], "count": 1})),
    )
    .await;
    let user = &reply.body["Resources"][0];
    assert!(user.get("emails").is_none() && user.get("meta").is_none());
    assert_eq!(user["userName"], "ada@example.com");
}

#[tokio::test]
async fn groups_search_answers_as_get_groups_does() {
    let mock = Mock::default();
    let app = app(&mock);
    let reply = post(
        &app,
        "/Groups/.search",
        search_body(json!({
            "filter": "displayName eq \"Engineering\"",
            "excludedAttributes": ["members"],
            "startIndex": 1,
            "count": 10
        })),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], 1);
    assert!(reply.body["Resources"][0].get("members").is_none());
    assert_eq!(reply.body["Resources"][0]["displayName"], "Engineering");
    let Call::ListGroups(request) = only(take_calls(&mock)) else {
        panic!("expected one ListGroups");
    };
    assert_eq!(
        request,
        ListGroupsRequest {
            page_size: 10,
            page_token: String::new(),
            filter: "displayName eq \"Engineering\"".into(),
            skip: 0,
            view: GroupView::Basic as i32,
            ..Default::default()
        }
    );
    let got = get(
        &app,
        "/Groups?filter=displayName+eq+%22Engineering%22&excludedAttributes=members&count=10",
    )
    .await;
    assert_eq!(got.body, reply.body);
    assert_eq!(only(take_calls(&mock)), Call::ListGroups(request));

    // `attributes` without members: BASIC too, and only what was asked for.
    let reply = post(
        &app,
        "/Groups/.search",
        search_body(json!({"attributes": ["displayName"]})),
    )
    .await;
    assert_eq!(
        reply.body["Resources"][0],
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "g-1",
            "displayName": "Engineering"
        })
    );
    let Call::ListGroups(request) = only(take_calls(&mock)) else {
        panic!("expected one ListGroups");
    };
    assert_eq!(request.view, GroupView::Basic as i32);

    // No projection: FULL, with the members.
    let reply = post(&app, "/Groups/.search", search_body(json!({}))).await;
    assert_eq!(reply.body["Resources"][0]["members"][0]["value"], "u-1");
    let Call::ListGroups(request) = only(take_calls(&mock)) else {
        panic!("expected one ListGroups");
    };
    assert_eq!(request.view, GroupView::Full as i32);
}

#[tokio::test]
async fn bad_search_bodies_are_400_without_a_grpc_call() {
    let cases: Vec<(String, &str)> = vec![
        ("{\"schemas\":".into(), "invalidSyntax"),
        (String::new(), "invalidSyntax"),
        ("[]".into(), "invalidSyntax"),
        (json!({"filter": "x"}).to_string(), "invalidValue"),
        (json!({"schemas": SEARCH_URN}).to_string(), "invalidValue"),
        (json!({"schemas": [LIST_URN]}).to_string(), "invalidValue"),
        (
            json!({"schemas": [SEARCH_URN, "urn:example:other"]}).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"filter": 5})).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"startIndex": "2"})).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"count": 1.5})).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"attributes": "userName,emails"})).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"excludedAttributes": ["members", 1]})).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"sortBy": 3})).to_string(),
            "invalidValue",
        ),
        (
            search_body(json!({"sortOrder": true})).to_string(),
            "invalidValue",
        ),
    ];
    let mock = three_users_two_groups();
    let app = app(&mock);
    for path in ["/Users/.search", "/Groups/.search", "/.search"] {
        for (body, scim_type) in &cases {
            let reply = send_raw(
                &app,
                Method::POST,
                &format!("/scim/v2{path}"),
                Some("good"),
                Some(body.clone()),
                &[],
            )
            .await;
            assert_scim_error(&reply, StatusCode::BAD_REQUEST);
            assert_eq!(reply.body["scimType"], *scim_type, "{path} {body}");
        }
        // No credentials: 401 before the body is looked at.
        let reply = send(
            &app,
            Method::POST,
            &format!("/scim/v2{path}"),
            None,
            Some(search_body(json!({}))),
        )
        .await;
        assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
        // Searching is POST only; `.search` is not a resource id.
        let reply = get(&app, path).await;
        assert_scim_error(&reply, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(reply.headers[header::ALLOW], "POST");
    }
    assert!(mock.calls().is_empty(), "{:?}", mock.calls());
}

const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

#[tokio::test]
async fn an_invalid_filter_from_the_service_is_400_on_type_searches() {
    let mock = three_users_two_groups();
    let app = app(&mock);
    let reply = post(
        &app,
        "/Groups/.search",
        search_body(json!({"filter": "userName eq \"a\""})),
    )
    .await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "invalidFilter");
}

#[tokio::test]
async fn root_search_pages_over_users_then_groups() {
    let mock = three_users_two_groups();
    let app = app(&mock);
    let filter = "displayName pr";
    let search = |start: i64, count: i64| {
        search_body(json!({"filter": filter, "startIndex": start, "count": count}))
    };

    // Positions 3 and 4 of u-1 u-2 u-3 g-1 g-2: the last user and the first group.
    let reply = post(&app, "/.search", search(3, 2)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.headers[header::CONTENT_TYPE], "application/scim+json");
    assert_eq!(reply.body["schemas"], json!([LIST_URN]));
    assert_eq!(reply.body["totalResults"], 5);
    assert_eq!(reply.body["itemsPerPage"], 2);
    assert_eq!(reply.body["startIndex"], 3);
    assert_eq!(ids(&reply), vec!["u-3", "g-1"]);
    let resources = reply.body["Resources"].as_array().unwrap();
    assert_eq!(resources[0]["meta"]["resourceType"], "User");
    assert_eq!(resources[0]["userName"], "user3@example.com");
    assert_eq!(resources[1]["meta"]["resourceType"], "Group");
    assert_eq!(resources[1]["members"][0]["value"], "u-1");
    assert_eq!(
        take_calls(&mock),
        vec![
            Call::ListUsers(ListUsersRequest {
                page_size: 2,
                page_token: String::new(),
                filter: filter.into(),
                skip: 2,
                ..Default::default()
            }),
            Call::ListGroups(ListGroupsRequest {
                page_size: 1,
                page_token: String::new(),
                filter: filter.into(),
                skip: 0,
                view: GroupView::Full as i32,
                ..Default::default()
            }),
        ]
    );

    // Within the users: the groups are asked for their count only, and read no group.
    let reply = post(&app, "/.search", search(1, 2)).await;
    assert_eq!(ids(&reply), vec!["u-1", "u-2"]);
    assert_eq!(reply.body["totalResults"], 5);
    let calls = take_calls(&mock);
    let Call::ListGroups(request) = &calls[1] else {
        panic!("expected ListGroups second: {calls:?}");
    };
    assert_eq!(
        (request.skip, request.page_size, request.total_only),
        (0, 0, true)
    );

    // Past the users: the groups from the right place.
    let reply = post(&app, "/.search", search(5, 10)).await;
    assert_eq!(ids(&reply), vec!["g-2"]);
    assert_eq!(
        (&reply.body["totalResults"], &reply.body["itemsPerPage"]),
        (&json!(5), &json!(1))
    );
    let calls = take_calls(&mock);
    let Call::ListGroups(request) = &calls[1] else {
        panic!("expected ListGroups second: {calls:?}");
    };
    assert_eq!((request.skip, request.page_size), (1, 10));

    // Past everything; and count 0: totals only.
    for (start, count) in [(9, 10), (1, 0)] {
        let reply = post(&app, "/.search", search(start, count)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body["totalResults"], 5);
        assert_eq!(reply.body["Resources"], json!([]));
        assert_eq!(take_calls(&mock).len(), 2);
    }

    // The whole of it, projected per resource type; members left out: the BASIC view.
    let reply = post(
        &app,
        "/.search",
        search_body(
            json!({"attributes": ["displayName", "userName"], "excludedAttributes": ["members"]}),
        ),
    )
    .await;
    assert_eq!(ids(&reply), vec!["u-1", "u-2", "u-3", "g-1", "g-2"]);
    assert_eq!(
        reply.body["Resources"][3],
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "g-1",
            "displayName": "Group 1"
        })
    );
    assert_eq!(
        reply.body["Resources"][0],
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:roster:2.0:User"
            ],
            "id": "u-1",
            "userName": "user1@example.com"
        })
    );
    let calls = take_calls(&mock);
    let Call::ListGroups(request) = &calls[1] else {
        panic!("expected ListGroups second: {calls:?}");
    };
    assert_eq!(request.view, GroupView::Basic as i32);
}

#[tokio::test]
async fn root_search_a_filter_one_type_refuses_matches_nothing_there() {
    let mock = three_users_two_groups();
    let app = app(&mock);

    // Groups have no userName: only users match.
    let body = search_body(json!({"filter": "userName sw \"user\"", "startIndex": 2}));
    let reply = post(&app, "/.search", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], 3);
    assert_eq!(ids(&reply), vec!["u-2", "u-3"]);
    assert_eq!(take_calls(&mock).len(), 2);

    // Users have no members: only groups match, paged from the start of the groups.
    let body = search_body(json!({"filter": "members eq \"u-1\"", "startIndex": 2, "count": 5}));
    let reply = post(&app, "/.search", body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["totalResults"], 2);
    assert_eq!(reply.body["startIndex"], 2);
    assert_eq!(ids(&reply), vec!["g-2"]);
    let calls = take_calls(&mock);
    let Call::ListGroups(request) = &calls[1] else {
        panic!("expected ListGroups second: {calls:?}");
    };
    assert_eq!((request.skip, request.page_size), (1, 5));

    // Refused by both: 400 invalidFilter.
    let body = search_body(json!({"filter": "nonsense ("}));
    let reply = post(&app, "/.search", body).await;
    assert_scim_error(&reply, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["scimType"], "invalidFilter");
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("Users") && detail.contains("Groups"),
        "{detail}"
    );

    // Any other failure is the answer as it is.
    let reply = send(
        &app,
        Method::POST,
        "/scim/v2/.search",
        Some("Bearer bad"),
        Some(search_body(json!({}))),
    )
    .await;
    assert_scim_error(&reply, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn root_search_refuses_sorting_and_cursors_and_calls_nothing() {
    let mock = Mock::default();
    let app = app(&mock);
    for body in [
        json!({"sortBy": "displayName"}),
        json!({"cursor": ""}),
        json!({"cursor": "abc", "count": 10}),
    ] {
        let reply = post(&app, "/.search", search_body(body.clone())).await;
        assert_scim_error(&reply, StatusCode::BAD_REQUEST);
        assert_eq!(reply.body["scimType"], "invalidValue", "{body}");
        assert!(
            take_calls(&mock).iter().all(|c| *c == Call::WhoAmI),
            "{body}"
        );
    }
}
